/* keratrack train: the seed script's K-fold training run, one run per backbone (train/trainer.h). */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "datasets/loader.h"
#include "engine/device_spec.h"
#include "nets/model.h"
#include "train/trainer.h"

#define MAX_MODELS 16

static void help(void) {
    char names[512];
    kt_model_arch_names(names, sizeof names);
    printf("usage: keratrack train --data DIR --out DIR [--model NAME | --models A B ...] [options]\n\n"
           "Trains image classifiers with the Keratrack recipe: stratified K-fold over TRAIN+VALID, AdamW\n"
           "(decoupled weight decay over all parameters), PyTorch's OneCycleLR stepped per batch (cosine,\n"
           "pct_start 0.3, div_factor 25, final_div_factor 1e4, beta1 cycled 0.95 -> 0.85 -> 0.95),\n"
           "cross-entropy with label smoothing (BCE with logits when the dataset is multi-label), the best\n"
           "checkpoint of each fold by validation accuracy, then out-of-fold and fold-ensemble TEST reports.\n\n"
           "data and output:\n"
           "  --data DIR            a Roboflow export (train/ valid/ test/ with _classes.csv) or class folders\n"
           "                        (train/<class>/...); single- or multi-label is read from the data\n"
           "  --out DIR             run folder (created); see 'files written' below\n"
           "  --model NAME          backbone (default convnext_base), one of:\n"
           "                        %s\n"
           "  --models A B ...      several backbones, one run each, in order (the seed script's --models)\n"
           "  --init FILE           fine-tune from these weights (.safetensors with timm names, e.g. timm's\n"
           "                        model.safetensors or one of ours); a new head when the class count differs\n"
           "  --strict              a bad CSV row or unreadable image is an error (default: skipped and counted)\n\n"
           "recipe (defaults are the seed's):\n"
           "  --folds K             folds, >= 2 (default 5)\n"
           "  --holdout-valid       fold TRAIN only and keep VALID as a holdout, scored by the fold ensemble\n"
           "  --epochs N            epochs per fold (default 8)\n"
           "  --batch N             training batch (default 16); the last partial batch of an epoch is dropped\n"
           "  --lr X                OneCycleLR max_lr (default 3e-4)\n"
           "  --weight-decay X      AdamW decoupled weight decay (default 1e-4)\n"
           "  --no-decay-norms      exempt norms, biases and layer-scale gammas from decay (timm's factory)\n"
           "  --no-cycle-momentum   keep AdamW beta1 at 0.9 instead of cycling it\n"
           "  --clip-grad X         clip the global gradient L2 norm to X (default: off)\n"
           "  --label-smoothing X   cross-entropy label smoothing (default 0.1; unused for multi-label)\n"
           "  --drop-path X         stochastic depth rate of ConvNeXt blocks (default 0)\n"
           "  --img-size N          square input size in pixels (default 224; a multiple of 32 for ConvNeXt)\n"
           "  --seed S              one seed for folds, init, data order, augmentation, drop path (default 42)\n\n"
           "running:\n"
           "  --threads N           compute threads (default: OMP_NUM_THREADS or all cores); the same seed and\n"
           "                        thread count give the same run\n"
           "  --workers N           image decoding threads (default 2; on cuda all cores but one, 2..16);\n"
           "                        the epoch line shows 'data wait N%%' when the model waited on them\n"
           "  --eval-batch N        evaluation batch (default 2 x --batch)\n"
           "  --device D            where to train: cpu (default), cuda (the first GPU) or cuda:N (GPU N, in\n"
           "                        CUDA's numbering, which CUDA_VISIBLE_DEVICES may change); cuda needs a build\n"
           "                        with the CUDA backend; KT_CUDA_MEMORY_MIB=N keeps the run under N MiB of the\n"
           "                        GPU, to share a card\n"
           "  --precision P         on cuda: bf16 (default: linear/matmul and downsampling conv operands\n"
           "                        rounded to bf16, tensor-core GEMMs with fp32 accumulation, other convolutions\n"
           "                        in TF32; weights, gradients and AdamW state stay fp32), fp16 (the same in\n"
           "                        IEEE half, with dynamic loss scaling: a step with inf/NaN gradients is\n"
           "                        skipped and the scale halved, 2000 good steps double it; the scale is in\n"
           "                        the resumable state),\n"
           "                        tf32 (TF32 GEMMs and convolutions) or fp32 (exact); the CPU computes in fp32\n"
           "  --recompute           recompute GELU/LayerNorm in backward: less memory, slower (convnext_base\n"
           "                        bf16 on an H200: 0.91x the memory, 1.20x the step time); the log's\n"
           "                        'memory planned' line, printed before the first epoch, shows the plan\n"
           "  --no-plots            write the reports without PNG plots\n"
           "  --resume              continue the interrupted run in --out exactly where it stopped (weights,\n"
           "                        AdamW moments, schedule step, data order, fold, epoch and batch); the\n"
           "                        settings must be the saved run's; a model whose run finished is skipped\n"
           "  --stop-after-steps N  (for tests) stop as Ctrl-C does once N optimizer steps ran\n"
           "  --quiet               no progress bar or epoch lines\n\n"
           "Ctrl-C stops after the current step and saves the resumable state (a second Ctrl-C quits at\n"
           "once); continue with the same command plus --resume.\n\n"
           "files written (NAME = the backbone):\n"
           "  DIR/NAME_fold{1..K}_best.safetensors   best weights of each fold, with metadata (architecture,\n"
           "                                          classes, image size, mean/std, epoch, metrics)\n"
           "  DIR/oof_probs_NAME.csv, DIR/test_probs_NAME.csv, DIR/meta_NAME.csv, DIR/folds.csv\n"
           "  DIR/NAME/metrics.jsonl, DIR/NAME/learning_curves.png   one line per epoch and fold\n"
           "  DIR/NAME/oof/, DIR/NAME/test/ (DIR/NAME/valid/ with --holdout-valid): eval_report.json,\n"
           "      classification_report.txt, confusion matrices, calibration curve (per-label AUC for\n"
           "      multi-label data)\n"
           "  DIR/NAME/resume*.safetensors            the resumable state while a run is unfinished\n"
           "  DIR/NAME/run_complete.json              the settings and results once it finished\n"
           "For multi-label data 'acc' in the epoch lines and the best-checkpoint choice is the micro-F1 at 0.5.\n\n"
           "Exit status: 0 done, 1 error, 2 usage error, 130 stopped by Ctrl-C (state saved).\n",
           names);
}

static volatile sig_atomic_t g_stop;

static void on_sigint(int sig) {
    (void)sig;
    if (g_stop) {
        signal(SIGINT, SIG_DFL); /* a second Ctrl-C quits at once */
        raise(SIGINT);
        return;
    }
    g_stop = 1;
    static const char msg[] = "\nkeratrack train: stopping after this step and saving the state (Ctrl-C again quits at once)\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
}

static int usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "keratrack train: %s%s%s\n  see keratrack train --help\n", msg, arg ? " " : "", arg ? arg : "");
    return 2;
}

static int parse_long(const char *v, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) return 0;
    *out = x;
    return 1;
}

static int parse_double(const char *v, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno || !isfinite(x) || x < lo || x > hi) return 0;
    *out = x;
    return 1;
}

int kt_cmd_train(int argc, char **argv) {
    kt_train_config c;
    kt_train_config_default(&c);
    const char *models[MAX_MODELS];
    int n_models = 0, threads = 0, quiet = 0, workers_given = 0;
    const char *device = "cpu", *precision = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        }
        int *flag = !strcmp(a, "--holdout-valid")       ? &c.holdout_valid
                    : !strcmp(a, "--no-decay-norms")    ? &c.no_decay_norms
                    : !strcmp(a, "--no-cycle-momentum") ? &c.no_cycle_momentum
                    : !strcmp(a, "--resume")            ? &c.resume
                    : !strcmp(a, "--strict")            ? &c.strict
                    : !strcmp(a, "--recompute")         ? &c.recompute
                    : !strcmp(a, "--no-plots")          ? &c.no_plots
                    : !strcmp(a, "--quiet")             ? &quiet
                                                        : NULL;
        if (flag) {
            *flag = 1;
            continue;
        }
        if (!strcmp(a, "--models")) {
            int k = 0;
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) {
                if (n_models == MAX_MODELS) return usage_error("too many models (at most 16)", NULL);
                models[n_models++] = argv[++i];
                k++;
            }
            if (!k) return usage_error("--models needs at least one name", NULL);
            continue;
        }
        if (i + 1 >= argc) return usage_error("missing value after", a);
        const char *v = argv[++i];
        long x;
        double d;
        if (!strcmp(a, "--data")) c.data = v;
        else if (!strcmp(a, "--out")) c.out = v;
        else if (!strcmp(a, "--model")) {
            if (n_models == MAX_MODELS) return usage_error("too many models (at most 16)", NULL);
            models[n_models++] = v;
        } else if (!strcmp(a, "--init")) c.init = v;
        else if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--precision")) precision = v;
        else if (!strcmp(a, "--folds")) {
            if (!parse_long(v, 1, 1000, &x)) return usage_error("--folds needs a whole number, not", v);
            c.folds = (int)x;
        } else if (!strcmp(a, "--epochs")) {
            if (!parse_long(v, 1, 100000, &x)) return usage_error("--epochs must be 1..100000, not", v);
            c.epochs = (int)x;
        } else if (!strcmp(a, "--batch")) {
            if (!parse_long(v, 1, 65536, &x)) return usage_error("--batch must be 1..65536, not", v);
            c.batch = (int)x;
        } else if (!strcmp(a, "--eval-batch")) {
            if (!parse_long(v, 1, 65536, &x)) return usage_error("--eval-batch must be 1..65536, not", v);
            c.eval_batch = (int)x;
        } else if (!strcmp(a, "--img-size")) {
            if (!parse_long(v, 8, 4096, &x)) return usage_error("--img-size must be 8..4096, not", v);
            c.img_size = (int)x;
        } else if (!strcmp(a, "--threads")) {
            if (!parse_long(v, 1, 1024, &x)) return usage_error("--threads must be 1..1024, not", v);
            threads = (int)x;
        } else if (!strcmp(a, "--workers")) {
            if (!parse_long(v, 1, 64, &x)) return usage_error("--workers must be 1..64, not", v);
            c.workers = (int)x;
            workers_given = 1;
        } else if (!strcmp(a, "--stop-after-steps")) {
            if (!parse_long(v, 1, 1L << 40, &x)) return usage_error("--stop-after-steps must be >= 1, not", v);
            c.stop_after_steps = x;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (!*v || *end || errno || v[0] == '-') return usage_error("--seed must be a non-negative integer, not", v);
            c.seed = s;
        } else if (!strcmp(a, "--lr")) {
            if (!parse_double(v, 1e-12, 10, &d)) return usage_error("--lr must be a number in (0, 10], not", v);
            c.lr = d;
        } else if (!strcmp(a, "--weight-decay")) {
            if (!parse_double(v, 0, 10, &d)) return usage_error("--weight-decay must be a number in [0, 10], not", v);
            c.weight_decay = d;
        } else if (!strcmp(a, "--label-smoothing")) {
            if (!parse_double(v, 0, 0.999, &d)) return usage_error("--label-smoothing must be in [0, 1), not", v);
            c.label_smoothing = (float)d;
        } else if (!strcmp(a, "--drop-path")) {
            if (!parse_double(v, 0, 0.999, &d)) return usage_error("--drop-path must be in [0, 1), not", v);
            c.drop_path = (float)d;
        } else if (!strcmp(a, "--clip-grad")) {
            if (!parse_double(v, 0, 1e9, &d)) return usage_error("--clip-grad must be a number >= 0, not", v);
            c.clip_grad = (float)d;
        } else return usage_error("unknown option", a);
    }
    if (!c.data) return usage_error("--data DIR is required", NULL);
    if (!c.out) return usage_error("--out DIR is required", NULL);
    if (c.folds < 2) {
        fprintf(stderr, "keratrack train: --folds %d: K-fold training needs at least 2 folds (each fold validates on 1/K of the "
                "data and trains on the rest)\n  use --folds 2 or more (the seed's default is 5)\n", c.folds);
        return 2;
    }
    kt_device_spec dev;
    int drc = kt_cli_device("train", device, 0, &dev);
    if (drc) return drc;
    if (!n_models) models[n_models++] = c.arch;
    for (int i = 0; i < n_models; i++)
        if (!kt_model_arch_known(models[i])) {
            char names[512], msg[768];
            kt_model_arch_names(names, sizeof names);
            snprintf(msg, sizeof msg, "unknown model '%s'", models[i]);
            char hint[640];
            snprintf(hint, sizeof hint, "known models: %s", names);
            fprintf(stderr, "keratrack train: %s\n  %s\n", msg, hint);
            return 2;
        }
    if (threads > 0) {
        omp_set_num_threads(threads);
        openblas_set_num_threads(threads);
    }
    c.threads = threads > 0 ? threads : omp_get_max_threads();
    c.device = device;
    kt_backend *be;
    int brc = kt_cli_backend("train", &dev, precision,
                             "train with --device cpu (the default), or build with -DKT_CUDA=ON on a GPU machine", &be);
    if (brc) return brc;
    c.backend = be;
    if (!workers_given) c.workers = kt_loader_auto_workers(be != NULL, (int)sysconf(_SC_NPROCESSORS_ONLN));
    c.loss_scaling = be && precision && !strcmp(precision, "fp16");
    char device_name[48], canon[24];
    kt_device_spec_name(&dev, canon, sizeof canon);
    snprintf(device_name, sizeof device_name, "%s%s%s", canon, be ? " " : "", be ? (precision ? precision : "bf16") : "");
    c.device = device_name;
    c.log = quiet ? NULL : stderr;
    c.stop = &g_stop;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int rc = 0;
    for (int i = 0; i < n_models && !rc; i++) {
        c.arch = models[i];
        kt_train_result res;
        kt_err err = {0};
        kt_status s = kt_train_run(&c, &res, &err);
        if (s == KT_ERR_INTERRUPTED) {
            fprintf(stderr, "keratrack train: %s\n", err.msg);
            rc = 130;
        } else if (s) {
            rc = kt_cli_fail("train", err.msg,
                             s == KT_ERR_ARG                              ? "see keratrack train --help"
                             : s == KT_ERR_IO                             ? "check the path and free disk space"
                             : s == KT_ERR_NOTFOUND || s == KT_ERR_FORMAT ? "check --data (and --init)"
                                                                          : "");
        } else {
            printf("%s: %d folds, %lld steps in %.1fs; OOF %s %.4f", models[i], res.folds_done, (long long)res.steps, res.seconds,
                   res.multilabel ? "micro-F1" : "accuracy", res.oof_score);
            if (!isnan(res.test_score)) printf(", TEST (fold ensemble) %.4f", res.test_score);
            printf("; reports in %s\n", res.report_dir);
            fflush(stdout);
        }
    }
    if (be) be->destroy(be);
    return rc;
}
