/* core/cli/main.c — dkhost's command line.
 *
 * The only place that prints errors and picks exit codes: libdk returns a
 * status and a message, and this file turns them into one clear message on
 * stderr and the documented exit code (docs/cli.md):
 *
 *   0 success, 1 runtime failure, 2 usage error, 3 config error,
 *   4 plugin error, 5 data or file error.
 */
#include <dk/dk.h>

#include "../cfg/cfg.h"
#include "../dist/dist.h"
#include "../optim/optim.h"
#include "../plugin/registry.h"
#include "../runner/config_schema.h"
#include "../runner/runner.h"
#include "../util/util.h"
#include "ckpt_cmd.h"
#include "list_registry.h"
#include "new_plugin.h"
#include "plugin_path.h"
#include "sweep.h"
#include "../plugin/reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct options {
    const char *command;
    const char *config;
    const char **configs; /* every CONFIG given (sweep takes several) */
    size_t n_configs;
    int64_t repeat;           /* sweep: --repeat N */
    const char *between_runs; /* sweep: --between-runs CMD */
    const char **plugin_dirs;
    size_t n_plugin_dirs;
    const char **overrides;
    size_t n_overrides;
    const char *kind;
    const char *work_dir;
    const char *resume_from;
    const char *load_from;
    const char *checkpoint;
    const char *out;
    int64_t seed;
    int deterministic;
    const char *launcher; /* train, test: --launcher NAME, as given */
    bool no_validate;
    bool json;
    bool help;
    bool no_default_plugins;
} options;

typedef struct command {
    const char *name;
    const char *usage;
    const char *help;
    int (*run)(const options *o, dkh_registry *reg);
    bool needs_config;
} command;

static int run_train(const options *o, dkh_registry *reg);
static int run_test(const options *o, dkh_registry *reg);
static int run_predict(const options *o, dkh_registry *reg);
static int run_check(const options *o, dkh_registry *reg);
static int run_print_config(const options *o, dkh_registry *reg);
static int run_list_registry(const options *o, dkh_registry *reg);
static int run_ckpt(const options *o, dkh_registry *reg);
static int run_sweep(const options *o, dkh_registry *reg);
static int run_new_plugin(const options *o, dkh_registry *reg);

static const command commands[] = {
    {"train", "dkhost [train] CONFIG [--work-dir DIR] [--resume-from PATH|auto] [--load-from PATH]\n"
              "         [--seed N] [--deterministic] [--no-validate] [--launcher none|mpi|slurm]\n"
              "         [--cfg-options K=V ...]",
     "Train the model a config describes (the default command): logs, the resolved\n"
     "config and checkpoints go to the work dir. --resume-from continues a run\n"
     "(auto: the newest intact checkpoint in the work dir); --load-from takes weights only.\n"
     "--launcher mpi (under mpirun) or slurm (under srun) trains data-parallel.",
     run_train, true},
    {"test", "dkhost test CONFIG --checkpoint PATH [--work-dir DIR] [--launcher none|mpi|slurm]\n"
             "         [--cfg-options K=V ...]",
     "Evaluate a checkpoint's weights on the config's test_dataloader (or its\n"
     "val_dataloader) with its test_evaluator, and log the metrics. --launcher mpi\n"
     "(under mpirun) or slurm (under srun) evaluates a shard on each rank.",
     run_test, true},
    {"predict", "dkhost predict CONFIG --checkpoint PATH [--out FILE] [--work-dir DIR]\n"
                "         [--cfg-options K=V ...]",
     "Run a checkpoint's weights over the config's test_dataloader (or its\n"
     "val_dataloader) and write the model's predictions, one JSON line per sample\n"
     "with its dataset index, to FILE (default <work_dir>/predictions.jsonl).",
     run_predict, true},
    {"sweep", "dkhost sweep CONFIG... [--repeat N] [--between-runs CMD] [--work-dir DIR]\n"
              "         [--seed N] [--deterministic] [--no-validate] [--cfg-options K=V ...]",
     "Train several configs one after another in one process (each run with its own\n"
     "work dir and log, <DIR>/<index>_<stem> with --work-dir). Unchanged datasets stay\n"
     "loaded; hook plugins rebuilt between runs (--between-runs 'make -C hooks') are\n"
     "reloaded; SIGHUP or a RELOAD file in DIR reloads them all. A failed run is\n"
     "reported and the rest run; the exit code is the first failed run's.",
     run_sweep, true},
    {"check", "dkhost check CONFIG [--cfg-options K=V ...]",
     "Validate a config and build every object it describes (model, datasets, hooks),\n"
     "then release them: finds missing data files and bad parameters before a run.",
     run_check, true},
    {"print-config", "dkhost print-config CONFIG [--cfg-options K=V ...]",
     "Print the resolved config (bases merged, overrides and interpolation applied,\n"
     "validated, defaults filled in) as YAML that dkhost can load again.",
     run_print_config, true},
    {"list-registry", "dkhost list-registry [--kind KIND] [--json]",
     "List the loaded plugins, every registered type with its parameters, and the\n"
     "plugin files that were refused, with the reason.",
     run_list_registry, false},
    {"ckpt", "dkhost ckpt info|verify FILE",
     "Print a checkpoint's metadata and tensors and verify every checksum (info),\n"
     "or only verify it (verify); a damaged file exits with code 5.",
     run_ckpt, false},
    {"new-plugin", "dkhost new-plugin --kind KIND NAME DIR",
     "Create DIR with a plugin skeleton for a new type NAME of kind KIND (backbone,\n"
     "neck, head, hook, transform, metric): the C source with its parameter schema,\n"
     "a CMakeLists.txt, a Makefile and an example config, ready to build out of tree.",
     run_new_plugin, false},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const char global_help[] =
    "Options (any command):\n"
    "  --plugins DIR          load plugins from DIR (repeatable; searched before\n"
    "                         DK_PLUGIN_PATH and the default directory)\n"
    "  --no-default-plugins   load only from --plugins and DK_PLUGIN_PATH\n"
    "  --cfg-options K=V ...  override config keys: model.backbone.depth=32\n"
    "                         data.pipeline.1.size=[320,320] name='quoted string'\n"
    "  --work-dir DIR         where the run writes logs and checkpoints\n"
    "  --resume-from PATH     train: continue the run saved in PATH ('auto': the newest\n"
    "                         intact checkpoint in the work dir)\n"
    "  --load-from PATH       train: start from these weights (missing, unexpected and\n"
    "                         mismatched names are reported)\n"
    "  --checkpoint PATH      test, predict: the weights to run\n"
    "  --out FILE             predict: where the predictions go\n"
    "  --seed N               seed of every random draw (overrides the config's)\n"
    "  --deterministic        identical bits on every repeat on this machine\n"
    "  --no-validate          train without the validation loop\n"
    "  --launcher NAME        train, test: none (default), mpi (under mpirun) or slurm\n"
    "                         (under srun): data-parallel, one process per rank\n"
    "  --repeat N             sweep: run the list of configs N times\n"
    "  --between-runs CMD     sweep: run CMD with /bin/sh before every run but the first\n"
    "  --log-level LEVEL      debug, info (default), warn or error\n"
    "  -h, --help             help (dkhost COMMAND --help for one command)\n"
    "  --version              versions of dkhost and its plugin ABI\n"
    "\n"
    "Exit codes: 0 success, 1 runtime failure, 2 usage error, 3 config error,\n"
    "            4 plugin error, 5 data or file error.\n";

static void print_usage(FILE *f)
{
    fprintf(f, "dkhost %s — a deep-learning training host; everything a config names is a plugin.\n\n"
               "Usage:\n",
            DK_VERSION_STRING);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %s\n", commands[i].usage);
    fprintf(f, "\nCommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) {
        const char *nl = strchr(commands[i].help, '\n');
        int len = nl ? (int)(nl - commands[i].help) : (int)strlen(commands[i].help);
        fprintf(f, "  %-14s %.*s\n", commands[i].name, len, commands[i].help);
    }
    fprintf(f, "\n%s", global_help);
}

static int usage_error(const char *fmt, const char *arg, const char *hint)
{
    fprintf(stderr, "dkhost: ");
    fprintf(stderr, fmt, arg);
    if (hint)
        fprintf(stderr, " (did you mean '%s'?)", hint);
    fprintf(stderr, "\nTry 'dkhost --help'.\n");
    return DKH_EXIT_USAGE;
}

/* Prints the current error: one line, or a heading and one indented line per
 * problem when the message holds several (config validation). */
static int report(dk_status s, const char *what)
{
    const char *msg = dk_last_error();
    const char *nl = strchr(msg, '\n');
    if (!nl) {
        fprintf(stderr, "dkhost: %s: %s\n", what, msg);
    } else {
        size_t lines = 1;
        for (const char *p = msg; (p = strchr(p, '\n')); p++)
            lines++;
        fprintf(stderr, "dkhost: %s: %zu problems:\n", what, lines);
        for (const char *p = msg; *p;) {
            const char *e = strchr(p, '\n');
            int len = e ? (int)(e - p) : (int)strlen(p);
            fprintf(stderr, "  %.*s\n", len, p);
            p = e ? e + 1 : p + len;
        }
    }
    return dkh_exit_code(s);
}

static const char *option_names[] = {"--plugins",     "--no-default-plugins", "--cfg-options",
                                     "--work-dir",    "--log-level",          "--kind",
                                     "--json",        "--help",               "--version",
                                     "--resume-from", "--load-from",          "--checkpoint",
                                     "--seed",        "--deterministic",      "--no-validate",
                                     "--out",         "--repeat",             "--between-runs",
                                     "--launcher"};

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static bool looks_like_config(const char *arg)
{
    const char *dot = strrchr(arg, '.');
    return strchr(arg, '/') || (dot && (strcmp(dot, ".yaml") == 0 || strcmp(dot, ".yml") == 0));
}

/* Parses argv into o; returns -1 to go on, or an exit code. */
static int parse_args(int argc, char **argv, options *o)
{
    o->plugin_dirs = calloc((size_t)argc, sizeof *o->plugin_dirs);
    o->overrides = calloc((size_t)argc, sizeof *o->overrides);
    o->configs = calloc((size_t)argc, sizeof *o->configs);
    DKH_ASSERT(o->plugin_dirs && o->overrides && o->configs);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *value = NULL;
#define NEED_VALUE()                                                                  \
    do {                                                                              \
        if (i + 1 >= argc)                                                            \
            return usage_error("option %s needs a value", a, NULL);                   \
        value = argv[++i];                                                            \
    } while (0)
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->help = true;
        } else if (strcmp(a, "--version") == 0) {
            printf("dkhost %s (plugin ABI %d.%d)\n", DK_VERSION_STRING, DK_ABI_MAJOR,
                   DK_ABI_MINOR);
            return DKH_EXIT_OK;
        } else if (strcmp(a, "--plugins") == 0) {
            NEED_VALUE();
            o->plugin_dirs[o->n_plugin_dirs++] = value;
        } else if (strcmp(a, "--no-default-plugins") == 0) {
            o->no_default_plugins = true;
        } else if (strcmp(a, "--cfg-options") == 0) {
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)
                return usage_error("option %s needs at least one KEY=VALUE", a, NULL);
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0 && strchr(argv[i + 1], '='))
                o->overrides[o->n_overrides++] = argv[++i];
        } else if (strcmp(a, "--work-dir") == 0) {
            NEED_VALUE();
            o->work_dir = value;
        } else if (strcmp(a, "--resume-from") == 0) {
            NEED_VALUE();
            o->resume_from = value;
        } else if (strcmp(a, "--load-from") == 0) {
            NEED_VALUE();
            o->load_from = value;
        } else if (strcmp(a, "--checkpoint") == 0) {
            NEED_VALUE();
            o->checkpoint = value;
        } else if (strcmp(a, "--out") == 0) {
            NEED_VALUE();
            o->out = value;
        } else if (strcmp(a, "--seed") == 0) {
            NEED_VALUE();
            char *end = NULL;
            long long v = strtoll(value, &end, 10);
            if (!*value || *end || v < 0)
                return usage_error("--seed needs a non-negative integer, got '%s'", value, NULL);
            o->seed = v;
        } else if (strcmp(a, "--repeat") == 0) {
            NEED_VALUE();
            char *end = NULL;
            long long v = strtoll(value, &end, 10);
            if (!*value || *end || v < 1)
                return usage_error("--repeat needs a positive integer, got '%s'", value, NULL);
            o->repeat = v;
        } else if (strcmp(a, "--between-runs") == 0) {
            NEED_VALUE();
            o->between_runs = value;
        } else if (strcmp(a, "--launcher") == 0) {
            NEED_VALUE();
            dkh_launcher launcher;
            if (dkh_launcher_parse(value, &launcher) != DK_OK) {
                static const char *const launchers[] = {"none", "mpi", "slurm"};
                return usage_error("unknown launcher '%s' (expected none, mpi or slurm)", value,
                                   dkh_closest(value, launchers, 3));
            }
            o->launcher = value;
        } else if (strcmp(a, "--deterministic") == 0) {
            o->deterministic = 1;
        } else if (strcmp(a, "--no-validate") == 0) {
            o->no_validate = true;
        } else if (strcmp(a, "--log-level") == 0) {
            NEED_VALUE();
            dk_log_level level;
            if (dkh_log_level_parse(value, &level) != DK_OK)
                return usage_error("%s", dk_last_error(), NULL);
            dkh_log_set_level(level);
        } else if (strcmp(a, "--kind") == 0) {
            NEED_VALUE();
            o->kind = value;
        } else if (strcmp(a, "--json") == 0) {
            o->json = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            const char *name = a;
            char buf[64];
            const char *eq = strchr(a, '=');
            if (eq && (size_t)(eq - a) < sizeof buf) {
                snprintf(buf, sizeof buf, "%.*s", (int)(eq - a), a);
                name = buf;
            }
            return usage_error("unknown option '%s'", a,
                               dkh_closest(name, option_names,
                                           sizeof option_names / sizeof option_names[0]));
        } else if (!o->command && !o->config) {
            const command *c = find_command(a);
            if (c) {
                o->command = c->name;
            } else if (looks_like_config(a)) {
                o->command = "train";
                o->config = a;
                o->configs[o->n_configs++] = a;
            } else {
                const char *names[N_COMMANDS];
                for (size_t k = 0; k < N_COMMANDS; k++)
                    names[k] = commands[k].name;
                return usage_error("unknown command '%s'", a, dkh_closest(a, names, N_COMMANDS));
            }
        } else if (!o->config) {
            o->config = a;
            o->configs[o->n_configs++] = a;
        } else if (o->command && strcmp(o->command, "sweep") == 0) {
            o->configs[o->n_configs++] = a;
        } else {
            return usage_error("unexpected argument '%s'", a, NULL);
        }
#undef NEED_VALUE
    }
    return -1;
}

/* --------------------------------------------------------------------- */

/* Loads, overrides (--work-dir last, so it wins), resolves and validates. */
static int prepare(const options *o, dkh_registry *reg, dk_cfg **root)
{
    const char **overrides = calloc(o->n_overrides + 1, sizeof *overrides);
    DKH_ASSERT(overrides != NULL);
    memcpy(overrides, o->overrides, o->n_overrides * sizeof *overrides);
    size_t n = o->n_overrides;
    char *work_dir = NULL;
    if (o->work_dir) {
        work_dir = dkh_cfg_string_assignment("work_dir", o->work_dir);
        overrides[n++] = work_dir;
    }
    dk_status s = dkh_config_prepare(o->config, overrides, n, reg, root);
    free(work_dir);
    free(overrides);
    if (s != DK_OK)
        return report(s, s == DK_ERR_CONFIG || s == DK_ERR_PARSE ? "invalid config" : "error");
    return -1;
}

static int build_all(const options *o, dkh_registry *reg, bool keep_quiet)
{
    dk_cfg *root = NULL;
    int rc = prepare(o, reg, &root);
    if (rc >= 0)
        return rc;
    dkh_built *built = NULL;
    size_t n = 0;
    dk_status s = dkh_config_build(root, &built, &n);
    if (s != DK_OK) {
        dkh_cfg_free(root);
        return report(s, "error");
    }
    if (!keep_quiet) {
        printf("%s: config valid; built %zu object%s:\n", o->config, n, n == 1 ? "" : "s");
        for (size_t i = 0; i < n; i++) {
            const dk_type_info *t = dk_object_type(built[i].obj);
            printf("  %-28s %s %s\n", built[i].path, t->kind, t->name);
        }
    }
    dkh_config_built_free(built, n);
    dkh_cfg_free(root);
    return DKH_EXIT_OK;
}

static int run_check(const options *o, dkh_registry *reg)
{
    return build_all(o, reg, false);
}

static int run_job(const options *o, dkh_registry *reg, dkh_run_mode mode)
{
    dk_cfg *root = NULL;
    int rc = prepare(o, reg, &root);
    if (rc >= 0)
        return rc;
    /* --launcher, else the config's `launcher` (validated), for train and test. */
    const char *name = o->launcher;
    if (!name && mode != DKH_RUN_PREDICT)
        name = dk_cfg_scalar(dk_cfg_get(root, "launcher"));
    dkh_launcher launcher = DKH_LAUNCHER_NONE;
    if (name && dkh_launcher_parse(name, &launcher) != DK_OK) {
        dkh_cfg_free(root);
        return usage_error("%s", dk_last_error(), NULL); /* checked before */
    }
    dkh_run_options ro = {
        .launcher = (int)launcher,
        .mode = mode,
        .config_path = o->config,
        .resume_from = o->resume_from,
        .load_from = o->load_from,
        .checkpoint = o->checkpoint,
        .out = o->out,
        .seed = o->seed,
        .deterministic = o->deterministic,
        .no_validate = o->no_validate,
    };
    dk_status s = dkh_run(root, &ro);
    dkh_cfg_free(root);
    static const char *const names[] = {"train", "test", "predict"};
    return s == DK_OK ? DKH_EXIT_OK : report(s, names[mode]);
}

static int run_train(const options *o, dkh_registry *reg)
{
    if (o->checkpoint)
        return usage_error("%s is an option of 'dkhost test' (train takes --resume-from or "
                           "--load-from)", "--checkpoint", NULL);
    if (o->out)
        return usage_error("%s is an option of 'dkhost predict'", "--out", NULL);
    return run_job(o, reg, DKH_RUN_TRAIN);
}

static int run_test(const options *o, dkh_registry *reg)
{
    if (o->resume_from)
        return usage_error("%s is an option of 'dkhost train'", "--resume-from", NULL);
    if (o->out)
        return usage_error("%s is an option of 'dkhost predict'", "--out", NULL);
    return run_job(o, reg, DKH_RUN_TEST);
}

static int run_predict(const options *o, dkh_registry *reg)
{
    if (o->resume_from)
        return usage_error("%s is an option of 'dkhost train'", "--resume-from", NULL);
    return run_job(o, reg, DKH_RUN_PREDICT);
}

static int run_sweep(const options *o, dkh_registry *reg)
{
    if (o->resume_from || o->load_from || o->checkpoint || o->out)
        return usage_error("%s: a sweep takes no --resume-from, --load-from, --checkpoint or "
                           "--out (each run starts afresh)", "sweep", NULL);
    dkh_sweep_args a = {
        .configs = o->configs,
        .n_configs = o->n_configs,
        .repeat = o->repeat > 0 ? o->repeat : 1,
        .between_runs = o->between_runs,
        .overrides = o->overrides,
        .n_overrides = o->n_overrides,
        .work_dir = o->work_dir,
        .seed = o->seed,
        .deterministic = o->deterministic,
        .no_validate = o->no_validate,
        .report = report,
    };
    return dkh_cli_sweep(&a, reg);
}

static int run_print_config(const options *o, dkh_registry *reg)
{
    dk_cfg *root = NULL;
    int rc = prepare(o, reg, &root);
    if (rc >= 0)
        return rc;
    dkh_buf out = DKH_BUF_INIT;
    dkh_cfg_dump(root, &out);
    fputs(dkh_buf_str(&out), stdout);
    dkh_buf_fini(&out);
    dkh_cfg_free(root);
    return DKH_EXIT_OK;
}

static int run_list_registry(const options *o, dkh_registry *reg)
{
    dkh_buf out = DKH_BUF_INIT;
    dk_status s = dkh_list_registry(reg, o->kind, o->json, &out);
    if (s != DK_OK) {
        dkh_buf_fini(&out);
        return report(s, "list-registry");
    }
    fputs(dkh_buf_str(&out), stdout);
    dkh_buf_fini(&out);
    return DKH_EXIT_OK;
}

/* Reached only when options precede "ckpt": it takes none (main runs it first). */
static int run_ckpt(const options *o, dkh_registry *reg)
{
    return usage_error("%s takes no global options: dkhost ckpt info|verify FILE", "ckpt",
                       NULL);
}

/* Reached only when options precede "new-plugin": it takes none (main runs it first). */
static int run_new_plugin(const options *o, dkh_registry *reg)
{
    return usage_error("%s takes no global options: dkhost new-plugin --kind KIND NAME DIR",
                       "new-plugin", NULL);
}

int main(int argc, char **argv)
{
    /* `dkhost ckpt ...` has sub-commands and parses its own arguments. */
    if (argc > 1 && strcmp(argv[1], "ckpt") == 0)
        return dkh_cli_ckpt(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "new-plugin") == 0)
        return dkh_cli_new_plugin(argc - 1, argv + 1);
    options o = {.seed = -1, .deterministic = -1};
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        goto done;

    const command *cmd = o.command ? find_command(o.command) : NULL;
    if (o.help || !cmd) {
        if (cmd) {
            printf("Usage: %s\n\n%s\n\n%s", cmd->usage, cmd->help, global_help);
        } else {
            print_usage(o.help ? stdout : stderr);
        }
        rc = o.help ? DKH_EXIT_OK : DKH_EXIT_USAGE;
        goto done;
    }
    if (cmd->needs_config && !o.config) {
        rc = usage_error("%s needs a CONFIG file", cmd->name, NULL);
        goto done;
    }
    if (o.launcher && strcmp(cmd->name, "train") != 0 && strcmp(cmd->name, "test") != 0) {
        rc = usage_error("%s is an option of 'dkhost train' and 'dkhost test'", "--launcher", NULL);
        goto done;
    }
    if ((o.repeat || o.between_runs) && strcmp(cmd->name, "sweep") != 0) {
        rc = usage_error("%s is an option of 'dkhost sweep'",
                         o.repeat ? "--repeat" : "--between-runs", NULL);
        goto done;
    }
    if (!cmd->needs_config && o.config) {
        rc = usage_error("unexpected argument '%s'", o.config, NULL);
        goto done;
    }

    dkh_registry *reg = dkh_registry_new();
    dkh_registry_set_current(reg);
    /* A sweep may swap hook plugins, so it runs them from private copies. */
    dkh_registry_set_private_copies(reg, cmd->run == run_sweep);
    /* The host's own types (optimizers, schedules) first: plugins cannot take their names. */
    dk_status s = dkh_optim_register_builtins(reg);
    if (s == DK_OK)
        s = dkh_plugins_load(reg, o.plugin_dirs, o.n_plugin_dirs, o.no_default_plugins);
    if (s != DK_OK) {
        rc = report(s, "plugins");
    } else {
        rc = cmd->run(&o, reg);
    }
    dkh_registry_set_current(NULL);
    dkh_registry_free(reg);
    dkh_private_dir_remove();
done:
    free(o.plugin_dirs);
    free(o.overrides);
    free(o.configs);
    return rc;
}
