/* keratrack bench: named benchmark cases, each printing one table and the command that made it.
 * To add a case: write `static int case_X(int argc, char **argv)` with an option table parsed by
 * parse_opts (which also prints its --help), and add one line to the cases[] table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>
#include <omp.h>

#include "base/fileio.h"
#include "bench/dwconv_bench.h"
#include "bench/gemm_bench.h"
#include "bench/loader.h"
#include "bench/model_bench.h"
#include "cJSON.h"
#include "cli/commands.h"
#include "datasets/image.h"
#include "datasets/roboflow.h"

/* ---- a small table-driven option parser shared by the cases ---------------------------------- */

typedef enum { OPT_INT, OPT_STR, OPT_FLAG } opt_kind;

typedef struct bench_opt {
    const char *name; /* "--workers" */
    opt_kind kind;
    void *dst;        /* int* (OPT_INT, OPT_FLAG) or const char ** (OPT_STR) */
    int min, max;     /* OPT_INT range */
    const char *arg;  /* "N", "DIR" (for the help text) */
    const char *help;
} bench_opt;

static void print_opts(FILE *f, const bench_opt *opts, int n) {
    for (int i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", opts[i].name, opts[i].kind == OPT_FLAG ? "" : " ",
                 opts[i].kind == OPT_FLAG ? "" : opts[i].arg);
        fprintf(f, "  %-22s %s\n", left, opts[i].help);
    }
}

/* Returns 0 when parsed, 1 when --help was printed (exit 0), 2 on a usage error (printed). */
static int parse_opts(const char *what, int argc, char **argv, const bench_opt *opts, int n, void (*help)(void)) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            return 1;
        }
        const bench_opt *o = NULL;
        for (int k = 0; k < n && !o; k++)
            if (!strcmp(argv[i], opts[k].name)) o = &opts[k];
        if (!o) {
            fprintf(stderr, "keratrack bench %s: unknown option '%s'\n  see keratrack bench %s --help\n", what, argv[i],
                    what);
            return 2;
        }
        if (o->kind == OPT_FLAG) {
            *(int *)o->dst = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "keratrack bench %s: %s needs a value (%s)\n", what, o->name, o->arg);
            return 2;
        }
        const char *v = argv[++i];
        if (o->kind == OPT_STR) {
            *(const char **)o->dst = v;
            continue;
        }
        char *end;
        long x = strtol(v, &end, 10);
        if (!*v || *end || x < o->min || x > o->max) {
            fprintf(stderr, "keratrack bench %s: %s %s: need a whole number in %d..%d\n", what, o->name, v, o->min, o->max);
            return 2;
        }
        *(int *)o->dst = (int)x;
    }
    return 0;
}

static void print_command(int argc, char **argv) {
    printf("command: keratrack bench");
    for (int i = 0; i < argc; i++) printf(" %s", argv[i]);
    printf("\n");
}

/* ---- case: loader ---------------------------------------------------------------------------- */

static struct {
    const char *data;
    int workers, img_size, batches, batch_size, warmup, no_fast, mode_eval;
} L;

static const bench_opt loader_opts[] = {
    {"--data", OPT_STR, &L.data, 0, 0, "DIR", "dataset folder (default ../shared/datasets/nail-disease)"},
    {"--workers", OPT_INT, &L.workers, 0, 256, "N", "decoding threads; 0 = rows for 1 and 2 (default 0)"},
    {"--img-size", OPT_INT, &L.img_size, 8, 4096, "N", "output side in pixels (default 224)"},
    {"--batches", OPT_INT, &L.batches, 1, 1000000, "N", "timed batches per row (default 40)"},
    {"--batch-size", OPT_INT, &L.batch_size, 1, 4096, "N", "images per batch (default 16, the seed recipe's)"},
    {"--warmup", OPT_INT, &L.warmup, 0, 1000, "N", "untimed batches before timing (default 4)"},
    {"--no-fast-decode", OPT_FLAG, &L.no_fast, 0, 0, "", "decode every JPEG at full size in training too"},
    {"--eval", OPT_FLAG, &L.mode_eval, 0, 0, "", "also time the eval transform (full decode + PIL-exact resize)"},
};
static const int n_loader_opts = (int)(sizeof loader_opts / sizeof loader_opts[0]);

static void loader_help(void) {
    puts("usage: keratrack bench loader [--data DIR] [--workers N] [--img-size N] [--batches N]\n"
         "                              [--batch-size N] [--warmup N] [--no-fast-decode] [--eval]\n\n"
         "Measures the data loader alone: JPEG files of the TRAIN split -> decode -> training\n"
         "augmentation (random resized crop, flips, rotation, colour) -> normalised (B, H, W, 3) float\n"
         "batches, with nothing consuming them. Prints images/s, ms per batch and CPU use per row.\n"
         "Compare images/s with a training step's images/s: the loader must be the faster of the two.\n");
    print_opts(stdout, loader_opts, n_loader_opts);
    puts("\nExample: keratrack bench loader --data ../shared/datasets/nail-disease --batches 40\n"
         "Exit status: 0 ok, 1 the dataset cannot be read, 2 usage error.");
}

static int run_row(const kt_dataset *ds, int workers, int train) {
    kt_bench_loader_opts o = {.workers = workers, .img_size = L.img_size, .batch_size = L.batch_size,
                              .batches = L.batches, .warmup = L.warmup, .train = train, .fast_decode = !L.no_fast};
    kt_bench_loader_result r;
    kt_err err = {0};
    if (kt_bench_loader_run(ds, &o, &r, &err) != KT_OK) return kt_cli_fail("bench loader", err.msg, "");
    printf("%-7d %-22s %8d %8lld %9.2f %10.1f %9.1f %8.0f%% %5lld\n", workers,
           train ? (L.no_fast ? "train (full decode)" : "train (fast decode)") : "eval (PIL-exact)", L.batches,
           (long long)r.images, r.seconds, r.imgs_per_s, r.ms_per_batch, r.seconds > 0 ? 100 * r.cpu_s / r.seconds : 0,
           (long long)r.bad_images);
    fflush(stdout);
    return 0;
}

static int case_loader(int argc, char **argv) {
    L.data = NULL, L.workers = 0, L.img_size = 224, L.batches = 40, L.batch_size = 16, L.warmup = 4;
    L.no_fast = L.mode_eval = 0;
    int pr = parse_opts("loader", argc, argv, loader_opts, n_loader_opts, loader_help);
    if (pr) return pr == 1 ? 0 : 2;
    const char *data = L.data ? L.data : "../shared/datasets/nail-disease";
    kt_dataset ds;
    kt_dataset_opts dopt;
    kt_dataset_opts_default(&dopt);
    dopt.verify = KT_VERIFY_EXISTS;
    kt_err err = {0};
    if (kt_dataset_open(&ds, data, &dopt, &err) != KT_OK)
        return kt_cli_fail("bench loader", err.msg,
                           "pass --data DIR: a Roboflow export, or make one with `keratrack synth --out DIR`");
    /* The source size of the first image, for the table title. */
    char first[64] = "";
    kt_decoder dec;
    if (kt_decoder_init(&dec, &err) == KT_OK) {
        char path[8192];
        const uint8_t *bytes;
        size_t len;
        kt_image_header hdr;
        if (kt_dataset_item_path(&ds, ds.split_first[0], path, sizeof path, &err) == KT_OK &&
            kt_decoder_read_file(&dec, path, &bytes, &len, &err) == KT_OK &&
            kt_image_probe(&dec, bytes, len, NULL, &hdr, &err) == KT_OK)
            snprintf(first, sizeof first, " (first %dx%d)", hdr.w, hdr.h);
        kt_decoder_free(&dec);
    }
    printf("loader: %s, TRAIN split %lld images%s -> %dx%d float NHWC, batch %d, %ld CPUs online\n", ds.root,
           (long long)ds.split_count[0], first, L.img_size, L.img_size, L.batch_size, sysconf(_SC_NPROCESSORS_ONLN));
    printf("%-7s %-22s %8s %8s %9s %10s %9s %9s %5s\n", "workers", "transform", "batches", "images", "seconds",
           "images/s", "ms/batch", "CPU", "bad");
    int rc = 0;
    int wlist[2] = {1, 2}, nw = 2;
    if (L.workers > 0) wlist[0] = L.workers, nw = 1;
    for (int i = 0; i < nw && !rc; i++) rc = run_row(&ds, wlist[i], 1);
    for (int i = 0; i < nw && !rc && L.mode_eval; i++) rc = run_row(&ds, wlist[i], 0);
    print_command(argc, argv);
    kt_dataset_close(&ds);
    return rc;
}

/* A PyTorch results file for --compare (a JSON document with a "results" list, as
 * bench/pytorch_bench.py and bench/pytorch_dwconv.py write): 0 and *doc, or 1 with the failure
 * printed, naming the file. */
static int load_compare(const char *what, const char *path, const char *script, cJSON **doc) {
    char *txt, hint[160], msg[700];
    size_t len;
    kt_err err;
    snprintf(hint, sizeof hint, "make it with %s --json FILE", script);
    if (kt_file_read(path, &txt, &len, &err)) return kt_cli_fail(what, err.msg, hint);
    *doc = cJSON_Parse(txt);
    free(txt);
    if (*doc && cJSON_IsArray(cJSON_GetObjectItem(*doc, "results"))) return 0;
    cJSON_Delete(*doc);
    *doc = NULL;
    snprintf(msg, sizeof msg, "--compare %s: not a %s JSON document (no \"results\" list)", path, script);
    return kt_cli_fail(what, msg, hint);
}

/* ---- case: model ----------------------------------------------------------------------------- */

static struct {
    const char *cases, *compare, *json;
    int threads, iters, warmup, profile, recompute;
} M;

static const bench_opt model_opts[] = {
    {"--cases", OPT_STR, &M.cases, 0, 0, "LIST", "comma-separated cases (default: the issue's list, see below)"},
    {"--threads", OPT_INT, &M.threads, 0, 256, "N", "OpenMP + OpenBLAS threads (default: OMP_NUM_THREADS or all)"},
    {"--iters", OPT_INT, &M.iters, 1, 100000, "N", "timed runs per case (default 10 inference, 5 training)"},
    {"--warmup", OPT_INT, &M.warmup, 0, 1000, "N", "untimed runs first (default 2)"},
    {"--profile", OPT_FLAG, &M.profile, 0, 0, "", "print the time per op type of each case"},
    {"--recompute", OPT_FLAG, &M.recompute, 0, 0, "", "training: recompute GELU/LayerNorm in backward (less memory)"},
    {"--compare", OPT_STR, &M.compare, 0, 0, "FILE", "PyTorch results (bench/pytorch_bench.py --json) for ratio columns"},
    {"--json", OPT_STR, &M.json, 0, 0, "FILE", "also write our results as JSON"},
};
static const int n_model_opts = (int)(sizeof model_opts / sizeof model_opts[0]);

#define DEFAULT_MODEL_CASES                                                                                        \
    "infer_b1_atto,infer_b1_tiny,infer_b1_base,infer_b16_atto,infer_b16_tiny,infer_b16_base,train_b16_atto,"     \
    "train_b16_tiny,train_b8_64_atto"

static void model_help(void) {
    puts("usage: keratrack bench model [--cases LIST] [--threads N] [--iters N] [--warmup N] [--profile]\n"
         "                             [--recompute] [--compare pytorch.json] [--json FILE]\n\n"
         "Times ConvNeXt inference (forward only, eval mode) and training steps (forward, cross-entropy\n"
         "with label smoothing 0.1, backward, AdamW) with 6 classes; each case runs in its own child\n"
         "process so its peak RSS is its own. Reports the median time, images/s, GFLOP/s (2 per\n"
         "multiply-add of convolutions and linears; a training step counts 3x forward) and peak RSS.\n"
         "With --compare, adds PyTorch's numbers from bench/pytorch_bench.py --json and the ratios\n"
         "ours/PyTorch (time: lower is better; memory: lower is better).\n\n"
         "Cases: train|infer:ARCH:BATCH:SIZE (e.g. train:convnext_tiny:16:224) or the yardstick's names\n"
         "(infer_b1_atto, train_b16_tiny, train_b8_64_atto, ...). Default:\n  " DEFAULT_MODEL_CASES "\n");
    print_opts(stdout, model_opts, n_model_opts);
    puts("\nExample: keratrack bench model --cases infer_b1_atto,train_b8_64_atto --threads 2\n"
         "Exit status: 0 ok, 1 a case failed, 2 usage error.");
}

/* Finds case `name` in a pytorch_bench.py JSON document; NULL when absent. */
static cJSON *torch_result(cJSON *doc, const char *name) {
    cJSON *res = cJSON_GetObjectItem(doc, "results"), *r;
    cJSON_ArrayForEach(r, res) {
        cJSON *c = cJSON_GetObjectItem(r, "case");
        if (cJSON_IsString(c) && !strcmp(c->valuestring, name) && cJSON_GetObjectItem(r, "median_s")) return r;
    }
    return NULL;
}

static int case_model(int argc, char **argv) {
    memset(&M, 0, sizeof M);
    M.warmup = 2;
    int pr = parse_opts("model", argc, argv, model_opts, n_model_opts, model_help);
    if (pr) return pr == 1 ? 0 : 2;
    if (M.threads > 0) {
        omp_set_num_threads(M.threads);
        openblas_set_num_threads(M.threads);
    }
    cJSON *torch = NULL;
    if (M.compare && load_compare("bench model", M.compare, "bench/pytorch_bench.py", &torch)) return 1;
    char *list = strdup(M.cases ? M.cases : DEFAULT_MODEL_CASES);
    cJSON *out = cJSON_CreateArray();
    printf("keratrack model benchmark: %d threads (OpenBLAS core %s), %ld CPUs online\n", omp_get_max_threads(),
           openblas_get_corename(), sysconf(_SC_NPROCESSORS_ONLN));
    printf("| case | median | images/s | GFLOP/s | peak RSS | arena |%s\n",
           torch ? " PyTorch median | PyTorch RSS | time ratio | memory ratio |" : "");
    printf("|---|---|---|---|---|---|%s\n", torch ? "---|---|---|---|" : "");
    int rc = 0;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        kt_bench_case c;
        kt_bench_result r;
        kt_err err;
        if (kt_bench_case_parse(tok, &c, &err)) {
            rc = kt_cli_fail("bench model", err.msg, "see keratrack bench model --help");
            break;
        }
        c.recompute = M.recompute;
        int iters = M.iters ? M.iters : (c.train ? 5 : 10);
        if (kt_bench_model_run_isolated(&c, M.warmup, iters, M.profile, &r, &err)) {
            printf("| %s | failed: %s |\n", tok, err.msg);
            rc = 1;
            continue;
        }
        char t[32];
        if (r.median_s < 1) snprintf(t, sizeof t, "%.1f ms", r.median_s * 1e3);
        else snprintf(t, sizeof t, "%.2f s", r.median_s);
        printf("| %s | %s | %.1f | %.0f | %.2f GB | %.0f MB |", tok, t, r.imgs_per_s, r.gflops, r.peak_rss_gb, r.arena_mb);
        cJSON *tr = torch ? torch_result(torch, tok) : NULL;
        if (tr) {
            double tm = cJSON_GetObjectItem(tr, "median_s")->valuedouble;
            cJSON *rs = cJSON_GetObjectItem(tr, "peak_rss_bytes");
            double trss = rs ? rs->valuedouble / 1073741824.0 : 0;
            printf(" %.1f ms | %.2f GB | %.2f | %.2f |", tm * 1e3, trss, r.median_s / tm, trss > 0 ? r.peak_rss_gb / trss : 0);
        } else if (torch) {
            printf(" - | - | - | - |");
        }
        printf("\n");
        if (M.profile) printf("\n%s\n", r.profile);
        fflush(stdout);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "case", tok);
        cJSON_AddNumberToObject(o, "median_s", r.median_s);
        cJSON_AddNumberToObject(o, "min_s", r.min_s);
        cJSON_AddNumberToObject(o, "iters", r.iters);
        cJSON_AddNumberToObject(o, "images_per_s", r.imgs_per_s);
        cJSON_AddNumberToObject(o, "gflop_per_s", r.gflops);
        cJSON_AddNumberToObject(o, "peak_rss_bytes", r.peak_rss_gb * 1073741824.0);
        cJSON_AddNumberToObject(o, "arena_bytes", r.arena_mb * 1048576.0);
        cJSON_AddItemToArray(out, o);
    }
    print_command(argc, argv);
    if (M.json) {
        char *txt = cJSON_Print(out);
        kt_err err;
        if (kt_file_write_atomic(M.json, txt, strlen(txt), &err)) rc = kt_cli_fail("bench model", err.msg, NULL);
        free(txt);
    }
    cJSON_Delete(out);
    cJSON_Delete(torch);
    free(list);
    return rc;
}

/* ---- case: gemm ------------------------------------------------------------------------------ */

static struct {
    const char *rows, *channels;
    int threads, reps;
} G;

static const bench_opt gemm_opts[] = {
    {"--rows", OPT_STR, &G.rows, 0, 0, "LIST", "rows of the products (default 3136,12544,50176: stage 1 at batch 1, 4, 16)"},
    {"--channels", OPT_STR, &G.channels, 0, 0, "LIST", "layer widths C: fc1 is C -> 4C, fc2 4C -> C (default 40,96,128,192,384)"},
    {"--threads", OPT_INT, &G.threads, 0, 256, "N", "OpenMP + OpenBLAS threads (default: OMP_NUM_THREADS or all)"},
    {"--reps", OPT_INT, &G.reps, 1, 1000, "N", "timed runs each way, alternating; the best counts (default 5)"},
};
static const int n_gemm_opts = (int)(sizeof gemm_opts / sizeof gemm_opts[0]);

static void gemm_help(void) {
    puts("usage: keratrack bench gemm [--rows LIST] [--channels LIST] [--threads N] [--reps N]\n\n"
         "GFLOP/s of the engine's CPU GEMM, which splits products of 16384+ rows with a small weight into\n"
         "512-row pieces (one thread each, so each piece of the output stays in cache), against one\n"
         "OpenBLAS call, on the products of ConvNeXt's linear layers (rows x C -> 4C and rows x 4C -> C).\n"
         "Products over 20 GFLOP are left out.\n");
    print_opts(stdout, gemm_opts, n_gemm_opts);
    puts("\nExample: keratrack bench gemm --rows 50176 --channels 96 --threads 2\n"
         "Exit status: 0 ok, 1 out of memory, 2 usage error.");
}

/* "a,b,c" into up to max positive numbers; 0 when the list is not that */
static int parse_list(const char *s, int64_t *out, int max) {
    int n = 0;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 1 || v > 100000000 || n == max || (*end && *end != ',')) return 0;
        out[n++] = v;
        s = *end ? end + 1 : end;
    }
    return n;
}

static int case_gemm(int argc, char **argv) {
    memset(&G, 0, sizeof G);
    G.reps = 5;
    int pr = parse_opts("gemm", argc, argv, gemm_opts, n_gemm_opts, gemm_help);
    if (pr) return pr == 1 ? 0 : 2;
    int64_t rows[16], ch[16];
    int nr = parse_list(G.rows ? G.rows : "3136,12544,50176", rows, 16);
    int nc = parse_list(G.channels ? G.channels : "40,96,128,192,384", ch, 16);
    if (!nr || !nc) {
        fprintf(stderr, "keratrack bench gemm: %s '%s': need up to 16 comma-separated whole numbers in 1..100000000\n",
                !nr ? "--rows" : "--channels", !nr ? G.rows : G.channels);
        return 2;
    }
    if (G.threads > 0) {
        omp_set_num_threads(G.threads);
        openblas_set_num_threads(G.threads);
    }
    printf("keratrack GEMM benchmark: %d threads (OpenBLAS core %s), best of %d runs each way\n", omp_get_max_threads(),
           openblas_get_corename(), G.reps);
    printf("| rows | K | N | pieces | engine GFLOP/s | one call GFLOP/s | engine / one call |\n|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < nc; j++)
            for (int f = 0; f < 2; f++) { /* fc1: C -> 4C; fc2: 4C -> C */
                int64_t K = f ? 4 * ch[j] : ch[j], N = f ? ch[j] : 4 * ch[j];
                if (2.0 * rows[i] * K * N > 2e10) continue;
                kt_bench_gemm_row r;
                kt_err err;
                if (kt_bench_gemm_run(rows[i], N, K, G.reps, &r, &err)) return kt_cli_fail("bench gemm", err.msg, "pass smaller --rows");
                printf("| %lld | %lld | %lld | %s | %.0f | %.0f | %.2f |\n", (long long)r.M, (long long)r.K, (long long)r.N,
                       r.pieces ? "yes" : "no", r.gflops_engine, r.gflops_whole,
                       r.gflops_engine / r.gflops_whole);
                fflush(stdout);
            }
    print_command(argc, argv);
    return 0;
}

/* ---- case: dwconv ---------------------------------------------------------------------------- */

static struct {
    const char *shapes, *compare;
    int threads, reps, kernel;
} D;

#define DEFAULT_DW_SHAPES                                                                                          \
    "1x56x96,1x14x384,1x7x768,1x56x128,1x14x512,1x7x1024,16x56x96,16x28x192,16x14x384,16x7x768,16x14x512,16x7x1024"

static const bench_opt dwconv_opts[] = {
    {"--shapes", OPT_STR, &D.shapes, 0, 0, "LIST", "NxHxC or NxHxWxC inputs, comma-separated (default above)"},
    {"--kernel", OPT_INT, &D.kernel, 1, 7, "K", "kernel side, stride 1, padding K/2 (default 7, ConvNeXt's)"},
    {"--threads", OPT_INT, &D.threads, 0, 256, "N", "OpenMP threads (default: OMP_NUM_THREADS or all)"},
    {"--reps", OPT_INT, &D.reps, 1, 1000, "N", "timed runs of each pass after one untimed; the best counts (default 10)"},
    {"--compare", OPT_STR, &D.compare, 0, 0, "FILE", "PyTorch's times (bench/pytorch_dwconv.py --json) for ratio columns"},
};
static const int n_dwconv_opts = (int)(sizeof dwconv_opts / sizeof dwconv_opts[0]);

static void dwconv_help(void) {
    puts("usage: keratrack bench dwconv [--shapes LIST] [--kernel K] [--threads N] [--reps N] [--compare FILE]\n\n"
         "Time and GFLOP/s of the CPU depthwise convolution (ConvNeXt's 7x7 by default), forward, data\n"
         "gradient and weight gradient, on NHWC input shapes. With --compare, PyTorch's times for the\n"
         "same shapes (channels_last, from bench/pytorch_dwconv.py --json) and the ratios ours/PyTorch\n"
         "(lower is better). Default shapes: convnext_tiny's and convnext_base's stages at 224 px,\n"
         "batch 1 and 16:\n  " DEFAULT_DW_SHAPES "\n");
    print_opts(stdout, dwconv_opts, n_dwconv_opts);
    puts("\nExample: keratrack bench dwconv --shapes 1x7x1024,16x56x96 --threads 2\n"
         "Exit status: 0 ok, 1 out of memory or an unreadable --compare file, 2 usage error.");
}

/* "NxHxC" or "NxHxWxC" into dims (N, H, W, C); 0 when it is not that */
static int parse_dw_shape(const char *s, int64_t d[4]) {
    int64_t v[4];
    int n = 0;
    for (;;) {
        char *end;
        long long x = strtoll(s, &end, 10);
        if (end == s || x < 1 || x > 100000 || n == 4) return 0;
        v[n++] = x;
        if (!*end) break;
        if (*end != 'x') return 0;
        s = end + 1;
    }
    if (n == 3) d[0] = v[0], d[1] = v[1], d[2] = v[1], d[3] = v[2];
    else if (n == 4) d[0] = v[0], d[1] = v[1], d[2] = v[2], d[3] = v[3];
    else return 0;
    return (double)d[0] * (double)d[1] * (double)d[2] * (double)d[3] <= 2e9; /* elements of one buffer */
}

/* PyTorch's best time for (shape, pass) in a pytorch_dwconv.py document; 0 when absent */
static double torch_dw_time(cJSON *doc, const char *shape, int64_t k, const char *pass) {
    cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItem(doc, "results")) {
        cJSON *sh = cJSON_GetObjectItem(r, "shape"), *kk = cJSON_GetObjectItem(r, "kernel"), *t = cJSON_GetObjectItem(r, pass);
        if (cJSON_IsString(sh) && !strcmp(sh->valuestring, shape) && cJSON_IsNumber(kk) && kk->valueint == k && cJSON_IsNumber(t))
            return t->valuedouble;
    }
    return 0;
}

static int case_dwconv(int argc, char **argv) {
    memset(&D, 0, sizeof D);
    D.reps = 10, D.kernel = 7;
    int pr = parse_opts("dwconv", argc, argv, dwconv_opts, n_dwconv_opts, dwconv_help);
    if (pr) return pr == 1 ? 0 : 2;
    const char *given = D.shapes ? D.shapes : DEFAULT_DW_SHAPES;
    size_t glen = strlen(given);
    if (!glen || given[0] == ',' || given[glen - 1] == ',' || strstr(given, ",,")) {
        fprintf(stderr, "keratrack bench dwconv: --shapes '%s': an empty shape in the list\n", given);
        return 2;
    }
    char *list = strdup(given);
    int64_t shapes[32][4];
    int ns = 0;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        if (ns == 32 || !parse_dw_shape(tok, shapes[ns])) {
            fprintf(stderr, "keratrack bench dwconv: --shapes '%s': '%s' is not NxHxC or NxHxWxC (whole numbers 1..100000, at most 2e9 elements, up to 32 shapes)\n",
                    D.shapes, tok);
            free(list);
            return 2;
        }
        ns++;
    }
    free(list);
    cJSON *torch = NULL;
    if (D.compare && load_compare("bench dwconv", D.compare, "bench/pytorch_dwconv.py", &torch)) return 1;
    if (D.threads > 0) omp_set_num_threads(D.threads);
    printf("keratrack depthwise convolution benchmark: %dx%d, stride 1, %d threads, best of %d runs\n", D.kernel, D.kernel,
           omp_get_max_threads(), D.reps);
    printf("| input N x H x W x C | pass | time | GFLOP/s |%s\n|---|---|---|---|%s\n",
           torch ? " PyTorch time | time ratio |" : "", torch ? "---|---|" : "");
    static const char *pass_name[3] = {"forward", "data grad", "weight grad"};
    static const char *pass_key[3] = {"forward_s", "data_grad_s", "weight_grad_s"};
    for (int i = 0; i < ns; i++) {
        kt_bench_dwconv_row r;
        kt_err err;
        if (kt_bench_dwconv_run(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], D.kernel, D.reps, &r, &err)) {
            cJSON_Delete(torch);
            return kt_cli_fail("bench dwconv", err.msg, "pass smaller --shapes");
        }
        char shape[96];
        snprintf(shape, sizeof shape, "%lldx%lldx%lldx%lld", (long long)r.N, (long long)r.H, (long long)r.W, (long long)r.C);
        for (int p = 0; p < 3; p++) {
            printf("| %s | %s | %.3f ms | %.1f |", shape, pass_name[p], r.best_s[p] * 1e3, r.gflops[p]);
            double tt = torch ? torch_dw_time(torch, shape, r.k, pass_key[p]) : 0;
            if (tt > 0) printf(" %.3f ms | %.2f |", tt * 1e3, r.best_s[p] / tt);
            else if (torch) printf(" - | - |");
            printf("\n");
        }
        fflush(stdout);
    }
    cJSON_Delete(torch);
    print_command(argc, argv);
    return 0;
}

/* ---- the case table -------------------------------------------------------------------------- */

typedef struct bench_case {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the case name */
} bench_case;

static const bench_case cases[] = {
    {"loader", "images/s of the data loader alone (decode + augment + normalise)", case_loader},
    {"model", "ConvNeXt inference and training-step time, GFLOP/s, peak RSS (vs PyTorch)", case_model},
    {"gemm", "GFLOP/s of the CPU GEMM (tall products in row pieces) against one OpenBLAS call", case_gemm},
    {"dwconv", "time of the CPU depthwise convolution (forward and both gradients) per shape (vs PyTorch)", case_dwconv},
};
static const int n_cases = (int)(sizeof cases / sizeof cases[0]);

static void help(FILE *f) {
    fprintf(f, "usage: keratrack bench <case> [options]   (keratrack bench <case> --help for its options)\n\n"
               "Runs one benchmark case and prints one table plus the command that made it. Timings\n"
               "depend on what else runs on the machine: compare rows of one run, not across runs.\n\n"
               "cases:\n");
    for (int i = 0; i < n_cases; i++) fprintf(f, "  %-10s %s\n", cases[i].name, cases[i].summary);
    fprintf(f, "\nExit status: 0 ok, 1 the case failed (the message says why), 2 usage error.\n");
}

int kt_cmd_bench(int argc, char **argv) {
    if (argc < 2) {
        help(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        help(stdout);
        return 0;
    }
    for (int i = 0; i < n_cases; i++)
        if (!strcmp(argv[1], cases[i].name)) return cases[i].run(argc - 1, argv + 1);
    fprintf(stderr, "keratrack bench: unknown case '%s'\n", argv[1]);
    help(stderr);
    return 2;
}
