/* A classifier model: the graph of a named architecture with its input, logits and (for training)
 * labels, loss and backward part, planned on a backend; plus its parameters under timm's names
 * for checkpoints. Training and serving build the very same forward graph through this. */
#ifndef KT_MODEL_H
#define KT_MODEL_H

#include "base/status.h"
#include "checkpoints/ckpt_meta.h"
#include "checkpoints/model_io.h"
#include "engine/backend.h"
#include "engine/graph.h"

typedef struct kt_model_opts {
    const char *arch;        /* "convnext_atto" .. "convnext_large", "smallcnn" */
    int num_classes;
    int batch, img_h, img_w; /* input (batch, img_h, img_w, 3) */
    int train;               /* 1: add loss and backward (parameter gradients in grad_buf) */
    int multilabel;          /* 1: BCE with logits on (batch, classes) f32 targets; 0: CE on i32 labels */
    float label_smoothing;   /* CE only */
    float drop_path_rate;    /* ConvNeXt stochastic depth (train) */
    float head_drop_rate;    /* dropout before the classifier */
    int recompute;           /* recompute GELU and LayerNorm outputs in backward instead of storing them */
    kt_backend *backend;     /* NULL: the CPU backend */
    int gradcam;             /* instead of a loss: d(sum(logits * onehot))/d(features) for Grad-CAM */
} kt_model_opts;

typedef struct kt_model {
    kt_graph g;
    kt_model_opts o;
    char arch[64];
    kt_node *input;  /* (N, H, W, 3) f32, normalised, NHWC */
    kt_node *logits; /* (N, classes) */
    kt_node *labels; /* train: (N) i32, or (N, classes) f32 for multilabel */
    kt_node *loss;   /* train: (1) */
    kt_node *onehot;   /* gradcam: (N, classes) f32 weights of the logits to explain */
    kt_node *features; /* last feature map (N, h, w, C); with gradcam its gradient is features->grad */
    kt_param_ref *refs; /* (n_refs) every parameter and state buffer, timm names, host f32 data */
    int n_refs;
    /* Host copies of the parameter and state buffers: the graph's own buffers on the CPU backend,
     * separate mirrors on a device backend (kept in step by kt_model_upload/download_params). */
    float *host_params; /* (n_param_elems) */
    float *host_state;  /* (n_buffer_elems) */
    int own_mirrors;
} kt_model;

/* Lists the architectures kt_model_create accepts (for --help). */
void kt_model_arch_names(char *buf, int len);
/* 1 when arch names a known architecture. */
int kt_model_arch_known(const char *arch);
/* Image sizes must be multiples of this for the architecture (32 for ConvNeXt). */
int kt_model_size_multiple(const char *arch);

/* Builds, differentiates (train) and plans the model. share: another model of the same
 * architecture whose parameters this one uses (e.g. an evaluation graph of another batch size). */
kt_status kt_model_create(kt_model *m, const kt_model_opts *o, const kt_model *share, kt_err *err);
void kt_model_free(kt_model *m);
/* The architecture's own initialisation (timm's for ConvNeXt), seeded; uploaded to the backend. */
kt_status kt_model_init_weights(kt_model *m, uint64_t seed, kt_err *err);
int64_t kt_model_param_count(const kt_model *m); /* trainable elements */

/* Host mirror <-> backend parameter buffers (no-ops on the CPU backend). Call upload after
 * init or load, download before saving or reading parameters on the host. */
kt_status kt_model_upload_params(kt_model *m, kt_err *err);
kt_status kt_model_download_params(kt_model *m, kt_err *err);
/* Batch I/O from host memory, whatever the backend. */
kt_status kt_model_set_input(kt_model *m, const float *x /* (N, H, W, 3) */, kt_err *err);
kt_status kt_model_set_labels(kt_model *m, const int32_t *labels /* (N) */, kt_err *err);
kt_status kt_model_set_targets(kt_model *m, const float *targets /* (N, classes) multilabel */, kt_err *err);
kt_status kt_model_get_logits(const kt_model *m, float *out /* (N, classes) */, kt_err *err);
kt_status kt_model_get_loss(const kt_model *m, float *out, kt_err *err);

/* Loads weights (timm names; F32/F16/BF16; 2-D or timm's 4-D 1x1-conv MLP weights). finetune: a
 * head of another class count keeps its fresh values (and rep says so). */
kt_status kt_model_load_weights(kt_model *m, const char *path, int finetune, kt_load_report *rep, kt_err *err);
/* Loads go to the host mirror and are uploaded. Saves write the host mirror (download first on a device). */
/* Saves weights (atomic) with metadata; the architecture and class count are filled in. */
kt_status kt_model_save_weights(const kt_model *m, const char *path, kt_ckpt_meta *meta, kt_err *err);

#endif
