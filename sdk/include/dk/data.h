/* dk/data.h — datasets, transforms and metrics: what a data plugin implements.
 *
 * The host's loader turns a dataset into batches:
 *
 *     dataset.get(i) -> sample -> transform -> transform -> ... -> collate -> batch
 *
 * A dataset lists its transforms under `pipeline:` (mmengine's layout); the
 * loader builds and runs them, so a dataset only declares the key:
 *
 *     static const dk_param mydata_params[] = {
 *         {.name = "data_root", .type = DK_PARAM_STRING, .flags = DK_PARAM_REQUIRED,
 *          .doc = "where the files are"},
 *         DK_PARAM_PIPELINE,
 *     };
 *
 *     static dk_status mydata_get(void *self, int64_t index, dk_dict *sample)
 *     {
 *         mydata *d = self;
 *         int64_t shape[3] = {3, d->h, d->w};
 *         dk_tensor *img = dk_from_data(3, shape, DK_DTYPE_U8, d->pixels[index]);
 *         if (!img)
 *             return dk_last_status();
 *         DK_TRY(dk_dict_set_tensor(sample, "img", img));   // the dict keeps it
 *         return dk_dict_set_number(sample, "gt_label", (double)d->labels[index]);
 *     }
 *
 * Threads. The loader calls a dataset's get and a transform's apply from
 * several threads at once, each with its own sample, so both must treat
 * `self` as read-only (or lock what they change). Tensors made inside get or
 * apply belong to a scope the loader opens around each sample; only what the
 * sample dict holds survives it. Prefer plain loops over tensor ops there:
 * ops start thread teams of their own that compete with the training step.
 *
 * Randomness. A transform draws only from the rng apply receives. It is
 * derived from the run's seed, the epoch and the dataset index alone, so a
 * sample's augmentation is the same whatever the number of loader threads,
 * and a resumed epoch repeats the interrupted one bit for bit. Never use
 * rand() or a generator of your own.
 *
 * Conventions (docs/data.md has the whole list):
 *   "img"        image datasets give (C, H, W) u8 pixels; ToTensor or Normalize
 *                make the (C, H, W) f32 the models want, batched to (N, C, H, W)
 *   "gt_label"   a number, the class index; batched to (N) i64
 *   "img_path"   a string naming the sample's file; loader errors quote it
 *   strings      never reach a batch (per-sample text does not collate)
 *
 * Failures. get and apply return dk_fail(...) with a message that names the
 * file or value at fault ("/data/cat/3.jpg: not a readable JPEG: ..."); the
 * loader prefixes the dataset type and index and, for apply, the transform
 * ("ImageFolder index 17: transform 2 (RandomCrop): ..."), and hands it to
 * the runner, which stops with it.
 *
 * Metrics (dk_metric_vtable) run on the runner's thread: process sees each
 * batch and the model's predictions ("pred_score" (N, C)), compute writes
 * named numbers ("top1", ...) that are logged as "<prefix>/<name>".
 */
#ifndef DK_DATA_H
#define DK_DATA_H

#include <dk/registry.h>

/* The schema entry of a dataset's transform list: a list of `type:` maps of
 * kind "transform", empty by default. Put it in the dataset's parameter
 * array; the loader reads `pipeline` from the dataset's config. */
#define DK_PARAM_PIPELINE                                                          \
    {                                                                              \
        .name = "pipeline", .type = DK_PARAM_OBJECT_LIST, .kind = "transform",     \
        .def = "[]", .doc = "transforms applied to each sample, in order"          \
    }

#endif /* DK_DATA_H */
