/* tests/plugin/test_loader.c — the loader's checks, one fixture per way a
 * plugin file can be wrong, each checking status, the exact or key part of
 * the message, what was recorded, and that nothing of a refused plugin
 * stayed registered or mapped. */
#include "plugin_test.h"

#include <dlfcn.h>

/* Whether the file is still mapped in this process. */
static bool mapped(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (h)
        dlclose(h);
    return h != NULL;
}

static int setup(void **state)
{
    *state = dkh_registry_new();
    dk_clear_error();
    return 0;
}

static int teardown(void **state)
{
    dkh_registry_free(*state);
    return 0;
}

/* Loads one file expecting a refusal with status want; returns the message. */
static const char *refused(dkh_registry *r, const char *path, dk_status want)
{
    dk_status s = dkh_registry_load_file(r, path);
    assert_int_equal(s, want);
    assert_int_equal(dkh_registry_n_plugins(r), 0);
    assert_int_equal(dkh_registry_n_types(r), 0);
    assert_int_equal(dkh_registry_n_refusals(r), 1);
    const dkh_refusal *f = dkh_registry_refusal_at(r, 0);
    assert_str_eq(f->path, path);
    assert_str_eq(f->reason, dk_last_error());
    assert_int_equal(f->status, want);
    /* One line, naming the file. */
    assert_null(strchr(f->reason, '\n'));
    assert_true(strncmp(f->reason, path, strlen(path)) == 0);
    return f->reason;
}

static void test_good_loads(void **state)
{
    dkh_registry *r = *state;
    const char *path = FIXTURE("good", "good");
    assert_int_equal(dkh_registry_load_file(r, path), DK_OK);
    assert_int_equal(dkh_registry_n_plugins(r), 1);
    assert_int_equal(dkh_registry_n_refusals(r), 0);
    const dkh_plugin *p = dkh_registry_plugin_at(r, 0);
    assert_str_eq(p->name, "good");
    assert_str_eq(p->version, "1.2.0");
    assert_str_eq(p->license, "MIT");
    assert_str_eq(p->source, "in-tree");
    assert_str_eq(p->build, DK_BUILD_STRING);
    assert_str_eq(p->path, path);
    assert_int_equal(p->abi_major, DK_ABI_MAJOR);
    assert_int_equal(p->abi_minor, DK_ABI_MINOR);

    /* Sorted by (kind, name). */
    assert_int_equal(dkh_registry_n_types(r), 3);
    assert_str_eq(dkh_registry_type_at(r, 0)->info.name, "TinyNet");
    assert_str_eq(dkh_registry_type_at(r, 1)->info.kind, "fuser");
    assert_str_eq(dkh_registry_type_at(r, 2)->info.name, "TinyNeck");

    const dkh_type *t = dkh_registry_find(r, "backbone", "TinyNet");
    assert_non_null(t);
    assert_ptr_equal(t, dkh_registry_find(r, NULL, "TinyNet"));
    assert_ptr_equal(t->plugin, p);
    assert_int_equal(t->info.param_size, sizeof(dk_param));
    assert_int_equal(t->info.n_params, 5);
    const dk_param *stem = &t->info.params[3];
    assert_str_eq(stem->name, "stem");
    assert_int_equal(stem->type, DK_PARAM_STRUCT);
    assert_int_equal(stem->n_fields, 2);
    assert_str_eq(stem->fields[1].name, "stride");
    assert_str_eq(stem->fields[1].max, "4");
    assert_int_equal(t->info.params[2].elem, DK_PARAM_INT);
    assert_int_equal(t->info.params[4].flags, DK_PARAM_NULLABLE);

    /* Copies, not pointers into the library: the descriptor's strings live
     * in the plugin's image, ours on the heap. */
    Dl_info di;
    assert_true(dladdr(p->desc, &di) != 0);
    assert_int_equal(dladdr(t->info.name, &di), 0);
    assert_int_equal(dladdr(t->info.params[0].doc, &di), 0);
    assert_int_equal(dladdr(t->info.vtable, &di), 0);

    assert_int_equal(dkh_registry_kind_iface(r, "fuser"), DK_IFACE_MODULE);
    assert_int_equal(dkh_registry_kind_iface(r, "hook"), DK_IFACE_HOOK);
    assert_int_equal(dkh_registry_kind_iface(r, "nosuchkind"), 0);
    assert_null(dkh_registry_find(r, "neck", "TinyNet"));
}

static void test_old_minor_loads(void **state)
{
    dkh_registry *r = *state;
    assert_int_equal(dkh_registry_load_file(r, FIXTURE("old", "old")), DK_OK);
    const dkh_plugin *p = dkh_registry_plugin_at(r, 0);
    assert_int_equal(p->abi_minor, 0);
    assert_int_equal(p->requires_minor, 0);
    /* A 1.0 descriptor has no `build`; nothing past its size was read. */
    assert_str_eq(p->build, "");
    assert_non_null(dkh_registry_find(r, "backbone", "OldNet"));
}

static void test_newer_minor_with_wider_structs_loads(void **state)
{
    dkh_registry *r = *state;
    assert_int_equal(dkh_registry_load_file(r, FIXTURE("wide", "wide")), DK_OK);
    const dkh_type *t = dkh_registry_find(r, "backbone", "WideNet");
    assert_non_null(t);
    /* Stepped through by the plugin's param_size, copied to ours. */
    assert_int_equal(t->info.n_params, 3);
    assert_int_equal(t->info.param_size, sizeof(dk_param));
    assert_str_eq(t->info.params[0].name, "first");
    assert_str_eq(t->info.params[0].doc, "first");
    assert_str_eq(t->info.params[1].name, "nested");
    assert_int_equal(t->info.params[1].n_fields, 2);
    assert_str_eq(t->info.params[1].fields[1].name, "b");
    assert_str_eq(t->info.params[1].fields[1].def, "0.5");
    assert_str_eq(t->info.params[2].def, "end");
    const dk_vtable *vt = t->info.vtable;
    assert_int_equal(vt->struct_size, sizeof(dk_module_vtable));
    assert_str_eq(dkh_registry_plugin_at(r, 0)->build, "dk-sdk 9.9.0 (a newer ABI), test");
}

static void test_newer_required_minor_refused(void **state)
{
    const char *path = FIXTURE("newer", "newer");
    const char *msg = refused(*state, path, DK_ERR_ABI);
    char want[512];
    snprintf(want, sizeof want,
             "%s: requires dk ABI >= 1.99 (built with 1.99), this dkhost has ABI %d.%d; "
             "rebuild it against this SDK or upgrade dkhost",
             path, DK_ABI_MAJOR, DK_ABI_MINOR);
    assert_str_eq(msg, want);
    assert_str_eq(dkh_registry_refusal_at(*state, 0)->plugin_name, "newer");
    assert_false(mapped(path) && !no_dlclose());
}

static void test_other_major_refused(void **state)
{
    const char *path = FIXTURE("major", "major");
    const char *msg = refused(*state, path, DK_ERR_ABI);
    char want[512];
    snprintf(want, sizeof want,
             "%s: built for dk ABI 2.0, this dkhost has ABI %d.%d; "
             "rebuild the plugin against this SDK",
             path, DK_ABI_MAJOR, DK_ABI_MINOR);
    assert_str_eq(msg, want);
}

static void test_bad_magic_refused(void **state)
{
    const char *msg = refused(*state, FIXTURE("badmagic", "badmagic"), DK_ERR_PLUGIN);
    assert_contains(msg, "bad descriptor magic 4e 4f 50 45 (\"NOPE\")");
    assert_contains(msg, "expected 44 4b 50 4c (\"DKPL\")");
}

static void test_small_struct_refused(void **state)
{
    const char *msg = refused(*state, FIXTURE("small", "small"), DK_ERR_PLUGIN);
    assert_contains(msg, "descriptor struct_size 16 is smaller than");
}

static void test_missing_license_refused(void **state)
{
    const char *msg = refused(*state, FIXTURE("nolicense", "nolicense"), DK_ERR_PLUGIN);
    assert_contains(msg, ": descriptor has no license");
    assert_str_eq(dkh_registry_refusal_at(*state, 0)->plugin_name, "nolicense");
}

static void test_null_entry_refused(void **state)
{
    const char *msg = refused(*state, FIXTURE("nullentry", "nullentry"), DK_ERR_PLUGIN);
    assert_contains(msg, ": dk_plugin_entry returned NULL");
}

static void test_init_failure_rolls_back(void **state)
{
    dkh_registry *r = *state;
    const char *path = FIXTURE("initfail", "initfail");
    const char *msg = refused(r, path, DK_ERR_RUNTIME);
    char want[512];
    snprintf(want, sizeof want, "%s: init failed: could not open its weights file", path);
    assert_str_eq(msg, want);
    assert_null(dkh_registry_find(r, "backbone", "FailNetA"));
    assert_null(dkh_registry_find(r, "neck", "FailNetB"));
    if (!no_dlclose())
        assert_false(mapped(path));
    const dkh_refusal *f = dkh_registry_refusal_at(r, 0);
    assert_int_equal(f->n_attempted, 2);
    assert_str_eq(f->attempted[0], "backbone/FailNetA");
    assert_str_eq(f->attempted[1], "neck/FailNetB");
    assert_false(f->not_a_plugin);

    /* A config naming one of its types is told why it is missing. */
    dkh_buf b = DKH_BUF_INIT;
    dkh_registry_explain_missing(r, "neck", "FailNetB", &b);
    snprintf(want, sizeof want,
             "unknown neck type 'FailNetB'; plugin file %s was refused: "
             "init failed: could not open its weights file",
             path);
    assert_str_eq(dkh_buf_str(&b), want);
    dkh_buf_fini(&b);
}

static void test_duplicate_type_refused(void **state)
{
    dkh_registry *r = *state;
    const char *a = FIXTURE("dup", "a_first"), *b = FIXTURE("dup", "b_second");
    const char *c = FIXTURE("dup", "c_third");
    assert_int_equal(dkh_registry_load_file(r, a), DK_OK);
    assert_int_equal(dkh_registry_load_file(r, b), DK_ERR_DUPLICATE);
    char want[1024];
    snprintf(want, sizeof want,
             "%s: backbone type 'SameNet' is already registered by %s (plugin 'dupa')", b, a);
    assert_str_eq(dk_last_error(), want);
    assert_null(dkh_registry_find(r, "backbone", "OnlyInB"));
    assert_ptr_equal(dkh_registry_find(r, "backbone", "SameNet")->plugin,
                     dkh_registry_plugin_at(r, 0));
    if (!no_dlclose())
        assert_false(mapped(b));
    assert_true(mapped(a));

    /* Ignoring the failed dk_register does not help. */
    assert_int_equal(dkh_registry_load_file(r, c), DK_ERR_DUPLICATE);
    assert_contains(dk_last_error(), a);
    assert_contains(dk_last_error(), c);
    assert_null(dkh_registry_find(r, "backbone", "OnlyInC"));
    assert_int_equal(dkh_registry_n_plugins(r), 1);
    assert_int_equal(dkh_registry_n_types(r), 1);
    assert_int_equal(dkh_registry_n_refusals(r), 2);
}

static void test_duplicate_plugin_name_refused(void **state)
{
    dkh_registry *r = *state;
    const char *x = FIXTURE("twin", "x_twin"), *y = FIXTURE("twin", "y_twin");
    assert_int_equal(dkh_registry_load_file(r, x), DK_OK);
    assert_int_equal(dkh_registry_load_file(r, y), DK_ERR_DUPLICATE);
    char want[1024];
    snprintf(want, sizeof want, "%s: plugin name 'twin' is already used by %s", y, x);
    assert_str_eq(dk_last_error(), want);
    assert_null(dkh_registry_find(r, "backbone", "TwinY"));
    assert_non_null(dkh_registry_find(r, "backbone", "TwinX"));

    /* The same file twice is the same case, and must not close the first. */
    assert_int_equal(dkh_registry_load_file(r, x), DK_ERR_DUPLICATE);
    assert_true(mapped(x));
    assert_int_equal(dkh_registry_n_plugins(r), 1);
}

static void test_undefined_symbol_refused(void **state)
{
    const char *path = FIXTURE("undef", "undef");
    const char *msg = refused(*state, path, DK_ERR_PLUGIN);
    assert_contains(msg, "cannot load");
    assert_contains(msg, "undefined symbol");
    assert_contains(msg, "dk_fixture_missing_function");
}

static void test_stray_library_is_not_a_plugin(void **state)
{
    const char *path = FIXTURE("stray", "stray");
    const char *msg = refused(*state, path, DK_ERR_PLUGIN);
    char want[512];
    snprintf(want, sizeof want, "%s: not a dkhost plugin (no dk_plugin_entry)", path);
    assert_str_eq(msg, want);
    assert_true(dkh_registry_refusal_at(*state, 0)->not_a_plugin);
}

static void test_invalid_default_refused(void **state)
{
    const char *path = FIXTURE("baddefault", "baddefault");
    dkh_registry *r = *state;
    assert_int_not_equal(dkh_registry_load_file(r, path), DK_OK);
    const char *msg = dk_last_error();
    assert_true(strncmp(msg, path, strlen(path)) == 0);
    assert_contains(msg, "backbone type 'BadDefaultNet'");
    assert_contains(msg, "depth");
    assert_int_equal(dkh_registry_n_types(r), 0);
    assert_int_equal(dkh_registry_n_plugins(r), 0);
}

static void test_missing_file_refused(void **state)
{
    const char *path = FIXTURE("good", "no_such_file");
    const char *msg = refused(*state, path, DK_ERR_PLUGIN);
    assert_contains(msg, "No such file");
}

static void test_load_dir_mixed(void **state)
{
    dkh_registry *r = *state;
    assert_int_equal(dkh_registry_load_dir(r, FIXTURE_DIR "/listing"), DK_OK);
    /* Name order: good, initfail, newer, old, stray. */
    assert_int_equal(dkh_registry_n_plugins(r), 2);
    assert_str_eq(dkh_registry_plugin_at(r, 0)->name, "good");
    assert_str_eq(dkh_registry_plugin_at(r, 1)->name, "old");
    assert_int_equal(dkh_registry_n_refusals(r), 3);
    assert_contains(dkh_registry_refusal_at(r, 0)->path, "/initfail.so");
    assert_contains(dkh_registry_refusal_at(r, 1)->path, "/newer.so");
    assert_true(dkh_registry_refusal_at(r, 2)->not_a_plugin);
    assert_int_equal(dkh_registry_n_types(r), 4);

    /* Did-you-mean, and a note that something was refused. */
    dkh_buf b = DKH_BUF_INIT;
    dkh_registry_explain_missing(r, "backbone", "TinyNt", &b);
    assert_contains(dkh_buf_str(&b), "unknown backbone type 'TinyNt' (did you mean 'TinyNet'?)");
    assert_contains(dkh_buf_str(&b), "; note: 2 plugin files were refused, first: ");
    assert_contains(dkh_buf_str(&b), "initfail.so: init failed: could not open its weights file");
    dkh_buf_clear(&b);
    dkh_registry_explain_missing(r, "bakbone", "TinyNet", &b);
    assert_contains(dkh_buf_str(&b), "unknown type 'TinyNet': no plugin provides kind 'bakbone' "
                                     "(did you mean 'backbone'?)");
    dkh_buf_clear(&b);
    dkh_registry_explain_missing(r, "neck", "TinyNet", &b);
    assert_contains(dkh_buf_str(&b), "there is a backbone type 'TinyNet'");
    dkh_buf_fini(&b);
}

static void test_load_dir_shadowing(void **state)
{
    dkh_registry *r = *state;
    assert_int_equal(dkh_registry_load_dir(r, FIXTURE_DIR "/shadow1/"), DK_OK);
    assert_int_equal(dkh_registry_load_dir(r, FIXTURE_DIR "/shadow2"), DK_OK);
    assert_int_equal(dkh_registry_n_plugins(r), 2);
    assert_contains(dkh_registry_plugin_at(r, 0)->path, "/shadow1/good.so");
    assert_contains(dkh_registry_plugin_at(r, 1)->path, "/shadow2/old.so");
    assert_int_equal(dkh_registry_n_refusals(r), 0);
}

static void test_load_dir_missing(void **state)
{
    assert_int_equal(dkh_registry_load_dir(*state, FIXTURE_DIR "/nope"), DK_ERR_IO);
    assert_contains(dk_last_error(), "cannot read plugin directory '" FIXTURE_DIR "/nope'");
}

static void test_unload(void **state)
{
    dkh_registry *r = *state;
    const char *path = FIXTURE("good", "good");
    assert_int_equal(dkh_registry_load_file(r, path), DK_OK);
    assert_int_equal(dkh_registry_load_file(r, FIXTURE("old", "old")), DK_OK);
    assert_int_equal(dkh_registry_live_objects(r, dkh_registry_plugin_at(r, 0)), 0);
    assert_int_equal(dkh_registry_unload(r, "nosuch"), DK_ERR_NOT_FOUND);
    assert_int_equal(dkh_registry_unload(r, "good"), DK_OK);
    assert_int_equal(dkh_registry_n_plugins(r), 1);
    assert_int_equal(dkh_registry_n_types(r), 1);
    assert_null(dkh_registry_find(r, "backbone", "TinyNet"));
    assert_null(dkh_registry_find(r, "fuser", "AddFuser"));
    if (!no_dlclose())
        assert_false(mapped(path));
    /* And it can come back, as a reloaded hook plugin would. */
    assert_int_equal(dkh_registry_load_file(r, path), DK_OK);
    assert_non_null(dkh_registry_find(r, "backbone", "TinyNet"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_good_loads),
        T(test_old_minor_loads),
        T(test_newer_minor_with_wider_structs_loads),
        T(test_newer_required_minor_refused),
        T(test_other_major_refused),
        T(test_bad_magic_refused),
        T(test_small_struct_refused),
        T(test_missing_license_refused),
        T(test_null_entry_refused),
        T(test_init_failure_rolls_back),
        T(test_duplicate_type_refused),
        T(test_duplicate_plugin_name_refused),
        T(test_undefined_symbol_refused),
        T(test_stray_library_is_not_a_plugin),
        T(test_invalid_default_refused),
        T(test_missing_file_refused),
        T(test_load_dir_mixed),
        T(test_load_dir_shadowing),
        T(test_load_dir_missing),
        T(test_unload),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
