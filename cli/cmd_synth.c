/* keratrack synth: writes a small synthetic Roboflow-format dataset (no real data needed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "datasets/synth.h"

static void help(void) {
    printf("usage: keratrack synth --out DIR [--classes N] [--per-class N] [--size N] [--seed S]\n"
           "                       [--multilabel] [--quality Q] [--force]\n\n"
           "Writes a Roboflow-format dataset (train/ valid/ test/, each with _classes.csv and JPEG\n"
           "files) of procedurally drawn images: the class of an image is the kind of shape in it\n"
           "(disk, square, triangle, ring, ...), drawn at a random position, size, rotation and colour\n"
           "on a noisy gradient background, so a model can learn it but not trivially. Use it to try\n"
           "the whole pipeline on a machine without real data:\n\n"
           "  keratrack synth --out data/shapes\n\n"
           "  --out DIR        folder to create (must be absent or empty unless --force)\n"
           "  --classes N      number of classes, 2..%d (default 4)\n"
           "  --per-class N    training images per class (default 60); valid and test each get\n"
           "                   max(2, N/4) per class\n"
           "  --size N         image side in pixels, 16..1024 (default 96)\n"
           "  --seed S         random seed (default 1); the same seed writes the same files\n"
           "  --multilabel     each image shows zero or more shapes, and its CSV row marks each one\n"
           "  --quality Q      JPEG quality 1..100 (default 90)\n"
           "  --force          replace DIR if it already holds files\n\n"
           "The dataset appears at DIR only when complete (it is written next to it and renamed).\n"
           "Exit status: 0 ok, 1 cannot write, 2 usage error.\n",
           KT_SYNTH_MAX_CLASSES);
}

static int usage_error(const char *msg, const char *arg) {
    fprintf(stderr, "keratrack synth: %s%s%s\n  see keratrack synth --help\n", msg, arg ? " " : "", arg ? arg : "");
    return 2;
}

static int parse_int(const char *v, long lo, long hi, long *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) return 0;
    *out = x;
    return 1;
}

int kt_cmd_synth(int argc, char **argv) {
    kt_synth_opts o;
    kt_synth_opts_default(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        }
        if (!strcmp(a, "--multilabel")) {
            o.multilabel = 1;
            continue;
        }
        if (!strcmp(a, "--force")) {
            o.overwrite = 1;
            continue;
        }
        if (i + 1 >= argc) return usage_error("missing value after", a);
        const char *v = argv[++i];
        long x;
        char *end;
        if (!strcmp(a, "--out")) o.out = v;
        else if (!strcmp(a, "--classes")) {
            if (!parse_int(v, 2, KT_SYNTH_MAX_CLASSES, &x)) return usage_error("--classes must be 2..12, not", v);
            o.classes = (int)x;
        } else if (!strcmp(a, "--per-class")) {
            if (!parse_int(v, 1, 100000, &x)) return usage_error("--per-class must be 1..100000, not", v);
            o.per_class = (int)x;
        } else if (!strcmp(a, "--size")) {
            if (!parse_int(v, 16, 1024, &x)) return usage_error("--size must be 16..1024, not", v);
            o.size = (int)x;
        } else if (!strcmp(a, "--quality")) {
            if (!parse_int(v, 1, 100, &x)) return usage_error("--quality must be 1..100, not", v);
            o.quality = (int)x;
        } else if (!strcmp(a, "--seed")) {
            unsigned long long s = strtoull(v, &end, 10);
            if (!*v || *end || v[0] == '-') return usage_error("--seed must be a non-negative integer, not", v);
            o.seed = s;
        } else return usage_error("unknown option", a);
    }
    if (!o.out) return usage_error("--out DIR is required", NULL);
    kt_err err = {0};
    if (kt_synth_write(&o, stderr, &err) != KT_OK)
        return kt_cli_fail("synth", err.msg, err.code == KT_ERR_ARG ? "see keratrack synth --help" : "");
    int per_eval = o.per_class / 4 < 2 ? 2 : o.per_class / 4;
    printf("wrote %s: %d classes (", o.out, o.classes);
    for (int c = 0; c < o.classes; c++) printf("%s%s", c ? ", " : "", kt_synth_class_name(c));
    printf("), %s, train %d / valid %d / test %d images of %dx%d\n", o.multilabel ? "multi-label" : "single-label",
           o.per_class * o.classes, per_eval * o.classes, per_eval * o.classes, o.size, o.size);
    return 0;
}
