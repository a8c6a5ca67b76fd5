/* dk/plugin.h — the plugin descriptor and the one symbol a plugin exports.
 *
 * A plugin is a shared library exporting exactly `dk_plugin_entry`, a function
 * that returns a pointer to a static descriptor. The host reads the first four
 * fields (magic, size, ABI) before it trusts anything else, so they never move.
 * Write it with DK_PLUGIN_DEFINE:
 *
 *     static dk_status my_init(dk_registrar *reg)
 *     {
 *         return dk_register(reg, &my_type);
 *     }
 *     DK_PLUGIN_DEFINE(my_init,
 *                      .name = "mything", .version = "1.0.0",
 *                      .summary = "One line on what it offers",
 *                      .license = "MIT", .source = "https://example.org/mything")
 */
#ifndef DK_PLUGIN_H
#define DK_PLUGIN_H

#include <dk/types.h>
#include <dk/api.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The four bytes "DKPL" as they lie in memory (little-endian hosts). */
#define DK_PLUGIN_MAGIC                                                    \
    ((uint32_t)'D' | ((uint32_t)'K' << 8) | ((uint32_t)'P' << 16) |        \
     ((uint32_t)'L' << 24))

/* Descriptor flags. */
enum {
    /* The plugin only registers hooks and holds no state the host keeps
     * after a run, so the host may dlclose and reload it between runs. */
    DK_PLUGIN_UNLOADABLE = 1u << 0,
};

typedef struct dk_plugin_desc {
    /* --- never move (ABI 1.0) ------------------------------------------ */
    uint32_t magic;       /* DK_PLUGIN_MAGIC */
    uint32_t struct_size; /* sizeof(dk_plugin_desc) as the plugin built it */
    uint16_t abi_major;   /* DK_ABI_MAJOR the plugin was built against */
    uint16_t abi_minor;   /* DK_ABI_MINOR the plugin was built against */
    /* --- ABI 1.0 ----------------------------------------------------- */
    uint16_t requires_minor; /* lowest host ABI minor this plugin works with */
    uint16_t reserved;       /* zero */
    uint32_t flags;          /* DK_PLUGIN_UNLOADABLE */
    const char *name;        /* required: short, unique among plugins */
    const char *version;     /* the plugin's own version, e.g. "1.2.0" */
    const char *summary;     /* required: one line */
    const char *license;     /* required: SPDX identifier, e.g. "Apache-2.0" */
    const char *source;      /* where it comes from (URL or "in-tree") */
    /* Registers the plugin's types. On failure return a status with a message
     * (return dk_fail(...)); the host then rolls back everything it registered. */
    dk_status (*init)(const dk_host_api *host, dk_registrar *reg);
    /* Called once before the library is closed; may be NULL. */
    void (*shutdown)(void);
    /* --- ABI 1.1 ----------------------------------------------------- */
    const char *build; /* the SDK version and compiler that built the plugin */
} dk_plugin_desc;

/* The pinned layout: a change here is an ABI break. */
_Static_assert(offsetof(dk_plugin_desc, magic) == 0, "dk_plugin_desc.magic moved");
_Static_assert(offsetof(dk_plugin_desc, struct_size) == 4, "dk_plugin_desc.struct_size moved");
_Static_assert(offsetof(dk_plugin_desc, abi_major) == 8, "dk_plugin_desc.abi_major moved");
_Static_assert(offsetof(dk_plugin_desc, abi_minor) == 10, "dk_plugin_desc.abi_minor moved");
_Static_assert(offsetof(dk_plugin_desc, requires_minor) == 12, "dk_plugin_desc layout changed");
_Static_assert(offsetof(dk_plugin_desc, flags) == 16, "dk_plugin_desc layout changed");
_Static_assert(offsetof(dk_plugin_desc, name) == (sizeof(void *) == 8 ? 24 : 20),
               "dk_plugin_desc.name moved");
_Static_assert(offsetof(dk_plugin_desc, build) ==
                   offsetof(dk_plugin_desc, name) + 5 * sizeof(const char *) + 2 * sizeof(void (*)(void)),
               "dk_plugin_desc.build moved");

/* The smallest descriptor the host accepts: everything up to `shutdown`. */
#define DK_PLUGIN_DESC_MIN_SIZE (offsetof(dk_plugin_desc, shutdown) + sizeof(void (*)(void)))

/* The exported entry point's name and type. */
#define DK_PLUGIN_ENTRY_SYMBOL "dk_plugin_entry"
typedef const dk_plugin_desc *(*dk_plugin_entry_fn)(void);

#ifndef DK_PLUGIN_REQUIRES_MINOR
/* By default a plugin requires the minor it was built against, since it may
 * call any host function that minor has. Define this lower before including
 * dk.h if the plugin only uses older entries. */
#define DK_PLUGIN_REQUIRES_MINOR DK_ABI_MINOR
#endif

#define DK_STR_(x) #x
#define DK_XSTR_(x) DK_STR_(x)
#if defined(__clang__)
#define DK_COMPILER_ "clang " __clang_version__
#elif defined(__GNUC__)
#define DK_COMPILER_ "gcc " __VERSION__
#else
#define DK_COMPILER_ "unknown compiler"
#endif
#define DK_BUILD_STRING                                                     \
    "dk-sdk " DK_VERSION_STRING " (ABI " DK_XSTR_(DK_ABI_MAJOR) "." DK_XSTR_(DK_ABI_MINOR) \
    "), " DK_COMPILER_

#ifndef DK_BUILDING_HOST
/* Defines the descriptor, the init trampoline that stores the host table,
 * and the exported entry. `init_fn` is `dk_status init_fn(dk_registrar *)`;
 * the rest are designated initialisers for the descriptor's fields (.name,
 * .version, .summary, .license, .source, optional .flags and .shutdown). */
#define DK_PLUGIN_DEFINE(init_fn, ...)                                         \
    DK_HIDDEN const dk_host_api *dk__host;                                     \
    static dk_status dk__plugin_init(const dk_host_api *host, dk_registrar *reg) \
    {                                                                          \
        dk__host = host;                                                       \
        return (init_fn)(reg);                                                 \
    }                                                                          \
    static const dk_plugin_desc dk__plugin_desc = {                            \
        .magic = DK_PLUGIN_MAGIC,                                              \
        .struct_size = (uint32_t)sizeof(dk_plugin_desc),                       \
        .abi_major = DK_ABI_MAJOR,                                             \
        .abi_minor = DK_ABI_MINOR,                                             \
        .requires_minor = DK_PLUGIN_REQUIRES_MINOR,                            \
        .init = dk__plugin_init,                                               \
        .build = DK_BUILD_STRING,                                              \
        __VA_ARGS__};                                                          \
    DK_EXPORT const dk_plugin_desc *dk_plugin_entry(void);                     \
    DK_EXPORT const dk_plugin_desc *dk_plugin_entry(void) { return &dk__plugin_desc; }

/* The common case: a plugin whose init only registers a static array of
 * types, in order. Same descriptor fields as DK_PLUGIN_DEFINE:
 *
 *     static const dk_type_info my_types[] = {{...}, {...}};
 *     DK_PLUGIN_DEFINE_TYPES(my_types, .name = "mine", .version = "1.0.0",
 *                            .summary = "...", .license = "MIT")
 */
#define DK_PLUGIN_DEFINE_TYPES(types, ...)                                     \
    static dk_status dk__register_types(dk_registrar *reg)                     \
    {                                                                          \
        for (size_t i = 0; i < sizeof(types) / sizeof((types)[0]); i++) {      \
            dk_status s = dk_register(reg, &(types)[i]);                       \
            if (s != DK_OK)                                                    \
                return s;                                                      \
        }                                                                      \
        return DK_OK;                                                          \
    }                                                                          \
    DK_PLUGIN_DEFINE(dk__register_types, __VA_ARGS__)
#endif

#ifdef __cplusplus
}
#endif
#endif /* DK_PLUGIN_H */
