/* xoshiro256** (Blackman & Vigna) seeded through splitmix64, and a splitmix-based hash. */
#include "base/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void kt_rng_seed(kt_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

kt_rng kt_rng_fork(const kt_rng *r, uint64_t stream) {
    kt_rng c;
    uint64_t x = r->s[0] ^ (r->s[1] * 0x2545F4914F6CDD1Dull) ^ kt_hash_u64(r->s[2] ^ r->s[3], stream);
    for (int i = 0; i < 4; i++) c.s[i] = splitmix64(&x);
    return c;
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t kt_rng_u64(kt_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float kt_rng_uniform(kt_rng *r) { return (float)(kt_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

double kt_rng_uniform_f64(kt_rng *r) { return (double)(kt_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

uint64_t kt_rng_below(kt_rng *r, uint64_t n) {
    /* Rejection from the top to avoid modulo bias. */
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = kt_rng_u64(r);
    while (x >= lim);
    return x % n;
}

double kt_rng_normal(kt_rng *r) {
    double u1 = kt_rng_uniform_f64(r), u2 = kt_rng_uniform_f64(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

float kt_rng_trunc_normal(kt_rng *r, float mean, float std, float lo, float hi) {
    for (int tries = 0; tries < 1000; tries++) {
        double v = mean + std * kt_rng_normal(r);
        if (v >= lo && v <= hi) return (float)v;
    }
    return mean < lo ? lo : (mean > hi ? hi : mean);
}

void kt_rng_shuffle_i32(kt_rng *r, int32_t *a, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)kt_rng_below(r, (uint64_t)i + 1);
        int32_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

uint64_t kt_hash_u64(uint64_t key, uint64_t counter) {
    uint64_t x = key ^ (counter * 0xD1B54A32D192ED03ull);
    uint64_t a = splitmix64(&x);
    return a ^ splitmix64(&x);
}
