/* The predictor: checkpoint metadata drives the model and preprocessing; probabilities are a
 * softmax of the same forward graph; ensembles average; bad input is an error naming the file. */
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/fileio.h"
#include "checkpoints/ckpt_meta.h"
#include "datasets/augment.h"
#include "datasets/synth.h"
#include "engine/backend_cuda.h"
#include "kt_fixture.h"
#include "kt_test.h"
#include "nets/model.h"
#include "serve/predict.h"

static const char *names3[] = {"LEVEL_2", "LEVEL_3", "LEVEL_4"};

/* A convnext_atto checkpoint (3 classes, 64 px) and a tiny synthetic dataset to feed it. */
static int make_fixture(char *ckpt, char *img, size_t len, uint64_t seed, int classes) {
    kt_err err;
    const char *tmp = kt_test_tmpdir();
    snprintf(ckpt, len, "%s/model_%llu_%d.safetensors", tmp, (unsigned long long)seed, classes);
    if (!kt_fixture_atto_checkpoint(ckpt, names3, classes, 64, seed)) return 0;
    char ds[4096];
    snprintf(ds, sizeof ds, "%s/synth", tmp);
    if (!kt_dir_exists(ds)) {
        kt_synth_opts so;
        kt_synth_opts_default(&so);
        so.out = ds;
        so.classes = 3;
        so.per_class = 2;
        so.size = 80;
        if (kt_synth_write(&so, NULL, &err)) {
            kt_test_fail(__FILE__, __LINE__, "synth: %s", err.msg);
            return 0;
        }
    }
    /* any JPEG of the train split */
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "ls %s/train/*.jpg | head -n 1", ds);
    FILE *f = popen(cmd, "r");
    int ok = f && fgets(img, (int)len, f);
    if (f) pclose(f);
    if (ok) img[strcspn(img, "\n")] = 0;
    return ok;
}

KT_TEST(test_predict_matches_model_forward) {
    char ckpt[4096], img[4096];
    KT_REQUIRE(make_fixture(ckpt, img, sizeof ckpt, 7, 3), "fixture");
    kt_err err;
    kt_predictor *p;
    KT_REQUIRE_OK(kt_predictor_open(&p, (const char *[]){ckpt}, 1, "cpu", 0, &err), &err);
    KT_CHECK(kt_predictor_num_classes(p) == 3 && !strcmp(kt_predictor_class_name(p, 1), "LEVEL_3"), "classes from metadata");
    KT_CHECK(!strcmp(kt_predictor_arch(p), "convnext_atto") && kt_predictor_image_size(p) == 64, "arch and size from metadata");
    float pf[3], pb[3];
    KT_CHECK_OK(kt_predictor_run_files(p, (const char *[]){img}, 1, pf, &err), &err);
    char *bytes;
    size_t n;
    KT_REQUIRE_OK(kt_file_read(img, &bytes, &n, &err), &err);
    KT_CHECK_OK(kt_predictor_run_bytes(p, bytes, n, pb, &err), &err);
    KT_CHECK(fabsf(pf[0] + pf[1] + pf[2] - 1.0f) < 1e-5f, "probabilities sum to 1");
    for (int c = 0; c < 3; c++) KT_CHECK(pf[c] == pb[c], "file and bytes paths agree: %g vs %g", pf[c], pb[c]);
    /* the same through a model built by hand: eval preprocessing + forward + softmax */
    kt_model m;
    kt_model_opts o = {.arch = "convnext_atto", .num_classes = 3, .batch = 1, .img_h = 64, .img_w = 64};
    KT_REQUIRE_OK(kt_model_create(&m, &o, NULL, &err), &err);
    KT_CHECK_OK(kt_model_load_weights(&m, ckpt, 0, NULL, &err), &err);
    kt_aug_config cfg;
    kt_aug_ctx ctx;
    kt_aug_default_eval(&cfg, 64);
    kt_aug_ctx_init(&ctx, &err);
    KT_CHECK_OK(kt_aug_run(&ctx, &cfg, 0, (const uint8_t *)bytes, n, kt_node_f32(m.input), &err), &err);
    KT_CHECK_OK(kt_graph_forward(&m.g, &err), &err);
    const float *z = kt_node_f32(m.logits);
    double mx = fmax(z[0], fmax(z[1], z[2])), sum = exp(z[0] - mx) + exp(z[1] - mx) + exp(z[2] - mx);
    for (int c = 0; c < 3; c++) KT_CHECK_NEAR(pf[c], exp(z[c] - mx) / sum, 1e-6);
    /* a non-image body is an error, not a crash */
    KT_CHECK(kt_predictor_run_bytes(p, "not an image", 12, pb, &err) != KT_OK, "text accepted as an image");
    KT_CHECK(kt_predictor_run_files(p, (const char *[]){"/nonexistent/x.jpg"}, 1, pb, &err) != KT_OK &&
                 strstr(err.msg, "/nonexistent/x.jpg"),
             "missing file named: %s", err.msg);
    kt_aug_ctx_free(&ctx);
    kt_model_free(&m);
    free(bytes);
    kt_predictor_free(p);
}

KT_TEST(test_predict_ensemble_averages) {
    char c1[4096], c2[4096], img[4096], c4[4096];
    KT_REQUIRE(make_fixture(c1, img, sizeof c1, 1, 3) && make_fixture(c2, img, sizeof c2, 2, 3), "fixtures");
    kt_err err;
    kt_predictor *a, *b, *e;
    KT_REQUIRE_OK(kt_predictor_open(&a, (const char *[]){c1}, 1, "cpu", 0, &err), &err);
    KT_REQUIRE_OK(kt_predictor_open(&b, (const char *[]){c2}, 1, "cpu", 0, &err), &err);
    KT_REQUIRE_OK(kt_predictor_open_batched(&e, (const char *[]){c1, c2}, 2, "cpu", 0, 2, &err), &err);
    float pa[3], pb[3], pe[6];
    kt_predictor_run_files(a, (const char *[]){img}, 1, pa, &err);
    kt_predictor_run_files(b, (const char *[]){img}, 1, pb, &err);
    KT_CHECK_OK(kt_predictor_run_files(e, (const char *[]){img, img}, 2, pe, &err), &err);
    for (int c = 0; c < 3; c++) {
        KT_CHECK_NEAR(pe[c], 0.5 * (pa[c] + pb[c]), 1e-6);
        KT_CHECK(fabsf(pe[c] - pe[3 + c]) < 1e-6f, "same image twice in a batch: %.9g vs %.9g", pe[c], pe[3 + c]);
    }
    KT_CHECK(fabsf(pa[0] - pb[0]) > 1e-4f, "differently seeded models should disagree");
    /* an ensemble mixing class counts is refused with both files named */
    kt_predictor_free(a);
    kt_predictor_free(b);
    kt_predictor_free(e);
    KT_REQUIRE(make_fixture(c4, img, sizeof c4, 3, 2), "fixture");
    KT_CHECK(kt_predictor_open(&e, (const char *[]){c1, c4}, 2, "cpu", 0, &err) == KT_ERR_ARG && strstr(err.msg, c4),
             "mixed ensemble error: %s", err.msg);
    /* errors of the checkpoints are not device errors (the CLI's hint then points at the files) */
    KT_CHECK(!kt_predictor_device_error(&err), "a checkpoint error taken for a device error: %s", err.msg);
    KT_CHECK(kt_predictor_open(&e, (const char *[]){"/nonexistent/ckpt.safetensors"}, 1, "cpu", 0, &err) != KT_OK &&
                 !kt_predictor_device_error(&err),
             "a missing checkpoint taken for a device error: %s", err.msg);
    KT_CHECK(kt_predictor_open(&e, (const char *[]){c1}, 1, "tpu", 0, &err) == KT_ERR_ARG && kt_predictor_device_error(&err) &&
                 strstr(err.msg, "'tpu'"),
             "unknown device refused as a device error naming it: %s", err.msg);
    /* without a GPU, "cuda" is refused with the reason and "auto" falls back to the CPU */
    if (!kt_backend_cuda_available()) {
        KT_CHECK(kt_predictor_open(&e, (const char *[]){c1}, 1, "cuda", 0, &err) != KT_OK && kt_predictor_device_error(&err) &&
                     strlen(err.msg) > strlen("device cuda: "),
                 "cuda without a GPU: a device error with its reason: %s", err.msg);
        KT_REQUIRE_OK(kt_predictor_open(&e, (const char *[]){c1}, 1, "auto", 0, &err), &err);
        KT_CHECK(!strcmp(kt_predictor_device(e), "cpu"), "auto without a GPU runs on %s", kt_predictor_device(e));
        kt_predictor_free(e);
    }
}

KT_TEST(test_predict_gradcam_png) {
    char ckpt[4096], img[4096], out[4200];
    KT_REQUIRE(make_fixture(ckpt, img, sizeof ckpt, 5, 3), "fixture");
    kt_err err;
    kt_predictor *p;
    KT_REQUIRE_OK(kt_predictor_open(&p, (const char *[]){ckpt}, 1, "cpu", 0, &err), &err);
    snprintf(out, sizeof out, "%s/cam.png", kt_test_tmpdir());
    int cls = -1;
    KT_CHECK_OK(kt_predictor_gradcam(p, img, -1, out, &cls, &err), &err);
    float pr[3];
    kt_predictor_run_files(p, (const char *[]){img}, 1, pr, &err);
    int best = pr[1] > pr[0] ? 1 : 0;
    best = pr[2] > pr[best] ? 2 : best;
    KT_CHECK(cls == best, "Grad-CAM explains the predicted class %d (got %d)", best, cls);
    char *png;
    size_t n;
    KT_REQUIRE_OK(kt_file_read(out, &png, &n, &err), &err);
    KT_CHECK(n > 1000 && !memcmp(png, "\x89PNG", 4), "a PNG was written (%zu bytes)", n);
    free(png);
    KT_CHECK(kt_predictor_gradcam(p, img, 7, out, &cls, &err) == KT_ERR_ARG, "class out of range refused");
    kt_predictor_free(p);
}

/* `serve --model-threads N`: predictions run in the HTTP server's worker threads, and OpenMP's team
 * size is each thread's own setting, so the predictor must apply N in the thread that calls it
 * (it was set only in the thread that opened it, and ignored). */
typedef struct {
    kt_predictor *p;
    const char *img;
    int before, after;
    kt_status st;
} worker_arg;

static void *worker(void *a_) {
    worker_arg *a = a_;
    omp_set_num_threads(2); /* a worker thread's own default, not the predictor's */
    a->before = omp_get_max_threads();
    float probs[3];
    kt_err err;
    a->st = kt_predictor_run_files(a->p, (const char *[]){a->img}, 1, probs, &err);
    a->after = omp_get_max_threads();
    return NULL;
}

KT_TEST(test_predict_model_threads_apply_in_the_calling_thread) {
    char ckpt[4096], img[4096];
    KT_REQUIRE(make_fixture(ckpt, img, sizeof ckpt, 7, 3), "fixture");
    kt_err err;
    kt_predictor *p;
    KT_REQUIRE_OK(kt_predictor_open(&p, (const char *[]){ckpt}, 1, "cpu", 1, &err), &err);
    worker_arg a = {.p = p, .img = img};
    pthread_t th;
    KT_REQUIRE(pthread_create(&th, NULL, worker, &a) == 0);
    pthread_join(th, NULL);
    KT_CHECK(a.st == KT_OK && a.before == 2, "run: status %d, worker's own setting %d", (int)a.st, a.before);
    KT_CHECK(a.after == 1, "the worker thread ran with %d OpenMP threads, not the predictor's 1", a.after);
    kt_predictor_free(p);
}

/* the seed-7 checkpoint and up to max JPEGs of the fixture's synthetic dataset (all splits), in
 * `ls` order; returns how many (0: no fixture) */
static int fixture_images(char *ckpt, char paths[][4096], int max) {
    char img[4096], cmd[4200];
    if (!make_fixture(ckpt, img, 4096, 7, 3)) return 0;
    snprintf(cmd, sizeof cmd, "ls %s/synth/*/*.jpg | head -n %d", kt_test_tmpdir(), max);
    FILE *f = popen(cmd, "r");
    int n = 0;
    while (f && n < max && fgets(paths[n], 4096, f)) paths[n][strcspn(paths[n], "\n")] = 0, n++;
    if (f) pclose(f);
    return n;
}

/* Files are decoded in parallel, a batch at a time: every image's probabilities must still be its
 * own (a swap of two decoded images would put one image's answer on another's name), whatever the
 * batch size and the thread count. The reference is each image alone through the bytes path. */
KT_TEST(test_predict_parallel_decoding_keeps_each_images_answer) {
    char ckpt[4096], paths[8][4096];
    int n = fixture_images(ckpt, paths, 8);
    KT_REQUIRE(n >= 6, "only %d fixture images", n);
    const char *list[11];
    for (int i = 0; i < 11; i++) list[i] = paths[(i * 5) % n]; /* repeats, out of order, 11 = 2 full batches of 4 + 3 */
    kt_err err;
    kt_predictor *one;
    KT_REQUIRE_OK(kt_predictor_open(&one, (const char *[]){ckpt}, 1, "cpu", 1, &err), &err);
    float ref[8][3];
    for (int i = 0; i < n; i++) {
        char *bytes;
        size_t len;
        KT_REQUIRE_OK(kt_file_read(paths[i], &bytes, &len, &err), &err);
        KT_CHECK_OK(kt_predictor_run_bytes(one, bytes, len, ref[i], &err), &err);
        free(bytes);
    }
    double spread = 0; /* the images must be told apart for a swap to show */
    for (int i = 1; i < n; i++) spread = fmax(spread, fabs(ref[i][0] - ref[0][0]));
    KT_CHECK(spread > 1e-3, "the fixture images give nearly the same answer (spread %.3g): a swap would not show", spread);
    for (int threads = 1; threads <= 3; threads += 2) {
        kt_predictor *p;
        KT_REQUIRE_OK(kt_predictor_open_batched(&p, (const char *[]){ckpt}, 1, "cpu", threads, 4, &err), &err);
        float probs[11 * 3];
        KT_CHECK_OK(kt_predictor_run_files(p, list, 11, probs, &err), &err);
        for (int i = 0; i < 11; i++) {
            const float *want = ref[(i * 5) % n];
            for (int c = 0; c < 3; c++)
                KT_CHECK(fabsf(probs[i * 3 + c] - want[c]) < 1e-5f, "%d threads, image %d (%s) class %d: %.7g, alone %.7g", threads, i,
                         list[i], c, probs[i * 3 + c], want[c]);
        }
        kt_predictor_free(p);
    }
    kt_predictor_free(one);
}

/* Of several files that cannot be read, the error names the first in the list, although the batch
 * is decoded in parallel and a later one may fail first. */
KT_TEST(test_predict_parallel_decoding_names_the_first_bad_file) {
    char ckpt[4096], img[4096], bad[4096];
    KT_REQUIRE(make_fixture(ckpt, img, sizeof ckpt, 7, 3), "fixture");
    snprintf(bad, sizeof bad, "%s/not_an_image.jpg", kt_test_tmpdir());
    kt_err err;
    KT_REQUIRE_OK(kt_file_write_atomic(bad, "plain text, not a JPEG", 22, &err), &err);
    kt_predictor *p;
    KT_REQUIRE_OK(kt_predictor_open_batched(&p, (const char *[]){ckpt}, 1, "cpu", 3, 4, &err), &err);
    float probs[8 * 3];
    for (int rep = 0; rep < 5; rep++) {
        KT_CHECK(kt_predictor_run_files(p, (const char *[]){img, img, bad, "/nonexistent/x.jpg", img, img}, 6, probs, &err) != KT_OK &&
                     strstr(err.msg, bad) && !strstr(err.msg, "/nonexistent"),
                 "error of the first bad file: %s", err.msg);
        KT_CHECK(kt_predictor_run_files(p, (const char *[]){img, img, img, img, img, "/nonexistent/x.jpg"}, 6, probs, &err) != KT_OK &&
                     strstr(err.msg, "/nonexistent/x.jpg"),
                 "a bad file in the second batch: %s", err.msg);
    }
    /* and the predictor still answers afterwards */
    KT_CHECK_OK(kt_predictor_run_files(p, (const char *[]){img}, 1, probs, &err), &err);
    kt_predictor_free(p);
}

/* The server's workers call run_bytes at once: each decodes beside the others' forwards (outside the
 * predictor's lock), and each must get its own image's answer, bit for bit the answer it gets alone. */
typedef struct {
    kt_predictor *p;
    char *bytes[8];
    size_t len[8];
    int n, start;
    float probs[24][3];
    kt_status st;
} bytes_worker;

static void *bytes_run(void *a_) {
    bytes_worker *a = a_;
    kt_err err;
    for (int r = 0; r < 24 && !a->st; r++) {
        int i = (a->start + r) % a->n;
        a->st = kt_predictor_run_bytes(a->p, a->bytes[i], a->len[i], a->probs[r], &err);
    }
    return NULL;
}

/* Starts 4 bytes_run workers on p over the n images (bytes shared, read-only), worker t from image t. */
static int start_workers(bytes_worker w[4], pthread_t th[4], kt_predictor *p, char *const *bytes, const size_t *len, int n) {
    memset(w, 0, 4 * sizeof *w);
    for (int t = 0; t < 4; t++) {
        w[t].p = p, w[t].n = n, w[t].start = t;
        for (int i = 0; i < n; i++) w[t].bytes[i] = bytes[i], w[t].len[i] = len[i];
    }
    for (int t = 0; t < 4; t++)
        if (pthread_create(&th[t], NULL, bytes_run, &w[t])) return 0;
    return 1;
}

/* the n fixture images' bytes */
static int read_all(char paths[][4096], int n, char **bytes, size_t *len) {
    kt_err err;
    for (int i = 0; i < n; i++)
        if (kt_file_read(paths[i], &bytes[i], &len[i], &err)) {
            kt_test_fail(__FILE__, __LINE__, "%s", err.msg);
            return 0;
        }
    return 1;
}

KT_TEST(test_predict_concurrent_callers_get_their_own_answers) {
    char ckpt[4096], paths[8][4096];
    int n = fixture_images(ckpt, paths, 8);
    KT_REQUIRE(n >= 6, "only %d fixture images", n);
    kt_err err;
    kt_predictor *p;
    KT_REQUIRE_OK(kt_predictor_open(&p, (const char *[]){ckpt}, 1, "cpu", 1, &err), &err);
    char *bytes[8];
    size_t len[8];
    KT_REQUIRE(read_all(paths, n, bytes, len), "images");
    float alone[8][3];
    for (int i = 0; i < n; i++) KT_REQUIRE_OK(kt_predictor_run_bytes(p, bytes[i], len[i], alone[i], &err), &err);
    bytes_worker w[4];
    pthread_t th[4];
    KT_REQUIRE(start_workers(w, th, p, bytes, len, n), "threads");
    for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < 4; t++) {
        KT_CHECK(w[t].st == KT_OK, "worker %d failed with status %d", t, (int)w[t].st);
        for (int r = 0; r < 24 && w[t].st == KT_OK; r++) {
            int i = (t + r) % n;
            KT_CHECK(!memcmp(w[t].probs[r], alone[i], sizeof alone[0]), "worker %d, call %d (image %d): %.7g %.7g %.7g, alone %.7g %.7g %.7g", t,
                     r, i, w[t].probs[r][0], w[t].probs[r][1], w[t].probs[r][2], alone[i][0], alone[i][1], alone[i][2]);
        }
    }
    for (int i = 0; i < n; i++) free(bytes[i]);
    kt_predictor_free(p);
}

/* The timed call's stages: a decode and a forward that took time, no wait when alone, and on a
 * bad image only the decode (nothing after it ran). */
KT_TEST(test_predict_timed_stages) {
    char ckpt[4096], img[4096];
    KT_REQUIRE(make_fixture(ckpt, img, sizeof ckpt, 7, 3), "fixture");
    kt_err err;
    kt_predictor *p;
    KT_REQUIRE_OK(kt_predictor_open(&p, (const char *[]){ckpt}, 1, "cpu", 1, &err), &err);
    char *bytes;
    size_t n;
    KT_REQUIRE_OK(kt_file_read(img, &bytes, &n, &err), &err);
    float a[3], b[3];
    kt_predict_times t;
    KT_CHECK_OK(kt_predictor_run_bytes_timed(p, bytes, n, a, &t, &err), &err);
    KT_CHECK(t.decode > 0 && t.forward > 0 && t.wait >= 0, "decode %g, wait %g, forward %g", t.decode, t.wait, t.forward);
    KT_CHECK_OK(kt_predictor_run_bytes(p, bytes, n, b, &err), &err);
    KT_CHECK(!memcmp(a, b, sizeof a), "the timed call answers as the plain one");
    KT_CHECK(kt_predictor_run_bytes_timed(p, "not an image", 12, a, &t, &err) != KT_OK, "text accepted");
    KT_CHECK(t.decode > 0 && t.wait == 0 && t.forward == 0, "a refused image: decode %g, wait %g, forward %g", t.decode, t.wait,
             t.forward);
    free(bytes);
    kt_predictor_free(p);
}

/* Decodes side by side stay within the pixel budget (a full decode holds 3 bytes a pixel): with a
 * budget under two fixture images (80x80 each), never two at once, from 4 threads and a parallel
 * batch; a budget under one image still lets each decode, alone; the answers stay each image's. */
KT_TEST(test_predict_decode_budget_bounds_concurrent_decodes) {
    char ckpt[4096], paths[8][4096];
    int n = fixture_images(ckpt, paths, 8);
    KT_REQUIRE(n >= 6, "only %d fixture images", n);
    kt_err err;
    char *bytes[8];
    size_t len[8];
    KT_REQUIRE(read_all(paths, n, bytes, len), "images");
    for (int budget = 1000; budget <= 10000; budget += 9000) {
        kt_predictor *p;
        KT_REQUIRE_OK(kt_predictor_open_batched(&p, (const char *[]){ckpt}, 1, "cpu", 2, 4, &err), &err);
        kt_predictor_set_decode_budget(p, budget);
        bytes_worker w[4];
        pthread_t th[4];
        KT_REQUIRE(start_workers(w, th, p, bytes, len, n), "threads");
        const char *list[8];
        for (int i = 0; i < 8; i++) list[i] = paths[i % n];
        float probs[8 * 3];
        KT_CHECK_OK(kt_predictor_run_files(p, list, 8, probs, &err), &err);
        for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
        for (int t = 0; t < 4; t++) KT_CHECK(w[t].st == KT_OK, "budget %d: worker %d failed with status %d", budget, t, (int)w[t].st);
        KT_CHECK(kt_predictor_decode_peak(p) == 80 * 80, "budget %d: %lld pixels decoded at once, want one 80x80 image", budget,
                 (long long)kt_predictor_decode_peak(p));
        kt_predictor_free(p);
    }
    for (int i = 0; i < n; i++) free(bytes[i]);
}

/* Request batching: with the forwards held, 6 callers queue up; let go, they are answered by two
 * forwards (4 through the batch-4 graph, then 2), each with its own image's answer (to float
 * noise: another batch size blocks the GEMMs otherwise) and its batch in the timings. */
typedef struct {
    kt_predictor *p;
    const char *bytes;
    size_t len;
    float probs[3];
    kt_predict_times t;
    kt_status st;
} one_call;

static void *one_run(void *a_) {
    one_call *a = a_;
    kt_err err;
    a->st = kt_predictor_run_bytes_timed(a->p, a->bytes, a->len, a->probs, &a->t, &err);
    return NULL;
}

KT_TEST(test_predict_batching_groups_waiting_requests) {
    char ckpt[4096], paths[8][4096];
    int n = fixture_images(ckpt, paths, 8);
    KT_REQUIRE(n >= 6, "only %d fixture images", n);
    kt_err err;
    kt_predictor *alone, *p;
    KT_REQUIRE_OK(kt_predictor_open(&alone, (const char *[]){ckpt}, 1, "cpu", 1, &err), &err);
    KT_REQUIRE_OK(kt_predictor_open(&p, (const char *[]){ckpt}, 1, "cpu", 1, &err), &err);
    KT_REQUIRE_OK(kt_predictor_set_max_batch(p, 4, &err), &err);
    KT_CHECK(kt_predictor_set_max_batch(p, 8, &err) == KT_ERR_STATE, "batching set up twice");
    char *bytes[6];
    size_t len[6];
    float ref[6][3];
    for (int i = 0; i < 6; i++) {
        KT_REQUIRE_OK(kt_file_read(paths[i], &bytes[i], &len[i], &err), &err);
        KT_REQUIRE_OK(kt_predictor_run_bytes(alone, bytes[i], len[i], ref[i], &err), &err);
    }
    /* alone through the batching predictor: the batch-1 graph, the same bits */
    float solo[3];
    KT_CHECK_OK(kt_predictor_run_bytes(p, bytes[0], len[0], solo, &err), &err);
    KT_CHECK(!memcmp(solo, ref[0], sizeof solo), "a lone request must run the batch-1 graph");
    kt_predictor_hold_batches(p, 1);
    one_call c[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        c[i] = (one_call){.p = p, .bytes = bytes[i], .len = len[i]};
        KT_REQUIRE(pthread_create(&th[i], NULL, one_run, &c[i]) == 0, "thread");
    }
    int queued = 0;
    for (int spin = 0; spin < 3000 && queued < 6; spin++) { /* decoding runs first, then they queue */
        kt_predictor_batch_stats(p, NULL, NULL, &queued);
        if (queued < 6) usleep(1000);
    }
    KT_CHECK(queued == 6, "%d of 6 requests queued while held", queued);
    long long f0, a0;
    kt_predictor_batch_stats(p, &f0, &a0, NULL);
    kt_predictor_hold_batches(p, 0);
    for (int i = 0; i < 6; i++) pthread_join(th[i], NULL);
    long long f1, a1;
    kt_predictor_batch_stats(p, &f1, &a1, &queued);
    KT_CHECK(f1 - f0 == 2 && a1 - a0 == 6 && queued == 0, "6 queued requests took %lld forwards for %lld answers (%d left)", f1 - f0,
             a1 - a0, queued);
    int fours = 0, twos = 0;
    for (int i = 0; i < 6; i++) {
        KT_CHECK(c[i].st == KT_OK, "request %d: status %d", i, (int)c[i].st);
        fours += c[i].t.batch == 4, twos += c[i].t.batch == 2;
        KT_CHECK(c[i].t.forward > 0 && c[i].t.wait > 0, "request %d: wait %g, forward %g", i, c[i].t.wait, c[i].t.forward);
        for (int k = 0; k < 3; k++)
            KT_CHECK(fabsf(c[i].probs[k] - ref[i][k]) < 1e-5f, "request %d class %d: batched %.7g, alone %.7g", i, k, c[i].probs[k],
                     ref[i][k]);
    }
    KT_CHECK(fours == 4 && twos == 2, "batches seen: %d requests in 4s, %d in 2s", fours, twos);
    /* and under free-running load: 4 threads x 24 requests, every answer its image's */
    bytes_worker w[4];
    KT_REQUIRE(start_workers(w, th, p, bytes, len, 6), "threads");
    for (int t = 0; t < 4; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < 4; t++) {
        KT_CHECK(w[t].st == KT_OK, "worker %d: status %d", t, (int)w[t].st);
        for (int r = 0; r < 24 && w[t].st == KT_OK; r++) {
            int i = (t + r) % 6;
            for (int k = 0; k < 3; k++)
                KT_CHECK(fabsf(w[t].probs[r][k] - ref[i][k]) < 1e-5f, "worker %d call %d (image %d) class %d: %.7g, alone %.7g", t, r, i,
                         k, w[t].probs[r][k], ref[i][k]);
        }
    }
    for (int i = 0; i < 6; i++) free(bytes[i]);
    kt_predictor_free(p);
    kt_predictor_free(alone);
}

KT_TEST(test_predict_batching_settings) {
    char ckpt[4096], img[4096];
    KT_REQUIRE(make_fixture(ckpt, img, sizeof ckpt, 7, 3), "fixture");
    kt_err err;
    kt_predictor *p;
    KT_REQUIRE_OK(kt_predictor_open_batched(&p, (const char *[]){ckpt}, 1, "cpu", 1, 4, &err), &err);
    KT_CHECK(kt_predictor_set_max_batch(p, 4, &err) == KT_ERR_ARG && strstr(err.msg, "batch 1"), "a batch-4 predictor: %s", err.msg);
    KT_CHECK(kt_predictor_set_max_batch(p, 0, &err) == KT_ERR_ARG, "max batch 0");
    KT_CHECK(kt_predictor_set_max_batch(p, KT_PREDICT_MAX_BATCH + 1, &err) == KT_ERR_ARG, "max batch over the limit");
    KT_CHECK_OK(kt_predictor_set_max_batch(p, 1, &err), &err); /* off: nothing to build */
    kt_predictor_free(p);
}

/* A checkpoint of a multi-label run ("task": "multi_label" in its metadata, as keratrack train
 * writes it) is answered with per-class sigmoids of the logits, not a softmax; an ensemble of a
 * multi-label and a single-label model of the same classes is refused, naming both. */
static int save_smallcnn(const char *path, const char *task, uint64_t seed) {
    kt_model m;
    kt_model_opts o = {.arch = "smallcnn", .num_classes = 3, .batch = 1, .img_h = 32, .img_w = 32};
    kt_err err = {0};
    kt_ckpt_meta meta;
    kt_ckpt_meta_init(&meta);
    meta.img_h = meta.img_w = 32;
    int ok = !kt_model_create(&m, &o, NULL, &err) && !kt_model_init_weights(&m, seed, &err) &&
             !kt_ckpt_meta_set_classes(&meta, names3, 3, &err) && !kt_ckpt_meta_set_extra(&meta, "task", task, &err) &&
             !kt_model_save_weights(&m, path, &meta, &err);
    if (!ok) kt_test_fail(__FILE__, __LINE__, "checkpoint %s: %s", path, err.msg);
    kt_model_free(&m);
    kt_ckpt_meta_free(&meta);
    return ok;
}

KT_TEST(test_predict_multilabel_sigmoids) {
    char ckpt[4096], img[4096], ml[4200], sl[4200];
    KT_REQUIRE(make_fixture(ckpt, img, sizeof ckpt, 7, 3), "fixture");
    snprintf(ml, sizeof ml, "%s/smallcnn_ml.safetensors", kt_test_tmpdir());
    snprintf(sl, sizeof sl, "%s/smallcnn_sl.safetensors", kt_test_tmpdir());
    KT_REQUIRE(save_smallcnn(ml, "multi_label", 5) && save_smallcnn(sl, "single_label", 6), "checkpoints");
    kt_err err;
    kt_predictor *p;
    KT_REQUIRE_OK(kt_predictor_open(&p, (const char *[]){ml}, 1, "cpu", 1, &err), &err);
    KT_CHECK(kt_predictor_multilabel(p) == 1, "the task metadata was not read");
    char *bytes;
    size_t n;
    KT_REQUIRE_OK(kt_file_read(img, &bytes, &n, &err), &err);
    float pr[3];
    KT_CHECK_OK(kt_predictor_run_bytes(p, bytes, n, pr, &err), &err);
    /* the same image through a model built by hand: eval preprocessing, forward, sigmoid per class */
    kt_model m;
    kt_model_opts o = {.arch = "smallcnn", .num_classes = 3, .batch = 1, .img_h = 32, .img_w = 32};
    KT_REQUIRE_OK(kt_model_create(&m, &o, NULL, &err), &err);
    KT_CHECK_OK(kt_model_load_weights(&m, ml, 0, NULL, &err), &err);
    kt_aug_config cfg;
    kt_aug_ctx ctx;
    kt_aug_default_eval(&cfg, 32);
    kt_aug_ctx_init(&ctx, &err);
    KT_CHECK_OK(kt_aug_run(&ctx, &cfg, 0, (const uint8_t *)bytes, n, kt_node_f32(m.input), &err), &err);
    KT_CHECK_OK(kt_graph_forward(&m.g, &err), &err);
    const float *z = kt_node_f32(m.logits);
    for (int c = 0; c < 3; c++) KT_CHECK_NEAR(pr[c], 1.0 / (1.0 + exp(-(double)z[c])), 1e-6);
    kt_predictor_free(p);
    /* the single-label twin: a softmax (sums to 1) */
    KT_REQUIRE_OK(kt_predictor_open(&p, (const char *[]){sl}, 1, "cpu", 1, &err), &err);
    KT_CHECK(kt_predictor_multilabel(p) == 0, "single-label read as multi-label");
    KT_CHECK_OK(kt_predictor_run_bytes(p, bytes, n, pr, &err), &err);
    KT_CHECK(fabsf(pr[0] + pr[1] + pr[2] - 1.0f) < 1e-5f, "softmax sums to %g", pr[0] + pr[1] + pr[2]);
    kt_predictor_free(p);
    KT_CHECK(kt_predictor_open(&p, (const char *[]){sl, ml}, 2, "cpu", 1, &err) == KT_ERR_ARG && strstr(err.msg, ml) &&
                 strstr(err.msg, sl) && strstr(err.msg, "multi-label"),
             "a mixed ensemble: %s", err.msg);
    kt_aug_ctx_free(&ctx);
    kt_model_free(&m);
    free(bytes);
}
