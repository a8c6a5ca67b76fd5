/* jpeg_read.c — decoding one JPEG file with libjpeg(-turbo).
 *
 * libjpeg reports fatal errors through error_exit, which must not return:
 * it jumps back here with the message. Damaged data is often only a warning
 * to libjpeg (a truncated file decodes with its tail grey), and a model
 * trained on such a picture learns from garbage without anyone noticing, so
 * every warning fails the sample too, except stray bytes between markers
 * (common in real photos and harmless to the pixels).
 */
#include "image_folder.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

typedef struct reader {
    struct jpeg_error_mgr mgr; /* first: libjpeg's err pointer converts back */
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} reader;

static void on_error(j_common_ptr cinfo)
{
    reader *r = (reader *)cinfo->err;
    r->mgr.format_message(cinfo, r->message);
    longjmp(r->jump, 1);
}

static void on_message(j_common_ptr cinfo, int level)
{
    if (level >= 0 || cinfo->err->msg_code == JWRN_EXTRANEOUS_DATA)
        return; /* trace output, or a harmless warning */
    on_error(cinfo);
}

/* Adobe CMYK/YCCK JPEGs store inverted ink; libjpeg gives CMYK, not RGB. */
static void cmyk_to_rgb(const uint8_t *in, uint8_t *out, int64_t pixels)
{
    for (int64_t i = 0; i < pixels; i++) {
        unsigned k = in[4 * i + 3];
        for (int j = 0; j < 3; j++)
            out[3 * i + j] = (uint8_t)((in[4 * i + j] * k + 127) / 255);
    }
}

/* State that must survive a longjmp lives here, not in locals. */
typedef struct job {
    struct jpeg_decompress_struct cinfo;
    reader err;
    FILE *f;
    uint8_t *rows; /* decoded (H, W, comps) */
    int64_t w, h;
    int comps;
} job;

/* The libjpeg part, and nothing else: after a longjmp only j is trusted. */
static dk_status decode(job *j, const char *path, int channels)
{
    if (setjmp(j->err.jump))
        return dk_fail(DK_ERR_IO, "%s: not a readable JPEG: %s", path, j->err.message);
    jpeg_create_decompress(&j->cinfo);
    jpeg_stdio_src(&j->cinfo, j->f);
    jpeg_read_header(&j->cinfo, TRUE);
    bool cmyk = j->cinfo.jpeg_color_space == JCS_CMYK || j->cinfo.jpeg_color_space == JCS_YCCK;
    j->cinfo.out_color_space = cmyk ? JCS_CMYK : channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&j->cinfo);
    j->w = j->cinfo.output_width;
    j->h = j->cinfo.output_height;
    j->comps = j->cinfo.output_components;
    if (j->w * j->h > ((int64_t)1 << 28))
        return dk_fail(DK_ERR_IO, "%s: %lldx%lld pixels is larger than this reader accepts "
                       "(2^28)", path, (long long)j->w, (long long)j->h);
    j->rows = dk_malloc((size_t)(j->w * j->h * j->comps));
    if (!j->rows)
        return dk_fail(DK_ERR_NOMEM, "%s: out of memory decoding %lldx%lld pixels", path,
                       (long long)j->w, (long long)j->h);
    while (j->cinfo.output_scanline < j->cinfo.output_height) {
        JSAMPROW row = j->rows + (size_t)j->cinfo.output_scanline * (size_t)(j->w * j->comps);
        jpeg_read_scanlines(&j->cinfo, &row, 1);
    }
    jpeg_finish_decompress(&j->cinfo);
    return DK_OK;
}

/* The decoded rows as a (channels, H, W) tensor. */
static dk_status to_tensor(job *j, int channels, dk_tensor **out)
{
    int64_t pixels = j->w * j->h;
    if (j->comps == 4) {
        cmyk_to_rgb(j->rows, j->rows, pixels); /* in place: output trails input */
        j->comps = 3;
    }
    if (channels == 1 && j->comps == 3) { /* libjpeg makes no luma from CMYK */
        for (int64_t p = 0; p < pixels; p++) {
            const uint8_t *px = j->rows + 3 * p;
            j->rows[p] = (uint8_t)((299u * px[0] + 587u * px[1] + 114u * px[2] + 500u) / 1000u);
        }
        j->comps = 1;
    }
    int64_t shape[3] = {j->comps, j->h, j->w};
    dk_tensor *t = dk_empty(3, shape, DK_DTYPE_U8, DK_CPU);
    if (!t)
        return dk_last_status();
    uint8_t *dst = dk_tensor_data(t);
    for (int c = 0; c < j->comps; c++)
        for (int64_t p = 0; p < pixels; p++)
            dst[c * pixels + p] = j->rows[p * j->comps + c];
    *out = t;
    return DK_OK;
}

dk_status jpeg_read(const char *path, int channels, dk_tensor **out)
{
    job *j = dk_calloc(1, sizeof *j);
    if (!j)
        return dk_fail(DK_ERR_NOMEM, "%s: out of memory", path);
    j->f = fopen(path, "rb");
    if (!j->f) {
        dk_status s = dk_fail(DK_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        dk_free(j);
        return s;
    }
    j->cinfo.err = jpeg_std_error(&j->err.mgr);
    j->err.mgr.error_exit = on_error;
    j->err.mgr.emit_message = on_message;
    dk_status s = decode(j, path, channels);
    if (s == DK_OK)
        s = to_tensor(j, channels, out);
    jpeg_destroy_decompress(&j->cinfo);
    fclose(j->f);
    dk_free(j->rows);
    dk_free(j);
    return s;
}
