/* Which GPUs a CUDA architecture list runs on (kt_cuda_arch_fit), against the compatibility rules
 * of NVIDIA's CUDA C++ Programming Guide ("Binary Compatibility", "PTX Compatibility") and of its
 * arch-specific ("a") and family-specific ("f") targets; and the backend's compute 8.0 floor. */
#include "engine/cuda_arch.h"
#include "kt_test.h"

static int fits(const char *archs, int major, int minor, kt_cuda_fit want, int want_used) {
    int used = -1;
    kt_cuda_fit f = kt_cuda_arch_fit(archs, major, minor, &used);
    return f == want && used == want_used;
}

KT_TEST(test_cuda_arch_default_build_runs_on_ampere_and_newer) {
    const char *d = "90-real;80-virtual"; /* CMakeLists.txt's default */
    KT_CHECK(fits(d, 9, 0, KT_CUDA_FIT_NATIVE, 90), "H100/H200 run the sm_90 code");
    KT_CHECK(fits(d, 8, 0, KT_CUDA_FIT_PTX, 80), "A100: the compute_80 PTX");
    KT_CHECK(fits(d, 8, 6, KT_CUDA_FIT_PTX, 80), "RTX 30xx: the PTX");
    KT_CHECK(fits(d, 8, 9, KT_CUDA_FIT_PTX, 80), "RTX 40xx, L4, L40S: the PTX");
    KT_CHECK(fits(d, 10, 0, KT_CUDA_FIT_PTX, 80), "B200: sm_90 code does not run on 10.0, the PTX does");
    KT_CHECK(fits(d, 12, 0, KT_CUDA_FIT_PTX, 80), "RTX 50xx: the PTX");
    KT_CHECK(fits(d, 7, 5, KT_CUDA_FIT_NONE, 0), "T4 / RTX 20xx: nothing (PTX never runs on an older GPU)");
    KT_CHECK(fits("90-real,80-virtual", 8, 6, KT_CUDA_FIT_PTX, 80), "the commas the build records work as ';'");
}

KT_TEST(test_cuda_arch_machine_code_runs_within_its_major_only) {
    KT_CHECK(fits("80-real", 8, 6, KT_CUDA_FIT_NATIVE, 80), "sm_80 code runs on 8.6");
    KT_CHECK(fits("86-real", 8, 0, KT_CUDA_FIT_NONE, 0), "sm_86 code does not run on 8.0");
    KT_CHECK(fits("80-real", 9, 0, KT_CUDA_FIT_NONE, 0), "nor sm_80 code on 9.0");
    KT_CHECK(fits("80-real;86-real", 8, 9, KT_CUDA_FIT_NATIVE, 86), "the newest that runs: sm_86 on 8.9");
    KT_CHECK(fits("86-real;90-virtual", 9, 0, KT_CUDA_FIT_PTX, 90), "machine code of another major does not count");
    KT_CHECK(fits("80-real;90-virtual", 8, 6, KT_CUDA_FIT_NATIVE, 80), "machine code before newer-or-not PTX");
    KT_CHECK(fits("86", 8, 6, KT_CUDA_FIT_NATIVE, 86), "a plain number is machine code ...");
    KT_CHECK(fits("86", 8, 9, KT_CUDA_FIT_NATIVE, 86) && fits("86", 9, 0, KT_CUDA_FIT_PTX, 86), "... and PTX");
    KT_CHECK(fits("100-real", 10, 3, KT_CUDA_FIT_NATIVE, 100) && fits("120-virtual", 12, 1, KT_CUDA_FIT_PTX, 120),
             "three-digit architectures");
}

KT_TEST(test_cuda_arch_specific_and_family_targets) {
    KT_CHECK(fits("90a-real", 9, 0, KT_CUDA_FIT_NATIVE, 90), "sm_90a on 9.0");
    KT_CHECK(fits("100a-real", 10, 3, KT_CUDA_FIT_NONE, 0), "sm_100a code on 10.0 only");
    KT_CHECK(fits("90a-virtual", 10, 0, KT_CUDA_FIT_NONE, 0), "compute_90a PTX is not forward compatible");
    KT_CHECK(fits("100f-real", 10, 3, KT_CUDA_FIT_NATIVE, 100), "sm_100f: the family 10.x");
    KT_CHECK(fits("100f-virtual", 12, 0, KT_CUDA_FIT_NONE, 0) && fits("100f-virtual", 10, 3, KT_CUDA_FIT_PTX, 100),
             "compute_100f: its family only");
}

KT_TEST(test_cuda_arch_lists_it_cannot_read) {
    KT_CHECK(fits("native", 8, 6, KT_CUDA_FIT_UNKNOWN, 0), "CMake's native: the build machine's GPU, unknown here");
    KT_CHECK(fits("all-major", 9, 0, KT_CUDA_FIT_UNKNOWN, 0), "all-major");
    KT_CHECK(fits("90-real;sm_80", 8, 0, KT_CUDA_FIT_UNKNOWN, 0), "an entry not in CMake's form");
    KT_CHECK(fits("90-real;sm_80", 9, 0, KT_CUDA_FIT_NATIVE, 90), "a definite match still counts");
    KT_CHECK(fits("", 9, 0, KT_CUDA_FIT_NONE, 0) && fits(NULL, 9, 0, KT_CUDA_FIT_NONE, 0), "an empty list runs nowhere");
    KT_CHECK(fits("9", 9, 0, KT_CUDA_FIT_UNKNOWN, 0) && fits("90-realx", 9, 0, KT_CUDA_FIT_UNKNOWN, 0) &&
                 fits("90b", 9, 0, KT_CUDA_FIT_UNKNOWN, 0),
             "one digit, a bad suffix, a bad letter");
    KT_CHECK(kt_cuda_arch_fit("90-real", 9, 0, NULL) == KT_CUDA_FIT_NATIVE, "used may be NULL");
}

KT_TEST(test_cuda_arch_floor_is_compute_8_0) {
    KT_CHECK(kt_cuda_cc_supported(8, 0) && kt_cuda_cc_supported(8, 9) && kt_cuda_cc_supported(9, 0) && kt_cuda_cc_supported(12, 0),
             "Ampere and newer");
    KT_CHECK(!kt_cuda_cc_supported(7, 5) && !kt_cuda_cc_supported(7, 0) && !kt_cuda_cc_supported(6, 1), "Turing and older");
}
