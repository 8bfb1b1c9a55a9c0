/* POST /predict: the uploaded image through the model (serve/predict.h), stored in the history. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "base/timer.h"
#include "serve/http_internal.h"
#include "serve/timeutil.h"

/* The predictor comes from the engine side (serve/predict.h); a build without it answers 503. */
#if defined(__has_include)
#if __has_include("serve/predict.h")
#include "serve/predict.h"
#define KT_HTTP_HAVE_PREDICTOR 1
#endif
#endif

int kt_http_model_loaded(const kt_http_server *s) { return s->cfg.predictor != NULL; }

const char *kt_http_model_device(const kt_http_server *s) {
#ifdef KT_HTTP_HAVE_PREDICTOR
    if (s->cfg.predictor) return kt_predictor_device(s->cfg.predictor);
#else
    (void)s;
#endif
    return NULL;
}

cJSON *kt_http_model_classes(const kt_http_server *s) {
    cJSON *a = cJSON_CreateArray();
#ifdef KT_HTTP_HAVE_PREDICTOR
    if (s->cfg.predictor)
        for (int i = 0; i < kt_predictor_num_classes(s->cfg.predictor); i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(kt_predictor_class_name(s->cfg.predictor, i)));
#else
    (void)s;
#endif
    return a;
}

/* JPEG starts FF D8 FF, PNG with its 8-byte signature: anything else is refused before decoding. */
static const char *image_kind(const unsigned char *b, size_t n) {
    static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return "jpg";
    if (n >= 8 && !memcmp(b, png, 8)) return "png";
    return NULL;
}

#ifdef KT_HTTP_HAVE_PREDICTOR
/* Saves the upload under a name we make up (never the client's file name). */
/* The name's form is what the start-up sweep of orphans recognises (upload_name, http_server.c). */
static kt_status keep_upload(kt_http_req *r, const char *ext, char *path, size_t cap, kt_err *err) {
    unsigned char rnd[12];
    char hex[25];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    snprintf(path, cap, "%s/u%lld-%s.%s", r->srv->cfg.keep_uploads_dir, (long long)r->user_id, hex, ext);
    return kt_file_write_atomic(path, r->file, r->file_len, err);
}
#endif

void kt_h_predict(kt_http_req *r) {
    if (!r->has_file) {
        if (r->file_not_upload) kt_http_invalid(r, "body", "file", "expected an uploaded file (multipart/form-data)", "value_error");
        else kt_http_invalid(r, "body", "file", "field required", "value_error.missing");
        return;
    }
    if (r->file_len == 0) {
        kt_http_error(r, 400, "Uploaded file is empty");
        return;
    }
    const char *ext = image_kind((const unsigned char *)r->file, r->file_len);
    if (!ext) {
        kt_http_error(r, 400, "File must be a JPEG or PNG image");
        return;
    }
#ifndef KT_HTTP_HAVE_PREDICTOR
    kt_http_error(r, 503, "This build has no model runtime (serve/predict.h was missing at build time)");
#else
    kt_predictor *p = r->srv->cfg.predictor;
    if (!p) {
        kt_http_error(r, 503, "No model is loaded: start the server with --model CHECKPOINT");
        return;
    }
    int nc = kt_predictor_num_classes(p);
    float *probs = calloc((size_t)(nc > 0 ? nc : 1), sizeof *probs);
    if (!probs) {
        kt_http_error(r, 500, "Internal Server Error");
        return;
    }
    kt_err err = {0};
    kt_http_server *s = r->srv;
    /* The predictor serialises the forwards itself; the time includes any wait for it. */
    double t0 = kt_now();
    kt_predict_times tm;
    kt_status st = kt_predictor_run_bytes_timed(p, r->file, r->file_len, probs, &tm, &err);
    double dt = kt_now() - t0;
    if (st) {
        free(probs);
        if (st == KT_ERR_FORMAT || st == KT_ERR_ARG || st == KT_ERR_UNSUPPORTED) {
            char msg[KT_ERR_MSG_MAX + 64];
            snprintf(msg, sizeof msg, "Could not read the image: %s", err.msg);
            kt_http_error(r, 400, msg);
        } else {
            kt_http_internal(r, &err);
        }
        return;
    }
    kt_metrics_inference(s->metrics, dt);
    kt_metrics_predict_stages(s->metrics, tm.decode, tm.wait, tm.forward, tm.batch);
    int best = 0;
    for (int i = 1; i < nc; i++)
        if (probs[i] > probs[best]) best = i;
    cJSON *pj = cJSON_CreateObject();
    for (int i = 0; i < nc; i++) cJSON_AddNumberToObject(pj, kt_predictor_class_name(p, i), (double)probs[i]);
    char *ptxt = cJSON_PrintUnformatted(pj);
    cJSON_Delete(pj);
    char path[4096];
    const char *image_path = NULL;
    if (s->cfg.keep_uploads_dir) {
        if (keep_upload(r, ext, path, sizeof path, &err)) {
            kt_http_internal(r, &err);
            cJSON_free(ptxt);
            free(probs);
            return;
        }
        image_path = path;
    }
    cJSON *row = NULL;
    st = kt_db_prediction_add(kt_http_db(r), r->user_id, image_path, kt_predictor_class_name(p, best),
                              (double)probs[best], ptxt, kt_time_now_us(), &row, &err);
    if (st) {
        if (image_path) remove(image_path); /* no row, no orphan file */
        kt_http_internal(r, &err);
    } else {
        kt_http_json(r, 200, row);
    }
    cJSON_free(ptxt);
    free(probs);
#endif
}
