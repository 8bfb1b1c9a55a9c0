/* OneCycleLR as PyTorch 1.13 computes it (torch.optim.lr_scheduler.OneCycleLR, three_phase False):
 * the learning rate and AdamW's beta1 at each scheduler step, stepped once per batch.
 *
 * initial = max_lr / div_factor, min = initial / final_div_factor. Phase 1 runs from step 0 to
 * pct_start * total - 1 (a real number, as PyTorch keeps it), lr annealing initial -> max_lr and
 * beta1 max_momentum -> base_momentum; phase 2 runs to total - 1, lr max_lr -> min, beta1
 * base_momentum -> max_momentum. Cosine annealing: end + (start - end) / 2 * (cos(pi * pct) + 1).
 * With cycle_momentum 0, beta1 stays at fixed_beta1 (AdamW's own, 0.9). */
#ifndef KT_SCHEDULE_H
#define KT_SCHEDULE_H

#include <stdint.h>

#include "base/status.h"

typedef struct kt_onecycle {
    double max_lr;
    int64_t total_steps;     /* optimizer steps of the whole run (epochs x batches per epoch) */
    double pct_start;        /* 0.3: share of the steps spent warming up */
    double div_factor;       /* 25: initial lr = max_lr / div_factor */
    double final_div_factor; /* 1e4: final lr = initial lr / final_div_factor */
    int anneal_linear;       /* 0: cosine (PyTorch's default), 1: linear */
    int cycle_momentum;      /* 1: beta1 cycles inversely to the lr (PyTorch's default) */
    double base_momentum;    /* 0.85: beta1 at the lr peak */
    double max_momentum;     /* 0.95: beta1 at the start and the end */
    double fixed_beta1;      /* 0.9: beta1 when cycle_momentum is 0 */
} kt_onecycle;

/* PyTorch's defaults for OneCycleLR(optimizer, max_lr, total_steps). */
void kt_onecycle_default(kt_onecycle *s, double max_lr, int64_t total_steps);
/* total_steps >= 1, max_lr > 0, pct_start in (0, 1), factors > 0, momenta in [0, 1). */
kt_status kt_onecycle_validate(const kt_onecycle *s, kt_err *err);

/* Values at scheduler step `step` (0 = before the first optimizer step; PyTorch allows up to
 * total_steps, the value after the last step). */
double kt_onecycle_lr(const kt_onecycle *s, int64_t step);
double kt_onecycle_beta1(const kt_onecycle *s, int64_t step);

#endif
