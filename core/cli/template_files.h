/* core/cli/template_files.h — the plugin template (sdk/template/) as built
 * into libdk by embed_template.cmake, for `dkhost new-plugin`. */
#ifndef DKH_TEMPLATE_FILES_H
#define DKH_TEMPLATE_FILES_H

#include <stddef.h>

/* One file of the template: its name in sdk/template/ and its bytes
 * (NUL-terminated after `size` bytes). Static data. */
typedef struct dkh_template_file {
    const char *name;
    const char *data;
    size_t size;
} dkh_template_file;

extern const dkh_template_file dkh_template_files[];
extern const size_t dkh_n_template_files;

#endif /* DKH_TEMPLATE_FILES_H */
