/* keratrack eval: the evaluation report of a checkpoint or a fold ensemble on a dataset split,
 * with optional temperature scaling fitted on another split. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fileio.h"
#include "cli/commands.h"
#include "engine/device_spec.h"
#include "datasets/loader.h"
#include "datasets/roboflow.h"
#include "train/calibration.h"
#include "train/evaluate.h"
#include "train/report.h"
#include "train/report_csv.h"

#define MAX_CKPTS 64

static void help(void) {
    printf("usage: keratrack eval --model CKPT [--model CKPT2 ...] --data DIR [--split test] [options]\n\n"
           "Writes the evaluation report of one checkpoint, or of a fold ensemble (probabilities averaged\n"
           "over the checkpoints), on a split of a dataset: eval_report.json (accuracy, balanced accuracy,\n"
           "Cohen's kappa, MCC, log loss, Brier score, macro ROC-AUC and AP, top-k, per-class AUC/AP/ECE,\n"
           "mean ECE), classification_report.txt, the confusion matrices and the calibration curve\n"
           "(multi-label checkpoints: per-label precision/recall/F1/AUC and micro/macro F1), plus the\n"
           "probabilities as {split}_probs_{name}.csv.\n\n"
           "  --model CKPT          a .safetensors checkpoint (keratrack train's, with its metadata); repeat it,\n"
           "                        or list several after one --model, for an ensemble\n"
           "  --data DIR            the dataset (Roboflow export or class folders)\n"
           "  --split NAME          train, valid or test (default test)\n"
           "  --temperature MODE    none (default), auto (fit T on --calib-split by minimising its NLL, then\n"
           "                        report ECE before and after on --split), or a number T > 0 to apply\n"
           "  --calib-split NAME    the split temperature scaling is fitted on (default valid). Note: the folds\n"
           "                        of a `keratrack train` run over TRAIN+VALID trained on VALID; fit on a split\n"
           "                        the models did not see (e.g. train with --holdout-valid)\n"
           "  --out DIR             report folder (default eval_<split>)\n"
           "  --batch N             images per forward pass (default 32)\n"
           "  --workers N           decoding threads (default 2; on cuda all cores but one, 2..16)\n"
           "  --threads N           compute threads (default: OMP_NUM_THREADS or all cores)\n"
           "  --device D            cpu (default), cuda (the first GPU) or cuda:N (GPU N)\n"
           "  --precision P         on cuda: bf16 (default), fp16, tf32 or fp32, as keratrack train --precision\n"
           "  --no-plots            JSON and text only\n"
           "  --strict              a bad CSV row or unreadable image is an error (default: skipped)\n\n"
           "Checkpoints must have the dataset's classes (matched by name, in any order). Image size and\n"
           "normalisation come from each checkpoint's metadata.\n"
           "Exit status: 0 ok, 1 error, 2 usage error.\n");
}

static int usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "keratrack eval: %s%s%s\n  see keratrack eval --help\n", msg, arg ? " " : "", arg ? arg : "");
    return 2;
}

static int split_of(const char *name) {
    for (int s = 0; s < KT_SPLIT_COUNT; s++)
        if (!strcmp(name, kt_split_name(s))) return s;
    return -1;
}

/* Items of a split and their labels; NULL when the split is empty or absent. */
static int64_t split_items(const kt_dataset *ds, int split, int64_t **items) {
    int64_t n = ds->split_count[split];
    *items = NULL;
    if (n <= 0) return 0;
    *items = malloc((size_t)n * sizeof **items);
    if (!*items) return -1;
    for (int64_t i = 0; i < n; i++) (*items)[i] = ds->split_first[split] + i;
    return n;
}

/* log of averaged probabilities: logits whose softmax gives them back (for temperature scaling) */
static void probs_to_logits(const float *p, int64_t n, float *z) {
    for (int64_t i = 0; i < n; i++) z[i] = (float)log(p[i] > 1e-30f ? p[i] : 1e-30f);
}

static int run(const char *const *ckpts, int n_ckpt, const char *data, const char *split_name, const char *temp,
               const char *calib_name, const char *out, kt_eval_config *ec, int no_plots, int strict) {
    kt_err err = {0};
    kt_dataset ds;
    kt_dataset_opts dopts;
    kt_dataset_opts_default(&dopts);
    dopts.strict = strict;
    if (kt_dataset_open(&ds, data, &dopts, &err)) return kt_cli_fail("eval", err.msg, "check --data");
    /* as train says it: a report on fewer images than the split holds must say which were left out */
    if (ds.n_bad_rows || ds.n_bad_images) {
        fprintf(stderr, "note: %s: skipped %lld bad CSV rows and %lld bad images (--strict makes them errors)\n", data,
                (long long)ds.n_bad_rows, (long long)ds.n_bad_images);
        for (int i = 0; i < ds.n_messages && i < 5; i++) fprintf(stderr, "  %s\n", ds.messages[i]);
        if (ds.n_messages > 5) fprintf(stderr, "  ... and %d more\n", ds.n_messages - 5);
    }
    int split = split_of(split_name), calib = split_of(calib_name);
    int rc = 0, ml = 0, C = ds.n_classes;
    int64_t *items = NULL, *citems = NULL;
    float *probs = NULL, *cprobs = NULL, *z = NULL, *cz = NULL, *calibrated = NULL;
    int32_t *labels = NULL, *clabels = NULL;
    uint8_t *targets = NULL;
    const char **names = NULL;
    int64_t n = split_items(&ds, split, &items);
    if (n <= 0) {
        char msg[4400];
        snprintf(msg, sizeof msg, "%s has no %s images", data, split_name);
        rc = kt_cli_fail("eval", msg, "pick another --split (train, valid or test)");
        goto done;
    }
    probs = malloc((size_t)n * C * sizeof *probs);
    labels = malloc((size_t)n * sizeof *labels);
    targets = malloc((size_t)n * C);
    names = malloc((size_t)n * sizeof *names);
    if (!probs || !labels || !targets || !names) {
        rc = kt_cli_fail("eval", "out of memory", "");
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        labels[i] = ds.items[items[i]].label;
        names[i] = ds.items[items[i]].path;
        for (int k = 0; k < C; k++) targets[i * C + k] = kt_dataset_target(&ds, items[i])[k] > 0.5f;
    }
    ec->label = split_name;
    if (kt_eval_ensemble(ckpts, n_ckpt, &ds, items, n, ec, probs, &ml, &err)) {
        rc = kt_cli_fail("eval", err.msg, "");
        goto done;
    }
    kt_temperature tt;
    memset(&tt, 0, sizeof tt);
    int use_t = strcmp(temp, "none") != 0;
    if (use_t && ml) {
        rc = kt_cli_fail("eval", "--temperature: temperature scaling is for single-label (softmax) models; this one is multi-label",
                         "drop --temperature");
        goto done;
    }
    z = malloc((size_t)n * C * sizeof *z);
    calibrated = malloc((size_t)n * C * sizeof *calibrated);
    if (!z || !calibrated) {
        rc = kt_cli_fail("eval", "out of memory", "");
        goto done;
    }
    probs_to_logits(probs, n * C, z);
    if (use_t) {
        double t = 0;
        if (!strcmp(temp, "auto")) {
            int64_t cn = split_items(&ds, calib, &citems);
            if (cn <= 0) {
                char msg[4400];
                snprintf(msg, sizeof msg, "--temperature auto: %s has no %s images to fit on", data, calib_name);
                rc = kt_cli_fail("eval", msg, "pass --calib-split with a split that exists, or a number T");
                goto done;
            }
            if (calib == split) fprintf(stderr, "note: fitting and reporting on the same split (%s): ECE after is optimistic\n", split_name);
            cprobs = malloc((size_t)cn * C * sizeof *cprobs);
            cz = malloc((size_t)cn * C * sizeof *cz);
            clabels = malloc((size_t)cn * sizeof *clabels);
            if (!cprobs || !cz || !clabels) {
                rc = kt_cli_fail("eval", "out of memory", "");
                goto done;
            }
            for (int64_t i = 0; i < cn; i++) clabels[i] = ds.items[citems[i]].label;
            ec->label = calib_name;
            int ml2 = 0;
            kt_temperature fit;
            if (kt_eval_ensemble(ckpts, n_ckpt, &ds, citems, cn, ec, cprobs, &ml2, &err) ||
                (probs_to_logits(cprobs, cn * C, cz), kt_temperature_fit(cz, clabels, (int)cn, C, 0, &fit, &err))) {
                rc = kt_cli_fail("eval", err.msg, "");
                goto done;
            }
            t = fit.temperature;
            printf("temperature fitted on %s (%lld images): T = %.4f%s, NLL %.4f -> %.4f, ECE %.4f -> %.4f there\n", calib_name,
                   (long long)cn, t, fit.at_bound ? " (at the search bound)" : "", fit.nll_before, fit.nll_after,
                   fit.ece_top_before, fit.ece_top_after);
        } else {
            char *end;
            errno = 0;
            t = strtod(temp, &end);
            if (!*temp || *end || errno || !(t > 0) || !isfinite(t)) {
                rc = usage_error("--temperature must be auto, none or a number > 0, not", temp);
                goto done;
            }
        }
        if (kt_temperature_evaluate(z, labels, (int)n, C, t, 0, &tt, &err)) {
            rc = kt_cli_fail("eval", err.msg, "");
            goto done;
        }
        double *dp = malloc((size_t)n * C * sizeof *dp);
        if (!dp || kt_temperature_apply(z, (int)n, C, t, dp, &err)) {
            free(dp);
            rc = kt_cli_fail("eval", dp ? err.msg : "out of memory", "");
            goto done;
        }
        for (int64_t i = 0; i < n * C; i++) calibrated[i] = (float)dp[i];
        free(dp);
        printf("on %s: ECE (top label) %.4f before, %.4f after T = %.4f; mean per-class ECE %.4f -> %.4f; NLL %.4f -> %.4f\n",
               split_name, tt.ece_top_before, tt.ece_top_after, t, tt.ece_mean_before, tt.ece_mean_after, tt.nll_before,
               tt.nll_after);
    }
    /* the report's model name: the checkpoint's file name, or the ensemble's size */
    char model[256];
    if (n_ckpt == 1) {
        const char *b = strrchr(ckpts[0], '/');
        snprintf(model, sizeof model, "%s", b ? b + 1 : ckpts[0]);
        char *dot = strstr(model, ".safetensors");
        if (dot) *dot = '\0';
        for (char *q = model; *q; q++)
            if (*q == '/' || *q == ' ') *q = '_';
    } else {
        snprintf(model, sizeof model, "ensemble%d", n_ckpt);
    }
    kt_report_opts ro = {.split = split_name, .no_plots = no_plots, .temperature = use_t ? &tt : NULL,
                         .calibrated_probs = use_t ? calibrated : NULL};
    const char *const *cn = (const char *const *)ds.class_names;
    kt_status s = kt_mkdirs(out, &err);
    if (!s)
        s = ml ? kt_eval_report_write_multilabel(out, model, cn, C, probs, targets, (int)n, &ro, &err)
               : kt_eval_report_write(out, model, cn, C, probs, labels, (int)n, &ro, &err);
    if (!s)
        s = ml ? kt_probs_csv_write_multilabel(out, split_name, model, cn, C, names, targets, probs, (int)n, &err)
               : kt_probs_csv_write(out, split_name, model, cn, C, names, labels, probs, (int)n, &err);
    if (s) {
        rc = kt_cli_fail("eval", err.msg, "check --out and free disk space");
        goto done;
    }
    int64_t hit = 0;
    for (int64_t i = 0; i < n && !ml; i++) {
        int best = 0;
        for (int k = 1; k < C; k++)
            if (probs[i * C + k] > probs[i * C + best]) best = k;
        hit += best == labels[i];
    }
    if (ml) printf("%s on %s (%lld images, multi-label): report in %s/\n", model, split_name, (long long)n, out);
    else
        printf("%s on %s (%lld images): accuracy %.4f; report in %s/\n", model, split_name, (long long)n, (double)hit / (double)n,
               out);
done:
    free(items);
    free(citems);
    free(probs);
    free(cprobs);
    free(z);
    free(cz);
    free(calibrated);
    free(labels);
    free(clabels);
    free(targets);
    free(names);
    kt_dataset_close(&ds);
    return rc;
}

int kt_cmd_eval(int argc, char **argv) {
    const char *ckpts[MAX_CKPTS];
    int n_ckpt = 0, threads = 0, no_plots = 0, strict = 0, workers_given = 0;
    const char *data = NULL, *split = "test", *temp = "none", *calib = "valid", *out = NULL, *device = "cpu",
               *precision = NULL;
    kt_eval_config ec;
    kt_eval_config_default(&ec);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        }
        if (!strcmp(a, "--no-plots")) {
            no_plots = 1;
            continue;
        }
        if (!strcmp(a, "--strict")) {
            strict = 1;
            continue;
        }
        if (!strcmp(a, "--model")) {
            int k = 0;
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) {
                if (n_ckpt == MAX_CKPTS) return usage_error("too many checkpoints (at most 64)", NULL);
                ckpts[n_ckpt++] = argv[++i];
                k++;
            }
            if (!k) return usage_error("--model needs a checkpoint file", NULL);
            continue;
        }
        if (i + 1 >= argc) return usage_error("missing value after", a);
        const char *v = argv[++i];
        char *end;
        long x = 0;
        int is_int = !strcmp(a, "--batch") || !strcmp(a, "--workers") || !strcmp(a, "--threads");
        if (is_int) {
            errno = 0;
            x = strtol(v, &end, 10);
            if (!*v || *end || errno || x < 1 || x > 65536) return usage_error("a whole number >= 1 is needed after", a);
        }
        if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--split")) split = v;
        else if (!strcmp(a, "--temperature")) temp = v;
        else if (!strcmp(a, "--calib-split")) calib = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--precision")) precision = v;
        else if (!strcmp(a, "--batch")) ec.batch = (int)x;
        else if (!strcmp(a, "--workers")) ec.workers = (int)x, workers_given = 1;
        else if (!strcmp(a, "--threads")) threads = (int)x;
        else return usage_error("unknown option", a);
    }
    if (!n_ckpt) return usage_error("--model CKPT is required", NULL);
    if (!data) return usage_error("--data DIR is required", NULL);
    if (split_of(split) < 0) return usage_error("--split must be train, valid or test, not", split);
    if (split_of(calib) < 0) return usage_error("--calib-split must be train, valid or test, not", calib);
    kt_device_spec dev;
    int drc = kt_cli_device("eval", device, 0, &dev);
    if (drc) return drc;
    for (int i = 0; i < n_ckpt; i++)
        if (!kt_file_exists(ckpts[i])) {
            char msg[4200];
            snprintf(msg, sizeof msg, "checkpoint %s does not exist", ckpts[i]);
            return kt_cli_fail("eval", msg, "pass a .safetensors file written by keratrack train");
        }
    if (threads > 0) {
        omp_set_num_threads(threads);
        openblas_set_num_threads(threads);
    }
    char out_buf[256];
    if (!out) {
        snprintf(out_buf, sizeof out_buf, "eval_%s", split);
        out = out_buf;
    }
    ec.progress = stderr;
    kt_backend *be;
    int brc = kt_cli_backend("eval", &dev, precision,
                             "use --device cpu (the default), or build with -DKT_CUDA=ON on a GPU machine", &be);
    if (brc) return brc;
    ec.backend = be;
    if (!workers_given) ec.workers = kt_loader_auto_workers(be != NULL, (int)sysconf(_SC_NPROCESSORS_ONLN));
    int rc = run(ckpts, n_ckpt, data, split, temp, calib, out, &ec, no_plots, strict);
    if (be) be->destroy(be);
    return rc;
}
