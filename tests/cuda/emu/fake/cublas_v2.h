// Emulation stand-in for <cublas_v2.h> (see cuemu.h): the types and GEMM entry points gemm.cu uses,
// with cublas_api.h's values; emu_cublas.cpp implements them.
#pragma once
#include "cuemu.h"
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum cudaDataType_t { CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14 } cudaDataType;
typedef enum { CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_FAST_TF32 = 77 } cublasComputeType_t;
typedef enum { CUBLAS_GEMM_DEFAULT = -1 } cublasGemmAlgo_t;
cublasStatus_t cublasGetVersion(cublasHandle_t h, int *version);
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *alpha,
                            const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb, const void *beta, void *C,
                            cudaDataType ct, int ldc, cublasComputeType_t compute, cublasGemmAlgo_t algo);
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                          const void *alpha, const void *A, cudaDataType at, int lda, long long strideA, const void *B,
                                          cudaDataType bt, int ldb, long long strideB, const void *beta, void *C, cudaDataType ct, int ldc,
                                          long long strideC, int batch, cublasComputeType_t compute, cublasGemmAlgo_t algo);
