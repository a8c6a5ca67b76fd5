/* tests/integration/test_hooks.c — the shipped hooks, judged by what whole
 * dkhost runs leave in their work dirs.
 *
 * Every run trains a small convnet on the runner tests' toy data set
 * (tests/runner/fixtures/toy_blobs.c: 256 samples in batches of 32, so 8
 * iterations an epoch; 128 validation samples, 2 iterations) for a few
 * epochs, and the test reads the log, the JSONL file and the checkpoints:
 *
 *   - LoggerHook + IterTimerHook: mmcv's lines at the interval (and the
 *     epoch's end), JSONL records with increasing iterations and every scalar;
 *     iteration-based labels; a `priority` override changes what it sees;
 *   - LrMonitorHook: one "lr" record per epoch with the momentum;
 *   - CheckpointHook: rotation by max_keep_ckpts, exactly one best file for
 *     the best epoch, both carried across a resume; out_dir and templates;
 *   - EarlyStoppingHook: patience, threshold and a NaN loss end the run at the
 *     logged epoch;
 *   - EMAHook: the averages in a checkpoint differ from the weights, a
 *     resumed run ends with the same averages bit for bit, and `dkhost test`
 *     evaluates the averages;
 *   - ProgressBarHook: nothing when stdout is not a terminal, a bar when forced;
 *   - each bad option ends in a message naming the option and where it is.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dk/dk.h>

#include "ckpt/ckpt.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc.h"
#include "../runner/toy_run.h"


enum { OK = 0, RUNTIME = 1, USAGE = 2, CONFIG = 3 };

static const char base_config[] =
    TOY_MODEL_CONFIG
    "train_dataloader:\n"
    "  batch_size: 32\n"
    "  shuffle: true\n"
    "  dataset:\n"
    "    type: ToyBlobs\n"
    "    num_samples: 256\n"
    "    nan_at: ${vars.nan_at}\n"
    "val_dataloader:\n"
    "  batch_size: 64\n"
    "  dataset: {type: ToyBlobs, num_samples: 128, noise_seed: 7}\n"
    "val_evaluator: [{type: Accuracy, topk: [1]}]\n"
    "optim_wrapper:\n"
    "  optimizer:\n"
    "    type: SGD\n"
    "    lr: ${vars.lr}\n"
    "    momentum: 0.9\n"
    "seed: 5\n"
    "deterministic: true\n"
    "env_cfg: {num_threads: 2}\n";

/* ---- files ----------------------------------------------------------------------- */

/* Writes <root>/<name>.yaml: the base config, `extra`, and `vars` unless
 * extra sets them. Returns a static path, valid until the next call. */
static const char *write_config(const run_dir *d, const char *name, const char *extra)
{
    static char path[700];
    snprintf(path, sizeof path, "%s/%s.yaml", d->root, name);
    const char *vars = strstr(extra, "vars:") ? "" : "vars: {nan_at: -1, lr: 0.05}\n";
    size_t n = strlen(base_config) + strlen(extra) + strlen(vars) + 1;
    char *text = malloc(n);
    snprintf(text, n, "%s%s%s", base_config, extra, vars);
    assert_int_equal(write_file(path, text), 0);
    free(text);
    return path;
}

static bool exists_in(const char *dir, const char *name)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0;
}

/* Files of dir whose names start with prefix and end with suffix. */
static int count_files(const char *dir, const char *prefix, const char *suffix, char *first,
                       size_t first_size)
{
    DIR *dd = opendir(dir);
    if (!dd)
        return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(dd));) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 || len < sl ||
            strcmp(e->d_name + len - sl, suffix) != 0)
            continue;
        if (n++ == 0 && first)
            snprintf(first, first_size, "%s", e->d_name);
    }
    closedir(dd);
    return n;
}

/* The whole text of the work dir's one file ending in suffix (.log, .jsonl). */
static char *read_only(const char *dir, const char *suffix)
{
    char name[256], path[2048];
    assert_int_equal(count_files(dir, "", suffix, name, sizeof name), 1);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *text = read_file(path);
    assert_non_null(text);
    return text;
}

/* Every file of dir ending in suffix, concatenated. */
static char *read_all(const char *dir, const char *suffix)
{
    DIR *dd = opendir(dir);
    assert_non_null(dd);
    char *all = calloc(1, 1);
    size_t len = 0;
    for (struct dirent *e; (e = readdir(dd));) {
        size_t n = strlen(e->d_name), sl = strlen(suffix);
        if (n < sl || strcmp(e->d_name + n - sl, suffix) != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *t = read_file(path);
        all = realloc(all, len + strlen(t) + 1);
        memcpy(all + len, t, strlen(t) + 1);
        len += strlen(t);
        free(t);
    }
    closedir(dd);
    return all;
}

/* ---- runs -------------------------------------------------------------------------- */

/* Exit status and a piece of stderr. */
#define expect(r, status, err_has) proc_expect((r), (status), NULL, (err_has))

/* Trains config in d->work; extra arguments (NULL-terminated) follow. */
static proc_result train(const run_dir *d, const char *config, const char *arg1, const char *arg2)
{
    return dkhost_run("--plugins", TOY_PLUGINS, config, "--work-dir", d->work, arg1, arg2, NULL);
}

static void assert_has(const char *text, const char *what)
{
    if (!strstr(text, what))
        fail_msg("missing \"%s\" in:\n%s", what, text);
}

static void assert_lacks(const char *text, const char *what)
{
    if (strstr(text, what))
        fail_msg("unexpected \"%s\" in:\n%s", what, text);
}

/* ---- JSONL --------------------------------------------------------------------------- */

/* The number after "\"key\": " in one record line, or nan. */
static double field(const char *line, const char *key)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(line, pat);
    const char *end = strchr(line, '\n');
    if (!p || (end && p > end))
        return NAN;
    return strtod(p + strlen(pat), NULL);
}

/* Calls fn on every record line of `mode`. */
static int each_record(const char *text, const char *mode,
                       void (*fn)(const char *line, void *ctx), void *ctx)
{
    char tag[64];
    snprintf(tag, sizeof tag, "{\"mode\": \"%s\",", mode);
    int n = 0;
    for (const char *line = text; line && *line;) {
        if (strncmp(line, tag, strlen(tag)) == 0) {
            fn(line, ctx);
            n++;
        }
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    return n;
}

typedef struct iter_list {
    int64_t v[64];
    int n;
    const char *const *need; /* keys every record must have */
} iter_list;

static void collect_iter(const char *line, void *ctx)
{
    iter_list *l = ctx;
    for (size_t k = 0; l->need && l->need[k]; k++)
        if (isnan(field(line, l->need[k])))
            fail_msg("record lacks %s: %.*s", l->need[k], (int)strcspn(line, "\n"), line);
    if (l->n < 64)
        l->v[l->n++] = (int64_t)field(line, "iter");
}

/* The epoch whose "val" record first reached the highest accuracy. */
typedef struct best_epoch {
    double acc[32];
    bool seen[32];
} best_epoch;

static void collect_val(const char *line, void *ctx)
{
    best_epoch *b = ctx;
    int e = (int)field(line, "epoch");
    if (e > 0 && e < 32) {
        b->acc[e] = field(line, "accuracy/top1");
        b->seen[e] = true;
    }
}

static int first_best(const best_epoch *b, int last)
{
    int best = 0;
    for (int e = 1; e <= last; e++) {
        if (!b->seen[e])
            fail_msg("no val record for epoch %d", e);
        if (best == 0 || b->acc[e] > b->acc[best])
            best = e;
    }
    return best;
}

/* ---- LoggerHook, IterTimerHook, LrMonitorHook ----------------------------------------- */

static void test_logger_lines_and_jsonl(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "hooks", "logger");
    const char *cfg = write_config(&d, "log",
                                   "train_cfg: {max_epochs: 2}\n"
                                   "default_hooks:\n"
                                   "  timer: {type: IterTimerHook}\n"
                                   "  logger: {type: LoggerHook, interval: 3, ignore_last: false}\n"
                                   "custom_hooks:\n"
                                   "  - {type: LrMonitorHook, log_momentum: true, log_text: true}\n");
    proc_result r = train(&d, cfg, NULL, NULL);
    expect(&r, OK, NULL);
    proc_result_free(&r);

    char *log = read_only(d.work, ".log");
    assert_has(log, "Epoch [1][3/8]  lr: 5.000e-02, eta: ");
    assert_has(log, ", time: ");
    assert_has(log, ", data_time: ");
    assert_has(log, ", memory: ");
    assert_has(log, ", loss_cls: ");
    assert_has(log, "Epoch [1][6/8]  ");
    assert_has(log, "Epoch [1][8/8]  "); /* ignore_last: false */
    assert_lacks(log, "Epoch [1][7/8]");
    assert_has(log, "Epoch [2][8/8]  ");
    assert_has(log, "Epoch(val) [1][2/2]  accuracy/top1: ");
    assert_has(log, "Epoch(val) [2][2/2]  accuracy/top1: ");
    assert_has(log, "Epoch [2]  lr: 5.000e-02, momentum: 9.000e-01"); /* LrMonitorHook */
    free(log);

    /* One record per line; training iterations as logged, in order. */
    char *jsonl = read_only(d.work, ".jsonl");
    static const char *const train_keys[] = {"epoch", "lr", "loss", "loss_cls", "time",
                                             "data_time", "eta_s", "memory", NULL};
    iter_list it = {.need = train_keys};
    assert_int_equal(each_record(jsonl, "train", collect_iter, &it), 6);
    const int64_t want[] = {3, 6, 8, 11, 14, 16};
    for (int i = 0; i < 6; i++)
        assert_int_equal(it.v[i], want[i]);
    static const char *const val_keys[] = {"epoch", "accuracy/top1", NULL};
    iter_list val = {.need = val_keys};
    assert_int_equal(each_record(jsonl, "val", collect_iter, &val), 2);
    assert_int_equal(val.v[0], 8);
    assert_int_equal(val.v[1], 16);
    static const char *const lr_keys[] = {"epoch", "lr", "momentum", NULL};
    iter_list lr = {.need = lr_keys};
    assert_int_equal(each_record(jsonl, "lr", collect_iter, &lr), 2);
    assert_int_equal(lr.v[0], 1); /* the first iteration of each epoch */
    assert_int_equal(lr.v[1], 9);
    free(jsonl);
    run_dir_remove(&d);
}

static void test_logger_iteration_based(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "hooks", "logger_iter");
    const char *cfg = write_config(&d, "iters",
                                   "train_cfg: {by_epoch: false, max_iters: 10, val_interval: 5}\n"
                                   "default_hooks:\n"
                                   "  logger: {type: LoggerHook, interval: 4, out_jsonl: false}\n"
                                   "  checkpoint: {type: CheckpointHook, interval: 4}\n");
    proc_result r = train(&d, cfg, NULL, NULL);
    expect(&r, OK, NULL);
    proc_result_free(&r);
    char *log = read_only(d.work, ".log");
    assert_has(log, "Iter [4/10]  lr: ");
    assert_has(log, "Iter [8/10]  lr: ");
    assert_lacks(log, "Iter [10/10]"); /* ignore_last */
    assert_has(log, "Iter(val) [5][2/2]  accuracy/top1: ");
    assert_has(log, "Iter(val) [10][2/2]  accuracy/top1: ");
    free(log);
    assert_int_equal(count_files(d.work, "", ".jsonl", NULL, 0), 0);
    /* Checkpoints count iterations; save_last adds the final one. */
    assert_true(exists_in(d.work, "iter_4.dkpt"));
    assert_true(exists_in(d.work, "iter_8.dkpt"));
    assert_true(exists_in(d.work, "iter_10.dkpt"));
    assert_int_equal(count_files(d.work, "", ".dkpt", NULL, 0), 3);
    run_dir_remove(&d);
}

/* Evaluation loops: a line every interval, then the metrics; `dkhost test`
 * gets the same lines labelled Epoch(test) and a "test" record. */
static void test_logger_eval_and_test(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "hooks", "logger_eval");
    const char *cfg = write_config(&d, "eval",
                                   "default_hooks:\n"
                                   "  timer: {type: IterTimerHook}\n"
                                   "  logger: {type: LoggerHook, interval: 1}\n"
                                   "  checkpoint: {type: CheckpointHook}\n");
    proc_result r = train(&d, cfg, NULL, NULL);
    expect(&r, OK, NULL);
    proc_result_free(&r);
    char *log = read_only(d.work, ".log");
    assert_has(log, "Epoch(val) [1][1/2]  eta: ");
    assert_has(log, "Epoch(val) [1][2/2]  eta: 0:00:00, time: ");
    assert_has(log, "Epoch(val) [1][2/2]  accuracy/top1: ");
    free(log);

    char ckpt[700], test_dir[700];
    snprintf(ckpt, sizeof ckpt, "%s/epoch_1.dkpt", d.work);
    snprintf(test_dir, sizeof test_dir, "%s/test", d.root);
    r = dkhost_run("--plugins", TOY_PLUGINS, "test", cfg, "--checkpoint", ckpt, "--work-dir",
                   test_dir, NULL);
    expect(&r, OK, "Epoch(test) [2/2]  accuracy/top1: ");
    assert_has(r.err, "Epoch(test) [1/2]  eta: ");
    proc_result_free(&r);
    char *jsonl = read_only(test_dir, ".jsonl");
    static const char *const test_keys[] = {"accuracy/top1", "time", NULL};
    iter_list it = {.need = test_keys};
    assert_int_equal(each_record(jsonl, "test", collect_iter, &it), 1);
    assert_int_equal(each_record(jsonl, "train", collect_iter, &it), 0);
    free(jsonl);
    run_dir_remove(&d);
}

/* The logger run first (HIGHEST) sees each iteration before the timer has
 * added its time, so no record has one: the override reached the runner. */
static void test_priority_override(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "hooks", "priority");
    const char *cfg = write_config(&d, "prio",
                                   "default_hooks:\n"
                                   "  timer: {type: IterTimerHook}\n"
                                   "  logger: {type: LoggerHook, interval: 4, priority: HIGHEST}\n");
    proc_result r = train(&d, cfg, NULL, NULL);
    expect(&r, OK, NULL);
    proc_result_free(&r);
    char *jsonl = read_only(d.work, ".jsonl");
    assert_has(jsonl, "\"data_time\": ");
    assert_lacks(jsonl, "\"time\": ");
    free(jsonl);
    run_dir_remove(&d);
}

/* ---- CheckpointHook ------------------------------------------------------------------ */

static const char ckpt_hooks[] = "default_hooks:\n"
                                 "  logger: {type: LoggerHook, interval: 8}\n"
                                 "  checkpoint: {type: CheckpointHook, max_keep_ckpts: 2,\n"
                                 "               save_best: auto}\n";

static void expect_best(const run_dir *d, int epochs)
{
    char *jsonl = read_all(d->work, ".jsonl");
    best_epoch b = {0};
    each_record(jsonl, "val", collect_val, &b);
    free(jsonl);
    char want[128], got[256] = "";
    snprintf(want, sizeof want, "best_accuracy_top1_epoch_%d.dkpt", first_best(&b, epochs));
    assert_int_equal(count_files(d->work, "best_", ".dkpt", got, sizeof got), 1);
    assert_string_equal(got, want);
}

static void test_checkpoint_rotation_and_best(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "hooks", "ckpt");
    char extra[512];
    snprintf(extra, sizeof extra, "train_cfg: {max_epochs: 4}\n%s", ckpt_hooks);
    const char *cfg = write_config(&d, "ckpt", extra);
    proc_result r = train(&d, cfg, NULL, NULL);
    expect(&r, OK, NULL);
    proc_result_free(&r);
    assert_false(exists_in(d.work, "epoch_1.dkpt"));
    assert_false(exists_in(d.work, "epoch_2.dkpt"));
    assert_true(exists_in(d.work, "epoch_3.dkpt"));
    assert_true(exists_in(d.work, "epoch_4.dkpt"));
    expect_best(&d, 4);

    /* Resumed for two more epochs, the hook remembers the files it rotates
     * (epoch_3 and epoch_4 go) and the best score it has to beat. */
    snprintf(extra, sizeof extra, "train_cfg: {max_epochs: 6}\n%s", ckpt_hooks);
    cfg = write_config(&d, "ckpt6", extra);
    char from[700];
    snprintf(from, sizeof from, "%s/epoch_4.dkpt", d.work);
    r = train(&d, cfg, "--resume-from", from);
    expect(&r, OK, NULL);
    proc_result_free(&r);
    assert_false(exists_in(d.work, "epoch_3.dkpt"));
    assert_false(exists_in(d.work, "epoch_4.dkpt"));
    assert_true(exists_in(d.work, "epoch_5.dkpt"));
    assert_true(exists_in(d.work, "epoch_6.dkpt"));
    expect_best(&d, 6);
    run_dir_remove(&d);
}

static void test_checkpoint_out_dir_and_template(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "hooks", "ckpt_out");
    char extra[1024];
    snprintf(extra, sizeof extra,
             "train_cfg: {max_epochs: 3}\n"
             "default_hooks:\n"
             "  checkpoint: {type: CheckpointHook, interval: 2, out_dir: '%s/ckpts',\n"
             "               filename_tmpl: 'model_{}_final.dkpt'}\n",
             d.root);
    const char *cfg = write_config(&d, "out", extra);
    proc_result r = train(&d, cfg, NULL, NULL);
    expect(&r, OK, NULL);
    proc_result_free(&r);
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/ckpts/work", d.root);
    assert_true(exists_in(dir, "model_2_final.dkpt"));
    assert_true(exists_in(dir, "model_3_final.dkpt")); /* save_last */
    assert_int_equal(count_files(dir, "", ".dkpt", NULL, 0), 2);
    assert_int_equal(count_files(d.work, "", ".dkpt", NULL, 0), 0);
    run_dir_remove(&d);
}

/* ---- EarlyStoppingHook --------------------------------------------------------------- */

static void run_stopping(const char *name, const char *hook, const char *vars,
                         const char *reason, int last_epoch)
{
    run_dir d;
    run_dir_make(&d, "hooks", name);
    char extra[1024];
    snprintf(extra, sizeof extra,
             "train_cfg: {max_epochs: 6}\n"
             "vars: %s\n"
             "default_hooks:\n"
             "  checkpoint: {type: CheckpointHook}\n"
             "custom_hooks:\n"
             "  - %s\n",
             vars, hook);
    const char *cfg = write_config(&d, name, extra);
    proc_result r = train(&d, cfg, NULL, NULL);
    expect(&r, OK, NULL);
    proc_result_free(&r);
    char *log = read_only(d.work, ".log");
    assert_has(log, "training stopped early: EarlyStoppingHook: ");
    assert_has(log, reason);
    free(log);
    char name_buf[64];
    snprintf(name_buf, sizeof name_buf, "epoch_%d.dkpt", last_epoch);
    assert_true(exists_in(d.work, name_buf));
    snprintf(name_buf, sizeof name_buf, "epoch_%d.dkpt", last_epoch + 1);
    assert_false(exists_in(d.work, name_buf));
    run_dir_remove(&d);
}

static void test_early_stopping(void **state)
{
    (void)state;
    static const char normal[] = "{nan_at: -1, lr: 0.05}";
    /* No change can beat the first score by 1000: patience runs out after
     * two more validations. */
    run_stopping("patience",
                 "{type: EarlyStoppingHook, monitor: accuracy/top1, min_delta: 1000, patience: 2}",
                 normal, "accuracy/top1 did not improve by more than 1000 for 2 validations (best ",
                 3);
    run_stopping("threshold",
                 "{type: EarlyStoppingHook, monitor: accuracy/top1, stopping_threshold: 1}", normal,
                 "is greater than stopping_threshold 1 at epoch 1", 1);
    /* A learning rate beyond f32's range makes the first update infinite and
     * the second step's loss NaN, which ends the run (the NaN guard alone
     * would only skip the step). */
    run_stopping("nan_loss", "{type: EarlyStoppingHook, monitor: accuracy/top1}",
                 "{nan_at: -1, lr: 1.0e+39}", "the training loss is nan at epoch 1, iteration 2",
                 1);
}

/* ---- EMAHook --------------------------------------------------------------------------- */

/* Compares hooks.EMAHook.<name> with model.<name> (returns how many differ)
 * or, with other, with hooks.EMAHook.<name> of other (every one must match). */
static int compare_ema(const char *path, const char *other)
{
    dkh_ckpt *c = NULL, *o = NULL;
    assert_int_equal(dkh_ckpt_open(path, &c), DK_OK);
    if (other)
        assert_int_equal(dkh_ckpt_open(other, &o), DK_OK);
    int averages = 0, differ = 0;
    const char *prefix = "hooks.EMAHook.";
    for (size_t i = 0; i < dkh_ckpt_count(c); i++) {
        const char *name = dkh_ckpt_name(c, i);
        if (strncmp(name, prefix, strlen(prefix)) != 0)
            continue;
        char peer[512];
        snprintf(peer, sizeof peer, other ? "%s" : "model.%s",
                 other ? name : name + strlen(prefix));
        dkh_ckpt *pc = other ? o : c;
        int64_t j = dkh_ckpt_find(pc, peer);
        if (j < 0)
            fail_msg("%s has %s but no %s", path, name, peer);
        int64_t shape[DK_MAX_DIMS];
        int ndim = dkh_ckpt_shape(c, i, shape);
        dk_tensor *a = dk_empty(ndim, shape, DK_DTYPE_F32, (dk_device){DK_DEVICE_CPU, 0});
        dk_tensor *b = dk_empty(ndim, shape, DK_DTYPE_F32, (dk_device){DK_DEVICE_CPU, 0});
        assert_int_equal(dkh_ckpt_read(c, i, a), DK_OK);
        assert_int_equal(dkh_ckpt_read(pc, (size_t)j, b), DK_OK);
        if (memcmp(dk_tensor_data(a), dk_tensor_data(b),
                   (size_t)dk_tensor_numel(a) * sizeof(float)) != 0)
            differ++;
        dk_tensor_release(a);
        dk_tensor_release(b);
        averages++;
    }
    assert_true(averages >= 4); /* LeNet's conv and linear weights and biases */
    dkh_ckpt_close(c);
    if (o)
        dkh_ckpt_close(o);
    return differ;
}

static void test_ema(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "hooks", "ema");
    static const char hooks[] = "default_hooks:\n"
                                "  checkpoint: {type: CheckpointHook}\n"
                                "custom_hooks:\n"
                                "  - {type: EMAHook, momentum: 0.2}\n";
    char extra[512];
    snprintf(extra, sizeof extra, "train_cfg: {max_epochs: 2}\n%s", hooks);
    const char *cfg = write_config(&d, "ema2", extra);
    proc_result r = train(&d, cfg, NULL, NULL);
    expect(&r, OK, NULL);
    proc_result_free(&r);
    char straight[700];
    snprintf(straight, sizeof straight, "%s/straight.dkpt", d.root);
    char from[700];
    snprintf(from, sizeof from, "%s/epoch_2.dkpt", d.work);
    assert_int_equal(rename(from, straight), 0);
    assert_true(compare_ema(straight, NULL) > 0);

    /* The same two epochs in two processes: the averages come back. */
    snprintf(extra, sizeof extra, "train_cfg: {max_epochs: 1}\n%s", hooks);
    cfg = write_config(&d, "ema1", extra);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d.work);
    assert_int_equal(system(cmd), 0);
    r = train(&d, cfg, NULL, NULL);
    expect(&r, OK, NULL);
    proc_result_free(&r);
    snprintf(extra, sizeof extra, "train_cfg: {max_epochs: 2}\n%s", hooks);
    cfg = write_config(&d, "ema2", extra);
    snprintf(from, sizeof from, "%s/epoch_1.dkpt", d.work);
    r = train(&d, cfg, "--resume-from", from);
    expect(&r, OK, NULL);
    proc_result_free(&r);
    snprintf(from, sizeof from, "%s/epoch_2.dkpt", d.work);
    assert_int_equal(compare_ema(from, straight), 0);
    run_dir_remove(&d);
}

/* `dkhost test` on a checkpoint of a run with EMAHook evaluates the averages,
 * as validation did during training (mmengine's behaviour): the test accuracy
 * is the last validation accuracy, and differs from the raw weights' (the
 * hook removed). Noisy data and a small rate keep the accuracies apart. */
static void test_ema_in_test(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "hooks", "ema_test");
    const char *cfg = write_config(&d, "ema", "train_cfg: {max_epochs: 2}\n"
                                              "default_hooks:\n"
                                              "  logger: {type: LoggerHook}\n"
                                              "  checkpoint: {type: CheckpointHook}\n"
                                              "custom_hooks:\n"
                                              "  - {type: EMAHook, momentum: 0.2}\n"
                                              "vars: {nan_at: -1, lr: 0.002}\n");
    proc_result r = dkhost_run("--plugins", TOY_PLUGINS, cfg, "--work-dir", d.work,
                               "--cfg-options", "train_dataloader.dataset.noise=2.0",
                               "val_dataloader.dataset.noise=2.0", NULL);
    expect(&r, OK, "Epoch(val) [2][2/2]  accuracy/top1: ");
    double val = strtod(strstr(r.err, "Epoch(val) [2][2/2]  accuracy/top1: ") + 36, NULL);
    proc_result_free(&r);

    char ckpt[700];
    snprintf(ckpt, sizeof ckpt, "%s/epoch_2.dkpt", d.work);
    double acc[2];
    for (int raw = 0; raw < 2; raw++) {
        r = dkhost_run("--plugins", TOY_PLUGINS, "test", cfg, "--checkpoint", ckpt, "--work-dir",
                       d.work, "--cfg-options", "val_dataloader.dataset.noise=2.0",
                       raw ? "custom_hooks=[]" : "train_cfg.max_epochs=2", NULL);
        expect(&r, OK, "test results: accuracy/top1: ");
        acc[raw] = strtod(strstr(r.err, "test results: accuracy/top1: ") + 29, NULL);
        proc_result_free(&r);
    }
    if (acc[0] != val || acc[1] == val)
        fail_msg("validation %.4f; test with the averages %.4f, with the raw weights %.4f", val,
                 acc[0], acc[1]);
    run_dir_remove(&d);
}

/* ---- ProgressBarHook ------------------------------------------------------------------- */

static void test_progress_bar(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "hooks", "progress");
    const char *cfg = write_config(&d, "quiet",
                                   "default_hooks:\n"
                                   "  progress: {type: ProgressBarHook}\n");
    proc_result r = train(&d, cfg, NULL, NULL);
    expect(&r, OK, NULL);
    assert_lacks(r.out, "it/s"); /* stdout is a file here */
    proc_result_free(&r);
    cfg = write_config(&d, "forced",
                       "default_hooks:\n"
                       "  progress: {type: ProgressBarHook, force: true}\n");
    r = train(&d, cfg, NULL, NULL);
    expect(&r, OK, NULL);
    assert_has(r.out, "\rEpoch 1/1 [########################] 8/8, ");
    assert_has(r.out, " it/s, eta ");
    assert_has(r.out, "\rVal [########################] 2/2, ");
    proc_result_free(&r);
    run_dir_remove(&d);
}

/* ---- errors ---------------------------------------------------------------------------- */

/* Trains a config that must fail with status; every following string
 * (NULL-terminated) must be in stderr. */
static void expect_error(const char *name, const char *extra, int status, ...)
{
    run_dir d;
    run_dir_make(&d, "hooks", name);
    const char *cfg = write_config(&d, name, extra);
    proc_result r = train(&d, cfg, NULL, NULL);
    va_list ap;
    va_start(ap, status);
    for (const char *msg = va_arg(ap, const char *); msg; msg = va_arg(ap, const char *))
        expect(&r, status, msg);
    va_end(ap);
    proc_result_free(&r);
    run_dir_remove(&d);
}

static void test_bad_options(void **state)
{
    (void)state;
    expect_error("tmpl",
                 "default_hooks:\n"
                 "  checkpoint: {type: CheckpointHook, filename_tmpl: last.dkpt}\n",
                 CONFIG, "default_hooks.checkpoint (", "CheckpointHook: filename_tmpl (",
                 "tmpl.yaml:26:53) must be a file name with one {} for the epoch or iteration "
                 "number, e.g. \"epoch_{}.dkpt\"; got \"last.dkpt\"",
                 NULL);
    expect_error("best_missing",
                 "default_hooks:\n"
                 "  checkpoint: {type: CheckpointHook, save_best: accuracy/top5}\n",
                 CONFIG, "hook checkpoint (CheckpointHook) after_val_epoch",
                 "save_best 'accuracy/top5' is not among the validation metrics (accuracy/top1)",
                 NULL);
    expect_error("strict",
                 "custom_hooks:\n"
                 "  - {type: EarlyStoppingHook, monitor: loss/val, strict: true}\n",
                 CONFIG, "hook EarlyStoppingHook (EarlyStoppingHook) after_val_epoch",
                 "monitor 'loss/val' is not among the validation metrics (accuracy/top1)", NULL);
    expect_error("no_monitor",
                 "custom_hooks:\n"
                 "  - {type: EarlyStoppingHook, patience: 2}\n",
                 CONFIG, "no_monitor.yaml:26:5", "missing required key 'monitor'", NULL);
    expect_error("empty_monitor",
                 "custom_hooks:\n"
                 "  - {type: EarlyStoppingHook, monitor: ''}\n",
                 CONFIG, "custom_hooks.0 (", "EarlyStoppingHook: monitor (",
                 "empty_monitor.yaml:26:40) is empty", NULL);
    expect_error("momentum",
                 "custom_hooks:\n"
                 "  - {type: EMAHook, momentum: 0}\n",
                 CONFIG, "custom_hooks.0 (", "EMAHook: momentum (",
                 "momentum.yaml:26:31) must be in (0, 1], got 0", NULL);
    expect_error("priority",
                 "custom_hooks:\n"
                 "  - {type: EMAHook, priority: URGENT}\n",
                 CONFIG, "custom_hooks.0.priority (",
                 "priority.yaml:26:31): priority must be a number or one of HIGHEST, VERY_HIGH, "
                 "HIGH, ABOVE_NORMAL, NORMAL, BELOW_NORMAL, LOW, VERY_LOW, LOWEST", NULL);
    expect_error("rule",
                 "custom_hooks:\n"
                 "  - {type: EarlyStoppingHook, monitor: accuracy/top1, rule: bigger}\n",
                 CONFIG, "rule.yaml:26:", "bigger", "greater|less", NULL);

    /* Not strict: a warning, and training goes on. */
    run_dir d;
    run_dir_make(&d, "hooks", "lenient");
    const char *cfg = write_config(&d, "lenient",
                                   "custom_hooks:\n"
                                   "  - {type: EarlyStoppingHook, monitor: loss/val}\n");
    proc_result r = train(&d, cfg, NULL, NULL);
    expect(&r, OK, "EarlyStoppingHook: monitor 'loss/val' is not among the validation metrics "
                   "(accuracy/top1); early stopping is off");
    proc_result_free(&r);
    run_dir_remove(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logger_lines_and_jsonl),
        cmocka_unit_test(test_logger_iteration_based),
        cmocka_unit_test(test_logger_eval_and_test),
        cmocka_unit_test(test_priority_override),
        cmocka_unit_test(test_checkpoint_rotation_and_best),
        cmocka_unit_test(test_checkpoint_out_dir_and_template),
        cmocka_unit_test(test_early_stopping),
        cmocka_unit_test(test_ema),
        cmocka_unit_test(test_ema_in_test),
        cmocka_unit_test(test_progress_bar),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
