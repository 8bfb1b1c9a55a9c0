/* libmicrohttpd glue: routing, authentication before the body is read, body limits, incremental
 * form parsing, CORS, responses, metrics and the access log. Handlers live in http_*.c. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sodium.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/fileio.h"
#include "base/timer.h"
#include "serve/http_internal.h"
#include "serve/timeutil.h"

static const kt_route routes[] = {
    {"POST", "/register", KT_BODY_JSON, 0, 0, kt_h_register},
    {"POST", "/token", KT_BODY_FORM, 0, 0, kt_h_token},
    {"POST", "/predict", KT_BODY_FORM, 1, 1, kt_h_predict},
    {"GET", "/history", KT_BODY_NONE, 1, 0, kt_h_history},
    {"GET", "/history/{id}", KT_BODY_NONE, 1, 0, kt_h_history_item},
    {"POST", "/diet/assessment", KT_BODY_JSON, 1, 0, kt_h_diet_assessment},
    {"GET", "/diet/recommendations", KT_BODY_NONE, 1, 0, kt_h_diet_recommendations},
    {"POST", "/diet/lifestyle", KT_BODY_JSON, 1, 0, kt_h_diet_lifestyle},
    {"GET", "/diet/lifestyle/history", KT_BODY_NONE, 1, 0, kt_h_diet_lifestyle_history},
    {"POST", "/diet/food-log", KT_BODY_JSON, 1, 0, kt_h_diet_food_log},
    {"GET", "/diet/progress-analysis", KT_BODY_NONE, 1, 0, kt_h_diet_progress},
    {"GET", "/health", KT_BODY_NONE, 0, 0, kt_h_health},
    {"GET", "/metrics", KT_BODY_NONE, 0, 0, kt_h_metrics},
    {"GET", "/", KT_BODY_NONE, 0, 0, kt_h_static},
    {"GET", "/index.html", KT_BODY_NONE, 0, 0, kt_h_static},
    {"GET", "/app.js", KT_BODY_NONE, 0, 0, kt_h_static},
    {"GET", "/style.css", KT_BODY_NONE, 0, 0, kt_h_static},
};
#define N_ROUTES ((int)(sizeof routes / sizeof routes[0]))

/* ---- logging and responses --------------------------------------------------------------------- */
void kt_http_log(kt_http_server *s, const char *fmt, ...) {
    if (!s->cfg.log) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    s->cfg.log(s->cfg.log_ctx, line);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap) {
    kt_http_server *s = cls;
    if (!s->cfg.log) return;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    s->cfg.log(s->cfg.log_ctx, line);
}

void kt_http_raw(kt_http_req *r, int status, const char *content_type, const void *data, size_t len) {
    free(r->resp);
    r->resp = malloc(len ? len : 1);
    if (!r->resp) {
        r->resp_len = 0;
        r->status = 500;
        r->content_type = "application/json";
        return;
    }
    if (len) memcpy(r->resp, data, len);
    r->resp_len = len;
    r->status = status;
    r->content_type = content_type;
}

void kt_http_json(kt_http_req *r, int status, cJSON *body) {
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (!text) {
        kt_http_raw(r, 500, "application/json", "{\"detail\":\"Internal Server Error\"}", 34);
        return;
    }
    free(r->resp);
    r->resp = text;
    r->resp_len = strlen(text);
    r->status = status;
    r->content_type = "application/json";
}

void kt_http_error(kt_http_req *r, int status, const char *detail) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "detail", detail);
    kt_http_json(r, status, o);
    if (status == 401) {
        r->extra_header[0] = "WWW-Authenticate";
        r->extra_header[1] = "Bearer";
    }
}

void kt_http_invalid(kt_http_req *r, const char *where, const char *field, const char *msg, const char *type) {
    cJSON *o = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(o, "detail"), *e = cJSON_CreateObject();
    cJSON *loc = cJSON_AddArrayToObject(e, "loc");
    cJSON_AddItemToArray(loc, cJSON_CreateString(where));
    if (field && *field) cJSON_AddItemToArray(loc, cJSON_CreateString(field));
    cJSON_AddStringToObject(e, "msg", msg);
    cJSON_AddStringToObject(e, "type", type);
    cJSON_AddItemToArray(list, e);
    kt_http_json(r, 422, o);
}

void kt_http_internal(kt_http_req *r, const kt_err *err) {
    kt_http_log(r->srv, "error: %s %s: %s", r->route ? r->route->method : "?", r->endpoint,
                err ? err->msg : "unknown failure");
    kt_http_error(r, 500, "Internal Server Error");
}

kt_db *kt_http_db(kt_http_req *r) {
    if (!r->db) r->db = kt_db_pool_acquire(r->srv->pool);
    return r->db;
}

/* A connection is held only within one call of the access handler, never while MHD waits on the
 * client: each worker thread then holds at most one of the pool's (threads) connections, so
 * acquiring never blocks a worker that other requests depend on. */
static void release_db(kt_http_req *r) {
    if (r->db) kt_db_pool_release(r->srv->pool, r->db);
    r->db = NULL;
}

const char *kt_http_query(kt_http_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

cJSON *kt_http_body_object(kt_http_req *r) {
    if (!r->body_len) {
        kt_http_invalid(r, "body", NULL, "field required", "value_error.missing");
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(r->body, r->body_len, &end, 0);
    if (j && end) /* only whitespace may follow the value */
        for (const char *p = end; p < r->body + r->body_len; p++)
            if (!isspace((unsigned char)*p)) {
                cJSON_Delete(j);
                j = NULL;
                break;
            }
    if (!j) {
        char msg[96];
        snprintf(msg, sizeof msg, "JSON decode error near byte %zu", end ? (size_t)(end - r->body) : (size_t)0);
        kt_http_invalid(r, "body", NULL, msg, "value_error.jsondecode");
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        kt_http_invalid(r, "body", NULL, "value is not a valid dict", "type_error.dict");
        return NULL;
    }
    return j;
}

/* ---- CORS ------------------------------------------------------------------------------------ */
static int origin_allowed(kt_http_server *s, const char *origin) {
    if (!origin) return 0;
    for (int i = 0; i < s->cfg.n_cors_origins; i++)
        if (!strcmp(s->cors[i], origin)) return 1;
    return 0;
}

/* Only header-name characters and separators: what we echo back must not inject headers. */
static int safe_header_list(const char *v) {
    if (strlen(v) > 512) return 0;
    for (; *v; v++)
        if (!(isalnum((unsigned char)*v) || *v == '-' || *v == '_' || *v == ',' || *v == ' ')) return 0;
    return 1;
}

static void add_cors(kt_http_req *r, struct MHD_Response *resp) {
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    if (r->srv->cfg.n_cors_origins) MHD_add_response_header(resp, "Vary", "Origin");
    if (!origin_allowed(r->srv, origin)) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(resp, "Access-Control-Allow-Credentials", "true");
}

/* ---- the request lifecycle --------------------------------------------------------------------- */
/* A request is held from when its handler runs (or it is answered early) until MHD reports it
 * completed: kt_http_stop waits for those, so no client loses an answer whose work was done (a
 * prediction stored, an account made). Requests still uploading are not held: nothing of theirs
 * has happened yet, and a client that stalls must not delay the stop. hold() returns 1 when the
 * stop has begun: then the handler must not run (the stop may already have seen no request
 * running and be closing the connections); one lock decides both, so none slips between. */
static int hold(kt_http_req *r) {
    kt_http_server *s = r->srv;
    pthread_mutex_lock(&s->run_mu);
    if (!r->held) r->held = 1, s->running++;
    int stopping = s->stopping;
    pthread_mutex_unlock(&s->run_mu);
    return stopping;
}

static void unhold(kt_http_req *r) {
    kt_http_server *s = r->srv;
    pthread_mutex_lock(&s->run_mu);
    if (r->held && --s->running == 0) pthread_cond_broadcast(&s->run_cv);
    r->held = 0;
    pthread_mutex_unlock(&s->run_mu);
}

static int is_stopping(kt_http_server *s) {
    pthread_mutex_lock(&s->run_mu);
    int v = s->stopping;
    pthread_mutex_unlock(&s->run_mu);
    return v;
}

int kt_http_running(kt_http_server *s) {
    pthread_mutex_lock(&s->run_mu);
    int v = s->running;
    pthread_mutex_unlock(&s->run_mu);
    return v;
}

static enum MHD_Result queue(kt_http_req *r) {
    if (!r->resp) kt_http_error(r, 500, "Internal Server Error");
    struct MHD_Response *resp = MHD_create_response_from_buffer(r->resp_len, r->resp, MHD_RESPMEM_MUST_FREE);
    if (!resp) return MHD_NO;
    r->resp = NULL; /* MHD owns it now */
    MHD_add_response_header(resp, "Content-Type", r->content_type ? r->content_type : "application/json");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (r->content_type && !strncmp(r->content_type, "application/json", 16))
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (r->content_type && !strncmp(r->content_type, "text/html", 9))
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                                "script-src 'self'; connect-src 'self'; frame-ancestors 'none'");
    if (r->extra_header[0]) MHD_add_response_header(resp, r->extra_header[0], r->extra_header[1]);
    if (is_stopping(r->srv)) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close"); /* no next request */
    add_cors(r, resp);
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    r->queued = 1;
    /* Counted when answered (not when MHD reports completion): a client that has its answer
     * sees it in /metrics. The time is the server's, up to the queued response. */
    kt_metrics_request(r->srv->metrics, r->endpoint, r->status, kt_now() - r->t_start);
    return ok;
}

/* Matches path against a pattern; "{id}" takes a positive integer without leading zeros. */
static int match(const char *pattern, const char *path, int64_t *id) {
    const char *brace = strstr(pattern, "{id}");
    if (!brace) return !strcmp(pattern, path);
    size_t pre = (size_t)(brace - pattern);
    if (strncmp(pattern, path, pre)) return 0;
    const char *p = path + pre;
    if (!isdigit((unsigned char)*p) || *p == '0') return 0;
    int64_t v = 0;
    int n = 0;
    for (; isdigit((unsigned char)*p); p++, n++) {
        if (n >= 18) return 0;
        v = v * 10 + (*p - '0');
    }
    if (*p) return 0;
    *id = v;
    return 1;
}

static enum MHD_Result form_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                                  const char *content_type, const char *transfer_encoding, const char *data,
                                  uint64_t off, size_t size) {
    (void)kind, (void)filename, (void)content_type, (void)transfer_encoding, (void)off;
    kt_http_req *r = cls;
    if (!key) return MHD_YES;
    if (!strcmp(key, "file")) {
        if (!filename) { /* a plain form value, not an uploaded file (FastAPI refuses it too) */
            r->file_not_upload = 1;
            return MHD_YES;
        }
        r->has_file = 1;
        if (r->file_len + size > r->limit) {
            r->too_large = 1;
            return MHD_YES;
        }
        if (r->file_len + size > r->file_cap) {
            size_t nc = r->file_cap ? r->file_cap : 65536;
            while (nc < r->file_len + size) nc *= 2;
            char *nf = realloc(r->file, nc);
            if (!nf) return MHD_NO;
            r->file = nf;
            r->file_cap = nc;
        }
        if (size) memcpy(r->file + r->file_len, data, size);
        r->file_len += size;
        return MHD_YES;
    }
    char *dst = !strcmp(key, "username") ? r->username : !strcmp(key, "password") ? r->password : NULL;
    if (!dst) return MHD_YES; /* other fields are ignored, like FastAPI */
    int *has = dst == r->username ? &r->has_username : &r->has_password;
    size_t have = *has ? strlen(dst) : 0;
    *has = 1;
    if (have + size >= KT_FORM_FIELD_MAX || memchr(data, '\0', size)) {
        r->field_too_long = 1;
        return MHD_YES;
    }
    memcpy(dst + have, data, size);
    dst[have + size] = '\0';
    return MHD_YES;
}

/* Checks the bearer token before any body is read; answers 401 and returns 0 when it fails. */
static int authenticate(kt_http_req *r) {
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7)) {
        kt_http_error(r, 401, "Not authenticated");
        return 0;
    }
    const char *tok = h + 7;
    while (*tok == ' ') tok++;
    kt_err err = {0};
    int64_t uid = 0;
    kt_status st = kt_auth_token_check(r->srv->key, tok, kt_time_now_us() / 1000000, &uid, &err);
    if (st == KT_ERR_STATE) {
        kt_http_error(r, 401, "Token expired");
        return 0;
    }
    if (st) {
        kt_http_error(r, 401, "Could not validate credentials");
        return 0;
    }
    kt_db_user u;
    kt_db *db = kt_http_db(r);
    st = kt_db_user_by_id(db, uid, &u, &err);
    if (st == KT_ERR_NOTFOUND) {
        kt_http_error(r, 401, "Could not validate credentials");
        return 0;
    }
    if (st) {
        kt_http_internal(r, &err);
        return 0;
    }
    r->user_id = uid;
    return 1;
}

static int is_form_type(const char *ct) {
    return ct && (!strncasecmp(ct, "multipart/form-data", 19) || !strncasecmp(ct, "application/x-www-form-urlencoded", 33));
}

/* First call for a request (headers read, no body yet). Returns 1 when a response is ready now. */
static int begin(kt_http_req *r, const char *url, const char *method) {
    kt_http_server *s = r->srv;
    int path_known = 0;
    const char *m = !strcmp(method, "HEAD") ? "GET" : method;
    for (int i = 0; i < N_ROUTES; i++) {
        int64_t id = 0;
        if (!match(routes[i].pattern, url, &id)) continue;
        path_known = 1;
        r->endpoint = routes[i].pattern;
        if (!strcmp(routes[i].method, m)) {
            r->route = &routes[i];
            r->path_id = id;
            break;
        }
    }
    if (!strcmp(method, "OPTIONS") && path_known &&
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Access-Control-Request-Method")) {
        const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
        if (!origin_allowed(s, origin)) {
            kt_http_error(r, 400, "Disallowed CORS origin");
            return 1;
        }
        kt_http_raw(r, 200, "text/plain; charset=utf-8", "OK", 2);
        r->route = NULL;
        r->preflight = 1; /* queue_preflight() adds the Access-Control-* headers */
        return 1;
    }
    if (!path_known) {
        r->endpoint = "other";
        kt_http_error(r, 404, "Not Found");
        return 1;
    }
    if (!r->route) {
        kt_http_error(r, 405, "Method Not Allowed");
        return 1;
    }
    if (r->route->auth && !authenticate(r)) return 1;
    r->limit = r->route->upload ? s->cfg.max_upload_bytes : s->cfg.max_json_bytes;
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end == cl || *end || !isdigit((unsigned char)*cl)) {
            kt_http_error(r, 400, "Bad Content-Length");
            return 1;
        }
        if (n > r->limit) {
            char msg[96];
            snprintf(msg, sizeof msg, "Request body too large (limit %zu bytes)", r->limit);
            kt_http_error(r, 413, msg);
            return 1;
        }
    }
    if (r->route->body == KT_BODY_FORM) {
        const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Type");
        if (is_form_type(ct)) {
            r->pp = MHD_create_post_processor(r->conn, 65536, form_field, r);
            if (!r->pp) {
                kt_http_error(r, 400, "There was an error parsing the body");
                return 1;
            }
        }
        /* Not a form at all: the handler reports the missing fields (422), as FastAPI does. */
    }
    return 0;
}

static void take_body(kt_http_req *r, const char *data, size_t size) {
    r->received += size;
    if (r->too_large || r->received > r->limit) {
        r->too_large = 1;
        return;
    }
    if (r->pp) {
        if (MHD_post_process(r->pp, data, size) != MHD_YES) r->form_bad = 1;
        return;
    }
    if (!r->route || r->route->body != KT_BODY_JSON) return; /* a body where none is expected is ignored */
    if (r->body_len + size > r->body_cap) {
        size_t nc = r->body_cap ? r->body_cap : 4096;
        while (nc < r->body_len + size) nc *= 2;
        char *nb = realloc(r->body, nc);
        if (!nb) {
            r->too_large = 1;
            return;
        }
        r->body = nb;
        r->body_cap = nc;
    }
    memcpy(r->body + r->body_len, data, size);
    r->body_len += size;
}

static void dispatch(kt_http_req *r) {
    if (r->pp) {
        if (MHD_destroy_post_processor(r->pp) != MHD_YES) r->form_bad = 1;
        r->pp = NULL;
    }
    if (r->too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "Request body too large (limit %zu bytes)", r->limit);
        kt_http_error(r, 413, msg);
        return;
    }
    if (r->form_bad) {
        kt_http_error(r, 400, "There was an error parsing the body");
        return;
    }
    r->route->handle(r);
    if (!r->resp) kt_http_error(r, 500, "Internal Server Error");
}

static enum MHD_Result queue_preflight(kt_http_req *r) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(r->resp_len, r->resp, MHD_RESPMEM_MUST_FREE);
    if (!resp) return MHD_NO;
    r->resp = NULL;
    const char *req_h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Access-Control-Request-Headers");
    MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                            req_h && safe_header_list(req_h) ? req_h : "Authorization, Content-Type");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    add_cors(r, resp);
    enum MHD_Result ok = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    r->queued = 1;
    kt_metrics_request(r->srv->metrics, r->endpoint, 200, kt_now() - r->t_start);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    kt_http_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *con_cls = r;
        r->srv = cls;
        r->conn = conn;
        r->t_start = kt_now();
        r->endpoint = "other";
        if (is_stopping(r->srv)) { /* a request on a kept-alive connection after the stop began */
            hold(r);
            kt_http_error(r, 503, "The server is stopping");
            return queue(r);
        }
        int answered = begin(r, url, method);
        release_db(r);
        if (answered) {
            hold(r);
            return r->preflight ? queue_preflight(r) : queue(r);
        }
        return MHD_YES;
    }
    if (r->queued) { /* answered early: MHD discards the rest of the body */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        take_body(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (hold(r)) { /* its body came in after the stop began: refused, nothing done */
        release_db(r);
        kt_http_error(r, 503, "The server is stopping");
        return queue(r);
    }
    dispatch(r);
    release_db(r);
    return queue(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)conn;
    kt_http_server *s = cls;
    kt_http_req *r = *con_cls;
    if (!r) return;
    double dt = kt_now() - r->t_start;
    int status = r->queued ? r->status : 0;
    if (!r->queued) kt_metrics_request(s->metrics, r->endpoint, 0, dt); /* ended before any answer */
    if (!s->cfg.no_access_log)
        kt_http_log(s, "%s %s %d %.1f ms%s", r->route ? r->route->method : "-", r->endpoint, status, dt * 1e3,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection ended early)");
    if (r->pp) MHD_destroy_post_processor(r->pp);
    release_db(r);
    free(r->body);
    free(r->file);
    free(r->resp);
    sodium_memzero(r->password, sizeof r->password);
    unhold(r);
    free(r);
    *con_cls = NULL;
}

/* ---- start and stop -------------------------------------------------------------------------- */
static char *dup_or_null(const char *s) {
    if (!s) return NULL;
    char *d = strdup(s);
    return d;
}

static void free_server(kt_http_server *s) {
    if (!s) return;
    kt_db_pool_close(s->pool);
    kt_metrics_free(s->metrics);
    kt_meal_lib_free(&s->meals);
    kt_diet_facts_free(&s->facts);
    for (int i = 0; i < s->cfg.n_cors_origins && s->cors; i++) free(s->cors[i]);
    free(s->cors);
    free(s->host);
    free(s->db_path);
    free(s->keep_dir);
    free(s->meals_path);
    free(s->web_dir);
    sodium_memzero(s->key, sizeof s->key);
    pthread_cond_destroy(&s->run_cv);
    pthread_mutex_destroy(&s->run_mu);
    free(s);
}

/* An upload is kept (renamed into the folder) before its prediction row is inserted; a server killed
 * between the two left a file no row names, which no user can see or delete. Such files, and the
 * temporary files of a killed writer, go when the server starts. Names are the server's own
 * (u<user>-<24 hex>.jpg|png); anything else in the folder is left alone. */
static int upload_name(const char *n) { /* keep_upload's form (http_predict.c) */
    if (n[0] != 'u' || !isdigit((unsigned char)n[1])) return 0;
    const char *p = n + 1;
    while (isdigit((unsigned char)*p)) p++;
    if (*p++ != '-') return 0;
    for (int i = 0; i < 24; i++, p++)
        if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f')) return 0;
    return !strcmp(p, ".jpg") || !strcmp(p, ".png");
}

static kt_status sweep_uploads(kt_http_server *s, kt_err *err) {
    int stale = kt_remove_stale_temps(s->keep_dir), orphans = 0;
    DIR *d = opendir(s->keep_dir);
    if (!d) return kt_err_set(err, KT_ERR_IO, "cannot read --keep-uploads folder %s: %s", s->keep_dir, strerror(errno));
    kt_db *db = kt_db_pool_acquire(s->pool);
    kt_status st = KT_OK;
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        if (!upload_name(e->d_name)) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", s->keep_dir, e->d_name);
        int known = 0;
        st = kt_db_prediction_path_known(db, path, &known, err);
        if (!st && !known && unlink(path) == 0) orphans++;
    }
    kt_db_pool_release(s->pool, db);
    closedir(d);
    if (!st && (stale || orphans))
        kt_http_log(s, "removed %d uploads without a prediction and %d temporary files from %s (left by a stopped server)",
                    orphans, stale, s->keep_dir);
    return st;
}

kt_status kt_http_start(kt_http_server **out, const kt_http_config *cfg, kt_err *err) {
    *out = NULL;
    if (!cfg->db_path) return kt_err_set(err, KT_ERR_ARG, "no database path");
    kt_http_server *s = calloc(1, sizeof *s);
    if (!s) return kt_err_set(err, KT_ERR_NOMEM, "no memory for the server");
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the stop's grace period, immune to clock changes */
    pthread_cond_init(&s->run_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->run_mu, NULL);
    s->cfg = *cfg;
    s->cfg.n_cors_origins = 0;
    s->host = strdup(cfg->host ? cfg->host : "127.0.0.1");
    s->db_path = strdup(cfg->db_path);
    s->keep_dir = dup_or_null(cfg->keep_uploads_dir);
    s->meals_path = dup_or_null(cfg->meals_path);
    s->web_dir = dup_or_null(cfg->web_dir);
    s->cors = calloc((size_t)(cfg->n_cors_origins > 0 ? cfg->n_cors_origins : 1), sizeof *s->cors);
    if (!s->host || !s->db_path || !s->cors) {
        free_server(s);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for the server");
    }
    for (int i = 0; i < cfg->n_cors_origins; i++) {
        if (!(s->cors[i] = strdup(cfg->cors_origins[i]))) {
            free_server(s);
            return kt_err_set(err, KT_ERR_NOMEM, "no memory");
        }
        s->cfg.n_cors_origins++;
    }
    s->cfg.host = s->host;
    s->cfg.db_path = s->db_path;
    s->cfg.keep_uploads_dir = s->keep_dir;
    s->cfg.meals_path = s->meals_path;
    s->cfg.web_dir = s->web_dir;
    s->cfg.cors_origins = (const char *const *)s->cors;
    if (s->cfg.threads <= 0) s->cfg.threads = 4;
    if (!s->cfg.max_upload_bytes) s->cfg.max_upload_bytes = (size_t)20 << 20;
    if (!s->cfg.max_json_bytes) s->cfg.max_json_bytes = (size_t)64 << 10;
    if (s->cfg.token_ttl_s <= 0) s->cfg.token_ttl_s = 24 * 3600;

    kt_status st;
    if ((st = kt_auth_init(0, err)) || (st = kt_db_pool_open(&s->pool, s->db_path, s->cfg.threads, err))) {
        free_server(s);
        return st;
    }
    kt_db *db = kt_db_pool_acquire(s->pool);
    st = kt_db_secret(db, s->key, err);
    kt_db_pool_release(s->pool, db);
    if (st || (st = s->meals_path ? kt_meal_lib_load(&s->meals, s->meals_path, err)
                                  : kt_meal_lib_load_default(&s->meals, err)) ||
        (st = kt_diet_facts_load_default(&s->facts, err))) {
        free_server(s);
        return st;
    }
    if (s->keep_dir && ((st = kt_mkdirs(s->keep_dir, err)) || (st = sweep_uploads(s, err)))) {
        free_server(s);
        return st;
    }
    if (!(s->metrics = kt_metrics_new())) {
        free_server(s);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for metrics");
    }

    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC; /* ITC: MHD_quiesce_daemon */
    const char *host = !strcmp(s->host, "localhost") ? "127.0.0.1" : s->host;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)s->cfg.port);
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)s->cfg.port);
        flags |= MHD_USE_IPv6;
    } else {
        kt_err_set(err, KT_ERR_ARG, "--host '%s' is not an IPv4 or IPv6 address (or localhost)", s->host);
        free_server(s);
        return KT_ERR_ARG;
    }
    if (s->cfg.port < 0 || s->cfg.port > 65535) {
        kt_err_set(err, KT_ERR_ARG, "port %d is out of range 0..65535", s->cfg.port);
        free_server(s);
        return KT_ERR_ARG;
    }
    s->daemon = MHD_start_daemon(flags, (uint16_t)s->cfg.port, NULL, NULL, on_request, s,
                                 MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                 MHD_OPTION_THREAD_POOL_SIZE, (unsigned)s->cfg.threads,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                                 MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                 MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, s,
                                 MHD_OPTION_END); /* no LISTENING_ADDRESS_REUSE: a port in use must fail */
    if (!s->daemon) {
        kt_err_set(err, KT_ERR_IO, "cannot listen on %s port %d (in use, or not permitted?)", s->host, s->cfg.port);
        free_server(s);
        return KT_ERR_IO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : s->cfg.port;
    *out = s;
    return KT_OK;
}

int kt_http_port(const kt_http_server *s) { return s->port; }
const unsigned char *kt_http_token_key(const kt_http_server *s) { return s->key; }

void kt_http_stop(kt_http_server *s) {
    if (!s) return;
    if (s->daemon) {
        /* No new connections; open ones go on until the requests whose work was done have their
         * answers (MHD_stop_daemon alone closed them: a stored prediction whose client got a reset). */
        pthread_mutex_lock(&s->run_mu);
        s->stopping = 1;
        pthread_mutex_unlock(&s->run_mu);
        MHD_socket listen_fd = MHD_quiesce_daemon(s->daemon);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += KT_HTTP_STOP_GRACE_S;
        pthread_mutex_lock(&s->run_mu);
        while (s->running > 0 && pthread_cond_timedwait(&s->run_cv, &s->run_mu, &until) == 0) {}
        int left = s->running;
        pthread_mutex_unlock(&s->run_mu);
        if (left) kt_http_log(s, "%d answers still undelivered after %d s: closing their connections", left, KT_HTTP_STOP_GRACE_S);
        MHD_stop_daemon(s->daemon);
        if (listen_fd != MHD_INVALID_SOCKET) close(listen_fd); /* quiesce hands it over, closed after the stop */
    }
    free_server(s);
}
