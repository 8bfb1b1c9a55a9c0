/* What a checkpoint holds, for `keratrack info FILE.safetensors`: the architecture (from our
 * metadata, or inferred from timm's names and shapes), parameter count, classes, dtypes. */
#ifndef KT_CKPT_INSPECT_H
#define KT_CKPT_INSPECT_H

#include <stdint.h>

#include "base/status.h"
#include "checkpoints/safetensors.h"

typedef struct kt_ckpt_summary {
    char prefix[64];          /* where the model's tensors were found: "", "param.", "model.", "module.",
                                 "state_dict." or "model_ema." (tried in that order) */
    int is_convnext;          /* 1 when timm's ConvNeXt names were found (stem.0.weight, stages.*) */
    char inferred[64];        /* "convnext_atto", ... from depths and dims; "" when no variant matches */
    int n_stages;             /* stages found (4 for every timm ConvNeXt) */
    int depths[8];            /* blocks per stage, (n_stages) */
    int64_t dims[8];          /* channels per stage, (n_stages) */
    int conv_mlp;             /* 1 when mlp.fc1 weights are stored 4-D [out, in, 1, 1] */
    int64_t n_classes;        /* rows of head.fc.weight; -1 when absent */
    int64_t head_in;          /* columns of head.fc.weight; -1 when absent */
    int n_model_tensors;      /* tensors under prefix (all tensors when is_convnext is 0) */
    int64_t n_params;         /* elements of those tensors */
    int n_other_tensors;      /* tensors outside the prefix (gradients, inputs, ... of golden files) */
    char dtypes[64];          /* dtypes of the model tensors, e.g. "BF16" or "F32, F16" */
} kt_ckpt_summary;

/* Fills s from f. Never fails on a valid safetensors file: a file that is not a ConvNeXt gives
 * is_convnext 0 and counts over all its tensors. */
void kt_ckpt_inspect(const kt_st_file *f, kt_ckpt_summary *s);

/* timm's ConvNeXt variant name for depths and dims (4 stages), or NULL. */
const char *kt_convnext_variant_name(const int depths[4], const int64_t dims[4]);

#endif
