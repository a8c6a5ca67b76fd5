/* tests/plugin/test_abi_layout.c — the plugin ABI against its committed record.
 *
 * Built from the SDK headers alone, this test writes down the layout of
 * everything a plugin and the host exchange: the size, alignment and field
 * offsets of every ABI structure, each host API table entry (its slot, its
 * offset and its C signature), and the values of the enums and flags that
 * cross the boundary. It compares that with tests/plugin/abi_layout.txt:
 *
 *   - an entry of the record that changed or vanished fails (a moved field, a
 *     resized one, a reordered or retyped API entry, a renumbered enum);
 *   - appending passes: a new field after the recorded end of a structure that
 *     carries its own size, a new API entry at the end, a new enum value above
 *     the recorded ones, a new structure or constant;
 *   - a structure passed by value (no size field) may not grow at all.
 *
 * The field lists below must cover each structure to its end, so a field
 * appended to a header without being listed here fails too. After an
 * intended, append-only change, rewrite the record with DK_UPDATE_GOLDEN=1
 * and commit it with the change that bumps DK_ABI_MINOR.
 */
#include <dk/dk.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* clang-format off: cmocka needs the headers above first */
#include <cmocka.h>
/* clang-format on */

#include "dk_test.h"

#define RECORD DK_TEST_SOURCE_DIR "/abi_layout.txt"

/* ---- the layout as this build sees it --------------------------------- */

typedef struct field {
    const char *name;
    size_t offset, size;
} field;

typedef struct layout {
    const char *name;
    size_t size, align;
    bool grows; /* carries its own size, so fields may be appended */
    const field *fields;
    size_t n_fields;
} layout;

#define F(T, f)                                                                                    \
    {                                                                                              \
#f, offsetof(T, f), sizeof(((T *)0)->f)                                                    \
    }
#define HEAD(T) F(T, struct_size), F(T, create), F(T, destroy)
#define FIELDS(T, ...) static const field T##_fields[] = {__VA_ARGS__}
#define STRUCT(T, grows)                                                                           \
    {                                                                                              \
#T, sizeof(T), _Alignof(T), grows, T##_fields, sizeof T##_fields / sizeof(field)           \
    }
#define HOOK_SLOT_(point) F(dk_hook_vtable, point),

FIELDS(dk_plugin_desc, F(dk_plugin_desc, magic), F(dk_plugin_desc, struct_size),
       F(dk_plugin_desc, abi_major), F(dk_plugin_desc, abi_minor),
       F(dk_plugin_desc, requires_minor), F(dk_plugin_desc, reserved), F(dk_plugin_desc, flags),
       F(dk_plugin_desc, name), F(dk_plugin_desc, version), F(dk_plugin_desc, summary),
       F(dk_plugin_desc, license), F(dk_plugin_desc, source), F(dk_plugin_desc, init),
       F(dk_plugin_desc, shutdown), F(dk_plugin_desc, build));
FIELDS(dk_param, F(dk_param, name), F(dk_param, type), F(dk_param, def), F(dk_param, flags),
       F(dk_param, min), F(dk_param, max), F(dk_param, choices), F(dk_param, elem),
       F(dk_param, kind), F(dk_param, doc), F(dk_param, fields), F(dk_param, n_fields));
FIELDS(dk_type_info, F(dk_type_info, struct_size), F(dk_type_info, kind), F(dk_type_info, name),
       F(dk_type_info, summary), F(dk_type_info, iface), F(dk_type_info, vtable),
       F(dk_type_info, params), F(dk_type_info, n_params), F(dk_type_info, param_size));
FIELDS(dk_vtable, HEAD(dk_vtable));
FIELDS(dk_module_vtable, HEAD(dk_module_vtable), F(dk_module_vtable, forward));
FIELDS(dk_dataset_vtable, HEAD(dk_dataset_vtable), F(dk_dataset_vtable, len),
       F(dk_dataset_vtable, get), F(dk_dataset_vtable, class_name));
FIELDS(dk_transform_vtable, HEAD(dk_transform_vtable), F(dk_transform_vtable, apply));
FIELDS(dk_metric_vtable, HEAD(dk_metric_vtable), F(dk_metric_vtable, process),
       F(dk_metric_vtable, compute), F(dk_metric_vtable, reset));
FIELDS(dk_optimizer_vtable, HEAD(dk_optimizer_vtable), F(dk_optimizer_vtable, n_state),
       F(dk_optimizer_vtable, state_names), F(dk_optimizer_vtable, base),
       F(dk_optimizer_vtable, step), F(dk_optimizer_vtable, n_state_used));
FIELDS(dk_lr_scheduler_vtable, HEAD(dk_lr_scheduler_vtable), F(dk_lr_scheduler_vtable, value));
FIELDS(dk_hook_vtable, HEAD(dk_hook_vtable), F(dk_hook_vtable, priority),
       DK_HOOK_POINT_LIST(HOOK_SLOT_));
/* Handed to optimizers in arrays the host builds, at the host's size. */
FIELDS(dk_optim_param, F(dk_optim_param, name), F(dk_optim_param, param), F(dk_optim_param, grad),
       F(dk_optim_param, state), F(dk_optim_param, lr), F(dk_optim_param, weight_decay),
       F(dk_optim_param, momentum));
FIELDS(dk_op_info, F(dk_op_info, struct_size), F(dk_op_info, flags), F(dk_op_info, name),
       F(dk_op_info, summary), F(dk_op_info, n_in), F(dk_op_info, kernel_size),
       F(dk_op_info, infer), F(dk_op_info, backward), F(dk_op_info, kernels),
       F(dk_op_info, n_kernels), F(dk_op_info, reserved), F(dk_op_info, user_data));
FIELDS(dk_op_kernel, F(dk_op_kernel, device_type), F(dk_op_kernel, reserved),
       F(dk_op_kernel, forward), F(dk_op_kernel, backward));
FIELDS(dk_op_ctx, F(dk_op_ctx, struct_size), F(dk_op_ctx, op), F(dk_op_ctx, name),
       F(dk_op_ctx, attrs), F(dk_op_ctx, attrs_size), F(dk_op_ctx, user_data),
       F(dk_op_ctx, stream));
FIELDS(dk_op_meta, F(dk_op_meta, dtype), F(dk_op_meta, ndim), F(dk_op_meta, shape));
FIELDS(dk_op_shapes, F(dk_op_shapes, struct_size), F(dk_op_shapes, n_aux), F(dk_op_shapes, out));
FIELDS(dk_op_grad, F(dk_op_grad, struct_size), F(dk_op_grad, n_in), F(dk_op_grad, in),
       F(dk_op_grad, out), F(dk_op_grad, n_aux), F(dk_op_grad, aux), F(dk_op_grad, grad_out),
       F(dk_op_grad, needs));
FIELDS(dk_device, F(dk_device, type), F(dk_device, index));
FIELDS(dk_rng, F(dk_rng, key), F(dk_rng, counter));
FIELDS(dk_memory_stats, F(dk_memory_stats, current), F(dk_memory_stats, peak),
       F(dk_memory_stats, cached));
FIELDS(dk_init, F(dk_init, kind), F(dk_init, fan_out), F(dk_init, a), F(dk_init, b));
/* The API table's entries are listed one by one as "api" lines below. */
FIELDS(dk_host_api, F(dk_host_api, struct_size), F(dk_host_api, abi_major),
       F(dk_host_api, abi_minor));

static const layout structs[] = {
    STRUCT(dk_plugin_desc, true),      STRUCT(dk_param, true),
    STRUCT(dk_type_info, true),        STRUCT(dk_vtable, true),
    STRUCT(dk_module_vtable, true),    STRUCT(dk_dataset_vtable, true),
    STRUCT(dk_transform_vtable, true), STRUCT(dk_metric_vtable, true),
    STRUCT(dk_optimizer_vtable, true), STRUCT(dk_lr_scheduler_vtable, true),
    STRUCT(dk_hook_vtable, true),      STRUCT(dk_optim_param, false),
    STRUCT(dk_op_info, true),          STRUCT(dk_op_kernel, true),
    STRUCT(dk_op_ctx, true),           STRUCT(dk_op_meta, false),
    STRUCT(dk_op_shapes, true),        STRUCT(dk_op_grad, true),
    STRUCT(dk_device, false),          STRUCT(dk_rng, false),
    STRUCT(dk_memory_stats, false),    STRUCT(dk_init, false),
    STRUCT(dk_host_api, true),
};
#define N_STRUCTS (sizeof structs / sizeof structs[0])

typedef struct api_entry {
    const char *name, *ret, *params;
    size_t offset;
} api_entry;

#define API_F_(attr, r, n, p, a) {#n, #r, #p, offsetof(dk_host_api, n)},
#define API_V_(n, p, a) {#n, "void", #p, offsetof(dk_host_api, n)},
static const api_entry api[] = {DK_HOST_API_LIST(API_F_, API_V_)};
#define N_API (sizeof api / sizeof api[0])

typedef struct constant {
    const char *group, *name;
    long long value;
} constant;

#define C(group, e)                                                                                \
    {                                                                                              \
        group, #e, (long long)(e)                                                                  \
    }
#define STATUS_(name, text) C("dk_status", DK_##name),
#define DTYPE_(e, name, size) C("dk_dtype", DK_DTYPE_##e),
#define PRIORITY_(name, value) {"hook_priority", #name, value},
#define KIND_(kind, iface) {"builtin_kind", #kind, iface},
static const constant constants[] = {
    DK_STATUS_LIST(STATUS_) DK_DTYPE_LIST(DTYPE_) DK_HOOK_PRIORITY_LIST(PRIORITY_)
        DK_BUILTIN_KIND_LIST(KIND_) C("dk_param_type", DK_PARAM_ANY),
    C("dk_param_type", DK_PARAM_INT),
    C("dk_param_type", DK_PARAM_FLOAT),
    C("dk_param_type", DK_PARAM_BOOL),
    C("dk_param_type", DK_PARAM_STRING),
    C("dk_param_type", DK_PARAM_LIST),
    C("dk_param_type", DK_PARAM_MAP),
    C("dk_param_type", DK_PARAM_OBJECT),
    C("dk_param_type", DK_PARAM_OBJECT_LIST),
    C("dk_param_type", DK_PARAM_OBJECT_MAP),
    C("dk_param_type", DK_PARAM_STRUCT),
    C("dk_iface", DK_IFACE_MODULE),
    C("dk_iface", DK_IFACE_DATASET),
    C("dk_iface", DK_IFACE_TRANSFORM),
    C("dk_iface", DK_IFACE_HOOK),
    C("dk_iface", DK_IFACE_METRIC),
    C("dk_iface", DK_IFACE_OPTIMIZER),
    C("dk_iface", DK_IFACE_LR_SCHEDULER),
    C("dk_log_level", DK_LOG_DEBUG),
    C("dk_log_level", DK_LOG_INFO),
    C("dk_log_level", DK_LOG_WARN),
    C("dk_log_level", DK_LOG_ERROR),
    C("dk_cfg_kind", DK_CFG_NULL),
    C("dk_cfg_kind", DK_CFG_BOOL),
    C("dk_cfg_kind", DK_CFG_INT),
    C("dk_cfg_kind", DK_CFG_FLOAT),
    C("dk_cfg_kind", DK_CFG_STRING),
    C("dk_cfg_kind", DK_CFG_LIST),
    C("dk_cfg_kind", DK_CFG_MAP),
    C("dk_device_type", DK_DEVICE_CPU),
    C("dk_device_type", DK_DEVICE_CUDA),
    C("dk_value_kind", DK_VALUE_NONE),
    C("dk_value_kind", DK_VALUE_TENSOR),
    C("dk_value_kind", DK_VALUE_NUMBER),
    C("dk_init_kind", DK_INIT_ZEROS),
    C("dk_init_kind", DK_INIT_CONSTANT),
    C("dk_init_kind", DK_INIT_UNIFORM),
    C("dk_init_kind", DK_INIT_NORMAL),
    C("dk_init_kind", DK_INIT_KAIMING_UNIFORM),
    C("dk_init_kind", DK_INIT_KAIMING_NORMAL),
    C("dk_init_kind", DK_INIT_XAVIER_UNIFORM),
    C("dk_init_kind", DK_INIT_XAVIER_NORMAL),
    C("dk_init_kind", DK_INIT_FAN_IN_UNIFORM),
    C("dk_forward_mode", DK_MODE_TENSOR),
    C("dk_forward_mode", DK_MODE_LOSS),
    C("dk_forward_mode", DK_MODE_PREDICT),
    C("dk_runner_phase", DK_PHASE_TRAIN),
    C("dk_runner_phase", DK_PHASE_VAL),
    C("dk_runner_phase", DK_PHASE_TEST),
    C("flag", DK_PLUGIN_MAGIC),
    C("flag", DK_PLUGIN_UNLOADABLE),
    C("flag", DK_PARAM_REQUIRED),
    C("flag", DK_PARAM_NULLABLE),
    C("flag", DK_OP_SAVE_OUT),
    C("flag", DK_OP_STRIDED),
    C("limit", DK_MAX_DIMS),
    C("limit", DK_OP_MAX_IN),
    C("limit", DK_OP_MAX_AUX),
    C("limit", DK_ABI_MAJOR),
};
#define N_CONSTANTS (sizeof constants / sizeof constants[0])

/* ---- the record: one entry a line, "<key> <value>" ---------------------- */

typedef struct entry {
    char *key;   /* "struct dk_x", "field dk_x.f", "api 12", "const dk_status.DK_OK" */
    char *value; /* the rest of the line */
} entry;

typedef struct record {
    entry *e;
    size_t n, cap;
} record;

static void add(record *r, const char *key, const char *fmt, ...)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 256;
        r->e = realloc(r->e, r->cap * sizeof *r->e);
        assert_non_null(r->e);
    }
    char value[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    r->e[r->n].key = strdup(key);
    r->e[r->n].value = strdup(value);
    r->n++;
}

static void record_free(record *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->e[i].key);
        free(r->e[i].value);
    }
    free(r->e);
    *r = (record){0};
}

static const entry *find(const record *r, const char *key)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->e[i].key, key) == 0)
            return &r->e[i];
    return NULL;
}

/* Squeezes runs of blanks so a reformatted header does not read as a change. */
static void squeeze(char *s)
{
    char *w = s;
    for (const char *p = s; *p; p++)
        if (!(*p == ' ' && (w == s || w[-1] == ' ')))
            *w++ = *p;
    if (w > s && w[-1] == ' ')
        w--;
    *w = '\0';
}

static void current_layout(record *r)
{
    char key[256];
    for (size_t i = 0; i < N_STRUCTS; i++) {
        const layout *l = &structs[i];
        snprintf(key, sizeof key, "struct %s", l->name);
        add(r, key, "size=%zu align=%zu %s", l->size, l->align, l->grows ? "grows" : "fixed");
        for (size_t k = 0; k < l->n_fields; k++) {
            snprintf(key, sizeof key, "field %s.%s", l->name, l->fields[k].name);
            add(r, key, "offset=%zu size=%zu", l->fields[k].offset, l->fields[k].size);
        }
    }
    for (size_t i = 0; i < N_API; i++) {
        snprintf(key, sizeof key, "api %zu", i);
        char sig[400];
        snprintf(sig, sizeof sig, "%s offset=%zu %s %s", api[i].name, api[i].offset, api[i].ret,
                 api[i].params);
        squeeze(sig);
        add(r, key, "%s", sig);
    }
    for (size_t i = 0; i < N_CONSTANTS; i++) {
        snprintf(key, sizeof key, "const %s.%s", constants[i].group, constants[i].name);
        add(r, key, "value=%lld", constants[i].value);
    }
}

static void load_record(const char *path, record *r)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s (run with DK_UPDATE_GOLDEN=1 to write it)", path);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        /* The key is the first two words. */
        char *sp = strchr(line, ' ');
        char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
        if (!sp2)
            fail_msg("%s: malformed line '%s'", path, line);
        *sp2 = '\0';
        add(r, line, "%s", sp2 + 1);
    }
    fclose(f);
}

static void write_record(const char *path, const record *r)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "# The plugin ABI as committed: written by tests/plugin/test_abi_layout.c\n"
               "# (DK_UPDATE_GOLDEN=1). Existing lines may never change; lines are only added.\n");
    for (size_t i = 0; i < r->n; i++)
        fprintf(f, "%s %s\n", r->e[i].key, r->e[i].value);
    fclose(f);
}

/* ---- the comparison ------------------------------------------------------ */

static size_t value_of(const char *value, const char *name)
{
    const char *p = strstr(value, name);
    return p ? strtoull(p + strlen(name), NULL, 10) : 0;
}

static void complain(char **out, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t old = *out ? strlen(*out) : 0;
    *out = realloc(*out, old + strlen(line) + 2);
    assert_non_null(*out);
    strcpy(*out + old, line);
    strcat(*out, "\n");
}

/* Checks cur against the record rec; returns the problems, one a line, or
 * NULL when cur only appends to rec. */
static char *compare(const record *rec, const record *cur)
{
    char *problems = NULL;
    size_t rec_api = 0;
    for (size_t i = 0; i < rec->n; i++) {
        const entry *e = &rec->e[i];
        if (strncmp(e->key, "api ", 4) == 0)
            rec_api++;
        const entry *c = find(cur, e->key);
        if (!c) {
            complain(&problems, "%s: recorded as '%s', now gone", e->key, e->value);
        } else if (strncmp(e->key, "struct ", 7) == 0 && strstr(e->value, "grows") &&
                   strstr(c->value, "grows") &&
                   value_of(c->value, "size=") >= value_of(e->value, "size=") &&
                   value_of(c->value, "align=") == value_of(e->value, "align=")) {
            continue; /* a structure that carries its size may grow at its end */
        } else if (strcmp(c->value, e->value) != 0) {
            complain(&problems, "%s: recorded as '%s', now '%s'", e->key, e->value, c->value);
        }
    }
    for (size_t i = 0; i < cur->n; i++) {
        const entry *c = &cur->e[i];
        if (find(rec, c->key))
            continue;
        if (strncmp(c->key, "field ", 6) == 0) {
            /* A new field must lie past the structure's recorded end. */
            char skey[256];
            const char *dot = strchr(c->key + 6, '.');
            snprintf(skey, sizeof skey, "struct %.*s", (int)(dot - (c->key + 6)), c->key + 6);
            const entry *s = find(rec, skey);
            if (s && value_of(c->value, "offset=") < value_of(s->value, "size="))
                complain(&problems,
                         "%s: new field at %s inside the recorded %s (size=%zu): "
                         "fields may only be appended",
                         c->key, c->value, skey + 7, value_of(s->value, "size="));
        } else if (strncmp(c->key, "api ", 4) == 0) {
            if (strtoull(c->key + 4, NULL, 10) < rec_api)
                complain(&problems, "%s: new API entry inside the recorded table", c->key);
        } else if (strncmp(c->key, "const ", 6) == 0) {
            /* A new enumerator must be numbered above every recorded one of
             * its group ("flag" and "limit" are free-standing constants). */
            const char *dot = strchr(c->key, '.');
            size_t glen = (size_t)(dot - c->key);
            if (strncmp(c->key, "const flag.", 11) == 0 || strncmp(c->key, "const limit.", 12) == 0)
                continue;
            long long v = strtoll(c->value + 6, NULL, 10);
            for (size_t k = 0; k < rec->n; k++)
                if (strncmp(rec->e[k].key, c->key, glen + 1) == 0 &&
                    strtoll(rec->e[k].value + 6, NULL, 10) >= v)
                    complain(&problems, "%s: new value %lld is not above the recorded %s (%s)",
                             c->key, v, rec->e[k].key + 6, rec->e[k].value);
        }
    }
    return problems;
}

/* ---- tests --------------------------------------------------------------- */

/* Every structure's fields reach its end: a field added to a header but not to
 * the lists above would otherwise escape the record. */
static void test_fields_cover_structs(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_STRUCTS; i++) {
        const layout *l = &structs[i];
        size_t end = 0;
        for (size_t k = 0; k < l->n_fields; k++)
            if (l->fields[k].offset + l->fields[k].size > end)
                end = l->fields[k].offset + l->fields[k].size;
        if (strcmp(l->name, "dk_host_api") == 0 && N_API > 0)
            end = api[N_API - 1].offset + sizeof(void (*)(void));
        size_t rounded = (end + l->align - 1) / l->align * l->align;
        if (rounded != l->size)
            fail_msg("%s is %zu bytes but its listed fields end at %zu: list the new field in "
                     "tests/plugin/test_abi_layout.c",
                     l->name, l->size, end);
    }
}

static void test_matches_record(void **state)
{
    (void)state;
    record cur = {0};
    current_layout(&cur);
    if (getenv("DK_UPDATE_GOLDEN") && strcmp(getenv("DK_UPDATE_GOLDEN"), "1") == 0) {
        write_record(RECORD, &cur);
        print_message("rewrote %s\n", RECORD);
    }
    record rec = {0};
    load_record(RECORD, &rec);
    char *problems = compare(&rec, &cur);
    if (problems) {
        print_error("The plugin ABI changed against %s:\n%s"
                    "Existing layouts may not change within ABI major %d; append instead.\n",
                    RECORD, problems, DK_ABI_MAJOR);
        free(problems);
        fail();
    }
    size_t added = cur.n > rec.n ? cur.n - rec.n : 0;
    if (added)
        print_message("%zu appended entr%s not yet in the record\n", added,
                      added == 1 ? "y is" : "ies are");
    record_free(&rec);
    record_free(&cur);
}

/* The comparison itself: appending passes, every kind of change fails. */
static void copy_without(const record *from, record *to, const char *drop_prefix, size_t keep_n)
{
    size_t seen = 0;
    for (size_t i = 0; i < from->n; i++) {
        if (drop_prefix && strncmp(from->e[i].key, drop_prefix, strlen(drop_prefix)) == 0 &&
            seen++ >= keep_n)
            continue;
        add(to, from->e[i].key, "%s", from->e[i].value);
    }
}

static void set_value(record *r, const char *key, const char *value)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->e[i].key, key) == 0) {
            free(r->e[i].value);
            r->e[i].value = strdup(value);
            return;
        }
    fail_msg("no entry %s", key);
}

static void test_compare_rules(void **state)
{
    (void)state;
    record cur = {0};
    current_layout(&cur);

    /* A record written before the last API entry and the descriptor's `build`
     * field were appended: the current layout only appends to it. */
    record old = {0};
    copy_without(&cur, &old, "api ", N_API - 1);
    char v[128];
    snprintf(v, sizeof v, "size=%zu align=%zu grows", offsetof(dk_plugin_desc, build),
             _Alignof(dk_plugin_desc));
    set_value(&old, "struct dk_plugin_desc", v);
    record trimmed = {0};
    copy_without(&old, &trimmed, "field dk_plugin_desc.build", 0);
    char *p = compare(&trimmed, &cur);
    assert_null(p);

    /* A moved field fails, naming it. */
    record moved = {0};
    copy_without(&cur, &moved, NULL, 0);
    set_value(&moved, "field dk_type_info.name", "offset=24 size=8");
    p = compare(&moved, &cur);
    assert_non_null(p);
    assert_contains(p, "field dk_type_info.name: recorded as 'offset=24 size=8'");
    free(p);

    /* A field inserted in the middle: the record lacks it and the fields
     * after it moved. */
    record inserted = {0};
    copy_without(&cur, &inserted, "field dk_plugin_desc.version", 0);
    p = compare(&inserted, &cur);
    assert_non_null(p);
    assert_contains(p, "field dk_plugin_desc.version: new field at");
    free(p);

    /* An API entry inserted before the end shifts every later slot. */
    record shifted = {0};
    for (size_t i = 0; i < cur.n; i++) {
        if (strcmp(cur.e[i].key, "api 3") == 0)
            continue;
        if (strncmp(cur.e[i].key, "api ", 4) == 0) {
            size_t k = strtoull(cur.e[i].key + 4, NULL, 10);
            char key[32];
            snprintf(key, sizeof key, "api %zu", k > 3 ? k - 1 : k);
            add(&shifted, key, "%s", cur.e[i].value);
        } else {
            add(&shifted, cur.e[i].key, "%s", cur.e[i].value);
        }
    }
    p = compare(&shifted, &cur);
    assert_non_null(p);
    assert_contains(p, "api 3: recorded as");
    free(p);

    /* A renumbered status and a fixed-size structure that grew. */
    record renum = {0};
    copy_without(&cur, &renum, NULL, 0);
    set_value(&renum, "const dk_status.DK_ERR_ARG", "value=7");
    snprintf(v, sizeof v, "size=%zu align=%zu fixed", sizeof(dk_rng) - 8, _Alignof(dk_rng));
    set_value(&renum, "struct dk_rng", v);
    p = compare(&renum, &cur);
    assert_non_null(p);
    assert_contains(p, "const dk_status.DK_ERR_ARG: recorded as 'value=7'");
    assert_contains(p, "struct dk_rng: recorded as");
    free(p);

    /* A new enumerator below a recorded one. */
    record lower = {0};
    copy_without(&cur, &lower, "const dk_dtype.DK_DTYPE_F32", 0);
    p = compare(&lower, &cur);
    assert_non_null(p);
    assert_contains(p, "const dk_dtype.DK_DTYPE_F32: new value 0 is not above");
    free(p);

    record_free(&old);
    record_free(&trimmed);
    record_free(&moved);
    record_free(&inserted);
    record_free(&shifted);
    record_free(&renum);
    record_free(&lower);
    record_free(&cur);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_cover_structs),
        cmocka_unit_test(test_compare_rules),
        cmocka_unit_test(test_matches_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
