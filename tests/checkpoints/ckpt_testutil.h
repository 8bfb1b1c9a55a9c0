/* Helpers shared by the checkpoint tests: raw safetensors files with a chosen header (to build
 * every kind of corrupt file) and a tiny ConvNeXt-atto parameter list with timm's names. */
#ifndef KT_CKPT_TESTUTIL_H
#define KT_CKPT_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoints/model_io.h"

/* Writes <tmpdir>/<name>: 8-byte header length hlen (or strlen(header) when hlen < 0), header
 * text, then data_len bytes (0x11 pattern). Returns the path (static buffer per call site copy). */
const char *ckt_write_raw(const char *name, const char *header, int64_t hlen, size_t data_len);
/* Opens path expecting failure; returns the error message ("" when it opened). */
const char *ckt_open_error(const char *path);

/* timm's convnext_atto (depths 2,2,6,2; dims 40,80,160,320; 1x1-conv MLP) with n_classes:
 * the parameter list in timm's state_dict order, data filled from a seeded RNG. */
typedef struct ckt_model {
    int n;
    kt_param_ref *p;   /* (n) */
    char **names;      /* (n) owned */
    float *storage;    /* all parameters back to back */
} ckt_model;
void ckt_atto_init(ckt_model *m, int n_classes, uint64_t seed);
void ckt_model_free(ckt_model *m);

#endif
