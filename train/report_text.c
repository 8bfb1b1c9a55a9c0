/* classification_report.txt in sklearn's layout (see report.h); compared byte for byte with
 * sklearn's output in tests/train/test_report.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/report.h"

/* Characters as Python's len() counts them: UTF-8 code points, not bytes. */
static int cp_len(const char *s) {
    int n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

static void right(FILE *f, const char *s, int width) {
    for (int i = cp_len(s); i < width; i++) fputc(' ', f);
    fputs(s, f);
}

static int name_width(const char *const *names, int n, int digits) {
    int w = (int)strlen("weighted avg");
    for (int i = 0; i < n; i++)
        if (cp_len(names[i]) > w) w = cp_len(names[i]);
    return w > digits ? w : digits;
}

static void header(FILE *f, int width) {
    right(f, "", width);
    fputs(" ", f);
    fprintf(f, " %9s %9s %9s %9s\n\n", "precision", "recall", "f1-score", "support");
}

static void row(FILE *f, const char *name, int width, double p, double r, double f1,
                long long support, int digits) {
    right(f, name, width);
    fprintf(f, "  %9.*f %9.*f %9.*f %9lld\n", digits, p, digits, r, digits, f1, support);
}

/* The memstream's buffer pointer is only valid after fclose, hence the pointer to it. */
static char *finish(FILE *f, char **buf) {
    if (fclose(f) != 0) {
        free(*buf);
        return NULL;
    }
    return *buf;
}

char *kt_classification_report_text(const kt_cls_metrics *m, const char *const *names, int digits) {
    if (digits <= 0) digits = 2;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    int width = name_width(names, m->n_classes, digits);
    header(f, width);
    for (int k = 0; k < m->n_classes; k++)
        row(f, names[k], width, m->precision[k], m->recall[k], m->f1[k], (long long)m->support[k],
            digits);
    fputc('\n', f);
    if (m->micro_is_accuracy) { /* sklearn prints accuracy alone in the f1 column */
        right(f, "accuracy", width);
        fprintf(f, "  %9s %9s %9.*f %9lld\n", "", "", digits, m->accuracy, (long long)m->n);
    } else {
        row(f, "micro avg", width, m->accuracy, m->accuracy, m->accuracy, m->n, digits);
    }
    row(f, "macro avg", width, m->macro_precision, m->macro_recall, m->macro_f1, m->n, digits);
    row(f, "weighted avg", width, m->weighted_precision, m->weighted_recall, m->weighted_f1, m->n,
        digits);
    return finish(f, &buf);
}

char *kt_classification_report_text_multilabel(const kt_ml_metrics *m, const char *const *names,
                                               int digits) {
    if (digits <= 0) digits = 2;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    int width = name_width(names, m->n_labels, digits);
    long long total = 0;
    header(f, width);
    for (int k = 0; k < m->n_labels; k++) {
        row(f, names[k], width, m->precision[k], m->recall[k], m->f1[k], (long long)m->support[k],
            digits);
        total += m->support[k];
    }
    fputc('\n', f);
    row(f, "micro avg", width, m->micro.precision, m->micro.recall, m->micro.f1, total, digits);
    row(f, "macro avg", width, m->macro.precision, m->macro.recall, m->macro.f1, total, digits);
    row(f, "weighted avg", width, m->weighted.precision, m->weighted.recall, m->weighted.f1, total,
        digits);
    row(f, "samples avg", width, m->samples.precision, m->samples.recall, m->samples.f1, total,
        digits);
    return finish(f, &buf);
}
