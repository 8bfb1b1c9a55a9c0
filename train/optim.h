/* AdamW (torch.optim.AdamW: decoupled weight decay) with optional gradient clipping by global norm
 * (torch.nn.utils.clip_grad_norm_), over one contiguous parameter/gradient buffer in backend memory.
 *
 * Weight decay applies to every parameter by default (the seed script's `AdamW(model.parameters())`).
 * With no_decay set, ranges flagged as exempt (a graph's KT_NODE_NO_DECAY parameters: norms, biases,
 * layer-scale gammas) get weight decay 0, as timm's optimizer factory puts them in a group with
 * weight_decay 0. The moments live in the backend's memory (allocated once by init), so the sweeps
 * run where the parameters are: CPU or CUDA. */
#ifndef KT_OPTIM_H
#define KT_OPTIM_H

#include <stdint.h>

#include "base/status.h"
#include "engine/backend.h"
#include "engine/graph.h"

typedef struct kt_adamw_config {
    float lr;             /* used by kt_adamw_step when no scheduled lr is given (< 0 there) */
    float beta1, beta2;   /* 0.9, 0.999 */
    float eps;            /* 1e-8 */
    float weight_decay;   /* decoupled: p *= 1 - lr * weight_decay before the Adam update */
    int no_decay;         /* 1: exempt ranges get weight decay 0 (timm's factory); 0: decay all */
    float clip_grad_norm; /* > 0: clip the gradients' global L2 norm to this before each step; 0: off */
} kt_adamw_config;

/* PyTorch's defaults with the seed's lr 3e-4 and weight decay 1e-4, no exemption, no clipping. */
void kt_adamw_config_default(kt_adamw_config *c);
/* Every field in range (lr >= 0, betas in [0, 1), eps > 0, decay >= 0, clip >= 0); errors name it. */
kt_status kt_adamw_config_validate(const kt_adamw_config *c, kt_err *err);

/* A contiguous range of the parameter buffer and whether weight decay applies to it. */
typedef struct kt_adamw_range {
    int64_t offset, numel; /* elements */
    int decay;             /* 1: weight decay applies */
} kt_adamw_range;

typedef struct kt_adamw {
    kt_adamw_config c;
    kt_backend *be;
    int64_t n;              /* parameter elements */
    float *m, *v;           /* (n) first and second moments, backend memory */
    int64_t step;           /* updates taken so far (AdamW's t of the last update) */
    int n_ranges;
    kt_adamw_range *ranges; /* (n_ranges) cover [0, n) in order, adjacent ranges of equal decay merged */
    double last_grad_norm;  /* global L2 norm of the gradients before clipping, at the last step
                               (computed only when clipping is on; NaN otherwise) */
} kt_adamw;

/* Optimizer for n elements on backend be (NULL: CPU). exempt (may be NULL when n_exempt is 0):
 * ranges exempt from weight decay when c->no_decay is set; they must lie inside [0, n) and not
 * overlap. The moments start at zero. */
kt_status kt_adamw_init(kt_adamw *o, kt_backend *be, int64_t n, const kt_adamw_range *exempt, int n_exempt,
                        const kt_adamw_config *c, kt_err *err);
/* Optimizer for a planned graph's parameter buffer: KT_NODE_NO_DECAY parameters are the exempt ones. */
kt_status kt_adamw_init_graph(kt_adamw *o, const kt_graph *g, const kt_adamw_config *c, kt_err *err);
void kt_adamw_free(kt_adamw *o);

/* One update of p (n) from g (n), both backend memory: clip g in place when clipping is on, then
 * AdamW with learning rate lr and beta1 (the schedule's values; lr < 0 takes c.lr, beta1 < 0 takes
 * c.beta1). step becomes step + 1 and is the t of the bias corrections. */
kt_status kt_adamw_step(kt_adamw *o, float *p, float *g, double lr, double beta1, kt_err *err);

/* The moments to and from host memory (n floats each), for saving and resuming. */
kt_status kt_adamw_get_moments(const kt_adamw *o, float *m_host, float *v_host, kt_err *err);
kt_status kt_adamw_set_moments(kt_adamw *o, const float *m_host, const float *v_host, int64_t step, kt_err *err);

/* torch.nn.utils.clip_grad_norm_(params, max_norm) (norm 2, PyTorch 1.13) over g (n) in backend
 * memory: total = ||g||_2, coef = max_norm / (total + 1e-6); when coef < 1 every gradient is
 * multiplied by it. *total_norm (may be NULL) gets the norm before clipping. A non-finite norm is
 * reported as KT_ERR_ARG (the gradients are left as they are), not spread into the parameters. */
kt_status kt_clip_grad_norm(kt_backend *be, float *g, int64_t n, double max_norm, double *total_norm, kt_err *err);

#endif
