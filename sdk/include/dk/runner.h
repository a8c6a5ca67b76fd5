/* dk/runner.h — what a hook may ask of the training runner.
 *
 * The runner owns the model, optimizer, schedules, data loaders and work
 * directory; everything else is a hook (dk_hook_vtable in registry.h) that
 * it calls at mmengine's hook points, in priority order (lower first). A hook
 * reads progress and the latest values through these functions:
 *
 *     static dk_status log_after_train_iter(void *self, dk_runner *r)
 *     {
 *         const dk_dict *v = dk_runner_outputs(r);    // loss, lr, time, ...
 *         if ((dk_runner_iter(r) + 1) % interval == 0)
 *             dk_log(DK_LOG_INFO, "loss %.4f", dk_dict_number(v, "loss", 0));
 *         return DK_OK;
 *     }
 *
 * Counters: `epoch` and `iter` count what is finished, like mmengine's
 * runner.epoch / runner.iter, so during the first epoch's first iteration
 * both are 0; `inner_iter` is the iteration within the current loop's
 * epoch. A hook that returns an error stops the run with its message.
 */
#ifndef DK_RUNNER_H
#define DK_RUNNER_H

#include <dk/types.h>
#include <dk/api.h>

#ifdef __cplusplus
extern "C" {
#endif


/* The functions are entries of the host API table (api_list.h, section
 * "runner"); their declarations come from api.h. `r` is the runner a hook
 * point received; results are borrowed and valid until the hook returns.
 *
 * int64_t dk_runner_epoch(const dk_runner *r);        training epochs finished
 * int64_t dk_runner_iter(const dk_runner *r);         training iterations finished
 * int64_t dk_runner_inner_iter(const dk_runner *r);   iteration within the current loop's epoch
 * int64_t dk_runner_max_epochs(const dk_runner *r);   0 for iteration-based training
 * int64_t dk_runner_max_iters(const dk_runner *r);    total training iterations
 * int64_t dk_runner_loop_len(const dk_runner *r);     iterations in the current loop's epoch
 * dk_runner_phase dk_runner_phase_of(const dk_runner *r);
 * bool dk_runner_by_epoch(const dk_runner *r);        epoch-based training
 * const char *dk_runner_work_dir(const dk_runner *r);  NULL on the ranks of a
 *                                                      distributed run other than 0,
 *                                                      which write no files
 * const char *dk_runner_timestamp(const dk_runner *r); "20261122_034912", names the log files
 * int dk_runner_rank(const dk_runner *r);             this process's rank in a distributed
 *                                                      run (--launcher mpi|slurm), else 0;
 *                                                      a hook that prints or writes does
 *                                                      so on rank 0 only
 * int dk_runner_world_size(const dk_runner *r);       ranks in the run, 1 without a launcher
 * const dk_cfg *dk_runner_cfg(const dk_runner *r);    the resolved config
 * dk_object *dk_runner_model(dk_runner *r);
 *
 * const dk_dict *dk_runner_outputs(const dk_runner *r);
 *     after_train_iter: the iteration's values: every loss, "loss" (their
 *     sum), "lr", "time", "data_time", "memory" (MiB), "grad_norm" when
 *     clipping by norm, and what hooks added with dk_runner_log.
 *     after_val_epoch / after_test_epoch: the metrics ("accuracy/top1", ...).
 *     Elsewhere an empty dict.
 * dk_status dk_runner_log(dk_runner *r, const char *key, double value);
 *     Adds a value to the current outputs (e.g. the timer hook's "time").
 *
 * dk_dict *dk_runner_state(dk_runner *r);
 *     before_save_checkpoint: the dict this hook's state goes into (numbers,
 *     strings, tensors), stored in the checkpoint under the hook's name;
 *     after_load_checkpoint: the state that was saved (empty when none).
 *     NULL elsewhere.
 * dk_status dk_runner_save_checkpoint(dk_runner *r, const char *filename);
 *     Writes a checkpoint of the whole run into the work dir (atomically:
 *     temp file, fsync, rename); `filename` like "epoch_3.dkpt".
 * dk_status dk_runner_remove_checkpoint(dk_runner *r, const char *filename);
 * void dk_runner_request_stop(dk_runner *r, const char *reason);
 *     Ends training after the current iteration (early stopping); the reason
 *     is logged.
 */

#ifdef __cplusplus
}
#endif
#endif /* DK_RUNNER_H */
