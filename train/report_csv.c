/* oof/test probability tables and the fold table (see report_csv.h). */
#include "train/report_csv.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/fileio.h"

/* One CSV field, quoted when RFC 4180 needs it (or when it has edge spaces a reader would trim). */
static void field(FILE *f, const char *s) {
    size_t n = strlen(s);
    int quote = strpbrk(s, ",\"\r\n") != NULL || (n && (s[0] == ' ' || s[n - 1] == ' '));
    if (!quote) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static kt_status check_word(const char *what, const char *s, int allow_dash, kt_err *err) {
    if (!s || !*s) return kt_err_set(err, KT_ERR_ARG, "probability table: %s is empty", what);
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strchr(s, '/') || strchr(s, '\\'))
        return kt_err_set(err, KT_ERR_ARG,
                          "probability table: %s \"%s\" is used in a file name and must not be a "
                          "path", what, s);
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 32 || (!allow_dash && !(*p == '_' || (*p >= 'a' && *p <= 'z') ||
                                                        (*p >= '0' && *p <= '9'))))
            return kt_err_set(err, KT_ERR_ARG, "probability table: %s \"%s\" has a bad character",
                              what, s);
    return KT_OK;
}

static kt_status open_table(kt_atomic_file *af, const char *dir, const char *kind,
                            const char *model, kt_err *err) {
    kt_status st;
    if (kind && (st = check_word("kind", kind, 0, err)) != KT_OK) return st;
    if ((st = check_word("model name", model, 1, err)) != KT_OK) return st;
    if (!dir || !*dir) return kt_err_set(err, KT_ERR_ARG, "probability table: no output folder");
    if ((st = kt_mkdirs(dir, err)) != KT_OK) return st;
    char path[4096];
    int len = kind ? snprintf(path, sizeof path, "%s/%s_probs_%s.csv", dir, kind, model)
                   : snprintf(path, sizeof path, "%s/meta_%s.csv", dir, model);
    if (len < 0 || (size_t)len >= sizeof path)
        return kt_err_set(err, KT_ERR_ARG, "probability table: path in %s is too long", dir);
    return kt_atomic_open(af, path, err);
}

static kt_status check_rows(const char *const *filenames, int n, kt_err *err) {
    if (n <= 0 || !filenames)
        return kt_err_set(err, KT_ERR_ARG, "probability table: need file names for n = %d > 0 rows", n);
    for (int i = 0; i < n; i++)
        if (!filenames[i]) return kt_err_set(err, KT_ERR_ARG, "probability table: filename %d is NULL", i);
    return KT_OK;
}

static kt_status write_probs(const char *dir, const char *kind, const char *model,
                             const char *const *names, int c, const char *const *filenames,
                             const int32_t *labels, const uint8_t *targets, int multilabel,
                             const float *probs, int n, kt_err *err) {
    kt_status st = check_rows(filenames, n, err);
    if (st != KT_OK) return st;
    if (c < 1 || !names || !probs)
        return kt_err_set(err, KT_ERR_ARG, "probability table: need %d class names and probabilities", c);
    for (int j = 0; j < c; j++)
        if (!names[j]) return kt_err_set(err, KT_ERR_ARG, "probability table: class name %d is NULL", j);
    for (int i = 0; i < n; i++) {
        if (labels && (labels[i] < 0 || labels[i] >= c))
            return kt_err_set(err, KT_ERR_ARG, "probability table: labels[%d] = %d is outside [0, %d)",
                              i, (int)labels[i], c);
        for (int j = 0; j < c; j++)
            if (targets && targets[(size_t)i * c + j] > 1)
                return kt_err_set(err, KT_ERR_ARG, "probability table: targets[row %d, label %d] = %d, must be 0 or 1",
                                  i, j, (int)targets[(size_t)i * c + j]);
        for (int j = 0; j < c; j++)
            if (!isfinite(probs[(size_t)i * c + j]))
                return kt_err_set(err, KT_ERR_ARG, "probability table: probs[row %d, class %d] is not finite",
                                  i, j);
    }
    kt_atomic_file af;
    if ((st = open_table(&af, dir, kind, model, err)) != KT_OK) return st;
    FILE *f = af.fp;
    fputs(multilabel ? "filename,labels" : "filename,label", f);
    for (int j = 0; j < c; j++) {
        fputc(',', f);
        field(f, names[j]);
    }
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        field(f, filenames[i]);
        fputc(',', f);
        if (labels) fprintf(f, "%d", (int)labels[i]);
        if (targets) {
            int first = 1;
            for (int j = 0; j < c; j++)
                if (targets[(size_t)i * c + j]) fprintf(f, first ? "%d" : " %d", j), first = 0;
        }
        for (int j = 0; j < c; j++) fprintf(f, ",%.9g", (double)probs[(size_t)i * c + j]);
        fputc('\n', f);
    }
    return kt_atomic_commit(&af, err);
}

kt_status kt_probs_csv_write(const char *dir, const char *kind, const char *model,
                             const char *const *class_names, int c, const char *const *filenames,
                             const int32_t *labels, const float *probs, int n, kt_err *err) {
    if (!kind) return kt_err_set(err, KT_ERR_ARG, "probability table: kind is NULL");
    return write_probs(dir, kind, model, class_names, c, filenames, labels, NULL, 0, probs, n, err);
}

kt_status kt_probs_csv_write_multilabel(const char *dir, const char *kind, const char *model,
                                        const char *const *label_names, int c,
                                        const char *const *filenames, const uint8_t *targets,
                                        const float *probs, int n, kt_err *err) {
    if (!kind) return kt_err_set(err, KT_ERR_ARG, "probability table: kind is NULL");
    return write_probs(dir, kind, model, label_names, c, filenames, NULL, targets, 1, probs, n, err);
}

kt_status kt_meta_csv_write(const char *dir, const char *model, const int32_t *folds,
                            const char *const *filenames, const int32_t *labels, int n,
                            kt_err *err) {
    kt_status st = check_rows(filenames, n, err);
    if (st != KT_OK) return st;
    if (!folds || !labels)
        return kt_err_set(err, KT_ERR_ARG, "fold table: %s is NULL", folds ? "labels" : "folds");
    kt_atomic_file af;
    if ((st = open_table(&af, dir, NULL, model, err)) != KT_OK) return st;
    fputs("fold,filename,label\n", af.fp);
    for (int i = 0; i < n; i++) {
        fprintf(af.fp, "%d,", (int)folds[i]);
        field(af.fp, filenames[i]);
        fprintf(af.fp, ",%d\n", (int)labels[i]);
    }
    return kt_atomic_commit(&af, err);
}
