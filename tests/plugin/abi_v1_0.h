/* tests/plugin/abi_v1_0.h — the plugin descriptor exactly as ABI 1.0 laid it
 * out, frozen here so a fixture can be built the way a plugin compiled
 * against the 1.0 SDK was: same leading fields, no trailing `build`.
 *
 * Never edit this to follow dk/plugin.h; its point is that it does not.
 */
#ifndef DK_TEST_ABI_V1_0_H
#define DK_TEST_ABI_V1_0_H

#include <dk/dk.h>

typedef struct dk_plugin_desc_v1_0 {
    uint32_t magic;
    uint32_t struct_size;
    uint16_t abi_major;
    uint16_t abi_minor;
    uint16_t requires_minor;
    uint16_t reserved;
    uint32_t flags;
    const char *name;
    const char *version;
    const char *summary;
    const char *license;
    const char *source;
    dk_status (*init)(const dk_host_api *host, dk_registrar *reg);
    void (*shutdown)(void);
} dk_plugin_desc_v1_0;

/* The host's minimum is exactly this layout. */
_Static_assert(sizeof(dk_plugin_desc_v1_0) == DK_PLUGIN_DESC_MIN_SIZE,
               "the 1.0 descriptor must be the host's minimum size");

/* DK_PLUGIN_DEFINE as the 1.0 SDK had it. */
#define DK_PLUGIN_DEFINE_V1_0(init_fn, ...)                                                        \
    DK_HIDDEN const dk_host_api *dk__host;                                                         \
    static dk_status dk__plugin_init(const dk_host_api *host, dk_registrar *reg)                   \
    {                                                                                              \
        dk__host = host;                                                                           \
        return (init_fn)(reg);                                                                     \
    }                                                                                              \
    static const dk_plugin_desc_v1_0 dk__plugin_desc = {.magic = DK_PLUGIN_MAGIC,                  \
                                                        .struct_size =                             \
                                                            (uint32_t)sizeof(dk_plugin_desc_v1_0), \
                                                        .abi_major = 1,                            \
                                                        .abi_minor = 0,                            \
                                                        .requires_minor = 0,                       \
                                                        .init = dk__plugin_init,                   \
                                                        __VA_ARGS__};                              \
    DK_EXPORT const dk_plugin_desc *dk_plugin_entry(void);                                         \
    DK_EXPORT const dk_plugin_desc *dk_plugin_entry(void)                                          \
    {                                                                                              \
        return (const dk_plugin_desc *)(const void *)&dk__plugin_desc;                             \
    }

#endif /* DK_TEST_ABI_V1_0_H */
