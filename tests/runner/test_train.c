/* tests/runner/test_train.c — whole training runs of the real dkhost on a toy
 * data set (tests/runner/fixtures/toy_blobs.c), seconds each:
 *
 *   - a small convnet learns the separable problem (accuracy bound), and
 *     `dkhost predict` writes its predictions, matching the test accuracy;
 *   - resume equivalence: a run resumed mid-epoch from a checkpoint, in a
 *     new process with another worker count, ends bit for bit where the
 *     uninterrupted run ends (deterministic mode);
 *   - SIGKILL at random moments while checkpoints are written every step:
 *     the newest intact checkpoint is always loadable and `auto` resumes;
 *   - Ctrl-C saves the run and `--resume-from auto` continues it;
 *   - the NaN guard skips a poisoned step and the weights stay finite, and
 *     rolls a diverged run back to its last checkpoint with a damped rate;
 *   - a missing, damaged or foreign checkpoint ends with a clear message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dk/dk.h>

#include "ckpt/ckpt.h"
#include "plugin/registry.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../integration/proc.h"
#include "toy_run.h"

#define FIXTURES TOY_PLUGINS
#define DKHOST DK_BINARY_DIR "/bin/dkhost"

enum { OK = 0, RUNTIME = 1, USAGE = 2, CONFIG = 3, PLUGIN = 4, DATA = 5 };

/* The toy run: 256 samples, batch 32 (8 iterations an epoch). */
static const char base_config[] =
    TOY_MODEL_CONFIG
    "train_dataloader:\n"
    "  batch_size: 32\n"
    "  shuffle: true\n"
    "  num_workers: 0\n"
    "  dataset:\n"
    "    type: ToyBlobs\n"
    "    num_samples: 256\n"
    "    nan_at: ${vars.nan_at}\n"
    "    pipeline: [{type: RandomFlip, prob: 0.5}]\n"
    "val_dataloader:\n"
    "  batch_size: 64\n"
    "  dataset: {type: ToyBlobs, num_samples: 128, noise_seed: 7}\n"
    "val_evaluator: [{type: Accuracy, topk: [1]}]\n"
    "optim_wrapper:\n"
    "  optimizer: {type: SGD, lr: 0.05, momentum: 0.9, weight_decay: 0.0001}\n"
    "param_scheduler:\n"
    "  - {type: CosineAnnealingLR, by_epoch: false, begin: 0, end: 24}\n"
    "train_cfg: {max_epochs: 3}\n"
    "seed: 3\n"
    "deterministic: true\n"
    "env_cfg: {num_threads: 2}\n"
    "vars: {nan_at: -1}\n";

/* Writes <root>/base.yaml (the base config) and <root>/<name>.yaml, which
 * inherits it and adds extra (merged over the base: maps key by key, other
 * values replaced); returns the latter's path. */
static char *write_config(const run_dir *d, const char *name, const char *extra)
{
    char *path = malloc(700);
    snprintf(path, 700, "%s/base.yaml", d->root);
    assert_int_equal(write_file(path, base_config), 0);
    snprintf(path, 700, "%s/%s.yaml", d->root, name);
    size_t n = strlen(extra ? extra : "") + 64;
    char *text = malloc(n);
    snprintf(text, n, "_base_: [base.yaml]\n%s", extra ? extra : "");
    assert_int_equal(write_file(path, text), 0);
    free(text);
    return path;
}

static char *path_in(const run_dir *d, const char *a, const char *b)
{
    char *p = malloc(1024);
    snprintf(p, 1024, "%s/%s%s%s", d->root, a, b ? "/" : "", b ? b : "");
    return p;
}

/* Exit status and a piece of stderr. */
#define expect(r, status, err_has) proc_expect((r), (status), NULL, (err_has))

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Every tensor of a checkpoint whose name starts with prefix, compared
 * byte for byte with the same tensor of another. */
static void assert_same_tensors(const char *a_path, const char *b_path, const char *prefix)
{
    dkh_ckpt *a = NULL, *b = NULL;
    assert_int_equal(dkh_ckpt_open(a_path, &a), DK_OK);
    assert_int_equal(dkh_ckpt_open(b_path, &b), DK_OK);
    size_t compared = 0;
    for (size_t i = 0; i < dkh_ckpt_count(a); i++) {
        const char *name = dkh_ckpt_name(a, i);
        if (strncmp(name, prefix, strlen(prefix)) != 0)
            continue;
        int64_t j = dkh_ckpt_find(b, name);
        if (j < 0)
            fail_msg("%s has %s, %s does not", a_path, name, b_path);
        int64_t shape[DK_MAX_DIMS];
        int ndim = dkh_ckpt_shape(a, i, shape);
        dk_tensor *ta = dk_empty(ndim, shape, dkh_ckpt_dtype(a, i), (dk_device){DK_DEVICE_CPU, 0});
        dk_tensor *tb = dk_empty(ndim, shape, dkh_ckpt_dtype(a, i), (dk_device){DK_DEVICE_CPU, 0});
        assert_int_equal(dkh_ckpt_read(a, i, ta), DK_OK);
        assert_int_equal(dkh_ckpt_read(b, (size_t)j, tb), DK_OK);
        size_t bytes = (size_t)dk_tensor_numel(ta) * dk_dtype_size(dk_tensor_dtype(ta));
        if (memcmp(dk_tensor_data(ta), dk_tensor_data(tb), bytes) != 0)
            fail_msg("tensor %s differs between %s and %s", name, a_path, b_path);
        dk_tensor_release(ta);
        dk_tensor_release(tb);
        compared++;
    }
    assert_true(compared > 0);
    dkh_ckpt_close(a);
    dkh_ckpt_close(b);
}

/* The f32 tensors "model.*" of a checkpoint are all finite. */
static void assert_finite_model(const char *path)
{
    dkh_ckpt *c = NULL;
    assert_int_equal(dkh_ckpt_open(path, &c), DK_OK);
    for (size_t i = 0; i < dkh_ckpt_count(c); i++) {
        if (strncmp(dkh_ckpt_name(c, i), "model.", 6) != 0 || dkh_ckpt_dtype(c, i) != DK_DTYPE_F32)
            continue;
        int64_t shape[DK_MAX_DIMS];
        int ndim = dkh_ckpt_shape(c, i, shape);
        dk_tensor *t = dk_empty(ndim, shape, DK_DTYPE_F32, (dk_device){DK_DEVICE_CPU, 0});
        assert_int_equal(dkh_ckpt_read(c, i, t), DK_OK);
        const float *v = dk_tensor_data(t);
        for (int64_t k = 0; k < dk_tensor_numel(t); k++)
            if (!isfinite(v[k]))
                fail_msg("%s: %s[%lld] is not finite", path, dkh_ckpt_name(c, i), (long long)k);
        dk_tensor_release(t);
    }
    dkh_ckpt_close(c);
}

/* The number after "key: " in text, or -1. */
static double number_after(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? strtod(p + strlen(key), NULL) : -1;
}

/* ---- predict ----------------------------------------------------------------------- */

#define TOY_VAL 128 /* validation samples; ToyBlobs' label of index i is i % 4 */

typedef struct prediction {
    int line; /* where in the file (0-based) */
    int label;
    double score[4];
    char cls[8];
} prediction;

/* Parses a predict file into by_idx[sample_idx]; every index once. */
static void read_predictions(const char *path, prediction *by_idx)
{
    char *text = read_file(path);
    if (!text)
        fail_msg("no predictions file %s", path);
    bool seen[TOY_VAL] = {0};
    int lines = 0;
    for (char *line = text; *line; lines++) {
        char *nl = strchr(line, '\n');
        if (!nl)
            fail_msg("%s: unterminated last line", path);
        *nl = '\0';
        long idx = -1;
        int label = -1;
        prediction p = {0};
        if (sscanf(line, "{\"sample_idx\": %ld, \"pred_score\": [%lf, %lf, %lf, %lf], "
                   "\"pred_label\": %d, \"pred_class\": \"%7[a-h]\"}",
                   &idx, &p.score[0], &p.score[1], &p.score[2], &p.score[3], &label, p.cls) != 7)
            fail_msg("%s line %d is not a prediction: %s", path, lines + 1, line);
        if (idx < 0 || idx >= TOY_VAL || seen[idx])
            fail_msg("%s line %d: sample_idx %ld out of range or repeated", path, lines + 1, idx);
        seen[idx] = true;
        p.label = label;
        p.line = lines;
        by_idx[idx] = p;
        line = nl + 1;
    }
    assert_int_equal(lines, TOY_VAL);
    free(text);
}

/* `dkhost predict` writes one line per validation sample: its dataset index,
 * the label (the argmax of the scores, named by the dataset's class names),
 * and the scores (a softmax). Its accuracy is the test command's; the lines
 * of a shuffled loader carry the same predictions under the same indices.
 * Without weights, with --out in a missing directory: clear errors, and no
 * file left behind. */
static void check_predict(const run_dir *d, const char *cfg, const char *ckpt, double test_acc)
{
    char *out = path_in(d, "preds.jsonl", NULL);
    char *wd = path_in(d, "predict", NULL);
    proc_result r = dkhost_run("--plugins", FIXTURES, "predict", cfg, "--checkpoint", ckpt,
                               "--out", out, "--work-dir", wd, NULL);
    expect(&r, OK, "predict: 128 predictions written to ");
    proc_result_free(&r);
    static prediction plain[TOY_VAL], shuffled[TOY_VAL];
    read_predictions(out, plain);
    int correct = 0;
    for (int i = 0; i < TOY_VAL; i++) {
        const prediction *p = &plain[i];
        double sum = 0;
        int argmax = 0;
        for (int k = 0; k < 4; k++) {
            sum += p->score[k];
            if (p->score[k] > p->score[argmax])
                argmax = k;
        }
        if (fabs(sum - 1) > 1e-4 || argmax != p->label || p->cls[0] != 'a' + p->label || p->cls[1])
            fail_msg("sample %d: label %d (%s) vs scores %g %g %g %g", i, p->label, p->cls,
                     p->score[0], p->score[1], p->score[2], p->score[3]);
        correct += p->label == i % 4;
    }
    assert_float_equal(100.0 * correct / TOY_VAL, test_acc, 0.01);

    /* Shuffled and in batches of 48 (a short last batch): same lines by index. */
    char *out2 = path_in(d, "preds_shuffled.jsonl", NULL);
    r = dkhost_run("--plugins", FIXTURES, "predict", cfg, "--checkpoint", ckpt, "--out", out2,
                   "--work-dir", wd, "--cfg-options", "val_dataloader.shuffle=true",
                   "val_dataloader.batch_size=48", "val_dataloader.num_workers=2", NULL);
    expect(&r, OK, "predict: 128 predictions written to ");
    proc_result_free(&r);
    read_predictions(out2, shuffled);
    for (int i = 0; i < TOY_VAL; i++)
        for (int k = 0; k < 4; k++)
            if (fabs(plain[i].score[k] - shuffled[i].score[k]) > 1e-5)
                fail_msg("sample %d: score %d is %g in order, %g shuffled", i, k,
                         plain[i].score[k], shuffled[i].score[k]);
    int in_place = 0; /* the shuffle did reorder the lines */
    for (int i = 0; i < TOY_VAL; i++)
        in_place += plain[i].line == i && shuffled[i].line == i;
    assert_true(in_place < TOY_VAL / 2);

    /* A config without a test or validation loader has nothing to predict on. */
    r = dkhost_run("--plugins", FIXTURES, "predict", cfg, "--checkpoint", ckpt, "--work-dir", wd,
                   "--cfg-options", "val_dataloader=null", NULL);
    expect(&r, CONFIG, "predict needs a test_dataloader (or a val_dataloader)");
    proc_result_free(&r);

    r = dkhost_run("--plugins", FIXTURES, "predict", cfg, "--work-dir", wd, NULL);
    expect(&r, USAGE, "predict: which weights? give --checkpoint FILE");
    proc_result_free(&r);
    r = dkhost_run("--plugins", FIXTURES, "predict", cfg, "--checkpoint", ckpt, "--out",
                   "/nonexistent-dir/p.jsonl", "--work-dir", wd, NULL);
    expect(&r, DATA, "predict: cannot create /nonexistent-dir/p.jsonl.tmp: No such file");
    proc_result_free(&r);
    r = dkhost_run("--plugins", FIXTURES, "test", cfg, "--checkpoint", ckpt, "--out", out, NULL);
    expect(&r, USAGE, "--out is an option of 'dkhost predict'");
    proc_result_free(&r);
    r = dkhost_run("--plugins", FIXTURES, cfg, "--out", out, NULL);
    expect(&r, USAGE, "--out is an option of 'dkhost predict'");
    proc_result_free(&r);
    char *tmp = path_in(d, "preds.jsonl.tmp", NULL);
    assert_false(exists(tmp));
    free(tmp);
    free(out);
    free(out2);
    free(wd);
}

static void test_learns_and_tests(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "train", "learns");
    char *cfg = write_config(&d, "toy", "default_hooks:\n"
                                        "  logger: {type: LoggerHook, interval: 4}\n"
                                        "  checkpoint: {type: CheckpointHook, interval: 1}\n");
    char *wd = path_in(&d, "work", NULL);
    proc_result r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wd, NULL);
    expect(&r, OK, "done: the log is");
    proc_result_free(&r);

    char *resolved = path_in(&d, "work", "toy.yaml");
    char *last = path_in(&d, "work", "epoch_3.dkpt");
    assert_true(exists(resolved));
    assert_true(exists(last));
    /* The test command evaluates the saved weights: chance is 25%. */
    r = dkhost_run("--plugins", FIXTURES, "test", cfg, "--checkpoint", last, "--work-dir", wd, NULL);
    expect(&r, OK, "test results: accuracy/top1: ");
    double acc = number_after(r.err, "accuracy/top1: ");
    if (acc < 90.0)
        fail_msg("accuracy %.2f after 3 epochs; the toy problem is separable\n%s", acc, r.err);
    proc_result_free(&r);

    /* test without weights is a usage error. */
    r = dkhost_run("--plugins", FIXTURES, "test", cfg, "--work-dir", wd, NULL);
    expect(&r, USAGE, "--checkpoint");
    proc_result_free(&r);

    check_predict(&d, cfg, last, acc);
    free(resolved);
    free(last);
    free(wd);
    free(cfg);
    run_dir_remove(&d);
}

static void test_resume_is_bit_identical(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "train", "resume");
    /* A checkpoint every 4 iterations: iter_12 falls in the middle of epoch 2. */
    const char *hooks = "default_hooks:\n"
                        "  checkpoint: {type: CheckpointHook, interval: 4, by_epoch: false}\n";
    char *cfg = write_config(&d, "toy", hooks);
    char *wa = path_in(&d, "a", NULL), *wb = path_in(&d, "b", NULL);
    proc_result r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wa, NULL);
    expect(&r, OK, NULL);
    proc_result_free(&r);

    char *mid = path_in(&d, "a", "iter_12.dkpt");
    assert_true(exists(mid));
    /* A new process, another work dir and two loader threads. */
    r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wb, "--resume-from", mid,
                   "--cfg-options", "train_dataloader.num_workers=2", NULL);
    expect(&r, OK, "resumed from");
    assert_non_null(strstr(r.err, "4 batches into the epoch"));
    proc_result_free(&r);

    char *end_a = path_in(&d, "a", "iter_24.dkpt"), *end_b = path_in(&d, "b", "iter_24.dkpt");
    assert_same_tensors(end_a, end_b, "model.");
    assert_same_tensors(end_a, end_b, "optim.");
    free(end_a);
    free(end_b);
    free(mid);
    free(wa);
    free(wb);
    free(cfg);
    run_dir_remove(&d);
}

/* Starts dkhost on argv in the background; its output goes to log_path. */
static pid_t spawn(const char *const *argv, const char *log_path)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(log_path, "w", stderr);
        (void)f;
        if (!freopen("/dev/null", "w", stdout))
            _exit(126);
        unsetenv("DK_PLUGIN_PATH");
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void test_sigkill_while_saving(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "train", "kill");
    /* Checkpoints at every iteration, wider layers so that saving takes a while. */
    char *cfg = write_config(&d, "toy",
                             "default_hooks:\n"
                             "  checkpoint: {type: CheckpointHook, interval: 1, by_epoch: false,\n"
                             "               max_keep_ckpts: 3}\n"
                             "model:\n"
                             "  backbone: {channels: [64, 256]}\n"
                             "  head: {in_channels: 1024}\n"
                             "train_cfg: {max_epochs: 30}\n");
    char *wd = path_in(&d, "work", NULL);
    char *log = path_in(&d, "run.log", NULL);
    const char *argv[] = {DKHOST, "--plugins", FIXTURES, cfg, "--work-dir", wd,
                          "--resume-from", "auto", NULL};
    unsigned seed = (unsigned)time(NULL);
    int kills = 0;
    for (int round = 0; round < 6; round++) {
        pid_t pid = spawn(argv, log);
        sleep_ms(300 + (long)(rand_r(&seed) % 700));
        if (kill(pid, SIGKILL) == 0)
            kills++;
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        /* Whatever moment it died at, the newest checkpoint opens and verifies. */
        char *latest = NULL;
        dk_status s = dkh_ckpt_latest(wd, &latest);
        if (s == DK_OK) {
            dkh_ckpt *c = NULL;
            assert_int_equal(dkh_ckpt_open(latest, &c), DK_OK);
            assert_int_equal(dkh_ckpt_verify(c), DK_OK);
            dkh_ckpt_close(c);
            free(latest);
        } else {
            assert_int_equal(s, DK_ERR_NOT_FOUND);
        }
    }
    assert_true(kills > 0);
    /* And the run still finishes from where the last kill left it. */
    proc_result r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wd, "--resume-from",
                               "auto", NULL);
    expect(&r, OK, NULL);
    proc_result_free(&r);
    char *end = path_in(&d, "work", "iter_240.dkpt");
    assert_true(exists(end));
    assert_finite_model(end);
    free(end);
    free(log);
    free(wd);
    free(cfg);
    run_dir_remove(&d);
}

static void test_interrupt_saves_and_resumes(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "train", "sigint");
    /* A run far longer than the test: the signal always lands while it trains. */
    char *cfg = write_config(&d, "toy", "train_cfg: {max_epochs: 100000}\n");
    char *wd = path_in(&d, "work", NULL);
    char *log = path_in(&d, "run.log", NULL);
    const char *argv[] = {DKHOST, "--plugins", FIXTURES, cfg, "--work-dir", wd, NULL};
    pid_t pid = spawn(argv, log);
    /* Wait until training runs, then press Ctrl-C. */
    char *text = NULL;
    for (int i = 0; i < 600 && !(text && strstr(text, "start training")); i++) {
        free(text);
        sleep_ms(50);
        text = read_file(log);
    }
    free(text);
    sleep_ms(100);
    assert_int_equal(kill(pid, SIGINT), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    text = read_file(log);
    if (WEXITSTATUS(status) != RUNTIME || !strstr(text, "the run is saved in"))
        fail_msg("exit %d after SIGINT\n%s", WEXITSTATUS(status), text);
    free(text);
    char *saved = path_in(&d, "work", "interrupted.dkpt");
    assert_true(exists(saved));
    proc_result r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wd, "--resume-from",
                               "auto", "--cfg-options", "train_cfg.max_epochs=1", NULL);
    /* Interrupted after epoch 1 began: resuming a 1-epoch plan finishes at once or
     * continues the first epoch; either way it starts from the saved run. */
    expect(&r, OK, "resumed from");
    proc_result_free(&r);
    free(saved);
    free(log);
    free(wd);
    free(cfg);
    run_dir_remove(&d);
}

static void test_nan_guard(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "train", "nan");
    char *cfg = write_config(&d, "toy", "vars: {nan_at: 5}\n"
                                        "default_hooks:\n"
                                        "  checkpoint: {type: CheckpointHook, interval: 1}\n"
                                        "train_cfg: {max_epochs: 2}\n");
    char *wd = path_in(&d, "work", NULL);
    proc_result r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wd, NULL);
    /* Sample 5 is NaN: one step each epoch is skipped, the weights stay finite. */
    expect(&r, OK, "non-finite loss or gradient at iteration");
    proc_result_free(&r);
    char *last = path_in(&d, "work", "epoch_2.dkpt");
    assert_finite_model(last);

    r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wd, "--cfg-options",
                   "nan_guard.enabled=false", NULL);
    expect(&r, RUNTIME, "non-finite loss at iteration");
    proc_result_free(&r);
    free(last);
    free(wd);
    free(cfg);
    run_dir_remove(&d);
}

/* The metadata line "key: value" of a checkpoint, as a number (-1 if absent). */
static double ckpt_meta_number(const char *path, const char *key)
{
    dkh_ckpt *c = NULL;
    assert_int_equal(dkh_ckpt_open(path, &c), DK_OK);
    char pat[64];
    snprintf(pat, sizeof pat, "\n%s: ", key);
    double v = number_after(dkh_ckpt_meta(c), pat);
    dkh_ckpt_close(c);
    return v;
}

/* A learning rate 1e6 times larger from epoch 2 on makes the toy run diverge:
 * after more than 3 non-finite steps in a row the guard goes back to
 * epoch_1.dkpt with the rate scaled by lr_factor, and the run recovers. The
 * scale is in the later checkpoints and a resumed run keeps it. Without a
 * checkpoint, without rollbacks left, or with a factor too weak to help, the
 * run stops with the reason. */
static void test_nan_rollback(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "train", "rollback");
    char *cfg = write_config(&d, "toy", "param_scheduler:\n"
                                        "  - {type: MultiStepLR, by_epoch: true, milestones: [1], "
                                        "gamma: 1000000.0}\n"
                                        "default_hooks:\n"
                                        "  logger: {type: LoggerHook, interval: 4}\n"
                                        "  checkpoint: {type: CheckpointHook, interval: 1}\n"
                                        "nan_guard: {max_consecutive: 3, lr_factor: 0.000001}\n");
    char *wd = path_in(&d, "work", NULL);
    proc_result r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wd, NULL);
    expect(&r, OK, "non-finite loss or gradient at iteration");
    expect(&r, OK, "dataset indices ");
    expect(&r, OK, "(4 non-finite steps in a row, the last at iteration ");
    expect(&r, OK, "): rolled back to ");
    expect(&r, OK, "epoch_1.dkpt, iteration 8, with the learning rate scaled by 1e-06 (rollback 1 "
                   "of at most 3)");
    proc_result_free(&r);
    char *last = path_in(&d, "work", "epoch_3.dkpt");
    assert_finite_model(last);
    assert_float_equal(ckpt_meta_number(last, "lr_scale"), 1e-6, 1e-15);
    assert_float_equal(ckpt_meta_number(last, "nan_rollbacks"), 1, 0);
    r = dkhost_run("--plugins", FIXTURES, "test", cfg, "--checkpoint", last, "--work-dir", wd, NULL);
    expect(&r, OK, "test results: accuracy/top1: ");
    double acc = number_after(r.err, "accuracy/top1: ");
    if (acc < 90.0)
        fail_msg("accuracy %.2f after the rollback\n%s", acc, r.err);
    proc_result_free(&r);

    /* A fourth epoch resumed from the third: the damped rate (0.05 x 1e6 x 1e-6). */
    r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wd, "--resume-from", last,
                   "--cfg-options", "train_cfg.max_epochs=4", NULL);
    expect(&r, OK, "Epoch [4][4/8]  lr: 5.000e-02");
    assert_null(strstr(r.err, "non-finite"));
    proc_result_free(&r);

    /* Nothing to go back to. */
    char *wd2 = path_in(&d, "work2", NULL);
    r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wd2, "--cfg-options",
                   "default_hooks.checkpoint=null", NULL);
    expect(&r, RUNTIME, "training diverged: 4 non-finite steps in a row, the last at iteration ");
    expect(&r, RUNTIME, "work2 holds no checkpoint to roll back to; the model keeps the weights of "
                        "the last good step");
    proc_result_free(&r);
    /* No rollbacks allowed. */
    r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wd2, "--cfg-options",
                   "nan_guard.max_rollbacks=0", NULL);
    expect(&r, RUNTIME, "(epoch 2), after 0 rollbacks; the model keeps the weights");
    proc_result_free(&r);
    /* Halving a rate 1e6 too large twice does not help: two rollbacks, then the end. */
    r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wd2, "--cfg-options",
                   "nan_guard.max_rollbacks=2", "nan_guard.lr_factor=0.5", NULL);
    expect(&r, RUNTIME, "scaled by 0.25 (rollback 2 of at most 2)");
    expect(&r, RUNTIME, "), after 2 rollbacks; the model keeps the weights");
    proc_result_free(&r);
    /* A bad factor is a config error naming the key. */
    r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wd2, "--cfg-options",
                   "nan_guard.lr_factor=2", NULL);
    expect(&r, CONFIG, "lr_factor");
    proc_result_free(&r);
    free(wd2);
    free(last);
    free(wd);
    free(cfg);
    run_dir_remove(&d);
}

static void test_bad_checkpoints(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "train", "badckpt");
    char *cfg = write_config(&d, "toy", "train_cfg: {max_epochs: 1}\n");
    char *wd = path_in(&d, "work", NULL);

    char *missing = path_in(&d, "nope.dkpt", NULL);
    proc_result r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wd, "--resume-from",
                               missing, NULL);
    expect(&r, DATA, missing);
    proc_result_free(&r);

    char *garbage = path_in(&d, "garbage.dkpt", NULL);
    assert_int_equal(write_file(garbage, "this is not a checkpoint at all, just some text\n"), 0);
    r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wd, "--resume-from", garbage, NULL);
    expect(&r, DATA, garbage);
    proc_result_free(&r);
    r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wd, "--load-from", garbage, NULL);
    expect(&r, DATA, garbage);
    proc_result_free(&r);

    /* Weights of another model: nothing matches, and the message says so. */
    char *other = path_in(&d, "other.dkpt", NULL);
    dkh_ckpt_writer *w = NULL;
    assert_int_equal(dkh_ckpt_writer_open(other, &w), DK_OK);
    assert_int_equal(dkh_ckpt_writer_meta(w, "kind: weights\n"), DK_OK);
    dk_tensor *t = dk_full(1, (int64_t[]){3}, 1.0, DK_DTYPE_F32, (dk_device){DK_DEVICE_CPU, 0});
    assert_int_equal(dkh_ckpt_writer_add(w, "model.something.else", t), DK_OK);
    dk_tensor_release(t);
    assert_int_equal(dkh_ckpt_writer_commit(w), DK_OK);
    r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wd, "--load-from", other, NULL);
    expect(&r, DATA, "no tensor of the checkpoint matches");
    assert_non_null(strstr(r.err, "unexpected keys (ignored): something.else"));
    proc_result_free(&r);
    /* ... and it is not a run to resume. */
    r = dkhost_run("--plugins", FIXTURES, cfg, "--work-dir", wd, "--resume-from", other, NULL);
    expect(&r, DATA, "not a checkpoint of a training run");
    proc_result_free(&r);

    free(other);
    free(garbage);
    free(missing);
    free(wd);
    free(cfg);
    run_dir_remove(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learns_and_tests),
        cmocka_unit_test(test_resume_is_bit_identical),
        cmocka_unit_test(test_sigkill_while_saving),
        cmocka_unit_test(test_interrupt_saves_and_resumes),
        cmocka_unit_test(test_nan_guard),
        cmocka_unit_test(test_nan_rollback),
        cmocka_unit_test(test_bad_checkpoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
