/* keratrack predict: class probabilities for images (or folders of them) from a checkpoint or a
 * fold ensemble, as a table, JSON or a CSV file, with progress on long lists. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/fileio.h"
#include "base/progress.h"
#include "cJSON.h"
#include "cli/commands.h"
#include "datasets/csv.h"
#include "serve/predict.h"

static void help(void) {
    puts("usage: keratrack predict --model CKPT [--ensemble CKPT ...] [options] IMAGE|FOLDER...\n\n"
         "Prints the predicted class (stage), its confidence and every class probability for each\n"
         "image (JPEG or PNG, any size; preprocessed as in training's evaluation). A FOLDER stands for\n"
         "the .jpg, .jpeg and .png files directly in it, in name order. With several checkpoints\n"
         "(--ensemble, or --model given more than once) the softmax probabilities are averaged, as\n"
         "the fold ensemble of `keratrack train` does. More images than one batch show a progress\n"
         "line with the ETA on stderr.\n\n"
         "options:\n"
         "  --model CKPT        a checkpoint written by `keratrack train` (or a timm ConvNeXt\n"
         "                      safetensors file); may be repeated\n"
         "  --ensemble CKPT...  more checkpoints, up to the next option\n"
         "  --json              one JSON document: [{image, predicted_stage, confidence, probabilities}]\n"
         "                      (a multi-label model: per-class sigmoids, and predicted_labels, those >= 0.5)\n"
         "  --csv FILE          also write FILE: image, predicted_stage, confidence (predicted_labels for a\n"
         "                      multi-label model), then one column per class (written whole or not at all)\n"
         "  --top K             print only the K most likely classes per image (table output)\n"
         "  --batch N           images per forward pass, decoded in parallel (default: up to 16)\n"
         "  --device D          auto (the first GPU when present; default), cpu, cuda (the first GPU)\n"
         "                      or cuda:N (GPU N)\n"
         "  --threads N         CPU threads, for the forward and for decoding (default: OMP_NUM_THREADS\n"
         "                      or all cores)\n"
         "  --fast-decode       decode big JPEGs at 1/2..1/8 scale (never below the model's input): a\n"
         "                      12 MP photo in ~15 ms instead of ~37, probabilities move by ~1e-3\n"
         "                      (default: full decode, PIL's exact pixels)\n"
         "  --gradcam OUT.png   also write a Grad-CAM heat map of the predicted class (one image;\n"
         "                      with several images, OUT is a folder and gets one PNG per image)\n\n"
         "examples:\n"
         "  keratrack predict --model runs/demo/convnext_atto_fold1_best.safetensors photo.jpg\n"
         "  keratrack predict --model runs/demo/convnext_atto_fold1_best.safetensors --csv out.csv photos/\n\n"
         "Exit status: 0 ok, 1 an image, checkpoint or output file failed (the message names it), 2 usage error.");
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

typedef struct {
    char **v; /* image paths (malloc'd) */
    int n, cap;
} path_list;

static int push(path_list *l, const char *dir, const char *name) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, sizeof *v * (size_t)cap);
        if (!v) return 0;
        l->v = v, l->cap = cap;
    }
    size_t len = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
    char *p = malloc(len);
    if (!p) return 0;
    if (dir) snprintf(p, len, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    else snprintf(p, len, "%s", name);
    l->v[l->n++] = p;
    return 1;
}

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return name[0] != '.' && dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* arg: an image (kept as given) or a folder (its image files, sorted); 0 ok, else a message in msg */
static int add_arg(path_list *l, const char *arg, char *msg, size_t len) {
    struct stat st;
    if (stat(arg, &st) != 0 || !S_ISDIR(st.st_mode)) {
        if (!push(l, NULL, arg)) return snprintf(msg, len, "out of memory"), 1;
        return 0; /* a missing or unreadable file is reported by its decode, with its name */
    }
    DIR *d = opendir(arg);
    if (!d) return snprintf(msg, len, "cannot list folder %s: %s", arg, strerror(errno)), 1;
    int first = l->n;
    struct dirent *e;
    while ((e = readdir(d)))
        if (is_image_name(e->d_name) && !push(l, arg, e->d_name)) {
            closedir(d);
            return snprintf(msg, len, "out of memory"), 1;
        }
    closedir(d);
    if (l->n == first) return snprintf(msg, len, "folder %s holds no .jpg, .jpeg or .png file", arg), 1;
    qsort(l->v + first, (size_t)(l->n - first), sizeof *l->v, by_name);
    return 0;
}

static int parse_count(const char *opt, const char *v, int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < 1 || x > 65536) {
        fprintf(stderr, "keratrack predict: %s needs a whole number >= 1, not '%s'\n  run `keratrack predict --help`\n", opt, v);
        return 0;
    }
    *out = (int)x;
    return 1;
}

/* A multi-label model's classes at p >= 0.5, joined by sep ("" when none). */
static void present_labels(kt_predictor *p, const float *pr, const char *sep, char *buf, size_t len) {
    size_t at = 0;
    buf[0] = 0;
    for (int c = 0; c < kt_predictor_num_classes(p) && at < len; c++)
        if (pr[c] >= 0.5f) at += (size_t)snprintf(buf + at, len - at, "%s%s", at ? sep : "", kt_predictor_class_name(p, c));
}

/* The results as CSV into af (opened before the run, so a bad path fails at once), then renamed
 * into place: a failure leaves no partial file. */
static kt_status write_csv(kt_atomic_file *af_, kt_predictor *p, char *const *images, int ni, const float *probs, kt_err *err) {
    kt_atomic_file af = *af_;
    int C = kt_predictor_num_classes(p);
    int ml = kt_predictor_multilabel(p);
    fputs(ml ? "image,predicted_stage,confidence,predicted_labels" : "image,predicted_stage,confidence", af.fp);
    for (int c = 0; c < C; c++) fputc(',', af.fp), kt_csv_write_field(af.fp, kt_predictor_class_name(p, c));
    fputc('\n', af.fp);
    for (int i = 0; i < ni; i++) {
        const float *pr = probs + (size_t)i * C;
        int best = 0;
        for (int c = 1; c < C; c++)
            if (pr[c] > pr[best]) best = c;
        kt_csv_write_field(af.fp, images[i]);
        fputc(',', af.fp);
        kt_csv_write_field(af.fp, kt_predictor_class_name(p, best));
        fprintf(af.fp, ",%.9g", pr[best]);
        if (ml) { /* the classes present, ';'-separated */
            char labels[4096];
            present_labels(p, pr, ";", labels, sizeof labels);
            fputc(',', af.fp), kt_csv_write_field(af.fp, labels);
        }
        for (int c = 0; c < C; c++) fprintf(af.fp, ",%.9g", pr[c]);
        fputc('\n', af.fp);
    }
    if (ferror(af.fp)) {
        kt_atomic_abort(&af);
        return kt_err_set(err, KT_ERR_IO, "%s: cannot write", af.path);
    }
    return kt_atomic_commit(&af, err);
}

/* all images in batches, with a progress line when there is more than one batch */
static kt_status run_all(kt_predictor *p, char *const *images, int ni, int batch, float *probs, kt_err *err) {
    int C = kt_predictor_num_classes(p);
    kt_progress pr;
    int show = ni > batch;
    if (show) kt_progress_begin(&pr, stderr, "predict", ni, "img");
    kt_status s = KT_OK;
    for (int i0 = 0; i0 < ni && !s; i0 += batch) {
        int k = ni - i0 < batch ? ni - i0 : batch;
        s = kt_predictor_run_files(p, (const char *const *)images + i0, k, probs + (size_t)i0 * C, err);
        if (!s && show) kt_progress_update(&pr, i0 + k, NULL);
    }
    if (show) kt_progress_end(&pr);
    return s;
}

int kt_cmd_predict(int argc, char **argv) {
    const char **ckpts = calloc((size_t)argc, sizeof(char *));
    path_list imgs = {0};
    int nc = 0, ni = 0, json = 0, top = 0, batch = 0, threads = 0, rc = 1, csv_open = 0, fast = 0;
    kt_atomic_file af;
    const char *device = "auto", *gradcam = NULL, *csv = NULL;
    char msg[4400];
    if (!ckpts) return kt_cli_fail("predict", "out of memory", NULL);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            rc = 0;
            goto done;
        } else if (!strcmp(a, "--model") && more) ckpts[nc++] = argv[++i];
        else if (!strcmp(a, "--ensemble")) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) ckpts[nc++] = argv[++i];
        } else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--fast-decode")) fast = 1;
        else if ((!strcmp(a, "--top") || !strcmp(a, "--batch") || !strcmp(a, "--threads")) && more) {
            if (!parse_count(a, argv[++i], !strcmp(a, "--top") ? &top : !strcmp(a, "--batch") ? &batch : &threads)) {
                rc = 2;
                goto done;
            }
        } else if (!strcmp(a, "--csv") && more) csv = argv[++i];
        else if (!strcmp(a, "--device") && more) device = argv[++i];
        else if (!strcmp(a, "--gradcam") && more) gradcam = argv[++i];
        else if (!strncmp(a, "--", 2)) {
            fprintf(stderr, "keratrack predict: unknown or incomplete option %s\n  run `keratrack predict --help`\n", a);
            rc = 2;
            goto done;
        } else if (add_arg(&imgs, a, msg, sizeof msg)) {
            rc = kt_cli_fail("predict", msg, NULL);
            goto done;
        }
    }
    char **images = imgs.v;
    ni = imgs.n;
    if (!nc || !ni) {
        fprintf(stderr, "keratrack predict: %s\n  run `keratrack predict --help`\n", !nc ? "no --model given" : "no image given");
        rc = 2;
        goto done;
    }
    if (batch <= 0) batch = ni < 16 ? ni : 16;
    kt_err err;
    if (csv) {
        if (kt_atomic_open(&af, csv, &err)) {
            rc = kt_cli_fail("predict", err.msg, "--csv names a file in a folder that exists and can be written");
            goto done;
        }
        csv_open = 1;
    }
    kt_predictor *p;
    if (kt_predictor_open_batched(&p, ckpts, nc, device, threads, batch, &err)) {
        kt_cli_fail("predict", err.msg,
                    kt_predictor_device_error(&err) ? "--device cpu runs on the CPU (keratrack info shows the GPU this build sees)"
                                                    : "check the checkpoint path (keratrack info CKPT shows what a file holds)");
        goto done;
    }
    kt_predictor_set_fast_decode(p, fast);
    int C = kt_predictor_num_classes(p);
    float *probs = malloc(sizeof(float) * (size_t)ni * (size_t)C);
    if (!probs || run_all(p, images, ni, batch, probs, &err)) {
        kt_cli_fail("predict", probs ? err.msg : "out of memory", "JPEG and PNG files are accepted");
        free(probs);
        kt_predictor_free(p);
        goto done;
    }
    csv_open = 0; /* write_csv commits or removes it */
    if (csv && write_csv(&af, p, images, ni, probs, &err)) {
        kt_cli_fail("predict", err.msg, "--csv names a file in a folder that exists and can be written");
        free(probs);
        kt_predictor_free(p);
        goto done;
    }
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    if (!json) {
        printf("%s (%s, %d class%s, %d px, %d checkpoint%s)\n", kt_predictor_arch(p), kt_predictor_device(p), C, C == 1 ? "" : "es",
               kt_predictor_image_size(p), nc, nc == 1 ? "" : "s");
    }
    for (int i = 0; i < ni; i++) {
        const float *pr = probs + (size_t)i * C;
        int best = 0;
        for (int c = 1; c < C; c++)
            if (pr[c] > pr[best]) best = c;
        if (json) {
            cJSON *o = cJSON_CreateObject(), *pm = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "image", images[i]);
            cJSON_AddStringToObject(o, "predicted_stage", kt_predictor_class_name(p, best));
            cJSON_AddNumberToObject(o, "confidence", pr[best]);
            for (int c = 0; c < C; c++) cJSON_AddNumberToObject(pm, kt_predictor_class_name(p, c), pr[c]);
            cJSON_AddItemToObject(o, "probabilities", pm);
            if (kt_predictor_multilabel(p)) { /* independent classes: each present at p >= 0.5 */
                cJSON *pl = cJSON_CreateArray();
                for (int c = 0; c < C; c++)
                    if (pr[c] >= 0.5f) cJSON_AddItemToArray(pl, cJSON_CreateString(kt_predictor_class_name(p, c)));
                cJSON_AddItemToObject(o, "predicted_labels", pl);
            }
            cJSON_AddItemToArray(arr, o);
        } else {
            printf("\n%s\n  => %s (%.1f%%)\n", base_name(images[i]), kt_predictor_class_name(p, best), 100 * pr[best]);
            if (kt_predictor_multilabel(p)) {
                char labels[4096];
                present_labels(p, pr, ", ", labels, sizeof labels);
                printf("  present (p >= 0.5): %s\n", labels[0] ? labels : "none");
            }
            int order[4096], n = C < 4096 ? C : 4096;
            for (int c = 0; c < n; c++) order[c] = c;
            for (int a = 0; a < n; a++)
                for (int b = a + 1; b < n; b++)
                    if (pr[order[b]] > pr[order[a]]) {
                        int t = order[a];
                        order[a] = order[b];
                        order[b] = t;
                    }
            int show = top > 0 && top < n ? top : n;
            for (int k = 0; k < show; k++) {
                int c = order[k];
                int bar = (int)(pr[c] * 30 + 0.5f);
                printf("  %-24s %6.2f%%  ", kt_predictor_class_name(p, c), 100 * pr[c]);
                for (int j = 0; j < bar; j++) fputs("#", stdout);
                putchar('\n');
            }
        }
    }
    if (json) {
        char *txt = cJSON_Print(arr);
        puts(txt);
        free(txt);
        cJSON_Delete(arr);
    }
    rc = 0;
    if (gradcam) {
        for (int i = 0; i < ni && !rc; i++) {
            char out[4096];
            if (ni == 1) snprintf(out, sizeof out, "%s", gradcam);
            else snprintf(out, sizeof out, "%s/%s.gradcam.png", gradcam, base_name(images[i]));
            int cls;
            if (kt_predictor_gradcam(p, images[i], -1, out, &cls, &err))
                rc = kt_cli_fail("predict", err.msg, ni > 1 ? "with several images, --gradcam names an existing folder" : NULL);
            else fprintf(json ? stderr : stdout, "Grad-CAM of %s for %s: %s\n", base_name(images[i]), kt_predictor_class_name(p, cls), out);
        }
    }
    free(probs);
    kt_predictor_free(p);
done:
    if (csv_open) kt_atomic_abort(&af); /* the run failed: no CSV, not even an empty one */
    free(ckpts);
    for (int i = 0; i < imgs.n; i++) free(imgs.v[i]);
    free(imgs.v);
    return rc;
}
