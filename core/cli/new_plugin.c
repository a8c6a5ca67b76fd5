/* core/cli/new_plugin.c — `dkhost new-plugin --kind KIND NAME DIR`.
 *
 * Writes a plugin skeleton a third party builds out of tree: the C source of
 * one working type of the chosen kind with its parameter schema, a
 * CMakeLists.txt (find_package(dk)), a Makefile (pkg-config) and an example
 * config. The files come from sdk/template/, compiled into libdk
 * (template_files.h), so this works from the build tree and from an
 * installed or relocated copy alike. In them the placeholders TemplateName,
 * template_name and templatename become NAME, its snake_case form (the file
 * names, the plugin name and the C identifiers) and its lower-case form (the
 * prefix a metric's results are logged under).
 */
#include "new_plugin.h"

#include "../util/util.h"
#include "template_files.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* docs/cli.md's exit codes (main.c uses the same). */

/* The kinds with a template: sdk/template/<kind>.c and <kind>.yaml. */
static const char *const kinds[] = {"backbone", "neck", "head", "hook", "transform", "metric"};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

/* Kinds the host knows that have no template yet: named in the message so
 * that "loss" is not answered with "did you mean 'hook'?". */
static const char *const other_kinds[] = {"model", "loss", "dataset", "optimizer", "lr_scheduler"};

/* Snake names CMake and make keep for themselves: the generated
 * CMakeLists.txt would name its target so. */
static const char *const build_reserved[] = {"all",           "clean",     "help",   "install",
                                             "test",          "package",   "depend", "edit_cache",
                                             "rebuild_cache", "preinstall"};

/* NAME is the type name a config's `type:` says; its snake_case form names
 * files and C identifiers, so it must be a C identifier too. */
#define MAX_NAME 64

static const char usage[] =
    "Usage: dkhost new-plugin --kind KIND NAME DIR\n"
    "  KIND  backbone, neck, head, hook, transform or metric\n"
    "  NAME  the new type's name, a CamelCase word of letters and digits (MyNet)\n"
    "  DIR   the folder to create (it may exist if it is empty)\n";

static int usage_error(const char *fmt, const char *arg, const char *hint)
{
    fprintf(stderr, "dkhost: new-plugin: ");
    fprintf(stderr, fmt, arg);
    if (hint)
        fprintf(stderr, " (did you mean '%s'?)", hint);
    fprintf(stderr, "\n%s", usage);
    return DKH_EXIT_USAGE;
}

static void put_kinds(dkh_buf *b)
{
    for (size_t i = 0; i < N_KINDS; i++)
        dkh_buf_printf(b, "%s%s", i ? (i + 1 == N_KINDS ? " and " : ", ") : "", kinds[i]);
}

static int kind_error(const char *kind)
{
    dkh_buf msg = DKH_BUF_INIT;
    bool known = false;
    for (size_t i = 0; i < sizeof other_kinds / sizeof other_kinds[0]; i++)
        known |= strcmp(kind, other_kinds[i]) == 0;
    if (known)
        dkh_buf_printf(&msg, "there is no template for kind '%s' yet; templates exist for ", kind);
    else
        dkh_buf_printf(&msg, "unknown kind '%s'; templates exist for ", kind);
    put_kinds(&msg);
    const char *hint = known ? NULL : dkh_closest(kind, kinds, N_KINDS);
    int rc = usage_error("%s", dkh_buf_str(&msg), hint);
    dkh_buf_fini(&msg);
    return rc;
}

/* ---- names ------------------------------------------------------------------------- */

/* A CamelCase word: a letter, then letters and digits. */
static bool is_type_name(const char *s)
{
    if (!isalpha((unsigned char)*s) || strlen(s) > MAX_NAME)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s))
            return false;
    return true;
}

/* What a bad name was probably meant to be: its words (runs of letters and
 * digits) capitalised and joined, "my-net" -> "MyNet"; NULL when nothing
 * usable is left. New, free with free(). */
static char *suggest_name(const char *s)
{
    dkh_buf b = DKH_BUF_INIT;
    bool word_start = true;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!isalnum(c) || c > 127) {
            word_start = true;
            continue;
        }
        if (b.len == 0 && !isalpha(c))
            continue;
        dkh_buf_putc(&b, word_start ? (char)toupper(c) : (char)c);
        word_start = false;
    }
    char *out = dkh_buf_take(&b);
    if (out && (!*out || !is_type_name(out))) {
        free(out);
        out = NULL;
    }
    return out;
}

/* "MyNet" -> "my_net", "MLPHead" -> "mlp_head", "ResNet50" -> "res_net50". New. */
static char *snake_case(const char *name)
{
    dkh_buf b = DKH_BUF_INIT;
    for (size_t i = 0; name[i]; i++) {
        unsigned char c = (unsigned char)name[i];
        if (isupper(c) && i > 0) {
            unsigned char prev = (unsigned char)name[i - 1], next = (unsigned char)name[i + 1];
            if (islower(prev) || isdigit(prev) || (isupper(prev) && islower(next)))
                dkh_buf_putc(&b, '_');
        }
        dkh_buf_putc(&b, (char)tolower(c));
    }
    return dkh_buf_take(&b);
}

static char *lower_case(const char *name)
{
    char *s = dkh_strdup(name);
    for (char *p = s; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return s;
}

/* ---- the template -------------------------------------------------------------------- */

static const dkh_template_file *template_file(const char *name)
{
    for (size_t i = 0; i < dkh_n_template_files; i++)
        if (strcmp(dkh_template_files[i].name, name) == 0)
            return &dkh_template_files[i];
    return NULL;
}

typedef struct names {
    const char *type;  /* NAME: "MyNet" */
    const char *snake; /* "my_net" */
    const char *lower; /* "mynet" */
} names;

/* The template text with its placeholders replaced, into out. */
static void fill(dkh_buf *out, const dkh_template_file *f, const names *n)
{
    static const char *const holders[] = {"TemplateName", "template_name", "templatename"};
    const char *values[] = {n->type, n->snake, n->lower};
    const char *p = f->data, *end = f->data + f->size;
    while (p < end) {
        size_t i = 0;
        while (i < 3 && strncmp(p, holders[i], strlen(holders[i])) != 0)
            i++;
        if (i < 3) {
            dkh_buf_puts(out, values[i]);
            p += strlen(holders[i]);
        } else {
            dkh_buf_putc(out, *p++);
        }
    }
}

/* ---- files --------------------------------------------------------------------------- */

static int file_error(const char *what, const char *path)
{
    fprintf(stderr, "dkhost: new-plugin: %s %s: %s\n", what, path, strerror(errno));
    return DKH_EXIT_DATA;
}

/* mkdir -p. */
static int make_dirs(const char *dir)
{
    char *path = dkh_strdup(dir);
    int rc = DKH_EXIT_OK;
    for (char *p = path + 1; rc == DKH_EXIT_OK; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            rc = file_error("cannot create", path);
        *p = saved;
        if (!saved)
            break;
    }
    free(path);
    return rc;
}

/* DIR must be new, or an empty folder: nothing of the user's is overwritten. */
static int prepare_dir(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT)
            return file_error("cannot use", dir);
        return make_dirs(dir);
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "dkhost: new-plugin: %s exists and is not a folder\n", dir);
        return DKH_EXIT_DATA;
    }
    DIR *d = opendir(dir);
    if (!d)
        return file_error("cannot read", dir);
    const char *first = NULL;
    for (struct dirent *e; !first && (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            first = e->d_name;
    int rc = DKH_EXIT_OK;
    if (first) {
        fprintf(stderr,
                "dkhost: new-plugin: %s already exists and is not empty (it holds '%s'); "
                "give a new or empty folder\n",
                dir, first);
        rc = DKH_EXIT_DATA;
    }
    closedir(d);
    return rc;
}

/* Writes text to dir/name, refusing to replace a file. */
static int write_new(const char *dir, const char *name, const dkh_buf *text)
{
    char *path = dkh_asprintf("%s/%s", dir, name);
    int rc = DKH_EXIT_OK;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) {
        rc = file_error("cannot create", path);
    } else {
        const char *p = dkh_buf_str(text);
        for (size_t left = text->len; rc == DKH_EXIT_OK && left > 0;) {
            ssize_t n = write(fd, p, left);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                rc = file_error("cannot write", path);
            else {
                p += n;
                left -= (size_t)n;
            }
        }
        if (close(fd) != 0 && rc == DKH_EXIT_OK)
            rc = file_error("cannot write", path);
    }
    free(path);
    return rc;
}

static int write_plugin(const char *kind, const names *n, const char *dir)
{
    char *src = dkh_asprintf("%s.c", kind), *cfg = dkh_asprintf("%s.yaml", kind);
    char *out_src = dkh_asprintf("%s.c", n->snake), *out_cfg = dkh_asprintf("%s.yaml", n->snake);
    const char *from[] = {src, cfg, "CMakeLists.txt", "Makefile"};
    const char *to[] = {out_src, out_cfg, "CMakeLists.txt", "Makefile"};
    int rc = DKH_EXIT_OK;
    for (size_t i = 0; rc == DKH_EXIT_OK && i < 4; i++) {
        const dkh_template_file *f = template_file(from[i]);
        DKH_ASSERT(f); /* embed_template.cmake packs every file of sdk/template */
        dkh_buf text = DKH_BUF_INIT;
        fill(&text, f, n);
        rc = write_new(dir, to[i], &text);
        dkh_buf_fini(&text);
    }
    if (rc == DKH_EXIT_OK) {
        printf("created %s: a %s plugin with the type %s\n", dir, kind, n->type);
        printf("  %-16s the plugin: the type, its parameter schema and its functions\n", out_src);
        printf("  %-16s an example config that uses %s\n", out_cfg, n->type);
        printf("  %-16s builds it with find_package(dk)\n", "CMakeLists.txt");
        printf("  %-16s builds it with pkg-config\n", "Makefile");
        printf("next:\n"
               "  cd %s && make        (or: cmake -S . -B build && cmake --build build)\n"
               "  dkhost --plugins . list-registry --kind %s\n"
               "  dkhost --plugins . check %s\n",
               dir, kind, out_cfg);
    }
    free(src);
    free(cfg);
    free(out_src);
    free(out_cfg);
    return rc;
}

/* ---- the command --------------------------------------------------------------------- */

int dkh_cli_new_plugin(int argc, char **argv)
{
    static const char *const options[] = {"--kind", "--help"};
    const char *kind = NULL, *pos[2] = {NULL, NULL};
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("%s\nWrites DIR/<name>.c (the type and its parameter schema), DIR/<name>.yaml\n"
                   "(an example config), DIR/CMakeLists.txt and DIR/Makefile, where <name> is\n"
                   "NAME in snake_case. Exit codes: 0 written, 2 usage error, 5 DIR exists and\n"
                   "is not empty, or a file cannot be written.\n",
                   usage);
            return DKH_EXIT_OK;
        }
        if (strcmp(a, "--kind") == 0) {
            if (i + 1 >= argc)
                return usage_error("option %s needs a value", a, NULL);
            kind = argv[++i];
        } else if (strncmp(a, "--kind=", 7) == 0) {
            kind = a + 7;
        } else if (a[0] == '-' && a[1] != '\0') {
            return usage_error("unknown option '%s'", a, dkh_closest(a, options, 2));
        } else if (n_pos < 2) {
            pos[n_pos++] = a;
        } else {
            return usage_error("unexpected argument '%s'", a, NULL);
        }
    }
    if (!kind)
        return usage_error("%s", "needs --kind KIND", NULL);
    bool kind_ok = false;
    for (size_t i = 0; i < N_KINDS; i++)
        kind_ok |= strcmp(kind, kinds[i]) == 0;
    if (!kind_ok)
        return kind_error(kind);
    if (n_pos < 2)
        return usage_error("%s", n_pos == 0 ? "needs a NAME and a DIR" : "needs a DIR", NULL);

    const char *name = pos[0], *dir = pos[1];
    if (!*dir)
        return usage_error("%s", "DIR is empty", NULL);
    if (!is_type_name(name)) {
        char *hint = suggest_name(name);
        int rc = usage_error(strlen(name) > MAX_NAME
                                 ? "'%s' is not a valid type name: it is longer than 64 characters"
                                 : "'%s' is not a valid type name: use a CamelCase word of "
                                   "letters and digits that starts with a letter",
                             name, hint && strlen(name) <= MAX_NAME ? hint : NULL);
        free(hint);
        return rc;
    }
    names n = {.type = name, .snake = snake_case(name), .lower = lower_case(name)};
    int rc = DKH_EXIT_OK;
    if (strcmp(n.snake, "dk") == 0 || strncmp(n.snake, "dk_", 3) == 0)
        rc = usage_error("'%s' is not a valid type name: its C prefix would be dk_, which is "
                         "the SDK's",
                         name, NULL);
    for (size_t i = 0; rc == DKH_EXIT_OK && i < sizeof build_reserved / sizeof build_reserved[0]; i++)
        if (strcmp(n.snake, build_reserved[i]) == 0)
            rc = usage_error("'%s' is not a valid type name: CMake keeps the target name it "
                             "would give",
                             name, NULL);
    if (rc == DKH_EXIT_OK)
        rc = prepare_dir(dir);
    if (rc == DKH_EXIT_OK)
        rc = write_plugin(kind, &n, dir);
    free((char *)n.snake);
    free((char *)n.lower);
    return rc;
}
