/* Dynamic loss scaling for fp16 training, with PyTorch's GradScaler rules: backward is seeded with
 * `scale` instead of 1, so gradients too small for IEEE half survive its rounding; after backward the
 * gradients are checked: any inf/NaN skips the optimizer step and halves the scale, otherwise they are
 * divided by the scale and the step is taken, and `interval` good steps in a row double the scale.
 * Powers of two keep the scaling exact: in f32 a scaled run gives the unscaled run's bits. */
#ifndef KT_LOSS_SCALE_H
#define KT_LOSS_SCALE_H

#include "engine/backend.h"

typedef struct kt_loss_scaler {
    double scale;     /* 65536 (2^16) to start */
    double growth;    /* 2 */
    double backoff;   /* 0.5 */
    int64_t interval; /* 2000 good steps between growths */
    int64_t good;     /* good steps since the last change (resumable) */
    int64_t skipped;  /* steps skipped for inf/NaN gradients */
} kt_loss_scaler;

void kt_loss_scaler_init(kt_loss_scaler *s);
/* Seeds g's backward with the scale (call before each kt_graph_run). */
kt_status kt_loss_scaler_seed(const kt_loss_scaler *s, kt_graph *g, kt_err *err);
/* After backward, over the n gradients in backend memory: *take = 1 when all are finite (they are
 * then divided by the scale), 0 when one is inf or NaN (left as they are: skip the optimizer step).
 * Updates the scale either way. */
kt_status kt_loss_scaler_unscale(kt_loss_scaler *s, kt_backend *be, float *grads, int64_t n, int *take, kt_err *err);

#endif
