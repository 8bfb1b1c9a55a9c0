/* GPU-vs-CPU checks for the cuda tests: the same small graph built twice, planned on the CPU backend
 * and on the CUDA backend, fed the same values; outputs and every gradient compared per tensor. */
#ifndef KT_TEST_CUDA_TWIN_H
#define KT_TEST_CUDA_TWIN_H

#include <stddef.h>
#include <stdint.h>

#include "engine/backend.h"
#include "engine/graph.h"

/* The CUDA backend, created once per test process; skips the test (one line, exit 77) when this
 * build has no CUDA backend or the machine has no usable GPU. */
kt_backend *kt_twin_backend(void);

/* Builds the op under test into g (parameters via kt_param, so they get gradients) and returns its output. */
typedef kt_node *(*kt_twin_build_fn)(kt_graph *g, void *arg);

typedef struct kt_twin_opts {
    const char *label;
    double tol;        /* per tensor: max |gpu - cpu| <= tol * max |cpu| (+ 1e-30 for all-zero tensors) */
    int training;      /* graph->training on both sides (dropout, BatchNorm batch statistics) */
    float lo, hi;      /* uniform range of inputs and parameters (default -1, 1) */
    float min_abs;     /* keep |values| >= min_abs (away from kinks) */
    unsigned seed;
    int gpu_fused;     /* when > 0: the GPU plan must compute exactly this many nodes inside another's kernel */
    const char *precision; /* the CUDA backend's precision for the GPU twin (NULL: fp32, set back after) */
    int gpu_stored16;  /* when > 0: the GPU plan must store exactly this many f32 nodes in 16 bits */
} kt_twin_opts;

/* Builds, plans (poisoning every GPU activation, gradient and input buffer with NaN bytes first),
 * runs forward and backward of loss = sum(out * R) on both backends, and compares out, the loss
 * (relative to sum |out * R|: signed terms cancel), every parameter gradient and the state buffers; runs the GPU graph a second time and requires the
 * same bits (deterministic kernels). Reports failures through the test harness; returns their count. */
int kt_twin_check(kt_twin_build_fn build, void *arg, const kt_twin_opts *o);

/* NaN bytes over g's planned GPU activations, gradients and inputs (then loss_grad is set back to 1):
 * call after planning and before uploading inputs, so an element no kernel writes shows up as NaN. */
int kt_twin_poison(kt_graph *g, kt_err *err);

/* max |a - b| / max |ref| over n values; NaN anywhere gives +inf. */
double kt_twin_rel_err(const float *got, const float *ref, int64_t n);

/* Fills p (n) with uniform values in [lo, hi] avoiding |v| < min_abs (a small LCG: same on every machine). */
void kt_twin_fill(float *p, int64_t n, float lo, float hi, float min_abs, unsigned *seed);

#ifdef KT_HAVE_CUDA
/* For kernel-level tests: a raw CUDA context, created once per test process (skips like
 * kt_twin_backend); a device copy of h (h NULL: NaN bytes), NULL after a reported failure; and a
 * synchronised read back, 1 after a reported failure. */
struct kt_cuda_ctx *kt_twin_ctx(void);
void *kt_twin_put(const void *h, size_t bytes);
int kt_twin_get(void *h, const void *d, size_t bytes);
/* For the tests of --device cuda:N: fills ci (kt_cuda_query); under the host emulator it first
 * fakes a second GPU (KT_EMU_DEVICES=2) and returns 1, so that kt_twin_gpus_done(1) takes it back;
 * on a card, 0 and the GPUs the card's machine has. */
struct kt_cuda_info;
int kt_twin_gpus(struct kt_cuda_info *ci);
void kt_twin_gpus_done(int emulated);
#endif

#endif
