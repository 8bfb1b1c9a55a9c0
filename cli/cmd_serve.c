/* keratrack serve: the Keratrack HTTP API, web page and SQLite history on one port. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "engine/device_spec.h"
#include "serve/http.h"

#if defined(__has_include)
#if __has_include("serve/predict.h")
#include "serve/predict.h"
#define KT_SERVE_HAVE_PREDICTOR 1
#endif
#endif

#define MAX_MODELS 16
#define MAX_ORIGINS 32

static void help(void) {
    puts("usage: keratrack serve [--model CKPT [--model CKPT ...]] [--db keratrack.db] [--port 8000]\n"
         "                       [--host 127.0.0.1] [--threads N] [--device auto|cpu|cuda[:N]]\n"
         "                       [--keep-uploads DIR] [--cors-origin URL ...] [options]\n\n"
         "Serves the Keratrack API (POST /register, POST /token, POST /predict, GET /history,\n"
         "GET /history/{id}, POST /diet/assessment, GET /diet/recommendations, POST /diet/lifestyle,\n"
         "GET /diet/lifestyle/history?days=30, POST /diet/food-log, GET /diet/progress-analysis,\n"
         "GET /health, GET /metrics) and the web page at /, with users and history in SQLite.\n\n"
         "  --model CKPT          checkpoint made by `keratrack train`; give several for an ensemble\n"
         "                        (probabilities averaged). Without one, POST /predict answers 503.\n"
         "  --device D            auto (the first GPU when present; default), cpu, cuda (the first GPU) or\n"
         "                        cuda:N (GPU N); KT_CUDA_MEMORY_MIB=N caps what the models take of the\n"
         "                        GPU (sharing a card)\n"
         "  --model-threads N     CPU threads for one forward pass (default: all cores)\n"
         "  --max-batch N         answer up to N concurrent predictions with one forward (default 1: one\n"
         "                        each); pays on a GPU and for small models, costs a graph per size\n"
         "                        2, 4, ..., N; a batched answer can differ from the lone one in the\n"
         "                        last bits\n"
         "  --fast-decode         decode big JPEG uploads at 1/2..1/8 scale (never below the model's\n"
         "                        input): a 12 MP photo in ~15 ms instead of ~37, probabilities\n"
         "                        move by ~1e-3 (default: full decode, PIL's exact pixels, as the\n"
         "                        FastAPI server)\n"
         "  --db FILE             SQLite database, created and migrated if needed (default keratrack.db)\n"
         "  --host ADDR           address to listen on (default 127.0.0.1; 0.0.0.0 for all IPv4)\n"
         "  --port N              port (default 8000; 0 picks a free one and prints it)\n"
         "  --threads N           HTTP worker threads and database connections (default 4)\n"
         "  --keep-uploads DIR    keep uploaded images in DIR under server-made names (default: not kept)\n"
         "  --cors-origin URL     allow browser calls from this origin (repeatable; none by default)\n"
         "  --max-upload-mb N     largest accepted image upload (default 20; larger answers 413)\n"
         "  --token-hours N       bearer token lifetime (default 24)\n"
         "  --meals FILE          meal library instead of the built-in one (see keratrack diet --help)\n"
         "  --web-dir DIR         serve index.html, app.js, style.css from DIR instead of the built-in page\n"
         "  --quiet               no access log on stderr (errors are still logged)\n\n"
         "Stop with Ctrl-C (SIGINT) or SIGTERM: no new connections; requests already being handled finish\n"
         "and deliver their answers (up to 15 s), later ones get 503; then the database closes.");
}

static void log_line(void *ctx, const char *line) {
    (void)ctx;
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s %s\n", ts, line);
}

static int parse_int(const char *opt, const char *v, long lo, long hi, long *out) {
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi) {
        fprintf(stderr, "keratrack serve: %s must be an integer from %ld to %ld (got '%s')\n  see keratrack serve --help\n",
                opt, lo, hi, v);
        return 0;
    }
    *out = n;
    return 1;
}

int kt_cmd_serve(int argc, char **argv) {
    const char *models[MAX_MODELS], *origins[MAX_ORIGINS];
    int n_models = 0, n_origins = 0, quiet = 0, fast_decode = 0;
    const char *device = "auto";
    long port = 8000, threads = 4, model_threads = 0, upload_mb = 20, token_hours = 24, max_batch = 1;
    kt_http_config cfg = {0};
    cfg.db_path = "keratrack.db";
    cfg.host = "127.0.0.1";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            help();
            return 0;
        }
        if (!strcmp(a, "--quiet")) {
            quiet = 1;
            continue;
        }
        if (!strcmp(a, "--fast-decode")) {
            fast_decode = 1;
            continue;
        }
        if (i + 1 >= argc || strncmp(a, "--", 2)) {
            fprintf(stderr, "keratrack serve: %s '%s'\n  see keratrack serve --help\n",
                    strncmp(a, "--", 2) ? "unexpected argument" : "missing value for", a);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--model") || !strcmp(a, "--ensemble")) {
            if (n_models == MAX_MODELS) {
                fprintf(stderr, "keratrack serve: at most %d models\n", MAX_MODELS);
                return 2;
            }
            models[n_models++] = v;
        } else if (!strcmp(a, "--cors-origin")) {
            if (n_origins == MAX_ORIGINS) {
                fprintf(stderr, "keratrack serve: at most %d --cors-origin\n", MAX_ORIGINS);
                return 2;
            }
            if (!strcmp(v, "*")) {
                fprintf(stderr, "keratrack serve: --cors-origin '*' is refused: credentials are allowed, so name each "
                                "origin (e.g. http://localhost:3000)\n");
                return 2;
            }
            origins[n_origins++] = v;
        } else if (!strcmp(a, "--db")) cfg.db_path = v;
        else if (!strcmp(a, "--host")) cfg.host = v;
        else if (!strcmp(a, "--device")) device = v;
        else if (!strcmp(a, "--keep-uploads")) cfg.keep_uploads_dir = v;
        else if (!strcmp(a, "--meals")) cfg.meals_path = v;
        else if (!strcmp(a, "--web-dir")) cfg.web_dir = v;
        else if (!strcmp(a, "--port")) { if (!parse_int(a, v, 0, 65535, &port)) return 2; }
        else if (!strcmp(a, "--threads")) { if (!parse_int(a, v, 1, 256, &threads)) return 2; }
        else if (!strcmp(a, "--model-threads")) { if (!parse_int(a, v, 1, 1024, &model_threads)) return 2; }
        else if (!strcmp(a, "--max-batch")) { if (!parse_int(a, v, 1, 64, &max_batch)) return 2; }
        else if (!strcmp(a, "--max-upload-mb")) { if (!parse_int(a, v, 1, 1024, &upload_mb)) return 2; }
        else if (!strcmp(a, "--token-hours")) { if (!parse_int(a, v, 1, 24 * 365, &token_hours)) return 2; }
        else {
            fprintf(stderr, "keratrack serve: unknown option '%s'\n  see keratrack serve --help\n", a);
            return 2;
        }
    }
    kt_device_spec dev;
    int drc = kt_cli_device("serve", device, 1, &dev);
    if (drc) return drc;
    cfg.port = (int)port;
    cfg.threads = (int)threads;
    cfg.max_upload_bytes = (size_t)upload_mb << 20;
    cfg.token_ttl_s = token_hours * 3600;
    cfg.cors_origins = origins;
    cfg.n_cors_origins = n_origins;
    cfg.log = log_line;
    cfg.no_access_log = quiet;

    kt_err err = {0};
    const char *model_device = NULL; /* where the model runs: --device auto decides here */
#ifdef KT_SERVE_HAVE_PREDICTOR
    kt_predictor *pred = NULL;
    if (n_models) {
        if (kt_predictor_open(&pred, models, n_models, device, (int)model_threads, &err))
            return kt_cli_fail("serve", err.msg,
                               kt_predictor_device_error(&err) ? "--device cpu serves from the CPU (keratrack info shows the GPU this build sees)"
                                                               : "check the --model path (a checkpoint written by keratrack train)");
        kt_predictor_set_fast_decode(pred, fast_decode);
        if (kt_predictor_set_max_batch(pred, (int)max_batch, &err)) {
            kt_predictor_free(pred);
            return kt_cli_fail("serve", err.msg, "a smaller --max-batch needs less memory");
        }
        if (max_batch > 1)
            fprintf(stderr, "keratrack serve: up to %ld concurrent predictions share a forward (--max-batch)\n", max_batch);
        cfg.predictor = (struct kt_predictor *)pred;
        model_device = kt_predictor_device(pred);
    } else {
        fprintf(stderr, "keratrack serve: no --model given: POST /predict will answer 503\n");
    }
#else
    (void)models, (void)model_threads, (void)fast_decode, (void)max_batch;
    if (n_models)
        return kt_cli_fail("serve", "this build has no model runtime (serve/predict.h was missing when it was built)",
                           "rebuild keratrack from a tree that has serve/predict.h, or run without --model");
    fprintf(stderr, "keratrack serve: this build has no model runtime: POST /predict will answer 503\n");
#endif

    /* Block the stop signals before the server's threads start so only sigwait() below sees them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    kt_http_server *srv = NULL;
    int rc = 0;
    if (kt_http_start(&srv, &cfg, &err)) {
        rc = kt_cli_fail("serve", err.msg, "check --host and --port (is the port in use?), --db and its folder, and --meals");
    } else {
        char more[48] = ""; /* an ensemble: its first checkpoint and how many more */
        if (n_models > 1) snprintf(more, sizeof more, " + %d more (ensemble)", n_models - 1);
        fprintf(stderr, "keratrack serve: listening on http://%s:%d (db %s, %d threads, model %s%s%s%s)\n", cfg.host,
                kt_http_port(srv), cfg.db_path, cfg.threads, n_models ? models[0] : "none", more, model_device ? " on " : "",
                model_device ? model_device : "");
        fflush(stderr);
        int sig = 0;
        sigwait(&stop, &sig);
        fprintf(stderr, "keratrack serve: %s received, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        kt_http_stop(srv);
    }
#ifdef KT_SERVE_HAVE_PREDICTOR
    kt_predictor_free(pred);
#endif
    return rc;
}
