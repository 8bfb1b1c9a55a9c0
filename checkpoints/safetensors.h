/* safetensors files: read (mmap'd, tensors are views into the mapping, every offset validated)
 * and write (atomic; f32 sources stored as F32, F16 or BF16, converted while writing).
 *
 * Format (https://github.com/huggingface/safetensors): 8-byte little-endian header length N,
 * N bytes of UTF-8 JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 * ..., "__metadata__": {"key": "value", ...}} (optionally padded with spaces), then the data
 * section; offsets are relative to its start and the tensors tile it exactly (no gap, no overlap),
 * as the reference implementation requires. */
#ifndef KT_SAFETENSORS_H
#define KT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"
#include "checkpoints/st_dtype.h"

#define KT_ST_MAX_DIMS 8
/* The reference implementation refuses headers over 100 MB; so do we (a guard against garbage). */
#define KT_ST_MAX_HEADER (100u * 1000u * 1000u)

typedef struct kt_st_tensor {
    char *name;                     /* owned, NUL-terminated */
    kt_st_dtype dtype;
    int ndim;                       /* 0 for a scalar (shape []) */
    int64_t shape[KT_ST_MAX_DIMS];  /* (ndim) */
    int64_t numel;                  /* product of shape (1 for a scalar) */
    const uint8_t *data;            /* view into the mapping: nbytes bytes, little-endian, maybe unaligned */
    uint64_t nbytes;                /* numel * kt_st_dtype_size(dtype) */
    uint64_t begin;                 /* data_offsets[0], relative to the data section */
} kt_st_tensor;

typedef struct kt_st_file {
    char *path;                     /* owned copy, for error messages */
    int n_tensors;
    kt_st_tensor *tensors;          /* (n_tensors) in header order */
    int n_meta;
    char **meta_keys, **meta_vals;  /* (n_meta) each, the "__metadata__" map in file order */
    void *map;                      /* the whole file, read-only mapping */
    size_t map_len;                 /* file size in bytes */
    uint64_t header_len;            /* N */
} kt_st_file;

/* Opens, maps and validates path: header length within the file, JSON well formed, known dtypes,
 * shapes of non-negative integers, offsets consistent with shape x dtype, tensors tiling the data
 * section, no duplicate names, metadata values all strings. Errors name the file and the tensor. */
kt_status kt_st_open(kt_st_file *f, const char *path, kt_err *err);
void kt_st_close(kt_st_file *f);

/* NULL when absent. */
const kt_st_tensor *kt_st_find(const kt_st_file *f, const char *name);
const char *kt_st_meta(const kt_st_file *f, const char *key);

/* Copies tensor t into out (n elements, n must equal t->numel): F32/F16/BF16/F64 to f32,
 * integer and BOOL dtypes to int64. Errors name the file, tensor and dtype. */
kt_status kt_st_read_f32(const kt_st_file *f, const kt_st_tensor *t, float *out, int64_t n, kt_err *err);
kt_status kt_st_read_i64(const kt_st_file *f, const kt_st_tensor *t, int64_t *out, int64_t n, kt_err *err);
/* Finds name and reads it as f32, checking its element count (KT_ERR_NOTFOUND when absent). */
kt_status kt_st_get_f32(const kt_st_file *f, const char *name, float *out, int64_t n, kt_err *err);
kt_status kt_st_get_i64(const kt_st_file *f, const char *name, int64_t *out, int64_t n, kt_err *err);

/* Writer: collect tensors (pointers to the caller's data, which must stay valid until save) and
 * metadata, then save atomically. Data is laid out by decreasing element size so that every
 * tensor is aligned to its element size in the file (the header is padded to 8 bytes). */
typedef struct kt_st_entry {
    char *name;                     /* owned */
    kt_st_dtype dtype;                 /* dtype stored in the file */
    kt_st_dtype src_dtype;             /* dtype of src: equal to dtype, or F32 for F32 -> F16/BF16 */
    int ndim;
    int64_t shape[KT_ST_MAX_DIMS];
    int64_t numel;
    const void *src;                /* numel elements of src_dtype, borrowed */
} kt_st_entry;

typedef struct kt_st_writer {
    int n, cap;
    kt_st_entry *entries;           /* (n) */
    int n_meta, cap_meta;
    char **meta_keys, **meta_vals;  /* (n_meta), owned */
} kt_st_writer;

void kt_st_writer_init(kt_st_writer *w);
void kt_st_writer_free(kt_st_writer *w);
/* Adds a tensor stored as dtype; src holds numel(shape) elements of src_dtype. src_dtype must be
 * dtype, or F32 when dtype is F16 or BF16 (converted with round-to-nearest-even while saving).
 * Rejects empty, duplicate or reserved ("__metadata__") names and negative dims. */
kt_status kt_st_writer_add(kt_st_writer *w, const char *name, kt_st_dtype dtype, int ndim, const int64_t *shape,
                           kt_st_dtype src_dtype, const void *src, kt_err *err);
/* Sets a metadata pair (a later call with the same key replaces the value). */
kt_status kt_st_writer_meta(kt_st_writer *w, const char *key, const char *value, kt_err *err);
/* Writes path atomically (temp file, fsync, rename): on failure any old file is left untouched. */
kt_status kt_st_writer_save(const kt_st_writer *w, const char *path, kt_err *err);

#endif
