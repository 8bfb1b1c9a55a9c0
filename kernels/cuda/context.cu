// The CUDA context of a backend: device, stream, cuBLAS/cuDNN handles and the workspaces that keep
// runs free of allocations; error messages for every failure.
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda/kt_cuda_internal.cuh"

void kt_cuda_conv_plans_free(kt_cuda_ctx *c); /* conv_cudnn.cu */
void kt_cuda_lt_free(kt_cuda_ctx *c);         /* gemm.cu */

#define BLAS_WS_BYTES (32u << 20) /* NVIDIA's recommended cuBLAS workspace for Hopper */

int kt_cu_errf(kt_cuda_ctx *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return 1;
}

int kt_cu_check(kt_cuda_ctx *c, cudaError_t e, const char *what) {
    if (e == cudaSuccess) return 0;
    return kt_cu_errf(c, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

int kt_cu_launched(kt_cuda_ctx *c, const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return 0;
    return kt_cu_errf(c, "launching %s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

static void say(char *msg, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *msg, size_t n, const char *fmt, ...) {
    if (!msg || !n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, n, fmt, ap);
    va_end(ap);
}

#ifndef KT_CUDA_ARCHS_STR
#define KT_CUDA_ARCHS_STR "(not recorded)"
#endif

/* An empty kernel: asking for its attributes loads this build's code for the device, which fails
 * when none of the architectures built (-DKT_CUDA_ARCHS) runs there, or when the driver cannot
 * compile the build's PTX for it. Said at creation, with the fix, instead of "no kernel image is
 * available" at the first launch. */
__global__ void k_probe() {}

extern "C" const char *kt_cuda_build_archs(void) { return KT_CUDA_ARCHS_STR; }

static int code_runs_here(int device, char *msg, size_t ml) {
    cudaFuncAttributes fa;
    cudaError_t e = cudaFuncGetAttributes(&fa, k_probe);
    if (e == cudaSuccess) return 1;
    cudaGetLastError();
    int jit = e == cudaErrorUnsupportedPtxVersion || e == cudaErrorInvalidPtx || e == cudaErrorJitCompilerNotFound;
    if (e != cudaErrorNoKernelImageForDevice && e != cudaErrorInvalidDeviceFunction && !jit) return 1; /* not about our code: later calls say */
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, device) != cudaSuccess) {
        cudaGetLastError();
        say(msg, ml, "this build's CUDA code (architectures %s) cannot run on GPU %d: %s", KT_CUDA_ARCHS_STR, device, cudaGetErrorString(e));
        return 0;
    }
    if (jit) { /* PTX from a newer toolkit than the driver knows: machine code for the card needs no JIT */
        int drv = 0;
        cudaDriverGetVersion(&drv);
        say(msg, ml, "the driver (CUDA %d.%d) cannot compile this build's PTX (architectures %s, CUDA %d.%d) for GPU %d (%s, compute %d.%d): "
                     "update the NVIDIA driver, or rebuild with machine code for this card, -DKT_CUDA_ARCHS=\"%d%d-real\" (%s)",
            drv / 1000, drv % 1000 / 10, KT_CUDA_ARCHS_STR, CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10, device, p.name, p.major,
            p.minor, p.major, p.minor, cudaGetErrorString(e));
        return 0;
    }
    say(msg, ml, "this build's CUDA code is for architectures %s, which GPU %d (%s, compute %d.%d) cannot run; rebuild with "
                 "-DKT_CUDA_ARCHS=\"%d%d-real;%d%d-virtual\" (%s)",
        KT_CUDA_ARCHS_STR, device, p.name, p.major, p.minor, p.major, p.minor, p.major, p.minor, cudaGetErrorString(e));
    return 0;
}

extern "C" int kt_cuda_ctx_create(kt_cuda_ctx **out, int device, char *msg, size_t ml) {
    *out = NULL;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        say(msg, ml, "no CUDA device: %s", e != cudaSuccess ? cudaGetErrorString(e) : "the driver lists none");
        return 1;
    }
    if (device < 0 || device >= count) {
        char range[48] = "";
        if (count > 1) snprintf(range, sizeof range, " to cuda:%d", count - 1);
        const char *vis = getenv("CUDA_VISIBLE_DEVICES");
        say(msg, ml, "GPU %d does not exist: CUDA sees %d GPU%s here (cuda:0%s)%s%s", device, count, count == 1 ? "" : "s", range,
            vis ? ", as CUDA_VISIBLE_DEVICES=" : "", vis ? vis : "");
        return 1;
    }
    kt_cuda_ctx *c = (kt_cuda_ctx *)calloc(1, sizeof *c);
    if (!c) {
        say(msg, ml, "no host memory for a CUDA context");
        return 1;
    }
    c->device = device;
    c->stream = 0; /* the legacy default stream: plain cudaMemcpy calls stay ordered with kernels */
    const char *what = "cudaSetDevice";
    e = cudaSetDevice(device);
    if (e == cudaSuccess && !code_runs_here(device, msg, ml)) {
        kt_cuda_ctx_destroy(c);
        return 1;
    }
    if (e == cudaSuccess) {
        what = "cudaDeviceGetAttribute";
        e = cudaDeviceGetAttribute(&c->sm_count, cudaDevAttrMultiProcessorCount, device);
    }
    if (e == cudaSuccess) {
        what = "cuBLAS workspace";
        e = cudaMalloc(&c->blas_ws, BLAS_WS_BYTES);
    }
    if (e == cudaSuccess) {
        what = "reduction slots";
        e = cudaMalloc((void **)&c->red, sizeof(double) * (KT_CU_SUM_BLOCKS + 1));
    }
    if (e != cudaSuccess) {
        say(msg, ml, "%s: %s", what, cudaGetErrorString(e));
        kt_cuda_ctx_destroy(c);
        return 1;
    }
    c->blas_ws_bytes = BLAS_WS_BYTES;
    /* the depthwise kernels: timed per geometry unless one kind is asked for (bench/gpu compares them) */
    const char *dws = getenv("KT_CUDA_DWCONV");
    kt_cuda_dwkind dk = KT_CUDA_DW_AUTO;
    if (dws && *dws && kt_cuda_dwkind_parse(dws, &dk)) {
        say(msg, ml, "KT_CUDA_DWCONV=%s: expected auto, scalar, vec4, tile4x4, tile4x8, taps, rot4 or rot1", dws);
        kt_cuda_ctx_destroy(c);
        return 1;
    }
    c->dw_kind = dk;
    /* ... how many threads the depthwise weight gradient's first stage aims at (bench/gpu sweeps it) */
    c->dw_wgrad_threads = KT_CUDA_DW_WGRAD_THREADS_DEFAULT;
    const char *dwt = getenv("KT_CUDA_DW_WGRAD_THREADS");
    if (dwt && *dwt) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(dwt, &end, 10);
        if (errno || *end || v < 1024 || v > (1 << 24)) {
            say(msg, ml, "KT_CUDA_DW_WGRAD_THREADS=%s: expected a whole number from 1024 to 16777216 (default %d)", dwt,
                KT_CUDA_DW_WGRAD_THREADS_DEFAULT);
            kt_cuda_ctx_destroy(c);
            return 1;
        }
        c->dw_wgrad_threads = v;
    }
    const char *dwl = getenv("KT_CUDA_DWCONV_LOG");
    c->dw_log = dwl && *dwl && strcmp(dwl, "0") != 0;
    /* ... and one for the bias-epilogue GEMMs (bench/gpu: the step with and without them) */
    const char *nolt = getenv("KT_CUDA_NO_LT");
    c->lt_off = nolt && *nolt && strcmp(nolt, "0") != 0;
    /* ... and one for the patch convolutions' GEMMs (bench/gpu: the step with cuDNN's instead) */
    const char *nopatch = getenv("KT_CUDA_NO_PATCH_GEMM");
    c->patch_off = nopatch && *nopatch && strcmp(nopatch, "0") != 0;
    /* ... and one sending the rest of them (the stem) to our f32 patch GEMM (bench/gpu: against cuDNN's) */
    const char *pf32 = getenv("KT_CUDA_PATCH_F32");
    c->patch_f32 = pf32 && *pf32 && strcmp(pf32, "0") != 0;
    /* ... and a cap on the graphs' memory (sharing a card) */
    const char *mem = getenv("KT_CUDA_MEMORY_MIB");
    if (mem && *mem) {
        char *end = NULL;
        errno = 0;
        unsigned long long mib = strtoull(mem, &end, 10);
        if (*mem == '-' || errno || *end || mib == 0 || mib > (SIZE_MAX >> 20)) {
            say(msg, ml, "KT_CUDA_MEMORY_MIB=%s: expected a whole number of MiB above 0 (or unset it: no cap)", mem);
            kt_cuda_ctx_destroy(c);
            return 1;
        }
        c->mem_limit = (size_t)mib << 20;
    }
    const char *why = "";
    const kt_cu_blas_api *b = c->blas_api = kt_cu_blas(&why);
    if (!b) {
        say(msg, ml, "%s", why);
        kt_cuda_ctx_destroy(c);
        return 1;
    }
    cublasStatus_t bs = b->create(&c->blas);
    if (bs != CUBLAS_STATUS_SUCCESS) c->blas = NULL;
    if (bs == CUBLAS_STATUS_SUCCESS) bs = b->set_stream(c->blas, c->stream);
    if (bs == CUBLAS_STATUS_SUCCESS) bs = b->set_workspace(c->blas, c->blas_ws, c->blas_ws_bytes);
    if (bs == CUBLAS_STATUS_SUCCESS) bs = b->set_pointer_mode(c->blas, CUBLAS_POINTER_MODE_HOST);
    if (bs != CUBLAS_STATUS_SUCCESS) {
        say(msg, ml, "cuBLAS setup failed: %s", b->status_string(bs));
        kt_cuda_ctx_destroy(c);
        return 1;
    }
    cudnnStatus_t ds = cudnnCreate(&c->dnn);
    if (ds != CUDNN_STATUS_SUCCESS) c->dnn = NULL;
    if (ds == CUDNN_STATUS_SUCCESS) ds = cudnnSetStream(c->dnn, c->stream);
    if (ds != CUDNN_STATUS_SUCCESS) {
        say(msg, ml, "cuDNN setup failed: %s", cudnnGetErrorString(ds));
        kt_cuda_ctx_destroy(c);
        return 1;
    }
    *out = c;
    return 0;
}

extern "C" void kt_cuda_ctx_destroy(kt_cuda_ctx *c) {
    if (!c) return;
    cudaSetDevice(c->device);
    cudaDeviceSynchronize();
    kt_cuda_conv_plans_free(c);
    kt_cuda_lt_free(c);
    kt_cu_dw_tune_free(c);
    if (c->dnn) cudnnDestroy(c->dnn);
    if (c->blas) c->blas_api->destroy(c->blas);
    if (c->blas_ws) cudaFree(c->blas_ws);
    if (c->red) cudaFree(c->red);
    cudaGetLastError();
    free(c->allocs);
    free(c);
}

extern "C" const char *kt_cuda_ctx_error(const kt_cuda_ctx *c) { return c ? c->err : "no CUDA context"; }

/* CUDA's current device is a per-thread setting: a context made on GPU 1 and then driven from another
 * thread (serve's request threads) would otherwise allocate and launch on that thread's GPU 0. */
extern "C" int kt_cuda_ctx_bind(kt_cuda_ctx *c) {
    int d = -1;
    if (cudaGetDevice(&d) == cudaSuccess && d == c->device) return 0;
    cudaGetLastError();
    return kt_cu_check(c, cudaSetDevice(c->device), "cudaSetDevice");
}

extern "C" void kt_cuda_ctx_set_tf32(kt_cuda_ctx *c, int on) {
    if (c->tf32 != (on != 0)) kt_cuda_conv_plans_free(c); /* cuDNN choices depend on the math mode */
    c->tf32 = on != 0;
}

extern "C" int kt_cuda_ctx_tf32(const kt_cuda_ctx *c) { return c->tf32; }

extern "C" void kt_cuda_ctx_set_gemm_half(kt_cuda_ctx *c, kt_cuda_dtype t) { c->gemm_half = t; }

extern "C" void kt_cuda_ctx_set_gemm_lt(kt_cuda_ctx *c, int on) { c->lt_off = on == 0; }

extern "C" int kt_cuda_ctx_gemm_lt(const kt_cuda_ctx *c) { return !c->lt_off; }

extern "C" kt_cuda_dtype kt_cuda_ctx_gemm_half(const kt_cuda_ctx *c) { return c->gemm_half; }

extern "C" void kt_cuda_ctx_set_patch_gemm(kt_cuda_ctx *c, int on) { c->patch_off = on == 0; }

extern "C" int kt_cuda_ctx_patch_gemm(const kt_cuda_ctx *c) { return !c->patch_off; }

extern "C" void kt_cuda_ctx_set_patch_f32(kt_cuda_ctx *c, int on) { c->patch_f32 = on != 0; }

extern "C" int kt_cuda_ctx_patch_f32(const kt_cuda_ctx *c) { return c->patch_f32; }

extern "C" void kt_cuda_ctx_set_dw_wgrad_threads(kt_cuda_ctx *c, int64_t threads) {
    c->dw_wgrad_threads = threads > 0 ? threads : KT_CUDA_DW_WGRAD_THREADS_DEFAULT;
}

struct kt_cu_alloc {
    void *p;
    size_t bytes;
};

/* A cap on what the graphs take lets a run share a card (like PyTorch's per-process memory
 * fraction) and says "does not fit" at the cap rather than when another process runs short. */
extern "C" int kt_cuda_ctx_alloc(kt_cuda_ctx *c, void **ptr, size_t bytes) {
    *ptr = NULL;
    if (c->mem_limit && (bytes > c->mem_limit || c->mem_used > c->mem_limit - bytes))
        return kt_cu_errf(c, "cannot allocate %.1f MiB on GPU %d: over the %.1f MiB this process may take (KT_CUDA_MEMORY_MIB), "
                          "%.1f MiB of it in use",
                          (double)bytes / 1048576.0, c->device, (double)c->mem_limit / 1048576.0, (double)c->mem_used / 1048576.0);
    if (c->n_allocs == c->cap_allocs) {
        int cap = c->cap_allocs ? 2 * c->cap_allocs : 16;
        kt_cu_alloc *na = (kt_cu_alloc *)realloc(c->allocs, sizeof *na * (size_t)cap);
        if (!na) return kt_cu_errf(c, "no host memory to record a GPU allocation");
        c->allocs = na;
        c->cap_allocs = cap;
    }
    cudaError_t e = cudaMalloc(ptr, bytes ? bytes : 256);
    if (e == cudaSuccess) {
        c->allocs[c->n_allocs].p = *ptr;
        c->allocs[c->n_allocs++].bytes = bytes;
        c->mem_used += bytes;
        return 0;
    }
    *ptr = NULL;
    cudaGetLastError(); /* an allocation failure is not sticky: clear it */
    size_t fr = 0, tot = 0;
    cudaMemGetInfo(&fr, &tot);
    return kt_cu_errf(c, "cannot allocate %.1f MiB on GPU %d (%.1f of %.1f MiB free): %s", (double)bytes / 1048576.0, c->device,
                      (double)fr / 1048576.0, (double)tot / 1048576.0, cudaGetErrorString(e));
}

extern "C" void kt_cuda_ctx_free(kt_cuda_ctx *c, void *ptr) {
    if (!ptr) return;
    for (int i = c->n_allocs - 1; i >= 0; i--)
        if (c->allocs[i].p == ptr) {
            c->mem_used -= c->allocs[i].bytes;
            c->allocs[i] = c->allocs[--c->n_allocs];
            break;
        }
    cudaFree(ptr);
}

extern "C" void kt_cuda_ctx_set_memory_limit(kt_cuda_ctx *c, size_t bytes) { c->mem_limit = bytes; }

extern "C" size_t kt_cuda_ctx_memory_limit(const kt_cuda_ctx *c) { return c->mem_limit; }

extern "C" size_t kt_cuda_ctx_memory_used(const kt_cuda_ctx *c) { return c->mem_used; }

extern "C" int kt_cuda_ctx_copy(kt_cuda_ctx *c, void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return 0;
    /* cudaMemcpyDefault: unified addressing tells host from device pointers */
    return kt_cu_check(c, cudaMemcpy(dst, src, bytes, cudaMemcpyDefault), "copy between host and GPU");
}

extern "C" int kt_cuda_ctx_memset(kt_cuda_ctx *c, void *dst, int byte, size_t bytes) {
    if (!bytes) return 0;
    return kt_cu_check(c, cudaMemsetAsync(dst, byte, bytes, c->stream), "cudaMemsetAsync");
}

extern "C" int kt_cuda_ctx_sync(kt_cuda_ctx *c) {
    return kt_cu_check(c, cudaStreamSynchronize(c->stream), "waiting for the GPU (a kernel failed while running)");
}

extern "C" int kt_cuda_copy(kt_cuda_ctx *c, void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return 0;
    return kt_cu_check(c, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream), "copy on the GPU");
}
