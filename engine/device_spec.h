/* Where to run, as a user writes it: "cpu", "cuda" (the first visible GPU), "cuda:N" (GPU N, as
 * CUDA numbers them: nvidia-smi's order unless CUDA_VISIBLE_DEVICES renumbers), and "auto" (the
 * first GPU when present, else the CPU) where a caller allows it. One parser, so that train, eval,
 * predict and serve accept and refuse the same names with the same message. */
#ifndef KT_DEVICE_SPEC_H
#define KT_DEVICE_SPEC_H

#include <stddef.h>

#include "base/status.h"
#include "engine/dtype.h"

typedef struct kt_device_spec {
    kt_device device; /* KT_CPU or KT_CUDA (auto: KT_CUDA, decided by the caller) */
    int index;        /* the GPU's index (0 for cpu and plain cuda) */
    int is_auto;      /* "auto": use the GPU when one is present, the CPU otherwise */
} kt_device_spec;

/* The largest GPU index "cuda:N" takes: far above any machine's count, small enough to print. */
#define KT_DEVICE_INDEX_MAX 1023

/* Parses text into out. allow_auto: whether "auto" is a valid answer here. A bad name fails with
 * KT_ERR_ARG and a message that begins "device '<text>'" and lists what is accepted. */
kt_status kt_device_spec_parse(const char *text, int allow_auto, kt_device_spec *out, kt_err *err);

/* The canonical name: "cpu", "cuda" for GPU 0 (as it always printed), "cuda:N" otherwise, "auto". */
void kt_device_spec_name(const kt_device_spec *d, char *buf, size_t len);

#endif
