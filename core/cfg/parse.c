/* core/cfg/parse.c — YAML text to a config tree, through libyaml's event
 * parser.
 *
 * The event API (rather than libyaml's document loader) gives the exact
 * start mark of every scalar, map, list and key, which is what lets every
 * later message say file:line:col. Plain scalars are typed here (YAML 1.2
 * core schema); quoted ones are always strings. Aliases copy the anchored
 * node; `<<` merge keys are honoured; a second document, a duplicate key or
 * a non-scalar key is an error.
 */
#include "cfg_impl.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Deeper nesting than this is certainly not a config and would only risk
 * the C stack. */
#define MAX_DEPTH 512

/* An anchor keeps its own copy of the node, taken when the node is complete,
 * so later edits of the tree (merge keys) cannot leave it dangling. */
typedef struct anchor {
    char *name;
    dk_cfg *copy; /* NULL while the anchored node is still being parsed */
} anchor;

typedef struct ctx {
    yaml_parser_t parser;
    const char *name;
    anchor *anchors;
    size_t n_anchors, cap_anchors;
} ctx;

static int line_of(yaml_mark_t m)
{
    return (int)m.line + 1;
}

static int col_of(yaml_mark_t m)
{
    return (int)m.column + 1;
}

static dk_status syntax_error(ctx *c)
{
    yaml_parser_t *p = &c->parser;
    if (p->error == YAML_MEMORY_ERROR)
        return dk_fail(DK_ERR_NOMEM, "%s: out of memory while parsing YAML", c->name);
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_READER_ERROR)
        return dk_fail(DK_ERR_PARSE, "%s: %s (at byte %zu)", c->name, problem,
                       (size_t)p->problem_offset);
    if (p->context)
        return dk_fail(DK_ERR_PARSE, "%s:%d:%d: %s (%s at line %d, column %d)", c->name,
                       line_of(p->problem_mark), col_of(p->problem_mark), problem, p->context,
                       line_of(p->context_mark), col_of(p->context_mark));
    return dk_fail(DK_ERR_PARSE, "%s:%d:%d: %s", c->name, line_of(p->problem_mark),
                   col_of(p->problem_mark), problem);
}

static dk_status next(ctx *c, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&c->parser, ev))
        return syntax_error(c);
    return DK_OK;
}

/* Registers an anchor before its node is parsed; returns its slot or -1. */
static long add_anchor(ctx *c, const yaml_char_t *name)
{
    if (!name)
        return -1;
    if (c->n_anchors == c->cap_anchors) {
        size_t cap = c->cap_anchors ? c->cap_anchors * 2 : 8;
        anchor *a = realloc(c->anchors, cap * sizeof *a);
        DKH_ASSERT(a != NULL);
        c->anchors = a;
        c->cap_anchors = cap;
    }
    c->anchors[c->n_anchors] = (anchor){dkh_strdup((const char *)name), NULL};
    return (long)c->n_anchors++;
}

static void finish_anchor(ctx *c, long slot, const dk_cfg *node)
{
    if (slot >= 0 && node)
        c->anchors[slot].copy = dkh_cfgi_clone(node);
}

static dk_status parse_node(ctx *c, yaml_event_t *ev, int depth, dk_cfg **out);

/* Applies and removes the `<<` entries of a finished map: keys the map
 * itself gives win, and among several merged maps the earlier wins. */
static dk_status apply_merge_keys(ctx *c, dk_cfg *map)
{
    for (size_t i = 0; i < map->n;) {
        if (strcmp(map->ents[i].key, "<<") != 0) {
            i++;
            continue;
        }
        dk_cfg *src = dkh_cfgi_take(map, i);
        size_t n_srcs = src->kind == DK_CFG_LIST ? src->n : 1;
        for (size_t s = 0; s < n_srcs; s++) {
            dk_cfg *m = src->kind == DK_CFG_LIST ? src->ents[s].val : src;
            if (m->kind != DK_CFG_MAP) {
                dk_status st = dk_fail(DK_ERR_PARSE,
                                       "%s: the merge key '<<' needs a map or a "
                                       "list of maps",
                                       m->loc.where);
                dkh_cfg_free(src);
                return st;
            }
            for (size_t k = 0; k < m->n; k++)
                if (dkh_cfgi_find(map, m->ents[k].key) < 0)
                    dkh_cfgi_append(map, m->ents[k].key, &m->ents[k].kloc,
                                    dkh_cfgi_clone(m->ents[k].val));
        }
        dkh_cfg_free(src);
    }
    return DK_OK;
}

static dk_status parse_map(ctx *c, dk_cfg *map, int depth)
{
    bool has_merge = false;
    for (;;) {
        yaml_event_t kev;
        DK_TRY(next(c, &kev));
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            break;
        }
        if (kev.type != YAML_SCALAR_EVENT) {
            dk_status s = dk_fail(DK_ERR_PARSE, "%s:%d:%d: map keys must be plain strings", c->name,
                                  line_of(kev.start_mark), col_of(kev.start_mark));
            yaml_event_delete(&kev);
            return s;
        }
        dkh_loc kloc = {0};
        dkh_loc_set(&kloc, c->name, line_of(kev.start_mark), col_of(kev.start_mark));
        char *key = dkh_strdup((const char *)kev.data.scalar.value);
        bool merge = !strcmp(key, "<<") && kev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        yaml_event_delete(&kev);
        long dup = merge ? -1 : dkh_cfgi_find(map, key);
        dk_status s = DK_OK;
        if (dup >= 0)
            s = dk_fail(DK_ERR_PARSE, "%s: duplicate key '%s' (first given at %s)", kloc.where, key,
                        map->ents[dup].kloc.where);
        yaml_event_t vev;
        dk_cfg *val = NULL;
        if (s == DK_OK)
            s = next(c, &vev);
        if (s == DK_OK)
            s = parse_node(c, &vev, depth + 1, &val);
        if (s == DK_OK)
            dkh_cfgi_append(map, key, &kloc, val);
        has_merge |= merge;
        free(key);
        dkh_loc_fini(&kloc);
        if (s != DK_OK)
            return s;
    }
    return has_merge ? apply_merge_keys(c, map) : DK_OK;
}

static dk_status parse_list(ctx *c, dk_cfg *list, int depth)
{
    for (;;) {
        yaml_event_t ev;
        DK_TRY(next(c, &ev));
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return DK_OK;
        }
        dk_cfg *val = NULL;
        DK_TRY(parse_node(c, &ev, depth + 1, &val));
        dkh_cfgi_append(list, NULL, NULL, val);
    }
}

/* Parses the node that starts with *ev and consumes (deletes) *ev. */
static dk_status parse_node(ctx *c, yaml_event_t *ev, int depth, dk_cfg **out)
{
    int line = line_of(ev->start_mark), col = col_of(ev->start_mark);
    dk_status s = DK_OK;
    *out = NULL;
    if (depth > MAX_DEPTH) {
        yaml_event_delete(ev);
        return dk_fail(DK_ERR_PARSE, "%s:%d:%d: nesting deeper than %d levels", c->name, line, col,
                       MAX_DEPTH);
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        const char *text = (const char *)ev->data.scalar.value;
        bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ||
                     ev->data.scalar.style == YAML_ANY_SCALAR_STYLE;
        /* A plain scalar with an explicit tag (!!str 5) follows its tag. */
        const char *tag = (const char *)ev->data.scalar.tag;
        if (tag && !strcmp(tag, "tag:yaml.org,2002:str"))
            plain = false;
        *out = plain ? dkh_cfgi_new_plain(text, c->name, line, col)
                     : dkh_cfgi_new_string(text, c->name, line, col);
        finish_anchor(c, add_anchor(c, ev->data.scalar.anchor), *out);
        break;
    }
    case YAML_MAPPING_START_EVENT: {
        long slot = add_anchor(c, ev->data.mapping_start.anchor);
        *out = dkh_cfgi_new(DK_CFG_MAP, c->name, line, col);
        s = parse_map(c, *out, depth);
        if (s == DK_OK)
            finish_anchor(c, slot, *out);
        break;
    }
    case YAML_SEQUENCE_START_EVENT: {
        long slot = add_anchor(c, ev->data.sequence_start.anchor);
        *out = dkh_cfgi_new(DK_CFG_LIST, c->name, line, col);
        s = parse_list(c, *out, depth);
        if (s == DK_OK)
            finish_anchor(c, slot, *out);
        break;
    }
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        const anchor *a = NULL;
        for (size_t i = c->n_anchors; i-- > 0;)
            if (!strcmp(c->anchors[i].name, name)) {
                a = &c->anchors[i];
                break;
            }
        if (!a)
            s = dk_fail(DK_ERR_PARSE, "%s:%d:%d: unknown alias '*%s'", c->name, line, col, name);
        else if (!a->copy)
            s = dk_fail(DK_ERR_PARSE, "%s:%d:%d: alias '*%s' refers to a node that contains it",
                        c->name, line, col, name);
        else {
            *out = dkh_cfgi_clone(a->copy);
            dkh_loc_set(&(*out)->loc, c->name, line, col);
        }
        break;
    }
    default:
        s = dk_fail(DK_ERR_PARSE, "%s:%d:%d: unexpected YAML event", c->name, line, col);
        break;
    }
    yaml_event_delete(ev);
    if (s != DK_OK) {
        dkh_cfg_free(*out);
        *out = NULL;
    }
    return s;
}

static dk_status parse_stream(ctx *c, dk_cfg **out)
{
    yaml_event_t ev;
    DK_TRY(next(c, &ev)); /* stream start */
    yaml_event_delete(&ev);
    DK_TRY(next(c, &ev));
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        *out = dkh_cfgi_new_plain("", c->name, 1, 1);
        return DK_OK;
    }
    yaml_event_delete(&ev); /* document start */
    DK_TRY(next(c, &ev));
    DK_TRY(parse_node(c, &ev, 0, out));
    dk_status s = next(c, &ev); /* document end */
    if (s == DK_OK) {
        yaml_event_delete(&ev);
        s = next(c, &ev);
    }
    if (s == DK_OK) {
        if (ev.type != YAML_STREAM_END_EVENT)
            s = dk_fail(DK_ERR_PARSE,
                        "%s:%d:%d: a second YAML document; a config file holds exactly one",
                        c->name, line_of(ev.start_mark), col_of(ev.start_mark));
        yaml_event_delete(&ev);
    }
    if (s != DK_OK) {
        dkh_cfg_free(*out);
        *out = NULL;
    }
    return s;
}

dk_status dkh_cfgi_parse(const char *text, size_t len, const char *name, dk_cfg **out)
{
    ctx c = {.name = name};
    *out = NULL;
    if (!yaml_parser_initialize(&c.parser))
        return dk_fail(DK_ERR_NOMEM, "%s: cannot initialise the YAML parser", name);
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)text, len);
    dk_status s = parse_stream(&c, out);
    yaml_parser_delete(&c.parser);
    for (size_t i = 0; i < c.n_anchors; i++) {
        free(c.anchors[i].name);
        dkh_cfg_free(c.anchors[i].copy);
    }
    free(c.anchors);
    return s;
}

dk_status dkh_cfg_parse(const char *text, const char *name, dk_cfg **out)
{
    if (!text)
        return dk_fail(DK_ERR_ARG, "dkh_cfg_parse: NULL text");
    return dkh_cfgi_parse(text, strlen(text), name ? name : "<string>", out);
}
