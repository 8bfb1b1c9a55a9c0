/* Image decoding (JPEG through TurboJPEG, PNG through libspng) into packed RGB uint8, honouring
 * EXIF orientation, with a decompression-bomb guard; PIL-exact bilinear resize; mean/std normalise. */
#ifndef KT_IMAGE_H
#define KT_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* PIL refuses images over 2 * 89,478,485 pixels; we refuse over 100 Mpx unless told otherwise. */
#define KT_IMAGE_MAX_PIXELS_DEFAULT 100000000LL

/* An RGB image owned by its caller; px grows on demand and is reused, so decoding into the same
 * kt_image again allocates nothing once it is big enough. */
typedef struct kt_image {
    uint8_t *px; /* (h, w, 3) RGB, rows packed (stride w*3) */
    int w, h;
    size_t cap;  /* bytes allocated at px */
} kt_image;

void kt_image_init(kt_image *im);
void kt_image_free(kt_image *im);
/* Makes px hold at least w*h*3 bytes and sets w, h. */
kt_status kt_image_reserve(kt_image *im, int w, int h, kt_err *err);

typedef enum { KT_IMG_UNKNOWN = 0, KT_IMG_JPEG, KT_IMG_PNG } kt_img_format;
/* Format from the magic bytes (JPEG: FF D8 FF; PNG: 89 'PNG' 0D 0A 1A 0A). */
kt_img_format kt_image_sniff(const uint8_t *data, size_t len);

typedef struct kt_decode_opts {
    int64_t max_pixels; /* decompression-bomb guard (w*h of the stored image); 0 = default */
    int ignore_exif;    /* 1: keep the stored orientation (PIL without exif_transpose) */
    /* > 0: a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (TurboJPEG DCT scaling) as long as the
     * decoded image stays at least min_w x min_h (measured after orientation). Faster, but not
     * what PIL gives, so only training augmentation uses it; 0 = always full size. */
    int min_w, min_h;
} kt_decode_opts;

/* Header facts, read without decoding the pixels. */
typedef struct kt_image_header {
    kt_img_format format;
    int w, h;        /* as displayed, i.e. after EXIF orientation */
    int orientation; /* EXIF orientation 1..8 (1 when absent or ignored) */
    int complete;    /* JPEG: an EOI marker follows the last scan; PNG: IEND present. 0 = truncated */
} kt_image_header;

/* A decoding context for one thread: TurboJPEG handle, file buffer and scratch, all reused. */
typedef struct kt_decoder {
    void *tj;          /* tjhandle */
    uint8_t *file;     /* bytes of the last file read by kt_image_load */
    size_t file_cap;
    uint8_t *tmp;      /* decoded pixels before orientation / CMYK conversion */
    size_t tmp_cap;
} kt_decoder;

kt_status kt_decoder_init(kt_decoder *d, kt_err *err);
void kt_decoder_free(kt_decoder *d);

/* Decodes JPEG or PNG bytes (from a file or an upload) into out as RGB. Grayscale and CMYK JPEGs
 * and grey/palette/alpha PNGs come out as RGB the way PIL's convert("RGB") does (alpha dropped).
 * Truncated or corrupt data is an error (KT_ERR_FORMAT); so is an image over max_pixels. */
kt_status kt_image_decode(kt_decoder *d, const uint8_t *data, size_t len, const kt_decode_opts *opts,
                          kt_image *out, kt_err *err);
/* Reads path into the decoder's file buffer and decodes it; errors name the path. */
kt_status kt_image_load(kt_decoder *d, const char *path, const kt_decode_opts *opts, kt_image *out,
                        kt_err *err);
/* Reads the header only (cheap): format, displayed size, orientation, completeness. */
kt_status kt_image_probe(kt_decoder *d, const uint8_t *data, size_t len, const kt_decode_opts *opts,
                         kt_image_header *hdr, kt_err *err);
/* Reads path into the decoder's file buffer (reused); *data stays valid until the next read. */
kt_status kt_decoder_read_file(kt_decoder *d, const char *path, const uint8_t **data, size_t *len,
                               kt_err *err);

#endif
