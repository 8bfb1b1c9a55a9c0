/* The keratrack program: a thin front over libkeratrack with git-style subcommands. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "engine/backend_cuda.h"
#include "engine/device_spec.h"
#include "kt_build_info.h"
#ifdef KT_HAVE_CUDA
#include "engine/cuda_arch.h"
#include "kernels/cuda/kt_cuda.h"
#endif

static const kt_command commands[] = {
    {"info", "build facts (backends, BLAS, threads, GPU), or a checkpoint's contents", kt_cmd_info},
    {"train", "K-fold training with the seed's recipe (AdamW, OneCycleLR, label smoothing), checkpoints, reports", kt_cmd_train},
    {"eval", "evaluation report (metrics, plots, temperature scaling) of a checkpoint or fold ensemble", kt_cmd_eval},
    {"predict", "class probabilities (and a Grad-CAM heat map) for images from a checkpoint or ensemble", kt_cmd_predict},
    {"diet", "the diet engine: nutrient targets, 7-day meal plan, supplements (no server)", kt_cmd_diet},
    {"serve", "the HTTP API, web page and SQLite history (predictions, accounts, diet)", kt_cmd_serve},
    {"synth", "write a synthetic Roboflow-format dataset of drawn shapes (no real data needed)", kt_cmd_synth},
    {"bench", "benchmark cases: loader (images/s of decode + augment), ...", kt_cmd_bench},
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

int kt_cli_fail(const char *cmd, const char *msg, const char *hint) {
    fprintf(stderr, "keratrack %s: %s\n", cmd, msg);
    if (hint && *hint) fprintf(stderr, "  %s\n", hint);
    return 1;
}

int kt_cli_device(const char *cmd, const char *text, int allow_auto, kt_device_spec *out) {
    kt_err e = {0};
    if (!kt_device_spec_parse(text, allow_auto, out, &e)) return 0;
    fprintf(stderr, "keratrack %s: --device: %s\n  see keratrack %s --help\n", cmd, e.msg, cmd);
    return 2;
}

int kt_cli_backend(const char *cmd, const kt_device_spec *dev, const char *precision, const char *hint, kt_backend **be) {
    *be = NULL;
    if (precision && strcmp(precision, "fp32") && strcmp(precision, "tf32") && strcmp(precision, "bf16") && strcmp(precision, "fp16")) {
        fprintf(stderr, "keratrack %s: unknown precision '%s'\n  use bf16, fp16, tf32 or fp32 (see keratrack %s --help)\n", cmd,
                precision, cmd);
        return 2;
    }
    if (dev->device != KT_CUDA) {
        if (!precision || !strcmp(precision, "fp32")) return 0;
        fprintf(stderr, "keratrack %s: --precision %s needs --device cuda\n  the CPU computes in fp32 (leave --precision out)\n",
                cmd, precision);
        return 2;
    }
    kt_err e = {0};
    kt_status s = kt_backend_cuda_create(be, dev->index, &e);
#ifdef KT_HAVE_CUDA
    char name[256];
    int ma = 0, mi = 0, sms = 0, used = 0;
    size_t mem = 0;
    /* a GPU without machine code in the build: why the first steps stall, once */
    if (!s && !kt_cuda_device_props(dev->index, name, sizeof name, &ma, &mi, &sms, &mem) &&
        kt_cuda_arch_fit(kt_cuda_build_archs(), ma, mi, &used) == KT_CUDA_FIT_PTX)
        fprintf(stderr,
                "keratrack %s: GPU %d (%s, compute %d.%d) runs this build's compute_%d PTX: the driver compiles each kernel on its "
                "first use, so the first steps are slow once (it caches them); -DKT_CUDA_ARCHS=\"%d%d-real;80-virtual\" builds "
                "machine code for it\n",
                cmd, dev->index, name, ma, mi, used, ma, mi);
#endif
    /* a build without CUDA: the caller's hint (how to build it); with CUDA, the GPU or driver is missing */
    if (s) return kt_cli_fail(cmd, e.msg, s == KT_ERR_UNSUPPORTED ? hint : "--device cpu (the default) runs on the CPU; keratrack info shows the GPU and driver this build sees");
    if (kt_backend_cuda_set_precision(*be, precision ? precision : "bf16", &e)) {
        (*be)->destroy(*be);
        *be = NULL;
        fprintf(stderr, "keratrack %s: %s\n  use --precision bf16 (the default on cuda), fp16, tf32 or fp32\n", cmd, e.msg);
        return 2;
    }
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "keratrack %s: train, evaluate and serve ConvNeXt image classifiers, in C.\n\n"
            "usage: keratrack <command> [options]   (keratrack <command> --help for its options)\n\n"
            "commands:\n",
            KT_VERSION);
    for (int i = 0; i < n_commands; i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n  help       this text        version    the version\n");
}

static int run(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("keratrack %s (%s)\n", KT_VERSION, KT_GIT_REV);
        return 0;
    }
    for (int i = 0; i < n_commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "keratrack: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

int main(int argc, char **argv) {
    int rc = run(argc, argv);
    /* stdout is some commands' only output (`keratrack diet ... > plan.json`): a full disk or a
     * closed pipe must not end in a truncated file and exit status 0 */
    if ((fflush(stdout) != 0 || ferror(stdout)) && errno != EPIPE) {
        fprintf(stderr, "keratrack: cannot write the output: %s\n", strerror(errno ? errno : EIO));
        if (rc == 0) rc = 1;
    }
    return rc;
}
