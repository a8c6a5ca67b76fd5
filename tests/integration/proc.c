/* tests/integration/proc.c — spawning dkhost for the integration tests.
 *
 * Output goes to temporary files rather than pipes so a chatty child can
 * never deadlock against a test that reads only one of its streams.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "proc.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = '\0';
    fclose(f);
    return s;
}

int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = strlen(text);
    int rc = fwrite(text, 1, n, f) == n ? 0 : -1;
    return fclose(f) == 0 ? rc : -1;
}

proc_result proc_run(const char *const *argv)
{
    return proc_run_env(argv, NULL);
}

proc_result proc_run_env(const char *const *argv, const char *env)
{
    char out_path[] = "/tmp/dk_test_out_XXXXXX", err_path[] = "/tmp/dk_test_err_XXXXXX";
    int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
    proc_result r = {.status = -1};
    pid_t pid = fork();
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        dup2(in, 0);
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        unsetenv("DK_PLUGIN_PATH");
        if (env)
            putenv((char *)env);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    close(out_fd);
    close(err_fd);
    r.out = read_file(out_path);
    r.err = read_file(err_path);
    unlink(out_path);
    unlink(err_path);
    return r;
}

static proc_result dkhost_runv(const char *env, const char *first, va_list ap)
{
    const char *argv[64] = {DK_BINARY_DIR "/bin/dkhost"};
    size_t n = 1;
    for (const char *a = first; a && n < 63; a = va_arg(ap, const char *))
        argv[n++] = a;
    argv[n] = NULL;
    return proc_run_env(argv, env);
}

proc_result dkhost_run(const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    proc_result r = dkhost_runv(NULL, first, ap);
    va_end(ap);
    return r;
}

proc_result dkhost_run_with_path(const char *path, const char *first, ...)
{
    char env[4096];
    snprintf(env, sizeof env, "DK_PLUGIN_PATH=%s", path);
    va_list ap;
    va_start(ap, first);
    proc_result r = dkhost_runv(env, first, ap);
    va_end(ap);
    return r;
}

void proc_result_free(proc_result *r)
{
    free(r->out);
    free(r->err);
}

void proc_expect(const proc_result *r, int status, const char *out_has, const char *err_has)
{
    bool out_ok = !out_has || strstr(r->out, out_has);
    bool err_ok = !err_has || strstr(r->err, err_has);
    if (r->status == status && out_ok && err_ok)
        return;
    print_error("exit %d (want %d)\n--- stdout ---\n%s\n--- stderr ---\n%s\n", r->status, status,
                r->out, r->err);
    if (!out_ok)
        print_error("stdout lacks: %s\n", out_has);
    if (!err_ok)
        print_error("stderr lacks: %s\n", err_has);
    fail();
}
