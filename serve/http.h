/* The Keratrack HTTP API (shared/API.md) on libmicrohttpd: accounts, predictions, diet endpoints,
 * /health, /metrics and the web page, backed by the SQLite store. */
#ifndef KT_SERVE_HTTP_H
#define KT_SERVE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

struct kt_predictor; /* serve/predict.h */

typedef struct kt_http_config {
    const char *host;                  /* IPv4/IPv6 literal or "localhost"; default "127.0.0.1" */
    int port;                          /* 0: any free port (see kt_http_port) */
    int threads;                       /* worker threads, and database connections (default 4) */
    const char *db_path;               /* SQLite file, created and migrated if needed */
    const char *const *cors_origins;   /* origins allowed to call from a browser; none by default */
    int n_cors_origins;
    const char *keep_uploads_dir;      /* NULL: uploaded images are not kept */
    size_t max_upload_bytes;           /* POST /predict body limit (default 20 MiB) */
    size_t max_json_bytes;             /* JSON/form body limit (default 64 KiB) */
    int64_t token_ttl_s;               /* bearer token lifetime (default 1 day) */
    struct kt_predictor *predictor;    /* NULL: POST /predict answers 503 */
    const char *meals_path;            /* NULL: the built-in meal library */
    const char *web_dir;               /* NULL: the page embedded in the program */
    void (*log)(void *ctx, const char *line); /* access and error log lines (NULL: silent) */
    void *log_ctx;
    int no_access_log;                 /* 1: error lines only (a failing database stays visible) */
} kt_http_config;

typedef struct kt_http_server kt_http_server;

/* Opens the database, loads the diet data and starts listening; returns once the socket is bound. */
kt_status kt_http_start(kt_http_server **out, const kt_http_config *cfg, kt_err *err);
int kt_http_port(const kt_http_server *s); /* the bound port */
/* Stops accepting connections, lets every request whose handler has run (or runs) deliver its
 * answer (at most KT_HTTP_STOP_GRACE_S seconds; later requests on open connections get 503 and
 * "Connection: close"), then closes everything. Requests still uploading are cut: nothing of
 * theirs has happened. */
#define KT_HTTP_STOP_GRACE_S 15
void kt_http_stop(kt_http_server *s);
/* Requests whose handler has run or is running and whose answer is not yet delivered. */
int kt_http_running(kt_http_server *s);

/* Test hook: the server's token key (to mint expired tokens in tests). */
const unsigned char *kt_http_token_key(const kt_http_server *s);

#endif
