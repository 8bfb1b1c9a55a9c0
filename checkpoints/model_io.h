/* A model's parameters to and from safetensors files with timm's names: strict load (every name,
 * shape and dtype checked), fine-tuning load (a head of another class count is kept fresh), save.
 *
 * A model describes its parameters as an array of kt_param_ref (nets/ builds it); this part never
 * sees the model itself. Loading validates the whole file against the list first and copies only
 * when everything fits, so a failed load leaves the model's values untouched. */
#ifndef KT_MODEL_IO_H
#define KT_MODEL_IO_H

#include <stdint.h>

#include "base/status.h"
#include "checkpoints/ckpt_meta.h"
#include "checkpoints/st_dtype.h"
#include "checkpoints/safetensors.h"

#define KT_PARAM_MAX_DIMS 4

typedef struct kt_param_ref {
    const char *name;                       /* timm name, e.g. "stages.2.blocks.5.mlp.fc1.weight" */
    int ndim;                               /* rank of shape, 0..4 */
    int64_t shape[KT_PARAM_MAX_DIMS];       /* our shape, PyTorch layout (a Linear weight is [out, in]) */
    int file_ndim;                          /* 0: the file stores `shape`; else rank of file_shape */
    int64_t file_shape[KT_PARAM_MAX_DIMS];  /* the shape timm stores, e.g. [out, in, 1, 1] for the 1x1-conv
                                               MLP of convnext atto..nano; same element count as shape */
    float *data;                            /* numel(shape) f32 values, contiguous, PyTorch layout */
    int is_head;                            /* 1 when the shape depends on the class count (head.fc.weight,
                                               head.fc.bias): a fine-tuning load keeps these fresh */
} kt_param_ref;

int64_t kt_param_numel(const kt_param_ref *p);
/* Total element count of n parameters. */
int64_t kt_params_count(const kt_param_ref *params, int n);

typedef enum {
    KT_LOAD_STRICT,   /* every parameter present with its shape; no other tensor (under the prefix) */
    KT_LOAD_FINETUNE  /* as strict, except: is_head parameters missing or of another shape keep the
                         model's values (a new head), and unknown tensors are ignored; both reported */
} kt_load_mode;

typedef struct kt_load_report {
    int n_loaded;          /* parameters copied from the file */
    int n_kept;            /* is_head parameters left at the model's values */
    int n_ignored;         /* tensors in the file (under the prefix) the model does not have */
    int head_replaced;     /* 1 when n_kept > 0 */
    int64_t file_classes;  /* rows of the file's head.fc.weight, -1 when it has none */
    char text[2048];       /* human-readable summary (what was loaded, converted, kept, ignored) */
} kt_load_report;

/* Loads parameters from path. prefix (NULL or "") is prepended to every name when looking tensors
 * up (e.g. "param."); F32, F16 and BF16 are accepted and converted to f32. For a parameter with
 * file_ndim > 0 either `shape` or `file_shape` is accepted. On error nothing is copied and the
 * message names the file and the first parameter at fault (in the order of params), then how many
 * others are missing or unexpected. rep may be NULL. */
kt_status kt_model_load(const char *path, const char *prefix, const kt_param_ref *params, int n, kt_load_mode mode,
                        kt_load_report *rep, kt_err *err);
/* The same, from a file already open (e.g. a golden file holding other tensors too). */
kt_status kt_model_load_from(const kt_st_file *f, const char *prefix, const kt_param_ref *params, int n,
                             kt_load_mode mode, kt_load_report *rep, kt_err *err);

/* Adds every parameter to w under prefix + name, stored as dtype (F32, F16 or BF16), in its
 * file_shape when set (so timm reads it as is). The data pointers must stay valid until saved. */
kt_status kt_model_add_to_writer(kt_st_writer *w, const char *prefix, const kt_param_ref *params, int n,
                                 kt_st_dtype dtype, kt_err *err);
/* Saves params (and meta, when not NULL) to path atomically. */
kt_status kt_model_save(const char *path, const kt_param_ref *params, int n, kt_st_dtype dtype, const kt_ckpt_meta *meta,
                        kt_err *err);

/* A 64-bit hash of the parameters' names, shapes and f32 values: pairs a training state with the
 * exact weights it was saved with. */
uint64_t kt_params_hash(const kt_param_ref *params, int n);

#endif
