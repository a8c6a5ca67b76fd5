/* core/cfg/cfg_impl.h — the config tree's layout, shared by the files of
 * core/cfg only.
 *
 * A node is a tagged scalar (its source text plus the typed value) or a
 * container. Maps and lists share one entry array; list entries have no key.
 * Every node and every map key carries its own location, and every node
 * points at its parent so dk_cfg_path can be computed from any node.
 */
#ifndef DKH_CFG_IMPL_H
#define DKH_CFG_IMPL_H

#include "cfg.h"

#include <dk/status.h>

/* Where a node or key came from. line == 0 means "no position" (overrides,
 * defaults): then `where` is just the file field, e.g. "<cfg-options>". */
typedef struct dkh_loc {
    char *file;
    int line;
    int col;
    char *where; /* "file:line:col" or file; owned */
} dkh_loc;

typedef struct dkh_cfg_entry {
    char *key; /* NULL in lists */
    dkh_loc kloc;
    dk_cfg *val;
} dkh_cfg_entry;

struct dk_cfg {
    dk_cfg_kind kind;
    dk_cfg *parent;
    char *text; /* scalars: the source text (a string's value); NULL for containers */
    union {
        bool b;
        int64_t i;
        double f;
    } v;
    dkh_cfg_entry *ents; /* maps and lists */
    size_t n, cap;
    dkh_loc loc;
    char *path; /* dk_cfg_path cache; cleared whenever the node moves */
    char *base_path; /* a detached clone's root: the key path its original had */
    int rstate; /* interpolation: 0 not yet, 1 in progress, 2 done */
};

/* ---- nodes (node.c) ---------------------------------------------------- */

/* New nodes at loc (file, line, col); file is copied. Abort on no memory. */
dk_cfg *dkh_cfgi_new(dk_cfg_kind kind, const char *file, int line, int col);
/* A scalar typed from plain YAML text (null, bool, int, float, else string). */
dk_cfg *dkh_cfgi_new_plain(const char *text, const char *file, int line, int col);
dk_cfg *dkh_cfgi_new_string(const char *text, const char *file, int line, int col);

/* How plain YAML text types (YAML 1.2 core schema). For INT and FLOAT the
 * value is stored through iv / fv (either may be NULL). */
dk_cfg_kind dkh_cfgi_classify(const char *text, int64_t *iv, double *fv);

void dkh_loc_set(dkh_loc *loc, const char *file, int line, int col);
void dkh_loc_copy(dkh_loc *dst, const dkh_loc *src);
void dkh_loc_fini(dkh_loc *loc);

/* Appends a value (takes ownership); key and its location are copied, key is
 * NULL for lists. */
void dkh_cfgi_append(dk_cfg *c, const char *key, const dkh_loc *kloc, dk_cfg *val);
/* Index of key in a map, or -1. */
long dkh_cfgi_find(const dk_cfg *map, const char *key);
/* Replaces entry i's value (takes ownership; frees the old one). */
void dkh_cfgi_replace(dk_cfg *c, size_t i, dk_cfg *val);
/* Removes entry i, freeing key and value. */
void dkh_cfgi_remove(dk_cfg *c, size_t i);
/* Detaches entry i's value without freeing it; the entry is removed. */
dk_cfg *dkh_cfgi_take(dk_cfg *c, size_t i);
/* Moves src's content into dst (dst's old content is freed); dst keeps its
 * parent, and src (now empty) is freed. */
void dkh_cfgi_become(dk_cfg *dst, dk_cfg *src);
/* Sets every node's location in the tree to file with no position. */
void dkh_cfgi_relocate(dk_cfg *node, const char *file);
/* Drops cached paths in the subtree (after the subtree moved). */
void dkh_cfgi_forget_paths(dk_cfg *node);
/* Deep copy, aborting on no memory. */
dk_cfg *dkh_cfgi_clone(const dk_cfg *node);

/* Splits a dotted path into segments ("a.\"b.c\".1" -> a, b.c, 1). On a
 * malformed path returns false and sets *err to a new message. Segments are
 * new; free with dkh_cfgi_free_segs. */
bool dkh_cfgi_split_path(const char *path, char ***segs, size_t *n, char **err);
void dkh_cfgi_free_segs(char **segs, size_t n);
/* Parses a list index segment: decimal digits only. */
bool dkh_cfgi_index(const char *seg, size_t *out);

/* A short description of a value for messages: "string 'fast'", "int 5",
 * "a map". New string. */
char *dkh_cfgi_describe(const dk_cfg *node);
/* Name of a kind: "null", "bool", "int", ... */
const char *dkh_cfgi_kind_name(dk_cfg_kind k);

/* ---- YAML (parse.c) ------------------------------------------------------ */

/* Parses text (len bytes) with `name` in locations. Text with no document
 * at all (empty, or only comments) yields a null node at 1:1. */
dk_status dkh_cfgi_parse(const char *text, size_t len, const char *name, dk_cfg **out);

/* ---- checks shared by validation and schema checks (validate.c) -------- */

/* Checks a value against one parameter's own rules (type, null, range,
 * choices, list elements), not descending into nested objects. Returns a new
 * message or NULL when fine. subject names the value in range and choice
 * messages (e.g. "21" or "default '21'"). */
char *dkh_cfgi_check_value(const dk_param *p, const dk_cfg *v, const char *subject);

#endif /* DKH_CFG_IMPL_H */
