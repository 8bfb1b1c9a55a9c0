/* safetensors reader/writer: roundtrips in every dtype we write, and a clear error naming the file
 * and tensor for each kind of malformed file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>

#include "base/rng.h"
#include "checkpoints/safetensors.h"
#include "ckpt_testutil.h"
#include "kt_test.h"

KT_TEST(test_safetensors_roundtrip_all_dtypes) {
    float a[6] = {1.0f, -2.5f, 3.14159265f, 1e-30f, 65504.0f, -0.0f};
    int64_t lab[3] = {0, 5, -7};
    double d = 2.718281828459045;
    uint8_t u[3] = {1, 2, 255};
    int64_t s23[2] = {2, 3}, s3[1] = {3};
    kt_st_writer w;
    kt_st_writer_init(&w);
    kt_err err;
    KT_CHECK_OK(kt_st_writer_add(&w, "a.f32", KT_ST_F32, 2, s23, KT_ST_F32, a, &err), &err);
    KT_CHECK_OK(kt_st_writer_add(&w, "a.bf16", KT_ST_BF16, 2, s23, KT_ST_F32, a, &err), &err);
    KT_CHECK_OK(kt_st_writer_add(&w, "a.f16", KT_ST_F16, 2, s23, KT_ST_F32, a, &err), &err);
    KT_CHECK_OK(kt_st_writer_add(&w, "labels", KT_ST_I64, 1, s3, KT_ST_I64, lab, &err), &err);
    KT_CHECK_OK(kt_st_writer_add(&w, "scalar", KT_ST_F64, 0, NULL, KT_ST_F64, &d, &err), &err);
    KT_CHECK_OK(kt_st_writer_add(&w, "bytes", KT_ST_U8, 1, s3, KT_ST_U8, u, &err), &err);
    KT_CHECK_OK(kt_st_writer_add(&w, "empty", KT_ST_F32, 1, (int64_t[]){0}, KT_ST_F32, NULL, &err), &err);
    KT_CHECK_OK(kt_st_writer_meta(&w, "note", "h\xc3\xa9llo \"quoted\"", &err), &err);
    char path[4096];
    snprintf(path, sizeof path, "%s/rt.safetensors", kt_test_tmpdir());
    KT_REQUIRE_OK(kt_st_writer_save(&w, path, &err), &err);
    kt_st_writer_free(&w);

    kt_st_file f;
    KT_REQUIRE_OK(kt_st_open(&f, path, &err), &err);
    KT_CHECK(f.n_tensors == 7 && f.n_meta == 1);
    int data_aligned = (8 + f.header_len) % 8 == 0;
    KT_CHECK(data_aligned, "data section starts 8-byte aligned");
    for (int i = 0; i < f.n_tensors; i++) {
        int aligned = f.tensors[i].begin % (uint64_t)kt_st_dtype_size(f.tensors[i].dtype) == 0;
        KT_CHECK(aligned, "%s aligned", f.tensors[i].name);
    }
    float out[6];
    KT_CHECK_OK(kt_st_get_f32(&f, "a.f32", out, 6, &err), &err);
    KT_CHECK(memcmp(out, a, sizeof a) == 0, "F32 is bit-exact");
    KT_CHECK_OK(kt_st_get_f32(&f, "a.bf16", out, 6, &err), &err);
    for (int i = 0; i < 6; i++) KT_CHECK(out[i] == kt_bf16_to_f32(kt_f32_to_bf16(a[i])), "bf16 %d", i);
    KT_CHECK_NEAR(out[2], 3.140625, 0);
    KT_CHECK_OK(kt_st_get_f32(&f, "a.f16", out, 6, &err), &err);
    for (int i = 0; i < 6; i++) KT_CHECK(out[i] == kt_f16_to_f32(kt_f32_to_f16(a[i])), "f16 %d", i);
    KT_CHECK(out[3] == 0.0f && out[4] == 65504.0f, "f16 underflow to 0 and max finite");
    const kt_st_tensor *t = kt_st_find(&f, "a.bf16");
    KT_CHECK(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->dtype == KT_ST_BF16 && t->nbytes == 12);
    int64_t li[3];
    KT_CHECK_OK(kt_st_get_i64(&f, "labels", li, 3, &err), &err);
    KT_CHECK(li[0] == 0 && li[1] == 5 && li[2] == -7);
    t = kt_st_find(&f, "scalar");
    KT_CHECK(t && t->ndim == 0 && t->numel == 1);
    KT_CHECK_OK(kt_st_read_f32(&f, t, out, 1, &err), &err);
    KT_CHECK_NEAR(out[0], 2.718281828459045, 1e-6);
    KT_CHECK_OK(kt_st_get_i64(&f, "bytes", li, 3, &err), &err);
    KT_CHECK(li[2] == 255);
    t = kt_st_find(&f, "empty");
    KT_CHECK(t && t->numel == 0 && t->nbytes == 0);
    KT_CHECK(!strcmp(kt_st_meta(&f, "note"), "h\xc3\xa9llo \"quoted\""));
    KT_CHECK(kt_st_meta(&f, "missing") == NULL);
    KT_CHECK(kt_st_get_f32(&f, "a.f32", out, 5, &err) == KT_ERR_SHAPE && strstr(err.msg, "'a.f32'"), "%s", err.msg);
    kt_st_close(&f);
}

KT_TEST(test_safetensors_writer_rejects_bad_input) {
    kt_st_writer w;
    kt_st_writer_init(&w);
    kt_err err;
    float x[2] = {1, 2};
    int64_t s2[1] = {2}, neg[1] = {-1};
    KT_CHECK_OK(kt_st_writer_add(&w, "x", KT_ST_F32, 1, s2, KT_ST_F32, x, &err), &err);
    KT_CHECK(kt_st_writer_add(&w, "x", KT_ST_F32, 1, s2, KT_ST_F32, x, &err) == KT_ERR_ARG && strstr(err.msg, "twice"));
    KT_CHECK(kt_st_writer_add(&w, "", KT_ST_F32, 1, s2, KT_ST_F32, x, &err) == KT_ERR_ARG);
    KT_CHECK(kt_st_writer_add(&w, "__metadata__", KT_ST_F32, 1, s2, KT_ST_F32, x, &err) == KT_ERR_ARG);
    KT_CHECK(kt_st_writer_add(&w, "n", KT_ST_F32, 1, neg, KT_ST_F32, x, &err) == KT_ERR_ARG);
    KT_CHECK(kt_st_writer_add(&w, "c", KT_ST_I64, 1, s2, KT_ST_F32, x, &err) == KT_ERR_ARG &&
             strstr(err.msg, "cannot store F32 data as I64"), "%s", err.msg);
    /* Saving into a folder that does not exist fails cleanly and leaves nothing behind. */
    char path[4096];
    snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", kt_test_tmpdir());
    KT_CHECK(kt_st_writer_save(&w, path, &err) == KT_ERR_IO && strstr(err.msg, "no/such/dir"), "%s", err.msg);
    kt_st_writer_free(&w);
}

KT_TEST(test_safetensors_save_is_atomic) {
    /* Overwriting keeps the old file until the new one is complete, and leaves no temp file. */
    kt_err err;
    char path[4096];
    snprintf(path, sizeof path, "%s/a.safetensors", kt_test_tmpdir());
    float x[3] = {1, 2, 3};
    int64_t s3[1] = {3};
    for (int round = 0; round < 2; round++) {
        kt_st_writer w;
        kt_st_writer_init(&w);
        x[0] = (float)round;
        KT_CHECK_OK(kt_st_writer_add(&w, "x", KT_ST_F32, 1, s3, KT_ST_F32, x, &err), &err);
        KT_CHECK_OK(kt_st_writer_save(&w, path, &err), &err);
        kt_st_writer_free(&w);
    }
    kt_st_file f;
    KT_REQUIRE_OK(kt_st_open(&f, path, &err), &err);
    float out[3];
    KT_CHECK_OK(kt_st_get_f32(&f, "x", out, 3, &err), &err);
    KT_CHECK(out[0] == 1.0f);
    kt_st_close(&f);
    DIR *d = opendir(kt_test_tmpdir());
    KT_REQUIRE(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            n++;
            KT_CHECK(!strstr(e->d_name, ".tmp."), "temp file left: %s", e->d_name);
        }
    closedir(d);
    KT_CHECK(n == 1);
}

/* Each malformed file gives an error that contains every fragment listed. */
static void expect_error(const char *name, const char *header, int64_t hlen, size_t data_len, const char *frag1,
                         const char *frag2) {
    const char *path = ckt_write_raw(name, header, hlen, data_len);
    const char *msg = ckt_open_error(path);
    KT_CHECK(msg[0] != '\0', "%s opened but should not", name);
    KT_CHECK(strstr(msg, name) != NULL, "error names the file: %s", msg);
    KT_CHECK(strstr(msg, frag1) != NULL, "%s: '%s' not in: %s", name, frag1, msg);
    if (frag2) KT_CHECK(strstr(msg, frag2) != NULL, "%s: '%s' not in: %s", name, frag2, msg);
}

#define T1 "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"

KT_TEST(test_safetensors_rejects_truncated_files) {
    const char *path = ckt_write_raw("ok.safetensors", T1, -1, 8);
    KT_CHECK(ckt_open_error(path)[0] == '\0', "the well-formed control file opens: %s", ckt_open_error(path));
    /* fewer than 8 bytes */
    char p2[4096];
    snprintf(p2, sizeof p2, "%s/tiny.safetensors", kt_test_tmpdir());
    FILE *f = fopen(p2, "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    const char *msg = ckt_open_error(p2);
    KT_CHECK(strstr(msg, "tiny.safetensors") && strstr(msg, "truncated"), "%s", msg);
    /* header length beyond the file */
    expect_error("hlen.safetensors", T1, 100000, 8, "header length 100000 exceeds", NULL);
    expect_error("hlen_huge.safetensors", T1, (int64_t)1 << 62, 8, "exceeds", NULL);
    /* data section shorter than the offsets */
    expect_error("short.safetensors", T1, -1, 5, "'w'", "past the data section");
    /* empty file */
    snprintf(p2, sizeof p2, "%s/empty.safetensors", kt_test_tmpdir());
    f = fopen(p2, "wb");
    fclose(f);
    KT_CHECK(strstr(ckt_open_error(p2), "truncated"));
    /* missing file */
    snprintf(p2, sizeof p2, "%s/absent.safetensors", kt_test_tmpdir());
    kt_err err;
    kt_st_file sf;
    KT_CHECK(kt_st_open(&sf, p2, &err) == KT_ERR_NOTFOUND && strstr(err.msg, "absent.safetensors"));
}

KT_TEST(test_safetensors_rejects_bad_offsets) {
    expect_error("overlap.safetensors",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                 -1, 12, "'b'", "overlap tensor 'a'");
    expect_error("gap.safetensors",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                 -1, 12, "'b'", "gap of 4");
    expect_error("trailing.safetensors", T1, -1, 16, "8 bytes after the last tensor", NULL);
    expect_error("span.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", -1, 8, "'w'",
                 "span 8 bytes but shape x F32 needs 12");
    expect_error("span_bf16.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", -1, 8,
                 "'w'", "needs 12");
    expect_error("reversed.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", -1, 8,
                 "'w'", "end before they begin");
    expect_error("range.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8000]}}", -1, 8,
                 "'w'", "past the data section");
    expect_error("negoff.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", -1, 8,
                 "'w'", "not non-negative integers");
    expect_error("fracoff.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", -1, 8,
                 "'w'", "not non-negative integers");
    expect_error("offs3.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", -1, 8,
                 "'w'", "[begin, end] pair");
}

KT_TEST(test_safetensors_rejects_bad_entries) {
    expect_error("dtype.safetensors", "{\"w\":{\"dtype\":\"F31\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8, "'w'",
                 "unknown dtype \"F31\"");
    expect_error("nodtype.safetensors", "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8, "'w'", "dtype");
    expect_error("negshape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", -1, 8,
                 "'w'", "shape[0]");
    expect_error("noshape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", -1, 8, "'w'", "shape");
    expect_error("bigshape.safetensors",
                 "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}", -1, 8,
                 "'w'", "overflows");
    expect_error("dup.safetensors",
                 "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                 -1, 8, "'w'", "appears twice");
    expect_error("notobj.safetensors", "{\"w\":[1,2]}", -1, 0, "'w'", "not an object");
    expect_error("json.safetensors", "{\"w\":{\"dtype\":\"F32\",", -1, 8, "not valid JSON", NULL);
    expect_error("array.safetensors", "[1,2,3]", -1, 0, "not a JSON object", NULL);
    expect_error("garbage.safetensors", T1 "xyz", -1, 8, "unexpected bytes after the header", NULL);
    expect_error("meta.safetensors",
                 "{\"__metadata__\":{\"epoch\":3},\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8,
                 "\"epoch\"", "not a string");
    expect_error("meta2.safetensors",
                 "{\"__metadata__\":{\"a\":\"1\"},\"__metadata__\":{\"b\":\"2\"},"
                 "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                 -1, 8, "__metadata__", "twice");
    expect_error("emptyname.safetensors", "{\"\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8,
                 "empty name", NULL);
    /* Space padding after the JSON, as the Python writer adds, is fine. */
    const char *p = ckt_write_raw("padded.safetensors", T1 "     ", -1, 8);
    KT_CHECK(ckt_open_error(p)[0] == '\0', "%s", ckt_open_error(p));
}

KT_TEST(test_safetensors_reads_header_only_and_metadata_only_files) {
    const char *p = ckt_write_raw("meta_only.safetensors", "{\"__metadata__\":{\"k\":\"v\"}}", -1, 0);
    kt_err err;
    kt_st_file f;
    KT_REQUIRE_OK(kt_st_open(&f, p, &err), &err);
    KT_CHECK(f.n_tensors == 0 && f.n_meta == 1 && !strcmp(kt_st_meta(&f, "k"), "v"));
    kt_st_close(&f);
    p = ckt_write_raw("nothing.safetensors", "{}", -1, 4);
    KT_CHECK(strstr(ckt_open_error(p), "no tensors"), "%s", ckt_open_error(p));
}

KT_TEST(test_safetensors_survives_mutated_headers) {
    /* 3000 deterministic corruptions of a valid file (byte flips in the length, header and data,
     * and truncations): each either opens with every tensor inside the file or fails with a
     * message naming the file; never a crash (this suite also runs under ASan/UBSan). */
    const char *hdr = "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]}}";
    const char *src = ckt_write_raw("base.safetensors", hdr, -1, 22);
    FILE *fp = fopen(src, "rb");
    KT_REQUIRE(fp);
    unsigned char orig[1024];
    size_t n = fread(orig, 1, sizeof orig, fp);
    fclose(fp);
    KT_REQUIRE(n == 8 + strlen(hdr) + 22);
    char path[4096];
    snprintf(path, sizeof path, "%s/mut.safetensors", kt_test_tmpdir());
    kt_rng r;
    kt_rng_seed(&r, 77);
    int opened = 0;
    for (int it = 0; it < 3000; it++) {
        unsigned char buf[1024];
        memcpy(buf, orig, n);
        size_t len = n;
        int flips = 1 + (int)kt_rng_below(&r, 3);
        for (int k = 0; k < flips; k++) {
            size_t at = (size_t)kt_rng_below(&r, n);
            static const unsigned char pick[] = {'0', '9', '"', '{', '}', '[', ']', ',', ':', '-', 0, 0xff, ' '};
            buf[at] = kt_rng_below(&r, 2) ? pick[kt_rng_below(&r, sizeof pick)] : (unsigned char)kt_rng_u64(&r);
        }
        if (kt_rng_below(&r, 8) == 0) len = (size_t)kt_rng_below(&r, n);
        fp = fopen(path, "wb");
        fwrite(buf, 1, len, fp);
        fclose(fp);
        kt_err err;
        kt_st_file f;
        if (kt_st_open(&f, path, &err) == KT_OK) {
            opened++;
            for (int i = 0; i < f.n_tensors; i++) {
                const kt_st_tensor *t = &f.tensors[i];
                int inside = t->data >= (const uint8_t *)f.map && t->data + t->nbytes <= (const uint8_t *)f.map + f.map_len;
                KT_CHECK(inside, "iteration %d: tensor %s outside the file", it, t->name);
            }
            kt_st_close(&f);
        } else KT_CHECK(strstr(err.msg, "mut.safetensors") != NULL, "iteration %d: %s", it, err.msg);
    }
    KT_CHECK(opened > 0 && opened < 3000, "%d of 3000 opened", opened);
}
