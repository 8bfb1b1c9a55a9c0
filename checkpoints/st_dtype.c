/* dtype names and sizes of the safetensors format, and bit-exact f32 <-> bf16 / f16 conversions.
 * Files are little-endian; this code assumes a little-endian host (x86-64, aarch64). */
#include "checkpoints/st_dtype.h"

#include <string.h>

static const struct {
    const char *name;
    int size;
} dtype_table[KT_ST_COUNT] = {
    [KT_ST_BOOL] = {"BOOL", 1},       [KT_ST_U8] = {"U8", 1},     [KT_ST_I8] = {"I8", 1},
    [KT_ST_F8_E5M2] = {"F8_E5M2", 1}, [KT_ST_F8_E4M3] = {"F8_E4M3", 1},
    [KT_ST_I16] = {"I16", 2},         [KT_ST_U16] = {"U16", 2},   [KT_ST_F16] = {"F16", 2},
    [KT_ST_BF16] = {"BF16", 2},       [KT_ST_I32] = {"I32", 4},   [KT_ST_U32] = {"U32", 4},
    [KT_ST_F32] = {"F32", 4},         [KT_ST_F64] = {"F64", 8},   [KT_ST_I64] = {"I64", 8},
    [KT_ST_U64] = {"U64", 8},
};

const char *kt_st_dtype_name(kt_st_dtype dt) { return (unsigned)dt < KT_ST_COUNT ? dtype_table[dt].name : "?"; }
int kt_st_dtype_size(kt_st_dtype dt) { return (unsigned)dt < KT_ST_COUNT ? dtype_table[dt].size : 0; }

int kt_st_dtype_parse(const char *s, kt_st_dtype *out) {
    for (int i = 0; i < KT_ST_COUNT; i++)
        if (!strcmp(s, dtype_table[i].name)) {
            *out = (kt_st_dtype)i;
            return 1;
        }
    return 0;
}

int kt_st_dtype_is_float(kt_st_dtype dt) {
    return dt == KT_ST_F16 || dt == KT_ST_BF16 || dt == KT_ST_F32 || dt == KT_ST_F64;
}

int kt_st_dtype_is_int(kt_st_dtype dt) {
    switch (dt) {
    case KT_ST_BOOL: case KT_ST_U8: case KT_ST_I8: case KT_ST_I16: case KT_ST_U16:
    case KT_ST_I32: case KT_ST_U32: case KT_ST_I64: case KT_ST_U64: return 1;
    default: return 0;
    }
}

void kt_st_to_f32(kt_st_dtype dt, const void *src, float *out, int64_t n) {
    const uint8_t *p = src;
    switch (dt) {
    case KT_ST_F32: memcpy(out, p, (size_t)n * 4); return;
    case KT_ST_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = kt_bf16_to_f32(h);
        }
        return;
    case KT_ST_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = kt_f16_to_f32(h);
        }
        return;
    case KT_ST_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
        }
        return;
    default:
        for (int64_t i = 0; i < n; i++) out[i] = 0.0f; /* callers check kt_st_dtype_is_float first */
    }
}

void kt_st_to_i64(kt_st_dtype dt, const void *src, int64_t *out, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case KT_ST_BOOL: out[i] = p[i] != 0; break;
        case KT_ST_U8: out[i] = p[i]; break;
        case KT_ST_I8: out[i] = (int8_t)p[i]; break;
        case KT_ST_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); out[i] = v; break; }
        case KT_ST_U16: { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = v; break; }
        case KT_ST_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); out[i] = v; break; }
        case KT_ST_U32: { uint32_t v; memcpy(&v, p + 4 * i, 4); out[i] = v; break; }
        case KT_ST_I64: case KT_ST_U64: memcpy(&out[i], p + 8 * i, 8); break;
        default: out[i] = 0; /* callers check kt_st_dtype_is_int first */
        }
    }
}

void kt_st_from_f32(kt_st_dtype dt, const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    switch (dt) {
    case KT_ST_F32: memcpy(p, src, (size_t)n * 4); return;
    case KT_ST_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = kt_f32_to_bf16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        return;
    case KT_ST_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = kt_f32_to_f16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        return;
    default: memset(p, 0, (size_t)n * (size_t)kt_st_dtype_size(dt)); /* callers validate the dtype */
    }
}
