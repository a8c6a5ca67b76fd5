/* core/runner/work_dir.c — where a run writes.
 *
 * The work dir is the config's `work_dir` (the command line's --work-dir
 * arrives as an override of it) or work_dirs/<config file stem>. It gets the
 * resolved config (<stem>.yaml, loadable again), and a log file named by the
 * run's start time, <timestamp>.log, to which every dk_log line is copied;
 * hooks name their own files by the same timestamp. In a distributed run
 * only rank 0 writes: the other ranks know the path (to resume from its
 * checkpoints) but create nothing.
 */
#include "runner_impl.h"

#include "../cfg/cfg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* mkdir -p: every missing parent too. */
static dk_status make_dirs(const char *path)
{
    char *p = dkh_strdup(path);
    dk_status s = DK_OK;
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c != '\0')
            continue;
        char saved = *c;
        *c = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            s = dk_fail(DK_ERR_IO, "work dir %s: cannot create %s: %s", path, p, strerror(errno));
            break;
        }
        *c = saved;
        if (saved == '\0')
            break;
    }
    free(p);
    if (s == DK_OK) {
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            s = dk_fail(DK_ERR_IO, "work dir %s exists and is not a directory", path);
    }
    return s;
}

char *dkh_config_stem(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    return dkh_asprintf("%.*s", (int)n, base);
}

char *dkh_work_path(const dk_runner *r, const char *name)
{
    return dkh_asprintf("%s/%s", r->work_dir, name);
}

dk_status dkh_work_dir_open(dk_runner *r)
{
    char *stem = dkh_config_stem(r->opts.config_path ? r->opts.config_path : "run.yaml");
    const char *wd = dk_cfg_scalar(dk_cfg_get(r->cfg, "work_dir"));
    if (wd && dk_cfg_kind_of(dk_cfg_get(r->cfg, "work_dir")) == DK_CFG_STRING)
        r->work_dir = dkh_strdup(wd);
    else
        r->work_dir = dkh_asprintf("work_dirs/%s", stem);
    size_t len = strlen(r->work_dir);
    while (len > 1 && r->work_dir[len - 1] == '/')
        r->work_dir[--len] = '\0';

    if (r->rank > 0) {
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(r->timestamp, sizeof r->timestamp, "%Y%m%d_%H%M%S", &tm);
        free(stem);
        return DK_OK;
    }
    dk_status s = make_dirs(r->work_dir);
    if (s == DK_OK) {
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(r->timestamp, sizeof r->timestamp, "%Y%m%d_%H%M%S", &tm);
        char *log_path = dkh_asprintf("%s/%s.log", r->work_dir, r->timestamp);
        r->log_file = fopen(log_path, "a");
        if (!r->log_file)
            s = dk_fail(DK_ERR_IO, "cannot open the log file %s: %s", log_path, strerror(errno));
        else
            dkh_log_set_streams(stderr, r->log_file);
        free(log_path);
    }
    if (s == DK_OK) {
        char *name = dkh_asprintf("%s.yaml", stem);
        char *cfg_path = dkh_work_path(r, name);
        dkh_buf text = DKH_BUF_INIT;
        dkh_cfg_dump(r->cfg, &text);
        FILE *f = fopen(cfg_path, "w");
        bool ok = f && fputs(dkh_buf_str(&text), f) >= 0;
        if (f && fclose(f) != 0)
            ok = false;
        if (!ok)
            s = dk_fail(DK_ERR_IO, "cannot write the resolved config %s: %s", cfg_path,
                        strerror(errno));
        dkh_buf_fini(&text);
        free(cfg_path);
        free(name);
    }
    free(stem);
    return s;
}

void dkh_work_dir_close(dk_runner *r)
{
    if (r->log_file) {
        dkh_log_set_streams(stderr, NULL);
        fclose(r->log_file);
        r->log_file = NULL;
    }
    free(r->work_dir);
    r->work_dir = NULL;
}
