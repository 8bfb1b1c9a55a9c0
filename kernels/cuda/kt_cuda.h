/* C interface of the CUDA kernels and runtime helpers (compiled by nvcc, called from C).
 * Every function returns 0 on success, or a nonzero code with a message in msg (may be NULL). */
#ifndef KT_CUDA_H
#define KT_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kt_cuda_info {
    int device_count;
    int driver_version;  /* e.g. 13000, 0 when no driver */
    int runtime_version;
    int cudnn_version;   /* runtime cuDNN, e.g. 91300 */
    int cublas_version;
    char name[256];      /* device 0 */
    int cc_major, cc_minor;
    size_t total_mem, free_mem;
    int sm_count;
    char error[256];     /* why no device, when device_count == 0 */
} kt_cuda_info;

/* Fills info; never fails: device_count 0 and error say why no GPU can be used. */
void kt_cuda_query(kt_cuda_info *info);
/* 1 when a usable device is present. */
int kt_cuda_available(void);

int kt_cuda_malloc(void **ptr, size_t bytes, char *msg, size_t msg_len);
void kt_cuda_free(void *ptr);
int kt_cuda_memcpy_h2d(void *dst, const void *src, size_t bytes, char *msg, size_t msg_len);
int kt_cuda_memcpy_d2h(void *dst, const void *src, size_t bytes, char *msg, size_t msg_len);
int kt_cuda_memcpy_d2d(void *dst, const void *src, size_t bytes, char *msg, size_t msg_len);
int kt_cuda_memset(void *dst, int value, size_t bytes, char *msg, size_t msg_len);
int kt_cuda_sync(char *msg, size_t msg_len);

/* Elementwise kernels (n elements, device pointers). */
int kt_cuda_add_f32(float *y, const float *a, const float *b, int64_t n, char *msg, size_t msg_len);
int kt_cuda_gelu_f32(float *y, const float *x, int64_t n, char *msg, size_t msg_len);
int kt_cuda_gelu_bwd_f32(float *dx, const float *dy, const float *x, int64_t n, char *msg, size_t msg_len);

#ifdef __cplusplus
}
#endif
#endif
