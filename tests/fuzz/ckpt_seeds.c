/* tests/fuzz/ckpt_seeds.c — writes the fuzzer's seed corpus: small valid
 * checkpoints made by the real writer, so the corpus follows the format
 * without binary files in the tree.
 *
 *   ckpt_seeds SEED_DIR WORK_DIR   (both are emptied first)
 */
#include "ckpt_testing.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates dir, or empties it when it exists. */
static int fresh_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
        return 0;
    }
    return mkdir(dir, 0755);
}

static int check(dk_status s, const char *what)
{
    if (s != DK_OK)
        fprintf(stderr, "ckpt_seeds: %s: %s\n", what, dk_last_error());
    return s != DK_OK;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: ckpt_seeds SEED_DIR WORK_DIR\n");
        return 2;
    }
    if (fresh_dir(argv[1]) != 0 || fresh_dir(argv[2]) != 0) {
        perror("ckpt_seeds");
        return 1;
    }
    char path[4096];
    int bad = 0;
    snprintf(path, sizeof path, "%s/sample.dkpt", argv[1]);
    bad |= check(ckt_write_sample(path, 77, 0), path);
    snprintf(path, sizeof path, "%s/no_iteration.dkpt", argv[1]);
    bad |= check(ckt_write_sample(path, -1, 1), path);
    snprintf(path, sizeof path, "%s/empty.dkpt", argv[1]);
    bad |= check(ckt_write(path, "", 0, NULL, NULL), path);

    /* One scalar of every dtype, and a tensor with runs zstd compresses. */
    dk_tensor *t[DK_DTYPE_COUNT + 1];
    const char *names[DK_DTYPE_COUNT + 1];
    for (int d = 0; d < DK_DTYPE_COUNT; d++) {
        t[d] = ckt_pattern((dk_dtype)d, 0, NULL, (uint32_t)d);
        names[d] = dk_dtype_name((dk_dtype)d);
    }
    t[DK_DTYPE_COUNT] = dk_zeros(3, (const int64_t[]){4, 8, 16}, DK_DTYPE_F32, DK_CPU);
    names[DK_DTYPE_COUNT] = "zeros";
    snprintf(path, sizeof path, "%s/dtypes.dkpt", argv[1]);
    bad |= check(
        ckt_write(path, "iteration: 3\nversions: {dkhost: 0.1.0}\n", DK_DTYPE_COUNT + 1, names, t),
        path);
    for (int d = 0; d <= DK_DTYPE_COUNT; d++)
        dk_tensor_release(t[d]);
    return bad;
}
