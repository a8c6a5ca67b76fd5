/* tests/integration/test_ckpt_files.c — checkpoints as real files and real
 * processes: a writer killed with SIGKILL in the middle of saving over an
 * existing checkpoint, and `dkhost ckpt info|verify` on good and damaged
 * files (output and exit codes, docs/cli.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "ckpt_testing.h"
#include "dk_test.h"
#include "proc.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { OK = 0, USAGE = 2, DATA = 5 };

static char dir[64];

#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        dk_status s_ = (expr);                                                                     \
        if (s_ != DK_OK)                                                                           \
            fail_msg("%s failed: %s: %s", #expr, dk_status_name(s_), dk_last_error());             \
    } while (0)

static const char *P(const char *name)
{
    static char bufs[4][256];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

static int setup(void **state)
{
    return ckt_dir_make(dir, sizeof dir, "dk_ckpt_files");
}

static int teardown(void **state)
{
    ckt_dir_remove(dir);
    return 0;
}

static int count_temps(void)
{
    return ckt_count_temps(dir);
}

#define expect proc_expect

/* ---- SIGKILL while saving ------------------------------------------------------------ */

#define OLD_META "iteration: 1\nnote: old\n"
#define NEW_META "iteration: 2\nnote: new\n"
#define N_BIG 6

/* Saves the big checkpoint over path again and again until killed. With
 * `signal_fd` >= 0 it first writes one tensor, says so through the pipe and
 * waits there forever, so the kill lands in the middle of a save. */
static _Noreturn void saver(const char *path, dk_tensor *const *big, int signal_fd)
{
    static const char *const names[N_BIG] = {"b0", "b1", "b2", "b3", "b4", "b5"};
    for (;;) {
        dkh_ckpt_writer *w;
        if (dkh_ckpt_writer_open(path, &w) != DK_OK)
            _exit(3);
        if (dkh_ckpt_writer_meta(w, NEW_META) != DK_OK)
            _exit(3);
        for (int k = 0; k < N_BIG; k++) {
            if (dkh_ckpt_writer_add(w, names[k], big[k]) != DK_OK)
                _exit(3);
            if (k == 0 && signal_fd >= 0) {
                if (write(signal_fd, "w", 1) != 1)
                    _exit(3);
                for (;;)
                    pause();
            }
        }
        if (dkh_ckpt_writer_commit(w) != DK_OK)
            _exit(3);
    }
}

/* Starts a saver, waits until it is writing, lets it run `delay_us` more
 * microseconds and kills it with SIGKILL. */
static void kill_saver_mid_write(const char *path, dk_tensor *const *big, bool hold, long delay_us)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        saver(path, big, hold ? fds[1] : -1);
    }
    close(fds[1]);
    if (hold) {
        char c;
        assert_int_equal(read(fds[0], &c, 1), 1); /* it has a temp file open now */
    }
    close(fds[0]);
    if (delay_us)
        usleep((useconds_t)delay_us);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    /* Killed, not failed on its own. */
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* Whatever moment the kill hit, path is a whole checkpoint (the old one or
 * a complete new one), latest picks it and no partial file, and the temp
 * files of the dead writer are gone afterwards. */
static void expect_intact(const char *path)
{
    dkh_ckpt *c;
    CHECK_OK(dkh_ckpt_open(path, &c));
    CHECK_OK(dkh_ckpt_verify(c));
    const char *meta = dkh_ckpt_meta(c);
    if (strcmp(meta, OLD_META) != 0 && strcmp(meta, NEW_META) != 0)
        fail_msg("unexpected metadata: %s", meta);
    assert_int_equal(dkh_ckpt_count(c), strcmp(meta, OLD_META) == 0 ? CKT_SAMPLE_COUNT : N_BIG);
    dkh_ckpt_close(c);
    char *latest = NULL;
    CHECK_OK(dkh_ckpt_latest(dir, &latest));
    assert_str_eq(latest, path);
    free(latest);
    assert_int_equal(count_temps(), 0);
}

static void test_sigkill_during_save(void **state)
{
    const char *path = P("run.dkpt");
    dk_tensor *old[CKT_SAMPLE_COUNT];
    for (int k = 0; k < CKT_SAMPLE_COUNT; k++)
        old[k] = ckt_pattern(DK_DTYPE_F32, 1, (const int64_t[]){64}, (uint32_t)k);
    CHECK_OK(ckt_write(path, OLD_META, CKT_SAMPLE_COUNT, ckt_sample_names, old));
    /* 6 x 4 MB: a save takes long enough for kills to land inside it. */
    dk_tensor *big[N_BIG];
    for (int k = 0; k < N_BIG; k++)
        big[k] = ckt_pattern(DK_DTYPE_U8, 1, (const int64_t[]){4 << 20}, (uint32_t)k + 10);

    /* Held inside the first save: a temp file is left, the old file stays. */
    kill_saver_mid_write(path, big, true, 0);
    assert_int_equal(count_temps(), 1);
    dkh_ckpt *c;
    CHECK_OK(dkh_ckpt_open(path, &c));
    assert_str_eq(dkh_ckpt_meta(c), OLD_META);
    dkh_ckpt_close(c);
    expect_intact(path);

    /* Free-running saves killed at arbitrary moments. */
    unsigned seed = (unsigned)time(NULL);
    printf("kill delays seeded with %u\n", seed);
    srand(seed);
    int inside = 0;
    for (int round = 0; round < 12; round++) {
        kill_saver_mid_write(path, big, false, rand() % 150000);
        inside += count_temps() > 0;
        expect_intact(path);
    }
    printf("%d of 12 kills landed inside a save\n", inside);
    /* A new writer after all that still replaces it cleanly. */
    CHECK_OK(ckt_write(path, OLD_META, CKT_SAMPLE_COUNT, ckt_sample_names, old));
    expect_intact(path);
    for (int k = 0; k < CKT_SAMPLE_COUNT; k++)
        dk_tensor_release(old[k]);
    for (int k = 0; k < N_BIG; k++)
        dk_tensor_release(big[k]);
}

/* ---- dkhost ckpt ------------------------------------------------------------------------ */

static void test_info_and_verify(void **state)
{
    const char *path = P("iter_77.dkpt");
    CHECK_OK(ckt_write_sample(path, 77, 0));
    proc_result r = dkhost_run("ckpt", "info", path, NULL);
    expect(&r, OK, "checkpoint: ", NULL);
    const char *want[] = {
        path,
        "iteration:  77",
        "metadata (",
        "  epoch: 3\n  iteration: 77\n  samples_seen: 2464\n  classes: [cat, dog]\n",
        "tensors (6):",
        "raw bytes",
        "compressed",
        "ratio",
        "conv.weight",
        "(4, 3, 3, 3)",
        "432",
        "bn.num_batches_tracked  i64",
        "empty                   f16    (0, 4)",
        "verified: all 6 tensors match their checksums and sizes",
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
        expect(&r, OK, want[k], NULL);
    assert_null(strstr(r.out, "DAMAGED"));
    proc_result_free(&r);

    r = dkhost_run("ckpt", "verify", path, NULL);
    expect(&r, OK, "intact (6 tensors, ", NULL);
    proc_result_free(&r);
}

static void test_damaged_files(void **state)
{
    const char *path = P("bad.dkpt");
    CHECK_OK(ckt_write_sample(path, 5, 0));
    /* Damage the second tensor's frame (conv.bias). */
    dkh_ckpt *c;
    CHECK_OK(dkh_ckpt_open(path, &c));
    long off = 96 + (long)dkh_ckpt_compressed_size(c, 0) + 3;
    dkh_ckpt_close(c);
    FILE *f = fopen(path, "r+b");
    fseek(f, off, SEEK_SET);
    int byte = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(byte ^ 0x10, f);
    fclose(f);

    proc_result r = dkhost_run("ckpt", "info", path, NULL);
    expect(&r, DATA, "conv.weight", NULL);
    expect(&r, DATA, "DAMAGED", "dkhost: ckpt info: checkpoint ");
    expect(&r, DATA, NULL, "bad.dkpt: tensor 'conv.bias' (index entry 1): data checksum mismatch");
    expect(&r, DATA, NULL, "is damaged: 1 of 6 tensors fail their check");
    assert_null(strstr(r.out, "verified: all"));
    proc_result_free(&r);

    r = dkhost_run("ckpt", "verify", path, NULL);
    expect(&r, DATA, NULL, "dkhost: ckpt verify: checkpoint ");
    expect(&r, DATA, NULL, "tensor 'conv.bias' (index entry 1): data checksum mismatch");
    proc_result_free(&r);

    /* Truncated, not a checkpoint, missing: refused before any output. */
    assert_int_equal(truncate(path, 500), 0);
    r = dkhost_run("ckpt", "info", path, NULL);
    expect(&r, DATA, NULL, "bad.dkpt: truncated: the file has 500 bytes");
    assert_str_eq(r.out, "");
    proc_result_free(&r);
    write_file(path, "epoch: 1\n");
    r = dkhost_run("ckpt", "info", path, NULL);
    expect(&r, DATA, NULL, "bad.dkpt: not a dkhost checkpoint");
    proc_result_free(&r);
    r = dkhost_run("ckpt", "verify", P("missing.dkpt"), NULL);
    expect(&r, DATA, NULL, "missing.dkpt: No such file or directory");
    proc_result_free(&r);
}

static void test_ckpt_usage(void **state)
{
    proc_result r = dkhost_run("ckpt", NULL);
    expect(&r, USAGE, NULL, "ckpt needs a command: info or verify");
    proc_result_free(&r);
    r = dkhost_run("ckpt", "inf", "x.dkpt", NULL);
    expect(&r, USAGE, NULL, "unknown ckpt command 'inf' (did you mean 'info'?)");
    proc_result_free(&r);
    r = dkhost_run("ckpt", "info", NULL);
    expect(&r, USAGE, NULL, "ckpt info needs a FILE");
    proc_result_free(&r);
    r = dkhost_run("ckpt", "verify", "a.dkpt", "b.dkpt", NULL);
    expect(&r, USAGE, NULL, "unexpected argument 'b.dkpt'");
    proc_result_free(&r);
    r = dkhost_run("ckpt", "--help", NULL);
    expect(&r, OK, "Usage: dkhost ckpt info FILE", NULL);
    expect(&r, OK, "5 missing, unreadable or damaged", NULL);
    proc_result_free(&r);
    r = dkhost_run("--help", NULL);
    expect(&r, OK, "dkhost ckpt info|verify FILE", NULL);
    proc_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigkill_during_save, setup, teardown),
        cmocka_unit_test_setup_teardown(test_info_and_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_files, setup, teardown),
        cmocka_unit_test(test_ckpt_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
