/* cuBLAS is loaded when a CUDA context is made, not at program start (kernels/cuda/blas_loader.cu):
 * linked, it cost every process of a CUDA-enabled build ~210 MB of resident memory, GPU or not. */
#include <stdio.h>
#include <string.h>

#include "engine/backend_cuda.h"
#include "kt_test.h"

#ifdef KT_HAVE_CUDA
#include "kernels/cuda/kt_cuda.h"

/* 1 when a file whose name contains `lib` is mapped into this process */
static int mapped(const char *lib) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    char line[1024];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) found = strstr(line, lib) != NULL;
    fclose(f);
    return found;
}

#endif

KT_TEST(test_cuda_cublas_loaded_only_with_a_device) {
#ifndef KT_HAVE_CUDA
    kt_test_skip("this build has no CUDA backend");
#else
    KT_REQUIRE(mapped("libc.so") == 1, "reading /proc/self/maps (libc not seen)");
    KT_CHECK(mapped("libcublas") == 0, "cuBLAS mapped at start, before any CUDA context");
    kt_cuda_info ci;
    kt_cuda_query(&ci);
    kt_backend *be = NULL;
    kt_err err;
    kt_status s = kt_backend_cuda_create(&be, 0, &err);
    if (!ci.device_count) {
        KT_CHECK(s != KT_OK, "a CUDA backend without a device");
        KT_CHECK(mapped("libcublas") == 0, "cuBLAS loaded although no device is present (%s)", ci.error);
    } else {
        KT_REQUIRE_OK(s, &err);
        /* under host emulation (tests/cuda/emu) the stand-ins replace cuBLAS and report no version */
        if (ci.cublas_version > 0) KT_CHECK(mapped("libcublas") == 1, "a CUDA context without cuBLAS loaded");
        be->destroy(be);
    }
#endif
}
