/* core/runner/env_info.c — what a run ran on: the log's header and a block
 * of every checkpoint's metadata, so a result can be traced to its machine,
 * libraries and plugins. Written as YAML "key: value" lines.
 */
#include "runner_impl.h"

#include "../backends/cpu/dnnl_cpu.h"
#include "../plugin/registry.h"

#include <dnnl.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <yaml.h>
#include <zstd.h>

static void line(dkh_buf *out, int indent, const char *key, const char *value)
{
    dkh_buf_printf(out, "%*s%s: ", indent, "", key);
    dkh_buf_json_str(out, value ? value : ""); /* a JSON string is a YAML scalar */
    dkh_buf_putc(out, '\n');
}

/* The first "model name" line of /proc/cpuinfo and the flags that matter for
 * our kernels. */
static void cpu_info(dkh_buf *out, int indent)
{
    static const char *const wanted[] = {"avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni",
                                         "amx_tile", "amx_bf16", "amx_int8"};
    char model[256] = "unknown", flags_line[8192] = "";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char buf[8192];
        while (fgets(buf, sizeof buf, f)) {
            const char *colon = strchr(buf, ':');
            if (!colon)
                continue;
            if (strncmp(buf, "model name", 10) == 0 && strcmp(model, "unknown") == 0)
                snprintf(model, sizeof model, "%s", colon + 2);
            else if (strncmp(buf, "flags", 5) == 0 && !flags_line[0])
                snprintf(flags_line, sizeof flags_line, " %s ", colon + 2);
        }
        fclose(f);
    }
    model[strcspn(model, "\n")] = '\0';
    for (char *c = flags_line; *c; c++)
        if (*c == '\n')
            *c = ' ';
    dkh_buf flags = DKH_BUF_INIT;
    for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
        char pat[64];
        snprintf(pat, sizeof pat, " %s ", wanted[i]);
        if (strstr(flags_line, pat))
            dkh_buf_printf(&flags, "%s%s", flags.len ? " " : "", wanted[i]);
    }
    line(out, indent, "cpu", model);
    line(out, indent, "cpu_flags", dkh_buf_str(&flags));
    dkh_buf_fini(&flags);
}

void dkh_env_info(dkh_buf *out, int indent)
{
    struct utsname u;
    char text[512];
    line(out, indent, "dkhost", DK_VERSION_STRING);
    snprintf(text, sizeof text, "%d.%d", DK_ABI_MAJOR, DK_ABI_MINOR);
    line(out, indent, "plugin_abi", text);
    if (uname(&u) == 0) {
        line(out, indent, "host", u.nodename);
        snprintf(text, sizeof text, "%s %s %s", u.sysname, u.release, u.machine);
        line(out, indent, "os", text);
    }
    cpu_info(out, indent);
    dkh_buf_printf(out, "%*scores: %ld\n", indent, "", sysconf(_SC_NPROCESSORS_ONLN));
    dkh_buf_printf(out, "%*sthreads: %d\n", indent, "", dk_get_num_threads());
#ifdef __VERSION__
    line(out, indent, "compiler", __VERSION__);
#endif
    const dnnl_version_t *v = dnnl_version();
    snprintf(text, sizeof text, "%d.%d.%d", v->major, v->minor, v->patch);
    line(out, indent, "onednn", text);
    line(out, indent, "bf16_kernels", dkh_dnnl_bf16_native() ? "onednn" : "reference (no bf16 ISA)");
    line(out, indent, "zstd", ZSTD_versionString());
    line(out, indent, "libyaml", yaml_get_version_string());
    int n_cuda = dk_device_count(DK_DEVICE_CUDA);
    dkh_buf_printf(out, "%*scuda_devices: %d\n", indent, "", n_cuda);
    for (int i = 0; i < n_cuda; i++) {
        char name[256];
        if (dk_device_name((dk_device){DK_DEVICE_CUDA, i}, name, sizeof name) == DK_OK) {
            snprintf(text, sizeof text, "cuda_%d", i);
            line(out, indent, text, name);
        }
    }
    const dkh_registry *reg = dkh_registry_current();
    size_t n = reg ? dkh_registry_n_plugins(reg) : 0;
    dkh_buf_printf(out, "%*splugins:%s\n", indent, "", n ? "" : " {}");
    for (size_t i = 0; i < n; i++) {
        const dkh_plugin *p = dkh_registry_plugin_at(reg, i);
        snprintf(text, sizeof text, "%s (ABI %u.%u)", p->version, p->abi_major, p->abi_minor);
        line(out, indent + 2, p->name, text);
    }
}
