/* Which GPUs a CUDA architecture list runs on: see cuda_arch.h. */
#include "engine/cuda_arch.h"

#include <ctype.h>
#include <string.h>

/* One entry, "XY[a|f][-real|-virtual]", into its number, suffix letter and which code it holds;
 * 0 when it is not of that form (CMake's "native", "all", "all-major", a typo). */
static int parse_entry(const char *s, size_t n, int *num, char *suffix, int *real, int *virt) {
    size_t i = 0;
    int v = 0;
    while (i < n && isdigit((unsigned char)s[i]) && v < 10000) v = v * 10 + (s[i++] - '0');
    if (i < 2 || v < 10) return 0; /* at least two digits: major and minor */
    *suffix = 0;
    if (i < n && (s[i] == 'a' || s[i] == 'f')) *suffix = s[i++];
    *num = v, *real = 1, *virt = 1; /* a plain "XY" is both */
    if (i == n) return 1;
    if (n - i == 5 && !strncmp(s + i, "-real", 5)) return *virt = 0, 1;
    if (n - i == 8 && !strncmp(s + i, "-virtual", 8)) return *real = 0, 1;
    return 0;
}

/* Whether code built for num (major num/10, minor num%10) runs on compute major.minor. */
static int runs(int num, char suffix, int is_real, int major, int minor) {
    int cmaj = num / 10, cmin = num % 10;
    if (suffix == 'a') return major == cmaj && minor == cmin;                          /* arch-specific: that GPU only */
    if (is_real || suffix == 'f') return major == cmaj && minor >= cmin;               /* machine code, or a family */
    return major * 10 + minor >= num;                                                  /* PTX: any newer GPU */
}

kt_cuda_fit kt_cuda_arch_fit(const char *archs, int major, int minor, int *used) {
    int best_real = 0, best_ptx = 0, unread = 0;
    const char *p = archs ? archs : "";
    while (*p) {
        size_t n = strcspn(p, ";, ");
        if (n) {
            int num, real, virt;
            char suffix;
            if (!parse_entry(p, n, &num, &suffix, &real, &virt)) unread = 1;
            else {
                /* the driver takes the newest code that runs: machine code first, else the newest PTX */
                if (real && runs(num, suffix, 1, major, minor) && num > best_real) best_real = num;
                if (virt && runs(num, suffix, 0, major, minor) && num > best_ptx) best_ptx = num;
            }
        }
        p += n;
        if (*p) p++;
    }
    if (used) *used = best_real ? best_real : best_ptx;
    if (best_real) return KT_CUDA_FIT_NATIVE;
    if (best_ptx) return KT_CUDA_FIT_PTX;
    return unread ? KT_CUDA_FIT_UNKNOWN : KT_CUDA_FIT_NONE;
}

int kt_cuda_cc_supported(int major, int minor) {
    return major > KT_CUDA_MIN_CC_MAJOR || (major == KT_CUDA_MIN_CC_MAJOR && minor >= KT_CUDA_MIN_CC_MINOR);
}
