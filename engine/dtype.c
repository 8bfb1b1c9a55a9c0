/* dtype sizes, names, and IEEE half conversion (with subnormals, round to nearest even). */
#include "engine/dtype.h"

size_t kt_dtype_size(kt_dtype t) {
    switch (t) {
    case KT_F32: return 4;
    case KT_BF16: return 2;
    case KT_F16: return 2;
    case KT_I32: return 4;
    }
    return 0;
}

const char *kt_dtype_name(kt_dtype t) {
    switch (t) {
    case KT_F32: return "f32";
    case KT_BF16: return "bf16";
    case KT_F16: return "f16";
    case KT_I32: return "i32";
    }
    return "?";
}

const char *kt_device_name(kt_device d) { return d == KT_CUDA ? "cuda" : "cpu"; }

uint16_t kt_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);  /* NaN */
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to inf (>= 65520) */
    if (absx < 0x38800000u) {                                    /* f16 subnormal or zero */
        if (absx < 0x33000000u) return (uint16_t)sign;           /* < half of smallest subnormal */
        uint32_t m = (absx & 0x7fffffu) | 0x800000u;
        int shift = 126 - (int)(absx >> 23); /* 14..24 */
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t e = (absx >> 23) - 112u; /* rebias 127 -> 15 */
    uint32_t m = absx & 0x7fffffu;
    uint32_t r = (e << 10) | (m >> 13);
    uint32_t rem = m & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;
    return (uint16_t)(sign | r);
}

float kt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    uint32_t x;
    if (e == 0) {
        if (m == 0) x = sign;
        else { /* subnormal: normalise */
            int k = 0;
            while (!(m & 0x400u)) {
                m <<= 1;
                k++;
            }
            m &= 0x3ffu;
            x = sign | ((uint32_t)(113 - k) << 23) | (m << 13);
        }
    } else if (e == 31) {
        x = sign | 0x7f800000u | (m << 13);
    } else {
        x = sign | ((e + 112u) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

void kt_convert(void *dst, kt_dtype dt, const void *src, kt_dtype st, int64_t n) {
    if (dt == st) {
        memcpy(dst, src, (size_t)n * kt_dtype_size(dt));
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float v;
        switch (st) {
        case KT_F32: v = ((const float *)src)[i]; break;
        case KT_BF16: v = kt_bf16_to_f32(((const uint16_t *)src)[i]); break;
        case KT_F16: v = kt_f16_to_f32(((const uint16_t *)src)[i]); break;
        default: v = (float)((const int32_t *)src)[i]; break;
        }
        switch (dt) {
        case KT_F32: ((float *)dst)[i] = v; break;
        case KT_BF16: ((uint16_t *)dst)[i] = kt_f32_to_bf16(v); break;
        case KT_F16: ((uint16_t *)dst)[i] = kt_f32_to_f16(v); break;
        default: ((int32_t *)dst)[i] = (int32_t)v; break;
        }
    }
}
