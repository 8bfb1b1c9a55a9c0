/* Fuzz targets of the server side: the diet engine (assessment, history, plan), meal libraries, and
 * requests to the HTTP API. See fuzz_targets.h. */
#include "fuzz_targets.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serve/diet.h"
#include "serve/diet_json.h"
#include "serve/diet_library.h"
#include "serve/http.h"
#include "serve/http_client.h"

#include "fuzz_internal.h"

/* ---- the diet engine ------------------------------------------------------------------------ */
static const kt_meal_lib *default_meals(void) {
    static kt_meal_lib lib;
    static int state; /* 0 not loaded, 1 loaded, -1 failed */
    kt_err err;
    if (!state) state = kt_meal_lib_load_default(&lib, &err) == KT_OK ? 1 : -1;
    if (state < 0) kt_fuzz_broken("diet", "the embedded meal library does not load");
    return &lib;
}

static const kt_diet_facts *default_facts(void) {
    static kt_diet_facts facts;
    static int state;
    kt_err err;
    if (!state) state = kt_diet_facts_load_default(&facts, &err) == KT_OK ? 1 : -1;
    if (state < 0) kt_fuzz_broken("diet", "the embedded nutrient facts do not load");
    return &facts;
}

/* T_n = b_n m_n (1 + s) u, with s the newest prediction's severity and u = 1.2 when it got worse:
 * the same history with a worse newest prediction may not lower any target. */
static void worse_newest_needs_more(const kt_diet_plan *plan, const kt_diet_assessment *as, const kt_diet_obs *obs, int n) {
    if (n < 1) return;
    int newest = 0; /* the latest time; the first listed among equal times, as the engine takes it */
    for (int i = 1; i < n; i++)
        if (obs[i].time_us > obs[newest].time_us) newest = i;
    kt_diet_obs *worse = malloc(sizeof *worse * (size_t)n);
    kt_diet_plan *p2 = calloc(1, sizeof *p2);
    kt_err err = {0};
    if (!worse || !p2) kt_fuzz_broken("diet", "no memory");
    memcpy(worse, obs, sizeof *worse * (size_t)n);
    worse[newest].severity = worse[newest].severity + 0.25 > 1.0 ? 1.0 : worse[newest].severity + 0.25;
    if (kt_diet_plan_make(p2, as, worse, n, default_meals(), default_facts(), 1700000000000000LL, &err) != KT_OK)
        kt_fuzz_broken("diet", "a worse newest severity makes the plan fail: %s", err.msg);
    for (int k = 0; k < KT_NUT_COUNT; k++)
        if (p2->targets[k].target < plan->targets[k].target * (1 - 1e-12))
            kt_fuzz_broken("diet", "nutrient %d: target %g with newest severity %g, %g with %g", k, plan->targets[k].target,
                           obs[newest].severity, p2->targets[k].target, worse[newest].severity);
    free(worse);
    free(p2);
}

int kt_fuzz_diet(const uint8_t *data, size_t len) {
    const uint8_t *nul = memchr(data, 0, len);
    size_t jlen = nul ? (size_t)(nul - data) : len;
    const char *csv = nul ? (const char *)nul + 1 : "";
    size_t clen = nul ? len - jlen - 1 : 0;
    kt_err err = {0};
    char field[32] = "";
    cJSON *aj = cJSON_ParseWithLength((const char *)data, jlen);
    kt_diet_assessment as;
    int as_ok = aj && kt_diet_assessment_parse(aj, &as, field, &err) == KT_OK;
    if (aj && !as_ok && !err.msg[0]) kt_fuzz_broken("diet", "assessment refused without a message");
    cJSON_Delete(aj);
    kt_diet_obs *obs = NULL;
    int n = 0;
    err.msg[0] = '\0';
    int h_ok = kt_diet_history_parse_csv(csv, clen, "fuzz_history.csv", &obs, &n, &err) == KT_OK;
    if (!h_ok && !err.msg[0]) kt_fuzz_broken("diet", "history refused without a message");
    for (int i = 0; h_ok && i < n; i++)
        if (!(obs[i].severity >= 0.0 && obs[i].severity <= 1.0))
            kt_fuzz_broken("diet", "history line %d accepted with severity %g", i, obs[i].severity);
    if (as_ok && h_ok) {
        if (as.age < KT_DIET_AGE_MIN || as.age > KT_DIET_AGE_MAX || !(as.weight_kg >= KT_DIET_WEIGHT_MIN) ||
            !(as.weight_kg <= KT_DIET_WEIGHT_MAX) || !(as.height_cm >= KT_DIET_HEIGHT_MIN) ||
            !(as.height_cm <= KT_DIET_HEIGHT_MAX))
            kt_fuzz_broken("diet", "assessment accepted age %d, weight %g, height %g", as.age, as.weight_kg, as.height_cm);
        kt_diet_plan *plan = calloc(1, sizeof *plan);
        if (plan && kt_diet_plan_make(plan, &as, obs, n, default_meals(), default_facts(), 1700000000000000LL, &err) == KT_OK) {
            if (!(plan->confidence >= 0.7 && plan->confidence <= 0.95))
                kt_fuzz_broken("diet", "confidence %g outside [0.7, 0.95]", plan->confidence);
            for (int k = 0; k < KT_NUT_COUNT; k++) {
                const kt_nutrient_target *t = &plan->targets[k];
                if (!isfinite(t->target) || t->target < 0 || !isfinite(t->recommended) || t->recommended > t->target)
                    kt_fuzz_broken("diet", "nutrient %d: target %g, recommended %g", k, t->target, t->recommended);
            }
            cJSON *o = kt_diet_plan_to_json(plan, default_facts());
            char *s = o ? cJSON_PrintUnformatted(o) : NULL;
            free(s);
            cJSON_Delete(o);
            worse_newest_needs_more(plan, &as, obs, n);
        }
        free(plan);
    }
    free(obs);
    return 0;
}

int kt_fuzz_meals(const uint8_t *data, size_t len) {
    kt_meal_lib lib = {0};
    kt_err err = {0};
    if (kt_meal_lib_parse(&lib, (const char *)data, len, "fuzz_meals.json", &err) == KT_OK) {
        if (lib.n_meals <= 0) kt_fuzz_broken("meals", "accepted a library of %d meals", lib.n_meals);
        for (int i = 0; i < lib.n_meals; i++)
            if (!lib.meals[i].name) kt_fuzz_broken("meals", "meal %d has no name", i);
    } else if (!err.msg[0]) {
        kt_fuzz_broken("meals", "refused without a message");
    }
    kt_meal_lib_free(&lib);
    return 0;
}

/* ---- the HTTP API: one server for the process, requests built from the input -------------------- */
static kt_http_server *http_srv;
static char http_dir[64], http_token[512];

void kt_fuzz_http_stop(void) {
    if (!http_srv) return;
    kt_http_stop(http_srv);
    http_srv = NULL;
    char p[128];
    static const char *const files[] = {"fuzz.db", "fuzz.db-wal", "fuzz.db-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", http_dir, files[i]);
        unlink(p);
    }
    rmdir(http_dir);
}

static void http_log(void *ctx, const char *line) {
    (void)ctx;
    fprintf(stderr, "fuzz http server: %s\n", line);
}

static int http_port(void) {
    static int state; /* 0 not started, 1 up, -1 failed */
    if (state) return state > 0 ? kt_http_port(http_srv) : -1;
    state = -1;
    snprintf(http_dir, sizeof http_dir, "/tmp/kt_fuzz_http.XXXXXX");
    if (!mkdtemp(http_dir)) return -1;
    char db[128];
    snprintf(db, sizeof db, "%s/fuzz.db", http_dir);
    /* error lines only: a failing handler or database says why beside the input that made it fail;
     * uploads run all the way, through the --max-batch queue */
    kt_http_config cfg = {.host = "127.0.0.1", .threads = 2, .db_path = db, .log = http_log, .no_access_log = 1,
                          .predictor = kt_fuzz_model_batched()};
    kt_err err = {0};
    if (kt_http_start(&http_srv, &cfg, &err) != KT_OK) kt_fuzz_broken("http", "the server does not start: %s", err.msg);
    atexit(kt_fuzz_http_stop);
    int port = kt_http_port(http_srv);
    kt_test_resp r;
    kt_test_post_json(port, "/register", NULL, "{\"name\": \"Fuzz\", \"email\": \"fuzz@example.com\", \"password\": \"fuzz-pass-1\"}", &r);
    kt_test_resp_free(&r);
    const char form[] = "username=fuzz@example.com&password=fuzz-pass-1";
    kt_test_http(port, "POST", "/token", "Content-Type: application/x-www-form-urlencoded\r\n", form, sizeof form - 1, 0, &r);
    const cJSON *t = cJSON_GetObjectItem(r.json, "access_token");
    if (r.status != 200 || !cJSON_IsString(t)) kt_fuzz_broken("http", "cannot sign in: %d %s", r.status, r.body ? r.body : "");
    snprintf(http_token, sizeof http_token, "%s", t->valuestring);
    kt_test_resp_free(&r);
    state = 1;
    return port;
}

int kt_fuzz_http(const uint8_t *data, size_t len) {
    static const char *const paths[] = {"/register", "/token", "/predict", "/history", "/history/1", "/history/0",
                                        "/history/-3", "/history/99999999999999999999", "/history/x",
                                        "/diet/assessment", "/diet/recommendations", "/diet/lifestyle",
                                        "/diet/lifestyle/history", "/diet/food-log", "/diet/progress-analysis",
                                        "/health", "/metrics", "/", "/app.js", "/nowhere", "/history/1/x"};
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
    static const char *const types[] = {"application/json", "application/x-www-form-urlencoded",
                                        "multipart/form-data; boundary=kt-fuzz", "text/plain"};
    if (len < 2) return 0;
    int port = http_port();
    if (port < 0) return 0;
    const char *path = paths[data[0] % (sizeof paths / sizeof paths[0])];
    const char *method = methods[data[1] & 3];
    int auth = (data[1] >> 2) & 3; /* 0, 1: the valid token; 2: none; 3: a forged one */
    const char *type = types[(data[1] >> 4) & 3];
    data += 2, len -= 2;
    const uint8_t *nul = memchr(data, 0, len);
    size_t qlen = nul ? (size_t)(nul - data) : 0; /* no NUL: all of it is the body */
    const uint8_t *body = nul ? nul + 1 : data;
    size_t blen = nul ? len - qlen - 1 : len;
    /* the query, percent-encoded where a raw byte would end the request line */
    char *target = malloc(strlen(path) + 2 + 3 * qlen + 1);
    if (!target) return 0;
    size_t n = (size_t)sprintf(target, "%s", path);
    if (qlen) target[n++] = '?';
    for (size_t i = 0; i < qlen; i++) {
        uint8_t c = data[i];
        if (c <= 0x20 || c >= 0x7F || c == '#') n += (size_t)sprintf(target + n, "%%%02X", c);
        else target[n++] = (char)c;
    }
    target[n] = '\0';
    char headers[700];
    int hn = snprintf(headers, sizeof headers, "Content-Type: %s\r\n", type);
    if (auth < 2) snprintf(headers + hn, sizeof headers - (size_t)hn, "Authorization: Bearer %s\r\n", http_token);
    else if (auth == 3) snprintf(headers + hn, sizeof headers - (size_t)hn, "Authorization: Bearer eyJ.forged.x\r\n");
    kt_test_resp r;
    kt_test_http(port, method, target, headers, body, blen, 0, &r);
    /* No answer was seen 3 times in ~160k fuzz requests and never again when the same input ran alone
     * (a client-side transport error): ask once more, so only a server that is down or hung fails. */
    if (r.status == 0) {
        kt_test_resp_free(&r);
        fprintf(stderr, "fuzz http: no answer to %s %s, asking again\n", method, target);
        kt_test_http(port, method, target, headers, body, blen, 0, &r);
    }
    if (getenv("KT_FUZZ_VERBOSE"))
        fprintf(stderr, "fuzz http: %s %s -> %d %.120s\n", method, target, r.status, r.body ? r.body : "");
    if (r.status == 0) kt_fuzz_broken("http", "no answer to %s %s (%d bytes of body)", method, target, (int)blen);
    /* with a model loaded, any 5xx is a handler, model or database failure */
    if (r.status >= 500)
        kt_fuzz_broken("http", "%s %s (%s): %d %.300s", method, target, type, r.status, r.body ? r.body : "");
    int page = !strcmp(path, "/") || !strcmp(path, "/app.js");
    if (!page && r.status >= 400 && !cJSON_IsObject(r.json))
        kt_fuzz_broken("http", "%s %s: %d without a JSON error body: %.200s", method, target, r.status, r.body ? r.body : "");
    kt_test_resp_free(&r);
    free(target);
    return 0;
}
