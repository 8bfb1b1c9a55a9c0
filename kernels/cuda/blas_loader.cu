// cuBLAS is opened with dlopen when the first CUDA context is made, not linked: linking it (it pulls
// in cuBLASLt) costs every process ~210 MB of resident memory at start, GPU or not, which the
// CPU-only commands of a CUDA-enabled build paid for nothing (bench/README.md, "start-up memory").
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "kernels/cuda/blas_loader.cuh"

#define KT_STR2(x) #x
#define KT_STR(x) KT_STR2(x)

static kt_cu_blas_api api;
static const kt_cu_blas_api *loaded;
static char why_buf[600];
static pthread_once_t once = PTHREAD_ONCE_INIT;

template <typename F> static int get(void *h, const char *name, F *fn) {
    *fn = (F)dlsym(h, name);
    if (*fn) return 1;
    snprintf(why_buf, sizeof why_buf, "%s has no %s", "libcublas.so." KT_STR(CUBLAS_VER_MAJOR), name);
    return 0;
}

static void load(void) {
    /* the soname first (LD_LIBRARY_PATH, the loader cache), then the toolkit this was built with */
    const char *names[] = {"libcublas.so." KT_STR(CUBLAS_VER_MAJOR),
#ifdef KT_CUBLAS_FALLBACK
                           KT_CUBLAS_FALLBACK,
#endif
                           NULL};
    void *h = NULL;
    for (int i = 0; names[i] && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why_buf, sizeof why_buf, "cannot load cuBLAS (libcublas.so.%d): %s", CUBLAS_VER_MAJOR, e ? e : "not found");
        return;
    }
    /* cublas_v2.h maps the plain names to the _v2 symbols the library exports */
    if (get(h, "cublasCreate_v2", &api.create) && get(h, "cublasDestroy_v2", &api.destroy) &&
        get(h, "cublasSetStream_v2", &api.set_stream) && get(h, "cublasSetWorkspace_v2", &api.set_workspace) &&
        get(h, "cublasSetPointerMode_v2", &api.set_pointer_mode) && get(h, "cublasGetStatusString", &api.status_string) &&
        get(h, "cublasGetVersion_v2", &api.get_version) && get(h, "cublasGemmEx", &api.gemm) &&
        get(h, "cublasGemmStridedBatchedEx", &api.gemm_batched))
        loaded = &api;
    else {
        dlclose(h);
        return;
    }
    /* cuBLASLt: already mapped as cuBLAS's dependency, found by its soname; optional */
    void *lt = dlopen("libcublasLt.so." KT_STR(CUBLAS_VER_MAJOR), RTLD_NOW | RTLD_LOCAL);
    char keep[sizeof why_buf];
    snprintf(keep, sizeof keep, "%s", why_buf);
    api.lt_ok = lt && get(lt, "cublasLtCreate", &api.lt_create) && get(lt, "cublasLtDestroy", &api.lt_destroy) &&
                get(lt, "cublasLtMatmulDescCreate", &api.lt_desc_create) && get(lt, "cublasLtMatmulDescDestroy", &api.lt_desc_destroy) &&
                get(lt, "cublasLtMatmulDescSetAttribute", &api.lt_desc_set) &&
                get(lt, "cublasLtMatrixLayoutCreate", &api.lt_layout_create) &&
                get(lt, "cublasLtMatrixLayoutDestroy", &api.lt_layout_destroy) &&
                get(lt, "cublasLtMatmulPreferenceCreate", &api.lt_pref_create) &&
                get(lt, "cublasLtMatmulPreferenceDestroy", &api.lt_pref_destroy) &&
                get(lt, "cublasLtMatmulPreferenceSetAttribute", &api.lt_pref_set) &&
                get(lt, "cublasLtMatmulAlgoGetHeuristic", &api.lt_heuristic) && get(lt, "cublasLtMatmul", &api.lt_matmul);
    snprintf(why_buf, sizeof why_buf, "%s", keep); /* a missing optional symbol is no load failure */
}

const kt_cu_blas_api *kt_cu_blas(const char **why) {
    pthread_once(&once, load);
    if (!loaded && why) *why = why_buf;
    return loaded;
}
