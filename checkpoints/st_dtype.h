/* Element types of safetensors files and the float conversions checkpoints need:
 * f32 <-> bf16 (round to nearest even) and f32 <-> IEEE half (subnormals, RNE, overflow to inf). */
#ifndef KT_ST_DTYPE_H
#define KT_ST_DTYPE_H

#include <stdint.h>

#include "engine/dtype.h" /* kt_f32_to_bf16, kt_f16_to_f32, ...: one implementation */

/* The dtypes the safetensors format defines (names as in the file: "F32", "BF16", ...). */
typedef enum {
    KT_ST_BOOL,
    KT_ST_U8,
    KT_ST_I8,
    KT_ST_F8_E5M2,
    KT_ST_F8_E4M3,
    KT_ST_I16,
    KT_ST_U16,
    KT_ST_F16,
    KT_ST_BF16,
    KT_ST_I32,
    KT_ST_U32,
    KT_ST_F32,
    KT_ST_F64,
    KT_ST_I64,
    KT_ST_U64,
    KT_ST_COUNT
} kt_st_dtype;

const char *kt_st_dtype_name(kt_st_dtype dt);
/* Bytes per element. */
int kt_st_dtype_size(kt_st_dtype dt);
/* Parses a file's dtype string; returns 0 when it is not one of the format's names. */
int kt_st_dtype_parse(const char *s, kt_st_dtype *out);
/* 1 for F16, BF16, F32, F64: the dtypes kt_st_to_f32 accepts. */
int kt_st_dtype_is_float(kt_st_dtype dt);
/* 1 for BOOL and the integer types: the dtypes kt_st_to_i64 accepts. */
int kt_st_dtype_is_int(kt_st_dtype dt);

/* Converts n elements of src (little-endian bytes of dtype, any alignment) into out. */
void kt_st_to_f32(kt_st_dtype dt, const void *src, float *out, int64_t n);
void kt_st_to_i64(kt_st_dtype dt, const void *src, int64_t *out, int64_t n);
/* Converts n f32 values into dtype F32, F16 or BF16 bytes at dst (any alignment). */
void kt_st_from_f32(kt_st_dtype dt, const float *src, void *dst, int64_t n);

#endif
