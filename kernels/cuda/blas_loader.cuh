// cuBLAS entry points, loaded when the first CUDA context is made (blas_loader.cu).
#ifndef KT_BLAS_LOADER_CUH
#define KT_BLAS_LOADER_CUH

#include <cublas_v2.h>
#include <cublasLt.h>

/* The functions the CUDA backend calls, typed from cuBLAS's own declarations (under host emulation,
 * tests/cuda/emu/emu_cublas.cpp's implementations of them). */
struct kt_cu_blas_api {
    decltype(&cublasCreate) create;
    decltype(&cublasDestroy) destroy;
    decltype(&cublasSetStream) set_stream;
    decltype(&cublasSetWorkspace) set_workspace;
    decltype(&cublasSetPointerMode) set_pointer_mode;
    decltype(&cublasGetStatusString) status_string;
    decltype(&cublasGetVersion) get_version;
    /* spelled out: C++ sees two overloads of each (cudaDataType or cublasComputeType_t compute type) */
    cublasStatus_t (*gemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *, const void *,
                           cudaDataType, int, const void *, cudaDataType, int, const void *, void *, cudaDataType, int,
                           cublasComputeType_t, cublasGemmAlgo_t);
    cublasStatus_t (*gemm_batched)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                                   const void *, cudaDataType, int, long long, const void *, cudaDataType, int, long long,
                                   const void *, void *, cudaDataType, int, long long, int, cublasComputeType_t,
                                   cublasGemmAlgo_t);
    /* cuBLASLt (a dependency of cuBLAS, so loaded with it): GEMMs with a bias epilogue (gemm.cu,
     * kt_cuda_gemm_bias). lt_ok 0: not found; those GEMMs then take the cuBLAS path. */
    int lt_ok;
    decltype(&cublasLtCreate) lt_create;
    decltype(&cublasLtDestroy) lt_destroy;
    decltype(&cublasLtMatmulDescCreate) lt_desc_create;
    decltype(&cublasLtMatmulDescDestroy) lt_desc_destroy;
    decltype(&cublasLtMatmulDescSetAttribute) lt_desc_set;
    decltype(&cublasLtMatrixLayoutCreate) lt_layout_create;
    decltype(&cublasLtMatrixLayoutDestroy) lt_layout_destroy;
    decltype(&cublasLtMatmulPreferenceCreate) lt_pref_create;
    decltype(&cublasLtMatmulPreferenceDestroy) lt_pref_destroy;
    decltype(&cublasLtMatmulPreferenceSetAttribute) lt_pref_set;
    decltype(&cublasLtMatmulAlgoGetHeuristic) lt_heuristic;
    decltype(&cublasLtMatmul) lt_matmul;
};

/* The loaded API, or NULL with *why (when why is given) saying what failed. Thread-safe; loads once. */
const kt_cu_blas_api *kt_cu_blas(const char **why);

#endif
