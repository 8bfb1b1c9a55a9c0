/* Shared by serve/http_*.c only: the server and request structs, the route table, and the
 * response helpers every handler uses (JSON bodies, FastAPI-shaped errors). */
#ifndef KT_SERVE_HTTP_INTERNAL_H
#define KT_SERVE_HTTP_INTERNAL_H

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <pthread.h>

#include "serve/auth.h"
#include "serve/db.h"
#include "serve/diet_library.h"
#include "serve/http.h"
#include "serve/metrics.h"

struct kt_http_server {
    kt_http_config cfg;          /* strings point into the copies below */
    char *host, *db_path, *keep_dir, *meals_path, *web_dir;
    char **cors;                 /* (cfg.n_cors_origins) */
    struct MHD_Daemon *daemon;
    int port;
    kt_db_pool *pool;
    unsigned char key[KT_AUTH_KEY_BYTES];
    kt_metrics *metrics;
    kt_meal_lib meals;
    kt_diet_facts facts;
    /* Stopping without losing answers: requests whose handler ran (or began) and whose answer is
     * not yet delivered, and whether kt_http_stop has begun. Under run_mu. */
    pthread_mutex_t run_mu;
    pthread_cond_t run_cv;
    int running, stopping;
};

typedef enum { KT_BODY_NONE = 0, KT_BODY_JSON, KT_BODY_FORM } kt_body_kind;

typedef struct kt_http_req kt_http_req;
typedef void (*kt_http_handler)(kt_http_req *r);

typedef struct kt_route {
    const char *method;
    const char *pattern;   /* "/history" or "/history/{id}" ({id}: a positive integer segment) */
    kt_body_kind body;
    int auth;              /* needs a bearer token */
    int upload;            /* body limit is cfg.max_upload_bytes instead of cfg.max_json_bytes */
    kt_http_handler handle;
} kt_route;

#define KT_FORM_FIELD_MAX 1024 /* bytes of one non-file form field */

struct kt_http_req {
    kt_http_server *srv;
    int held;              /* counted in srv->running until MHD reports the request completed */
    struct MHD_Connection *conn;
    const kt_route *route;
    const char *endpoint;  /* metrics label: the route pattern, or "other" */
    double t_start;
    int64_t path_id;       /* the {id} segment */
    int64_t user_id;       /* set when the route needs auth and the token checked out */
    kt_db *db;             /* acquired lazily by kt_http_db(), released before the handler call returns */
    /* body */
    size_t limit;
    char *body;            /* (body_len) raw bytes (JSON routes) */
    size_t body_len, body_cap, received;
    int too_large;
    /* form (multipart or urlencoded), parsed incrementally */
    struct MHD_PostProcessor *pp;
    int form_bad;          /* the form could not be parsed */
    char *file;            /* (file_len) bytes of field "file" */
    size_t file_len, file_cap;
    int has_file;
    int file_not_upload;   /* a "file" field that was not a file part (no filename), e.g. urlencoded */
    char username[KT_FORM_FIELD_MAX], password[KT_FORM_FIELD_MAX];
    int has_username, has_password, field_too_long;
    /* response */
    int status;
    char *resp;            /* malloc'd body */
    size_t resp_len;
    const char *content_type;
    const char *extra_header[2]; /* name, value (e.g. WWW-Authenticate: Bearer) */
    int queued;
    int preflight;         /* an answered CORS preflight (OPTIONS) */
};

/* ---- responses ------------------------------------------------------------------------------- */
void kt_http_json(kt_http_req *r, int status, cJSON *body); /* takes ownership of body */
void kt_http_error(kt_http_req *r, int status, const char *detail);
/* 422 in FastAPI's shape: {"detail": [{"loc": ["body"|"query", field], "msg": msg, "type": type}]}. */
void kt_http_invalid(kt_http_req *r, const char *where, const char *field, const char *msg, const char *type);
void kt_http_raw(kt_http_req *r, int status, const char *content_type, const void *data, size_t len);

/* The request's database connection (from the pool), valid until this handler call returns. */
kt_db *kt_http_db(kt_http_req *r);
/* Logs a server-side failure and answers 500 without leaking details. */
void kt_http_internal(kt_http_req *r, const kt_err *err);
void kt_http_log(kt_http_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The JSON body as an object: answers 422 (and returns NULL) for empty, invalid or non-object JSON. */
cJSON *kt_http_body_object(kt_http_req *r);
/* A query argument, or NULL. */
const char *kt_http_query(kt_http_req *r, const char *name);

/* ---- handlers -------------------------------------------------------------------------------- */
void kt_h_register(kt_http_req *r);
void kt_h_token(kt_http_req *r);
void kt_h_history(kt_http_req *r);
void kt_h_history_item(kt_http_req *r);
void kt_h_health(kt_http_req *r);
void kt_h_metrics(kt_http_req *r);
void kt_h_predict(kt_http_req *r);
void kt_h_diet_assessment(kt_http_req *r);
void kt_h_diet_recommendations(kt_http_req *r);
void kt_h_diet_lifestyle(kt_http_req *r);
void kt_h_diet_lifestyle_history(kt_http_req *r);
void kt_h_diet_food_log(kt_http_req *r);
void kt_h_diet_progress(kt_http_req *r);
void kt_h_static(kt_http_req *r);

/* ---- predictor glue (serve/http_predict.c) --------------------------------------------------- */
int kt_http_model_loaded(const kt_http_server *s);
/* The model's class names as a JSON array (empty without a model). */
cJSON *kt_http_model_classes(const kt_http_server *s);
/* "cpu", "cuda" or "cuda:N": where the model runs (--device auto decides at start); NULL without a model */
const char *kt_http_model_device(const kt_http_server *s);

#endif
