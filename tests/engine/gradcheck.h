/* Finite-difference gradient checking for engine ops: loss = sum(out * R) with a fixed random R;
 * analytic gradients from the graph's backward against central differences of the forward. */
#ifndef KT_TEST_GRADCHECK_H
#define KT_TEST_GRADCHECK_H

#include "engine/graph.h"

/* Tolerance used by every gradient test: |numeric - analytic| <= ATOL + RTOL * max(|numeric|, |analytic|).
 * Central differences with EPS on f32 forwards (loss summed in double on the host) are good to ~1e-3
 * relative, so RTOL 2e-2 with ATOL 2e-3 catches wrong rules (errors of O(1)) with a wide margin. */
#define KT_GC_EPS 1e-2f
#define KT_GC_RTOL 2e-2
#define KT_GC_ATOL 2e-3

typedef struct kt_gc_case {
    kt_graph g;
    kt_node *out;        /* op under test */
    kt_node *wrt[8];     /* parameters (or inputs with KT_NODE_REQUIRES_GRAD) to check */
    int n_wrt;
    float lo, hi;        /* range of random values for inputs/params */
    float min_abs;       /* keep |values| >= min_abs (away from kinks of ReLU, max) */
    unsigned seed;
    float eps;           /* finite-difference step (KT_GC_EPS unless a kink is near, e.g. max pooling) */
} kt_gc_case;

/* Prepares g (call kt_graph_init first via kt_gc_begin), then build, then kt_gc_run. */
void kt_gc_begin(kt_gc_case *c);
/* Returns the number of mismatching elements (0 = pass); prints the first few. */
int kt_gc_run(kt_gc_case *c, const char *label);
void kt_gc_end(kt_gc_case *c);

/* Fills a float buffer with uniform values in [lo, hi] avoiding |v| < min_abs. */
void kt_gc_fill(float *p, int64_t n, float lo, float hi, float min_abs, unsigned *seed);

#endif
