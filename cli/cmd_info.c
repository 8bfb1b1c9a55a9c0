/* keratrack info: what this build can do on this machine (backends, BLAS, threads, GPU), or what a
 * checkpoint file holds (architecture, parameters, classes, metadata). */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "checkpoints/ckpt_inspect.h"
#include "checkpoints/ckpt_meta.h"
#include "checkpoints/safetensors.h"
#include "cli/commands.h"
#include "kt_build_info.h"
#ifdef KT_HAVE_CUDA
#include "engine/cuda_arch.h"
#include "kernels/cuda/kt_cuda.h"
#endif

static void help(void) {
    puts("usage: keratrack info [FILE.safetensors]\n\n"
         "Without a file: prints the version, build type, backends built, the BLAS library with its\n"
         "core type and thread count, OpenMP threads, and when built with CUDA: the CUDA/cuBLAS/cuDNN\n"
         "versions, the GPU architectures compiled (-DKT_CUDA_ARCHS), and every GPU present with the\n"
         "name --device takes and how this build runs it (its machine code, PTX the driver compiles on\n"
         "first use, or not usable and why).\n"
         "With a checkpoint (a .safetensors file written by keratrack or by timm/PyTorch): prints its\n"
         "architecture (from our metadata, or inferred from timm's parameter names and shapes: ConvNeXt\n"
         "atto, femto, pico, nano, tiny, small, base, large, xlarge), parameter count and dtypes, classes\n"
         "(names from the metadata, or the rows of head.fc.weight), image size, mean/std, epoch, metrics\n"
         "and every metadata key. The file is validated first; a malformed one is reported, not read.\n\n"
         "Threads follow OMP_NUM_THREADS (our kernels and OpenBLAS share one OpenMP pool).");
}

#ifdef KT_HAVE_CUDA
/* How this build runs a GPU: its own machine code, PTX the driver compiles first (a slower first
 * start), or not at all, and why. */
static void print_gpu_fit(int ma, int mi) {
    int used = 0;
    if (!kt_cuda_cc_supported(ma, mi)) {
        printf("                      not usable: the CUDA backend needs compute %d.%d or newer (--device cpu)\n", KT_CUDA_MIN_CC_MAJOR,
               KT_CUDA_MIN_CC_MINOR);
        return;
    }
    switch (kt_cuda_arch_fit(kt_cuda_build_archs(), ma, mi, &used)) {
    case KT_CUDA_FIT_NATIVE: printf("                      runs this build's sm_%d machine code\n", used); break;
    case KT_CUDA_FIT_PTX:
        printf("                      runs this build's compute_%d PTX, which the driver compiles on first use and caches\n"
               "                      (-DKT_CUDA_ARCHS=\"%d%d-real;80-virtual\" builds machine code for it)\n",
               used, ma, mi);
        break;
    case KT_CUDA_FIT_NONE:
        printf("                      not usable: no code for it in this build; rebuild with -DKT_CUDA_ARCHS=\"%d%d-real;80-virtual\"\n", ma, mi);
        break;
    case KT_CUDA_FIT_UNKNOWN: break; /* a list we cannot read ("native", "all"): creating the backend tells */
    }
}
#endif

static void print_build_facts(void) {
    printf("keratrack %s (git %s)\n", KT_VERSION, KT_GIT_REV);
    printf("  build type        %s, %s%s\n", KT_BUILD_TYPE, KT_C_COMPILER,
           strcmp(KT_SANITIZED, "ON") == 0 ? ", ASan+UBSan" : "");
#ifdef KT_HAVE_CUDA
    printf("  backends          cpu (reference), cuda\n");
#else
    printf("  backends          cpu (reference); cuda not built\n");
#endif
    const char *par = "unknown";
    switch (openblas_get_parallel()) {
    case 0: par = "sequential"; break;
    case 1: par = "pthreads"; break;
    case 2: par = "OpenMP"; break;
    }
    printf("  BLAS              OpenBLAS %s\n", openblas_get_config());
    printf("                    core %s, %d threads, %s build (%s)\n", openblas_get_corename(),
           openblas_get_num_threads(), par, KT_OPENBLAS_PATH);
    printf("  OpenMP threads    %d (of %d processors)\n", omp_get_max_threads(), omp_get_num_procs());
#ifdef KT_HAVE_CUDA
    kt_cuda_info ci;
    kt_cuda_query(&ci);
    printf("  CUDA              toolkit %s, runtime %d.%d, driver %d.%d\n", KT_CUDA_TOOLKIT_VERSION,
           ci.runtime_version / 1000, (ci.runtime_version % 1000) / 10, ci.driver_version / 1000,
           (ci.driver_version % 1000) / 10);
    printf("  cuDNN             %d.%d.%d\n", ci.cudnn_version / 10000, (ci.cudnn_version / 100) % 100,
           ci.cudnn_version % 100);
    char archs[128];
    snprintf(archs, sizeof archs, "%s", kt_cuda_build_archs());
    for (char *q = archs; *q; q++)
        if (*q == ',') *q = ';'; /* as -DKT_CUDA_ARCHS takes it */
    printf("  CUDA code         architectures %s (-DKT_CUDA_ARCHS)\n", archs);
    if (ci.device_count > 0) {
        printf("  cuBLAS            %d\n", ci.cublas_version);
        printf("  GPU               %s (compute %d.%d, %d SMs, %.1f GiB, %.1f GiB free)%s\n", ci.name, ci.cc_major,
               ci.cc_minor, ci.sm_count, ci.total_mem / 1073741824.0, ci.free_mem / 1073741824.0,
               ci.device_count > 1 ? ": --device cuda or cuda:0" : "");
        print_gpu_fit(ci.cc_major, ci.cc_minor);
        for (int d = 1; d < ci.device_count; d++) { /* the others, by the name --device takes */
            char name[256];
            int ma = 0, mi = 0, sms = 0;
            size_t mem = 0;
            if (kt_cuda_device_props(d, name, sizeof name, &ma, &mi, &sms, &mem)) continue;
            printf("                    %s (compute %d.%d, %d SMs, %.1f GiB): --device cuda:%d\n", name, ma, mi, sms, mem / 1073741824.0, d);
            print_gpu_fit(ma, mi);
        }
    } else {
        printf("  GPU               none present (%s)\n", ci.error);
    }
#else
    printf("  GPU               not checked: built without CUDA (-DKT_CUDA=OFF or no toolkit)\n");
#endif
}

/* 3376446 -> "3,376,446" */
static void fmt_count(char *buf, size_t len, int64_t v) {
    char raw[32];
    snprintf(raw, sizeof raw, "%lld", (long long)v);
    size_t n = strlen(raw), at = 0;
    for (size_t i = 0; i < n && at + 2 < len; i++) {
        if (i > 0 && raw[0] != '-' && (n - i) % 3 == 0) buf[at++] = ',';
        buf[at++] = raw[i];
    }
    buf[at] = '\0';
}

static void print_architecture(const kt_ckpt_meta *m, const kt_ckpt_summary *s) {
    char shape[256] = "";
    if (s->is_convnext) {
        size_t at = (size_t)snprintf(shape, sizeof shape, "depths ");
        for (int i = 0; i < s->n_stages && at < sizeof shape; i++)
            at += (size_t)snprintf(shape + at, sizeof shape - at, "%s%d", i ? "," : "", s->depths[i]);
        at += (size_t)snprintf(shape + at, sizeof shape - at, ", dims ");
        for (int i = 0; i < s->n_stages && at < sizeof shape; i++)
            at += (size_t)snprintf(shape + at, sizeof shape - at, "%s%lld", i ? "," : "", (long long)s->dims[i]);
        snprintf(shape + at, sizeof shape - at, "%s", s->conv_mlp ? ", 1x1-conv MLP" : "");
    }
    if (m->arch) {
        if (s->inferred[0] && strcmp(s->inferred, m->arch))
            printf("architecture    %s (from metadata; but the tensors look like %s: %s)\n", m->arch, s->inferred,
                   shape);
        else printf("architecture    %s (from metadata%s%s)\n", m->arch, shape[0] ? "; " : "", shape);
    } else if (s->inferred[0]) printf("architecture    %s (inferred from names and shapes: %s)\n", s->inferred, shape);
    else if (s->is_convnext) printf("architecture    ConvNeXt of no known variant (%s)\n", shape);
    else printf("architecture    unknown (no \"architecture\" in the metadata, no ConvNeXt names)\n");
}

static int print_checkpoint(const char *path) {
    kt_err err;
    kt_err_clear(&err);
    kt_st_file f;
    if (kt_st_open(&f, path, &err) != KT_OK)
        return kt_cli_fail("info", err.msg,
                           "check the path; a checkpoint is a .safetensors file written by keratrack or timm/PyTorch");
    kt_ckpt_summary s;
    kt_ckpt_inspect(&f, &s);
    kt_ckpt_meta m;
    kt_status mst = kt_ckpt_meta_from_file(&f, &m, &err);
    if (mst != KT_OK) kt_ckpt_meta_init(&m);
    char cnt[32];
    printf("checkpoint      %s (%.1f MB, %d tensors)\n", path, (double)f.map_len / 1e6, f.n_tensors);
    print_architecture(&m, &s);
    fmt_count(cnt, sizeof cnt, s.n_params);
    if (s.is_convnext && s.prefix[0])
        printf("parameters      %s (%s) in %d tensors under \"%s\"; %d other tensors\n", cnt, s.dtypes,
               s.n_model_tensors, s.prefix, s.n_other_tensors);
    else if (s.is_convnext) printf("parameters      %s (%s) in %d tensors\n", cnt, s.dtypes, s.n_model_tensors);
    else printf("tensors         %d (%s), %s elements in all\n", s.n_model_tensors, s.dtypes[0] ? s.dtypes : "none", cnt);
    if (m.class_names) {
        printf("classes         %d:", m.n_classes);
        for (int i = 0; i < m.n_classes; i++) printf("%s %s", i ? "," : "", m.class_names[i]);
        printf("\n");
        if (s.n_classes >= 0 && s.n_classes != m.n_classes)
            printf("                (but head.fc.weight has %lld rows)\n", (long long)s.n_classes);
    } else if (m.n_classes > 0) printf("classes         %d (names not stored)\n", m.n_classes);
    else if (s.n_classes >= 0)
        printf("classes         %lld (rows of head.fc.weight; names not stored)\n", (long long)s.n_classes);
    else printf("classes         unknown (no head.fc.weight, no metadata)\n");
    if (m.img_h > 0) printf("image size      %dx%d (H x W)\n", m.img_h, m.img_w);
    else printf("image size      not stored\n");
    if (m.has_norm)
        printf("mean / std      %.4g %.4g %.4g / %.4g %.4g %.4g\n", m.mean[0], m.mean[1], m.mean[2], m.std[0], m.std[1],
               m.std[2]);
    else printf("mean / std      not stored\n");
    if (m.epoch >= 0) printf("epoch           %d\n", m.epoch);
    if (m.metrics_json) printf("metrics         %s\n", m.metrics_json);
    if (mst != KT_OK) printf("warning         %s\n", err.msg);
    printf("metadata        %d key%s%s\n", f.n_meta, f.n_meta == 1 ? "" : "s", f.n_meta ? ":" : "");
    /* Sorted by key: writers (PyTorch's included) store the map in no fixed order. */
    int order[256], n_show = f.n_meta < 256 ? f.n_meta : 256;
    for (int i = 0; i < n_show; i++) order[i] = i;
    for (int i = 1; i < n_show; i++)
        for (int j = i; j > 0 && strcmp(f.meta_keys[order[j - 1]], f.meta_keys[order[j]]) > 0; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int k = 0; k < n_show; k++) {
        int i = order[k];
        const char *v = f.meta_vals[i];
        size_t vl = strlen(v);
        printf("  %-14s%s%.*s%s\n", f.meta_keys[i], strlen(f.meta_keys[i]) >= 14 ? " " : "", vl > 300 ? 300 : (int)vl, v,
               vl > 300 ? " ..." : "");
    }
    if (f.n_meta > n_show) printf("  ... and %d more keys\n", f.n_meta - n_show);
    kt_ckpt_meta_free(&m);
    kt_st_close(&f);
    return 0;
}

int kt_cmd_info(int argc, char **argv) {
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            return 0;
        }
        if (argv[i][0] == '-') {
            fprintf(stderr, "keratrack info: unknown option '%s'\n  see `keratrack info --help`\n", argv[i]);
            return 2;
        }
        if (file) {
            fprintf(stderr, "keratrack info: one checkpoint at a time ('%s' and '%s' given)\n"
                            "  run `keratrack info FILE.safetensors` once per file\n", file, argv[i]);
            return 2;
        }
        file = argv[i];
    }
    if (!file) {
        print_build_facts();
        return 0;
    }
    return print_checkpoint(file);
}
