/* tests/sweep/test_sweep.c — `dkhost sweep`, judged by what whole sweeps of
 * the real dkhost print and leave in their work dirs.
 *
 * Every run trains a tiny LeNet on the runner tests' toy data set for three
 * iterations, without validation or checkpoints, with the SweepHook fixture
 * (tests/sweep/fixtures) as a custom hook: each build of it logs its version,
 * so a run's log tells which build ran. The sweep loads the hook from a
 * scratch directory; --between-runs copies other builds over that file as a
 * rebuild would.
 *
 *   - hot swap: v1 for run 1, v2 (copied over between runs 1 and 2) for runs
 *     2 and 3; one reload, reported with the old build unmapped; the copy
 *     repeated before run 3 (same bytes) reloads nothing;
 *   - a broken build between runs: one line naming the file and the reason,
 *     the old build keeps running, the sweep succeeds;
 *   - datasets: an unchanged dataset is reused (the log says so), a changed
 *     one is built again;
 *   - --between-runs failing, a RELOAD file, SIGHUP, a changed resident
 *     (non-hook) plugin;
 *   - errors: no config; a missing config among several fails its run only,
 *     and the exit code is that run's;
 *   - Ctrl-C (SIGINT raised by the hook) saves the run and ends the sweep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../integration/proc.h"
#include "../runner/toy_run.h"

#define BUILD(b) SWEEP_FIXTURES "/" b "/sweep_hook.so"

static const char base_config[] =
    TOY_MODEL_CONFIG
    "train_dataloader:\n"
    "  batch_size: 16\n"
    "  dataset: {type: ToyBlobs, num_samples: %d}\n"
    "optim_wrapper:\n"
    "  optimizer: {type: SGD, lr: 0.05}\n"
    "train_cfg: {by_epoch: false, max_iters: 3}\n"
    "default_hooks:\n"
    "  checkpoint: null\n"
    "custom_hooks: [{type: SweepHook}]\n"
    "seed: 3\n"
    "env_cfg: {num_threads: 1}\n";

typedef struct sweep_dir {
    run_dir d;
    char hooks[520];  /* the scratch plugin directory: sweep_hook.so */
    char hook[560];   /* its sweep_hook.so */
} sweep_dir;

static void sweep_dir_make(sweep_dir *s, const char *name)
{
    run_dir_make(&s->d, "sweep", name);
    snprintf(s->hooks, sizeof s->hooks, "%s/hooks", s->d.root);
    snprintf(s->hook, sizeof s->hook, "%s/sweep_hook.so", s->hooks);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s' '%s'", s->hooks, BUILD("v1"), s->hook);
    assert_int_equal(system(cmd), 0);
}

/* Writes <root>/<name>.yaml with a data set of n samples; static path. */
static const char *write_config(const sweep_dir *s, const char *name, int n)
{
    static char path[2][700];
    static int which;
    char *p = path[which++ % 2];
    snprintf(p, 700, "%s/%s.yaml", s->d.root, name);
    char text[2048];
    snprintf(text, sizeof text, base_config, n);
    assert_int_equal(write_file(p, text), 0);
    return p;
}

static void assert_has(const char *text, const char *what)
{
    if (!text || !strstr(text, what))
        fail_msg("missing \"%s\" in:\n%s", what, text ? text : "(null)");
}

static void assert_lacks(const char *text, const char *what)
{
    if (text && strstr(text, what))
        fail_msg("unexpected \"%s\" in:\n%s", what, text);
}

static int count_of(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

/* The text of the one .log file in <work>/<run>. */
static char *run_log(const sweep_dir *s, const char *run)
{
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s", s->d.work, run);
    DIR *dd = opendir(dir);
    if (!dd)
        fail_msg("no work dir %s", dir);
    char *text = NULL;
    int logs = 0;
    for (struct dirent *e; (e = readdir(dd));) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 4, ".log") != 0)
            continue;
        char path[1500];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        free(text);
        text = read_file(path);
        logs++;
    }
    closedir(dd);
    assert_int_equal(logs, 1);
    return text;
}

static bool keeps_libraries(void)
{
    const char *v = getenv("DK_NO_DLCLOSE");
    return v && strcmp(v, "1") == 0;
}

#define expect(r, status) proc_expect((r), (status), NULL, NULL)

static void test_hot_swap(void **state)
{
    sweep_dir s;
    sweep_dir_make(&s, "swap");
    const char *cfg = write_config(&s, "toy", 64);
    char between[4096];
    snprintf(between, sizeof between, "cp '%s' '%s'", BUILD("v2"), s.hook);
    /* The private copies go to TMPDIR, which the test owns here. */
    char tmp[700], tmp_env[720];
    snprintf(tmp, sizeof tmp, "%s/tmp", s.d.root);
    mkdir(tmp, 0755);
    snprintf(tmp_env, sizeof tmp_env, "TMPDIR=%s", tmp);
    const char *argv[] = {DK_BINARY_DIR "/bin/dkhost", "sweep", "--plugins", TOY_PLUGINS,
                          "--plugins", s.hooks, cfg, "--repeat", "3", "--work-dir", s.d.work,
                          "--no-validate", "--between-runs", between, NULL};
    proc_result r = proc_run_env(argv, tmp_env);
    expect(&r, 0);
    assert_int_equal(count_of(r.err, "plugin 'sweep_hook' reloaded from"), 1);
    assert_has(r.err, s.hook);
    if (keeps_libraries())
        assert_has(r.err, "the previous build stays mapped (DK_NO_DLCLOSE=1)");
    else
        assert_has(r.err, "the previous build is unmapped");
    assert_has(r.err, "version 1.0 -> 2.0");
    assert_lacks(r.err, "still mapped");
    assert_has(r.err, "sweep: 3 of 3 runs done, 0 failed");

    char *log1 = run_log(&s, "1_toy"), *log2 = run_log(&s, "2_toy"), *log3 = run_log(&s, "3_toy");
    assert_has(log1, "SweepHook build v1: before_run");
    assert_has(log1, "SweepHook build v1: after_train_iter 1");
    assert_lacks(log1, "build v2");
    assert_has(log2, "SweepHook build v2: before_run");
    assert_has(log2, "SweepHook build v2: after_train_iter 1");
    assert_lacks(log2, "build v1");
    assert_has(log3, "SweepHook build v2: before_run");
    assert_lacks(log3, "build v1");
    /* The same dataset config: built once, reused by runs 2 and 3. */
    assert_lacks(log1, "reusing the ToyBlobs dataset");
    assert_has(log2, "train_dataloader.dataset: reusing the ToyBlobs dataset");
    assert_has(log3, "train_dataloader.dataset: reusing the ToyBlobs dataset");
    free(log1);
    free(log2);
    free(log3);
    /* The private copies and their directory are gone with the process. */
    DIR *dd = opendir(tmp);
    assert_non_null(dd);
    for (struct dirent *e; (e = readdir(dd));)
        if (e->d_name[0] != '.')
            fail_msg("left in TMPDIR: %s", e->d_name);
    closedir(dd);
    proc_result_free(&r);
    run_dir_remove(&s.d);
}

static void test_broken_build_keeps_old(void **state)
{
    sweep_dir s;
    sweep_dir_make(&s, "broken");
    const char *cfg = write_config(&s, "toy", 64);
    char between[4096];
    snprintf(between, sizeof between, "cp '%s' '%s'", BUILD("v3"), s.hook);
    proc_result r = dkhost_run("sweep", "--plugins", TOY_PLUGINS, "--plugins", s.hooks, cfg,
                               "--repeat", "3", "--work-dir", s.d.work, "--no-validate",
                               "--between-runs", between, NULL);
    expect(&r, 0);
    /* One line, once: the same broken file is not retried at every check. */
    assert_int_equal(count_of(r.err, "cannot reload plugin 'sweep_hook'"), 1);
    assert_has(r.err, "init failed: SweepHook build v3 is broken on purpose; the loaded build "
                      "stays registered");
    assert_has(r.err, s.hook);
    assert_lacks(r.err, "reloaded from");
    char *log3 = run_log(&s, "3_toy");
    assert_has(log3, "SweepHook build v1: before_run");
    free(log3);
    proc_result_free(&r);
    run_dir_remove(&s.d);
}

static void test_datasets_changed_rebuilt(void **state)
{
    sweep_dir s;
    sweep_dir_make(&s, "data");
    char a[700], b[700];
    snprintf(a, sizeof a, "%s", write_config(&s, "a", 64));
    snprintf(b, sizeof b, "%s", write_config(&s, "b", 48));
    proc_result r = dkhost_run("sweep", "--plugins", TOY_PLUGINS, "--plugins", s.hooks, a, b,
                               b, "--work-dir", s.d.work, "--no-validate", NULL);
    expect(&r, 0);
    char *log1 = run_log(&s, "1_a"), *log2 = run_log(&s, "2_b"), *log3 = run_log(&s, "3_b");
    assert_lacks(log1, "reusing");
    assert_lacks(log2, "reusing"); /* num_samples changed: built again */
    assert_has(log3, "train_dataloader.dataset: reusing the ToyBlobs dataset");
    free(log1);
    free(log2);
    free(log3);
    proc_result_free(&r);
    run_dir_remove(&s.d);
}

static void test_between_runs_and_requests(void **state)
{
    sweep_dir s;
    sweep_dir_make(&s, "requests");
    const char *cfg = write_config(&s, "toy", 64);
    /* Before run 2: a RELOAD file, a changed resident plugin (a new file
     * renamed over toy_blobs.so, which stays mapped), and a failure. Before
     * run 3: SIGHUP to the sweep (the shell's parent). */
    char toy_dir[700];
    snprintf(toy_dir, sizeof toy_dir, "%s/toy", s.d.root);
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/toy_blobs.so' '%s/'", toy_dir,
             TOY_PLUGINS, toy_dir);
    assert_int_equal(system(cmd), 0);
    char between[8192];
    snprintf(between, sizeof between,
             "if [ \"$DKHOST_SWEEP_RUN\" = 2 ]; then mkdir -p '%s' && touch '%s/RELOAD' && "
             "cp '%s/toy_blobs.so' '%s/new.so' && printf x >> '%s/new.so' && "
             "mv '%s/new.so' '%s/toy_blobs.so'; exit 3; else kill -HUP $PPID; fi",
             s.d.work, s.d.work, toy_dir, toy_dir, toy_dir, toy_dir, toy_dir);
    proc_result r = dkhost_run("sweep", "--plugins", toy_dir, "--plugins", s.hooks, cfg,
                               "--repeat", "3", "--work-dir", s.d.work, "--no-validate",
                               "--between-runs", between, NULL);
    expect(&r, 0);
    assert_has(r.err, "the --between-runs command before run 2 failed with exit status 3; "
                      "the sweep goes on");
    assert_has(r.err, "/RELOAD found: reloading every hook plugin");
    assert_has(r.err, "SIGHUP received: reloading every hook plugin");
    /* Same bytes, but asked for: reloaded both times. */
    assert_int_equal(count_of(r.err, "plugin 'sweep_hook' reloaded from"), 2);
    assert_int_equal(count_of(r.err, "plugin 'toy_blobs' ("), 1);
    assert_has(r.err, "changed on disk, but it is not a hook-only plugin (DK_PLUGIN_UNLOADABLE) "
                      "and stays loaded: restart dkhost to pick this up");
    char reload[1200];
    snprintf(reload, sizeof reload, "%s/RELOAD", s.d.work);
    struct stat st;
    assert_int_not_equal(stat(reload, &st), 0);
    char *log3 = run_log(&s, "3_toy");
    assert_has(log3, "SweepHook build v1: before_run");
    free(log3);
    proc_result_free(&r);
    run_dir_remove(&s.d);
}

static void test_errors(void **state)
{
    proc_result r = dkhost_run("sweep", NULL);
    proc_expect(&r, 2, NULL, "sweep needs a CONFIG file");
    proc_result_free(&r);
    r = dkhost_run("train", "x.yaml", "--repeat", "2", NULL);
    proc_expect(&r, 2, NULL, "--repeat is an option of 'dkhost sweep'");
    proc_result_free(&r);
    r = dkhost_run("train", "x.yaml", "--between-runs", "true", NULL);
    proc_expect(&r, 2, NULL, "--between-runs is an option of 'dkhost sweep'");
    proc_result_free(&r);
    r = dkhost_run("sweep", "x.yaml", "--repeat", "0", NULL);
    proc_expect(&r, 2, NULL, "--repeat needs a positive integer, got '0'");
    proc_result_free(&r);
    r = dkhost_run("sweep", "x.yaml", "--resume-from", "auto", NULL);
    proc_expect(&r, 2, NULL, "a sweep takes no --resume-from, --load-from, --checkpoint or --out");
    proc_result_free(&r);

    sweep_dir s;
    sweep_dir_make(&s, "errors");
    const char *cfg = write_config(&s, "toy", 64);
    char missing[800];
    snprintf(missing, sizeof missing, "%s/missing.yaml", s.d.root);
    r = dkhost_run("sweep", "--plugins", TOY_PLUGINS, "--plugins", s.hooks, cfg, missing, cfg,
                   "--work-dir", s.d.work, "--no-validate", NULL);
    /* The missing config is a file error (5): run 2 fails with its message,
     * runs 1 and 3 run, the exit code is the first failing run's. */
    proc_expect(&r, 5, NULL, "dkhost: run 2 (");
    assert_has(r.err, "missing.yaml");
    assert_has(r.err, "sweep: 3 of 3 runs done, 1 failed");
    char *log1 = run_log(&s, "1_toy"), *log3 = run_log(&s, "3_toy");
    assert_has(log1, "SweepHook build v1: before_run");
    assert_has(log3, "SweepHook build v1: before_run");
    /* The failed run built no data, so run 1's dataset is still there. */
    assert_has(log3, "train_dataloader.dataset: reusing the ToyBlobs dataset");
    free(log1);
    free(log3);
    proc_result_free(&r);
    run_dir_remove(&s.d);
}

static void test_interrupt_stops_sweep(void **state)
{
    sweep_dir s;
    sweep_dir_make(&s, "interrupt");
    const char *cfg = write_config(&s, "toy", 64);
    proc_result r = dkhost_run("sweep", "--plugins", TOY_PLUGINS, "--plugins", s.hooks, cfg,
                               "--repeat", "3", "--work-dir", s.d.work, "--no-validate",
                               "--cfg-options", "custom_hooks.0.interrupt_at=2", NULL);
    proc_expect(&r, 1, NULL, "SIGINT during run 1: the sweep stops (2 of 3 runs not started)");
    assert_has(r.err, "dkhost: run 1 (");
    char saved[1200];
    snprintf(saved, sizeof saved, "%s/1_toy/interrupted.dkpt", s.d.work);
    struct stat st;
    assert_int_equal(stat(saved, &st), 0);
    snprintf(saved, sizeof saved, "%s/2_toy", s.d.work);
    assert_int_not_equal(stat(saved, &st), 0);
    proc_result_free(&r);
    run_dir_remove(&s.d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hot_swap),
        cmocka_unit_test(test_broken_build_keeps_old),
        cmocka_unit_test(test_datasets_changed_rebuilt),
        cmocka_unit_test(test_between_runs_and_requests),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_interrupt_stops_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
