/* Dynamic loss scaling (see loss_scale.h). */
#include "train/loss_scale.h"

#include <math.h>

#define MIN_SCALE 0x1p-24 /* below this a finite loss cannot recover: the run is diverging */
#define MAX_SCALE 0x1p24  /* 2^24 x a gradient of 1 is still far inside half's range after rounding */

void kt_loss_scaler_init(kt_loss_scaler *s) {
    *s = (kt_loss_scaler){.scale = 65536.0, .growth = 2.0, .backoff = 0.5, .interval = 2000};
}

kt_status kt_loss_scaler_seed(const kt_loss_scaler *s, kt_graph *g, kt_err *err) {
    if (!g->loss_grad || !g->loss_grad->data) return kt_err_set(err, KT_ERR_STATE, "loss scaling needs a planned graph with a backward pass");
    float v = (float)s->scale;
    return g->backend->upload(g->backend, g->loss_grad->data, &v, sizeof v, err);
}

kt_status kt_loss_scaler_unscale(kt_loss_scaler *s, kt_backend *be, float *grads, int64_t n, int *take, kt_err *err) {
    *take = 0;
    double ss = 0;
    kt_status st = n ? be->sumsq(be, grads, n, &ss, err) : KT_OK;
    if (st) return st;
    if (!isfinite(ss)) { /* an inf or NaN among them: the sum of squares is not finite either */
        s->skipped++;
        s->good = 0;
        if (s->scale * s->backoff < MIN_SCALE)
            return kt_err_set(err, KT_ERR_ARG, "fp16 loss scale fell below 2^-24: the gradients are not finite at any scale "
                              "(the loss diverged; lower --lr, or train in bf16)");
        s->scale *= s->backoff;
        return KT_OK;
    }
    if (n && s->scale != 1.0) st = be->scale(be, grads, n, (float)(1.0 / s->scale), err);
    if (st) return st;
    *take = 1;
    if (++s->good >= s->interval) {
        s->good = 0;
        if (s->scale * s->growth <= MAX_SCALE) s->scale *= s->growth;
    }
    return KT_OK;
}
