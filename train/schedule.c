/* OneCycleLR, transcribed from PyTorch 1.13's get_lr (same phase boundaries and float arithmetic). */
#include "train/schedule.h"

#include <math.h>
#include <string.h>

void kt_onecycle_default(kt_onecycle *s, double max_lr, int64_t total_steps) {
    memset(s, 0, sizeof *s);
    s->max_lr = max_lr;
    s->total_steps = total_steps;
    s->pct_start = 0.3;
    s->div_factor = 25.0;
    s->final_div_factor = 1e4;
    s->cycle_momentum = 1;
    s->base_momentum = 0.85;
    s->max_momentum = 0.95;
    s->fixed_beta1 = 0.9;
}

kt_status kt_onecycle_validate(const kt_onecycle *s, kt_err *err) {
    if (s->total_steps < 1)
        return kt_err_set(err, KT_ERR_ARG, "OneCycleLR over %lld steps: need at least one", (long long)s->total_steps);
    if (!(s->max_lr > 0) || !isfinite(s->max_lr)) return kt_err_set(err, KT_ERR_ARG, "max lr %g must be > 0", s->max_lr);
    if (!(s->pct_start > 0 && s->pct_start < 1)) return kt_err_set(err, KT_ERR_ARG, "pct_start %g must be in (0, 1)", s->pct_start);
    if (!(s->div_factor > 0) || !(s->final_div_factor > 0))
        return kt_err_set(err, KT_ERR_ARG, "div factors %g, %g must be > 0", s->div_factor, s->final_div_factor);
    if (!(s->base_momentum >= 0 && s->base_momentum < 1) || !(s->max_momentum >= 0 && s->max_momentum < 1) ||
        !(s->fixed_beta1 >= 0 && s->fixed_beta1 < 1))
        return kt_err_set(err, KT_ERR_ARG, "momenta %g, %g, %g must be in [0, 1)", s->base_momentum, s->max_momentum,
                          s->fixed_beta1);
    return KT_OK;
}

static double anneal(const kt_onecycle *s, double start, double end, double pct) {
    if (s->anneal_linear) return (end - start) * pct + start;
    double cos_out = cos(M_PI * pct) + 1.0;
    return end + (start - end) / 2.0 * cos_out;
}

/* Phase and progress of a step, as PyTorch's loop over _schedule_phases finds them. */
static void locate(const kt_onecycle *s, int64_t step, int *phase, double *pct) {
    double end1 = s->pct_start * (double)s->total_steps - 1.0, end2 = (double)s->total_steps - 1.0;
    double x = (double)step, start = 0, end;
    if (x <= end1) {
        *phase = 0;
        end = end1;
    } else {
        *phase = 1;
        start = end1;
        end = end2;
    }
    /* PyTorch divides by zero here (ZeroDivisionError) for degenerate totals; take the phase's end */
    *pct = end - start != 0 ? (x - start) / (end - start) : 1.0;
}

double kt_onecycle_lr(const kt_onecycle *s, int64_t step) {
    int ph;
    double pct;
    locate(s, step, &ph, &pct);
    double initial = s->max_lr / s->div_factor, min_lr = initial / s->final_div_factor;
    return ph == 0 ? anneal(s, initial, s->max_lr, pct) : anneal(s, s->max_lr, min_lr, pct);
}

double kt_onecycle_beta1(const kt_onecycle *s, int64_t step) {
    if (!s->cycle_momentum) return s->fixed_beta1;
    int ph;
    double pct;
    locate(s, step, &ph, &pct);
    return ph == 0 ? anneal(s, s->max_momentum, s->base_momentum, pct) : anneal(s, s->base_momentum, s->max_momentum, pct);
}
