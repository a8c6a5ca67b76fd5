/* The stage layout every ResNet here shares: "layer1" ... "layerN" of
 * residual blocks, doubling the width and halving the resolution at each
 * stage after the first, and the selected stage outputs as "feats".
 */
#include "layers.h"

#include <stdio.h>

dk_status read_out_indices(const dk_cfg *cfg, int n_stages, uint32_t *mask)
{
    const dk_cfg *list = dk_cfg_get(cfg, "out_indices");
    *mask = 0;
    for (size_t i = 0; i < dk_cfg_len(list); i++) {
        int64_t s;
        DK_TRY(dk_cfg_get_int(dk_cfg_at(list, i), NULL, &s));
        if (s < 0 || s >= n_stages)
            return dk_fail(DK_ERR_CONFIG, "%s (%s): stage %lld does not exist (0 to %d)",
                           dk_cfg_path(list), dk_cfg_where(list), (long long)s, n_stages - 1);
        *mask |= 1u << s;
    }
    if (!*mask)
        return dk_fail(DK_ERR_CONFIG, "%s (%s): give at least one stage whose output to emit",
                       dk_cfg_path(list), dk_cfg_where(list));
    return DK_OK;
}

dk_status res_stages_declare(res_stages *st, int n_stages, const int64_t *n_blocks, block_kind kind,
                             int64_t cin, int64_t base_planes, bool pad_shortcut, uint32_t out_mask)
{
    int64_t total = 0;
    st->n_stages = n_stages;
    st->out_mask = out_mask;
    for (int s = 0; s < n_stages; s++) {
        st->n_blocks[s] = n_blocks[s];
        total += n_blocks[s];
    }
    st->blocks = dk_calloc((size_t)total, sizeof *st->blocks);
    if (!st->blocks)
        return dk_fail(DK_ERR_NOMEM, "out of memory for %lld residual blocks", (long long)total);
    res_block *b = st->blocks;
    for (int s = 0; s < n_stages; s++) {
        int64_t planes = base_planes << s;
        for (int64_t i = 0; i < n_blocks[s]; i++, b++) {
            char name[32];
            snprintf(name, sizeof name, "layer%d.%lld", s + 1, (long long)i);
            int64_t stride = (s > 0 && i == 0) ? 2 : 1;
            DK_TRY(res_block_declare(b, name, kind, cin, planes, stride, pad_shortcut));
            cin = res_block_out_channels(kind, planes);
        }
        st->out_channels[s] = cin;
    }
    return DK_OK;
}

dk_status res_stages_forward(const res_stages *st, dk_tensor *x, dk_dict *out)
{
    dk_tensor *feats[RES_MAX_STAGES];
    size_t n = 0;
    const res_block *b = st->blocks;
    for (int s = 0; s < st->n_stages && (st->out_mask >> s) != 0; s++) {
        for (int64_t i = 0; i < st->n_blocks[s]; i++, b++)
            x = res_block_forward(b, x);
        if (st->out_mask & (1u << s))
            feats[n++] = x;
    }
    /* NULL propagates, so the deepest output is NULL if anything failed. */
    if (!x)
        return dk_last_status();
    return dk_dict_set_tensors(out, "feats", feats, n);
}

void res_stages_fini(res_stages *st)
{
    dk_free(st->blocks);
}
