/* core/tensor/op_geometry.c — detection geometry without gradients: the IoU
 * of two sets of boxes and (batched, per-class) non-maximum suppression, with
 * torchvision's semantics.
 *
 * Boxes are (x1, y1, x2, y2) with x2 >= x1, y2 >= y1; area is (x2 - x1) *
 * (y2 - y1) (no +1). NMS visits boxes by decreasing score (ties: the lower
 * index first, a stable order where torchvision's is unspecified), keeps a box
 * unless a kept box of the same class overlaps it with IoU > threshold, and
 * returns the kept indices in that order. Per-class suppression is done
 * directly (a class check per pair) rather than by torchvision's trick of
 * offsetting each class's boxes, which gives the same set without rounding
 * the coordinates.
 *
 * The NMS op's output is (N,) i64: the kept indices, then -1; its first
 * auxiliary output is the count, and dk_batched_nms returns the first
 * `count` (a view).
 * Arguments: nms f[0] = IoU threshold, i[0] = 1 when input 2 holds class ids.
 */
#include "op_index_impl.h"

#include <math.h>
#include <string.h>

static bool is_boxes(const dk_tensor *b)
{
    return b->ndim == 2 && b->shape[1] == 4;
}

/* ---- box_iou ---------------------------------------------------------------------------- */

static dk_status box_iou_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    if (!dkh_is_float(in[0]->dtype) || in[0]->dtype != in[1]->dtype)
        return dkh_op_fail(DKH_OP_BOX_IOU, 2, in, DK_ERR_ARG, "needs float boxes of one dtype");
    if (!is_boxes(in[0]) || !is_boxes(in[1]))
        return dkh_op_fail(DKH_OP_BOX_IOU, 2, in, DK_ERR_SHAPE, "boxes must be (N, 4) and (M, 4)");
    m->dtype = in[0]->dtype;
    m->ndim = 2;
    m->shape[0] = in[0]->shape[0];
    m->shape[1] = in[1]->shape[0];
    dkh_contiguous_strides(2, m->shape, m->strides);
    return DK_OK;
}

static void load_box(const dk_tensor *b, int64_t i, double *v)
{
    for (int k = 0; k < 4; k++)
        v[k] = dkh_load(dkh_base(b), b->dtype, i * b->strides[0] + k * b->strides[1]);
}

static double iou(const double *a, const double *b)
{
    double w = fmin(a[2], b[2]) - fmax(a[0], b[0]);
    double h = fmin(a[3], b[3]) - fmax(a[1], b[1]);
    double inter = (w > 0 ? w : 0) * (h > 0 ? h : 0);
    double area_a = (a[2] - a[0]) * (a[3] - a[1]), area_b = (b[2] - b[0]) * (b[3] - b[1]);
    return inter / (area_a + area_b - inter);
}

static bool box_iou_ref(const dkh_kcall *c)
{
    const dk_tensor *a = c->in[0], *b = c->in[1];
    int64_t N = a->shape[0], M = b->shape[0];
    for (int64_t i = 0; i < N; i++) {
        double ba[4], bb[4];
        load_box(a, i, ba);
        for (int64_t j = 0; j < M; j++) {
            load_box(b, j, bb);
            dkh_store(dkh_base(c->out), c->out->dtype, i * M + j, iou(ba, bb));
        }
    }
    return true;
}

const dkh_op_def dkh_op_box_iou = {"box_iou", 2, 0, box_iou_infer, NULL, {box_iou_ref, NULL}};

dk_tensor *dk_box_iou(dk_tensor *boxes1, dk_tensor *boxes2)
{
    dk_tensor *in[2] = {boxes1, boxes2};
    dkh_args a = {0};
    return dkh_op_run(DKH_OP_BOX_IOU, &a, 2, in);
}

/* ---- nms -------------------------------------------------------------------------------- */

static dk_status nms_infer(const dkh_args *a, dk_tensor *const *in, dkh_meta *m)
{
    const dk_tensor *b = in[0], *s = in[1], *c = in[2];
    int n_in = a->i[0] ? 3 : 2;
    if (!dkh_is_float(b->dtype) || s->dtype != b->dtype)
        return dkh_op_fail(DKH_OP_NMS, n_in, in, DK_ERR_ARG, "needs float boxes and scores of one dtype");
    if (!is_boxes(b) || s->ndim != 1 || s->shape[0] != b->shape[0])
        return dkh_op_fail(DKH_OP_NMS, n_in, in, DK_ERR_SHAPE, "needs boxes (N, 4) and scores (N)");
    if (a->i[0] && (!dkh_is_index_dtype(c->dtype) || c->ndim != 1 || c->shape[0] != b->shape[0]))
        return dkh_op_fail(DKH_OP_NMS, n_in, in, DK_ERR_SHAPE, "class ids must be (N) i64 or i32");
    if (b->storage->device.type != DK_DEVICE_CPU)
        return dkh_op_fail(DKH_OP_NMS, n_in, in, DK_ERR_UNSUPPORTED, "needs CPU tensors");
    m->dtype = DK_DTYPE_I64;
    m->ndim = 1;
    m->shape[0] = b->shape[0];
    m->strides[0] = 1;
    /* The count, then the kernel's scratch (kernels cannot fail, so their
     * memory is allocated with the outputs): boxes and scores as f64, the
     * visiting order and class ids. */
    m->n_aux = 3;
    m->aux[0] = (dkh_aux_meta){DK_DTYPE_I64, 0, {0}};
    m->aux[1] = (dkh_aux_meta){DK_DTYPE_F64, 1, {5 * b->shape[0]}};
    m->aux[2] = (dkh_aux_meta){DK_DTYPE_I64, 1, {2 * b->shape[0]}};
    return DK_OK;
}

static bool nms_ref(const dkh_kcall *c)
{
    const dk_tensor *b = c->in[0], *s = c->in[1], *cls = c->in[2];
    bool by_class = c->args->i[0] != 0;
    double thr = c->args->f[0];
    int64_t N = b->shape[0];
    double *box = (double *)dkh_base(c->aux[1]);
    int64_t *order = (int64_t *)dkh_base(c->aux[2]);
    double *score = box + 4 * N;
    int64_t *klass = order + N;
    for (int64_t i = 0; i < N; i++) {
        load_box(b, i, box + 4 * i);
        score[i] = dkh_load(dkh_base(s), s->dtype, i * s->strides[0]);
        klass[i] = by_class ? (int64_t)dkh_load(dkh_base(cls), cls->dtype, i * cls->strides[0]) : 0;
        /* Stable insertion by decreasing score (NaN first, as a sort would put it). */
        int64_t j = i;
        while (j > 0 && (isnan(score[i]) ? !isnan(score[order[j - 1]])
                                         : score[i] > score[order[j - 1]])) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    int64_t *out = (int64_t *)dkh_base(c->out), kept = 0;
    /* Suppressed boxes are marked by turning their entry in order to -1. */
    for (int64_t u = 0; u < N; u++) {
        int64_t i = order[u];
        if (i < 0)
            continue;
        out[kept++] = i;
        for (int64_t v = u + 1; v < N; v++) {
            int64_t j = order[v];
            if (j >= 0 && klass[j] == klass[i] && iou(box + 4 * i, box + 4 * j) > thr)
                order[v] = -1;
        }
    }
    for (int64_t k = kept; k < N; k++)
        out[k] = -1;
    *(int64_t *)dkh_base(c->aux[0]) = kept;
    return true;
}

const dkh_op_def dkh_op_nms = {"nms", 3, 0, nms_infer, NULL, {nms_ref, NULL}};

dk_tensor *dk_batched_nms(dk_tensor *boxes, dk_tensor *scores, dk_tensor *class_ids,
                          double iou_threshold)
{
    dk_tensor *in[3] = {boxes, scores, class_ids ? class_ids : scores};
    dkh_args a = {.i = {class_ids != NULL}, .f = {iou_threshold}};
    dk_tensor *aux[3] = {NULL};
    dk_tensor *all = dkh_op_run_aux(DKH_OP_NMS, &a, 3, in, aux);
    if (!all)
        return NULL;
    int64_t n = *(int64_t *)dkh_base(aux[0]);
    return dk_slice(all, 0, 0, n, 1);
}

dk_tensor *dk_nms(dk_tensor *boxes, dk_tensor *scores, double iou_threshold)
{
    return dk_batched_nms(boxes, scores, NULL, iou_threshold);
}
