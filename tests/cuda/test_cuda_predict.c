/* `keratrack predict` and `serve` run on the GPU when one is present (device "cuda" or "auto"): the
 * predictor's probabilities, fold ensembles and Grad-CAM pictures there against the same predictor
 * on the CPU, and one GPU predictor shared by threads as the server's workers share it. */
#include <glob.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "cuda_twin.h"
#include "datasets/image.h"
#include "datasets/synth.h"
#include "engine/backend_cuda.h"
#include "kt_fixture.h"
#include "kt_test.h"
#include "serve/predict.h"
#ifdef KT_HAVE_CUDA
#include "kernels/cuda/kt_cuda.h"

/* a convnext_atto checkpoint (3 classes, 64 px) in the test folder */
static int atto_checkpoint(char *path, size_t len, uint64_t seed) {
    static const char *names[] = {"LEVEL_2", "LEVEL_3", "LEVEL_4"};
    snprintf(path, len, "%s/cuda_predict_%llu.safetensors", kt_test_tmpdir(), (unsigned long long)seed);
    return kt_fixture_atto_checkpoint(path, names, 3, 64, seed);
}

/* mean and largest |a - b| over two decoded PNGs of the same size, in 0..255 steps */
static int png_diff(const char *a, const char *b, double *mean, int *worst) {
    kt_err err;
    kt_decoder d;
    kt_image ia, ib;
    kt_image_init(&ia);
    kt_image_init(&ib);
    int have_decoder = !kt_decoder_init(&d, &err), ok = have_decoder;
    kt_decode_opts o = {0};
    ok = ok && !kt_image_load(&d, a, &o, &ia, &err) && !kt_image_load(&d, b, &o, &ib, &err) && ia.w == ib.w && ia.h == ib.h;
    double sum = 0;
    *worst = 0;
    size_t n = ok ? (size_t)ia.w * (size_t)ia.h * 3 : 0;
    for (size_t i = 0; i < n; i++) {
        int v = abs((int)ia.px[i] - (int)ib.px[i]);
        sum += v;
        *worst = v > *worst ? v : *worst;
    }
    *mean = n ? sum / (double)n : 0;
    kt_image_free(&ia);
    kt_image_free(&ib);
    if (have_decoder) kt_decoder_free(&d); /* also when a load failed */
    return ok;
}

/* one server worker: four uploads of the same image, each compared with the file path's result */
typedef struct upload_job {
    kt_predictor *p;
    const char *bytes;
    size_t n;
    const float *want;
    int bad;
    kt_err err;
} upload_job;

static void *upload_worker(void *arg) {
    upload_job *j = arg;
    for (int i = 0; i < 4; i++) {
        float got[3];
        if (kt_predictor_run_bytes(j->p, j->bytes, j->n, got, &j->err) || memcmp(got, j->want, sizeof got)) j->bad++;
    }
    return NULL;
}

KT_TEST(test_cuda_predictor_matches_cpu) {
    (void)kt_twin_backend(); /* skips the test (one line) without a GPU */
    kt_err err;
    char c1[4096], c2[4096], ds[4096];
    KT_REQUIRE(atto_checkpoint(c1, sizeof c1, 11) && atto_checkpoint(c2, sizeof c2, 12), "checkpoints");
    snprintf(ds, sizeof ds, "%s/cuda_predict_synth", kt_test_tmpdir());
    if (!kt_dir_exists(ds)) {
        kt_synth_opts so;
        kt_synth_opts_default(&so);
        so.out = ds, so.classes = 3, so.per_class = 1, so.size = 80;
        KT_REQUIRE_OK(kt_synth_write(&so, NULL, &err), &err);
    }
    char pat[4200];
    snprintf(pat, sizeof pat, "%s/train/*.jpg", ds);
    glob_t gl;
    KT_REQUIRE(glob(pat, 0, NULL, &gl) == 0 && gl.gl_pathc >= 3, "three synthetic images under %s", pat);
    const char *imgs[3] = {gl.gl_pathv[0], gl.gl_pathv[1], gl.gl_pathv[2]};

    /* a two-checkpoint ensemble, two images per forward pass: three images make a full and a partial batch */
    kt_predictor *cpu = NULL, *gpu = NULL, *any = NULL;
    const char *ens[2] = {c1, c2};
    KT_REQUIRE_OK(kt_predictor_open_batched(&cpu, ens, 2, "cpu", 0, 2, &err), &err);
    KT_REQUIRE_OK(kt_predictor_open_batched(&gpu, ens, 2, "cuda", 0, 2, &err), &err);
    KT_CHECK(!strcmp(kt_predictor_device(gpu), "cuda"), "device %s", kt_predictor_device(gpu));
    float pc[9], pg[9], pb[3];
    KT_CHECK_OK(kt_predictor_run_files(cpu, imgs, 3, pc, &err), &err);
    KT_CHECK_OK(kt_predictor_run_files(gpu, imgs, 3, pg, &err), &err);
    /* fp32 on both (the CUDA backend's default: no TF32): the probabilities agree to float rounding */
    double worst = 0, spread = 0;
    for (int i = 0; i < 9; i++) {
        worst = fmax(worst, fabs((double)pc[i] - pg[i]));
        spread = fmax(spread, fabs((double)pc[i] - pc[(i / 3) * 3]));
    }
    KT_CHECK(worst <= 1e-5, "ensemble probabilities on the GPU differ from the CPU's by %.3g", worst);
    KT_CHECK(spread > 1e-3, "the fixture gives nearly equal probabilities (%.3g): the comparison would say little", spread);
    printf("  predictor: 3 images x 2 checkpoints, probabilities within %.2g of the CPU's\n", worst);
    /* an uploaded image (the server's path) gives the file path's result */
    char *bytes = NULL;
    size_t n = 0;
    KT_REQUIRE_OK(kt_file_read(imgs[1], &bytes, &n, &err), &err);
    KT_CHECK_OK(kt_predictor_run_bytes(gpu, bytes, n, pb, &err), &err);
    for (int c = 0; c < 3; c++) KT_CHECK(pb[c] == pg[3 + c], "upload vs file on the GPU, class %d: %.9g vs %.9g", c, pb[c], pg[3 + c]);
    /* the server's worker threads share one predictor (and so one CUDA context and stream) */
    upload_job jobs[3];
    pthread_t th[3];
    int started = 0;
    for (int t = 0; t < 3; t++) {
        jobs[t] = (upload_job){.p = gpu, .bytes = bytes, .n = n, .want = pg + 3, .bad = 0};
        started += pthread_create(&th[t], NULL, upload_worker, &jobs[t]) == 0;
    }
    KT_CHECK(started == 3, "threads: %d of 3 started", started);
    for (int t = 0; t < started; t++) {
        pthread_join(th[t], NULL);
        KT_CHECK(jobs[t].bad == 0, "worker thread %d: %d of 4 uploads failed or differed (%s)", t, jobs[t].bad, jobs[t].err.msg);
    }
    free(bytes);
    kt_predictor_free(cpu);
    kt_predictor_free(gpu);

    /* "auto" takes the GPU when there is one (serve's default) */
    KT_REQUIRE_OK(kt_predictor_open(&any, (const char *[]){c1}, 1, "auto", 0, &err), &err);
    KT_CHECK(!strcmp(kt_predictor_device(any), "cuda"), "auto with a GPU runs on %s", kt_predictor_device(any));

    /* Grad-CAM (a backward pass to the last feature map) on the GPU: the CPU's class and picture */
    KT_REQUIRE_OK(kt_predictor_open(&cpu, (const char *[]){c1}, 1, "cpu", 0, &err), &err);
    char pa[4200], pg_png[4200];
    snprintf(pa, sizeof pa, "%s/cuda_predict_cam_cpu.png", kt_test_tmpdir());
    snprintf(pg_png, sizeof pg_png, "%s/cuda_predict_cam_gpu.png", kt_test_tmpdir());
    int ka = -1, kg = -2;
    KT_CHECK_OK(kt_predictor_gradcam(cpu, imgs[2], -1, pa, &ka, &err), &err);
    KT_CHECK_OK(kt_predictor_gradcam(any, imgs[2], -1, pg_png, &kg, &err), &err);
    KT_CHECK(ka == kg, "Grad-CAM explains class %d on the CPU, %d on the GPU", ka, kg);
    double mean = 0;
    int big = 0;
    KT_CHECK(png_diff(pa, pg_png, &mean, &big), "both Grad-CAM PNGs decode, same size");
    KT_CHECK(mean <= 0.5 && big <= 8, "Grad-CAM pictures differ: mean %.3f, largest %d of 255", mean, big);
    printf("  Grad-CAM: class %d on both, pictures differ by %.3f on average (largest %d of 255)\n", kg, mean, big);
    kt_predictor_free(cpu);
    kt_predictor_free(any);
    /* a GPU that cannot be used under the default device is an error saying how to run without it
     * (here the backend refuses a bad KT_CUDA_WITHOUT, as it would refuse for want of memory) */
    setenv("KT_CUDA_WITHOUT", "no_such_fusion", 1);
    any = NULL;
    kt_status st = kt_predictor_open(&any, (const char *[]){c1}, 1, "auto", 0, &err);
    unsetenv("KT_CUDA_WITHOUT");
    KT_CHECK(st != KT_OK && any == NULL && strstr(err.msg, "--device cpu") && strstr(err.msg, "KT_CUDA_WITHOUT"),
             "auto with an unusable GPU: status %d, '%s'", (int)st, err.msg);
    kt_predictor_free(any);
    globfree(&gl);
}

/* --device cuda:N for predict and serve: a GPU past the last is a device error naming the GPUs
 * there are; the last GPU (the host emulator fakes a second one: KT_EMU_DEVICES=2; a one-GPU card
 * uses cuda:0) serves uploads from several threads with the CPU's probabilities. */
KT_TEST(test_cuda_predictor_on_a_named_gpu) {
    (void)kt_twin_backend(); /* skips the test (one line) without a GPU */
    kt_cuda_info ci;
    int emulated = kt_twin_gpus(&ci);
    kt_err err;
    char ck[4096], dev[32], want_name[32];
    KT_REQUIRE(atto_checkpoint(ck, sizeof ck, 13), "checkpoint");
    kt_predictor *p = NULL, *cpu = NULL;
    snprintf(dev, sizeof dev, "cuda:%d", ci.device_count);
    kt_status st = kt_predictor_open(&p, (const char *[]){ck}, 1, dev, 0, &err);
    char want[64];
    snprintf(want, sizeof want, "GPU %d does not exist", ci.device_count);
    KT_CHECK(st == KT_ERR_CUDA && !p && kt_predictor_device_error(&err) && strstr(err.msg, want), "%s: status %d, '%s'", dev, (int)st,
             err.msg);
    kt_predictor_free(p);
    p = NULL;
    int last = ci.device_count - 1;
    snprintf(dev, sizeof dev, "cuda:%d", last);
    snprintf(want_name, sizeof want_name, "%s", last ? dev : "cuda");
    KT_REQUIRE_OK(kt_predictor_open(&cpu, (const char *[]){ck}, 1, "cpu", 0, &err), &err);
    st = kt_predictor_open(&p, (const char *[]){ck}, 1, dev, 0, &err);
    KT_CHECK_OK(st, &err);
    char ds[4096], pat[4200];
    snprintf(ds, sizeof ds, "%s/cuda_predict_synth", kt_test_tmpdir());
    if (!kt_dir_exists(ds)) { /* test_cuda_predictor_matches_cpu's images, made here when it has not run */
        kt_synth_opts so;
        kt_synth_opts_default(&so);
        so.out = ds, so.classes = 3, so.per_class = 1, so.size = 80;
        KT_CHECK_OK(kt_synth_write(&so, NULL, &err), &err);
    }
    snprintf(pat, sizeof pat, "%s/train/*.jpg", ds);
    glob_t gl;
    int have = glob(pat, 0, NULL, &gl) == 0 && gl.gl_pathc >= 1;
    char *bytes = NULL;
    size_t n = 0;
    if (!st && have && !kt_file_read(gl.gl_pathv[0], &bytes, &n, &err)) {
        KT_CHECK(!strcmp(kt_predictor_device(p), want_name), "device name %s, wanted %s", kt_predictor_device(p), want_name);
        float want_p[3];
        KT_CHECK_OK(kt_predictor_run_bytes(cpu, bytes, n, want_p, &err), &err);
        /* fp32 on both: float rounding apart; each worker compares with the first GPU answer bit for bit */
        float first[3];
        KT_CHECK_OK(kt_predictor_run_bytes(p, bytes, n, first, &err), &err);
        for (int c = 0; c < 3; c++) KT_CHECK(fabs((double)first[c] - want_p[c]) <= 1e-5, "class %d: GPU %.9g, CPU %.9g", c, first[c], want_p[c]);
        upload_job jobs[2];
        pthread_t th[2];
        int started = 0;
        for (int t = 0; t < 2; t++) {
            jobs[t] = (upload_job){.p = p, .bytes = bytes, .n = n, .want = first, .bad = 0};
            started += pthread_create(&th[t], NULL, upload_worker, &jobs[t]) == 0;
        }
        KT_CHECK(started == 2, "threads: %d of 2 started", started);
        for (int t = 0; t < started; t++) {
            pthread_join(th[t], NULL);
            KT_CHECK(jobs[t].bad == 0, "worker thread %d on %s: %d of 4 uploads failed or differed (%s)", t, dev, jobs[t].bad, jobs[t].err.msg);
        }
        printf("  predictor on %s (of %d GPUs): probabilities within 1e-5 of the CPU's, the same from 2 threads\n", dev, ci.device_count);
    } else {
        KT_CHECK(0, "no image or predictor: %s", err.msg);
    }
    free(bytes);
    globfree(&gl);
    kt_predictor_free(p);
    kt_predictor_free(cpu);
    kt_twin_gpus_done(emulated);
}

#else /* no CUDA in this build: the test exists and says so */
#define NO_CUDA(name) \
    KT_TEST(name) { kt_test_skip("no CUDA device: this build has no CUDA backend"); }
NO_CUDA(test_cuda_predictor_matches_cpu)
NO_CUDA(test_cuda_predictor_on_a_named_gpu)
#endif
