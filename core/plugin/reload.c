/* core/plugin/reload.c — private copies of plugin files, and swapping a
 * rebuilt hook plugin between runs (see reload.h).
 *
 * Why copies: dlopen maps the file, so writing over it in place (what `cp`
 * and many linkers do) changes the code of a loaded library under the
 * process, and mapping the same path again after a rebuild may hand back the
 * old mapping. Each load therefore maps its own copy, with a name never
 * used twice, and the copy is deleted once its library is closed.
 *
 * Why the old build goes last: the new build is initialised while the old
 * one is still registered (its types are allowed to be registered once
 * more, see register.c), so a new build that fails anywhere costs nothing;
 * only a fully initialised replacement makes the old one shut down.
 */
#include "reload.h"

#include "internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- file identity ------------------------------------------------------ */

enum { COPY_CHUNK = 1 << 16 };

static const uint64_t FNV_OFFSET = 0xcbf29ce484222325ull;
static const uint64_t FNV_PRIME = 0x100000001b3ull;

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= FNV_PRIME;
    }
    return h;
}

static void id_from_stat(const struct stat *st, dkh_file_id *out)
{
    memset(out, 0, sizeof *out);
    out->valid = true;
    out->dev = (uint64_t)st->st_dev;
    out->ino = (uint64_t)st->st_ino;
    out->size = (uint64_t)st->st_size;
    out->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* Hashes (and, when to >= 0, copies) what fd holds from its start. */
static bool pump(int fd, int to, uint64_t *hash)
{
    unsigned char *buf = malloc(COPY_CHUNK);
    DKH_ASSERT(buf != NULL);
    uint64_t h = FNV_OFFSET;
    bool ok = true;
    for (;;) {
        ssize_t n = read(fd, buf, COPY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ok = n == 0;
            break;
        }
        h = fnv1a(h, buf, (size_t)n);
        for (ssize_t done = 0; to >= 0 && done < n;) {
            ssize_t w = write(to, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                ok = false;
                break;
            }
            done += w;
        }
        if (!ok)
            break;
    }
    free(buf);
    *hash = h;
    return ok;
}

bool dkh_file_id_read(const char *path, bool with_hash, dkh_file_id *out)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    struct stat st;
    bool ok = fstat(fd, &st) == 0;
    if (ok) {
        id_from_stat(&st, out);
        if (with_hash) {
            ok = pump(fd, -1, &out->hash);
            out->hashed = ok;
        }
    }
    int e = errno;
    close(fd);
    errno = e;
    if (!ok)
        out->valid = false;
    return ok;
}

bool dkh_file_id_same_stat(const dkh_file_id *a, const dkh_file_id *b)
{
    return a->valid && b->valid && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_ns == b->mtime_ns;
}

/* Same bytes, as far as the hashes tell; false when either is unknown. */
static bool same_bytes(const dkh_file_id *a, const dkh_file_id *b)
{
    return a->hashed && b->hashed && a->size == b->size && a->hash == b->hash;
}

/* ---- the private directory ---------------------------------------------- */

static char *private_dir;     /* absolute, resolved */
static uint64_t copies_made;  /* names copies: never the same name twice */

const char *dkh_private_dir(void)
{
    return private_dir;
}

static dk_status private_dir_make(void)
{
    if (private_dir)
        return DK_OK;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    char *tmpl = dkh_asprintf("%s/dkhost-%d-XXXXXX", tmp, (int)getpid());
    if (!mkdtemp(tmpl)) {
        dk_status s = dk_fail(DK_ERR_IO, "cannot create a private plugin directory %s: %s",
                              tmpl, strerror(errno));
        free(tmpl);
        return s;
    }
    /* /proc/self/maps names files by their resolved path. */
    char real[PATH_MAX];
    private_dir = realpath(tmpl, real) ? dkh_strdup(real) : dkh_strdup(tmpl);
    free(tmpl);
    return DK_OK;
}

void dkh_private_dir_remove(void)
{
    if (!private_dir)
        return;
    DIR *d = opendir(private_dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char *p = dkh_asprintf("%s/%s", private_dir, e->d_name);
            unlink(p);
            free(p);
        }
        closedir(d);
    }
    rmdir(private_dir);
    free(private_dir);
    private_dir = NULL;
}

static const char *base_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

dk_status dkh_private_copy(const char *path, char **copy, dkh_file_id *id)
{
    *copy = NULL;
    DK_TRY(private_dir_make());
    int from = open(path, O_RDONLY | O_CLOEXEC);
    if (from < 0)
        return dk_fail(DK_ERR_IO, "cannot read it to make a private copy: %s", strerror(errno));
    struct stat st;
    if (fstat(from, &st) != 0) {
        dk_status s = dk_fail(DK_ERR_IO, "cannot stat it: %s", strerror(errno));
        close(from);
        return s;
    }
    id_from_stat(&st, id);
    char *dst = dkh_asprintf("%s/%llu_%s", private_dir, (unsigned long long)++copies_made,
                             base_of(path));
    int to = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
    if (to < 0) {
        dk_status s = dk_fail(DK_ERR_IO, "cannot create the private copy %s: %s", dst,
                              strerror(errno));
        close(from);
        free(dst);
        return s;
    }
    bool ok = pump(from, to, &id->hash);
    int e = errno;
    if (close(to) != 0 && ok) {
        ok = false;
        e = errno;
    }
    close(from);
    if (!ok) {
        unlink(dst);
        free(dst);
        return dk_fail(DK_ERR_IO, "cannot copy it to the private directory %s: %s",
                       private_dir, strerror(e));
    }
    id->hashed = true;
    *copy = dst;
    return DK_OK;
}

/* ---- is it gone? --------------------------------------------------------- */

static bool in_proc_maps(const char *path)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return false;
    bool found = false;
    size_t n = strlen(path);
    char line[PATH_MAX + 256];
    while (!found && fgets(line, sizeof line, f)) {
        /* The path is the last field; " (deleted)" follows an unlinked one. */
        char *p = strchr(line, '/');
        if (!p)
            continue;
        found = strncmp(p, path, n) == 0 && (p[n] == '\n' || p[n] == '\0' || p[n] == ' ');
    }
    fclose(f);
    return found;
}

bool dkh_library_mapped(const char *path)
{
    /* NOLOAD maps nothing: it only finds a library that is already loaded,
     * and takes a reference that must be given back. */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    if (h) {
        dlclose(h);
        return true;
    }
    dlerror();
    return in_proc_maps(path);
}

static bool keeps_libraries(void)
{
    const char *v = getenv("DK_NO_DLCLOSE");
    return v && strcmp(v, "1") == 0;
}

/* ---- reload ------------------------------------------------------------- */

static dkh_plugin_rec *find(dkh_registry *r, const char *name)
{
    return (dkh_plugin_rec *)dkh_reg_plugin_by_name(r, name);
}

dk_status dkh_plugin_reload(dkh_registry *r, const char *name, bool *unmapped)
{
    if (unmapped)
        *unmapped = false;
    dkh_plugin_rec *old = find(r, name);
    if (!old)
        return dk_fail(DK_ERR_NOT_FOUND, "cannot reload plugin '%s': no such plugin is loaded",
                       name);
    const char *path = old->pub.path;
    if (dkh_registry_run_active(r))
        return dk_fail(DK_ERR_PLUGIN,
                       "cannot reload plugin '%s' (%s): a run is active; plugins are swapped "
                       "only between runs",
                       name, path);
    if (!(old->pub.flags & DK_PLUGIN_UNLOADABLE))
        return dk_fail(DK_ERR_PLUGIN,
                       "plugin '%s' (%s) is not flagged DK_PLUGIN_UNLOADABLE (hook-only), so it "
                       "stays loaded: restart dkhost to pick up a new build",
                       name, path);
    size_t live = atomic_load(&old->live);
    /* Hook objects die with their run; one still alive would call into the
     * old library after it is closed. */
    if (live > 0)
        return dk_fail(DK_ERR_PLUGIN,
                       "cannot reload plugin '%s' (%s): %zu object%s of its types %s still alive",
                       name, path, live, live == 1 ? "" : "s", live == 1 ? "is" : "are");

    char *copy = NULL;
    dkh_file_id id;
    dk_status s = dkh_private_copy(path, &copy, &id);
    if (s != DK_OK) {
        dk_error_prefix("cannot reload plugin '%s': %s", name, path);
        return s;
    }
    /* Copied by value: a failed reload leaves old untouched, and a swap
     * frees it below. */
    char *old_version = dkh_strdup(old->pub.version);
    s = dkh_registry_load_replacement(r, old, copy, &id);
    if (s != DK_OK) {
        unlink(copy);
        free(copy);
        free(old_version);
        old->rejected = id;
        dk_error_prefix("cannot reload plugin '%s'", name);
        char *msg = dkh_strdup(dk_last_error());
        dk_fail(s, "%s; the loaded build stays registered", msg);
        free(msg);
        return s;
    }
    free(copy);

    /* old is out of the registry now: nothing can reach its code. */
    const dkh_plugin_rec *now = find(r, name);
    if (old->pub.desc && old->pub.desc->shutdown)
        old->pub.desc->shutdown();
    dkh_library_close(old->pub.handle);
    old->pub.handle = NULL;
    char *gone = dkh_strdup(old->pub.loaded_path);
    bool checked = !keeps_libraries();
    bool mapped = checked && dkh_library_mapped(gone);
    if (old->private_copy)
        unlink(gone);
    dkh_plugin_rec_free(old);

    const char *ver = now->pub.version;
    bool same_ver = strcmp(old_version, ver) == 0;
    if (!checked)
        dk_log(DK_LOG_INFO,
               "plugin '%s' reloaded from %s (version %s%s%s); the previous build stays mapped "
               "(DK_NO_DLCLOSE=1)",
               name, now->pub.path, old_version, same_ver ? "" : " -> ", same_ver ? "" : ver);
    else if (mapped)
        dk_log(DK_LOG_WARN,
               "plugin '%s' reloaded from %s, but the previous build %s is still mapped after "
               "dlclose (something else holds a reference to it)",
               name, now->pub.path, gone);
    else
        dk_log(DK_LOG_INFO,
               "plugin '%s' reloaded from %s (version %s%s%s); the previous build is unmapped",
               name, now->pub.path, old_version, same_ver ? "" : " -> ", same_ver ? "" : ver);
    free(old_version);
    free(gone);
    if (unmapped)
        *unmapped = checked && !mapped;
    return DK_OK;
}

/* ---- the check between runs --------------------------------------------- */

size_t dkh_plugins_refresh(dkh_registry *r, bool force)
{
    if (dkh_registry_run_active(r))
        return 0;
    size_t reloaded = 0;
    /* A reload keeps the plugin's place in the load order, so indices hold. */
    for (size_t i = 0; i < dkh_registry_n_plugins(r); i++) {
        dkh_plugin_rec *p = (dkh_plugin_rec *)dkh_registry_plugin_at(r, i);
        bool unloadable = (p->pub.flags & DK_PLUGIN_UNLOADABLE) != 0;
        dkh_file_id cur;
        if (!dkh_file_id_read(p->pub.path, false, &cur)) {
            if (!p->change_reported)
                dk_log(DK_LOG_WARN, "plugin '%s': its file %s cannot be read (%s); the loaded "
                                    "build stays",
                       p->pub.name, p->pub.path, strerror(errno));
            p->change_reported = true;
            continue;
        }
        bool changed = !dkh_file_id_same_stat(&cur, &p->file);
        if (changed && p->file.hashed) {
            /* A file rewritten with the same bytes (touch, a rebuild that
             * linked the same output) is no new build. */
            if (!dkh_file_id_read(p->pub.path, true, &cur))
                continue;
            if (same_bytes(&cur, &p->file)) {
                p->file = cur;
                changed = false;
            }
        }
        if (!unloadable) {
            if (changed && !p->change_reported)
                dk_log(DK_LOG_WARN,
                       "plugin '%s' (%s) changed on disk, but it is not a hook-only plugin "
                       "(DK_PLUGIN_UNLOADABLE) and stays loaded: restart dkhost to pick this up",
                       p->pub.name, p->pub.path);
            if (changed)
                p->change_reported = true;
            continue;
        }
        if (!changed && !force)
            continue;
        /* The same broken build is reported once, not at every check, even
         * when it is copied over the file again. */
        if (!force &&
            (dkh_file_id_same_stat(&cur, &p->rejected) || same_bytes(&cur, &p->rejected))) {
            p->rejected = cur;
            continue;
        }
        char *name = dkh_strdup(p->pub.name);
        if (dkh_plugin_reload(r, name, NULL) == DK_OK)
            reloaded++;
        else
            dk_log(DK_LOG_WARN, "%s", dk_last_error());
        free(name);
    }
    dk_clear_error();
    return reloaded;
}
