/* Eager tensor storage, views and strided copies. */
#include "engine/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef KT_HAVE_CUDA
#include "kernels/cuda/kt_cuda.h"
#endif

const char *kt_shape_str(int ndim, const int64_t *shape, char *buf, int n) {
    int k = snprintf(buf, (size_t)n, "(");
    for (int i = 0; i < ndim && k < n; i++) k += snprintf(buf + k, (size_t)(n - k), i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < n) snprintf(buf + k, (size_t)(n - k), ")");
    return buf;
}

static void set_contiguous_strides(kt_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        t->stride[i] = s;
        s *= t->shape[i];
    }
}

static kt_status check_shape(int ndim, const int64_t *shape, kt_err *err) {
    char b[128];
    if (ndim < 0 || ndim > KT_MAX_DIMS) return kt_err_set(err, KT_ERR_SHAPE, "tensor rank %d outside 0..%d", ndim, KT_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0) return kt_err_set(err, KT_ERR_SHAPE, "negative dimension in shape %s", kt_shape_str(ndim, shape, b, sizeof b));
    return KT_OK;
}

static kt_tensor *alloc_header(kt_dtype dt, kt_device dev, int ndim, const int64_t *shape) {
    kt_tensor *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->dtype = dt;
    t->device = dev;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    set_contiguous_strides(t);
    return t;
}

int64_t kt_tensor_numel(const kt_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

kt_status kt_tensor_new(kt_tensor **out, kt_dtype dt, kt_device dev, int ndim, const int64_t *shape, kt_err *err) {
    *out = NULL;
    kt_status s = check_shape(ndim, shape, err);
    if (s) return s;
    kt_tensor *t = alloc_header(dt, dev, ndim, shape);
    kt_storage *st = calloc(1, sizeof *st);
    if (!t || !st) {
        free(t);
        free(st);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for a tensor header");
    }
    st->bytes = (size_t)kt_tensor_numel(t) * kt_dtype_size(dt);
    st->device = dev;
    st->refs = 1;
    st->owned = 1;
    if (dev == KT_CPU) {
        st->data = calloc(st->bytes ? st->bytes : 1, 1);
        if (!st->data) {
            size_t bytes = st->bytes;
            free(t);
            free(st);
            return kt_err_set(err, KT_ERR_NOMEM, "no memory for a tensor of %zu bytes", bytes);
        }
    } else {
#ifdef KT_HAVE_CUDA
        char msg[256];
        if (kt_cuda_malloc(&st->data, st->bytes, msg, sizeof msg) || kt_cuda_memset(st->data, 0, st->bytes, msg, sizeof msg)) {
            kt_cuda_free(st->data);
            free(t);
            free(st);
            return kt_err_set(err, KT_ERR_CUDA, "%s", msg);
        }
#else
        free(t);
        free(st);
        return kt_err_set(err, KT_ERR_UNSUPPORTED, "a CUDA tensor needs a build with CUDA (-DKT_CUDA=ON)");
#endif
    }
    t->storage = st;
    *out = t;
    return KT_OK;
}

kt_status kt_tensor_wrap(kt_tensor **out, void *data, kt_dtype dt, kt_device dev, int ndim, const int64_t *shape,
                         kt_err *err) {
    *out = NULL;
    kt_status s = check_shape(ndim, shape, err);
    if (s) return s;
    kt_tensor *t = alloc_header(dt, dev, ndim, shape);
    kt_storage *st = calloc(1, sizeof *st);
    if (!t || !st) {
        free(t);
        free(st);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for a tensor header");
    }
    st->data = data;
    st->bytes = (size_t)kt_tensor_numel(t) * kt_dtype_size(dt);
    st->device = dev;
    st->refs = 1;
    t->storage = st;
    *out = t;
    return KT_OK;
}

void kt_tensor_free(kt_tensor *t) {
    if (!t) return;
    kt_storage *st = t->storage;
    if (st && --st->refs == 0) {
        if (st->owned) {
            if (st->device == KT_CPU) free(st->data);
#ifdef KT_HAVE_CUDA
            else kt_cuda_free(st->data);
#endif
        }
        free(st);
    }
    free(t);
}

int kt_tensor_is_contiguous(const kt_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return 0;
        s *= t->shape[i];
    }
    return 1;
}

void *kt_tensor_data(const kt_tensor *t) {
    return (char *)t->storage->data + (size_t)t->offset * kt_dtype_size(t->dtype);
}

static kt_tensor *view_of(const kt_tensor *t) {
    kt_tensor *v = malloc(sizeof *v);
    if (!v) return NULL;
    *v = *t;
    v->storage->refs++;
    return v;
}

kt_status kt_tensor_slice(kt_tensor **out, const kt_tensor *t, int axis, int64_t start, int64_t len, kt_err *err) {
    char b[128];
    *out = NULL;
    if (axis < 0 || axis >= t->ndim)
        return kt_err_set(err, KT_ERR_SHAPE, "slice axis %d out of range for shape %s", axis, kt_shape_str(t->ndim, t->shape, b, sizeof b));
    if (start < 0 || len < 0 || start + len > t->shape[axis])
        return kt_err_set(err, KT_ERR_SHAPE, "slice [%lld, %lld) outside axis %d of shape %s", (long long)start,
                          (long long)(start + len), axis, kt_shape_str(t->ndim, t->shape, b, sizeof b));
    kt_tensor *v = view_of(t);
    if (!v) return kt_err_set(err, KT_ERR_NOMEM, "no memory for a view");
    v->offset += start * t->stride[axis];
    v->shape[axis] = len;
    *out = v;
    return KT_OK;
}

kt_status kt_tensor_permute(kt_tensor **out, const kt_tensor *t, const int *perm, kt_err *err) {
    *out = NULL;
    int seen[KT_MAX_DIMS] = {0};
    for (int i = 0; i < t->ndim; i++) {
        if (perm[i] < 0 || perm[i] >= t->ndim || seen[perm[i]])
            return kt_err_set(err, KT_ERR_ARG, "permutation is not a permutation of %d axes", t->ndim);
        seen[perm[i]] = 1;
    }
    kt_tensor *v = view_of(t);
    if (!v) return kt_err_set(err, KT_ERR_NOMEM, "no memory for a view");
    for (int i = 0; i < t->ndim; i++) {
        v->shape[i] = t->shape[perm[i]];
        v->stride[i] = t->stride[perm[i]];
    }
    *out = v;
    return KT_OK;
}

kt_status kt_tensor_reshape(kt_tensor **out, const kt_tensor *t, int ndim, const int64_t *shape, kt_err *err) {
    char a[128], b[128];
    *out = NULL;
    kt_status s = check_shape(ndim, shape, err);
    if (s) return s;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    if (n != kt_tensor_numel(t))
        return kt_err_set(err, KT_ERR_SHAPE, "cannot reshape %s (%lld elements) to %s (%lld elements)",
                          kt_shape_str(t->ndim, t->shape, a, sizeof a), (long long)kt_tensor_numel(t),
                          kt_shape_str(ndim, shape, b, sizeof b), (long long)n);
    if (!kt_tensor_is_contiguous(t))
        return kt_err_set(err, KT_ERR_ARG, "reshape of a non-contiguous view %s: copy it first", kt_shape_str(t->ndim, t->shape, a, sizeof a));
    kt_tensor *v = view_of(t);
    if (!v) return kt_err_set(err, KT_ERR_NOMEM, "no memory for a view");
    v->ndim = ndim;
    for (int i = 0; i < ndim; i++) v->shape[i] = shape[i];
    set_contiguous_strides(v);
    *out = v;
    return KT_OK;
}

static int64_t offset_of(const kt_tensor *t, int64_t linear) {
    int64_t off = t->offset;
    for (int i = t->ndim - 1; i >= 0; i--) {
        int64_t k = linear % t->shape[i];
        linear /= t->shape[i];
        off += k * t->stride[i];
    }
    return off;
}

static float load(const void *base, kt_dtype dt, int64_t off) {
    switch (dt) {
    case KT_F32: return ((const float *)base)[off];
    case KT_BF16: return kt_bf16_to_f32(((const uint16_t *)base)[off]);
    case KT_F16: return kt_f16_to_f32(((const uint16_t *)base)[off]);
    default: return (float)((const int32_t *)base)[off];
    }
}

static void store(void *base, kt_dtype dt, int64_t off, float v) {
    switch (dt) {
    case KT_F32: ((float *)base)[off] = v; break;
    case KT_BF16: ((uint16_t *)base)[off] = kt_f32_to_bf16(v); break;
    case KT_F16: ((uint16_t *)base)[off] = kt_f32_to_f16(v); break;
    default: ((int32_t *)base)[off] = (int32_t)v; break;
    }
}

kt_status kt_tensor_copy(kt_tensor *dst, const kt_tensor *src, kt_err *err) {
    char a[128], b[128];
    if (dst->ndim != src->ndim || memcmp(dst->shape, src->shape, sizeof(int64_t) * (size_t)src->ndim) != 0)
        return kt_err_set(err, KT_ERR_SHAPE, "copy between shapes %s and %s", kt_shape_str(dst->ndim, dst->shape, a, sizeof a),
                          kt_shape_str(src->ndim, src->shape, b, sizeof b));
    int64_t n = kt_tensor_numel(src);
    if (dst->device != KT_CPU || src->device != KT_CPU) {
#ifdef KT_HAVE_CUDA
        if (dst->dtype != src->dtype || !kt_tensor_is_contiguous(dst) || !kt_tensor_is_contiguous(src))
            return kt_err_set(err, KT_ERR_UNSUPPORTED, "device copies need contiguous tensors of one dtype");
        size_t bytes = (size_t)n * kt_dtype_size(src->dtype);
        char msg[256];
        int rc;
        if (dst->device == KT_CUDA && src->device == KT_CPU) rc = kt_cuda_memcpy_h2d(kt_tensor_data(dst), kt_tensor_data(src), bytes, msg, sizeof msg);
        else if (dst->device == KT_CPU) rc = kt_cuda_memcpy_d2h(kt_tensor_data(dst), kt_tensor_data(src), bytes, msg, sizeof msg);
        else rc = kt_cuda_memcpy_d2d(kt_tensor_data(dst), kt_tensor_data(src), bytes, msg, sizeof msg);
        return rc ? kt_err_set(err, KT_ERR_CUDA, "%s", msg) : KT_OK;
#else
        return kt_err_set(err, KT_ERR_UNSUPPORTED, "a CUDA copy needs a build with CUDA");
#endif
    }
    if (kt_tensor_is_contiguous(dst) && kt_tensor_is_contiguous(src)) {
        kt_convert(kt_tensor_data(dst), dst->dtype, kt_tensor_data(src), src->dtype, n);
        return KT_OK;
    }
    for (int64_t i = 0; i < n; i++)
        store(dst->storage->data, dst->dtype, offset_of(dst, i), load(src->storage->data, src->dtype, offset_of(src, i)));
    return KT_OK;
}

float kt_tensor_get(const kt_tensor *t, const int64_t *idx) {
    int64_t off = t->offset;
    for (int i = 0; i < t->ndim; i++) off += idx[i] * t->stride[i];
    return load(t->storage->data, t->dtype, off);
}

void kt_tensor_set(kt_tensor *t, const int64_t *idx, float v) {
    int64_t off = t->offset;
    for (int i = 0; i < t->ndim; i++) off += idx[i] * t->stride[i];
    store(t->storage->data, t->dtype, off, v);
}
