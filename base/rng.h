/* The one seeded random family of the project: init, shuffling, K-fold, augmentation, dropout.
 * A sequential generator (xoshiro256**) plus a counter-based hash for per-element draws that
 * must not depend on thread count or execution order (dropout masks, per-image augmentation). */
#ifndef KT_RNG_H
#define KT_RNG_H

#include <stdint.h>

typedef struct kt_rng {
    uint64_t s[4];
} kt_rng;

void kt_rng_seed(kt_rng *r, uint64_t seed);
/* Derives an independent child stream (e.g. one per worker or per purpose). */
kt_rng kt_rng_fork(const kt_rng *r, uint64_t stream);
uint64_t kt_rng_u64(kt_rng *r);
/* Uniform in [0, 1) with 24 random bits (exact float grid). */
float kt_rng_uniform(kt_rng *r);
double kt_rng_uniform_f64(kt_rng *r);
/* Uniform integer in [0, n), unbiased. n must be > 0. */
uint64_t kt_rng_below(kt_rng *r, uint64_t n);
/* Standard normal (Box-Muller on doubles). */
double kt_rng_normal(kt_rng *r);
/* Normal(mean, std) resampled until inside [lo, hi] (timm's trunc_normal_ semantics). */
float kt_rng_trunc_normal(kt_rng *r, float mean, float std, float lo, float hi);
/* Fisher-Yates shuffle of n ints. */
void kt_rng_shuffle_i32(kt_rng *r, int32_t *a, int64_t n);

/* Counter-based draws: the same (key, counter) always gives the same value. */
uint64_t kt_hash_u64(uint64_t key, uint64_t counter);
static inline float kt_hash_uniform(uint64_t key, uint64_t counter) {
    return (float)(kt_hash_u64(key, counter) >> 40) * (1.0f / 16777216.0f);
}

#endif
