/* Element types: f32 compute, bf16 and f16 storage (checkpoints, mixed precision), i32 labels.
 * Conversions round to nearest even, as PyTorch's .to(torch.bfloat16 / torch.float16) do. */
#ifndef KT_DTYPE_H
#define KT_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum { KT_F32 = 0, KT_BF16, KT_F16, KT_I32 } kt_dtype;
typedef enum { KT_CPU = 0, KT_CUDA } kt_device;

size_t kt_dtype_size(kt_dtype t);
const char *kt_dtype_name(kt_dtype t);
const char *kt_device_name(kt_device d);

static inline uint16_t kt_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float kt_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t kt_f32_to_f16(float f);
float kt_f16_to_f32(uint16_t h);

/* Bulk conversions (n elements). */
void kt_convert(void *dst, kt_dtype dt, const void *src, kt_dtype st, int64_t n);

#endif
