// A host emulation of the small CUDA subset kernels/cuda/ uses, for checking kernel index math and
// coverage on machines without a GPU (tests/cuda/emu/run_emulated.sh). Blocks run one after another;
// kernels that synchronise or shuffle run each thread of a block as a fiber (emu.cpp: barriers
// emulate __syncthreads and warp shuffles). cuBLAS, cuBLASLt and cuDNN's convolutions are emulated from
// their documented semantics (emu_cublas.cpp, emu_cudnn.cpp), so gemm.cu and conv_cudnn.cu run too.
#pragma once
#define KT_CUDA_EMU 1
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <math.h>
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
struct emu_uint3 { unsigned x, y, z; };
struct alignas(16) float4 { float x, y, z, w; };
inline float4 make_float4(float a, float b, float c, float d) { return float4{a, b, c, d}; }
extern thread_local emu_uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
void __syncthreads();
float __shfl_xor_sync(unsigned m, float v, int o);
double __shfl_xor_sync(unsigned m, double v, int o);
void emu_launch(dim3 grid, dim3 block, int coop, std::function<void()> body);
/* Emulated GPUs (KT_EMU_DEVICES=N, default 1): each thread has a current device (cudaSetDevice), each
 * cudaMalloc'd buffer belongs to the device current when it was made, and a kernel launch, copy or
 * library call that touches a buffer of another device than the calling thread's current one
 * stops with a message: on a card it would fault or read the wrong GPU's memory. */
int emu_current_device();
void emu_check_on_device(const void *p, const char *what);
void emu_check_handle_device(int dev, const char *what);
#include <type_traits>
template <class T> inline void emu_arg_on_device(const char *k, const T &a) {
    if constexpr (std::is_pointer_v<T> && !std::is_function_v<std::remove_pointer_t<T>>) emu_check_on_device((const void *)a, k);
}
template <class... A> inline void emu_args_on_device(const char *k, const A &...a) { (emu_arg_on_device(k, a), ...); }

typedef int cudaError_t;
enum {
    cudaSuccess = 0,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidValue = 1,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidDeviceFunction = 98,
    cudaErrorNoKernelImageForDevice = 209,
    cudaErrorInvalidPtx = 218,
    cudaErrorJitCompilerNotFound = 221,
    cudaErrorUnsupportedPtxVersion = 222
};
#define CUDART_VERSION 13000
typedef void *cudaStream_t;
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice, cudaMemcpyDefault };
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16 };
struct cudaDeviceProp { char name[256]; int major, minor; size_t totalGlobalMem; int multiProcessorCount; };
cudaError_t cudaGetLastError();
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
cudaError_t cudaMalloc(void **p, size_t n);
cudaError_t cudaFree(void *p);
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind k);
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t st);
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t st);
cudaError_t cudaMemset(void *d, int v, size_t n);
cudaError_t cudaStreamSynchronize(cudaStream_t);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaSetDevice(int);
cudaError_t cudaGetDevice(int *d);
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int dev);
cudaError_t cudaMemGetInfo(size_t *f, size_t *t);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev);
cudaError_t cudaDriverGetVersion(int *v);
/* A kernel's attributes: this build's code loads on the device. KT_EMU_NO_KERNEL_IMAGE=1 emulates a GPU
 * none of the built architectures runs on (with KT_EMU_CC=8.6, say, for its compute capability);
 * KT_EMU_NO_KERNEL_IMAGE=ptx a driver too old to compile the build's PTX. */
struct cudaFuncAttributes { int numRegs, maxThreadsPerBlock, binaryVersion, ptxVersion; };
template <typename F> cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *a, F) {
    const char *v = getenv("KT_EMU_NO_KERNEL_IMAGE");
    if (v && !strcmp(v, "ptx")) return cudaErrorUnsupportedPtxVersion;
    if (v && *v && strcmp(v, "0")) return cudaErrorNoKernelImageForDevice;
    *a = {32, 1024, 90, 90};
    return cudaSuccess;
}

/* round-to-nearest arithmetic that the device never contracts into an FMA (the host build has no FMA) */
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
/* The emulated libraries' handles and descriptors (emu_cublas.cpp, emu_cudnn.cpp: structs with a
 * `magic` field): made with their initial value and marked live, destroyed once; a destroyed or
 * never-made one is not live, so a use after destroy is refused as the libraries refuse it. */
const uint32_t EMU_LIVE = 0x6b74c0deu, EMU_DEAD = 0xdeadbeefu;
template <typename T> bool emu_live(const T *p) { return p && p->magic == EMU_LIVE; }
template <typename T> T *emu_make(const T &init) {
    T *p = (T *)malloc(sizeof(T));
    if (p) *p = init, p->magic = EMU_LIVE;
    return p;
}
template <typename T> bool emu_unmake(T *p) {
    if (!emu_live(p)) return false;
    p->magic = EMU_DEAD;
    free(p);
    return true;
}
/* What tensor cores read of an f32 operand in TF32 mode (cuBLAS's FAST_TF32, cuDNN's tensor-op math):
 * 10 of the 23 mantissa bits, rounded to nearest even; inf and NaN pass */
inline float emu_tf32(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    if ((u & 0x7f800000u) == 0x7f800000u) return v;
    u += 0xfffu + ((u >> 13) & 1u);
    u &= ~0x1fffu;
    memcpy(&v, &u, 4);
    return v;
}
struct __nv_bfloat16 { uint16_t x; };
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    uint32_t u; memcpy(&u, &f, 4);
    __nv_bfloat16 h;
    if ((u & 0x7fffffffu) > 0x7f800000u) { h.x = 0x7fff; return h; }
    u += 0x7fffu + ((u >> 16) & 1u);
    h.x = (uint16_t)(u >> 16);
    return h;
}
inline float __bfloat162float(__nv_bfloat16 h) { uint32_t u = (uint32_t)h.x << 16; float f; memcpy(&f, &u, 4); return f; }
/* IEEE half through engine/dtype.c's conversions (round to nearest even, as __float2half_rn) */
extern "C" uint16_t kt_f32_to_f16(float f);
extern "C" float kt_f16_to_f32(uint16_t h);
struct __half { uint16_t x; };
inline __half __float2half_rn(float f) { __half h; h.x = kt_f32_to_f16(f); return h; }
inline float __half2float(__half h) { return kt_f16_to_f32(h.x); }

/* cuBLAS's handle and status codes (values as cublas_api.h); the entry points are in cublas_v2.h and
 * cublasLt.h here, implemented by emu_cublas.cpp */
typedef struct cublasContext *cublasHandle_t;
typedef int cublasStatus_t;
enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_EXECUTION_FAILED = 13,
    CUBLAS_STATUS_NOT_SUPPORTED = 15
};
typedef enum { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 } cublasPointerMode_t;
cublasStatus_t cublasCreate(cublasHandle_t *h);
cublasStatus_t cublasDestroy(cublasHandle_t h);
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s);
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes);
cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t m);
const char *cublasGetStatusString(cublasStatus_t s);
/* cuDNN's handle and status (values as cudnn_graph.h); the rest is in cudnn.h here (emu_cudnn.cpp) */
typedef struct cudnnContext *cudnnHandle_t;
typedef enum { CUDNN_STATUS_SUCCESS = 0, CUDNN_STATUS_BAD_PARAM = 2000, CUDNN_STATUS_NOT_SUPPORTED = 3000 } cudnnStatus_t;
cudnnStatus_t cudnnCreate(cudnnHandle_t *h);
cudnnStatus_t cudnnDestroy(cudnnHandle_t h);
cudnnStatus_t cudnnSetStream(cudnnHandle_t h, cudaStream_t s);
const char *cudnnGetErrorString(cudnnStatus_t s);
inline size_t cudnnGetVersion() { return 91900; }
