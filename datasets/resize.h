/* Resizing RGB uint8 images exactly as Pillow's Image.resize(size, BILINEAR, box) does, and
 * normalising them with a per-channel mean/std into float NHWC tensors. */
#ifndef KT_RESIZE_H
#define KT_RESIZE_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* Coefficient tables and the intermediate image of a two-pass resize, reused between calls
 * (tables are rebuilt only when the geometry changes, so a fixed eval size costs nothing). */
typedef struct kt_resizer {
    int32_t *kx, *ky;     /* (out, ksize) fixed-point weights, 22 fractional bits */
    int32_t *bx, *by;     /* (out, 2) first source index and tap count */
    size_t kx_cap, ky_cap, bx_cap, by_cap; /* elements allocated */
    int ksx, ksy;         /* taps per output pixel */
    float keyx[4], keyy[4]; /* geometry of the cached tables: in size, box lo, box hi, out size */
    int32_t *k8;          /* (out_w, kw, 4) horizontal weights expanded for the SIMD pass */
    int32_t *sx;          /* (out_w) first source pixel of each SIMD window */
    size_t k8_cap, sx_cap; /* elements allocated */
    int kw;               /* SIMD window in pixels (even); 0 = scalar pass */
    uint8_t *tmp;         /* (rows, out_w, 3) horizontal-pass result */
    size_t tmp_cap;       /* bytes */
} kt_resizer;

void kt_resizer_init(kt_resizer *rz);
void kt_resizer_free(kt_resizer *rz);

/* Resizes the region box = {x0, y0, x1, y1} (source pixels, may be fractional; NULL = whole image)
 * of src (sh, sw, 3) into dst (dh, dw, 3) with PIL's BILINEAR filter: a separable triangle whose
 * support is scaled by the downscale factor (antialiasing when shrinking), 8-bit fixed point with
 * 22 fractional bits, horizontal pass first. Bit-exact with Pillow's
 * Image.resize((dw, dh), Image.BILINEAR, box). src and dst must not overlap. */
kt_status kt_resize_rgb8(kt_resizer *rz, const uint8_t *src, int sw, int sh, const float *box, uint8_t *dst,
                         int dw, int dh, kt_err *err);

/* dst = (src / 255 - mean) / std per channel; src (n_px, 3) uint8, dst (n_px, 3) float. */
void kt_image_normalize(const uint8_t *src, int64_t n_px, const float mean[3], const float std[3], float *dst);

/* ImageNet statistics (timm's IMAGENET_DEFAULT_MEAN / _STD), the default for every model. */
extern const float kt_imagenet_mean[3];
extern const float kt_imagenet_std[3];

#endif
