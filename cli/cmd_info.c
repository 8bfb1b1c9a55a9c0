/* keratrack info: what this build can do on this machine (backends, BLAS, threads, GPU). */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "kt_build_info.h"
#ifdef KT_HAVE_CUDA
#include "kernels/cuda/kt_cuda.h"
#endif

static void help(void) {
    puts("usage: keratrack info [FILE.safetensors]\n\n"
         "Without a file: prints the version, build type, backends built, the BLAS library with its\n"
         "core type and thread count, OpenMP threads, CUDA/cuBLAS/cuDNN versions when built with\n"
         "CUDA, and whether a GPU is present.\n"
         "With a checkpoint: prints its architecture, parameter count, classes and metadata.\n\n"
         "Threads follow OMP_NUM_THREADS (our kernels and OpenBLAS share one OpenMP pool).");
}

static void print_build_facts(void) {
    printf("keratrack %s (git %s)\n", KT_VERSION, KT_GIT_REV);
    printf("  build type        %s, %s%s\n", KT_BUILD_TYPE, KT_C_COMPILER,
           strcmp(KT_SANITIZED, "ON") == 0 ? ", ASan+UBSan" : "");
#ifdef KT_HAVE_CUDA
    printf("  backends          cpu (reference), cuda\n");
#else
    printf("  backends          cpu (reference); cuda not built\n");
#endif
    const char *par = "unknown";
    switch (openblas_get_parallel()) {
    case 0: par = "sequential"; break;
    case 1: par = "pthreads"; break;
    case 2: par = "OpenMP"; break;
    }
    printf("  BLAS              OpenBLAS %s\n", openblas_get_config());
    printf("                    core %s, %d threads, %s build (%s)\n", openblas_get_corename(),
           openblas_get_num_threads(), par, KT_OPENBLAS_PATH);
    printf("  OpenMP threads    %d (of %d processors)\n", omp_get_max_threads(), omp_get_num_procs());
#ifdef KT_HAVE_CUDA
    kt_cuda_info ci;
    kt_cuda_query(&ci);
    printf("  CUDA              toolkit %s, runtime %d.%d, driver %d.%d\n", KT_CUDA_TOOLKIT_VERSION,
           ci.runtime_version / 1000, (ci.runtime_version % 1000) / 10, ci.driver_version / 1000,
           (ci.driver_version % 1000) / 10);
    printf("  cuDNN             %d.%d.%d\n", ci.cudnn_version / 10000, (ci.cudnn_version / 100) % 100,
           ci.cudnn_version % 100);
    if (ci.device_count > 0) {
        printf("  cuBLAS            %d\n", ci.cublas_version);
        printf("  GPU               %s (compute %d.%d, %d SMs, %.1f GiB, %.1f GiB free)%s\n", ci.name, ci.cc_major,
               ci.cc_minor, ci.sm_count, ci.total_mem / 1073741824.0, ci.free_mem / 1073741824.0,
               ci.device_count > 1 ? " + more" : "");
    } else {
        printf("  GPU               none present (%s)\n", ci.error);
    }
#else
    printf("  GPU               not checked: built without CUDA (-DKT_CUDA=OFF or no toolkit)\n");
#endif
}

int kt_cmd_info(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help();
            return 0;
        }
    if (argc == 1) {
        print_build_facts();
        return 0;
    }
    return kt_cli_fail("info", "checkpoint inspection is not built into this version",
                       "run `keratrack info` without arguments for the build facts");
}
