/* core/cli/ckpt_cmd.c — `dkhost ckpt info|verify FILE`.
 *
 * info shows what a checkpoint holds (its metadata and every tensor's dtype,
 * shape and sizes) and checks every tensor's checksum and size on the way;
 * verify only checks. A damaged file is reported with what is wrong and
 * where, and exit code 5, so scripts can test checkpoints before resuming.
 */
#include "ckpt_cmd.h"

#include "../ckpt/ckpt.h"
#include "../util/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* docs/cli.md's exit codes (main.c uses the same). */

static const char usage[] =
    "Usage: dkhost ckpt info FILE     print the metadata and the tensors, verify every checksum\n"
    "       dkhost ckpt verify FILE   only verify every tensor's checksum and size\n";

static int fail_exit(dk_status s)
{
    return s == DK_ERR_NOMEM || s == DK_ERR_INTERNAL ? DKH_EXIT_RUNTIME : DKH_EXIT_DATA;
}

static int report(const char *sub, dk_status s)
{
    fprintf(stderr, "dkhost: ckpt %s: %s\n", sub, dk_last_error());
    return fail_exit(s);
}

static void put_shape(dkh_buf *b, const dkh_ckpt *c, size_t i)
{
    int64_t shape[DK_MAX_DIMS];
    int ndim = dkh_ckpt_shape(c, i, shape);
    dkh_buf_putc(b, '(');
    for (int d = 0; d < ndim; d++)
        dkh_buf_printf(b, "%s%" PRId64, d ? ", " : "", shape[d]);
    dkh_buf_puts(b, ndim == 1 ? ",)" : ")");
}

static void put_ratio(char *out, size_t size, uint64_t raw, uint64_t comp)
{
    if (raw == 0 || comp == 0)
        snprintf(out, size, "-");
    else
        snprintf(out, size, "%.2f", (double)raw / (double)comp);
}

static void print_meta(const char *meta)
{
    size_t n = strlen(meta);
    printf("\nmetadata (%zu bytes):\n", n);
    if (!n)
        printf("  (empty)\n");
    for (const char *p = meta; *p;) {
        const char *nl = strchr(p, '\n');
        int len = nl ? (int)(nl - p) : (int)strlen(p);
        printf("  %.*s\n", len, p);
        p += len + (nl ? 1 : 0);
    }
}

/* Prints the tensor table, verifying each tensor; returns the number of
 * damaged ones, keeping the first one's status and message. */
static size_t print_and_verify(dkh_ckpt *c, dk_status *first, char **first_msg)
{
    size_t n = dkh_ckpt_count(c);
    int name_w = 4, shape_w = 5;
    dkh_buf shapes = DKH_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        int len = (int)strlen(dkh_ckpt_name(c, i));
        name_w = len > name_w ? len : name_w;
        dkh_buf_clear(&shapes);
        put_shape(&shapes, c, i);
        shape_w = (int)shapes.len > shape_w ? (int)shapes.len : shape_w;
    }
    printf("\ntensors (%zu):\n", n);
    printf("  %-*s  %-5s  %-*s  %14s  %14s  %6s  %s\n", name_w, "name", "dtype", shape_w, "shape",
           "raw bytes", "compressed", "ratio", "check");
    uint64_t raw_total = 0, comp_total = 0;
    size_t damaged = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t raw = dkh_ckpt_raw_size(c, i), comp = dkh_ckpt_compressed_size(c, i);
        raw_total += raw;
        comp_total += comp;
        dk_status s = dkh_ckpt_verify_tensor(c, i);
        if (s != DK_OK && damaged++ == 0) {
            *first = s;
            *first_msg = dkh_strdup(dk_last_error());
        }
        char ratio[32];
        put_ratio(ratio, sizeof ratio, raw, comp);
        dkh_buf_clear(&shapes);
        put_shape(&shapes, c, i);
        printf("  %-*s  %-5s  %-*s  %14" PRIu64 "  %14" PRIu64 "  %6s  %s\n", name_w,
               dkh_ckpt_name(c, i), dk_dtype_name(dkh_ckpt_dtype(c, i)), shape_w,
               dkh_buf_str(&shapes), raw, comp, ratio, s == DK_OK ? "ok" : "DAMAGED");
    }
    char ratio[32];
    put_ratio(ratio, sizeof ratio, raw_total, comp_total);
    printf("  %-*s  %-5s  %-*s  %14" PRIu64 "  %14" PRIu64 "  %6s\n", name_w, "total", "", shape_w,
           "", raw_total, comp_total, ratio);
    dkh_buf_fini(&shapes);
    return damaged;
}

static int info(dkh_ckpt *c)
{
    printf("checkpoint: %s\n", dkh_ckpt_path(c));
    size_t n = dkh_ckpt_count(c);
    printf("format:     .dkpt version 1, %" PRIu64 " bytes, %zu tensor%s\n", dkh_ckpt_file_size(c),
           n, n == 1 ? "" : "s");
    if (dkh_ckpt_iteration(c) >= 0)
        printf("iteration:  %" PRId64 "\n", dkh_ckpt_iteration(c));
    else
        printf("iteration:  (not recorded)\n");
    print_meta(dkh_ckpt_meta(c));
    dk_status first = DK_OK;
    char *first_msg = NULL;
    size_t damaged = print_and_verify(c, &first, &first_msg);
    fflush(stdout);
    if (damaged) {
        fprintf(stderr, "dkhost: ckpt info: %s\n", first_msg);
        fprintf(stderr, "dkhost: ckpt info: %s is damaged: %zu of %zu tensors fail their check\n",
                dkh_ckpt_path(c), damaged, dkh_ckpt_count(c));
        free(first_msg);
        return fail_exit(first);
    }
    printf("\nverified: %s%zu tensor%s match%s their checksums and sizes\n", n == 1 ? "" : "all ",
           n, n == 1 ? "" : "s", n == 1 ? "es" : "");
    return DKH_EXIT_OK;
}

static int verify(dkh_ckpt *c)
{
    dk_status s = dkh_ckpt_verify(c);
    if (s != DK_OK)
        return report("verify", s);
    size_t n = dkh_ckpt_count(c);
    printf("%s: intact (%zu tensor%s, %" PRIu64 " bytes)\n", dkh_ckpt_path(c), n, n == 1 ? "" : "s",
           dkh_ckpt_file_size(c));
    return DKH_EXIT_OK;
}

int dkh_cli_ckpt(int argc, char **argv)
{
    static const char *const subs[] = {"info", "verify"};
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("%s\nExit codes: 0 intact, 2 usage error, 5 missing, unreadable or damaged "
                   "file.\n",
                   usage);
            return DKH_EXIT_OK;
        }
    if (argc < 2) {
        fprintf(stderr, "dkhost: ckpt needs a command: info or verify\n%s", usage);
        return DKH_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "info") != 0 && strcmp(sub, "verify") != 0) {
        const char *hint = dkh_closest(sub, subs, 2);
        fprintf(stderr, "dkhost: unknown ckpt command '%s'", sub);
        if (hint)
            fprintf(stderr, " (did you mean '%s'?)", hint);
        fprintf(stderr, "\n%s", usage);
        return DKH_EXIT_USAGE;
    }
    if (argc < 3) {
        fprintf(stderr, "dkhost: ckpt %s needs a FILE\n%s", sub, usage);
        return DKH_EXIT_USAGE;
    }
    if (argc > 3) {
        fprintf(stderr, "dkhost: ckpt %s: unexpected argument '%s'\n%s", sub, argv[3], usage);
        return DKH_EXIT_USAGE;
    }
    dkh_ckpt *c;
    dk_status s = dkh_ckpt_open(argv[2], &c);
    if (s != DK_OK)
        return report(sub, s);
    int rc = strcmp(sub, "info") == 0 ? info(c) : verify(c);
    dkh_ckpt_close(c);
    return rc;
}
