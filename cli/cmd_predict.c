/* keratrack predict: class probabilities for images from a checkpoint or a fold ensemble. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cJSON.h"
#include "cli/commands.h"
#include "serve/predict.h"

static void help(void) {
    puts("usage: keratrack predict --model CKPT [--ensemble CKPT ...] [options] IMAGE...\n\n"
         "Prints the predicted class (stage), its confidence and every class probability for each\n"
         "image (JPEG or PNG, any size; preprocessed as in training's evaluation). With several\n"
         "checkpoints (--ensemble, or --model given more than once) the softmax probabilities are\n"
         "averaged, as the fold ensemble of `keratrack train` does.\n\n"
         "options:\n"
         "  --model CKPT        a checkpoint written by `keratrack train` (or a timm ConvNeXt\n"
         "                      safetensors file); may be repeated\n"
         "  --ensemble CKPT...  more checkpoints, up to the next option\n"
         "  --json              one JSON document: [{image, predicted_stage, confidence, probabilities}]\n"
         "  --top K             print only the K most likely classes per image (table output)\n"
         "  --batch N           images per forward pass, decoded in parallel (default: up to 16)\n"
         "  --device D          auto (the first GPU when present; default), cpu, cuda (the first GPU)\n"
         "                      or cuda:N (GPU N)\n"
         "  --threads N         CPU threads, for the forward and for decoding (default: OMP_NUM_THREADS\n"
         "                      or all cores)\n"
         "  --gradcam OUT.png   also write a Grad-CAM heat map of the predicted class (one image;\n"
         "                      with several images, OUT is a folder and gets one PNG per image)\n\n"
         "example:\n"
         "  keratrack predict --model runs/demo/convnext_atto_fold1_best.safetensors photo.jpg");
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int kt_cmd_predict(int argc, char **argv) {
    const char **ckpts = calloc((size_t)argc, sizeof(char *));
    const char **images = calloc((size_t)argc, sizeof(char *));
    int nc = 0, ni = 0, json = 0, top = 0, batch = 0, threads = 0, rc = 1;
    const char *device = "auto", *gradcam = NULL;
    if (!ckpts || !images) return kt_cli_fail("predict", "out of memory", NULL);
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
        else if (!strcmp(a, "--top") && more) top = atoi(argv[++i]);
        else if (!strcmp(a, "--batch") && more) batch = atoi(argv[++i]);
        else if (!strcmp(a, "--threads") && more) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--device") && more) device = argv[++i];
        else if (!strcmp(a, "--gradcam") && more) gradcam = argv[++i];
        else if (!strncmp(a, "--", 2)) {
            fprintf(stderr, "keratrack predict: unknown or incomplete option %s\n  run `keratrack predict --help`\n", a);
            rc = 2;
            goto done;
        } else images[ni++] = a;
    }
    if (!nc || !ni) {
        fprintf(stderr, "keratrack predict: %s\n  run `keratrack predict --help`\n", !nc ? "no --model given" : "no image given");
        rc = 2;
        goto done;
    }
    if (batch <= 0) batch = ni < 16 ? ni : 16;
    kt_err err;
    kt_predictor *p;
    if (kt_predictor_open_batched(&p, ckpts, nc, device, threads, batch, &err)) {
        kt_cli_fail("predict", err.msg,
                    kt_predictor_device_error(&err) ? "--device cpu runs on the CPU (keratrack info shows the GPU this build sees)"
                                                    : "check the checkpoint path (keratrack info CKPT shows what a file holds)");
        goto done;
    }
    int C = kt_predictor_num_classes(p);
    float *probs = malloc(sizeof(float) * (size_t)ni * (size_t)C);
    if (!probs || kt_predictor_run_files(p, images, ni, probs, &err)) {
        kt_cli_fail("predict", probs ? err.msg : "out of memory", "JPEG and PNG files are accepted");
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
            cJSON_AddItemToArray(arr, o);
        } else {
            printf("\n%s\n  => %s (%.1f%%)\n", base_name(images[i]), kt_predictor_class_name(p, best), 100 * pr[best]);
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
    free(ckpts);
    free(images);
    return rc;
}
