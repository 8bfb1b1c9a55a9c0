/* A minimal test harness: KT_TEST(name) registers a case; CMake turns every KT_TEST in a suite's
 * sources into its own ctest test (run as `suite name`). Checks report file:line and continue. */
#ifndef KT_TEST_H
#define KT_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

typedef void (*kt_test_fn)(void);
void kt_test_register(const char *name, kt_test_fn fn);
void kt_test_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Ends the current test as skipped (ctest shows SKIPPED, exit code 77) with a one-line reason. */
void kt_test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
int kt_test_failures(void);
/* Path of the repository root (for tests/golden) and of ../shared/datasets, or NULL if absent. */
const char *kt_test_root(void);
const char *kt_test_datasets(void);
/* A fresh scratch folder for this test (under the build tree), created empty. */
const char *kt_test_tmpdir(void);

#define KT_TEST(name)                                                                              \
    static void name(void);                                                                        \
    __attribute__((constructor)) static void name##_register(void) { kt_test_register(#name, name); } \
    static void name(void)

#define KT_CHECK(cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) kt_test_fail(__FILE__, __LINE__, "check failed: " #cond " :: " __VA_ARGS__);  \
    } while (0)

/* Stops the test at the first failure (for preconditions later checks rely on). */
#define KT_REQUIRE(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            kt_test_fail(__FILE__, __LINE__, "required: " #cond " :: " __VA_ARGS__);               \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define KT_CHECK_NEAR(a, b, tol)                                                                   \
    do {                                                                                           \
        double kt_a_ = (double)(a), kt_b_ = (double)(b);                                           \
        if (!(fabs(kt_a_ - kt_b_) <= (tol)))                                                       \
            kt_test_fail(__FILE__, __LINE__, "%s = %.9g, %s = %.9g, |diff| %.3g > tol %.3g", #a, kt_a_, \
                         #b, kt_b_, fabs(kt_a_ - kt_b_), (double)(tol));                           \
    } while (0)

/* A fixed pseudo-random sequence for test data: uniform in [-1, 1), from seed *s (updated). */
static inline float kt_test_frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* Checks a kt_status call succeeded; prints the error buffer otherwise. */
#define KT_CHECK_OK(call, errp)                                                                    \
    do {                                                                                           \
        kt_status kt_s_ = (call);                                                                  \
        if (kt_s_ != KT_OK) kt_test_fail(__FILE__, __LINE__, "%s failed: %s", #call, (errp)->msg); \
    } while (0)

#define KT_REQUIRE_OK(call, errp)                                                                  \
    do {                                                                                           \
        kt_status kt_s_ = (call);                                                                  \
        if (kt_s_ != KT_OK) {                                                                      \
            kt_test_fail(__FILE__, __LINE__, "%s failed: %s", #call, (errp)->msg);                 \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#endif
