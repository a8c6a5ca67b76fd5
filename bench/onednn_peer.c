/* bench/onednn_peer.c — the direct-oneDNN peer of bench/ops_bench.c.
 *
 * Calls oneDNN's convolution and matmul primitives directly, with no
 * framework around them, on the same shapes as the conv and linear rows of
 * the dkhost op benchmark, so each dkhost row can be read against the
 * primitive it is (or will be) built on. Two layouts per convolution:
 *   nchw     plain NCHW / OIHW tensors, as a framework holding PyTorch-order
 *            tensors hands them over;
 *   blocked  format_tag_any: each primitive picks its layout (reorders untimed),
 *            as a framework keeping activations in oneDNN's layout would.
 * "bwd" is backward-data plus backward-weights (with bias), the two medians
 * added; backward-data is left out where the input needs no gradient (the
 * first layer), as in a training step.
 *
 *   onednn_peer [--threads N]      prints one "PEER onednn ..." line per row and pass
 */
#include "bench_util.h"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK(call)                                                                             \
    do {                                                                                     \
        dnnl_status_t st_ = (call);                                                          \
        if (st_ != dnnl_success) {                                                           \
            fprintf(stderr, "onednn_peer: %s:%d: %s failed (status %d)\n", __FILE__, __LINE__, \
                    #call, (int)st_);                                                        \
            exit(1);                                                                         \
        }                                                                                    \
    } while (0)

typedef struct conv_row {
    const char *id;
    int n, c, h, w, k, r, stride, pad, bias, need_dx;
} conv_row;

typedef struct mm_row {
    const char *id;
    int m, k, n; /* y (m, n) = x (m, k) @ w (n, k)^T + b */
} mm_row;

/* The same ids as bench/ops_bench.c. */
static const conv_row CONVS[] = {
    {"lenet_conv1", 128, 1, 28, 28, 32, 3, 1, 1, 1, 0},
    {"lenet_conv2", 128, 32, 14, 14, 64, 3, 1, 1, 1, 1},
    {"r20_conv_stem", 128, 1, 28, 28, 16, 3, 1, 1, 0, 0},
    {"r20_conv16", 128, 16, 28, 28, 16, 3, 1, 1, 0, 1},
    {"r20_conv16to32s2", 128, 16, 28, 28, 32, 3, 2, 1, 0, 1},
    {"r20_conv32", 128, 32, 14, 14, 32, 3, 1, 1, 0, 1},
    {"r20_conv32to64s2", 128, 32, 14, 14, 64, 3, 2, 1, 0, 1},
    {"r20_conv64", 128, 64, 7, 7, 64, 3, 1, 1, 0, 1},
};
static const mm_row MMS[] = {
    {"lenet_fc1", 128, 3136, 128},
    {"lenet_fc2", 128, 128, 10},
    {"r20_fc", 128, 64, 10},
};

static dnnl_engine_t eng;
static dnnl_stream_t strm;

static dnnl_memory_t mem_for(const dnnl_memory_desc_t *md)
{
    dnnl_memory_t m;
    CK(dnnl_memory_create(&m, md, eng, DNNL_MEMORY_ALLOCATE));
    void *p;
    CK(dnnl_memory_get_data_handle(m, &p));
    size_t n = dnnl_memory_desc_get_size(md) / sizeof(float);
    float *f = p;
    unsigned s = 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        f[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    return m;
}

static const dnnl_memory_desc_t *pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t q)
{
    return dnnl_primitive_desc_query_md(pd, q, 0);
}

/* Median milliseconds of one primitive's execution. */
static double time_prim(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args)
{
    double t[BENCH_MAX_REPS], total = 0;
    int n = 0;
    for (int i = 0; i < BENCH_WARMUP; i++) {
        CK(dnnl_primitive_execute(p, strm, nargs, args));
        CK(dnnl_stream_wait(strm));
    }
    while (bench_more(n, total)) {
        double t0 = bench_now();
        CK(dnnl_primitive_execute(p, strm, nargs, args));
        CK(dnnl_stream_wait(strm));
        t[n] = bench_now() - t0;
        total += t[n++];
    }
    return 1e3 * bench_median(t, n);
}

static void conv(const conv_row *r, int blocked)
{
    int oh = (r->h + 2 * r->pad - r->r) / r->stride + 1, ow = (r->w + 2 * r->pad - r->r) / r->stride + 1;
    dnnl_dims_t sd = {r->n, r->c, r->h, r->w}, wd = {r->k, r->c, r->r, r->r}, bd = {r->k},
                dd = {r->n, r->k, oh, ow};
    dnnl_dims_t st = {r->stride, r->stride}, pl = {r->pad, r->pad};
    dnnl_memory_desc_t s_md, w_md, b_md, d_md;
    CK(dnnl_memory_desc_init_by_tag(&s_md, 4, sd, dnnl_f32, blocked ? dnnl_format_tag_any : dnnl_nchw));
    CK(dnnl_memory_desc_init_by_tag(&w_md, 4, wd, dnnl_f32, blocked ? dnnl_format_tag_any : dnnl_oihw));
    CK(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x));
    CK(dnnl_memory_desc_init_by_tag(&d_md, 4, dd, dnnl_f32, blocked ? dnnl_format_tag_any : dnnl_nchw));
    const dnnl_memory_desc_t *bp = r->bias ? &b_md : NULL;

    dnnl_convolution_desc_t fd, bdd, bwd;
    CK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct,
                                          &s_md, &w_md, bp, &d_md, st, pl, pl));
    dnnl_primitive_desc_t fpd, dpd, wpd;
    CK(dnnl_primitive_desc_create(&fpd, &fd, NULL, eng, NULL));
    CK(dnnl_convolution_backward_data_desc_init(&bdd, dnnl_convolution_direct, &s_md, &w_md,
                                                &d_md, st, pl, pl));
    CK(dnnl_primitive_desc_create(&dpd, &bdd, NULL, eng, fpd));
    CK(dnnl_convolution_backward_weights_desc_init(&bwd, dnnl_convolution_direct, &s_md, &w_md,
                                                   bp, &d_md, st, pl, pl));
    CK(dnnl_primitive_desc_create(&wpd, &bwd, NULL, eng, fpd));

    dnnl_memory_t src = mem_for(pd_md(fpd, dnnl_query_src_md)),
                  wei = mem_for(pd_md(fpd, dnnl_query_weights_md)),
                  dst = mem_for(pd_md(fpd, dnnl_query_dst_md)), bias = mem_for(&b_md),
                  dsrc = mem_for(pd_md(dpd, dnnl_query_diff_src_md)),
                  ddst = mem_for(pd_md(dpd, dnnl_query_diff_dst_md)),
                  dwei = mem_for(pd_md(wpd, dnnl_query_diff_weights_md)), dbias = mem_for(&b_md),
                  wsrc = mem_for(pd_md(wpd, dnnl_query_src_md)),
                  wddst = mem_for(pd_md(wpd, dnnl_query_diff_dst_md));
    dnnl_primitive_t fp, dp, wp;
    CK(dnnl_primitive_create(&fp, fpd));
    CK(dnnl_primitive_create(&dp, dpd));
    CK(dnnl_primitive_create(&wp, wpd));

    dnnl_exec_arg_t fa[] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst},
                            {DNNL_ARG_BIAS, bias}};
    dnnl_exec_arg_t da[] = {{DNNL_ARG_DIFF_SRC, dsrc}, {DNNL_ARG_WEIGHTS, wei},
                            {DNNL_ARG_DIFF_DST, ddst}};
    dnnl_exec_arg_t wa[] = {{DNNL_ARG_SRC, wsrc}, {DNNL_ARG_DIFF_WEIGHTS, dwei},
                            {DNNL_ARG_DIFF_DST, wddst}, {DNNL_ARG_DIFF_BIAS, dbias}};
    double f = time_prim(fp, r->bias ? 4 : 3, fa);
    double d = r->need_dx ? time_prim(dp, 3, da) : 0.0;
    double w = time_prim(wp, r->bias ? 4 : 3, wa);
    const char *lay = blocked ? "blocked" : "nchw";
    printf("PEER onednn id=%s layout=%s pass=fwd ms=%.4f\n", r->id, lay, f);
    printf("PEER onednn id=%s layout=%s pass=bwd ms=%.4f\n", r->id, lay, d + w);
    fflush(stdout);

    dnnl_primitive_destroy(fp);
    dnnl_primitive_destroy(dp);
    dnnl_primitive_destroy(wp);
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(dpd);
    dnnl_primitive_desc_destroy(wpd);
    dnnl_memory_t all[] = {src, wei, dst, bias, dsrc, ddst, dwei, dbias, wsrc, wddst};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        dnnl_memory_destroy(all[i]);
}

/* A matmul primitive for (m, k) @ (k, n) where each operand is plain row-major
 * or, when its flag is set, the transpose of a row-major array. */
static double mm_time(int m, int k, int n, int a_t, int b_t, int bias)
{
    dnnl_dims_t ad = {m, k}, bd = {k, n}, cd = {m, n}, biasd = {1, n};
    dnnl_dims_t as = {a_t ? 1 : k, a_t ? m : 1}, bs = {b_t ? 1 : n, b_t ? k : 1};
    dnnl_memory_desc_t a_md, b_md, c_md, bias_md;
    CK(dnnl_memory_desc_init_by_strides(&a_md, 2, ad, dnnl_f32, as));
    CK(dnnl_memory_desc_init_by_strides(&b_md, 2, bd, dnnl_f32, bs));
    CK(dnnl_memory_desc_init_by_tag(&c_md, 2, cd, dnnl_f32, dnnl_ab));
    CK(dnnl_memory_desc_init_by_tag(&bias_md, 2, biasd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t md;
    CK(dnnl_matmul_desc_init(&md, &a_md, &b_md, bias ? &bias_md : NULL, &c_md));
    dnnl_primitive_desc_t pd;
    CK(dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL));
    dnnl_primitive_t p;
    CK(dnnl_primitive_create(&p, pd));
    dnnl_memory_t a = mem_for(&a_md), b = mem_for(&b_md), c = mem_for(&c_md), bb = mem_for(&bias_md);
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, b}, {DNNL_ARG_DST, c},
                              {DNNL_ARG_BIAS, bb}};
    double ms = time_prim(p, bias ? 4 : 3, args);
    dnnl_primitive_destroy(p);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(a);
    dnnl_memory_destroy(b);
    dnnl_memory_destroy(c);
    dnnl_memory_destroy(bb);
    return ms;
}

static void matmul(const mm_row *r)
{
    /* forward y = x @ w^T + b; backward dx = dy @ w, dw = dy^T @ x. */
    double f = mm_time(r->m, r->k, r->n, 0, 1, 1);
    double dx = mm_time(r->m, r->n, r->k, 0, 0, 0);
    double dw = mm_time(r->n, r->m, r->k, 1, 0, 0);
    printf("PEER onednn id=%s layout=plain pass=fwd ms=%.4f\n", r->id, f);
    printf("PEER onednn id=%s layout=plain pass=bwd ms=%.4f\n", r->id, dx + dw);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int threads = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: onednn_peer [--threads N]\n");
            return 2;
        }
    }
    omp_set_num_threads(threads);
    CK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    const dnnl_version_t *v = dnnl_version();
    printf("PEER onednn version=%d.%d.%d threads=%d\n", v->major, v->minor, v->patch, threads);
    for (size_t i = 0; i < sizeof CONVS / sizeof *CONVS; i++) {
        conv(&CONVS[i], 0);
        conv(&CONVS[i], 1);
    }
    for (size_t i = 0; i < sizeof MMS / sizeof *MMS; i++)
        matmul(&MMS[i]);
    dnnl_stream_destroy(strm);
    dnnl_engine_destroy(eng);
    return 0;
}
