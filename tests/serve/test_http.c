/* The HTTP API against a real server on 127.0.0.1 (a free port): accounts, history, diet endpoints,
 * every bad input of issue 6 item 5 answered with the right 4xx JSON error, CORS, metrics, 200
 * concurrent requests, and the server staying up with no row lost or half-written. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/fileio.h"
#include "base/timer.h"
#include "http_client.h"
#include "kt_test.h"
#include "serve/auth.h"
#include "serve/db.h"
#include "serve/http.h"
#include "serve/timeutil.h"

static char db_file[4096];

/* A config on 127.0.0.1, any free port, with its database <tmp>/<db_name> (also in db_file). */
static void test_cfg(kt_http_config *cfg, const char *db_name, int threads) {
    memset(cfg, 0, sizeof *cfg);
    snprintf(db_file, sizeof db_file, "%s/%s", kt_test_tmpdir(), db_name);
    cfg->host = "127.0.0.1";
    cfg->threads = threads;
    cfg->db_path = db_file;
}

static kt_http_server *start(const char *const *origins, int n_origins) {
    kt_http_config cfg;
    test_cfg(&cfg, "http.db", 8);
    cfg.cors_origins = origins;
    cfg.n_cors_origins = n_origins;
    cfg.max_upload_bytes = (size_t)20 << 20;
    kt_http_server *s = NULL;
    kt_err err = {0};
    if (kt_http_start(&s, &cfg, &err)) kt_test_fail(__FILE__, __LINE__, "server: %s", err.msg);
    return s;
}

static int alive(int port) {
    kt_test_resp r;
    int ok = kt_test_get(port, "/health", NULL, &r) == 0 && r.status == 200;
    kt_test_resp_free(&r);
    return ok;
}

/* Registers (unless taken) and signs in; writes the token. */
static int sign_up(int port, const char *name, const char *email, char *token, size_t cap) {
    char body[512];
    kt_test_resp r;
    snprintf(body, sizeof body, "{\"name\": \"%s\", \"email\": \"%s\", \"password\": \"correct-horse-9\"}", name, email);
    kt_test_post_json(port, "/register", NULL, body, &r);
    int ok = r.status == 200;
    kt_test_resp_free(&r);
    if (!ok) return 0;
    char form[512];
    snprintf(form, sizeof form, "username=%s&password=correct-horse-9", email);
    kt_test_http(port, "POST", "/token", "Content-Type: application/x-www-form-urlencoded\r\n", form, strlen(form), 0, &r);
    const cJSON *t = cJSON_GetObjectItem(r.json, "access_token");
    ok = r.status == 200 && cJSON_IsString(t);
    if (ok) snprintf(token, cap, "%s", t->valuestring);
    kt_test_resp_free(&r);
    return ok;
}

static int64_t user_id_of(int port, const char *token) {
    kt_test_resp r;
    kt_test_post_json(port, "/diet/lifestyle", token,
                      "{\"date\": \"2024-05-01\", \"stress_level\": 3, \"sleep_hours\": 7, \"exercise_minutes\": 10,"
                      " \"water_intake\": 1.5, \"notes\": null}",
                      &r);
    int64_t id = r.status == 200 ? (int64_t)cJSON_GetObjectItem(r.json, "user_id")->valuedouble : -1;
    kt_test_resp_free(&r);
    return id;
}

#define EXPECT(resp_call, code, what)                                                                              \
    do {                                                                                                           \
        kt_test_resp r_;                                                                                           \
        resp_call;                                                                                                 \
        KT_CHECK(r_.status == (code), "%s: status %d (want %d): %.300s", what, r_.status, code, r_.body ? r_.body : ""); \
        KT_CHECK(r_.status == 0 || cJSON_IsObject(r_.json) || cJSON_IsArray(r_.json), "%s: body is not JSON: %.200s", \
                 what, r_.body ? r_.body : "");                                                                    \
        kt_test_resp_free(&r_);                                                                                    \
    } while (0)

KT_TEST(test_http_register_token_history) {
    kt_http_server *s = start(NULL, 0);
    KT_REQUIRE(s);
    int port = kt_http_port(s);
    kt_test_resp r;
    kt_test_post_json(port, "/register", NULL, "{\"name\": \"Ana\", \"email\": \"ana@example.com\", \"password\": \"secret-123\"}", &r);
    KT_CHECK(r.status == 200, "%d %s", r.status, r.body);
    KT_CHECK(cJSON_GetObjectItem(r.json, "id") && !strcmp(cJSON_GetObjectItem(r.json, "email")->valuestring, "ana@example.com"));
    KT_CHECK(cJSON_IsString(cJSON_GetObjectItem(r.json, "created_at")) && !cJSON_GetObjectItem(r.json, "password"));
    KT_CHECK(!strstr(r.body, "argon2"), "the hash leaked: %s", r.body);
    kt_test_resp_free(&r);
    kt_test_post_json(port, "/register", NULL, "{\"name\": \"Ana 2\", \"email\": \"ANA@example.com\", \"password\": \"other-1234\"}", &r);
    KT_CHECK(r.status == 400 && !strcmp(kt_test_detail(&r), "Email already registered"), "%d %s", r.status, r.body);
    kt_test_resp_free(&r);
    const char *form_ct = "Content-Type: application/x-www-form-urlencoded\r\n";
    const char *bad_pw = "username=ana%40example.com&password=wrong-pass";
    kt_test_http(port, "POST", "/token", form_ct, bad_pw, strlen(bad_pw), 0, &r);
    char h[256];
    KT_CHECK(r.status == 401 && !strcmp(kt_test_detail(&r), "Invalid credentials"), "%d %s", r.status, r.body);
    KT_CHECK(kt_test_header(&r, "WWW-Authenticate", h, sizeof h) && !strcmp(h, "Bearer"));
    kt_test_resp_free(&r);
    const char *nobody = "username=nobody%40example.com&password=secret-123";
    kt_test_http(port, "POST", "/token", form_ct, nobody, strlen(nobody), 0, &r);
    KT_CHECK(r.status == 401 && !strcmp(kt_test_detail(&r), "Invalid credentials"));
    kt_test_resp_free(&r);
    const char *good = "username=ana%40example.com&password=secret-123";
    kt_test_http(port, "POST", "/token", form_ct, good, strlen(good), 0, &r);
    KT_REQUIRE(r.status == 200, "%d %s", r.status, r.body);
    KT_CHECK(!strcmp(cJSON_GetObjectItem(r.json, "token_type")->valuestring, "bearer"));
    char tok[KT_AUTH_TOKEN_MAX];
    snprintf(tok, sizeof tok, "%s", cJSON_GetObjectItem(r.json, "access_token")->valuestring);
    kt_test_resp_free(&r);
    kt_test_get(port, "/history", tok, &r);
    KT_CHECK(r.status == 200 && cJSON_IsArray(r.json) && cJSON_GetArraySize(r.json) == 0, "%d %s", r.status, r.body);
    kt_test_resp_free(&r);
    kt_test_get(port, "/history", NULL, &r);
    KT_CHECK(r.status == 401 && !strcmp(kt_test_detail(&r), "Not authenticated"));
    kt_test_resp_free(&r);
    kt_test_get(port, "/health", NULL, &r);
    KT_CHECK(r.status == 200 && !strcmp(cJSON_GetObjectItem(r.json, "status")->valuestring, "ok"));
    kt_test_resp_free(&r);
    EXPECT(kt_test_get(port, "/no/such/path", NULL, &r_), 404, "unknown path");
    EXPECT(kt_test_get(port, "/register", NULL, &r_), 405, "GET /register");
    EXPECT(kt_test_http(port, "DELETE", "/history", NULL, NULL, 0, 0, &r_), 405, "DELETE /history");
    kt_http_stop(s);
}

KT_TEST(test_http_wrong_expired_tampered_tokens) {
    kt_http_server *s = start(NULL, 0);
    KT_REQUIRE(s);
    int port = kt_http_port(s);
    char tok[KT_AUTH_TOKEN_MAX], bad[KT_AUTH_TOKEN_MAX + 8];
    KT_REQUIRE(sign_up(port, "Bo", "bo@example.com", tok, sizeof tok));
    int64_t uid = user_id_of(port, tok);
    KT_REQUIRE(uid > 0);
    kt_err err = {0};
    /* Expired: signed by the server's own key, expiry in the past. */
    KT_REQUIRE_OK(kt_auth_token_make(kt_http_token_key(s), uid, kt_time_now_us() / 1000000 - 5, bad, &err), &err);
    kt_test_resp r;
    kt_test_get(port, "/history", bad, &r);
    KT_CHECK(r.status == 401 && !strcmp(kt_test_detail(&r), "Token expired"), "%d %s", r.status, r.body);
    kt_test_resp_free(&r);
    /* A valid signature for a user that does not exist. */
    KT_REQUIRE_OK(kt_auth_token_make(kt_http_token_key(s), 987654, kt_time_now_us() / 1000000 + 600, bad, &err), &err);
    EXPECT(kt_test_get(port, "/history", bad, &r_), 401, "unknown user");
    /* Tampered: another user id with the original signature; a flipped signature character. */
    snprintf(bad, sizeof bad, "kt1.%lld%s", (long long)uid + 1, strchr(tok + 4, '.'));
    EXPECT(kt_test_get(port, "/history", bad, &r_), 401, "user id swapped");
    snprintf(bad, sizeof bad, "%s", tok);
    bad[strlen(bad) - 3] = bad[strlen(bad) - 3] == 'x' ? 'y' : 'x';
    EXPECT(kt_test_get(port, "/history", bad, &r_), 401, "signature flipped");
    EXPECT(kt_test_get(port, "/history", "not-a-token", &r_), 401, "garbage token");
    EXPECT(kt_test_http(port, "GET", "/history", "Authorization: Basic Ym86cHc=\r\n", NULL, 0, 0, &r_), 401, "basic auth");
    EXPECT(kt_test_http(port, "GET", "/history", "Authorization: Bearer\r\n", NULL, 0, 0, &r_), 401, "empty bearer");
    /* A wrong token is refused before a large body is read. */
    EXPECT(kt_test_http(port, "POST", "/predict", "Authorization: Bearer nope\r\nContent-Type: multipart/form-data; boundary=b\r\n",
                        "x", 50u << 20, 1, &r_),
           401, "predict with a bad token");
    kt_test_get(port, "/history", tok, &r);
    KT_CHECK(r.status == 200, "the real token stopped working");
    kt_test_resp_free(&r);
    kt_http_stop(s);
}

typedef struct {
    const char *path, *body, *field;
} invalid_case;

KT_TEST(test_http_validation_errors_422) {
    kt_http_server *s = start(NULL, 0);
    KT_REQUIRE(s);
    int port = kt_http_port(s);
    char tok[KT_AUTH_TOKEN_MAX];
    KT_REQUIRE(sign_up(port, "Cy", "cy@example.com", tok, sizeof tok));
    const char *ok_a = "\"gender\": \"male\", \"height\": 180, \"activity_level\": \"active\"";
    char buf[64][512];
    invalid_case cases[64];
    int n = 0;
#define CASE(p, f, ...)                                                                                            \
    do {                                                                                                           \
        snprintf(buf[n], sizeof buf[n], __VA_ARGS__);                                                              \
        cases[n] = (invalid_case){p, buf[n], f};                                                                   \
        n++;                                                                                                       \
    } while (0)
    CASE("/register", "", "{\"email\": \"x@example.com\", \"password\": \"12345678\"}");
    CASE("/register", "email", "{\"name\": \"X\", \"password\": \"12345678\"}");
    CASE("/register", "password", "{\"name\": \"X\", \"email\": \"x@example.com\"}");
    CASE("/register", "email", "{\"name\": \"X\", \"email\": \"not-an-email\", \"password\": \"12345678\"}");
    CASE("/register", "email", "{\"name\": \"X\", \"email\": \"a b@example.com\", \"password\": \"12345678\"}");
    CASE("/register", "password", "{\"name\": \"X\", \"email\": \"x@example.com\", \"password\": \"short\"}");
    CASE("/register", "name", "{\"name\": \"   \", \"email\": \"x@example.com\", \"password\": \"12345678\"}");
    CASE("/register", "name", "{\"name\": 42, \"email\": \"x@example.com\", \"password\": \"12345678\"}");
    CASE("/register", "body", "{\"name\": ");                          /* bad JSON */
    CASE("/register", "body", "[1, 2, 3]");                            /* not an object */
    CASE("/register", "body", "{\"name\": \"X\"} trailing");           /* garbage after the value */
    CASE("/diet/assessment", "age", "{\"age\": -1, \"weight\": 80, %s}", ok_a);
    CASE("/diet/assessment", "age", "{\"age\": 17, \"weight\": 80, %s}", ok_a);
    CASE("/diet/assessment", "age", "{\"age\": 121, \"weight\": 80, %s}", ok_a);
    CASE("/diet/assessment", "age", "{\"age\": 300, \"weight\": 80, %s}", ok_a);
    CASE("/diet/assessment", "age", "{\"age\": \"30\", \"weight\": 80, %s}", ok_a);
    CASE("/diet/assessment", "age", "{\"age\": 30.5, \"weight\": 80, %s}", ok_a);
    CASE("/diet/assessment", "age", "{\"weight\": 80, %s}", ok_a);
    CASE("/diet/assessment", "weight", "{\"age\": 30, \"weight\": 0, %s}", ok_a);
    CASE("/diet/assessment", "weight", "{\"age\": 30, \"weight\": -70, %s}", ok_a);
    CASE("/diet/assessment", "weight", "{\"age\": 30, \"weight\": 19.9, %s}", ok_a);
    CASE("/diet/assessment", "weight", "{\"age\": 30, \"weight\": 401, %s}", ok_a);
    CASE("/diet/assessment", "weight", "{\"age\": 30, \"weight\": 1e308, %s}", ok_a);
    CASE("/diet/assessment", "weight", "{\"age\": 30, \"weight\": \"heavy\", %s}", ok_a);
    CASE("/diet/assessment", "height", "{\"age\": 30, \"weight\": 80, \"gender\": \"male\", \"height\": 20, \"activity_level\": \"active\"}");
    CASE("/diet/assessment", "gender", "{\"age\": 30, \"weight\": 80, \"gender\": \"other\", \"height\": 170, \"activity_level\": \"active\"}");
    CASE("/diet/assessment", "activity_level", "{\"age\": 30, \"weight\": 80, \"gender\": \"male\", \"height\": 170, \"activity_level\": 3}");
    CASE("/diet/assessment", "dietary_restrictions", "{\"age\": 30, \"weight\": 80, %s, \"dietary_restrictions\": {\"a\": 1}}", ok_a);
    CASE("/diet/assessment", "medications", "{\"age\": 30, \"weight\": 80, %s, \"medications\": [null]}", ok_a);
    CASE("/diet/lifestyle", "stress_level", "{\"date\": \"2024-05-01\", \"stress_level\": 0, \"sleep_hours\": 7, \"exercise_minutes\": 0, \"water_intake\": 2}");
    CASE("/diet/lifestyle", "stress_level", "{\"date\": \"2024-05-01\", \"stress_level\": 11, \"sleep_hours\": 7, \"exercise_minutes\": 0, \"water_intake\": 2}");
    CASE("/diet/lifestyle", "sleep_hours", "{\"date\": \"2024-05-01\", \"stress_level\": 5, \"sleep_hours\": 25, \"exercise_minutes\": 0, \"water_intake\": 2}");
    CASE("/diet/lifestyle", "exercise_minutes", "{\"date\": \"2024-05-01\", \"stress_level\": 5, \"sleep_hours\": 7, \"exercise_minutes\": -1, \"water_intake\": 2}");
    CASE("/diet/lifestyle", "water_intake", "{\"date\": \"2024-05-01\", \"stress_level\": 5, \"sleep_hours\": 7, \"exercise_minutes\": 1, \"water_intake\": 21}");
    CASE("/diet/lifestyle", "date", "{\"date\": \"2024-13-01\", \"stress_level\": 5, \"sleep_hours\": 7, \"exercise_minutes\": 1, \"water_intake\": 2}");
    CASE("/diet/lifestyle", "date", "{\"stress_level\": 5, \"sleep_hours\": 7, \"exercise_minutes\": 1, \"water_intake\": 2}");
    CASE("/diet/lifestyle", "notes", "{\"date\": \"2024-05-01\", \"stress_level\": 5, \"sleep_hours\": 7, \"exercise_minutes\": 1, \"water_intake\": 2, \"notes\": 5}");
    CASE("/diet/food-log", "meal_type", "{\"date\": \"2024-05-01\", \"meal_type\": \"brunch\", \"foods\": [\"egg\"]}");
    CASE("/diet/food-log", "foods", "{\"date\": \"2024-05-01\", \"meal_type\": \"lunch\", \"foods\": []}");
    CASE("/diet/food-log", "foods", "{\"date\": \"2024-05-01\", \"meal_type\": \"lunch\", \"foods\": [1]}");
    CASE("/diet/food-log", "foods", "{\"date\": \"2024-05-01\", \"meal_type\": \"lunch\"}");
    CASE("/diet/food-log", "estimated_nutrients", "{\"date\": \"2024-05-01\", \"meal_type\": \"lunch\", \"foods\": [\"egg\"], \"estimated_nutrients\": {\"iron\": -1}}");
    CASE("/diet/food-log", "estimated_nutrients", "{\"date\": \"2024-05-01\", \"meal_type\": \"lunch\", \"foods\": [\"egg\"], \"estimated_nutrients\": [1]}");
#undef CASE
    cases[n++] = (invalid_case){"/diet/food-log", "", "body"}; /* empty body */
    for (int i = 0; i < n; i++) {
        kt_test_resp r;
        kt_test_post_json(port, cases[i].path, strcmp(cases[i].path, "/register") ? tok : NULL, cases[i].body, &r);
        const cJSON *d = cJSON_GetObjectItem(r.json, "detail");
        KT_CHECK(r.status == 422 && cJSON_IsArray(d), "%s %s: %d %s", cases[i].path, cases[i].body, r.status, r.body);
        if (cases[i].field[0]) {
            const cJSON *loc = cJSON_GetObjectItem(cJSON_GetArrayItem(d, 0), "loc");
            const char *want = strcmp(cases[i].field, "body") ? cases[i].field : NULL;
            const cJSON *last = cJSON_GetArrayItem(loc, cJSON_GetArraySize(loc) - 1);
            KT_CHECK(want ? cJSON_IsString(last) && !strcmp(last->valuestring, want) : cJSON_GetArraySize(loc) == 1,
                     "%s %s: loc %s", cases[i].path, cases[i].body, r.body);
        }
        kt_test_resp_free(&r);
    }
    /* Query parameters. */
    EXPECT(kt_test_get(port, "/history?limit=0", tok, &r_), 422, "limit=0");
    EXPECT(kt_test_get(port, "/history?limit=abc", tok, &r_), 422, "limit=abc");
    EXPECT(kt_test_get(port, "/diet/lifestyle/history?days=0", tok, &r_), 422, "days=0");
    EXPECT(kt_test_get(port, "/diet/lifestyle/history?days=99999", tok, &r_), 422, "days=99999");
    EXPECT(kt_test_get(port, "/diet/lifestyle/history?days=-3", tok, &r_), 422, "days=-3");
    /* /token with missing fields or a non-form body. */
    EXPECT(kt_test_http(port, "POST", "/token", "Content-Type: application/x-www-form-urlencoded\r\n", "username=a", 10, 0,
                        &r_),
           422, "token without password");
    EXPECT(kt_test_post_json(port, "/token", NULL, "{\"username\": \"a\", \"password\": \"b\"}", &r_), 422, "token as JSON");
    /* Bodies over the limit: 413 from the declared length, before reading. */
    char *big = malloc(70001);
    KT_REQUIRE(big);
    memset(big, ' ', 70000);
    big[0] = '{';
    big[69999] = '}';
    big[70000] = '\0';
    EXPECT(kt_test_post_json(port, "/diet/lifestyle", tok, big, &r_), 413, "70 KB JSON");
    free(big);
    /* Broken HTTP framing never reaches the application: libmicrohttpd itself answers 400. */
    kt_test_resp bad_len;
    kt_test_http(port, "POST", "/register", "Content-Length: 12abc\r\n", NULL, 0, 0, &bad_len);
    KT_CHECK(bad_len.status == 400, "bad Content-Length: %d", bad_len.status);
    kt_test_resp_free(&bad_len);
    /* Nothing half-written: none of these created a row. */
    kt_db *db;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_db_open(&db, db_file, &err), &err);
    int64_t c;
    KT_CHECK_OK(kt_db_count(db, "diet_assessments", &c, &err), &err);
    KT_CHECK(c == 0, "%lld assessments", (long long)c);
    KT_CHECK_OK(kt_db_count(db, "food_logs", &c, &err), &err);
    KT_CHECK(c == 0);
    KT_CHECK_OK(kt_db_count(db, "users", &c, &err), &err);
    KT_CHECK(c == 1);
    kt_db_close(db);
    KT_CHECK(alive(port));
    kt_http_stop(s);
}

static int multipart(char *out, size_t cap, const char *field, const char *filename, const void *data, size_t len) {
    int n = snprintf(out, cap,
                     "--kt-boundary-7\r\nContent-Disposition: form-data; name=\"%s\"%s%s%s\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n",
                     field, filename ? "; filename=\"" : "", filename ? filename : "", filename ? "\"" : "");
    if ((size_t)n + len + 64 > cap) return -1;
    memcpy(out + n, data, len);
    n += (int)len;
    n += snprintf(out + n, cap - (size_t)n, "\r\n--kt-boundary-7--\r\n");
    return n;
}

KT_TEST(test_http_predict_bad_uploads) {
    kt_http_server *s = start(NULL, 0);
    KT_REQUIRE(s);
    int port = kt_http_port(s);
    char tok[KT_AUTH_TOKEN_MAX], hdr[512];
    KT_REQUIRE(sign_up(port, "Di", "di@example.com", tok, sizeof tok));
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\nContent-Type: multipart/form-data; boundary=kt-boundary-7\r\n", tok);
    static char body[1 << 20];
    kt_test_resp r;
    /* Not an image. */
    int n = multipart(body, sizeof body, "file", "notes.txt", "just some text, not pixels", 26);
    kt_test_http(port, "POST", "/predict", hdr, body, (size_t)n, 0, &r);
    KT_CHECK(r.status == 400 && strstr(kt_test_detail(&r), "JPEG or PNG"), "%d %s", r.status, r.body);
    kt_test_resp_free(&r);
    /* 0 bytes. */
    n = multipart(body, sizeof body, "file", "empty.jpg", "", 0);
    kt_test_http(port, "POST", "/predict", hdr, body, (size_t)n, 0, &r);
    KT_CHECK(r.status == 400 && strstr(kt_test_detail(&r), "empty"), "%d %s", r.status, r.body);
    kt_test_resp_free(&r);
    /* 50 MB: refused from the declared length (Expect: 100-continue, as curl sends), body never read. */
    EXPECT(kt_test_http(port, "POST", "/predict", hdr, "", 50u << 20, 1, &r_), 413, "50 MB upload");
    /* 50 MB really sent without Expect, chunked (no length known up front): read, discarded, 413. */
    {
        char h2[600];
        snprintf(h2, sizeof h2, "%sTransfer-Encoding: chunked\r\n", hdr);
        size_t total = 50u << 20, chunk = 1u << 20;
        char *raw = malloc(total + 64 * 60 + 1024);
        KT_REQUIRE(raw);
        int k = snprintf(raw, 1024, "POST /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n", h2);
        for (size_t sent = 0; sent < total; sent += chunk) {
            k += sprintf(raw + k, "%zx\r\n", chunk);
            memset(raw + k, 'A', chunk);
            k += (int)chunk;
            k += sprintf(raw + k, "\r\n");
        }
        k += sprintf(raw + k, "0\r\n\r\n");
        kt_test_http_raw(port, raw, (size_t)k, &r);
        KT_CHECK(r.status == 413 && cJSON_IsObject(r.json), "chunked 50 MB: %d %s", r.status, r.body);
        kt_test_resp_free(&r);
        free(raw);
    }
    /* Malformed multipart: cut in the middle of the part headers; a missing boundary parameter. */
    const char *cut = "--kt-boundary-7\r\nContent-Dispos";
    EXPECT(kt_test_http(port, "POST", "/predict", hdr, cut, strlen(cut), 0, &r_), 400, "truncated multipart");
    n = multipart(body, sizeof body, "file", "a.jpg", "\xff\xd8\xff\xe0", 4);
    char nob[512];
    snprintf(nob, sizeof nob, "Authorization: Bearer %s\r\nContent-Type: multipart/form-data\r\n", tok);
    EXPECT(kt_test_http(port, "POST", "/predict", nob, body, (size_t)n, 0, &r_), 400, "multipart without boundary");
    body[n - 6] = 'X'; /* damage the closing boundary */
    EXPECT(kt_test_http(port, "POST", "/predict", hdr, body, (size_t)n - 4, 0, &r_), 400, "unterminated multipart");
    /* No file field; a file sent as a plain form value; a JSON body. */
    n = multipart(body, sizeof body, "picture", "a.jpg", "\xff\xd8\xff", 3);
    kt_test_http(port, "POST", "/predict", hdr, body, (size_t)n, 0, &r);
    KT_CHECK(r.status == 422 && !strcmp(kt_test_detail(&r), "file"), "%d %s", r.status, r.body);
    kt_test_resp_free(&r);
    snprintf(nob, sizeof nob, "Authorization: Bearer %s\r\nContent-Type: application/x-www-form-urlencoded\r\n", tok);
    EXPECT(kt_test_http(port, "POST", "/predict", nob, "file=abc", 8, 0, &r_), 422, "urlencoded file");
    snprintf(nob, sizeof nob, "Authorization: Bearer %s\r\nContent-Type: application/json\r\n", tok);
    EXPECT(kt_test_http(port, "POST", "/predict", nob, "{\"file\": 1}", 11, 0, &r_), 422, "JSON body");
    /* A client file name with ../ is never used as a path: the request is judged on its bytes only. */
    n = multipart(body, sizeof body, "file", "../../../../tmp/kt_escape.txt", "text", 4);
    EXPECT(kt_test_http(port, "POST", "/predict", hdr, body, (size_t)n, 0, &r_), 400, "traversal name, not an image");
    KT_CHECK(!kt_file_exists("/tmp/kt_escape.txt"));
    /* Raw garbage and half requests on the socket. */
    kt_test_http_raw(port, "GARBAGE\r\n\r\n", 11, &r);
    KT_CHECK(r.status == 0 || (r.status >= 400 && r.status < 500), "garbage answered %d", r.status);
    kt_test_resp_free(&r);
    kt_test_http_hangup(port, "POST /register HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"na", 52);
    KT_CHECK(alive(port), "the server died");
    /* Nothing was stored by any of these. */
    kt_db *db;
    kt_err err = {0};
    int64_t c = -1;
    KT_REQUIRE_OK(kt_db_open(&db, db_file, &err), &err);
    KT_CHECK_OK(kt_db_count(db, "predictions", &c, &err), &err);
    KT_CHECK(c == 0);
    kt_db_close(db);
    kt_http_stop(s);
}

static const char *const EVIL = "Robert'); DROP TABLE users;-- \\\" OR '1'='1' %_ /* */ ; DELETE FROM predictions";

KT_TEST(test_http_sql_metacharacters_every_field) {
    kt_http_server *s = start(NULL, 0);
    KT_REQUIRE(s);
    int port = kt_http_port(s);
    char body[4096], tok[KT_AUTH_TOKEN_MAX];
    /* name and email (an email may legally hold quotes and semicolons in the local part). */
    snprintf(body, sizeof body, "{\"name\": \"%s\", \"email\": \"o'brien;--@example.com\", \"password\": \"p'; DROP--x\"}", EVIL);
    kt_test_resp r;
    kt_test_post_json(port, "/register", NULL, body, &r);
    KT_REQUIRE(r.status == 200, "%d %s", r.status, r.body);
    const char *want_name = "Robert'); DROP TABLE users;-- \" OR '1'='1' %_ /* */ ; DELETE FROM predictions";
    KT_CHECK(!strcmp(cJSON_GetObjectItem(r.json, "name")->valuestring, want_name));
    kt_test_resp_free(&r);
    const char *form = "username=o%27brien%3B--%40example.com&password=p%27%3B+DROP--x";
    kt_test_http(port, "POST", "/token", "Content-Type: application/x-www-form-urlencoded\r\n", form, strlen(form), 0, &r);
    KT_REQUIRE(r.status == 200, "%d %s", r.status, r.body);
    snprintf(tok, sizeof tok, "%s", cJSON_GetObjectItem(r.json, "access_token")->valuestring);
    kt_test_resp_free(&r);
    const char *sql_user = "username=%27+OR+1%3D1+--&password=%27+OR+1%3D1+--";
    EXPECT(kt_test_http(port, "POST", "/token", "Content-Type: application/x-www-form-urlencoded\r\n", sql_user,
                        strlen(sql_user), 0, &r_),
           401, "SQL in the login");
    snprintf(body, sizeof body,
             "{\"age\": 40, \"gender\": \"female\", \"weight\": 60, \"height\": 160, \"activity_level\": \"sedentary\","
             " \"dietary_restrictions\": [\"%s\"], \"current_diet_pattern\": \"%s\", \"health_conditions\": [\"%s\"],"
             " \"medications\": [\"%s\"]}",
             "x' OR 1=1", EVIL, EVIL, EVIL);
    kt_test_post_json(port, "/diet/assessment", tok, body, &r);
    KT_CHECK(r.status == 200, "%d %s", r.status, r.body);
    KT_CHECK(strstr(cJSON_GetObjectItem(r.json, "current_diet_pattern")->valuestring, "DROP TABLE users"));
    KT_CHECK(!strcmp(cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "dietary_restrictions"), 0)->valuestring, "x' OR 1=1"));
    kt_test_resp_free(&r);
    snprintf(body, sizeof body,
             "{\"date\": \"2024-05-01\", \"stress_level\": 4, \"sleep_hours\": 6.5, \"exercise_minutes\": 20,"
             " \"water_intake\": 2, \"notes\": \"%s\"}",
             EVIL);
    kt_test_post_json(port, "/diet/lifestyle", tok, body, &r);
    KT_CHECK(r.status == 200 && strstr(cJSON_GetObjectItem(r.json, "notes")->valuestring, "OR '1'='1'"), "%d %s",
             r.status, r.body);
    kt_test_resp_free(&r);
    snprintf(body, sizeof body,
             "{\"date\": \"2024-05-01\", \"meal_type\": \"dinner\", \"foods\": [\"%s\"],"
             " \"estimated_nutrients\": {\"iron'; DROP TABLE food_logs;--\": 3}}",
             EVIL);
    kt_test_post_json(port, "/diet/food-log", tok, body, &r);
    KT_CHECK(r.status == 200, "%d %s", r.status, r.body);
    KT_CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "estimated_nutrients"), "iron'; DROP TABLE food_logs;--"));
    kt_test_resp_free(&r);
    /* The recommendation is built from the stored assessment; the odd restriction is reported, not run. */
    kt_test_get(port, "/diet/recommendations", tok, &r);
    KT_CHECK(r.status == 200, "%d %.300s", r.status, r.body);
    KT_CHECK(strstr(r.body, "x' OR 1=1"), "the unknown restriction is not named in the warnings");
    kt_test_resp_free(&r);
    kt_test_get(port, "/diet/lifestyle/history?days=36500", tok, &r);
    KT_CHECK(r.status == 422);
    kt_test_resp_free(&r);
    kt_test_get(port, "/history?user_id=1%20OR%201=1", tok, &r);
    KT_CHECK(r.status == 200 && cJSON_GetArraySize(r.json) == 0);
    kt_test_resp_free(&r);
    kt_db *db;
    kt_err err = {0};
    int64_t c;
    KT_REQUIRE_OK(kt_db_open(&db, db_file, &err), &err);
    const char *tables[] = {"users", "diet_assessments", "lifestyle_entries", "food_logs", "diet_recommendations"};
    for (int i = 0; i < 5; i++) {
        KT_CHECK_OK(kt_db_count(db, tables[i], &c, &err), &err);
        KT_CHECK(c == 1, "%s has %lld rows", tables[i], (long long)c);
    }
    kt_db_close(db);
    kt_http_stop(s);
}

/* Seeds a prediction row straight into the store (the model itself is exercised in test_serve_predict.sh). */
static int64_t seed_prediction(int64_t uid, const char *stage, int64_t when_us) {
    kt_db *db;
    kt_err err = {0};
    cJSON *row = NULL;
    int64_t id = -1;
    if (kt_db_open(&db, db_file, &err) == KT_OK &&
        kt_db_prediction_add(db, uid, NULL, stage, 0.8, NULL, when_us, &row, &err) == KT_OK)
        id = (int64_t)cJSON_GetObjectItem(row, "id")->valuedouble;
    else kt_test_fail(__FILE__, __LINE__, "seed: %s", err.msg);
    cJSON_Delete(row);
    kt_db_close(db);
    return id;
}

KT_TEST(test_http_other_users_ids) {
    kt_http_server *s = start(NULL, 0);
    KT_REQUIRE(s);
    int port = kt_http_port(s);
    char ta[KT_AUTH_TOKEN_MAX], tb[KT_AUTH_TOKEN_MAX], path[64];
    KT_REQUIRE(sign_up(port, "Ed", "ed@example.com", ta, sizeof ta));
    KT_REQUIRE(sign_up(port, "Flo", "flo@example.com", tb, sizeof tb));
    int64_t a = user_id_of(port, ta), b = user_id_of(port, tb);
    KT_REQUIRE(a > 0 && b > 0 && a != b);
    int64_t pa = seed_prediction(a, "LEVEL_3", kt_time_now_us());
    snprintf(path, sizeof path, "/history/%lld", (long long)pa);
    EXPECT(kt_test_get(port, path, ta, &r_), 200, "own prediction");
    kt_test_resp r;
    kt_test_get(port, path, tb, &r);
    KT_CHECK(r.status == 404 && !strcmp(kt_test_detail(&r), "Prediction not found"), "%d %s", r.status, r.body);
    kt_test_resp_free(&r);
    EXPECT(kt_test_get(port, "/history/999999", ta, &r_), 404, "unknown id");
    EXPECT(kt_test_get(port, "/history/abc", ta, &r_), 404, "non-numeric id");
    EXPECT(kt_test_get(port, "/history/0", ta, &r_), 404, "id 0");
    kt_test_get(port, "/history", tb, &r);
    KT_CHECK(r.status == 200 && cJSON_GetArraySize(r.json) == 0, "B sees A's history: %s", r.body);
    kt_test_resp_free(&r);
    /* A user_id in the body is ignored: rows belong to the token's user. */
    char body[256];
    snprintf(body, sizeof body,
             "{\"user_id\": %lld, \"date\": \"2024-05-02\", \"stress_level\": 9, \"sleep_hours\": 4, "
             "\"exercise_minutes\": 0, \"water_intake\": 0.5, \"notes\": \"B writing as A\"}",
             (long long)a);
    kt_test_post_json(port, "/diet/lifestyle", tb, body, &r);
    KT_CHECK(r.status == 200 && (int64_t)cJSON_GetObjectItem(r.json, "user_id")->valuedouble == b);
    kt_test_resp_free(&r);
    kt_test_get(port, "/diet/lifestyle/history?days=3650", ta, &r);
    KT_CHECK(r.status == 200 && cJSON_GetArraySize(r.json) == 1 && !strstr(r.body, "B writing as A"), "%s", r.body);
    kt_test_resp_free(&r);
    kt_http_stop(s);
}

KT_TEST(test_http_diet_flow) {
    kt_http_server *s = start(NULL, 0);
    KT_REQUIRE(s);
    int port = kt_http_port(s);
    char tok[KT_AUTH_TOKEN_MAX];
    KT_REQUIRE(sign_up(port, "Gia", "gia@example.com", tok, sizeof tok));
    kt_test_resp r;
    kt_test_get(port, "/diet/recommendations", tok, &r);
    KT_CHECK(r.status == 400 && !strcmp(kt_test_detail(&r), "Please complete a diet assessment first"), "%d %s", r.status, r.body);
    kt_test_resp_free(&r);
    int64_t uid = user_id_of(port, tok);
    int64_t now = kt_time_now_us();
    seed_prediction(uid, "LEVEL_4", now - 90 * KT_US_PER_DAY);
    seed_prediction(uid, "LEVEL_5", now);
    char *a_json = NULL;
    size_t alen;
    char path[4096];
    kt_err err = {0};
    snprintf(path, sizeof path, "%s/tests/serve/fixtures/example_a_assessment.json", kt_test_root());
    KT_REQUIRE_OK(kt_file_read(path, &a_json, &alen, &err), &err);
    kt_test_post_json(port, "/diet/assessment", tok, a_json, &r);
    KT_CHECK(r.status == 200 && cJSON_GetObjectItem(r.json, "assessment_date"), "%d %s", r.status, r.body);
    kt_test_resp_free(&r);
    kt_test_get(port, "/diet/recommendations", tok, &r);
    KT_REQUIRE(r.status == 200, "%d %.400s", r.status, r.body);
    const cJSON *rn = cJSON_GetObjectItem(r.json, "recommended_nutrients");
    const cJSON *iron = cJSON_GetObjectItem(rn, "iron");
    KT_CHECK_NEAR(cJSON_GetObjectItem(iron, "daily_target")->valuedouble, 58.32, 1e-9);
    KT_CHECK_NEAR(cJSON_GetObjectItem(iron, "recommended_amount")->valuedouble, 45, 0);
    KT_CHECK(cJSON_IsTrue(cJSON_GetObjectItem(iron, "capped")));
    KT_CHECK(!strcmp(cJSON_GetObjectItem(r.json, "hair_stage_at_time")->valuestring, "LEVEL_5"));
    KT_CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "is_active")));
    KT_CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "meal_plan")) == 7);
    KT_CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "supplements")) == 4);
    KT_CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "hair_analysis"), "trend")->valuestring, "worsening"));
    KT_CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "warnings")) == 1);
    KT_CHECK_NEAR(cJSON_GetObjectItem(r.json, "confidence_score")->valuedouble, 0.857, 1e-9);
    double first_id = cJSON_GetObjectItem(r.json, "id")->valuedouble;
    cJSON *fresh = cJSON_Duplicate(r.json, 1);
    kt_test_resp_free(&r);
    /* Fetched again within 30 days: the same active plan, in the same shape. */
    kt_test_get(port, "/diet/recommendations", tok, &r);
    KT_CHECK(r.status == 200 && cJSON_GetObjectItem(r.json, "id")->valuedouble == first_id);
    KT_CHECK(cJSON_Compare(fresh, r.json, 1), "the cached plan differs from the fresh one");
    cJSON_Delete(fresh);
    kt_test_resp_free(&r);
    /* A new assessment retires it: the next plan is new and male (zinc base 11). */
    const char *male = "{\"age\": 35, \"gender\": \"male\", \"weight\": 75, \"height\": 176, \"activity_level\": \"moderate\","
                       " \"dietary_restrictions\": [\"vegan\", \"gluten-free\"]}";
    kt_test_post_json(port, "/diet/assessment", tok, male, &r);
    kt_test_resp_free(&r);
    kt_test_get(port, "/diet/recommendations", tok, &r);
    KT_CHECK(r.status == 200 && cJSON_GetObjectItem(r.json, "id")->valuedouble != first_id);
    const cJSON *zinc = cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "recommended_nutrients"), "zinc");
    KT_CHECK_NEAR(cJSON_GetObjectItem(zinc, "base_need")->valuedouble, 11, 0);
    kt_test_resp_free(&r);
    /* Lifestyle, food log, progress. */
    for (int i = 0; i < 3; i++) {
        char b[256];
        snprintf(b, sizeof b,
                 "{\"date\": \"%s\", \"stress_level\": %d, \"sleep_hours\": %d, \"exercise_minutes\": 30,"
                 " \"water_intake\": 2, \"notes\": null}",
                 i == 2 ? "2001-01-01" : "2099-01-01", 4 + 2 * i, 6 + i);
        kt_test_post_json(port, "/diet/lifestyle", tok, b, &r);
        KT_CHECK(r.status == 200, "%d %s", r.status, r.body);
        kt_test_resp_free(&r);
    }
    kt_test_get(port, "/diet/lifestyle/history?days=30", tok, &r);
    KT_CHECK(r.status == 200 && cJSON_GetArraySize(r.json) == 2, "%s", r.body);
    kt_test_resp_free(&r);
    kt_test_post_json(port, "/diet/food-log", tok,
                      "{\"date\": \"2024-05-01\", \"meal_type\": \"snack\", \"foods\": [\"walnuts\"],"
                      " \"estimated_nutrients\": {\"omega3\": 2.5}}",
                      &r);
    KT_CHECK(r.status == 200 && cJSON_GetObjectItem(r.json, "logged_at") &&
             !strcmp(cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "foods"), 0)->valuestring, "walnuts"));
    kt_test_resp_free(&r);
    kt_test_get(port, "/diet/progress-analysis", tok, &r);
    KT_CHECK(r.status == 200, "%d %s", r.status, r.body);
    const cJSON *lc = cJSON_GetObjectItem(r.json, "lifestyle_correlations");
    KT_CHECK_NEAR(cJSON_GetObjectItem(lc, "avg_stress_level")->valuedouble, 5, 1e-9);
    KT_CHECK_NEAR(cJSON_GetObjectItem(lc, "avg_sleep_hours")->valuedouble, 6.5, 1e-9);
    KT_CHECK_NEAR(cJSON_GetObjectItem(lc, "lifestyle_consistency")->valuedouble, 0.067, 1e-9);
    KT_CHECK(!strcmp(cJSON_GetObjectItem(r.json, "recommendations_status")->valuestring, "needs_adjustment"));
    kt_test_resp_free(&r);
    /* A stored stage with no severity (a model with other classes): a clear 400, no crash. */
    seed_prediction(uid, "Onychomycosis", kt_time_now_us() + 1000);
    kt_test_get(port, "/diet/progress-analysis", tok, &r);
    KT_CHECK(r.status == 400 && strstr(kt_test_detail(&r), "unknown hair-loss stage 'Onychomycosis'"), "%d %s", r.status, r.body);
    kt_test_resp_free(&r);
    free(a_json);
    KT_CHECK(alive(port));
    kt_http_stop(s);
}

KT_TEST(test_http_cors_preflight) {
    const char *origins[] = {"http://localhost:3000"};
    kt_http_server *s = start(origins, 1);
    KT_REQUIRE(s);
    int port = kt_http_port(s);
    kt_test_resp r;
    char h[256];
    kt_test_http(port, "OPTIONS", "/diet/recommendations",
                 "Origin: http://localhost:3000\r\nAccess-Control-Request-Method: GET\r\n"
                 "Access-Control-Request-Headers: authorization, content-type\r\n",
                 NULL, 0, 0, &r);
    KT_CHECK(r.status == 200, "%d %s", r.status, r.body);
    KT_CHECK(kt_test_header(&r, "Access-Control-Allow-Origin", h, sizeof h) && !strcmp(h, "http://localhost:3000"));
    KT_CHECK(kt_test_header(&r, "Access-Control-Allow-Credentials", h, sizeof h) && !strcmp(h, "true"));
    KT_CHECK(kt_test_header(&r, "Access-Control-Allow-Headers", h, sizeof h) && strstr(h, "authorization"));
    KT_CHECK(kt_test_header(&r, "Access-Control-Allow-Methods", h, sizeof h) && strstr(h, "POST"));
    kt_test_resp_free(&r);
    kt_test_http(port, "OPTIONS", "/history", "Origin: http://evil.example\r\nAccess-Control-Request-Method: GET\r\n", NULL,
                 0, 0, &r);
    KT_CHECK(r.status == 400 && !kt_test_header(&r, "Access-Control-Allow-Origin", h, sizeof h), "%d", r.status);
    kt_test_resp_free(&r);
    /* Header injection through the echoed request headers is refused. */
    kt_test_http(port, "OPTIONS", "/history",
                 "Origin: http://localhost:3000\r\nAccess-Control-Request-Method: GET\r\n"
                 "Access-Control-Request-Headers: x;y=\"z\"\r\n",
                 NULL, 0, 0, &r);
    KT_CHECK(r.status == 200 && kt_test_header(&r, "Access-Control-Allow-Headers", h, sizeof h) &&
             !strcmp(h, "Authorization, Content-Type"), "%s", h);
    kt_test_resp_free(&r);
    kt_test_http(port, "GET", "/health", "Origin: http://localhost:3000\r\n", NULL, 0, 0, &r);
    KT_CHECK(kt_test_header(&r, "Access-Control-Allow-Origin", h, sizeof h) && !strcmp(h, "http://localhost:3000"));
    kt_test_resp_free(&r);
    kt_test_http(port, "GET", "/health", "Origin: http://evil.example\r\n", NULL, 0, 0, &r);
    KT_CHECK(r.status == 200 && !kt_test_header(&r, "Access-Control-Allow-Origin", h, sizeof h));
    kt_test_resp_free(&r);
    kt_http_stop(s);
    /* No origins configured: nothing is allowed, in particular not '*'. */
    s = start(NULL, 0);
    KT_REQUIRE(s);
    port = kt_http_port(s);
    kt_test_http(port, "OPTIONS", "/history", "Origin: http://localhost:3000\r\nAccess-Control-Request-Method: GET\r\n",
                 NULL, 0, 0, &r);
    KT_CHECK(r.status == 400 && !kt_test_header(&r, "Access-Control-Allow-Origin", h, sizeof h));
    kt_test_resp_free(&r);
    kt_http_stop(s);
}

typedef struct {
    int port, kind, status;
    const char *token;
} hammer_arg;

static void *hammer(void *p) {
    hammer_arg *h = p;
    kt_test_resp r;
    char body[256];
    switch (h->kind % 4) {
    case 0: kt_test_get(h->port, "/history", h->token, &r); break;
    case 1:
        snprintf(body, sizeof body,
                 "{\"date\": \"2024-06-%02d\", \"stress_level\": %d, \"sleep_hours\": 7, \"exercise_minutes\": %d,"
                 " \"water_intake\": 1.5, \"notes\": \"load %d\"}",
                 1 + h->kind % 28, 1 + h->kind % 10, h->kind, h->kind);
        kt_test_post_json(h->port, "/diet/lifestyle", h->token, body, &r);
        break;
    case 2: kt_test_post_json(h->port, "/diet/lifestyle", h->token, "{\"date\": ", &r); break;
    default: kt_test_get(h->port, "/history", "kt1.1.1.forged", &r); break;
    }
    h->status = r.status;
    kt_test_resp_free(&r);
    return NULL;
}

KT_TEST(test_http_200_concurrent_requests) {
    kt_http_server *s = start(NULL, 0);
    KT_REQUIRE(s);
    int port = kt_http_port(s);
    char tok[KT_AUTH_TOKEN_MAX];
    KT_REQUIRE(sign_up(port, "Hal", "hal@example.com", tok, sizeof tok));
    enum { N = 200 };
    pthread_t th[N];
    hammer_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (hammer_arg){port, i, 0, tok};
        KT_REQUIRE(pthread_create(&th[i], NULL, hammer, &args[i]) == 0);
    }
    int writes_ok = 0, wrong = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        int want = (int[]){200, 200, 422, 401}[i % 4];
        if (args[i].status != want) {
            wrong++;
            kt_test_fail(__FILE__, __LINE__, "request %d (kind %d): status %d, want %d", i, i % 4, args[i].status, want);
        }
        writes_ok += i % 4 == 1 && args[i].status == 200;
    }
    KT_CHECK(wrong == 0);
    /* Every acknowledged write is stored once, whole. */
    kt_test_resp r;
    kt_test_get(port, "/diet/lifestyle/history?days=3650", tok, &r);
    KT_CHECK(r.status == 200 && cJSON_GetArraySize(r.json) == writes_ok, "%d rows for %d writes",
             cJSON_GetArraySize(r.json), writes_ok);
    const cJSON *it;
    int whole = 0;
    cJSON_ArrayForEach(it, r.json) {
        const cJSON *notes = cJSON_GetObjectItem(it, "notes");
        whole += cJSON_IsString(notes) && !strncmp(notes->valuestring, "load ", 5) &&
                 cJSON_GetObjectItem(it, "exercise_minutes")->valueint == atoi(notes->valuestring + 5);
    }
    KT_CHECK(whole == writes_ok, "%d of %d rows intact", whole, writes_ok);
    kt_test_resp_free(&r);
    KT_CHECK(alive(port));
    /* The metrics saw them. */
    kt_test_get(port, "/metrics", NULL, &r);
    KT_CHECK(r.status == 200);
    char want[128];
    snprintf(want, sizeof want, "keratrack_requests_total{endpoint=\"/diet/lifestyle\",status=\"422\"} %d", N / 4);
    KT_CHECK(strstr(r.body, want), "metrics lack '%s':\n%s", want, r.body);
    KT_CHECK(strstr(r.body, "keratrack_request_seconds{endpoint=\"/history\",quantile=\"0.99\"}"));
    KT_CHECK(strstr(r.body, "keratrack_inference_seconds_count 0"));
    kt_test_resp_free(&r);
    kt_http_stop(s);
}

/* SIGTERM (kt_http_stop) with requests in flight: a request whose handler ran gets its answer (no
 * account is made that its client was not told of), and the stop does not hang. Before,
 * MHD_stop_daemon closed every connection at once: a load run lost 6 answers to stored
 * predictions this way. Registrations are the slow request here (password hashing). */
/* Each client signs up accounts one after another until the server stops answering, so requests
 * are in flight whenever the stop comes. */
enum { SIGNUP_MAX = 400 };
typedef struct {
    int port, i, n;
    int status[SIGNUP_MAX];
} signup_arg;

static void *signup(void *p) {
    signup_arg *a = p;
    for (a->n = 0; a->n < SIGNUP_MAX;) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"name\": \"S%d\", \"email\": \"stop%d.%d@example.com\", \"password\": \"correct-horse-9\"}", a->i,
                 a->i, a->n);
        kt_test_resp r;
        kt_test_post_json(a->port, "/register", NULL, body, &r);
        a->status[a->n++] = r.status;
        kt_test_resp_free(&r);
        if (r.status != 200) break; /* stopping (503) or gone (0) */
    }
    return NULL;
}

KT_TEST(test_http_stop_delivers_answers_in_flight) {
    kt_http_server *s = start(NULL, 0);
    KT_REQUIRE(s);
    int port = kt_http_port(s);
    enum { N = 6 };
    pthread_t th[N];
    static signup_arg a[N];
    for (int i = 0; i < N; i++) {
        a[i] = (signup_arg){.port = port, .i = i};
        KT_REQUIRE(pthread_create(&th[i], NULL, signup, &a[i]) == 0);
    }
    int running = 0;
    for (int t = 0; t < 20000 && (running = kt_http_running(s)) < 1; t++) nanosleep(&(struct timespec){0, 1000000}, NULL);
    KT_CHECK(running >= 1, "no registration was running after 20 s");
    double t0 = kt_now();
    kt_http_stop(s);
    double took = kt_now() - t0;
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    kt_db *db;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_db_open(&db, db_file, &err), &err);
    int answered = 0, bad = 0;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < a[i].n; k++) {
            char email[64];
            snprintf(email, sizeof email, "stop%d.%d@example.com", i, k);
            kt_db_user u;
            kt_status st = kt_db_user_by_email(db, email, &u, &err);
            int code = a[i].status[k];
            /* stored <=> told: 200 with the account; 503 (stopping) or a closed connection without */
            if ((st != KT_OK && st != KT_ERR_NOTFOUND) || (st == KT_OK) != (code == 200) ||
                (code != 200 && code != 503 && code != 0))
                if (bad++ < 5) KT_CHECK(0, "%s: stored %d (status %d), client saw %d", email, st == KT_OK, (int)st, code);
            answered += code == 200;
        }
    kt_db_close(db);
    KT_CHECK(bad == 0, "%d accounts where the store and the answer disagree", bad);
    KT_CHECK(answered >= running, "%d answers delivered, %d requests were running at the stop", answered, running);
    KT_CHECK(took < KT_HTTP_STOP_GRACE_S, "the stop took %.1f s", took);
}

/* --quiet turns off the access log only: a failing database (here a table dropped under the
 * server, as a full disk would fail its writes) must still reach the log, with a 500 to the client. */
typedef struct {
    pthread_mutex_t mu;
    int access, errors;
} log_count;

static void count_line(void *ctx, const char *line) {
    log_count *c = ctx;
    pthread_mutex_lock(&c->mu);
    if (!strncmp(line, "error:", 6)) c->errors++;
    else if (strstr(line, " ms")) c->access++;
    pthread_mutex_unlock(&c->mu);
}

KT_TEST(test_http_quiet_still_logs_errors) {
    kt_http_config cfg;
    test_cfg(&cfg, "quiet.db", 2);
    log_count lc = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
    cfg.log = count_line;
    cfg.log_ctx = &lc;
    cfg.no_access_log = 1;
    kt_http_server *s = NULL;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_http_start(&s, &cfg, &err), &err);
    int port = kt_http_port(s);
    char tok[KT_AUTH_TOKEN_MAX];
    KT_REQUIRE(sign_up(port, "Quinn", "quinn@example.com", tok, sizeof tok));
    sqlite3 *raw;
    KT_REQUIRE(sqlite3_open(db_file, &raw) == SQLITE_OK);
    KT_REQUIRE(sqlite3_exec(raw, "DROP TABLE lifestyle_entries", NULL, NULL, NULL) == SQLITE_OK, "%s", sqlite3_errmsg(raw));
    sqlite3_close(raw);
    kt_test_resp r;
    kt_test_post_json(port, "/diet/lifestyle", tok,
                      "{\"date\": \"2024-05-01\", \"stress_level\": 3, \"sleep_hours\": 7, \"exercise_minutes\": 10,"
                      " \"water_intake\": 1.5, \"notes\": null}",
                      &r);
    KT_CHECK(r.status == 500, "status %d: %s", r.status, r.body ? r.body : "");
    kt_test_resp_free(&r);
    kt_http_stop(s);
    KT_CHECK(lc.errors >= 1, "the database error was not logged");
    KT_CHECK(lc.access == 0, "%d access lines with the access log off", lc.access);
}

/* A server killed between keeping an upload and inserting its prediction row left a file no row
 * names (no user can see or delete it). Starting with --keep-uploads removes such files and dead
 * writers' temporaries, and keeps every upload a row names and every file not of the server's. */
KT_TEST(test_http_start_removes_orphan_uploads) {
    char keep[4200], kept[4300], orphan[4300], other[4300], stale[4300];
    kt_http_config cfg;
    test_cfg(&cfg, "orphans.db", 2);
    snprintf(keep, sizeof keep, "%s/uploads", kt_test_tmpdir());
    snprintf(kept, sizeof kept, "%s/u1-00112233445566778899aabb.png", keep);
    snprintf(orphan, sizeof orphan, "%s/u1-ffeeddccbbaa998877665544.jpg", keep);
    snprintf(other, sizeof other, "%s/notes.txt", keep);
    long dead = 4194303;
    while (dead > 1000 && !kt_process_gone(dead)) dead--;
    snprintf(stale, sizeof stale, "%s/u1-0123456789abcdef01234567.jpg.tmp.%ld", keep, dead);
    kt_err err = {0};
    KT_REQUIRE_OK(kt_mkdirs(keep, &err), &err);
    const char *files[] = {kept, orphan, other, stale};
    for (int i = 0; i < 4; i++) KT_REQUIRE_OK(kt_file_write_atomic(files[i], "x", 1, &err), &err);
    kt_db *db;
    kt_db_user u;
    cJSON *row = NULL;
    KT_REQUIRE_OK(kt_db_open(&db, db_file, &err), &err);
    KT_REQUIRE_OK(kt_db_user_create(db, "Ola", "ola@example.com", "$argon2id$x", 1, &u, &err), &err);
    KT_REQUIRE_OK(kt_db_prediction_add(db, u.id, kept, "LEVEL_3", 0.8, NULL, 2, &row, &err), &err);
    cJSON_Delete(row);
    kt_db_close(db);
    cfg.keep_uploads_dir = keep;
    kt_http_server *s = NULL;
    KT_REQUIRE_OK(kt_http_start(&s, &cfg, &err), &err);
    kt_http_stop(s);
    KT_CHECK(kt_file_exists(kept), "an upload its prediction names was removed");
    KT_CHECK(!kt_file_exists(orphan), "the upload no prediction names is still there");
    KT_CHECK(kt_file_exists(other), "a file not of the server's naming was removed");
    KT_CHECK(!kt_file_exists(stale), "a dead writer's temporary file is still there");
}

KT_TEST(test_http_web_page_served) {
    kt_http_server *s = start(NULL, 0);
    KT_REQUIRE(s);
    int port = kt_http_port(s);
    kt_test_resp r;
    char h[512];
    kt_test_get(port, "/", NULL, &r);
    KT_CHECK(r.status == 200 && strstr(r.body, "<html") && strstr(r.body, "app.js"), "%d", r.status);
    KT_CHECK(kt_test_header(&r, "Content-Type", h, sizeof h) && strstr(h, "text/html"));
    KT_CHECK(kt_test_header(&r, "Content-Security-Policy", h, sizeof h) && strstr(h, "default-src 'self'"));
    kt_test_resp_free(&r);
    kt_test_get(port, "/app.js", NULL, &r);
    KT_CHECK(r.status == 200 && kt_test_header(&r, "Content-Type", h, sizeof h) && strstr(h, "javascript"));
    KT_CHECK(strstr(r.body, "/predict") && strstr(r.body, "/diet/recommendations"));
    kt_test_resp_free(&r);
    kt_test_get(port, "/style.css", NULL, &r);
    KT_CHECK(r.status == 200 && kt_test_header(&r, "Content-Type", h, sizeof h) && strstr(h, "text/css"));
    kt_test_resp_free(&r);
    EXPECT(kt_test_get(port, "/../../etc/passwd", NULL, &r_), 404, "traversal");
    EXPECT(kt_test_get(port, "/web/index.html", NULL, &r_), 404, "asset by internal name");
    kt_http_stop(s);
}

KT_TEST(test_http_start_errors) {
    kt_http_server *s = start(NULL, 0);
    KT_REQUIRE(s);
    kt_http_config cfg = {0};
    char db2[4096];
    snprintf(db2, sizeof db2, "%s/second.db", kt_test_tmpdir());
    cfg.db_path = db2;
    cfg.port = kt_http_port(s); /* taken */
    kt_http_server *s2 = NULL;
    kt_err err = {0};
    KT_CHECK(kt_http_start(&s2, &cfg, &err) == KT_ERR_IO && !s2, "a second server bound a port in use");
    KT_CHECK(strstr(err.msg, "cannot listen"), "%s", err.msg);
    cfg.port = 0;
    cfg.host = "999.1.1.1";
    KT_CHECK(kt_http_start(&s2, &cfg, &err) == KT_ERR_ARG && strstr(err.msg, "'999.1.1.1'"), "%s", err.msg);
    cfg.host = NULL;
    cfg.meals_path = "/nonexistent/meals.json";
    KT_CHECK(kt_http_start(&s2, &cfg, &err) != KT_OK && strstr(err.msg, "/nonexistent/meals.json"), "%s", err.msg);
    cfg.meals_path = NULL;
    cfg.db_path = "/nonexistent/dir/k.db";
    KT_CHECK(kt_http_start(&s2, &cfg, &err) == KT_ERR_IO && strstr(err.msg, "/nonexistent/dir/k.db"), "%s", err.msg);
    KT_CHECK(alive(kt_http_port(s)));
    kt_http_stop(s);
}

/* Regression: requests whose body is still on its way must not hold a database connection while
 * MHD waits for the client. With 2 worker threads (2 connections) and 8 such requests, the old code
 * blocked a worker inside the pool and the whole server hung. */
KT_TEST(test_http_slow_clients_do_not_starve_the_pool) {
    kt_http_config cfg;
    test_cfg(&cfg, "slow.db", 2);
    kt_http_server *s = NULL;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_http_start(&s, &cfg, &err), &err);
    int port = kt_http_port(s);
    char tok[KT_AUTH_TOKEN_MAX];
    KT_REQUIRE(sign_up(port, "Ivy", "ivy@example.com", tok, sizeof tok));
    const char *body = "{\"date\": \"2024-07-01\", \"stress_level\": 2, \"sleep_hours\": 8, \"exercise_minutes\": 15,"
                       " \"water_intake\": 2, \"notes\": \"slow\"}";
    enum { N = 8 };
    int fds[N];
    char head[1024];
    snprintf(head, sizeof head,
             "POST /diet/lifestyle HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer %s\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
             tok, strlen(body));
    for (int i = 0; i < N; i++) {
        fds[i] = kt_test_connect(port);
        KT_REQUIRE(fds[i] >= 0);
        kt_test_send(fds[i], head, strlen(head)); /* headers now, body later */
    }
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    kt_test_http_timeout_ms = 5000;
    kt_test_resp r;
    kt_test_get(port, "/history", tok, &r);
    KT_CHECK(r.status == 200, "the server stalled while bodies were pending (status %d)", r.status);
    kt_test_resp_free(&r);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        kt_test_send(fds[i], body, strlen(body));
        kt_test_read(fds[i], &r);
        ok += r.status == 200;
        kt_test_resp_free(&r);
    }
    kt_test_http_timeout_ms = 30000;
    KT_CHECK(ok == N, "%d of %d slow requests answered", ok, N);
    kt_http_stop(s);
}
