/* image_folder.h — what the files of the ImageFolder plugin share. */
#ifndef IMAGE_FOLDER_H
#define IMAGE_FOLDER_H

#include <dk/dk.h>

/* The images under root/<class>/..., found once at create. */
typedef struct folder_index {
    char **classes;     /* folder names, sorted (byte order) */
    int64_t n_classes;
    char *paths;        /* every image path relative to root, NUL-separated */
    size_t paths_len, paths_cap;
    int64_t *offsets;   /* image i's path starts at paths + offsets[i] */
    int32_t *labels;    /* image i's class */
    int64_t n, cap;
} folder_index;

/* Lists the class folders of root (hidden ones skipped) and every .jpg or
 * .jpeg file below each (any depth, case-insensitive extension), sorted, so
 * the order and the class numbers do not depend on the file system. Errors
 * name root or the class folder at fault: unreadable, no class folders, a
 * class with no image. */
dk_status folder_index_scan(const char *root, folder_index *out);
void folder_index_fini(folder_index *ix);

/* Decodes the JPEG at path into a new (channels, H, W) u8 tensor (RGB for 3
 * channels, luma for 1). Any libjpeg error, and any warning about damaged
 * data, fails with "<path>: ..." and libjpeg's own words. */
dk_status jpeg_read(const char *path, int channels, dk_tensor **out);

#endif /* IMAGE_FOLDER_H */
