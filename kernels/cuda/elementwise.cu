// Elementwise kernels: add and GELU (erf form, as PyTorch's default) with its derivative.
#include <cuda_runtime.h>
#include <stdio.h>

#include "kernels/cuda/kt_cuda.h"

static int launch_check(const char *what, char *msg, size_t n) {
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) return 0;
    if (msg && n) snprintf(msg, n, "%s: %s", what, cudaGetErrorString(e));
    return (int)e;
}

static unsigned blocks_for(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    return (unsigned)(b > 65535 * 32 ? 65535 * 32 : (b < 1 ? 1 : b));
}

__global__ void add_f32(float *y, const float *a, const float *b, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = a[i] + b[i];
}

__global__ void gelu_f32(float *y, const float *x, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float v = x[i];
        y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    }
}

__global__ void gelu_bwd_f32(float *dx, const float *dy, const float *x, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float v = x[i];
        float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
        float pdf = 0.39894228040143268f * expf(-0.5f * v * v);
        dx[i] = dy[i] * (cdf + v * pdf);
    }
}

extern "C" int kt_cuda_add_f32(float *y, const float *a, const float *b, int64_t n, char *msg, size_t ml) {
    add_f32<<<blocks_for(n, 256), 256>>>(y, a, b, n);
    return launch_check("add_f32", msg, ml);
}

extern "C" int kt_cuda_gelu_f32(float *y, const float *x, int64_t n, char *msg, size_t ml) {
    gelu_f32<<<blocks_for(n, 256), 256>>>(y, x, n);
    return launch_check("gelu_f32", msg, ml);
}

extern "C" int kt_cuda_gelu_bwd_f32(float *dx, const float *dy, const float *x, int64_t n, char *msg, size_t ml) {
    gelu_bwd_f32<<<blocks_for(n, 256), 256>>>(dx, dy, x, n);
    return launch_check("gelu_bwd_f32", msg, ml);
}
