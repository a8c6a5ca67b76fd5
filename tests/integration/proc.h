/* tests/integration/proc.h — run a real process and capture what it wrote. */
#ifndef DK_TEST_PROC_H
#define DK_TEST_PROC_H

typedef struct proc_result {
    int status; /* exit code, or 128+signal */
    char *out;  /* everything written to stdout (malloc'ed) */
    char *err;  /* everything written to stderr (malloc'ed) */
} proc_result;

/* Runs argv (argv[0] a path) with DK_PLUGIN_PATH unset, stdin from /dev/null. */
proc_result proc_run(const char *const *argv);
/* The same with one extra "NAME=value" in the child's environment (may be NULL). */
proc_result proc_run_env(const char *const *argv, const char *env);
/* Runs the build's dkhost with DK_PLUGIN_PATH set to path. */
proc_result dkhost_run_with_path(const char *path, const char *first, ...);
/* Runs the build's dkhost with the given arguments (NULL-terminated). */
proc_result dkhost_run(const char *first, ...);
void proc_result_free(proc_result *r);
/* Fails the current cmocka test, printing both streams, unless r exited with
 * status and its stdout / stderr contain out_has / err_has (NULL: anything). */
void proc_expect(const proc_result *r, int status, const char *out_has, const char *err_has);
/* Reads a whole file (malloc'ed) or NULL. */
char *read_file(const char *path);
/* Writes text to path; returns 0 on success. */
int write_file(const char *path, const char *text);

#endif
