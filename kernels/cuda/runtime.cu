// Device discovery, buffers and copies for the CUDA backend.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdio.h>
#include <string.h>

#include "kernels/cuda/blas_loader.cuh"
#include "kernels/cuda/kt_cuda.h"

static int fail(cudaError_t e, const char *what, char *msg, size_t n) {
    if (msg && n) snprintf(msg, n, "%s: %s", what, cudaGetErrorString(e));
    return (int)e;
}

extern "C" void kt_cuda_query(kt_cuda_info *info) {
    memset(info, 0, sizeof *info);
    cudaDriverGetVersion(&info->driver_version);
    cudaRuntimeGetVersion(&info->runtime_version);
    info->cudnn_version = (int)cudnnGetVersion();
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (info->driver_version == 0)
            snprintf(info->error, sizeof info->error, "no NVIDIA driver on this machine");
        else
            snprintf(info->error, sizeof info->error, "%s", cudaGetErrorString(e));
        cudaGetLastError();  // clear the sticky error so later calls start clean
        return;
    }
    if (n == 0) {
        snprintf(info->error, sizeof info->error, "no CUDA device");
        return;
    }
    info->device_count = n;
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) == cudaSuccess) {
        snprintf(info->name, sizeof info->name, "%s", p.name);
        info->cc_major = p.major;
        info->cc_minor = p.minor;
        info->total_mem = p.totalGlobalMem;
        info->sm_count = p.multiProcessorCount;
    }
    size_t fr = 0, tot = 0;
    if (cudaMemGetInfo(&fr, &tot) == cudaSuccess) info->free_mem = fr;
    const kt_cu_blas_api *b = kt_cu_blas(NULL); /* loaded only here, where a device is present */
    cublasHandle_t h;
    if (b && b->create(&h) == CUBLAS_STATUS_SUCCESS) {
        b->get_version(h, &info->cublas_version);
        b->destroy(h);
    }
}

extern "C" int kt_cuda_device_props(int device, char *name, size_t name_len, int *cc_major, int *cc_minor, int *sm_count, size_t *total_mem) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, device) != cudaSuccess) {
        cudaGetLastError();
        return 1;
    }
    snprintf(name, name_len, "%s", p.name);
    *cc_major = p.major, *cc_minor = p.minor, *sm_count = p.multiProcessorCount, *total_mem = p.totalGlobalMem;
    return 0;
}

extern "C" int kt_cuda_available(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n > 0;
}

extern "C" int kt_cuda_malloc(void **ptr, size_t bytes, char *msg, size_t n) {
    cudaError_t e = cudaMalloc(ptr, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        *ptr = NULL;
        char what[96];
        snprintf(what, sizeof what, "cudaMalloc(%zu bytes)", bytes);
        return fail(e, what, msg, n);
    }
    return 0;
}

extern "C" void kt_cuda_free(void *ptr) {
    if (ptr) cudaFree(ptr);
}

extern "C" int kt_cuda_memcpy_h2d(void *dst, const void *src, size_t bytes, char *msg, size_t n) {
    cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice);
    return e == cudaSuccess ? 0 : fail(e, "copy to device", msg, n);
}

extern "C" int kt_cuda_memcpy_d2h(void *dst, const void *src, size_t bytes, char *msg, size_t n) {
    cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
    return e == cudaSuccess ? 0 : fail(e, "copy to host", msg, n);
}

extern "C" int kt_cuda_memcpy_d2d(void *dst, const void *src, size_t bytes, char *msg, size_t n) {
    cudaError_t e = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice);
    return e == cudaSuccess ? 0 : fail(e, "copy on device", msg, n);
}

extern "C" int kt_cuda_memset(void *dst, int value, size_t bytes, char *msg, size_t n) {
    cudaError_t e = cudaMemset(dst, value, bytes);
    return e == cudaSuccess ? 0 : fail(e, "cudaMemset", msg, n);
}

extern "C" int kt_cuda_sync(char *msg, size_t n) {
    cudaError_t e = cudaDeviceSynchronize();
    return e == cudaSuccess ? 0 : fail(e, "cudaDeviceSynchronize", msg, n);
}

extern "C" int kt_cuda_host_register(void *p, size_t bytes, char *msg, size_t n) {
    cudaError_t e = cudaHostRegister(p, bytes, cudaHostRegisterDefault);
    if (e == cudaSuccess) return 0;
    cudaGetLastError(); /* not sticky: the memory just stays pageable */
    return fail(e, "page-locking host memory", msg, n);
}

extern "C" void kt_cuda_host_unregister(void *p) {
    if (cudaHostUnregister(p) != cudaSuccess) cudaGetLastError();
}
