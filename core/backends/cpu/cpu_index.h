/* core/backends/cpu/cpu_index.h — the CPU kernels of the index group
 * (indexing, sorting, losses, resampling): index.c, loss.c, resample.c.
 * cpu_backend.c calls dkh_cpu_fill_index once to put them in the table. */
#ifndef DKH_CPU_INDEX_H
#define DKH_CPU_INDEX_H

#include "cpu.h"

/* Fills b's slots for the index group's ops. */
void dkh_cpu_fill_index(dkh_backend *b);

bool dkh_cpu_cat(const dkh_kcall *c);
bool dkh_cpu_gather(const dkh_kcall *c);
bool dkh_cpu_gather_bwd(const dkh_kcall *c);
bool dkh_cpu_index_select(const dkh_kcall *c);
bool dkh_cpu_index_select_bwd(const dkh_kcall *c);
bool dkh_cpu_index_put(const dkh_kcall *c);
bool dkh_cpu_scatter(const dkh_kcall *c);
bool dkh_cpu_max_dim(const dkh_kcall *c);
bool dkh_cpu_sort(const dkh_kcall *c);
bool dkh_cpu_cross_entropy(const dkh_kcall *c);
bool dkh_cpu_cross_entropy_bwd(const dkh_kcall *c);
bool dkh_cpu_interpolate(const dkh_kcall *c);
bool dkh_cpu_interpolate_bwd(const dkh_kcall *c);
bool dkh_cpu_dropout(const dkh_kcall *c);

#endif /* DKH_CPU_INDEX_H */
