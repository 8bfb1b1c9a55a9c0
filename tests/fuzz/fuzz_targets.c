/* Fuzz entry points: see fuzz_targets.h. This file: the shared invariant failure and the table of
 * targets; the targets themselves are in fuzz_checkpoints.c, fuzz_datasets.c, fuzz_images.c and
 * fuzz_serve.c. */
#include "fuzz_targets.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_internal.h"

void kt_fuzz_broken(const char *target, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz %s: ", target);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

const kt_fuzz_target kt_fuzz_targets[] = {
    {"safetensors", kt_fuzz_safetensors}, {"weights", kt_fuzz_weights}, {"train_state", kt_fuzz_train_state},
    {"csv", kt_fuzz_csv},                 {"dataset", kt_fuzz_dataset}, {"image", kt_fuzz_image},
    {"predict", kt_fuzz_predict},         {"diet", kt_fuzz_diet},       {"meals", kt_fuzz_meals},
    {"http", kt_fuzz_http},               {NULL, NULL},
};

const kt_fuzz_target *kt_fuzz_find(const char *name) {
    for (const kt_fuzz_target *t = kt_fuzz_targets; t->name; t++)
        if (!strcmp(t->name, name)) return t;
    return NULL;
}

