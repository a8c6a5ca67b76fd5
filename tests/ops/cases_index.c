/* tests/ops/cases_index.c — op-suite rows for indexing, sorting, losses,
 * resampling and detection geometry.
 *
 * The suite generates float inputs only, so index tensors, class targets,
 * masks and valid boxes are made inside each row's function from the inputs'
 * shapes (deterministically, so the fast and reference runs and the finite
 * differences all see the same ones). Rows named "*_golden" take no inputs
 * and compare against values computed with PyTorch 1.13 / torchvision's
 * definitions; on a mismatch they return NULL with the reason, which fails
 * the suite with that message.
 */
#include "op_cases.h"

#include <math.h>

/* i64 tensor of shape with values (i * mul + add) mod m (0 when m == 0),
 * shifted by -m when neg and i % 3 == 1 (negative indices). */
static dk_tensor *ix(int ndim, const int64_t *shape, int64_t mul, int64_t add, int64_t m, bool neg)
{
    int64_t n = dkh_numel(ndim, shape);
    int64_t *v = dk_malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++) {
        v[i] = m ? (i * mul + add) % m : 0;
        if (neg && i % 3 == 1)
            v[i] -= m;
    }
    dk_tensor *t = dk_from_data(ndim, shape, DK_DTYPE_I64, v);
    dk_free(v);
    return t;
}

static dk_tensor *ix1(int64_t n, int64_t mul, int64_t add, int64_t m, bool neg)
{
    return ix(1, &n, mul, add, m, neg);
}

static int64_t last(const dk_tensor *t)
{
    return t->shape[t->ndim - 1];
}

/* ---- joining -------------------------------------------------------------------------- */

F1(c_cat2, dk_cat(in, 2, 0))
F1(c_cat3, dk_cat(in, 3, -1))
static dk_tensor *c_cat_many(dk_tensor *const *in)
{
    dk_tensor *xs[11];
    for (int k = 0; k < 11; k++)
        xs[k] = in[k % 2];
    return dk_cat(xs, 11, 1);
}
F1(c_stack, dk_stack(in, 3, 1))
static dk_tensor *c_split(dk_tensor *const *in)
{
    dk_tensor *p[8];
    int n = 0;
    if (dk_split(IN0, 2, 0, 8, p, &n) != DK_OK)
        return NULL;
    dk_tensor *r[8];
    for (int k = 0; k < n; k++) /* reversed, so the pieces are seen */
        r[k] = dk_mul_scalar(p[n - 1 - k], k + 1.0);
    return dk_cat(r, n, 0);
}
static dk_tensor *c_chunk(dk_tensor *const *in)
{
    dk_tensor *p[3];
    int n = 0;
    if (dk_chunk(IN0, 3, -1, p, &n) != DK_OK)
        return NULL;
    dk_tensor *s[3];
    if (dk_split_sizes(dk_cat(p, n, -1), (int64_t[]){1, last(IN0) - 1}, 2, -1, s) != DK_OK)
        return NULL;
    return dk_cat((dk_tensor *[]){s[1], s[0]}, 2, -1);
}

/* ---- indexing -------------------------------------------------------------------------- */

F1(c_index_select, dk_index_select(IN0, -1, ix1(5, 7, 1, last(IN0), false)))
F1(c_index_put_acc, dk_index_put(IN0, 0, ix1(IN1->shape[0], 5, 2, IN0->shape[0], true), IN1, true))
/* Unique indices (so an overwritten value has no effect on the gradient
 * check), negative ones, and values broadcast along dim 0. */
F1(c_index_put_set,
   dk_index_put(IN0, 0, dk_from_data(1, (int64_t[]){2}, DK_DTYPE_I64, (int64_t[]){-1, 0}), IN1, false))
static dk_tensor *c_gather(dk_tensor *const *in)
{
    int64_t shape[DK_MAX_DIMS];
    for (int d = 0; d < IN0->ndim; d++)
        shape[d] = IN0->shape[d];
    shape[IN0->ndim - 1] = 4;
    return dk_gather(IN0, -1, ix(IN0->ndim, shape, 3, 1, last(IN0), false));
}
F1(c_scatter_add, dk_scatter_add(IN0, -1, ix(IN1->ndim, IN1->shape, 3, 1, last(IN0), false), IN1))
/* index[..., j] = (j + row) % n: unique along the dim. */
static dk_tensor *c_scatter(dk_tensor *const *in)
{
    int64_t n = dkh_numel(IN1->ndim, IN1->shape), m = last(IN0), k = last(IN1);
    int64_t *v = dk_malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = (i % k + i / k) % m;
    dk_tensor *idx = dk_from_data(IN1->ndim, IN1->shape, DK_DTYPE_I64, v);
    dk_free(v);
    return dk_scatter(IN0, -1, idx, IN1);
}
static dk_tensor *c_masked_fill(dk_tensor *const *in)
{
    int64_t n = last(IN0);
    bool m[16];
    for (int64_t i = 0; i < n && i < 16; i++)
        m[i] = i % 3 == 0;
    return dk_masked_fill(IN0, dk_from_data(1, &n, DK_DTYPE_BOOL, m), -2.5);
}
F1(c_nonzero, dk_nonzero(IN0))

/* ---- selection and sorting ---------------------------------------------------------------- */

F1(c_max_dim, dk_max_dim(IN0, 1, false, NULL))
F1(c_min_dim, dk_min_dim(IN0, -1, true, NULL))
static dk_tensor *c_max_idx(dk_tensor *const *in)
{
    dk_tensor *i = NULL;
    dk_tensor *v = dk_max_dim(IN0, 0, false, &i);
    return v ? i : NULL;
}
static dk_tensor *c_min_idx(dk_tensor *const *in)
{
    dk_tensor *i = NULL;
    dk_tensor *v = dk_min_dim(IN0, -1, true, &i);
    return v ? i : NULL;
}
F1(c_sort, dk_sort(IN0, -1, false, NULL))
F1(c_sort_desc0, dk_sort(IN0, 0, true, NULL))
F1(c_argsort, dk_argsort(IN0, -1, false))
F1(c_argsort_desc, dk_argsort(IN0, 0, true))
F1(c_topk, dk_topk(IN0, 2, -1, true, NULL))
static dk_tensor *c_topk_idx(dk_tensor *const *in)
{
    dk_tensor *i = NULL;
    dk_tensor *v = dk_topk(IN0, 2, 0, false, &i);
    return v ? i : NULL;
}

/* ---- norms and losses ---------------------------------------------------------------------- */

F1(c_norm, dk_norm(IN0, (int[]){-1}, 1, false))
F1(c_norm_all, dk_norm(IN0, NULL, 0, true))

/* Class targets for logits (N, C, d...): every fifth position is `ignore`. */
static dk_tensor *targets_ign(const dk_tensor *x, int64_t ignore)
{
    int cd = x->ndim >= 2 ? 1 : 0;
    int64_t shape[DK_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < x->ndim; d++)
        if (d != cd)
            shape[n++] = x->shape[d];
    int64_t cnt = dkh_numel(n, shape), C = x->shape[cd];
    int64_t *v = dk_malloc((size_t)(cnt ? cnt : 1) * sizeof *v);
    for (int64_t i = 0; i < cnt; i++)
        v[i] = i % 5 == 3 ? ignore : (i * 7 + 1) % C;
    dk_tensor *t = dk_from_data(n, shape, DK_DTYPE_I64, v);
    dk_free(v);
    return t;
}

static dk_tensor *targets(const dk_tensor *x)
{
    return targets_ign(x, -100);
}

static dk_tensor *class_weight(const dk_tensor *x)
{
    int64_t C = x->shape[x->ndim >= 2 ? 1 : 0];
    dk_tensor *w = dk_add_scalar(dk_mul_scalar(dk_arange(0, (double)C, 1, x->dtype, DK_CPU), 0.25), 0.5);
    return w;
}

F1(c_ce, dk_cross_entropy(IN0, targets(IN0), NULL, -100, 0, DK_REDUCTION_MEAN))
F1(c_ce_wls, dk_cross_entropy(IN0, targets(IN0), class_weight(IN0), -100, 0.1, DK_REDUCTION_MEAN))
F1(c_ce_none, dk_cross_entropy(IN0, targets(IN0), class_weight(IN0), -100, 0.2, DK_REDUCTION_NONE))
F1(c_ce_sum, dk_cross_entropy(IN0, targets_ign(IN0, 1), NULL, 1, 0.3, DK_REDUCTION_SUM))
F1(c_nll, dk_nll_loss(dk_log_softmax(IN0, IN0->ndim >= 2 ? 1 : 0), targets(IN0), class_weight(IN0),
                      -100, DK_REDUCTION_MEAN))
F1(c_nll_none, dk_nll_loss(IN0, targets(IN0), NULL, -100, DK_REDUCTION_NONE))
static dk_tensor *c_bce(dk_tensor *const *in)
{
    int64_t c = last(IN0);
    dk_tensor *pw = dk_add_scalar(dk_mul_scalar(dk_arange(0, (double)c, 1, IN0->dtype, DK_CPU), 0.5), 0.5);
    return dk_binary_cross_entropy_with_logits(IN0, dk_sigmoid(IN1), dk_abs(IN1), pw,
                                               DK_REDUCTION_MEAN);
}
F1(c_bce_plain, dk_binary_cross_entropy_with_logits(IN0, IN1, NULL, NULL, DK_REDUCTION_NONE))
F1(c_focal, dk_sigmoid_focal_loss(IN0, dk_sigmoid(IN1), 0.25, 2, DK_REDUCTION_SUM))
F1(c_focal_none, dk_sigmoid_focal_loss(IN0, dk_sigmoid(IN1), -1, 1.5, DK_REDUCTION_NONE))
F1(c_smooth_l1, dk_smooth_l1_loss(IN0, IN1, 0.5, DK_REDUCTION_MEAN))
F1(c_smooth_l1_0, dk_smooth_l1_loss(IN0, IN1, 0, DK_REDUCTION_NONE))
F1(c_l1, dk_l1_loss(IN0, IN1, DK_REDUCTION_SUM))
F1(c_mse, dk_mse_loss(IN0, IN1, DK_REDUCTION_MEAN))

/* ---- resampling ------------------------------------------------------------------------------ */

F1(c_near_size, dk_interpolate(IN0, (int64_t[]){5, 7}, NULL, DK_INTERP_NEAREST, false))
F1(c_near_x2, dk_interpolate(IN0, NULL, (double[]){2, 2}, DK_INTERP_NEAREST, false))
F1(c_near_scale, dk_interpolate(IN0, NULL, (double[]){0.6, 1.7}, DK_INTERP_NEAREST, false))
F1(c_bil_size, dk_interpolate(IN0, (int64_t[]){5, 3}, NULL, DK_INTERP_BILINEAR, false))
F1(c_bil_align, dk_interpolate(IN0, (int64_t[]){6, 7}, NULL, DK_INTERP_BILINEAR, true))
F1(c_bil_scale, dk_interpolate(IN0, NULL, (double[]){1.5, 0.75}, DK_INTERP_BILINEAR, false))
F1(c_pad_const, dk_pad(IN0, (int64_t[]){1, 2, 2, 0}, 4, DK_PAD_CONSTANT, 0.5))
F1(c_pad_crop, dk_pad(IN0, (int64_t[]){-1, 2}, 2, DK_PAD_CONSTANT, -1))
F1(c_pad_reflect, dk_pad(IN0, (int64_t[]){2, 1, 1, 2}, 4, DK_PAD_REFLECT, 0))
F1(c_pad_replicate, dk_pad(IN0, (int64_t[]){2, 3, 1, 0}, 4, DK_PAD_REPLICATE, 0))
static dk_tensor *c_dropout(dk_tensor *const *in)
{
    dk_rng r;
    dk_rng_seed(&r, 11);
    return dk_dropout(IN0, 0.3, true, &r);
}

/* ---- geometry ---------------------------------------------------------------------------------- */

/* Valid xyxy boxes from (N, 4) values: (x1, y1) = v[:, :2], (x2, y2) = x1 + |v[:, 2:]|. */
static dk_tensor *boxes_of(dk_tensor *v)
{
    dk_tensor *lo = dk_slice(v, 1, 0, 2, 1);
    dk_tensor *hi = dk_add(lo, dk_abs(dk_slice(v, 1, 2, 4, 1)));
    return dk_cat((dk_tensor *[]){lo, hi}, 2, 1);
}
F1(c_box_iou, dk_box_iou(boxes_of(IN0), boxes_of(IN1)))
F1(c_nms, dk_batched_nms(boxes_of(IN0), IN1, ix1(IN1->shape[0], 1, 0, 2, false), 0.2))
F1(c_nms1, dk_nms(boxes_of(IN0), IN1, 0.1))


/* ---- large shapes: the fast kernels' parallel paths, forward and backward ------------------- */

/* The gradient of sum(f(x)^2) w.r.t. a fresh leaf over x's values. The suite
 * runs rows with recording off, so it is switched on here. */
dk_tensor *dkt_grad_of(dk_tensor *x, dk_tensor *(*f)(dk_tensor *))
{
    bool was = dk_grad_set_enabled(true);
    dk_tensor *leaf = dk_detach(x);
    dk_tensor *g = NULL;
    if (leaf && dk_tensor_set_requires_grad(leaf, true) == DK_OK) {
        dk_tensor *y = f(leaf);
        if (y && dk_backward(dk_sum(dk_mul(y, y), NULL, 0, false), NULL, false) == DK_OK)
            g = dk_tensor_grad(leaf);
    }
    dk_grad_set_enabled(was);
    return g;
}

static dk_tensor *f_ce(dk_tensor *x)
{
    return dk_cross_entropy(x, targets(x), class_weight(x), -100, 0.1, DK_REDUCTION_NONE);
}
static dk_tensor *f_bilinear(dk_tensor *x)
{
    return dk_interpolate(x, NULL, (double[]){2, 2}, DK_INTERP_BILINEAR, false);
}
static dk_tensor *f_gather(dk_tensor *x)
{
    return dk_max_dim(x, 1, false, NULL);
}
static dk_tensor *f_dropout(dk_tensor *x)
{
    dk_rng r;
    dk_rng_seed(&r, 5);
    return dk_dropout(x, 0.5, true, &r);
}
F1(c_big_ce, dkt_grad_of(IN0, f_ce))
F1(c_big_bilinear, dkt_grad_of(IN0, f_bilinear))
F1(c_big_max, dkt_grad_of(IN0, f_gather))
F1(c_big_dropout, dkt_grad_of(IN0, f_dropout))
/* ResNet's option-A shortcut: channels zero-padded on both sides. */
static dk_tensor *f_pad_channels(dk_tensor *x)
{
    return dk_pad(x, (int64_t[]){0, 0, 0, 0, 8, 8}, 6, DK_PAD_CONSTANT, 0);
}
/* Cropped rows and columns and padded channels at once. */
static dk_tensor *f_pad_mixed(dk_tensor *x)
{
    return dk_pad(x, (int64_t[]){-2, 3, 1, -1, 2, 0}, 6, DK_PAD_CONSTANT, 0.25);
}
F1(c_big_pad, dkt_grad_of(IN0, f_pad_channels))
F1(c_big_pad_mixed, dkt_grad_of(IN0, f_pad_mixed))
/* Reflect and replicate: border elements read twice or more, so the
 * backward sums several gradient elements into one. */
static dk_tensor *f_pad_reflect(dk_tensor *x)
{
    return dk_pad(x, (int64_t[]){1, 1, 1, 1}, 4, DK_PAD_REFLECT, 0);
}
static dk_tensor *f_pad_replicate(dk_tensor *x)
{
    return dk_pad(x, (int64_t[]){2, 3, 1, 0, 1, 1}, 6, DK_PAD_REPLICATE, 0);
}
/* The option-A shortcut whole: x[:, :, ::2, ::2] made contiguous (a tiled
 * copy; channels-last in the "cl" pass), then zero channels. */
static dk_tensor *f_shortcut_a(dk_tensor *x)
{
    dk_tensor *s = dk_slice(dk_slice(x, 2, 0, INT64_MAX, 2), 3, 0, INT64_MAX, 2);
    return dk_pad(dk_contiguous(s), (int64_t[]){0, 0, 0, 0, 4, 4}, 6, DK_PAD_CONSTANT, 0);
}
/* Nearest backward: windows of 2 x 2; then rows no output reads (17 of
 * 24) and columns read once or twice (50 of 24). */
static dk_tensor *f_nearest_x2(dk_tensor *x)
{
    return dk_interpolate(x, NULL, (double[]){2, 2}, DK_INTERP_NEAREST, false);
}
static dk_tensor *f_nearest_odd(dk_tensor *x)
{
    return dk_interpolate(x, (int64_t[]){17, 50}, NULL, DK_INTERP_NEAREST, false);
}
F1(c_big_pad_reflect, dkt_grad_of(IN0, f_pad_reflect))
F1(c_big_pad_replicate, dkt_grad_of(IN0, f_pad_replicate))
F1(c_big_shortcut_a, dkt_grad_of(IN0, f_shortcut_a))
F1(c_big_nearest_x2, dkt_grad_of(IN0, f_nearest_x2))
F1(c_big_nearest_odd, dkt_grad_of(IN0, f_nearest_odd))
static dk_tensor *f_select_rows(dk_tensor *x)
{
    return dk_index_select(x, 0, ix1(1000, 7, 1, x->shape[0], false)); /* duplicates */
}
static dk_tensor *f_softmax_c(dk_tensor *x)
{
    return dk_softmax(x, 1); /* inner 600: two whole blocks and a partial one */
}
static dk_tensor *f_log_softmax_c(dk_tensor *x)
{
    return dk_log_softmax(x, 1);
}
static dk_tensor *f_log_softmax_rows(dk_tensor *x)
{
    return dk_log_softmax(x, -1);
}
static dk_tensor *f_nll(dk_tensor *x)
{
    return dk_nll_loss(x, targets(x), class_weight(x), -100, DK_REDUCTION_MEAN);
}
/* A counter that is not a multiple of 16: the kernel's head and tail. */
static dk_tensor *f_dropout_odd(dk_tensor *x)
{
    dk_rng r;
    dk_rng_seed(&r, 6);
    r.counter = 37;
    return dk_dropout(x, 0.3, true, &r);
}
F1(c_big_nll, dkt_grad_of(IN0, f_nll))
F1(c_big_dropout_odd, dkt_grad_of(IN0, f_dropout_odd))
F1(c_big_select_bwd, dkt_grad_of(IN0, f_select_rows))
F1(c_big_softmax_c, dkt_grad_of(IN0, f_softmax_c))
F1(c_big_log_softmax_c, dkt_grad_of(IN0, f_log_softmax_c))
F1(c_big_log_softmax_rows, dkt_grad_of(IN0, f_log_softmax_rows))
F1(c_big_scatter_add, dk_scatter_add(IN0, -1, ix(IN1->ndim, IN1->shape, 3, 1, last(IN0), false), IN1))
F1(c_big_index_put, dk_index_put(IN0, 0, ix1(IN1->shape[0], 5, 2, IN0->shape[0], true), IN1, true))
F1(c_big_index_set, dk_index_put(IN0, 0, ix1(IN1->shape[0], 5, 2, IN0->shape[0], true), IN1, false))
F1(c_big_sort, dk_argsort(IN0, -1, true))
/* Long rows take the packed radix sort (n >= 512) and topk's selection
 * (k <= n / 4). Products on the 0.5 grid hold many ties and both +0 and -0;
 * logs of it hold NaN (from negatives) and -inf (from 0). */
F1(c_big_sort_ties, dk_argsort(dk_mul(IN0, IN1), -1, true))
static dk_tensor *c_big_topk_ties(dk_tensor *const *in)
{
    dk_tensor *i = NULL;
    dk_tensor *v = dk_topk(dk_mul(IN0, IN1), 70, -1, false, &i);
    return v ? i : NULL;
}
F1(c_big_sort_nan, dk_argsort(dk_ln(IN0), -1, false))
static dk_tensor *c_big_topk(dk_tensor *const *in)
{
    dk_tensor *i = NULL;
    dk_tensor *v = dk_topk(IN0, 60, -1, true, &i);
    return v ? i : NULL;
}
static dk_tensor *c_big_topk_nan(dk_tensor *const *in)
{
    dk_tensor *i = NULL;
    dk_tensor *v = dk_topk(dk_ln(IN0), 50, -1, true, &i);
    return v ? i : NULL;
}
/* Rows along the last dim: the vectorised first-extreme search; a NaN (ln
 * of -0.25) in most rows, not all. */
static dk_tensor *c_big_max_rows(dk_tensor *const *in)
{
    dk_tensor *i = NULL;
    dk_tensor *v = dk_max_dim(IN0, -1, false, &i);
    return v ? dk_cat((dk_tensor *[]){v, dk_cast(i, v->dtype)}, 2, 0) : NULL;
}
static dk_tensor *c_big_min_nan(dk_tensor *const *in)
{
    dk_tensor *i = NULL;
    dk_tensor *v = dk_min_dim(dk_ln(dk_add_scalar(IN0, 1.25)), -1, false, &i);
    return v ? i : NULL;
}
F1(c_big_norm, dk_norm(IN0, (int[]){-1}, 1, false))
F1(c_big_norm0, dk_norm(IN0, (int[]){0}, 1, true))
F1(c_big_cat, dk_cat(in, 2, 1))
F1(c_big_select, dk_index_select(IN0, 0, ix1(300, 7, 1, IN0->shape[0], false)))

/* ---- goldens (PyTorch 1.13 values; torchvision's definitions) --------------------------------- */

/* y when its numel values match want within tol (relative to 1 + |want|),
 * else NULL with the first difference recorded. */
static dk_tensor *expect(const char *what, dk_tensor *y, const double *want, int64_t n, double tol)
{
    if (!y)
        return NULL;
    if (dkh_numel(y->ndim, y->shape) != n) {
        dk_fail(DK_ERR_INTERNAL, "%s: %lld values, expected %lld", what,
                (long long)dkh_numel(y->ndim, y->shape), (long long)n);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        double v = dkh_load(dkh_base(y), y->dtype, dkh_offset_of(i, y->ndim, y->shape, y->strides));
        if (!(fabs(v - want[i]) <= tol * (1 + fabs(want[i]))) && !(isnan(v) && isnan(want[i]))) {
            dk_fail(DK_ERR_INTERNAL, "%s: element %lld is %.17g, PyTorch gives %.17g", what,
                    (long long)i, v, want[i]);
            return NULL;
        }
    }
    return y;
}

#define EXPECT(what, y, tol, ...)                                                                \
    expect(what, y, (const double[]){__VA_ARGS__},                                               \
           sizeof((const double[]){__VA_ARGS__}) / sizeof(double), tol)

/* x = (0.37 * arange(12)) ^ 1.3 as (1, 1, 3, 4). */
static dk_tensor *golden_image(void)
{
    dk_tensor *r = dk_arange(0, 12, 1, DK_DTYPE_F64, DK_CPU);
    return dk_reshape(dk_pow_scalar(dk_mul_scalar(r, 0.37), 1.3), 4, (int64_t[]){1, 1, 3, 4});
}

static dk_tensor *g_resample(dk_tensor *const *in)
{
    dk_tensor *x = golden_image();
    const double T = 1e-12;
    dk_tensor *ok = EXPECT(
        "nearest size (5, 7)", dk_interpolate(x, (int64_t[]){5, 7}, NULL, DK_INTERP_NEAREST, false), T,
        0, 0, 0.27457578966804486, 0.27457578966804486, 0.67608489897916435, 0.67608489897916435,
        1.1453016131561653, 0, 0, 0.27457578966804486, 0.27457578966804486, 0.67608489897916435,
        0.67608489897916435, 1.1453016131561653, 1.6647162926501207, 1.6647162926501207,
        2.224965324088207, 2.224965324088207, 2.820063365264267, 2.820063365264267,
        3.4457970376770315, 1.6647162926501207, 1.6647162926501207, 2.224965324088207,
        2.224965324088207, 2.820063365264267, 2.820063365264267, 3.4457970376770315,
        4.0990123270009136, 4.0990123270009136, 4.7772448790330211, 4.7772448790330211,
        5.478507257274714, 5.478507257274714, 6.2011570728425429);
    ok = ok ? EXPECT("nearest scale (0.6, 1.7)",
                     dk_interpolate(x, NULL, (double[]){0.6, 1.7}, DK_INTERP_NEAREST, false), T, 0, 0,
                     0.27457578966804486, 0.27457578966804486, 0.67608489897916435,
                     0.67608489897916435)
            : NULL;
    ok = ok ? EXPECT("bilinear size (5, 3)",
                     dk_interpolate(x, (int64_t[]){5, 3}, NULL, DK_INTERP_BILINEAR, false), T,
                     0.045762631611340802, 0.4753303443236046, 1.0670988274599984,
                     0.73069403145605838, 1.2942039444646576, 1.9768625333859606,
                     1.7580911312231351, 2.522514344676237, 3.3415080922749039,
                     3.2304671038930124, 4.0857313787628149, 4.985032499058704,
                     4.2120510856729316, 5.1278760681538671, 6.0807154369145708)
            : NULL;
    ok = ok ? EXPECT("bilinear align_corners size (4, 6)",
                     dk_interpolate(x, (int64_t[]){4, 6}, NULL, DK_INTERP_BILINEAR, true), T, 0,
                     0.16474547380082691, 0.35487761153026876, 0.59578307711694034,
                     0.86377158464996473, 1.1453016131561653, 1.109810861766747,
                     1.3888256322755905, 1.6809491587257022, 1.9992901970583501,
                     2.3348284177029033, 2.6789652295034094, 2.4761483041003847,
                     2.835894427082041, 3.2018224064427323, 3.580114098561495, 3.96942695065353,
                     4.3642503827322017, 4.0990123270009136, 4.5059518582201781,
                     4.9174973546813598, 5.3382547816263752, 5.7675671835018454,
                     6.2011570728425429)
            : NULL;
    ok = ok ? EXPECT("bilinear scale (1.5, 0.75)",
                     dk_interpolate(x, NULL, (double[]){1.5, 0.75}, DK_INTERP_BILINEAR, false), T,
                     0.045762631611340802, 0.4753303443236046, 1.0670988274599984,
                     0.90192688141723776, 1.4989223444999207, 2.2043034598674511,
                     2.1670844569647674, 2.9567412985891752, 3.7980426497148483,
                     3.8030577599312987, 4.6936491142409293, 5.6241808794746264)
            : NULL;
    ok = ok ? EXPECT("reflect pad (2, 1, 1, 2)",
                     dk_pad(x, (int64_t[]){2, 1, 1, 2}, 4, DK_PAD_REFLECT, 0), T,
                     2.820063365264267, 2.224965324088207, 1.6647162926501207, 2.224965324088207,
                     2.820063365264267, 3.4457970376770315, 2.820063365264267, 0.67608489897916435,
                     0.27457578966804486, 0, 0.27457578966804486, 0.67608489897916435,
                     1.1453016131561653, 0.67608489897916435, 2.820063365264267, 2.224965324088207,
                     1.6647162926501207, 2.224965324088207, 2.820063365264267, 3.4457970376770315,
                     2.820063365264267, 5.478507257274714, 4.7772448790330211, 4.0990123270009136,
                     4.7772448790330211, 5.478507257274714, 6.2011570728425429, 5.478507257274714,
                     2.820063365264267, 2.224965324088207, 1.6647162926501207, 2.224965324088207,
                     2.820063365264267, 3.4457970376770315, 2.820063365264267, 0.67608489897916435,
                     0.27457578966804486, 0, 0.27457578966804486, 0.67608489897916435,
                     1.1453016131561653, 0.67608489897916435)
            : NULL;
    ok = ok ? EXPECT("replicate pad (2, 3, 1, 0)",
                     dk_pad(x, (int64_t[]){2, 3, 1, 0}, 4, DK_PAD_REPLICATE, 0), T, 0, 0, 0,
                     0.27457578966804486, 0.67608489897916435, 1.1453016131561653,
                     1.1453016131561653, 1.1453016131561653, 1.1453016131561653, 0, 0, 0,
                     0.27457578966804486, 0.67608489897916435, 1.1453016131561653,
                     1.1453016131561653, 1.1453016131561653, 1.1453016131561653,
                     1.6647162926501207, 1.6647162926501207, 1.6647162926501207,
                     2.224965324088207, 2.820063365264267, 3.4457970376770315, 3.4457970376770315,
                     3.4457970376770315, 3.4457970376770315, 4.0990123270009136,
                     4.0990123270009136, 4.0990123270009136, 4.7772448790330211,
                     5.478507257274714, 6.2011570728425429, 6.2011570728425429,
                     6.2011570728425429, 6.2011570728425429)
            : NULL;
    return ok;
}

static dk_tensor *g_losses(dk_tensor *const *in)
{
    const double T = 1e-12;
    dk_tensor *logits = dk_from_data(2, (int64_t[]){4, 3}, DK_DTYPE_F64,
                                     (double[]){1, 2, 0.5, 0.1, -1, 3, 2, 2, -2, 0, 1.5, 0.3});
    dk_tensor *tgt = dk_from_data(1, (int64_t[]){4}, DK_DTYPE_I64, (int64_t[]){2, 0, -100, 1});
    dk_tensor *w = dk_from_data(1, (int64_t[]){3}, DK_DTYPE_F64, (double[]){0.5, 1, 2});
    dk_tensor *ok = EXPECT("cross_entropy weight, smoothing 0.1, mean",
                           dk_cross_entropy(logits, tgt, w, -100, 0.1, DK_REDUCTION_MEAN), T,
                           1.6477302929753148);
    ok = ok ? EXPECT("cross_entropy weight, smoothing 0.2, none",
                     dk_cross_entropy(logits, tgt, w, -100, 0.2, DK_REDUCTION_NONE), T,
                     3.4846761041978991, 1.5681570053416445, 0, 0.64560298641536584)
            : NULL;
    ok = ok ? EXPECT("cross_entropy", dk_cross_entropy(logits, tgt, NULL, -100, 0, DK_REDUCTION_MEAN),
                     T, 1.7855647600815321)
            : NULL;
    ok = ok ? EXPECT("nll_loss weight",
                     dk_nll_loss(dk_log_softmax(logits, 1), tgt, w, -100, DK_REDUCTION_MEAN), T,
                     1.6673359871063702)
            : NULL;
    dk_tensor *x = dk_from_data(2, (int64_t[]){2, 3}, DK_DTYPE_F64, (double[]){0.5, -1, 2, -3, 0.2, 1});
    dk_tensor *y = dk_from_data(2, (int64_t[]){2, 3}, DK_DTYPE_F64, (double[]){1, 0, 0.3, 0, 1, 1});
    dk_tensor *pw = dk_from_data(1, (int64_t[]){3}, DK_DTYPE_F64, (double[]){1, 2, 0.5});
    dk_tensor *wt = dk_from_data(2, (int64_t[]){1, 3}, DK_DTYPE_F64, (double[]){1, 0.5, 2});
    ok = ok ? EXPECT("bce_with_logits weight, pos_weight",
                     dk_binary_cross_entropy_with_logits(x, y, wt, pw, DK_REDUCTION_MEAN), T,
                     0.76774555919763809)
            : NULL;
    ok = ok ? EXPECT("sigmoid_focal_loss", dk_sigmoid_focal_loss(x, y, 0.25, 2, DK_REDUCTION_SUM), T,
                     0.45977943169025337)
            : NULL;
    ok = ok ? EXPECT("smooth_l1_loss", dk_smooth_l1_loss(x, y, 0.5, DK_REDUCTION_MEAN), T,
                     0.95833333333333337)
            : NULL;
    return ok;
}

static dk_tensor *g_order(dk_tensor *const *in)
{
    dk_tensor *v = dk_from_data(1, (int64_t[]){6}, DK_DTYPE_F64, (double[]){3, NAN, 1, 3, -2, 1});
    dk_tensor *ok = EXPECT("argsort", dk_argsort(v, 0, false), 0, 4, 2, 5, 0, 3, 1);
    ok = ok ? EXPECT("argsort descending", dk_argsort(v, 0, true), 0, 1, 0, 3, 2, 5, 4) : NULL;
    dk_tensor *idx = NULL;
    dk_tensor *m = dk_from_data(2, (int64_t[]){1, 4}, DK_DTYPE_F64, (double[]){1, 3, 3, 2});
    ok = ok && dk_max_dim(m, 1, false, &idx) ? EXPECT("max_dim index", idx, 0, 1) : NULL;
    ok = ok ? EXPECT("topk", dk_topk(v, 3, 0, true, NULL), 0, NAN, 3, 3) : NULL;
    return ok;
}

/* torchvision's rule: suppressed when IoU > threshold (0.5 exactly is kept). */
static dk_tensor *g_nms(dk_tensor *const *in)
{
    dk_tensor *b = dk_from_data(2, (int64_t[]){6, 4}, DK_DTYPE_F64,
                                (double[]){0, 0, 10, 10, 1, 1, 11, 11, 1, 1, 11, 11, 20, 20, 30, 30,
                                           0, 0, 10, 10, 0, 0, 10, 5});
    dk_tensor *s = dk_from_data(1, (int64_t[]){6}, DK_DTYPE_F64,
                                (double[]){0.9, 0.8, 0.85, 0.7, 0.95, 0.6});
    dk_tensor *c = dk_from_data(1, (int64_t[]){6}, DK_DTYPE_I64, (int64_t[]){0, 0, 1, 0, 1, 0});
    dk_tensor *ok = EXPECT("batched_nms", dk_batched_nms(b, s, c, 0.5), 0, 4, 0, 3, 5);
    ok = ok ? EXPECT("nms", dk_nms(b, s, 0.5), 0, 4, 3, 5) : NULL;
    ok = ok ? EXPECT("box_iou", dk_box_iou(dk_slice(b, 0, 0, 2, 1), dk_slice(b, 0, 3, 6, 1)), 1e-15,
                     0, 1, 0.5, 0, 81.0 / 119, 36.0 / 114)
            : NULL;
    return ok;
}

const op_case dkt_cases_index[] = {
    {DKH_OP_CAT, "cat", 2, "2,3;4,3|0,3;2,3|1,5;2,5|3;2", 0, c_cat2},
    {DKH_OP_CAT, "cat_last", 3, "2,3;2,1;2,4|3,0;3,2;3,1|2,1,2;2,1,3;2,1,1", 0, c_cat3},
    {DKH_OP_CAT, "cat_rounds", 2, "2,3;2,1|1,2;1,2", 0, c_cat_many},
    {DKH_OP_CAT, "stack", 3, "2,3;2,3;2,3|0,2;0,2;0,2|3;3;3", 0, c_stack},
    {DKH_OP_SLICE, "split", 1, "5,3|4,2|1,2,2", 0, c_split},
    {DKH_OP_SLICE, "chunk", 1, "3,5|2,4|1,7|2,3,2", 0, c_chunk},
    {DKH_OP_INDEX_SELECT, "index_select", 1, "4,3|5,2,3|1,4|0,3", 0, c_index_select},
    {DKH_OP_INDEX_PUT, "index_put_acc", 2, "4,3;5,3|3,2,2;4,2,2|2,3;1,3|3,0;2,0", 0, c_index_put_acc},
    {DKH_OP_INDEX_PUT, "index_put_set", 2, "4,3;1,3|3,2,2;2,1|2,5;s", 0, c_index_put_set},
    {DKH_OP_GATHER, "gather", 1, "3,5|4,2,3|1,1|0,3", 0, c_gather},
    {DKH_OP_SCATTER, "scatter_add", 2, "3,5;3,4|2,3,4;2,3,6|1,2;1,3|0,2;0,2", 0, c_scatter_add},
    {DKH_OP_SCATTER, "scatter", 2, "3,5;3,4|2,3,4;2,3,3|1,2;1,1", 0, c_scatter},
    {DKH_OP_WHERE, "masked_fill", 1, "3,4|2,3,5|0,3", 0, c_masked_fill},
    {DKH_OP_NONZERO, "nonzero", 1, "3,4|2,3,2|0,3|s", NOGRAD | QUANT, c_nonzero},
    {DKH_OP_MAX_DIM, "max_dim", 1, "3,5|2,4,3|1,1", 0, c_max_dim},
    {DKH_OP_MAX_DIM, "min_dim", 1, "3,5|2,4,3|1,1|2,0,3", 0, c_min_dim},
    {DKH_OP_MAX_DIM, "max_dim_indices", 1, "4,5|2,4,3|1,1", NOGRAD | QUANT, c_max_idx},
    {DKH_OP_MAX_DIM, "min_dim_indices", 1, "4,5|2,4,3|1,1", NOGRAD | QUANT, c_min_idx},
    {DKH_OP_SORT, "sort", 1, "3,5|2,4,3|1,1|0,3|4", 0, c_sort},
    {DKH_OP_SORT, "sort_desc_dim0", 1, "3,5|2,4,3|1,1", 0, c_sort_desc0},
    {DKH_OP_SORT, "argsort_ties", 1, "3,9|2,4,7", NOGRAD | QUANT, c_argsort},
    {DKH_OP_SORT, "argsort_desc_ties", 1, "9,3|7,4,2", NOGRAD | QUANT, c_argsort_desc},
    {DKH_OP_TOPK, "topk", 1, "3,5|2,3,4|4,2|0,3", 0, c_topk},
    {DKH_OP_TOPK, "topk_smallest_ties", 1, "6,5|9,3,4|2,2", NOGRAD | QUANT, c_topk_idx},
    {DKH_OP_NORM, "norm", 1, U2 "|" U3, 0, c_norm},
    {DKH_OP_NORM, "norm_all", 1, "3,4|2,3,2|s", 0, c_norm_all},
    {DKH_OP_CROSS_ENTROPY, "cross_entropy", 1, "4,5|1,3|2,3,2,2|7,2", 0, c_ce},
    {DKH_OP_CROSS_ENTROPY, "cross_entropy_weight_smooth", 1, "4,5|2,3,2,2|6,4|5", 0, c_ce_wls},
    {DKH_OP_CROSS_ENTROPY, "cross_entropy_none", 1, "4,5|2,3,3|0,3|9,2", 0, c_ce_none},
    {DKH_OP_CROSS_ENTROPY, "cross_entropy_sum", 1, "4,5|2,3,3|0,3", 0, c_ce_sum},
    {DKH_OP_NLL_LOSS, "nll_loss", 1, "4,5|2,3,2,2|6,3", 0, c_nll},
    {DKH_OP_NLL_LOSS, "nll_loss_none", 1, "4,5|2,3,3|0,3", 0, c_nll_none},
    {DKH_OP_SOFTPLUS, "bce_with_logits", 2, "3,4;3,4|2,3;1,3|4;4", 0, c_bce},
    {DKH_OP_SOFTPLUS, "bce_with_logits_none", 2, "3,4;3,4|2,0;2,0", 0, c_bce_plain},
    {DKH_OP_SOFTPLUS, "sigmoid_focal_loss", 2, "3,4;3,4|5;5", 0, c_focal},
    {DKH_OP_SOFTPLUS, "sigmoid_focal_loss_none", 2, "3,4;3,4|2,3;1,3", 0, c_focal_none},
    {DKH_OP_ABS, "smooth_l1_loss", 2, "3,4;3,4|2,3;1,3", 0, c_smooth_l1},
    {DKH_OP_ABS, "smooth_l1_loss_beta0", 2, "3,4;3,4", 0, c_smooth_l1_0},
    {DKH_OP_ABS, "l1_loss", 2, "3,4;3,4|5;5", 0, c_l1},
    {DKH_OP_MUL, "mse_loss", 2, "3,4;3,4|2,3;1,3|0,2;0,2", 0, c_mse},
    {DKH_OP_INTERPOLATE, "nearest_size", 1, "1,2,3,4|2,1,4,4|1,1,1,3|0,2,3,3", 0, c_near_size},
    {DKH_OP_INTERPOLATE, "nearest_x2", 1, "1,2,3,4|1,1,1,3", 0, c_near_x2},
    {DKH_OP_INTERPOLATE, "nearest_scale", 1, "1,2,5,4|2,1,3,3", 0, c_near_scale},
    {DKH_OP_INTERPOLATE, "bilinear_size", 1, "1,2,3,4|2,1,4,6|1,1,1,1", 0, c_bil_size},
    {DKH_OP_INTERPOLATE, "bilinear_align", 1, "1,2,3,4|1,1,1,2", 0, c_bil_align},
    {DKH_OP_INTERPOLATE, "bilinear_scale", 1, "1,2,3,4|2,1,5,6", 0, c_bil_scale},
    {DKH_OP_PAD, "pad_constant", 1, "3,4|2,3,5|1,0", 0, c_pad_const},
    {DKH_OP_PAD, "pad_crop", 1, "3,4|2,3,5", 0, c_pad_crop},
    {DKH_OP_PAD, "pad_reflect", 1, "3,4|2,3,5|2,4,3", 0, c_pad_reflect},
    {DKH_OP_PAD, "pad_replicate", 1, "3,4|2,1,5|1,1|2,2,1", 0, c_pad_replicate},
    {DKH_OP_DROPOUT, "dropout", 1, "3,4|2,3,5|0,3|s", 0, c_dropout},
    {DKH_OP_BOX_IOU, "box_iou", 2, "3,4;5,4|1,4;0,4|0,4;2,4", NOGRAD, c_box_iou},
    {DKH_OP_NMS, "batched_nms", 2, "8,4;8|1,4;1|0,4;0|12,4;12", NOGRAD, c_nms},
    {DKH_OP_NMS, "nms", 2, "8,4;8|12,4;12", NOGRAD, c_nms1},
    {DKH_OP_CROSS_ENTROPY, "large_cross_entropy", 1, "300,130|4,21,24,24|2,5,1300|500,20", NOGRAD, c_big_ce},
    {DKH_OP_INTERPOLATE, "large_bilinear", 1, "2,16,40,40", NOGRAD, c_big_bilinear},
    {DKH_OP_MAX_DIM, "large_max_dim", 1, "64,40,30", NOGRAD, c_big_max},
    {DKH_OP_DROPOUT, "large_dropout", 1, "300,130", NOGRAD, c_big_dropout},
    {DKH_OP_PAD, "large_pad_channels", 1, "16,16,14,14", NOGRAD, c_big_pad},
    {DKH_OP_PAD, "large_pad_crop", 1, "16,16,14,14|3,2,50000", NOGRAD, c_big_pad_mixed},
    {DKH_OP_PAD, "large_pad_reflect", 1, "4,16,22,22|3,2,3000", NOGRAD, c_big_pad_reflect},
    {DKH_OP_PAD, "large_pad_replicate", 1, "4,10,20,30", NOGRAD, c_big_pad_replicate},
    {DKH_OP_COPY, "large_shortcut_a", 1, "8,42,20,20|3,5,9,300", NOGRAD, c_big_shortcut_a},
    {DKH_OP_INTERPOLATE, "large_nearest_x2", 1, "2,20,24,24", NOGRAD, c_big_nearest_x2},
    {DKH_OP_INTERPOLATE, "large_nearest_odd", 1, "2,20,24,24", NOGRAD, c_big_nearest_odd},
    {DKH_OP_NLL_LOSS, "large_nll_loss", 1, "300,130|4,21,24,24", NOGRAD, c_big_nll},
    {DKH_OP_DROPOUT, "large_dropout_odd_counter", 1, "300,131|5", NOGRAD, c_big_dropout_odd},
    /* (2,6,70): 1000 rows of 420 columns in 7 pieces (the last partial), threaded. */
    {DKH_OP_INDEX_SELECT, "large_index_select_bwd", 1, "300,64|2,6,70", NOGRAD, c_big_select_bwd},
    {DKH_OP_SOFTMAX, "large_softmax_dim1", 1, "3,5,20,30|40,30,33", NOGRAD, c_big_softmax_c},
    {DKH_OP_LOG_SOFTMAX, "large_log_softmax_dim1", 1, "3,5,20,30", NOGRAD, c_big_log_softmax_c},
    {DKH_OP_LOG_SOFTMAX, "large_log_softmax_rows", 1, "300,130|2000,20", NOGRAD, c_big_log_softmax_rows},
    {DKH_OP_SCATTER, "large_scatter_add", 2, "80,300;80,200", NOGRAD, c_big_scatter_add},
    {DKH_OP_INDEX_PUT, "large_index_put_acc", 2, "600,64;900,64", NOGRAD, c_big_index_put},
    {DKH_OP_INDEX_PUT, "large_index_put_set", 2, "600,64;900,64", NOGRAD, c_big_index_set},
    {DKH_OP_SORT, "large_argsort", 1, "200,300", NOGRAD | QUANT, c_big_sort},
    {DKH_OP_SORT, "large_argsort_ties", 2, "3,700;3,700|2,5,600;1,5,600", NOGRAD | QUANT, c_big_sort_ties},
    {DKH_OP_SORT, "large_argsort_nan", 1, "3,600", NOGRAD | QUANT, c_big_sort_nan},
    {DKH_OP_TOPK, "large_topk_ties", 2, "3,700;3,700|2,200;2,200", NOGRAD | QUANT, c_big_topk_ties},
    {DKH_OP_TOPK, "large_topk", 1, "4,900", NOGRAD, c_big_topk},
    {DKH_OP_TOPK, "large_topk_nan", 1, "3,600|5,100", NOGRAD | QUANT, c_big_topk_nan},
    {DKH_OP_MAX_DIM, "large_max_dim_rows", 1, "300,130|7,1000|40,17", NOGRAD | QUANT, c_big_max_rows},
    {DKH_OP_MAX_DIM, "large_min_dim_nan", 1, "300,20|50,33", NOGRAD | QUANT, c_big_min_nan},
    {DKH_OP_NORM, "large_norm", 1, "300,130|2,3,700", NOGRAD, c_big_norm},
    {DKH_OP_NORM, "large_norm_dim0", 1, "300,130|4,6,5,5", NOGRAD, c_big_norm0},
    {DKH_OP_CAT, "large_cat", 2, "300,100;300,60", NOGRAD, c_big_cat},
    {DKH_OP_INDEX_SELECT, "large_index_select", 1, "250,200", NOGRAD, c_big_select},
    {DKH_OP_INTERPOLATE, "resample_golden", 0, "", NOGRAD, g_resample},
    {DKH_OP_CROSS_ENTROPY, "losses_golden", 0, "", NOGRAD, g_losses},
    {DKH_OP_SORT, "order_golden", 0, "", NOGRAD, g_order},
    {DKH_OP_NMS, "nms_golden", 0, "", NOGRAD, g_nms},
    {.name = NULL},
};
