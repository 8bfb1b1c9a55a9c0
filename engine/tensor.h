/* Eager tensors: shape, strides (in elements), dtype, device, and views sharing one storage.
 * Used for I/O, tests and host<->device transfers; graph nodes carry shapes and planned memory. */
#ifndef KT_TENSOR_H
#define KT_TENSOR_H

#include <stdint.h>

#include "base/status.h"
#include "engine/dtype.h"

#define KT_MAX_DIMS 6

typedef struct kt_storage {
    void *data;
    size_t bytes;
    kt_device device;
    int refs;
    int owned; /* 0: wraps caller memory, never freed here */
} kt_storage;

typedef struct kt_tensor {
    kt_dtype dtype;
    kt_device device;
    int ndim;
    int64_t shape[KT_MAX_DIMS];
    int64_t stride[KT_MAX_DIMS]; /* elements */
    int64_t offset;              /* elements into storage */
    kt_storage *storage;
} kt_tensor;

/* A new zeroed, contiguous tensor. */
kt_status kt_tensor_new(kt_tensor **out, kt_dtype dt, kt_device dev, int ndim, const int64_t *shape, kt_err *err);
/* Wraps caller memory (not freed by kt_tensor_free). */
kt_status kt_tensor_wrap(kt_tensor **out, void *data, kt_dtype dt, kt_device dev, int ndim, const int64_t *shape,
                         kt_err *err);
void kt_tensor_free(kt_tensor *t);

int64_t kt_tensor_numel(const kt_tensor *t);
int kt_tensor_is_contiguous(const kt_tensor *t);
/* Pointer to element 0 of this view. */
void *kt_tensor_data(const kt_tensor *t);
/* "(4, 56, 56, 96)" into buf. */
const char *kt_shape_str(int ndim, const int64_t *shape, char *buf, int n);

/* Views share the storage: slice along one axis, permute axes, reshape (contiguous only). */
kt_status kt_tensor_slice(kt_tensor **out, const kt_tensor *t, int axis, int64_t start, int64_t len, kt_err *err);
kt_status kt_tensor_permute(kt_tensor **out, const kt_tensor *t, const int *perm, kt_err *err);
kt_status kt_tensor_reshape(kt_tensor **out, const kt_tensor *t, int ndim, const int64_t *shape, kt_err *err);

/* Copies src into dst of the same shape: any strides, dtype conversion, host<->device. */
kt_status kt_tensor_copy(kt_tensor *dst, const kt_tensor *src, kt_err *err);
/* Element access on host tensors, as f32 whatever the storage type. */
float kt_tensor_get(const kt_tensor *t, const int64_t *idx);
void kt_tensor_set(kt_tensor *t, const int64_t *idx, float v);

#endif
