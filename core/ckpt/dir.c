/* core/ckpt/dir.c — checkpoints in a directory: picking the newest intact one
 * to resume from, and removing the temp files that killed writers left.
 *
 * A temp file "<name>.dkpt.tmp.<pid>" is only ever a partial write, so it is
 * never a candidate. Its process id says whether a writer may still be
 * filling it: while that process lives the file is left alone, otherwise it
 * is removed. (Process ids are this host's: directories shared between hosts
 * must not have writers on two hosts at once, which rank-0-only saving
 * guarantees.)
 */
#include "ckpt_impl.h"

#include "../util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* The pid of a temp file name "<prefix>.tmp.<digits>", or 0 when name is not
 * one (prefix NULL: any prefix ending in ".dkpt"). */
static long temp_pid(const char *name, const char *prefix)
{
    const char *tag = strstr(name, ".tmp.");
    const char *last;
    while (tag && (last = strstr(tag + 1, ".tmp.")))
        tag = last;
    if (!tag)
        return 0;
    size_t plen = (size_t)(tag - name);
    if (prefix ? strlen(prefix) != plen || memcmp(name, prefix, plen) != 0
               : !ends_with(name, plen, ".dkpt"))
        return 0;
    const char *digits = tag + 5;
    size_t nd = strlen(digits);
    if (nd == 0 || nd > 9 || strspn(digits, "0123456789") != nd)
        return 0;
    return strtol(digits, NULL, 10);
}

void dkh_ckpt_clean_stale(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        long pid = temp_pid(ent->d_name, prefix);
        if (pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == -1 && errno == ESRCH) {
            if (unlinkat(dirfd(d), ent->d_name, 0) == 0)
                DK_DEBUG("removed %s/%s, left by a checkpoint writer that died", dir, ent->d_name);
        }
    }
    closedir(d);
}

/* ---- latest ------------------------------------------------------------------------ */

typedef struct candidate {
    char *path;
    const char *name; /* inside path */
    int64_t iteration;
    struct timespec mtime;
} candidate;

/* Newest first: iteration, then modification time, then name. */
static int newer_first(const void *pa, const void *pb)
{
    const candidate *a = pa, *b = pb;
    if (a->iteration != b->iteration)
        return a->iteration > b->iteration ? -1 : 1;
    if (a->mtime.tv_sec != b->mtime.tv_sec)
        return a->mtime.tv_sec > b->mtime.tv_sec ? -1 : 1;
    if (a->mtime.tv_nsec != b->mtime.tv_nsec)
        return a->mtime.tv_nsec > b->mtime.tv_nsec ? -1 : 1;
    return -strcmp(a->name, b->name);
}

/* The *.dkpt regular files in dir, with their modification times. */
static dk_status list_candidates(const char *dir, candidate **out, size_t *n_out)
{
    DIR *d = opendir(dir);
    if (!d)
        return dk_fail(errno == ENOENT ? DK_ERR_NOT_FOUND : DK_ERR_IO,
                       "no checkpoint in %s: cannot read the directory: %s", dir, strerror(errno));
    candidate *c = NULL;
    size_t n = 0, cap = 0;
    struct dirent *ent;
    const char *sep = ends_with(dir, strlen(dir), "/") ? "" : "/";
    while ((ent = readdir(d))) {
        size_t len = strlen(ent->d_name);
        struct stat st;
        if (len <= 5 || !ends_with(ent->d_name, len, ".dkpt") ||
            fstatat(dirfd(d), ent->d_name, &st, 0) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            candidate *p = realloc(c, cap * sizeof *p);
            DKH_ASSERT(p != NULL);
            c = p;
        }
        char *path = dkh_asprintf("%s%s%s", dir, sep, ent->d_name);
        c[n++] = (candidate){
            .path = path, .name = path + strlen(path) - len, .iteration = -1, .mtime = st.st_mtim};
    }
    closedir(d);
    *out = c;
    *n_out = n;
    return DK_OK;
}

/* Opens path and, if asked, verifies every tensor. Warns and returns false
 * when it is damaged. */
static bool intact(const char *path, bool verify, int64_t *iteration)
{
    dkh_ckpt *c;
    dk_status s = dkh_ckpt_open(path, &c);
    if (s == DK_OK) {
        *iteration = dkh_ckpt_iteration(c);
        if (verify)
            s = dkh_ckpt_verify(c);
        dkh_ckpt_close(c);
    }
    if (s != DK_OK)
        DK_WARN("skipping %s", dk_last_error());
    return s == DK_OK;
}

dk_status dkh_ckpt_latest(const char *dir, char **path)
{
    if (!dir || !path)
        return dk_fail(DK_ERR_ARG, "dkh_ckpt_latest: NULL argument");
    *path = NULL;
    candidate *c = NULL;
    size_t n = 0;
    DK_TRY(list_candidates(dir, &c, &n));
    dkh_ckpt_clean_stale(dir, NULL);

    /* Headers first (cheap) to order them, then full verification from the
     * newest down until one is intact. */
    size_t kept = 0, damaged = 0;
    for (size_t i = 0; i < n; i++) {
        if (intact(c[i].path, false, &c[i].iteration))
            c[kept++] = c[i];
        else {
            free(c[i].path);
            damaged++;
        }
    }
    if (kept)
        qsort(c, kept, sizeof *c, newer_first);
    size_t found = kept;
    for (size_t i = 0; i < kept && found == kept; i++) {
        int64_t it;
        if (intact(c[i].path, true, &it))
            found = i;
        else
            damaged++;
    }
    dk_status s = DK_OK;
    if (found < kept) {
        *path = c[found].path;
        c[found].path = NULL;
    } else if (damaged) {
        s = dk_fail(DK_ERR_NOT_FOUND,
                    "no intact checkpoint (*.dkpt) in %s: %zu damaged one%s "
                    "skipped",
                    dir, damaged, damaged == 1 ? " was" : "s were");
    } else {
        s = dk_fail(DK_ERR_NOT_FOUND, "no checkpoint (*.dkpt) in %s", dir);
    }
    for (size_t i = 0; i < kept; i++)
        free(c[i].path);
    free(c);
    return s;
}
