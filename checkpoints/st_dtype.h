/* Element types of safetensors files and the float conversions checkpoints need:
 * f32 <-> bf16 (round to nearest even) and f32 <-> IEEE half (subnormals, RNE, overflow to inf). */
#ifndef KT_CKPT_DTYPE_H
#define KT_CKPT_DTYPE_H

#include <stdint.h>

/* The dtypes the safetensors format defines (names as in the file: "F32", "BF16", ...). */
typedef enum {
    KT_DT_BOOL,
    KT_DT_U8,
    KT_DT_I8,
    KT_DT_F8_E5M2,
    KT_DT_F8_E4M3,
    KT_DT_I16,
    KT_DT_U16,
    KT_DT_F16,
    KT_DT_BF16,
    KT_DT_I32,
    KT_DT_U32,
    KT_DT_F32,
    KT_DT_F64,
    KT_DT_I64,
    KT_DT_U64,
    KT_DT_COUNT
} kt_dtype;

const char *kt_dtype_name(kt_dtype dt);
/* Bytes per element. */
int kt_dtype_size(kt_dtype dt);
/* Parses a file's dtype string; returns 0 when it is not one of the format's names. */
int kt_dtype_parse(const char *s, kt_dtype *out);
/* 1 for F16, BF16, F32, F64: the dtypes kt_dtype_convert_to_f32 accepts. */
int kt_dtype_is_float(kt_dtype dt);
/* 1 for BOOL and the integer types: the dtypes kt_dtype_convert_to_i64 accepts. */
int kt_dtype_is_int(kt_dtype dt);

/* bf16: round to nearest even, as PyTorch's scalar conversion; NaN becomes a quiet NaN. */
uint16_t kt_f32_to_bf16(float f);
float kt_bf16_to_f32(uint16_t h);
/* IEEE binary16: round to nearest even with subnormals; |x| >= 65520 becomes inf. */
uint16_t kt_f32_to_f16(float f);
float kt_f16_to_f32(uint16_t h);

/* Converts n elements of src (little-endian bytes of dtype, any alignment) into out. */
void kt_dtype_convert_to_f32(kt_dtype dt, const void *src, float *out, int64_t n);
void kt_dtype_convert_to_i64(kt_dtype dt, const void *src, int64_t *out, int64_t n);
/* Converts n f32 values into dtype F32, F16 or BF16 bytes at dst (any alignment). */
void kt_dtype_convert_from_f32(kt_dtype dt, const float *src, void *dst, int64_t n);

#endif
