/* Per-epoch metrics log as JSON lines (see report_log.h). */
#include "train/report_log.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "train/plot.h"

static int add_num(cJSON *o, const char *key, double v) {
    cJSON *item = isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
    return item && cJSON_AddItemToObject(o, key, item);
}

kt_status kt_epoch_log_write(const char *path, const kt_epoch_record *recs, int n, kt_err *err) {
    if (!path || (n > 0 && !recs) || n < 0)
        return kt_err_set(err, KT_ERR_ARG, "epoch log: need a path and %d records", n);
    kt_atomic_file af;
    kt_status st = kt_atomic_open(&af, path, err);
    if (st != KT_OK) return st;
    for (int i = 0; i < n; i++) {
        const kt_epoch_record *r = &recs[i];
        cJSON *o = cJSON_CreateObject();
        int ok = o && add_num(o, "epoch", r->epoch) && add_num(o, "fold", r->fold) &&
                 add_num(o, "train_loss", r->train_loss) && add_num(o, "val_loss", r->val_loss) &&
                 add_num(o, "train_acc", r->train_acc) && add_num(o, "val_acc", r->val_acc) &&
                 add_num(o, "lr", r->lr) && add_num(o, "seconds", r->seconds);
        char *line = ok ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        if (!line) {
            kt_atomic_abort(&af);
            return kt_err_set(err, KT_ERR_NOMEM, "epoch log %s: out of memory at record %d", path, i);
        }
        fputs(line, af.fp);
        fputc('\n', af.fp);
        free(line);
    }
    return kt_atomic_commit(&af, err);
}

/* Number field or NaN for null; -1 when missing or of another type. */
static int get_num(const cJSON *o, const char *key, double *v) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsNull(e)) return *v = NAN, 0;
    if (!cJSON_IsNumber(e)) return -1;
    *v = e->valuedouble;
    return 0;
}

kt_status kt_epoch_log_read(const char *path, kt_epoch_record **recs, int *n, kt_err *err) {
    *recs = NULL;
    *n = 0;
    char *data = NULL;
    size_t len = 0;
    kt_status st = kt_file_read(path, &data, &len, err);
    if (st != KT_OK) return st;
    int cap = 16, cnt = 0, lineno = 0;
    kt_epoch_record *out = malloc((size_t)cap * sizeof *out);
    if (!out) {
        free(data);
        return kt_err_set(err, KT_ERR_NOMEM, "epoch log %s: out of memory", path);
    }
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++; /* strtok_r skips empty lines, which a log never has */
        cJSON *o = cJSON_Parse(line);
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            st = kt_err_set(err, KT_ERR_FORMAT, "%s:%d: not a JSON object", path, lineno);
            goto fail;
        }
        static const char *keys[] = {"epoch", "fold", "train_loss", "val_loss", "train_acc",
                                     "val_acc", "lr", "seconds"};
        double v[8];
        for (int k = 0; k < 8; k++)
            if (get_num(o, keys[k], &v[k]) != 0 || (k < 2 && !isfinite(v[k]))) {
                cJSON_Delete(o);
                st = kt_err_set(err, KT_ERR_FORMAT, "%s:%d: field \"%s\" is missing or not a number",
                                path, lineno, keys[k]);
                goto fail;
            }
        cJSON_Delete(o);
        if (cnt == cap) {
            kt_epoch_record *grown = realloc(out, (size_t)(cap *= 2) * sizeof *out);
            if (!grown) {
                st = kt_err_set(err, KT_ERR_NOMEM, "epoch log %s: out of memory", path);
                goto fail;
            }
            out = grown;
        }
        out[cnt++] = (kt_epoch_record){(int)v[0], (int)v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
    }
    free(data);
    *recs = out;
    *n = cnt;
    return KT_OK;
fail:
    free(data);
    free(out);
    return st;
}

kt_status kt_training_log_write(const char *dir, const char *model, const kt_epoch_record *recs,
                                int n, int plots, kt_err *err) {
    if (!dir || !*dir) return kt_err_set(err, KT_ERR_ARG, "training log: no output folder");
    if (n <= 0 || !recs) return kt_err_set(err, KT_ERR_ARG, "training log: no epochs (n = %d)", n);
    kt_status st = kt_mkdirs(dir, err);
    if (st != KT_OK) return st;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, KT_EPOCH_LOG_FILE) >= sizeof path)
        return kt_err_set(err, KT_ERR_ARG, "training log: folder path is too long");
    if ((st = kt_epoch_log_write(path, recs, n, err)) != KT_OK || !plots) return st;
    snprintf(path, sizeof path, "%s/%s", dir, KT_CURVES_PNG);
    char title[256];
    snprintf(title, sizeof title, "%s%straining curves", model ? model : "", model && *model ? ": " : "");
    return kt_plot_learning_curves(path, recs, n, title, 0, 0, err);
}
