/* f32 <-> bf16 / f16 conversions: exact against PyTorch's conversions (golden file) and
 * self-consistent over every half bit pattern. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "checkpoints/st_dtype.h"
#include "checkpoints/safetensors.h"
#include "kt_test.h"

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

KT_TEST(test_dtype_bf16_matches_pytorch) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/golden/checkpoints/dtype_rounding.safetensors", kt_test_root());
    kt_err err;
    kt_st_file f;
    KT_REQUIRE_OK(kt_st_open(&f, path, &err), &err);
    const kt_st_tensor *x = kt_st_find(&f, "f32"), *b = kt_st_find(&f, "bf16");
    KT_REQUIRE(x && b && x->dtype == KT_ST_F32 && b->dtype == KT_ST_BF16 && x->numel == b->numel && x->numel > 250);
    int bad = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        float v;
        uint16_t want, got;
        memcpy(&v, x->data + 4 * i, 4);
        memcpy(&want, b->data + 2 * i, 2);
        got = kt_f32_to_bf16(v);
        if (got != want && bad++ < 5) KT_CHECK(got == want, "bf16(%a) = 0x%04x, PyTorch 0x%04x", v, got, want);
        /* widening back is exact */
        if (bits(kt_bf16_to_f32(want)) != (uint32_t)want << 16) bad++;
    }
    KT_CHECK(bad == 0, "%d mismatches", bad);
    kt_st_close(&f);
}

KT_TEST(test_dtype_f16_matches_pytorch) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/golden/checkpoints/dtype_rounding.safetensors", kt_test_root());
    kt_err err;
    kt_st_file f;
    KT_REQUIRE_OK(kt_st_open(&f, path, &err), &err);
    const kt_st_tensor *x = kt_st_find(&f, "f32"), *h = kt_st_find(&f, "f16");
    KT_REQUIRE(x && h && h->dtype == KT_ST_F16 && x->numel == h->numel);
    int bad = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        float v;
        uint16_t want;
        memcpy(&v, x->data + 4 * i, 4);
        memcpy(&want, h->data + 2 * i, 2);
        uint16_t got = kt_f32_to_f16(v);
        if (got != want && bad++ < 5) KT_CHECK(got == want, "f16(%a) = 0x%04x, PyTorch 0x%04x", v, got, want);
    }
    KT_CHECK(bad == 0, "%d mismatches", bad);
    /* Reading through kt_st_read_f32 gives the same widened values as the scalar path. */
    float out[512];
    KT_REQUIRE(h->numel <= 512);
    KT_CHECK_OK(kt_st_read_f32(&f, h, out, h->numel, &err), &err);
    for (int64_t i = 0; i < h->numel; i++) {
        uint16_t hv;
        memcpy(&hv, h->data + 2 * i, 2);
        KT_CHECK(bits(out[i]) == bits(kt_f16_to_f32(hv)));
    }
    kt_st_close(&f);
}

KT_TEST(test_dtype_f16_roundtrip_every_pattern) {
    /* Every half value widens exactly and narrows back to itself (NaNs stay NaN). */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float v = kt_f16_to_f32((uint16_t)h);
        uint16_t back = kt_f32_to_f16(v);
        int is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (is_nan ? !isnan(v) || (back & 0x7fff) <= 0x7c00 : back != h) bad++;
    }
    KT_CHECK(bad == 0, "%d half patterns do not round-trip", bad);
    KT_CHECK(kt_f16_to_f32(0x0001) == ldexpf(1.0f, -24), "smallest subnormal");
    KT_CHECK(kt_f16_to_f32(0x7bff) == 65504.0f, "largest finite");
    KT_CHECK(isinf(kt_f16_to_f32(0x7c00)) && kt_f16_to_f32(0xfc00) < 0);
}

KT_TEST(test_dtype_nan_and_specials) {
    float nan = nanf("");
    KT_CHECK(isnan(kt_bf16_to_f32(kt_f32_to_bf16(nan))));
    KT_CHECK(isnan(kt_f16_to_f32(kt_f32_to_f16(nan))));
    KT_CHECK(isnan(kt_bf16_to_f32(kt_f32_to_bf16(-nan))));
    /* A NaN whose payload sits only in the low 16 bits must not become inf when narrowed. */
    uint32_t low_nan = 0x7f800001u;
    float ln;
    memcpy(&ln, &low_nan, 4);
    KT_CHECK(isnan(kt_bf16_to_f32(kt_f32_to_bf16(ln))));
    KT_CHECK(isnan(kt_f16_to_f32(kt_f32_to_f16(ln))));
    KT_CHECK(kt_f32_to_bf16(-0.0f) == 0x8000 && kt_f32_to_f16(-0.0f) == 0x8000);
    /* Rounding: the largest float rounds to bf16 inf; 65520 to half inf; 65519 to 65504. */
    KT_CHECK(kt_f32_to_bf16(3.4028234663852886e38f) == 0x7f80);
    KT_CHECK(kt_f32_to_f16(65520.0f) == 0x7c00 && kt_f32_to_f16(65519.0f) == 0x7bff);
}

KT_TEST(test_dtype_names_and_ints) {
    kt_st_dtype d;
    KT_CHECK(kt_st_dtype_parse("BF16", &d) && d == KT_ST_BF16 && kt_st_dtype_size(d) == 2);
    KT_CHECK(kt_st_dtype_parse("I64", &d) && d == KT_ST_I64 && kt_st_dtype_size(d) == 8);
    KT_CHECK(!kt_st_dtype_parse("F31", &d) && !kt_st_dtype_parse("f32", &d));
    KT_CHECK(!strcmp(kt_st_dtype_name(KT_ST_F8_E4M3), "F8_E4M3"));
    /* Integer tensors PyTorch wrote (labels are I64): read through the safetensors reader. */
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/golden/checkpoints/dtype_rounding.safetensors", kt_test_root());
    kt_err err;
    kt_st_file f;
    KT_REQUIRE_OK(kt_st_open(&f, path, &err), &err);
    int64_t v[5];
    KT_CHECK_OK(kt_st_get_i64(&f, "i64", v, 4, &err), &err);
    KT_CHECK(v[0] == 0 && v[1] == 5 && v[2] == -3 && v[3] == (int64_t)1 << 40);
    KT_CHECK_OK(kt_st_get_i64(&f, "i32", v, 3, &err), &err);
    KT_CHECK(v[0] == 7 && v[1] == -1 && v[2] == 2147483647);
    KT_CHECK_OK(kt_st_get_i64(&f, "u8", v, 5, &err), &err);
    KT_CHECK(v[2] == 127 && v[3] == 128 && v[4] == 255);
    KT_CHECK(!strcmp(kt_st_meta(&f, "script"), "tests/reference/dtype_rounding.py"));
    /* Asking for floats from an integer tensor is an error naming it. */
    float fl[4];
    KT_CHECK(kt_st_get_f32(&f, "i64", fl, 4, &err) == KT_ERR_FORMAT && strstr(err.msg, "'i64'"), "%s", err.msg);
    KT_CHECK(kt_st_get_f32(&f, "nope", fl, 4, &err) == KT_ERR_NOTFOUND && strstr(err.msg, "'nope'"));
    kt_st_close(&f);
}
