/* Checkpoint inspection and `keratrack info FILE`: on the PyTorch-written golden weights (timm's
 * names, no metadata of ours) and on a checkpoint of ours with full metadata. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "checkpoints/ckpt_inspect.h"
#include "checkpoints/model_io.h"
#include "ckpt_testutil.h"
#include "kt_test.h"

static const char *golden_weights(void) {
    static char p[4096];
    snprintf(p, sizeof p, "%s/tests/golden/parity/convnext_atto_weights.safetensors", kt_test_root());
    return p;
}

/* Runs the program and returns its stdout+stderr (static buffer) and exit status. */
static const char *run_cli(const char *args, int *status) {
    static char out[65536];
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", KT_CLI_PATH, args);
    FILE *p = popen(cmd, "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = '\0';
    int st = p ? pclose(p) : -1;
    *status = st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

KT_TEST(test_ckpt_inspect_infers_atto_from_timm_file) {
    kt_err err;
    kt_st_file f;
    KT_REQUIRE_OK(kt_st_open(&f, golden_weights(), &err), &err);
    kt_ckpt_summary s;
    kt_ckpt_inspect(&f, &s);
    KT_CHECK(s.is_convnext && s.prefix[0] == '\0' && !strcmp(s.inferred, "convnext_atto"), "%s", s.inferred);
    KT_CHECK(s.n_stages == 4 && s.depths[2] == 6 && s.dims[3] == 320 && s.conv_mlp);
    KT_CHECK(s.n_params == 3376446 && s.n_classes == 6 && s.head_in == 320 && !strcmp(s.dtypes, "BF16"));
    kt_st_close(&f);
}

KT_TEST(test_ckpt_inspect_variants_and_prefix) {
    /* Every timm variant name is recognised from its depths and dims; a near miss is not. */
    KT_CHECK(!strcmp(kt_convnext_variant_name((int[]){3, 3, 27, 3}, (int64_t[]){128, 256, 512, 1024}), "convnext_base"));
    KT_CHECK(!strcmp(kt_convnext_variant_name((int[]){3, 3, 9, 3}, (int64_t[]){96, 192, 384, 768}), "convnext_tiny"));
    KT_CHECK(!strcmp(kt_convnext_variant_name((int[]){2, 2, 8, 2}, (int64_t[]){80, 160, 320, 640}), "convnext_nano"));
    KT_CHECK(kt_convnext_variant_name((int[]){3, 3, 9, 3}, (int64_t[]){128, 256, 512, 1024}) == NULL);
    /* Parameters under "model." (a training script's wrapper) with 2-D MLP weights. */
    ckt_model m;
    ckt_atto_init(&m, 3, 1);
    for (int i = 0; i < m.n; i++) m.p[i].file_ndim = 0;
    kt_st_writer w;
    kt_st_writer_init(&w);
    kt_err err;
    KT_CHECK_OK(kt_model_add_to_writer(&w, "model.", m.p, m.n, KT_ST_F16, &err), &err);
    char path[4096];
    snprintf(path, sizeof path, "%s/wrapped.safetensors", kt_test_tmpdir());
    KT_REQUIRE_OK(kt_st_writer_save(&w, path, &err), &err);
    kt_st_writer_free(&w);
    kt_st_file f;
    KT_REQUIRE_OK(kt_st_open(&f, path, &err), &err);
    kt_ckpt_summary s;
    kt_ckpt_inspect(&f, &s);
    KT_CHECK(!strcmp(s.prefix, "model.") && !strcmp(s.inferred, "convnext_atto") && !s.conv_mlp && s.n_classes == 3);
    KT_CHECK(s.n_params == kt_params_count(m.p, m.n) && !strcmp(s.dtypes, "F16"));
    kt_st_close(&f);
    ckt_model_free(&m);
}

KT_TEST(test_info_cli_reads_pytorch_checkpoint) {
    int st;
    char args[4200];
    snprintf(args, sizeof args, "info '%s'", golden_weights());
    const char *out = run_cli(args, &st);
    KT_CHECK(st == 0, "exit %d: %s", st, out);
    KT_CHECK(strstr(out, "architecture    convnext_atto (inferred from names and shapes: depths 2,2,6,2, dims "
                         "40,80,160,320, 1x1-conv MLP)"), "%s", out);
    KT_CHECK(strstr(out, "parameters      3,376,446 (BF16) in 128 tensors"), "%s", out);
    KT_CHECK(strstr(out, "classes         6 (rows of head.fc.weight; names not stored)"), "%s", out);
    KT_CHECK(strstr(out, "format        pt"), "%s", out);
}

KT_TEST(test_info_cli_reads_our_checkpoint) {
    ckt_model m;
    ckt_atto_init(&m, 3, 1);
    kt_ckpt_meta meta;
    kt_ckpt_meta_init(&meta);
    kt_err err;
    const char *names[3] = {"healthy", "mild", "severe"};
    KT_CHECK_OK(kt_ckpt_meta_set_arch(&meta, "convnext_atto", &err), &err);
    KT_CHECK_OK(kt_ckpt_meta_set_classes(&meta, names, 3, &err), &err);
    meta.img_h = meta.img_w = 224;
    meta.has_norm = 1;
    meta.mean[0] = 0.485f, meta.mean[1] = 0.456f, meta.mean[2] = 0.406f;
    meta.std[0] = 0.229f, meta.std[1] = 0.224f, meta.std[2] = 0.225f;
    meta.epoch = 4;
    KT_CHECK_OK(kt_ckpt_meta_set_metrics(&meta, "{\"val_acc\":0.9}", &err), &err);
    char path[4096];
    snprintf(path, sizeof path, "%s/ours.safetensors", kt_test_tmpdir());
    KT_REQUIRE_OK(kt_model_save(path, m.p, m.n, KT_ST_F32, &meta, &err), &err);
    int st;
    char args[4200];
    snprintf(args, sizeof args, "info '%s'", path);
    const char *out = run_cli(args, &st);
    KT_CHECK(st == 0, "exit %d: %s", st, out);
    KT_CHECK(strstr(out, "architecture    convnext_atto (from metadata; depths 2,2,6,2"), "%s", out);
    KT_CHECK(strstr(out, "parameters      3,375,483 (F32)"), "%s", out);
    KT_CHECK(strstr(out, "classes         3: healthy, mild, severe"), "%s", out);
    KT_CHECK(strstr(out, "image size      224x224") && strstr(out, "mean / std      0.485 0.456 0.406 / 0.229"), "%s",
             out);
    KT_CHECK(strstr(out, "epoch           4") && strstr(out, "metrics         {\"val_acc\":0.9}"), "%s", out);
    /* metadata naming another variant than the tensors is pointed out */
    KT_CHECK_OK(kt_ckpt_meta_set_arch(&meta, "convnext_femto", &err), &err);
    KT_REQUIRE_OK(kt_model_save(path, m.p, m.n, KT_ST_BF16, &meta, &err), &err);
    out = run_cli(args, &st);
    KT_CHECK(st == 0 && strstr(out, "convnext_femto (from metadata; but the tensors look like convnext_atto"), "%s", out);
    kt_ckpt_meta_free(&meta);
    ckt_model_free(&m);
}

KT_TEST(test_info_cli_bad_files_and_usage) {
    int st;
    const char *out = run_cli("info /nonexistent/x.safetensors", &st);
    KT_CHECK(st == 1 && strstr(out, "keratrack info: cannot open /nonexistent/x.safetensors"), "%d %s", st, out);
    const char *bad = ckt_write_raw("bad.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                                    -1, 3);
    char args[4200];
    snprintf(args, sizeof args, "info '%s'", bad);
    out = run_cli(args, &st);
    KT_CHECK(st == 1 && strstr(out, "bad.safetensors: tensor 'w'") && strstr(out, "truncated"), "%d %s", st, out);
    out = run_cli("info a.safetensors b.safetensors", &st);
    KT_CHECK(st == 2 && strstr(out, "one checkpoint at a time"), "%d %s", st, out);
    out = run_cli("info --bogus", &st);
    KT_CHECK(st == 2 && strstr(out, "unknown option '--bogus'"), "%d %s", st, out);
    out = run_cli("info --help", &st);
    KT_CHECK(st == 0 && strstr(out, "inferred from timm's parameter names"), "%d %s", st, out);
}
