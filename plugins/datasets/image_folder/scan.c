/* scan.c — finding the images of an ImageFolder tree (torchvision's and
 * mmpretrain's layout: root/<class>/<image>.jpg, classes in sorted order).
 */
#include "image_folder.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

typedef struct names {
    char **v;
    size_t n, cap;
} names;

static void names_fini(names *l)
{
    for (size_t i = 0; i < l->n; i++)
        dk_free(l->v[i]);
    dk_free(l->v);
    *l = (names){0};
}

static dk_status names_push(names *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = dk_realloc(l->v, cap * sizeof *v);
        if (!v)
            return dk_fail(DK_ERR_NOMEM, "ImageFolder: out of memory listing files");
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = dk_strdup(s);
    if (!l->v[l->n])
        return dk_fail(DK_ERR_NOMEM, "ImageFolder: out of memory listing files");
    l->n++;
    return DK_OK;
}

static int by_bytes(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* a/b into buf; false when it does not fit. */
static bool join(char *buf, size_t cap, const char *a, const char *b)
{
    int n = snprintf(buf, cap, "%s/%s", a, b);
    return n >= 0 && (size_t)n < cap;
}

static dk_status too_long(const char *a, const char *b)
{
    return dk_fail(DK_ERR_IO, "ImageFolder: path %s/%s is longer than 4095 bytes", a, b);
}

static bool is_jpeg_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The visible entries of dir, sorted; with dirs_only, only folders. */
static dk_status list_dir(const char *dir, bool dirs_only, names *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return dk_fail(DK_ERR_IO, "ImageFolder: cannot open folder %s: %s", dir, strerror(errno));
    dk_status s = DK_OK;
    char path[4096];
    for (struct dirent *e; s == DK_OK && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue; /* ., .. and hidden files */
        if (!join(path, sizeof path, dir, e->d_name))
            s = too_long(dir, e->d_name);
        else if (!dirs_only || is_dir(path))
            s = names_push(out, e->d_name);
    }
    closedir(d);
    if (s == DK_OK && out->n > 1)
        qsort(out->v, out->n, sizeof *out->v, by_bytes);
    return s;
}

static dk_status add_image(folder_index *ix, const char *rel, int32_t label)
{
    size_t len = strlen(rel) + 1;
    if (ix->paths_len + len > ix->paths_cap) {
        size_t cap = ix->paths_cap ? ix->paths_cap * 2 : 4096;
        while (cap < ix->paths_len + len)
            cap *= 2;
        char *p = dk_realloc(ix->paths, cap);
        if (!p)
            return dk_fail(DK_ERR_NOMEM, "ImageFolder: out of memory listing files");
        ix->paths = p;
        ix->paths_cap = cap;
    }
    if (ix->n == ix->cap) {
        int64_t cap = ix->cap ? ix->cap * 2 : 256;
        int64_t *off = dk_realloc(ix->offsets, (size_t)cap * sizeof *off);
        if (off)
            ix->offsets = off;
        int32_t *lab = off ? dk_realloc(ix->labels, (size_t)cap * sizeof *lab) : NULL;
        if (!lab)
            return dk_fail(DK_ERR_NOMEM, "ImageFolder: out of memory listing files");
        ix->labels = lab;
        ix->cap = cap;
    }
    memcpy(ix->paths + ix->paths_len, rel, len);
    ix->offsets[ix->n] = (int64_t)ix->paths_len;
    ix->labels[ix->n++] = label;
    ix->paths_len += len;
    return DK_OK;
}

/* Adds the images below root/rel (rel names a class folder or a folder in
 * one), depth first in sorted order. */
static dk_status walk(folder_index *ix, const char *root, const char *rel, int32_t label,
                      int depth)
{
    if (depth > 32)
        return dk_fail(DK_ERR_IO, "ImageFolder: %s/%s: folders nested deeper than 32 levels "
                       "(a link loop?)", root, rel);
    char dir[4096], sub[4096];
    if (!join(dir, sizeof dir, root, rel))
        return too_long(root, rel);
    names entries = {0};
    dk_status s = list_dir(dir, false, &entries);
    for (size_t i = 0; s == DK_OK && i < entries.n; i++) {
        if (!join(sub, sizeof sub, rel, entries.v[i]) || !join(dir, sizeof dir, root, sub))
            s = too_long(root, rel);
        else if (is_dir(dir))
            s = walk(ix, root, sub, label, depth + 1);
        else if (is_jpeg_name(entries.v[i]))
            s = add_image(ix, sub, label);
    }
    names_fini(&entries);
    return s;
}

dk_status folder_index_scan(const char *root, folder_index *ix)
{
    *ix = (folder_index){0};
    names classes = {0};
    dk_status s = list_dir(root, true, &classes);
    if (s == DK_OK && classes.n == 0)
        s = dk_fail(DK_ERR_IO, "ImageFolder: %s has no class folders (expected "
                    "<root>/<class>/<image>.jpg)", root);
    for (size_t c = 0; s == DK_OK && c < classes.n; c++) {
        int64_t before = ix->n;
        s = walk(ix, root, classes.v[c], (int32_t)c, 0);
        if (s == DK_OK && ix->n == before)
            s = dk_fail(DK_ERR_IO, "ImageFolder: class folder %s/%s holds no .jpg or .jpeg "
                        "image", root, classes.v[c]);
    }
    if (s != DK_OK) {
        names_fini(&classes);
        folder_index_fini(ix);
        return s;
    }
    ix->classes = classes.v;
    ix->n_classes = (int64_t)classes.n;
    return DK_OK;
}

void folder_index_fini(folder_index *ix)
{
    for (int64_t i = 0; i < ix->n_classes; i++)
        dk_free(ix->classes[i]);
    dk_free(ix->classes);
    dk_free(ix->paths);
    dk_free(ix->offsets);
    dk_free(ix->labels);
    *ix = (folder_index){0};
}
