/* dtype names and sizes of the safetensors format, and bit-exact f32 <-> bf16 / f16 conversions.
 * Files are little-endian; this code assumes a little-endian host (x86-64, aarch64). */
#include "checkpoints/dtype.h"

#include <string.h>

static const struct {
    const char *name;
    int size;
} dtype_table[KT_DT_COUNT] = {
    [KT_DT_BOOL] = {"BOOL", 1},       [KT_DT_U8] = {"U8", 1},     [KT_DT_I8] = {"I8", 1},
    [KT_DT_F8_E5M2] = {"F8_E5M2", 1}, [KT_DT_F8_E4M3] = {"F8_E4M3", 1},
    [KT_DT_I16] = {"I16", 2},         [KT_DT_U16] = {"U16", 2},   [KT_DT_F16] = {"F16", 2},
    [KT_DT_BF16] = {"BF16", 2},       [KT_DT_I32] = {"I32", 4},   [KT_DT_U32] = {"U32", 4},
    [KT_DT_F32] = {"F32", 4},         [KT_DT_F64] = {"F64", 8},   [KT_DT_I64] = {"I64", 8},
    [KT_DT_U64] = {"U64", 8},
};

const char *kt_dtype_name(kt_dtype dt) { return (unsigned)dt < KT_DT_COUNT ? dtype_table[dt].name : "?"; }
int kt_dtype_size(kt_dtype dt) { return (unsigned)dt < KT_DT_COUNT ? dtype_table[dt].size : 0; }

int kt_dtype_parse(const char *s, kt_dtype *out) {
    for (int i = 0; i < KT_DT_COUNT; i++)
        if (!strcmp(s, dtype_table[i].name)) {
            *out = (kt_dtype)i;
            return 1;
        }
    return 0;
}

int kt_dtype_is_float(kt_dtype dt) {
    return dt == KT_DT_F16 || dt == KT_DT_BF16 || dt == KT_DT_F32 || dt == KT_DT_F64;
}

int kt_dtype_is_int(kt_dtype dt) {
    switch (dt) {
    case KT_DT_BOOL: case KT_DT_U8: case KT_DT_I8: case KT_DT_I16: case KT_DT_U16:
    case KT_DT_I32: case KT_DT_U32: case KT_DT_I64: case KT_DT_U64: return 1;
    default: return 0;
    }
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t kt_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0; /* NaN: PyTorch's canonical quiet NaN */
    /* Adding 0x7fff plus the lowest kept bit rounds ties to even; overflow carries into inf. */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float kt_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t kt_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00; /* NaN stays a quiet NaN, as F16C and PyTorch */
    if (ax >= 0x477ff000u) return sign | 0x7c00; /* >= 65520 (incl. inf) rounds to inf */
    if (ax >= 0x38800000u) {                     /* normal half: rebias exponent 127 -> 15 */
        uint32_t r = ax - 0x38000000u;
        r += 0xfffu + ((r >> 13) & 1u);
        return sign | (uint16_t)(r >> 13);
    }
    /* Subnormal half (unit 2^-24): value = m * 2^(e-150), so the half mantissa is m >> (126-e). */
    uint32_t e = ax >> 23;
    if (e < 102) return sign; /* below 2^-25: rounds to zero */
    uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126 - e; /* 14..24 */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) q++; /* q may carry into the smallest normal */
    return sign | (uint16_t)q;
}

float kt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return bits_f32(sign | 0x7f800000u | (m << 13));
    if (e == 0) {
        if (m == 0) return bits_f32(sign);
        /* Subnormal: m * 2^-24 is exact in f32. */
        float v = (float)m * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

void kt_dtype_convert_to_f32(kt_dtype dt, const void *src, float *out, int64_t n) {
    const uint8_t *p = src;
    switch (dt) {
    case KT_DT_F32: memcpy(out, p, (size_t)n * 4); return;
    case KT_DT_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = kt_bf16_to_f32(h);
        }
        return;
    case KT_DT_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = kt_f16_to_f32(h);
        }
        return;
    case KT_DT_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
        }
        return;
    default:
        for (int64_t i = 0; i < n; i++) out[i] = 0.0f; /* callers check kt_dtype_is_float first */
    }
}

void kt_dtype_convert_to_i64(kt_dtype dt, const void *src, int64_t *out, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case KT_DT_BOOL: out[i] = p[i] != 0; break;
        case KT_DT_U8: out[i] = p[i]; break;
        case KT_DT_I8: out[i] = (int8_t)p[i]; break;
        case KT_DT_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); out[i] = v; break; }
        case KT_DT_U16: { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = v; break; }
        case KT_DT_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); out[i] = v; break; }
        case KT_DT_U32: { uint32_t v; memcpy(&v, p + 4 * i, 4); out[i] = v; break; }
        case KT_DT_I64: case KT_DT_U64: memcpy(&out[i], p + 8 * i, 8); break;
        default: out[i] = 0; /* callers check kt_dtype_is_int first */
        }
    }
}

void kt_dtype_convert_from_f32(kt_dtype dt, const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    switch (dt) {
    case KT_DT_F32: memcpy(p, src, (size_t)n * 4); return;
    case KT_DT_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = kt_f32_to_bf16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        return;
    case KT_DT_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = kt_f32_to_f16(src[i]);
            memcpy(p + 2 * i, &h, 2);
        }
        return;
    default: memset(p, 0, (size_t)n * (size_t)kt_dtype_size(dt)); /* callers validate the dtype */
    }
}
