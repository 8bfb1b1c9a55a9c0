// Chooses among our depthwise kernels by timing them on the card, once per geometry (as cuDNN's
// benchmark mode does for its algorithms): which of them is fastest depends on the card's L1/L2 and
// register file, which this project could not measure for every card, and all of them give the
// same bits, so the choice changes the speed only, never a result.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/cuda/kt_cuda_internal.cuh"

struct kt_cu_dwchoice {
    kt_conv_shape s;
    int pass, flavor, kind;
};

static const char *const NAMES[KT_CUDA_DW_KINDS] = {"auto", "scalar", "vec4", "tile4x4", "tile4x8", "taps", "rot4", "rot1"};

extern "C" const char *kt_cuda_dwkind_name(kt_cuda_dwkind k) { return k >= 0 && k < KT_CUDA_DW_KINDS ? NAMES[k] : "?"; }

extern "C" int kt_cuda_dwkind_parse(const char *name, kt_cuda_dwkind *k) {
    for (int i = 0; i < KT_CUDA_DW_KINDS; i++)
        if (name && !strcmp(name, NAMES[i])) {
            *k = (kt_cuda_dwkind)i;
            return 0;
        }
    return 1;
}

extern "C" void kt_cuda_ctx_set_dwconv_kernels(kt_cuda_ctx *c, kt_cuda_dwkind k) { c->dw_kind = k; }

/* flavor < 0: any flavour */
static int find(const kt_cuda_ctx *c, int pass, const kt_conv_shape *s, int flavor) {
    for (int i = 0; i < c->n_dw; i++) {
        const kt_cu_dwchoice *d = &c->dw_choices[i];
        if (d->pass == pass && (flavor < 0 || d->flavor == flavor) && kt_conv_shape_same(&d->s, s)) return d->kind;
    }
    return 0;
}

extern "C" kt_cuda_dwkind kt_cuda_dwconv_chosen(const kt_cuda_ctx *c, int pass, const kt_conv_shape *s) {
    return (kt_cuda_dwkind)find(c, pass, s, -1);
}

static void record(kt_cuda_ctx *c, int pass, const kt_conv_shape *s, int flavor, int kind) {
    if (c->n_dw == c->cap_dw) { /* out of host memory: nothing recorded, the next call times again */
        int cap = c->cap_dw ? 2 * c->cap_dw : 16;
        kt_cu_dwchoice *d = (kt_cu_dwchoice *)realloc(c->dw_choices, sizeof *d * (size_t)cap);
        if (!d) return;
        c->dw_choices = d;
        c->cap_dw = cap;
    }
    kt_cu_dwchoice *d = &c->dw_choices[c->n_dw++];
    d->s = *s;
    d->pass = pass;
    d->flavor = flavor;
    d->kind = kind;
}

void kt_cu_dw_tune_free(kt_cuda_ctx *c) {
    free(c->dw_choices);
    c->dw_choices = NULL;
    c->n_dw = c->cap_dw = 0;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define TIMED_RUNS 2 /* after one warm-up run; the best of them counts (a run is 0.01-1 ms) */

/* Times each eligible kind; the best is recorded and returned (0 with the error in c->err when none ran). */
static int time_kinds(kt_cuda_ctx *c, int pass, const kt_conv_shape *s, int flavor, unsigned eligible, kt_cu_dw_run run, void *arg) {
    double best_t = 0, t_of[KT_CUDA_DW_KINDS] = {0};
    int best = 0;
    for (int k = 1; k < KT_CUDA_DW_KINDS; k++) {
        if (!(eligible & (1u << k))) continue;
        double t = 1e30;
        int ok = kt_cu_check(c, cudaStreamSynchronize(c->stream), "depthwise kernel timing") == 0;
        for (int r = 0; ok && r <= TIMED_RUNS; r++) {
            double t0 = now_s();
            ok = run(c, k, arg) == 0 && kt_cu_check(c, cudaStreamSynchronize(c->stream), "depthwise kernel timing") == 0;
            double dt = now_s() - t0;
            if (ok && r > 0 && dt < t) t = dt;
        }
        if (!ok) { /* a kind the card cannot launch (resources): left out; a fault is sticky and fails the next */
            cudaGetLastError();
            continue;
        }
        t_of[k] = t;
        if (!best || t < best_t) best = k, best_t = t;
    }
    if (!best) return 0;
    if (c->dw_log) {
        fprintf(stderr, "dwconv %s (%lld, %lld, %lld, %lld) %lldx%lld:", pass == 0 ? "forward" : pass == 1 ? "data gradient" : "weight gradient",
                (long long)s->N, (long long)s->H, (long long)s->W, (long long)s->Ci, (long long)s->kh, (long long)s->kw);
        for (int k = 1; k < KT_CUDA_DW_KINDS; k++)
            if (t_of[k] > 0) fprintf(stderr, " %s %.3f ms", NAMES[k], t_of[k] * 1e3);
        fprintf(stderr, " -> %s\n", NAMES[best]);
    }
    record(c, pass, s, flavor, best);
    return best;
}

int kt_cu_dw_dispatch(kt_cuda_ctx *c, int pass, const kt_conv_shape *s, int flavor, unsigned eligible, int may_time,
                      kt_cu_dw_run run, void *arg) {
    int dflt = (eligible & (1u << KT_CUDA_DW_VEC4)) ? KT_CUDA_DW_VEC4 : KT_CUDA_DW_SCALAR, k = c->dw_kind;
    if (k > 0) return run(c, (eligible & (1u << k)) ? k : dflt, arg);
    /* chosen before: kept even where this call cannot take it (unaligned buffers), so that such
     * calls never time again */
    if ((k = find(c, pass, s, flavor))) return run(c, (eligible & (1u << k)) ? k : dflt, arg);
    if (may_time && (eligible & (eligible - 1))) /* the outputs of the timed runs stand: every kind writes the same bits */
        return time_kinds(c, pass, s, flavor, eligible, run, arg) ? 0 : 1;
    if (pass == 1 && (k = find(c, 0, s, -1)) && (eligible & (1u << k))) return run(c, k, arg);
    return run(c, dflt, arg);
}
