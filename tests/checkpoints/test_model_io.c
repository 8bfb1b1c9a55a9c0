/* Model parameters <-> files: strict and fine-tuning loads, every mismatch named, metadata. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/ckpt_meta.h"
#include "checkpoints/model_io.h"
#include "ckpt_testutil.h"
#include "kt_test.h"

static const char *tmp_path(const char *name) {
    static char p[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", kt_test_tmpdir(), name);
    return p[k];
}

KT_TEST(test_model_io_atto_param_count_matches_timm) {
    ckt_model m;
    ckt_atto_init(&m, 6, 1);
    KT_CHECK(kt_params_count(m.p, m.n) == 3376446, "convnext_atto, 6 classes: %lld",
             (long long)kt_params_count(m.p, m.n));
    ckt_model_free(&m);
}

KT_TEST(test_model_io_roundtrip_three_dtypes) {
    ckt_model a, b;
    ckt_atto_init(&a, 6, 1);
    ckt_atto_init(&b, 6, 2);
    kt_err err;
    const kt_st_dtype dts[3] = {KT_ST_F32, KT_ST_BF16, KT_ST_F16};
    for (int k = 0; k < 3; k++) {
        const char *path = tmp_path("m.safetensors");
        KT_REQUIRE_OK(kt_model_save(path, a.p, a.n, dts[k], NULL, &err), &err);
        kt_load_report rep;
        KT_REQUIRE_OK(kt_model_load(path, NULL, b.p, b.n, KT_LOAD_STRICT, &rep, &err), &err);
        KT_CHECK(rep.n_loaded == a.n && rep.n_kept == 0 && !rep.head_replaced && rep.file_classes == 6);
        KT_CHECK(strstr(rep.text, kt_st_dtype_name(dts[k])) != NULL, "%s", rep.text);
        int64_t total = kt_params_count(a.p, a.n), bad = 0;
        double max_rel = 0;
        for (int64_t i = 0; i < total; i++) {
            float x = a.storage[i], y = b.storage[i];
            float want = dts[k] == KT_ST_F32 ? x : dts[k] == KT_ST_BF16 ? kt_bf16_to_f32(kt_f32_to_bf16(x))
                                                                      : kt_f16_to_f32(kt_f32_to_f16(x));
            if (y != want) bad++;
            if (x != 0) max_rel = fmax(max_rel, fabs((double)y - x) / fabs(x));
        }
        KT_CHECK(bad == 0, "%s: %lld values differ from the rounded originals", kt_st_dtype_name(dts[k]), (long long)bad);
        /* bf16 keeps 8 significant bits, f16 11 (these values are well inside f16's normal range) */
        double bound = dts[k] == KT_ST_F32 ? 0 : dts[k] == KT_ST_BF16 ? 1.0 / 256 : 1.0 / 2048;
        KT_CHECK(max_rel <= bound * 1.0001 || dts[k] == KT_ST_F16, "%s max rel %g", kt_st_dtype_name(dts[k]), max_rel);
    }
    /* The 1x1-conv MLP weights are stored 4-D like timm's atto, and the 2-D form loads too. */
    kt_st_file f;
    const char *path = tmp_path("m.safetensors");
    KT_REQUIRE_OK(kt_st_open(&f, path, &err), &err);
    const kt_st_tensor *t = kt_st_find(&f, "stages.2.blocks.5.mlp.fc1.weight");
    KT_CHECK(t && t->ndim == 4 && t->shape[0] == 640 && t->shape[1] == 160 && t->shape[2] == 1 && t->shape[3] == 1);
    kt_st_close(&f);
    for (int i = 0; i < a.n; i++) a.p[i].file_ndim = 0; /* save the plain 2-D form */
    KT_REQUIRE_OK(kt_model_save(path, a.p, a.n, KT_ST_F32, NULL, &err), &err);
    KT_REQUIRE_OK(kt_st_open(&f, path, &err), &err);
    t = kt_st_find(&f, "stages.2.blocks.5.mlp.fc1.weight");
    KT_CHECK(t && t->ndim == 2);
    kt_st_close(&f);
    KT_CHECK_OK(kt_model_load(path, NULL, b.p, b.n, KT_LOAD_STRICT, NULL, &err), &err);
    ckt_model_free(&a);
    ckt_model_free(&b);
}

/* Saves `a`, then rewrites the file through a writer with one change, for mismatch tests. */
typedef enum { DROP, RENAME, RESHAPE, RETYPE, EXTRA } edit_kind;

static const char *save_edited(const ckt_model *a, const char *file, edit_kind kind, const char *target) {
    const char *path = tmp_path(file);
    kt_st_writer w;
    kt_st_writer_init(&w);
    kt_err err;
    static int64_t i64data[640 * 160];
    for (int i = 0; i < a->n; i++) {
        const kt_param_ref *p = &a->p[i];
        int nd = p->file_ndim ? p->file_ndim : p->ndim;
        const int64_t *sh = p->file_ndim ? p->file_shape : p->shape;
        if (!strcmp(p->name, target)) {
            if (kind == DROP) continue;
            if (kind == RENAME) {
                kt_st_writer_add(&w, "stages.9.renamed.weight", KT_ST_F32, nd, sh, KT_ST_F32, p->data, &err);
                continue;
            }
            if (kind == RESHAPE) {
                int64_t s2[2] = {sh[0] / 2, kt_param_numel(p) / (sh[0] / 2)};
                kt_st_writer_add(&w, p->name, KT_ST_F32, 2, s2, KT_ST_F32, p->data, &err);
                continue;
            }
            if (kind == RETYPE) {
                kt_st_writer_add(&w, p->name, KT_ST_I64, nd, sh, KT_ST_I64, i64data, &err);
                continue;
            }
        }
        kt_st_writer_add(&w, p->name, KT_ST_F32, nd, sh, KT_ST_F32, p->data, &err);
    }
    if (kind == EXTRA) kt_st_writer_add(&w, target, KT_ST_F32, 1, (int64_t[]){2}, KT_ST_F32, a->p[0].data, &err);
    KT_CHECK_OK(kt_st_writer_save(&w, path, &err), &err);
    kt_st_writer_free(&w);
    return path;
}

KT_TEST(test_model_io_strict_names_first_mismatch) {
    ckt_model a, b;
    ckt_atto_init(&a, 6, 1);
    ckt_atto_init(&b, 6, 2);
    kt_err err;
    float before = b.p[10].data[0];
    /* missing */
    const char *p = save_edited(&a, "drop.safetensors", DROP, "stages.2.blocks.3.norm.bias");
    KT_CHECK(kt_model_load(p, NULL, b.p, b.n, KT_LOAD_STRICT, NULL, &err) == KT_ERR_NOTFOUND);
    KT_CHECK(strstr(err.msg, "drop.safetensors") && strstr(err.msg, "'stages.2.blocks.3.norm.bias' is missing"),
             "%s", err.msg);
    /* renamed: reported missing under the old name and unexpected under the new one */
    p = save_edited(&a, "rename.safetensors", RENAME, "stages.1.downsample.1.weight");
    KT_CHECK(kt_model_load(p, NULL, b.p, b.n, KT_LOAD_STRICT, NULL, &err) != KT_OK);
    KT_CHECK(strstr(err.msg, "'stages.1.downsample.1.weight' is missing") &&
             strstr(err.msg, "1 unexpected ('stages.9.renamed.weight')"), "%s", err.msg);
    /* wrong shape: names both forms the model accepts */
    p = save_edited(&a, "shape.safetensors", RESHAPE, "stages.0.blocks.1.mlp.fc2.weight");
    KT_CHECK(kt_model_load(p, NULL, b.p, b.n, KT_LOAD_STRICT, NULL, &err) == KT_ERR_SHAPE);
    KT_CHECK(strstr(err.msg, "'stages.0.blocks.1.mlp.fc2.weight' has shape [20, 320]") &&
             strstr(err.msg, "expects [40, 160] or [40, 160, 1, 1]"), "%s", err.msg);
    /* wrong dtype */
    p = save_edited(&a, "dtype.safetensors", RETYPE, "stem.0.bias");
    KT_CHECK(kt_model_load(p, NULL, b.p, b.n, KT_LOAD_STRICT, NULL, &err) == KT_ERR_SHAPE);
    KT_CHECK(strstr(err.msg, "'stem.0.bias' has dtype I64"), "%s", err.msg);
    KT_CHECK(b.p[10].data[0] == before, "failed loads leave the model untouched");
    /* unexpected extra tensor */
    p = save_edited(&a, "extra.safetensors", EXTRA, "head.pre_logits.fc.weight");
    KT_CHECK(kt_model_load(p, NULL, b.p, b.n, KT_LOAD_STRICT, NULL, &err) == KT_ERR_FORMAT);
    KT_CHECK(strstr(err.msg, "unexpected tensor 'head.pre_logits.fc.weight'"), "%s", err.msg);
    /* ... which a fine-tuning load ignores and reports */
    kt_load_report rep;
    KT_CHECK_OK(kt_model_load(p, NULL, b.p, b.n, KT_LOAD_FINETUNE, &rep, &err), &err);
    KT_CHECK(rep.n_ignored == 1 && strstr(rep.text, "ignored 1 tensor"), "%s", rep.text);
    /* the first mismatch in model order is the one named, with the others counted */
    ckt_model c;
    ckt_atto_init(&c, 6, 3);
    p = save_edited(&a, "two.safetensors", DROP, "head.norm.bias");
    c.p[3].shape[0] = 41; /* stem.1.bias: comes before head.norm.bias */
    KT_CHECK(kt_model_load(p, NULL, c.p, c.n, KT_LOAD_STRICT, NULL, &err) != KT_OK);
    KT_CHECK(strstr(err.msg, ": tensor 'stem.1.bias' has shape [40]") && strstr(err.msg, "1 missing ('head.norm.bias')"),
             "%s", err.msg);
    ckt_model_free(&c);
    ckt_model_free(&a);
    ckt_model_free(&b);
}

KT_TEST(test_model_io_finetune_replaces_head) {
    ckt_model pre, ft;
    ckt_atto_init(&pre, 1000, 1); /* "ImageNet" head */
    ckt_atto_init(&ft, 6, 2);
    kt_err err;
    const char *path = tmp_path("imagenet.safetensors");
    KT_REQUIRE_OK(kt_model_save(path, pre.p, pre.n, KT_ST_BF16, NULL, &err), &err);
    float fresh_fc = ft.p[ft.n - 2].data[7];
    /* strict refuses, naming the head */
    KT_CHECK(kt_model_load(path, NULL, ft.p, ft.n, KT_LOAD_STRICT, NULL, &err) == KT_ERR_SHAPE);
    KT_CHECK(strstr(err.msg, "'head.fc.weight' has shape [1000, 320]") && strstr(err.msg, "expects [6, 320]"), "%s",
             err.msg);
    kt_load_report rep;
    KT_REQUIRE_OK(kt_model_load(path, NULL, ft.p, ft.n, KT_LOAD_FINETUNE, &rep, &err), &err);
    KT_CHECK(rep.head_replaced && rep.n_kept == 2 && rep.n_loaded == ft.n - 2 && rep.file_classes == 1000);
    KT_CHECK(strstr(rep.text, "1000 classes") && strstr(rep.text, "head.fc.weight, head.fc.bias"), "%s", rep.text);
    KT_CHECK(ft.p[ft.n - 2].data[7] == fresh_fc, "the new head keeps its fresh values");
    KT_CHECK(ft.p[0].data[5] == kt_bf16_to_f32(kt_f32_to_bf16(pre.p[0].data[5])), "backbone loaded");
    KT_CHECK(ft.p[ft.n - 4].data[3] == kt_bf16_to_f32(kt_f32_to_bf16(pre.p[pre.n - 4].data[3])), "head.norm loaded");
    /* a non-head mismatch is still an error in fine-tuning mode (another architecture) */
    ckt_model other;
    ckt_atto_init(&other, 6, 4);
    other.p[1].shape[0] = 48; /* stem width of femto */
    KT_CHECK(kt_model_load(path, NULL, other.p, other.n, KT_LOAD_FINETUNE, NULL, &err) == KT_ERR_SHAPE &&
                 strstr(err.msg, "'stem.0.bias'"), "%s", err.msg);
    ckt_model_free(&other);
    /* a file without a head (timm's num_classes=0 export) also gets a fresh head */
    const char *nohead = save_edited(&pre, "nohead.safetensors", DROP, "head.fc.weight");
    KT_REQUIRE_OK(kt_model_load(nohead, NULL, ft.p, ft.n, KT_LOAD_FINETUNE, &rep, &err), &err);
    KT_CHECK(rep.head_replaced && rep.n_kept == 2 && rep.file_classes == -1 && strstr(rep.text, "no head"), "%s",
             rep.text);
    ckt_model_free(&pre);
    ckt_model_free(&ft);
}

KT_TEST(test_model_io_prefix_and_open_file) {
    ckt_model a, b;
    ckt_atto_init(&a, 6, 1);
    ckt_atto_init(&b, 6, 2);
    kt_err err;
    kt_st_writer w;
    kt_st_writer_init(&w);
    KT_CHECK_OK(kt_model_add_to_writer(&w, "param.", a.p, a.n, KT_ST_F32, &err), &err);
    KT_CHECK_OK(kt_model_add_to_writer(&w, "grad.", a.p, a.n, KT_ST_F32, &err), &err);
    const char *path = tmp_path("pref.safetensors");
    KT_REQUIRE_OK(kt_st_writer_save(&w, path, &err), &err);
    kt_st_writer_free(&w);
    kt_st_file f;
    KT_REQUIRE_OK(kt_st_open(&f, path, &err), &err);
    /* tensors outside the prefix do not count as unexpected */
    KT_CHECK_OK(kt_model_load_from(&f, "param.", b.p, b.n, KT_LOAD_STRICT, NULL, &err), &err);
    KT_CHECK(memcmp(a.storage, b.storage, (size_t)kt_params_count(a.p, a.n) * 4) == 0);
    KT_CHECK(kt_model_load_from(&f, NULL, b.p, b.n, KT_LOAD_STRICT, NULL, &err) == KT_ERR_NOTFOUND &&
                 strstr(err.msg, "'stem.0.weight' is missing"), "%s", err.msg);
    kt_st_close(&f);
    ckt_model_free(&a);
    ckt_model_free(&b);
}

KT_TEST(test_ckpt_meta_roundtrip) {
    ckt_model a;
    ckt_atto_init(&a, 3, 1);
    kt_err err;
    kt_ckpt_meta m;
    kt_ckpt_meta_init(&m);
    const char *names[3] = {"healthy", "mild \"stage\" 1", "sévère"};
    KT_CHECK_OK(kt_ckpt_meta_set_arch(&m, "convnext_atto", &err), &err);
    KT_CHECK_OK(kt_ckpt_meta_set_classes(&m, names, 3, &err), &err);
    m.img_h = 224;
    m.img_w = 192;
    m.has_norm = 1;
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    memcpy(m.mean, mean, sizeof mean);
    memcpy(m.std, std, sizeof std);
    m.epoch = 7;
    KT_CHECK_OK(kt_ckpt_meta_set_metrics(&m, "{\"val_acc\": 0.91, \"val_loss\": 0.3}", &err), &err);
    KT_CHECK_OK(kt_ckpt_meta_set_extra(&m, "fold", "2", &err), &err);
    KT_CHECK(kt_ckpt_meta_set_extra(&m, "epoch", "2", &err) == KT_ERR_ARG);
    KT_CHECK(kt_ckpt_meta_set_metrics(&m, "[1,2]", &err) == KT_ERR_ARG);
    const char *path = tmp_path("meta.safetensors");
    KT_REQUIRE_OK(kt_model_save(path, a.p, a.n, KT_ST_F32, &m, &err), &err);
    kt_st_file f;
    KT_REQUIRE_OK(kt_st_open(&f, path, &err), &err);
    KT_CHECK(!strcmp(kt_st_meta(&f, "format"), "pt"));
    KT_CHECK(!strcmp(kt_st_meta(&f, "image_size"), "[224, 192]"));
    KT_CHECK(!strcmp(kt_st_meta(&f, "mean"), "[0.485, 0.456, 0.406]"), "%s", kt_st_meta(&f, "mean"));
    kt_ckpt_meta r;
    KT_REQUIRE_OK(kt_ckpt_meta_from_file(&f, &r, &err), &err);
    KT_CHECK(!strcmp(r.arch, "convnext_atto") && r.n_classes == 3 && r.class_names);
    for (int i = 0; i < 3 && r.class_names; i++) KT_CHECK(!strcmp(r.class_names[i], names[i]), "class %d", i);
    KT_CHECK(r.img_h == 224 && r.img_w == 192 && r.has_norm && r.epoch == 7);
    for (int i = 0; i < 3; i++) KT_CHECK(r.mean[i] == mean[i] && r.std[i] == std[i]);
    KT_CHECK(r.metrics_json && strstr(r.metrics_json, "val_acc"));
    KT_CHECK(r.n_extra == 1 && !strcmp(kt_ckpt_meta_get_extra(&r, "fold"), "2"));
    kt_ckpt_meta_free(&r);
    kt_st_close(&f);
    kt_ckpt_meta_free(&m);
    ckt_model_free(&a);
}

KT_TEST(test_ckpt_meta_rejects_malformed_values) {
    const struct {
        const char *meta, *frag;
    } cases[] = {
        {"\"class_names\":\"[1,2]\"", "\"class_names\" entry 0"},
        {"\"class_names\":\"cat,dog\"", "\"class_names\" is not"},
        {"\"num_classes\":\"six\"", "\"num_classes\""},
        {"\"num_classes\":\"1000000000\"", "1..1000000"}, /* a crafted file must not make readers allocate per class */
        {"\"num_classes\":\"3\",\"class_names\":\"[\\\"a\\\",\\\"b\\\"]\"", "lists 2"},
        {"\"image_size\":\"[224]\"", "\"image_size\""},
        {"\"mean\":\"[0.5,0.5]\",\"std\":\"[1,1,1]\"", "\"mean\""},
        {"\"mean\":\"[0.5,0.5,0.5]\",\"std\":\"[1,0,1]\"", "\"std\""},
        {"\"mean\":\"[0.5,0.5,0.5]\"", "without \"std\""},
        {"\"epoch\":\"-1\"", "\"epoch\""},
        {"\"metrics\":\"{oops\"", "\"metrics\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char hdr[512], name[64];
        snprintf(hdr, sizeof hdr, "{\"__metadata__\":{%s},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                 cases[i].meta);
        snprintf(name, sizeof name, "badmeta%zu.safetensors", i);
        const char *path = ckt_write_raw(name, hdr, -1, 4);
        kt_err err;
        kt_st_file f;
        KT_REQUIRE_OK(kt_st_open(&f, path, &err), &err);
        kt_ckpt_meta m;
        KT_CHECK(kt_ckpt_meta_from_file(&f, &m, &err) == KT_ERR_FORMAT, "case %zu accepted", i);
        KT_CHECK(strstr(err.msg, name) && strstr(err.msg, cases[i].frag), "case %zu: %s", i, err.msg);
        kt_st_close(&f);
    }
    /* "224" is read as a square size; a file without metadata gives an empty struct */
    const char *path = ckt_write_raw("sq.safetensors",
                                     "{\"__metadata__\":{\"image_size\":\"224\"},\"w\":{\"dtype\":\"F32\",\"shape\":[1],"
                                     "\"data_offsets\":[0,4]}}",
                                     -1, 4);
    kt_err err;
    kt_st_file f;
    KT_REQUIRE_OK(kt_st_open(&f, path, &err), &err);
    kt_ckpt_meta m;
    KT_REQUIRE_OK(kt_ckpt_meta_from_file(&f, &m, &err), &err);
    KT_CHECK(m.img_h == 224 && m.img_w == 224 && !m.arch && m.n_classes == 0 && m.epoch == -1);
    kt_ckpt_meta_free(&m);
    kt_st_close(&f);
}
