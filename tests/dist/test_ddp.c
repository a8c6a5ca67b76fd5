/* tests/dist/test_ddp.c — data-parallel training: the real dkhost on the toy
 * data set, under mpiexec.
 *
 *   test_ddp usage               --launcher errors (any build)
 *   test_ddp singleton           --launcher mpi without mpiexec: MPI starts as a
 *                                singleton, world size 1 (without MPI: the message)
 *   test_ddp equivalence MPIEXEC 2 ranks x batch 16 against 1 rank x batch 32 (same
 *                                global batches): the final weights and optimizer
 *                                state agree within TOL; only rank 0 wrote files
 *   test_ddp sharded-eval MPIEXEC  dkhost test on 2 and 3 ranks (and validation on 3)
 *                                over 61 samples: the metrics of one process
 *   test_ddp kill MPIEXEC        rank 1 of 2 dies (SIGKILL) mid-run: the job ends
 *                                non-zero within 60 s, and the output names rank 1
 *   test_ddp resume-world MPIEXEC  a 2-rank checkpoint resumed on 1 and 3 ranks: the
 *                                counters continue from the global sample count;
 *                                auto_scale_lr
 *   test_ddp sync-bn MPIEXEC     a LeNet with batch norm: 2 ranks x 16 with sync_bn
 *                                against 1 rank x 32 (within TOL); without sync_bn the
 *                                runs differ; excluding every layer = without
 *   test_ddp sync-bn-config      sync_bn mistakes: config errors naming key and file:line
 *   test_ddp skip REASON         prints the reason and exits 77 (ctest: skipped)
 *
 * Why the runs see the same samples: with shuffle, the default sampler draws
 * one permutation of the 128 samples per epoch on every rank; rank r takes
 * positions r, r+2, r+4, ..., so batch k of the two ranks together is exactly
 * positions [32k, 32k+32) of the permutation, the 1-rank run's batch k. The
 * loss is a mean over the batch, and the ranks' gradients are averaged, so
 * only the order of float additions differs. The LeNet runs without batch
 * norm there: batch statistics over 16 samples are not those over 32; the
 * sync-bn mode runs it with batch norm and sync_bn.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dk/dk.h>

#include "ckpt/ckpt.h"
#include "dist/dist.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../integration/proc.h"
#include "../runner/toy_run.h"

#define DKHOST DK_BINARY_DIR "/bin/dkhost"

/* The tolerance of the equivalence, relative to each tensor's largest
 * magnitude: max |a - b| <= TOL * max |b| over a tensor's elements (a single
 * element near zero has no useful relative error). Measured: about 1e-7 (the
 * float rounding of sums taken in another order, over 8 steps). */
#define TOL 1e-5

static const char *mpiexec;

/* 128 samples, 2 epochs; per rank batch 16 on 2 ranks (or 32 on one): 4
 * updates an epoch, each the last of an accumulation block of 2, with
 * momentum, weight decay and clipping by norm, so every part of the update
 * sees the averaged gradients. Tiny buckets (~1 KiB) split the 492
 * parameters' gradients over several all-reduces. */
static const char config[] =
    "model:\n"
    "  type: ImageClassifier\n"
    "  backbone: {type: LeNet, in_channels: 1, input_size: 8, channels: [4, 8],\n"
    "             batch_norm: false}\n"
    "  head: {type: LinearClsHead, in_channels: 32, num_classes: 4,\n"
    "         loss: {type: CrossEntropyLoss}}\n"
    "train_dataloader:\n"
    "  batch_size: 16\n"
    "  shuffle: true\n"
    "  dataset: {type: ToyBlobs, num_samples: 128}\n"
    "val_dataloader:\n"
    "  batch_size: 64\n"
    "  dataset: {type: ToyBlobs, num_samples: 64, noise_seed: 7}\n"
    "val_evaluator: [{type: Accuracy, topk: [1]}]\n"
    "optim_wrapper:\n"
    "  optimizer: {type: SGD, lr: 0.05, momentum: 0.9, weight_decay: 0.0001}\n"
    "  clip_grad: {max_norm: 1.0}\n"
    "  accumulative_counts: 2\n"
    "default_hooks:\n"
    "  logger: {type: LoggerHook, interval: 1}\n"
    "  checkpoint: {type: CheckpointHook, interval: 1}\n"
    "custom_hooks: [{type: LrMonitorHook}]\n"
    "train_cfg: {max_epochs: 2}\n"
    "dist_cfg: {bucket_size_mb: 0.001}\n"
    "seed: 3\n"
    "deterministic: true\n"
    "env_cfg: {num_threads: 1}\n";

static char *config_in(const run_dir *d)
{
    char *path = malloc(600);
    snprintf(path, 600, "%s/toy.yaml", d->root);
    assert_int_equal(write_file(path, config), 0);
    return path;
}

/* Monotonic seconds. */
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Runs `mpiexec -n np ... dkhost --plugins TOY --plugins FIXTURES ARGS...`
 * (ARGS NULL-terminated), under `timeout -s KILL bound_s` when bound_s > 0.
 * The flags are those of tests/dist/CMakeLists.txt for root, containers and
 * more ranks than cores. */
static proc_result ranks_run(int np, int bound_s, ...)
{
    char nps[16], bound[16];
    snprintf(nps, sizeof nps, "%d", np);
    snprintf(bound, sizeof bound, "%d", bound_s);
    const char *argv[64];
    int n = 0;
    if (bound_s > 0) {
        static const char *const timeout[] = {"/usr/bin/timeout", "-s", "KILL"};
        for (int i = 0; i < 3; i++)
            argv[n++] = timeout[i];
        argv[n++] = bound;
    }
    const char *const head[] = {mpiexec, "-n", nps, "--allow-run-as-root", "--oversubscribe",
                                "--bind-to", "none", DKHOST, "--plugins", TOY_PLUGINS,
                                "--plugins", DK_BINARY_DIR "/tests/dist/plugins"};
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
        argv[n++] = head[i];
    va_list ap;
    va_start(ap, bound_s);
    for (const char *a; (a = va_arg(ap, const char *));) {
        if (n >= (int)(sizeof argv / sizeof argv[0]) - 1)
            fail_msg("ranks_run: too many arguments");
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    return proc_run(argv);
}

/* Names in dir (not . and ..), and how many end in suffix. */
static int count_files(const char *dir, const char *suffix, int *with_suffix)
{
    DIR *dh = opendir(dir);
    if (!dh)
        fail_msg("cannot open %s", dir);
    int n = 0;
    *with_suffix = 0;
    for (struct dirent *e; (e = readdir(dh));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n++;
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (len >= sl && strcmp(e->d_name + len - sl, suffix) == 0)
            (*with_suffix)++;
    }
    closedir(dh);
    return n;
}

/* The text of the only file in dir ending in suffix. */
static char *only_file(const char *dir, const char *suffix)
{
    DIR *dh = opendir(dir);
    if (!dh)
        fail_msg("cannot open %s", dir);
    char *text = NULL;
    for (struct dirent *e; (e = readdir(dh));) {
        size_t len = strlen(e->d_name), sl = strlen(suffix);
        if (len < sl || strcmp(e->d_name + len - sl, suffix) != 0)
            continue;
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        assert_null(text);
        text = read_file(path);
    }
    closedir(dh);
    assert_non_null(text);
    return text;
}

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Reads tensor i of c as f64 values (f32 or f64 tensors); *n elements. */
static double *read_values(dkh_ckpt *c, size_t i, int64_t *n)
{
    int64_t shape[DK_MAX_DIMS];
    int ndim = dkh_ckpt_shape(c, i, shape);
    dk_dtype dt = dkh_ckpt_dtype(c, i);
    dk_tensor *t = dk_empty(ndim, shape, dt, (dk_device){DK_DEVICE_CPU, 0});
    assert_int_equal(dkh_ckpt_read(c, i, t), DK_OK);
    *n = dk_tensor_numel(t);
    double *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    for (int64_t k = 0; k < *n; k++) {
        if (dt == DK_DTYPE_F32)
            v[k] = ((const float *)dk_tensor_data(t))[k];
        else if (dt == DK_DTYPE_F64)
            v[k] = ((const double *)dk_tensor_data(t))[k];
        else if (dt == DK_DTYPE_I64)
            v[k] = (double)((const int64_t *)dk_tensor_data(t))[k];
        else
            fail_msg("%s: unexpected dtype", dkh_ckpt_name(c, i));
    }
    dk_tensor_release(t);
    return v;
}

/* The largest relative difference of a "model." or "optim." tensor of a
 * from b's, relative to the larger of the tensor's largest magnitude and
 * floor; with must_agree, every one must be within TOL. */
static double ckpt_difference(const char *a_path, const char *b_path, bool must_agree,
                              double floor)
{
    dkh_ckpt *a = NULL, *b = NULL;
    assert_int_equal(dkh_ckpt_open(a_path, &a), DK_OK);
    assert_int_equal(dkh_ckpt_open(b_path, &b), DK_OK);
    assert_int_equal(dkh_ckpt_count(a), dkh_ckpt_count(b));
    double worst = 0;
    size_t compared = 0;
    for (size_t i = 0; i < dkh_ckpt_count(a); i++) {
        const char *name = dkh_ckpt_name(a, i);
        if (strncmp(name, "model.", 6) != 0 && strncmp(name, "optim.", 6) != 0)
            continue;
        int64_t j = dkh_ckpt_find(b, name);
        if (j < 0)
            fail_msg("%s has %s, %s does not", a_path, name, b_path);
        int64_t na = 0, nb = 0;
        double *va = read_values(a, i, &na), *vb = read_values(b, (size_t)j, &nb);
        assert_int_equal(na, nb);
        double diff = 0, scale = 0;
        int64_t at = 0;
        for (int64_t k = 0; k < na; k++) {
            double d = fabs(va[k] - vb[k]);
            if (!(d <= diff)) { /* NaN too */
                diff = d;
                at = k;
            }
            scale = fmax(scale, fabs(vb[k]));
        }
        scale = fmax(scale, floor);
        if (must_agree && !(diff <= TOL * scale))
            fail_msg("%s[%lld]: %.9g (2 ranks) vs %.9g (1 rank), largest |value| %.9g", name,
                     (long long)at, va[at], vb[at], scale);
        if (scale > 0 && !(diff / scale <= worst))
            worst = diff / scale;
        free(va);
        free(vb);
        compared++;
    }
    assert_true(compared >= 10); /* 10 model tensors, and their momentum buffers */
    dkh_ckpt_close(a);
    dkh_ckpt_close(b);
    return worst;
}

/* Every "model." and "optim." tensor of a agrees with b's within TOL; returns
 * the largest relative difference of a tensor. */
static double compare_ckpts(const char *a_path, const char *b_path)
{
    return ckpt_difference(a_path, b_path, true, 0);
}

static void test_equivalence(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "ddp", "equiv");
    char *cfg = config_in(&d);
    char w1[600], w2[600];
    snprintf(w1, sizeof w1, "%s/one", d.root);
    snprintf(w2, sizeof w2, "%s/two", d.root);

    proc_result r = ranks_run(2, 0, "train", cfg, "--launcher", "mpi", "--work-dir", w2, NULL);
    proc_expect(&r, 0, NULL, "rank 0 of 2 (backend mpi, launcher mpi)");
    /* Rank 1 logs warnings and errors only, and there were none. */
    if (strstr(r.err, "[rank 1]") || strstr(r.out, "[rank 1]"))
        fail_msg("rank 1 logged:\n%s", r.err);
    proc_result_free(&r);

    r = dkhost_run("--plugins", TOY_PLUGINS, "train", cfg, "--work-dir", w1, "--cfg-options",
                   "train_dataloader.batch_size=32", NULL);
    proc_expect(&r, 0, NULL, "done: the log is");
    proc_result_free(&r);

    char a[700], b[700];
    snprintf(a, sizeof a, "%s/epoch_2.dkpt", w2);
    snprintf(b, sizeof b, "%s/epoch_2.dkpt", w1);
    double worst = compare_ckpts(a, b);
    printf("largest relative difference of the final weights and momenta: %.3g (tolerance "
           "%g)\n", worst, TOL);

    /* Only rank 0 wrote: the same files as the 1-rank run (the resolved config,
     * one log, one JSONL, two checkpoints), each written once. */
    int logs = 0, n1 = count_files(w1, ".log", &logs);
    assert_int_equal(logs, 1);
    int n2 = count_files(w2, ".log", &logs);
    assert_int_equal(logs, 1);
    assert_int_equal(n1, 5);
    assert_int_equal(n2, n1);
    char *log = only_file(w2, ".log");
    assert_int_equal(count_of(log, "dkhost train: "), 1);
    assert_non_null(strstr(log, "    world_size: 2\n"));
    assert_non_null(strstr(log, "    dist_backend: mpi\n"));
    assert_non_null(strstr(log, "    launcher: mpi\n"));
    assert_int_equal(count_of(log, "saved checkpoint"), 2);
    free(log);
    /* 8 iterations logged once each (interval 1), and as many records of the
     * learning rate and of validation as the 1-rank run wrote. */
    char *jsonl = only_file(w2, ".jsonl"), *jsonl1 = only_file(w1, ".jsonl");
    assert_int_equal(count_of(jsonl, "\"mode\": \"train\""), 8);
    assert_int_equal(count_of(jsonl, "\"mode\": \"lr\""), count_of(jsonl1, "\"mode\": \"lr\""));
    assert_int_equal(count_of(jsonl, "\"mode\": \"val\""), 2);
    assert_int_equal(count_of(jsonl1, "\"mode\": \"val\""), 2);
    free(jsonl);
    free(jsonl1);

    /* Every rank resumes from rank 0's checkpoint and finishes the run. */
    snprintf(a, sizeof a, "%s/epoch_1.dkpt", w2);
    r = ranks_run(2, 0, "train", cfg, "--launcher", "mpi", "--work-dir", w2, "--resume-from", a,
                  NULL);
    proc_expect(&r, 0, NULL, "resumed");
    proc_result_free(&r);
    snprintf(a, sizeof a, "%s/epoch_2.dkpt", w2);
    compare_ckpts(a, b);

    free(cfg);
    run_dir_remove(&d);
}

/* The "test results: ..." line of a dkhost test run's output (new string). */
static char *results_line(const proc_result *r)
{
    const char *text = strstr(r->out, "test results: ") ? r->out : r->err;
    const char *p = strstr(text, "test results: ");
    if (!p)
        fail_msg("no test results in:\n%s\n%s", r->out, r->err);
    size_t n = strcspn(p, "\n");
    char *line = malloc(n + 1);
    memcpy(line, p, n);
    line[n] = '\0';
    return line;
}

/* Sharded evaluation: 61 test samples (not a multiple of 2 or 3) on 2 and 3
 * ranks give exactly the metrics of one process, i.e. every sample counts
 * once (the padded repeats do not). A model trained for one epoch with a small
 * learning rate on noisy data is wrong on some samples, so counting a repeat
 * would change the numbers. Also validation inside a 3-rank training run. */
static void test_sharded_eval(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "ddp", "eval");
    char *cfg = config_in(&d);
    char w1[600], ck[700], wt[600];
    snprintf(w1, sizeof w1, "%s/one", d.root);
    snprintf(wt, sizeof wt, "%s/test", d.root);
    static const char test_split[] =
        "test_dataloader={batch_size: 8, dataset: {type: ToyBlobs, num_samples: 61, "
        "noise_seed: 11, noise: 3.0}}";
    proc_result r = dkhost_run("--plugins", TOY_PLUGINS, "train", cfg, "--work-dir", w1,
                               "--cfg-options", "train_cfg.max_epochs=1",
                               "optim_wrapper.optimizer.lr=0.002", NULL);
    proc_expect(&r, 0, NULL, "done: the log is");
    proc_result_free(&r);
    snprintf(ck, sizeof ck, "%s/epoch_1.dkpt", w1);

    r = dkhost_run("--plugins", TOY_PLUGINS, "test", cfg, "--checkpoint", ck, "--work-dir", wt,
                   "--cfg-options", test_split, "test_evaluator=[{type: Accuracy, topk: [1, 2]}]",
                   NULL);
    proc_expect(&r, 0, NULL, NULL);
    char *one = results_line(&r);
    proc_result_free(&r);
    printf("1 rank:  %s\n", one);
    assert_null(strstr(one, "top1: 100.0000"));
    assert_null(strstr(one, "top1: 0.0000"));

    for (int np = 2; np <= 3; np++) {
        r = ranks_run(np, 0, "test", cfg, "--checkpoint", ck, "--work-dir", wt, "--launcher", "mpi",
                      "--cfg-options", test_split,
                      "test_evaluator=[{type: Accuracy, topk: [1, 2]}]", NULL);
        proc_expect(&r, 0, NULL, NULL);
        char *many = results_line(&r);
        printf("%d ranks: %s\n", np, many);
        assert_string_equal(many, one);
        /* Only rank 0 reports. */
        assert_int_equal(count_of(r.out, "test results: ") + count_of(r.err, "test results: "),
                         1);
        free(many);
        proc_result_free(&r);
    }
    free(one);

    /* Validation inside training: 61 validation samples, one epoch, 1 and 3
     * ranks (same global batch: 48 = 3 x 16), the same val accuracy. */
    static const char val_split[] =
        "val_dataloader={batch_size: 8, dataset: {type: ToyBlobs, num_samples: 61, "
        "noise_seed: 11, noise: 3.0}}";
    char wa[600], wb[600];
    snprintf(wa, sizeof wa, "%s/val1", d.root);
    snprintf(wb, sizeof wb, "%s/val3", d.root);
    r = dkhost_run("--plugins", TOY_PLUGINS, "train", cfg, "--work-dir", wa, "--cfg-options",
                   "train_cfg.max_epochs=1", "train_dataloader.batch_size=48",
                   "train_dataloader.dataset.num_samples=96", "optim_wrapper.accumulative_counts=1",
                   "optim_wrapper.optimizer.lr=0.002", val_split, NULL);
    proc_expect(&r, 0, NULL, NULL);
    proc_result_free(&r);
    r = ranks_run(3, 0, "train", cfg, "--launcher", "mpi", "--work-dir", wb, "--cfg-options",
                  "train_cfg.max_epochs=1", "train_dataloader.dataset.num_samples=96",
                  "optim_wrapper.accumulative_counts=1", "optim_wrapper.optimizer.lr=0.002",
                  val_split, NULL);
    proc_expect(&r, 0, NULL, NULL);
    proc_result_free(&r);
    char *ja = only_file(wa, ".jsonl"), *jb = only_file(wb, ".jsonl");
    const char *va = strstr(ja, "\"accuracy/top1\": "), *vb = strstr(jb, "\"accuracy/top1\": ");
    assert_non_null(va);
    assert_non_null(vb);
    double a = strtod(va + 17, NULL), b = strtod(vb + 17, NULL);
    printf("validation top1: 1 rank %.6f, 3 ranks %.6f\n", a, b);
    /* Equal weights within float rounding; on 61 samples one flipped answer
     * is 1.6 points, so the accuracies are equal. */
    assert_true(fabs(a - b) < 1e-9);
    free(ja);
    free(jb);

    free(cfg);
    run_dir_remove(&d);
}

/* A rank killed mid-run: under mpiexec -n 2, rank 1 kills itself with SIGKILL
 * after its third iteration (the test-only FxKillRankHook). Rank 0 is then in
 * (or about to enter) a collective that will never complete; mpiexec notices
 * the dead process and ends the job. The job must exit non-zero within
 * KILL_BOUND_S seconds (coreutils' timeout kills mpiexec after that) and the
 * output must name rank 1. Measured: about 2.5 s, exit status 137, and
 * "mpiexec noticed that process rank 1 with PID 0 on node vm exited on signal
 * 9 (Killed)." on stderr. */
#define KILL_BOUND_S 60
static void test_kill(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "ddp", "kill");
    char *cfg = config_in(&d);
    char w[600];
    snprintf(w, sizeof w, "%s/work", d.root);
    double t0 = now_s();
    proc_result r = ranks_run(2, KILL_BOUND_S, "train", cfg, "--launcher", "mpi", "--work-dir", w,
                              "--cfg-options",
                              "custom_hooks=[{type: FxKillRankHook, rank: 1, after_iter: 3}]",
                              "train_cfg.max_epochs=50", NULL);
    double secs = now_s() - t0;
    printf("the job ended after %.1f s with status %d\n", secs, r.status);
    /* mpiexec itself exits 137 (128 + the signal of the dead rank); a kill by
     * timeout would show as 137 too, hence the time. */
    if (r.status == 0 || secs >= KILL_BOUND_S - 1)
        fail_msg("status %d after %.1f s; stdout:\n%s\nstderr:\n%s", r.status, secs, r.out,
                 r.err);
    /* Open MPI's own report: "mpirun noticed that process rank 1 with PID
     * ... on node ... exited on signal 9 (Killed)." */
    const char *where = strstr(r.err, "process rank 1") ? r.err : r.out;
    if (!strstr(where, "process rank 1") || !strstr(where, "signal 9"))
        fail_msg("the output does not name rank 1 and signal 9:\nstdout:\n%s\nstderr:\n%s",
                 r.out, r.err);
    proc_result_free(&r);
    free(cfg);
    run_dir_remove(&d);
}

/* One rank fails (FxFailRankHook returns an I/O error on it alone).
 * (Open MPI's own "MPI_ABORT was invoked" note is not checked: it is lost
 * now and then when mpirun ends the job first.)
 * Outside any agreement (before training on rank 1; mid-training on rank 0,
 * like a file it cannot write) the others could not know and would wait in
 * their next collective: the failing rank logs its message and ends the job
 * (MPI_Abort) with its exit code, 5. In an evaluation step (rank 1's
 * before_val_iter) the step's gather tells every rank, and all fail, rank 0
 * saying which rank failed; mpirun's status is then non-zero. */
static void test_fail_one_rank(void **state)
{
    (void)state;
    static const struct {
        const char *hook, *says, *also;
        int status; /* -1: any non-zero */
    } cases[] = {
        {"{type: FxFailRankHook, rank: 1, point: before_run}",
         "FxFailRankHook: rank 1 of 2 fails in before_run at iteration 0", NULL, 5},
        {"{type: FxFailRankHook, rank: 0, point: after_train_iter, after_iter: 3}",
         "FxFailRankHook: rank 0 of 2 fails in after_train_iter at iteration 3", NULL, 5},
        {"{type: FxFailRankHook, rank: 1, point: before_val_iter}",
         "FxFailRankHook: rank 1 of 2 fails in before_val_iter",
         "evaluation: rank 1 failed at batch 0", -1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        run_dir d;
        char name[32];
        snprintf(name, sizeof name, "fail%zu", k);
        run_dir_make(&d, "ddp", name);
        char *cfg = config_in(&d);
        char w[600], hooks[200];
        snprintf(w, sizeof w, "%s/work", d.root);
        snprintf(hooks, sizeof hooks, "custom_hooks=[%s]", cases[k].hook);
        double t0 = now_s();
        proc_result r = ranks_run(2, KILL_BOUND_S, "train", cfg, "--launcher", "mpi", "--work-dir",
                                  w, "--cfg-options", hooks, "train_cfg.max_epochs=50", NULL);
        double secs = now_s() - t0;
        printf("case %zu: the job ended after %.1f s with status %d\n", k, secs, r.status);
        bool status_ok = cases[k].status < 0 ? r.status != 0 : r.status == cases[k].status;
        if (!status_ok || secs >= KILL_BOUND_S - 1)
            fail_msg("case %zu: status %d after %.1f s (want %d, well under %d s); stdout:\n%s\n"
                     "stderr:\n%s",
                     k, r.status, secs, cases[k].status, KILL_BOUND_S, r.out, r.err);
        const char *want[] = {cases[k].says, cases[k].also};
        for (int i = 0; i < 2; i++)
            if (want[i] && !strstr(r.err, want[i]) && !strstr(r.out, want[i]))
                fail_msg("case %zu: the output lacks '%s':\nstdout:\n%s\nstderr:\n%s", k,
                         want[i], r.out, r.err);
        proc_result_free(&r);
        free(cfg);
        run_dir_remove(&d);
    }
}

/* Whether the metadata of the checkpoint at path has line `line` (a
 * top-level "key: value"). */
static void expect_meta(const char *path, const char *line)
{
    dkh_ckpt *c = NULL;
    assert_int_equal(dkh_ckpt_open(path, &c), DK_OK);
    const char *meta = dkh_ckpt_meta(c);
    size_t n = strlen(line);
    bool found = false;
    for (const char *p = meta; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
            found = true;
    if (!found)
        fail_msg("%s: no line '%s' in its metadata:\n%s", path, line, meta);
    dkh_ckpt_close(c);
}

/* Resume across world sizes: a 2-rank run's end-of-epoch-1 checkpoint (4
 * iterations of 2 x 16, 128 samples) resumed on 1 rank (8 iterations an
 * epoch) and on 3 ranks (43 padded samples per rank: 3 iterations an epoch)
 * ends epoch 2 at iteration 12 and 7, both having seen 256 samples (each
 * sample once an epoch, padding not counted). The log says which learning
 * rate rule holds; auto_scale_lr scales it by (3 x 16) / 32 = 1.5. */
static void test_resume_world(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "ddp", "resume");
    char *cfg = config_in(&d);
    char w2[600], w1[600], w3[600], w3s[600], ck[700], out[700];
    snprintf(w2, sizeof w2, "%s/two", d.root);
    snprintf(w1, sizeof w1, "%s/one", d.root);
    snprintf(w3, sizeof w3, "%s/three", d.root);
    snprintf(w3s, sizeof w3s, "%s/three-scaled", d.root);
    proc_result r = ranks_run(2, 0, "train", cfg, "--launcher", "mpi", "--work-dir", w2,
                              "--cfg-options", "train_cfg.max_epochs=1", NULL);
    proc_expect(&r, 0, NULL, "learning rate: as configured, not scaled (auto_scale_lr off); "
                             "global batch 32 = 2 ranks x batch 16");
    proc_result_free(&r);
    snprintf(ck, sizeof ck, "%s/epoch_1.dkpt", w2);
    expect_meta(ck, "samples_seen: 128");
    expect_meta(ck, "iteration: 4");
    expect_meta(ck, "world_size: 2");

    r = dkhost_run("--plugins", TOY_PLUGINS, "train", cfg, "--work-dir", w1, "--resume-from", ck,
                   NULL);
    proc_expect(&r, 0, NULL, "saved by 2 ranks x batch 16, resuming on 1 ranks x batch 16");
    assert_non_null(strstr(r.err, "epoch 1, iteration 4 (0 batches into the epoch), 128 "
                                  "samples seen"));
    proc_result_free(&r);
    snprintf(out, sizeof out, "%s/epoch_2.dkpt", w1);
    expect_meta(out, "epoch: 2");
    expect_meta(out, "iteration: 12");
    expect_meta(out, "samples_seen: 256");
    expect_meta(out, "world_size: 1");

    r = ranks_run(3, 0, "train", cfg, "--launcher", "mpi", "--work-dir", w3, "--resume-from", ck,
                  NULL);
    proc_expect(&r, 0, NULL, "saved by 2 ranks x batch 16, resuming on 3 ranks x batch 16");
    assert_non_null(strstr(r.err, "learning rate: as configured, not scaled (auto_scale_lr off); "
                                  "global batch 48 = 3 ranks x batch 16"));
    proc_result_free(&r);
    snprintf(out, sizeof out, "%s/epoch_2.dkpt", w3);
    expect_meta(out, "epoch: 2");
    expect_meta(out, "iteration: 7");
    expect_meta(out, "samples_seen: 256");
    expect_meta(out, "world_size: 3");

    r = ranks_run(3, 0, "train", cfg, "--launcher", "mpi", "--work-dir", w3s, "--resume-from", ck,
                  "--cfg-options", "auto_scale_lr={enable: true, base_batch_size: 32}", NULL);
    proc_expect(&r, 0, NULL, "learning rate: scaled by 1.5 (auto_scale_lr): global batch 48 = "
                             "3 ranks x batch 16, base_batch_size 32");
    proc_result_free(&r);
    char *jsonl = only_file(w3s, ".jsonl");
    assert_non_null(strstr(jsonl, "\"lr\": 0.075"));
    free(jsonl);
    /* Without a base batch size, enabling it is an error. */
    r = dkhost_run("--plugins", TOY_PLUGINS, "train", cfg, "--work-dir", w1, "--cfg-options",
                   "auto_scale_lr={enable: true}", NULL);
    proc_expect(&r, 3, NULL, "auto_scale_lr: enable is true, so base_batch_size must be given");
    proc_result_free(&r);

    free(cfg);
    run_dir_remove(&d);
}

/* SyncBN: the LeNet with batch norm (two layers, backbone.bn1 and
 * backbone.bn2) on 2 ranks x batch 16 with sync_bn: true ends with the
 * weights, momenta and running statistics of 1 rank x batch 32, within TOL
 * (the same config: shuffle, accumulation of 2, clipping). Without sync_bn
 * each rank normalises over its own 16 samples and the runs differ by far
 * more than TOL, so the comparison can fail; excluding both layers is the
 * run without sync_bn, bit for bit. */
/* The biases of the convolutions right before batch norm have a gradient
 * of zero in exact arithmetic (the normalisation subtracts them again): what
 * they get is rounding noise of the sums over the batch, which differs with
 * the order of those sums, about 1e-8 against values of 1e-4 after 8 steps.
 * So the SyncBN comparison measures differences relative to the larger of a
 * tensor's largest magnitude and this floor (an absolute tolerance of
 * TOL x 0.1 = 1e-6 for small tensors); the weights are of order 0.1 to 1. */
#define SYNC_BN_FLOOR 0.1

static void run_two(const char *cfg, const char *work, const char *opt1, const char *opt2,
                    const char *want)
{
    proc_result r = ranks_run(2, 0, "train", cfg, "--launcher", "mpi", "--work-dir", work,
                              "--cfg-options", opt1, opt2, NULL);
    proc_expect(&r, 0, NULL, "rank 0 of 2 (backend mpi, launcher mpi)");
    proc_expect(&r, 0, NULL, want);
    if (strstr(r.err, "[rank 1]") || strstr(r.out, "[rank 1]"))
        fail_msg("rank 1 logged:\n%s", r.err);
    proc_result_free(&r);
}

static void test_sync_bn(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "ddp", "syncbn");
    char *cfg = config_in(&d);
    char w1[600], ws[600], wn[600], wx[600], a[700], b[700];
    snprintf(w1, sizeof w1, "%s/one", d.root);
    snprintf(ws, sizeof ws, "%s/sync", d.root);
    snprintf(wn, sizeof wn, "%s/nosync", d.root);
    snprintf(wx, sizeof wx, "%s/excluded", d.root);
    static const char bn[] = "model.backbone.batch_norm=true";

    /* One process: sync_bn is accepted and does nothing, and says so. */
    proc_result r = dkhost_run("--plugins", TOY_PLUGINS, "train", cfg, "--work-dir", w1,
                               "--cfg-options", bn, "sync_bn=true",
                               "train_dataloader.batch_size=32", NULL);
    proc_expect(&r, 0, NULL, "sync_bn: one process, so batch norm is the ordinary one");
    proc_result_free(&r);
    run_two(cfg, ws, bn, "sync_bn=true",
            "sync_bn: batch norm over the global batch of 2 ranks in 2 of 2 batch-norm layers "
            "(0 excluded)");
    run_two(cfg, wn, bn, "sync_bn=false", "done: the log is");
    run_two(cfg, wx, bn, "sync_bn={exclude: [backbone.bn1, backbone.bn2]}",
            "in 0 of 2 batch-norm layers (2 excluded)");
    snprintf(b, sizeof b, "%s/epoch_2.dkpt", w1);

    snprintf(a, sizeof a, "%s/epoch_2.dkpt", ws);
    double synced = ckpt_difference(a, b, true, SYNC_BN_FLOOR);
    snprintf(a, sizeof a, "%s/epoch_2.dkpt", wn);
    double unsynced = ckpt_difference(a, b, false, SYNC_BN_FLOOR);
    char c[700];
    snprintf(c, sizeof c, "%s/epoch_2.dkpt", wx);
    double excluded = ckpt_difference(c, a, false, 0);
    printf("largest relative difference from 1 rank x batch 32: %.3g with sync_bn, %.3g "
           "without (tolerance %g); all layers excluded vs without: %.3g\n",
           synced, unsynced, TOL, excluded);
    assert_true(unsynced > 100 * TOL);
    assert_true(excluded == 0);

    free(cfg);
    run_dir_remove(&d);
}

/* sync_bn mistakes are config errors (exit 3) naming the key and file:line,
 * also on one process, before anything trains. */
static void test_sync_bn_config(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "ddp", "syncbn-config");
    static const struct {
        const char *yaml, *key, *want; /* the message: "<key> (<dir>/bad.yaml:<want>" */
    } cases[] = {
        {"sync_bn:\n  exclude: [backbone.bn1, backbone.bn3]\n", "sync_bn.exclude.1",
         "29:27): 'backbone.bn3' is the module path prefix of no batch-norm layer of the model "
         "(its batch-norm layers: backbone.bn1, backbone.bn2)"},
        /* Whole path components: "backbone.bn" is no prefix of "backbone.bn1". */
        {"sync_bn: {exclude: [backbone.bn]}\n", "sync_bn.exclude.0",
         "28:21): 'backbone.bn' is the module path prefix of no batch-norm layer"},
        {"sync_bn: [backbone.bn1]\n", "sync_bn",
         "28:10): expected true, false or {exclude: [module path prefix, ...]}, got a list"},
        {"sync_bn: {exlude: [backbone.bn1]}\n", "sync_bn.exlude",
         "28:19): unknown key 'exlude' (sync_bn takes only exclude: a list of module path "
         "prefixes)"},
        {"sync_bn: {exclude: backbone.bn1}\n", "sync_bn.exclude",
         "28:20): expected a list of module path prefixes, got a string"},
        {"sync_bn: {exclude: ['']}\n", "sync_bn.exclude.0",
         "28:21): expected a module path prefix such as 'backbone.layer1', got an empty string"},
    };
    char path[700], w[600];
    snprintf(path, sizeof path, "%s/bad.yaml", d.root);
    snprintf(w, sizeof w, "%s/work", d.root);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(config) + strlen(cases[i].yaml) + 1;
        char *text = malloc(n);
        snprintf(text, n, "%s%s", config, cases[i].yaml);
        assert_int_equal(write_file(path, text), 0);
        free(text);
        proc_result r = dkhost_run("--plugins", TOY_PLUGINS, "train", path, "--work-dir", w,
                                   "--cfg-options", "model.backbone.batch_norm=true", NULL);
        char want[1200];
        snprintf(want, sizeof want, "%s (%s:%s", cases[i].key, path, cases[i].want);
        proc_expect(&r, 3, NULL, want);
        proc_result_free(&r);
    }
    run_dir_remove(&d);
}

static void test_usage(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "ddp", "usage");
    char *cfg = config_in(&d);
    /* NCCL's id travels over MPI: no launcher, no nccl (exit 3, with where). */
    proc_result r = dkhost_run("--plugins", TOY_PLUGINS, "train", cfg, "--cfg-options",
                               "dist_cfg.backend=nccl", NULL);
    proc_expect(&r, 3, NULL, "dist_cfg.backend (");
    assert_non_null(strstr(r.err, "): nccl needs --launcher mpi or slurm (the NCCL id is "
                                  "broadcast over MPI); a single process uses auto or mpi"));
    proc_result_free(&r);
    r = dkhost_run("train", cfg, "--launcher", "mpx", NULL);
    proc_expect(&r, 2, NULL, "unknown launcher 'mpx' (expected none, mpi or slurm) (did you "
                             "mean 'mpi'?)");
    proc_result_free(&r);
    r = dkhost_run("train", cfg, "--launcher", "torch", NULL);
    proc_expect(&r, 2, NULL, "unknown launcher 'torch'");
    assert_null(strstr(r.err, "did you mean"));
    proc_result_free(&r);
    r = dkhost_run("train", cfg, "--launcher", NULL);
    proc_expect(&r, 2, NULL, "option --launcher needs a value");
    proc_result_free(&r);
    r = dkhost_run("predict", cfg, "--checkpoint", "x.dkpt", "--launcher", "mpi", NULL);
    proc_expect(&r, 2, NULL, "--launcher is an option of 'dkhost train' and 'dkhost test'");
    proc_result_free(&r);
    r = dkhost_run("train", cfg, "--launchr", "mpi", NULL);
    proc_expect(&r, 2, NULL, "(did you mean '--launcher'?)");
    proc_result_free(&r);

    /* A checkpoint 2 batches of 16 into an epoch cannot resume with batch 24:
     * 32 samples are no whole number of the new batches. */
    char w[600], ck[700];
    snprintf(w, sizeof w, "%s/mid", d.root);
    r = dkhost_run("--plugins", TOY_PLUGINS, "train", cfg, "--work-dir", w, "--cfg-options",
                   "train_cfg.max_epochs=1",
                   "default_hooks.checkpoint={type: CheckpointHook, interval: 2, by_epoch: false}",
                   NULL);
    proc_expect(&r, 0, NULL, NULL);
    proc_result_free(&r);
    snprintf(ck, sizeof ck, "%s/iter_2.dkpt", w);
    r = dkhost_run("--plugins", TOY_PLUGINS, "train", cfg, "--work-dir", w, "--resume-from", ck,
                   "--cfg-options", "train_dataloader.batch_size=24", NULL);
    proc_expect(&r, 3, NULL, "saved 2 batches into epoch 1 by 1 ranks x batch 16 (32 samples), "
                             "which is not a whole number of global batches of 1 ranks x batch "
                             "24");
    proc_result_free(&r);
    free(cfg);
    run_dir_remove(&d);
}

/* Without mpiexec, Open MPI starts as a singleton: one rank of one, and the
 * run is an ordinary one that says so. The launcher comes from --launcher or
 * from the config's `launcher` (the option wins). */
static void test_singleton(void **state)
{
    (void)state;
    run_dir d;
    run_dir_make(&d, "ddp", "singleton");
    char *cfg = config_in(&d);
    char w[3][600];
    for (int k = 0; k < 3; k++)
        snprintf(w[k], sizeof w[k], "%s/work%d", d.root, k);
    proc_result r = dkhost_run("--plugins", TOY_PLUGINS, "train", cfg, "--launcher", "mpi",
                               "--work-dir", w[0], "--cfg-options", "train_cfg.max_epochs=1",
                               NULL);
    proc_result rc = dkhost_run("--plugins", TOY_PLUGINS, "train", cfg, "--work-dir", w[1],
                                "--cfg-options", "train_cfg.max_epochs=1", "launcher=mpi", NULL);
    for (proc_result *p = &r; p; p = p == &r ? &rc : NULL) {
        if (dkh_dist_have_mpi()) {
            proc_expect(p, 0, NULL, "rank 0 of 1 (backend mpi, launcher mpi)");
        } else {
            proc_expect(p, 1, NULL, "--launcher mpi: ");
            assert_non_null(strstr(p->err, "without MPI"));
        }
        proc_result_free(p);
    }
    r = dkhost_run("--plugins", TOY_PLUGINS, "train", cfg, "--launcher", "none", "--work-dir",
                   w[2], "--cfg-options", "train_cfg.max_epochs=1", "launcher=mpi", NULL);
    proc_expect(&r, 0, NULL, NULL);
    assert_null(strstr(r.err, "rank 0 of"));
    proc_result_free(&r);
    free(cfg);
    run_dir_remove(&d);
}

/* The modes: each runs its tests (one or two); those that start jobs under
 * mpiexec take its path as the second argument. */
typedef struct mode {
    const char *name;
    bool mpi;
    struct CMUnitTest tests[2];
} mode;

int main(int argc, char **argv)
{
    static const mode modes[] = {
        {"usage", false, {cmocka_unit_test(test_usage)}},
        {"singleton", false, {cmocka_unit_test(test_singleton)}},
        {"sync-bn-config", false, {cmocka_unit_test(test_sync_bn_config)}},
        {"equivalence", true, {cmocka_unit_test(test_equivalence)}},
        {"sharded-eval", true, {cmocka_unit_test(test_sharded_eval)}},
        {"resume-world", true, {cmocka_unit_test(test_resume_world)}},
        {"kill", true, {cmocka_unit_test(test_kill), cmocka_unit_test(test_fail_one_rank)}},
        {"sync-bn", true, {cmocka_unit_test(test_sync_bn)}},
    };
    const char *name = argc > 1 ? argv[1] : "usage";
    if (strcmp(name, "skip") == 0) {
        printf("skipped: %s\n", argc > 2 ? argv[2] : "no reason given");
        return 77;
    }
    for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
        const mode *m = &modes[k];
        if (strcmp(name, m->name) != 0)
            continue;
        if (m->mpi && (argc < 3 || !dkh_dist_have_mpi())) {
            printf("skipped: %s\n", argc < 3 ? "no mpiexec given" : "libdk was built without MPI");
            return 77;
        }
        if (m->mpi)
            mpiexec = argv[2];
        return _cmocka_run_group_tests(m->name, m->tests, m->tests[1].test_func ? 2 : 1, NULL,
                                       NULL);
    }
    fprintf(stderr, "test_ddp: unknown mode '%s'\n", name);
    return 2;
}
