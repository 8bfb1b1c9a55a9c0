/* Which GPUs a CUDA build runs on, from its architecture list as CMake takes it (-DKT_CUDA_ARCHS:
 * "90-real;80-virtual", "86", "90a-real", ...): native code, PTX that the driver compiles at first
 * use, or nothing; and the oldest GPU the CUDA backend supports. Pure logic, so that `keratrack info`
 * can say how a card runs, `auto` can pass over a card it cannot, and the rules are tested without one. */
#ifndef KT_CUDA_ARCH_H
#define KT_CUDA_ARCH_H

/* The CUDA backend's floor: compute capability 8.0 (Ampere), the first with bf16 and TF32 tensor
 * cores, which its default precisions use; cuBLASLt has no bf16 GEMM below it. */
#define KT_CUDA_MIN_CC_MAJOR 8
#define KT_CUDA_MIN_CC_MINOR 0

typedef enum {
    KT_CUDA_FIT_UNKNOWN = -1, /* the list says nothing definite (CMake's "native", "all", a token we do not read) */
    KT_CUDA_FIT_NONE = 0,     /* no code in the list runs on the GPU */
    KT_CUDA_FIT_NATIVE,       /* machine code (a -real entry) for this GPU */
    KT_CUDA_FIT_PTX,          /* only PTX (a -virtual entry), compiled by the driver on first use */
} kt_cuda_fit;

/* How a GPU of compute capability major.minor runs the architectures in archs (entries separated by
 * ';' or ','). CUDA's rules: machine code for sm_XY runs on compute X.z with z >= Y (an "a" suffix:
 * X.Y only); PTX for compute_XY runs on any compute >= X.Y (an "a" suffix: X.Y only; "f": X.z,
 * z >= Y); a plain "XY" is both. The driver prefers machine code. *used (may be NULL) gets the
 * entry's number (90 for "90-real") of the code that runs, 0 when none. */
kt_cuda_fit kt_cuda_arch_fit(const char *archs, int major, int minor, int *used);

/* 1 when compute major.minor is at or above the backend's floor. */
int kt_cuda_cc_supported(int major, int minor);

#endif
