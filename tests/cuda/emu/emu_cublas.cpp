// cuBLAS and cuBLASLt under host emulation: the entry points kernels/cuda/gemm.cu calls, written from
// the libraries' documented semantics rather than from gemm.cu's use of them, so that gemm.cu itself
// runs here (its row-major to column-major mapping, its cuBLASLt descriptors, layouts, heuristic query
// and fallbacks), not a stand-in that shares its assumptions. What the libraries document:
//  - column-major: C (m x n, ldc) = alpha op(A) op(B) + beta C, op(A) m x k stored as A (lda x k) for
//    OP_N or (lda x m) for OP_T; lda >= max(1, rows stored), likewise ldb, ldc; else INVALID_VALUE.
//  - C is not read when beta is 0 (it may hold NaN).
//  - type combinations (cuBLAS's cublasGemmEx table): COMPUTE_32F with A/B in 16F or 16BF and C of
//    theirs or 32F, or all 32F; COMPUTE_32F_FAST_TF32 with all 32F (operands rounded to TF32 here, as
//    tensor cores read them); anything else NOT_SUPPORTED.
//  - cuBLASLt: attributes must come with their documented sizes; D (m x n) = alpha op(A) op(B) + beta
//    C + bias, the bias one value per row of D in D's type; an algorithm from the heuristic holds for
//    the problem it was asked about and for buffers aligned as the preference's minimum alignments
//    (default 256 bytes) and the bias pointer the descriptor held then; the workspace passed must be at
//    least the size the heuristic returned.
// A call that breaks a documented rule returns the library's status, as the library would, so the
// caller's error path runs; a pointer less aligned than the algorithm was chosen for, which on the GPU
// is a misaligned-address fault and not a status, stops the run. Accumulation is in double.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/blas_loader.cuh"

struct cublasContext {
    uint32_t magic;
    cudaStream_t stream;
    void *ws;
    size_t ws_bytes;
    cublasPointerMode_t mode;
    int dev; /* the device current at cublasCreate: cuBLAS runs there */
};
struct cublasLtContext {
    uint32_t magic;
    int dev;
};
struct cublasLtMatmulDescOpaque_t {
    uint32_t magic;
    cublasComputeType_t compute;
    cudaDataType scale;
    int32_t ta, tb, mode;
    uint32_t epilogue;
    const void *bias;
    int32_t bias_type;
};
struct cublasLtMatrixLayoutOpaque_t {
    uint32_t magic;
    cudaDataType type;
    uint64_t rows, cols;
    int64_t ld;
};
struct cublasLtMatmulPreferenceOpaque_t {
    uint32_t magic;
    uint64_t max_ws;
    uint32_t align[4]; /* A, B, C, D */
};

namespace {

bool known(cudaDataType t) { return t == CUDA_R_32F || t == CUDA_R_16F || t == CUDA_R_16BF; }
size_t esize(cudaDataType t) { return t == CUDA_R_32F ? 4 : 2; }

float load(const void *p, int64_t i, cudaDataType t) {
    if (t == CUDA_R_16BF) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    if (t == CUDA_R_16F) return __half2float(((const __half *)p)[i]);
    return ((const float *)p)[i];
}
void store(void *p, int64_t i, float v, cudaDataType t) {
    if (t == CUDA_R_16BF) ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
    else if (t == CUDA_R_16F) ((__half *)p)[i] = __float2half_rn(v);
    else ((float *)p)[i] = v;
}
bool combo_ok(cublasComputeType_t ct, cudaDataType a, cudaDataType b, cudaDataType c) {
    if (!known(a) || a != b || !known(c)) return false;
    if (ct == CUBLAS_COMPUTE_32F) return a == CUDA_R_32F ? c == CUDA_R_32F : c == a || c == CUDA_R_32F;
    if (ct == CUBLAS_COMPUTE_32F_FAST_TF32) return a == CUDA_R_32F && c == CUDA_R_32F;
    return false;
}
int64_t at_least1(int64_t v) { return v > 1 ? v : 1; }

/* D (m x n, ldd) = alpha op(A) op(B) + beta C (+ bias[i]), column-major */
void product(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const void *A, cudaDataType at, int64_t lda, const void *B,
             cudaDataType bt, int64_t ldb, float beta, const void *C, cudaDataType ct, int64_t ldc, void *D, cudaDataType dt, int64_t ldd,
             bool round_tf32, const void *bias, cudaDataType biast) {
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < m; i++) {
            double s = 0;
            for (int64_t l = 0; l < k; l++) {
                float a = load(A, ta ? l + i * lda : i + l * lda, at), b = load(B, tb ? j + l * ldb : l + j * ldb, bt);
                if (round_tf32) a = emu_tf32(a), b = emu_tf32(b);
                s += (double)a * b;
            }
            float v = (float)(alpha * s);
            if (beta != 0.0f) v += beta * load(C, i + j * ldc, ct);
            if (bias) v += load(bias, i, biast);
            store(D, i + j * ldd, v, dt);
        }
}

bool handle_ok(cublasHandle_t h) {
    if (!emu_live(h)) return false;
    emu_check_handle_device(h->dev, "cuBLAS");
    return true;
}

/* cuemu.h's emu_make / emu_unmake with cuBLAS's statuses */
template <typename T> cublasStatus_t make(T **out, const T &init) {
    if (!out) return CUBLAS_STATUS_INVALID_VALUE;
    return (*out = emu_make(init)) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}
template <typename T> cublasStatus_t unmake(T *p, cublasStatus_t bad) { return emu_unmake(p) ? CUBLAS_STATUS_SUCCESS : bad; }

cublasStatus_t gemm_check(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *alpha, const void *beta,
                          cudaDataType at, int lda, cudaDataType bt, int ldb, cudaDataType ct, int ldc, cublasComputeType_t compute,
                          cublasGemmAlgo_t algo) {
    if (!handle_ok(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if ((ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T) || m < 0 || n < 0 || k < 0 || !alpha || !beta)
        return CUBLAS_STATUS_INVALID_VALUE;
    if (lda < at_least1(ta == CUBLAS_OP_N ? m : k) || ldb < at_least1(tb == CUBLAS_OP_N ? k : n) || ldc < at_least1(m))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (!combo_ok(compute, at, bt, ct) || algo != CUBLAS_GEMM_DEFAULT) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (h->mode != CUBLAS_POINTER_MODE_HOST) { /* alpha and beta would be device pointers: not emulated */
        fprintf(stderr, "emulated cuBLAS: device pointer mode is not emulated\n");
        abort();
    }
    return CUBLAS_STATUS_SUCCESS;
}
} // namespace

cublasStatus_t cublasCreate(cublasHandle_t *h) { return make(h, cublasContext{0, NULL, NULL, 0, CUBLAS_POINTER_MODE_HOST, emu_current_device()}); }
cublasStatus_t cublasDestroy(cublasHandle_t h) { return unmake(h, CUBLAS_STATUS_NOT_INITIALIZED); }
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
    if (!handle_ok(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes) {
    if (!handle_ok(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (bytes && !ws) return CUBLAS_STATUS_INVALID_VALUE;
    if (((uintptr_t)ws & 255) != 0) return CUBLAS_STATUS_INVALID_VALUE; /* documented: 256-byte aligned */
    h->ws = ws, h->ws_bytes = bytes;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t m) {
    if (!handle_ok(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (m != CUBLAS_POINTER_MODE_HOST && m != CUBLAS_POINTER_MODE_DEVICE) return CUBLAS_STATUS_INVALID_VALUE;
    h->mode = m;
    return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS (emulated)";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED (emulated)";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED (emulated)";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE (emulated)";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED (emulated)";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED (emulated)";
    default: return "unknown cuBLAS status (emulated)";
    }
}
cublasStatus_t cublasGetVersion(cublasHandle_t h, int *version) {
    if (!handle_ok(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
    *version = 0;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *alpha, const void *A,
                            cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb, const void *beta, void *C, cudaDataType ct,
                            int ldc, cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    cublasStatus_t s = gemm_check(h, ta, tb, m, n, k, alpha, beta, at, lda, bt, ldb, ct, ldc, compute, algo);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    for (const void *q : {A, B, (const void *)C}) emu_check_on_device(q, "cublasGemmEx");
    product(ta == CUBLAS_OP_T, tb == CUBLAS_OP_T, m, n, k, *(const float *)alpha, A, at, lda, B, bt, ldb, *(const float *)beta, C, ct, ldc, C,
            ct, ldc, compute == CUBLAS_COMPUTE_32F_FAST_TF32, NULL, ct);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *alpha,
                                          const void *A, cudaDataType at, int lda, long long strideA, const void *B, cudaDataType bt, int ldb,
                                          long long strideB, const void *beta, void *C, cudaDataType ct, int ldc, long long strideC, int batch,
                                          cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    cublasStatus_t s = gemm_check(h, ta, tb, m, n, k, alpha, beta, at, lda, bt, ldb, ct, ldc, compute, algo);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    for (const void *q : {A, B, (const void *)C}) emu_check_on_device(q, "cublasGemmStridedBatchedEx");
    if (batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
    for (int i = 0; i < batch; i++)
        product(ta == CUBLAS_OP_T, tb == CUBLAS_OP_T, m, n, k, *(const float *)alpha, (const char *)A + i * strideA * (long long)esize(at), at,
                lda, (const char *)B + i * strideB * (long long)esize(bt), bt, ldb, *(const float *)beta,
                (char *)C + i * strideC * (long long)esize(ct), ct, ldc, (char *)C + i * strideC * (long long)esize(ct), ct, ldc,
                compute == CUBLAS_COMPUTE_32F_FAST_TF32, NULL, ct);
    return CUBLAS_STATUS_SUCCESS;
}

/* ---- cuBLASLt ---- */

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) { return make(h, cublasLtContext{0, emu_current_device()}); }
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) { return unmake(h, CUBLAS_STATUS_NOT_INITIALIZED); }
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t compute, cudaDataType_t scale) {
    if (d && ((compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_FAST_TF32) || scale != CUDA_R_32F)) return CUBLAS_STATUS_NOT_SUPPORTED;
    return make(d, cublasLtMatmulDescOpaque_t{0, compute, scale, CUBLAS_OP_N, CUBLAS_OP_N, CUBLAS_POINTER_MODE_HOST, CUBLASLT_EPILOGUE_DEFAULT, NULL, -1});
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) { return unmake(d, CUBLAS_STATUS_INVALID_VALUE); }
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const void *buf, size_t size) {
    if (!emu_live(d) || !buf) return CUBLAS_STATUS_INVALID_VALUE;
    int32_t i32;
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
    case CUBLASLT_MATMUL_DESC_TRANSB:
        if (size != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&i32, buf, 4);
        if (i32 != CUBLAS_OP_N && i32 != CUBLAS_OP_T) return CUBLAS_STATUS_INVALID_VALUE;
        (attr == CUBLASLT_MATMUL_DESC_TRANSA ? d->ta : d->tb) = i32;
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
        if (size != sizeof(uint32_t)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&d->epilogue, buf, 4);
        if (d->epilogue != CUBLASLT_EPILOGUE_DEFAULT && d->epilogue != CUBLASLT_EPILOGUE_BIAS) {
            fprintf(stderr, "emulated cuBLASLt: epilogue %u is not emulated\n", d->epilogue);
            abort();
        }
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        if (size != sizeof(void *)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&d->bias, buf, sizeof(void *));
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE:
    case CUBLASLT_MATMUL_DESC_POINTER_MODE:
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE:
        if (size != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&i32, buf, 4);
        if (attr == CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE) d->bias_type = i32;
        else if (attr == CUBLASLT_MATMUL_DESC_POINTER_MODE) d->mode = i32;
        else d->scale = (cudaDataType)i32;
        return CUBLAS_STATUS_SUCCESS;
    }
    fprintf(stderr, "emulated cuBLASLt: descriptor attribute %d is not emulated\n", (int)attr);
    abort();
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType type, uint64_t rows, uint64_t cols, int64_t ld) {
    if (l && !known(type)) return CUBLAS_STATUS_NOT_SUPPORTED;
    return make(l, cublasLtMatrixLayoutOpaque_t{0, type, rows, cols, ld});
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) { return unmake(l, CUBLAS_STATUS_INVALID_VALUE); }
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) {
    return make(p, cublasLtMatmulPreferenceOpaque_t{0, 0, {256, 256, 256, 256}}); /* documented defaults: no workspace, 256-byte buffers */
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) { return unmake(p, CUBLAS_STATUS_INVALID_VALUE); }
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr, const void *buf,
                                                    size_t size) {
    if (!emu_live(p) || !buf) return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
        if (size != sizeof(uint64_t)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&p->max_ws, buf, 8);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES:
        if (size != sizeof(uint32_t)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&p->align[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], buf, 4);
        return CUBLAS_STATUS_SUCCESS;
    }
    fprintf(stderr, "emulated cuBLASLt: preference attribute %d is not emulated\n", (int)attr);
    abort();
}

namespace {
bool layout_ok(cublasLtMatrixLayout_t l) { return emu_live(l); }

/* The problem the descriptor and layouts describe: m, n, k, or a status */
cublasStatus_t lt_problem(cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t A, cublasLtMatrixLayout_t B, cublasLtMatrixLayout_t C,
                          cublasLtMatrixLayout_t D, uint64_t *m, uint64_t *n, uint64_t *k) {
    if (!emu_live(d) || !layout_ok(A) || !layout_ok(B) || !layout_ok(C) || !layout_ok(D)) return CUBLAS_STATUS_INVALID_VALUE;
    uint64_t ar = d->ta == CUBLAS_OP_N ? A->rows : A->cols, ac = d->ta == CUBLAS_OP_N ? A->cols : A->rows;
    uint64_t br = d->tb == CUBLAS_OP_N ? B->rows : B->cols, bc = d->tb == CUBLAS_OP_N ? B->cols : B->rows;
    *m = D->rows, *n = D->cols, *k = ac;
    if (ar != D->rows || bc != D->cols || br != ac || C->rows != D->rows || C->cols != D->cols) return CUBLAS_STATUS_INVALID_VALUE;
    for (cublasLtMatrixLayout_t l : {A, B, C, D})
        if (l->ld < (int64_t)(l->rows > 1 ? l->rows : 1)) return CUBLAS_STATUS_INVALID_VALUE;
    if (C->type != D->type || !combo_ok(d->compute, A->type, B->type, D->type)) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (d->scale != CUDA_R_32F || d->mode != CUBLAS_POINTER_MODE_HOST) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (d->epilogue == CUBLASLT_EPILOGUE_BIAS && d->bias_type != -1 && d->bias_type != (int32_t)D->type) return CUBLAS_STATUS_NOT_SUPPORTED;
    return CUBLAS_STATUS_SUCCESS;
}
uint32_t align_of(const void *p) {
    uintptr_t u = (uintptr_t)p, low = u & (~u + 1); /* the lowest set bit */
    return u && low < 256 ? (uint32_t)low : 256;
}
/* The algorithm's data: [0..3] the alignments it was chosen for (A, B, C, D), [4] the bias pointer's,
 * [5] m and n, [6] k (tagged), [7] the workspace it needs */
const uint64_t ALGO_TAG = 0x656d75616c676fULL;
} // namespace

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t A, cublasLtMatrixLayout_t B,
                                              cublasLtMatrixLayout_t C, cublasLtMatrixLayout_t D, cublasLtMatmulPreference_t p, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int *returned) {
    if (!emu_live(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
    emu_check_handle_device(h->dev, "cuBLASLt");
    if (requested <= 0 || !results || !returned || !emu_live(p)) return CUBLAS_STATUS_INVALID_VALUE;
    uint64_t m, n, k;
    cublasStatus_t s = lt_problem(d, A, B, C, D, &m, &n, &k);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    memset(&results[0], 0, sizeof results[0]);
    uint64_t *a = results[0].algo.data;
    for (int i = 0; i < 4; i++) a[i] = p->align[i];
    a[4] = d->epilogue == CUBLASLT_EPILOGUE_BIAS ? align_of(d->bias) : 1;
    if (m >> 32 || n >> 32) return CUBLAS_STATUS_NOT_SUPPORTED; /* beyond what the emulation packs */
    a[5] = m << 32 | n, a[6] = k ^ ALGO_TAG;
    /* some workspace, within the preference's maximum, that the call must then be given */
    a[7] = results[0].workspaceSize = p->max_ws < (1u << 20) ? p->max_ws : (1u << 20);
    results[0].state = CUBLAS_STATUS_SUCCESS;
    results[0].wavesCount = 1.0f;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void *alpha, const void *A, cublasLtMatrixLayout_t Adesc,
                              const void *B, cublasLtMatrixLayout_t Bdesc, const void *beta, const void *C, cublasLtMatrixLayout_t Cdesc, void *D,
                              cublasLtMatrixLayout_t Ddesc, const cublasLtMatmulAlgo_t *algo, void *workspace, size_t wsBytes, cudaStream_t) {
    if (!emu_live(h)) return CUBLAS_STATUS_NOT_INITIALIZED;
    emu_check_handle_device(h->dev, "cuBLASLt");
    for (const void *q : {A, B, C, (const void *)D, (const void *)workspace}) emu_check_on_device(q, "cublasLtMatmul");
    if (!alpha || !beta || !algo) return CUBLAS_STATUS_INVALID_VALUE;
    uint64_t m, n, k;
    cublasStatus_t s = lt_problem(d, Adesc, Bdesc, Cdesc, Ddesc, &m, &n, &k);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    const uint64_t *a = algo->data;
    if (a[5] != (m << 32 | n) || a[6] != (k ^ ALGO_TAG)) return CUBLAS_STATUS_INVALID_VALUE; /* an algorithm for another problem */
    if (wsBytes < a[7] || (a[7] && !workspace)) return CUBLAS_STATUS_INVALID_VALUE;        /* less workspace than it needs */
    if (C == D && Cdesc != Ddesc) return CUBLAS_STATUS_INVALID_VALUE;                       /* in place: one layout for both */
    const void *ptrs[4] = {A, B, C, D};
    const char *names = "ABCD";
    for (int i = 0; i < 4; i++)
        if ((uintptr_t)ptrs[i] % a[i]) {
            fprintf(stderr, "emulated cuBLASLt: %c %p is not aligned to the %llu bytes its algorithm was chosen for (a misaligned address on the GPU)\n",
                    names[i], ptrs[i], (unsigned long long)a[i]);
            abort();
        }
    const void *bias = NULL;
    if (d->epilogue == CUBLASLT_EPILOGUE_BIAS) {
        if (!d->bias) return CUBLAS_STATUS_INVALID_VALUE;
        if ((uintptr_t)d->bias % a[4]) {
            fprintf(stderr, "emulated cuBLASLt: the bias %p is less aligned than the %llu bytes the algorithm was chosen for\n", d->bias,
                    (unsigned long long)a[4]);
            abort();
        }
        bias = d->bias;
    }
    product(d->ta == CUBLAS_OP_T, d->tb == CUBLAS_OP_T, (int64_t)m, (int64_t)n, (int64_t)k, *(const float *)alpha, A, Adesc->type, Adesc->ld, B,
            Bdesc->type, Bdesc->ld, *(const float *)beta, C, Cdesc->type, Cdesc->ld, D, Ddesc->type, Ddesc->ld,
            d->compute == CUBLAS_COMPUTE_32F_FAST_TF32, bias, Ddesc->type);
    return CUBLAS_STATUS_SUCCESS;
}

/* blas_loader.cu's table, over these */
const kt_cu_blas_api *kt_cu_blas(const char **why) {
    (void)why;
    static const kt_cu_blas_api api = {cublasCreate,
                                       cublasDestroy,
                                       cublasSetStream,
                                       cublasSetWorkspace,
                                       cublasSetPointerMode,
                                       cublasGetStatusString,
                                       cublasGetVersion,
                                       cublasGemmEx,
                                       cublasGemmStridedBatchedEx,
                                       1,
                                       cublasLtCreate,
                                       cublasLtDestroy,
                                       cublasLtMatmulDescCreate,
                                       cublasLtMatmulDescDestroy,
                                       cublasLtMatmulDescSetAttribute,
                                       cublasLtMatrixLayoutCreate,
                                       cublasLtMatrixLayoutDestroy,
                                       cublasLtMatmulPreferenceCreate,
                                       cublasLtMatmulPreferenceDestroy,
                                       cublasLtMatmulPreferenceSetAttribute,
                                       cublasLtMatmulAlgoGetHeuristic,
                                       cublasLtMatmul};
    return &api;
}
