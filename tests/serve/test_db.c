/* The SQLite store: migrations, reopening, verbatim storage of hostile text, per-user isolation,
 * atomic replacement, and concurrent writers through the pool. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kt_test.h"
#include "serve/db.h"
#include "serve/timeutil.h"

static void db_path(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", kt_test_tmpdir(), name); }

static int64_t count(kt_db *db, const char *table) {
    int64_t n = -1;
    kt_err err = {0};
    if (kt_db_count(db, table, &n, &err)) kt_test_fail(__FILE__, __LINE__, "count %s: %s", table, err.msg);
    return n;
}

static int64_t make_user(kt_db *db, const char *name, const char *email) {
    kt_db_user u;
    kt_err err = {0};
    if (kt_db_user_create(db, name, email, "$argon2id$fake", kt_time_now_us(), &u, &err)) {
        kt_test_fail(__FILE__, __LINE__, "user %s: %s", email, err.msg);
        return -1;
    }
    return u.id;
}

static int raw_scalar(const char *path, const char *sql, char *out, size_t cap) {
    sqlite3 *c;
    sqlite3_stmt *st;
    int ok = 0;
    if (sqlite3_open(path, &c) != SQLITE_OK) return 0;
    if (sqlite3_prepare_v2(c, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            snprintf(out, cap, "%s", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
            ok = 1;
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(c);
    return ok;
}

KT_TEST(test_db_migrate_from_empty) {
    char path[4096], v[64];
    db_path(path, sizeof path, "empty.db");
    kt_db *db;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_db_open(&db, path, &err), &err);
    KT_CHECK(kt_db_schema_version(db) == KT_DB_SCHEMA_VERSION);
    const char *tables[] = {"users", "predictions", "diet_assessments", "diet_recommendations", "lifestyle_entries",
                            "food_logs"};
    for (int i = 0; i < 6; i++) KT_CHECK(count(db, tables[i]) == 0, "%s", tables[i]);
    kt_db_close(db);
    KT_CHECK(raw_scalar(path, "PRAGMA journal_mode", v, sizeof v) && !strcmp(v, "wal"), "journal_mode %s", v);
    KT_CHECK(raw_scalar(path, "SELECT count(*) FROM schema_version", v, sizeof v) && !strcmp(v, "2"), "%s", v);
    KT_CHECK(raw_scalar(path, "SELECT count(*) FROM sqlite_master WHERE name = 'server_secret'", v, sizeof v) &&
             !strcmp(v, "1"));
    /* Reopening applies nothing twice. */
    KT_REQUIRE_OK(kt_db_open(&db, path, &err), &err);
    KT_CHECK(kt_db_schema_version(db) == KT_DB_SCHEMA_VERSION);
    kt_db_close(db);
    KT_CHECK(raw_scalar(path, "SELECT count(*) FROM schema_version", v, sizeof v) && !strcmp(v, "2"), "%s", v);
}

KT_TEST(test_db_migrate_from_v1_keeps_rows) {
    char path[4096], v[256];
    db_path(path, sizeof path, "v1.db");
    kt_db *db;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_db_open_at_version(&db, path, 1, &err), &err);
    KT_CHECK(kt_db_schema_version(db) == 1);
    kt_db_close(db);
    sqlite3 *c;
    KT_REQUIRE(sqlite3_open(path, &c) == SQLITE_OK);
    KT_REQUIRE(sqlite3_exec(c,
                            "INSERT INTO users(name, email, hashed_password, created_at) VALUES "
                            "('Old', 'old@example.com', 'h', '2024-01-01T00:00:00Z');"
                            "INSERT INTO predictions(user_id, image_path, predicted_stage, confidence, created_at) "
                            "VALUES (1, NULL, 'LEVEL_3', 0.9, '2024-01-02T00:00:00Z');",
                            NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(c);
    KT_REQUIRE_OK(kt_db_open(&db, path, &err), &err);
    KT_CHECK(kt_db_schema_version(db) == 2);
    cJSON *rows = NULL;
    KT_REQUIRE_OK(kt_db_predictions_list(db, 1, 0, &rows, &err), &err);
    KT_REQUIRE(cJSON_GetArraySize(rows) == 1);
    const cJSON *r = cJSON_GetArrayItem(rows, 0);
    KT_CHECK(!strcmp(cJSON_GetObjectItem(r, "predicted_stage")->valuestring, "LEVEL_3"));
    KT_CHECK(cJSON_IsNull(cJSON_GetObjectItem(r, "probabilities")));
    cJSON_Delete(rows);
    kt_db_user u;
    KT_CHECK_OK(kt_db_user_by_email(db, "OLD@example.com", &u, &err), &err);
    KT_CHECK(u.id == 1 && !strcmp(u.name, "Old"));
    kt_db_close(db);
    KT_CHECK(raw_scalar(path, "SELECT group_concat(version) FROM schema_version", v, sizeof v) && !strcmp(v, "1,2"), "%s", v);
}

KT_TEST(test_db_refuses_newer_schema) {
    char path[4096];
    db_path(path, sizeof path, "future.db");
    kt_db *db;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_db_open(&db, path, &err), &err);
    kt_db_close(db);
    sqlite3 *c;
    KT_REQUIRE(sqlite3_open(path, &c) == SQLITE_OK);
    KT_REQUIRE(sqlite3_exec(c, "INSERT INTO schema_version VALUES (99, 'x')", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(c);
    KT_CHECK(kt_db_open(&db, path, &err) == KT_ERR_UNSUPPORTED);
    KT_CHECK(strstr(err.msg, "schema version 99"), "%s", err.msg);
    /* A file that is not a database at all. */
    char junk[4096];
    db_path(junk, sizeof junk, "junk.db");
    FILE *f = fopen(junk, "wb");
    KT_REQUIRE(f);
    fputs("this is not an SQLite database, just text that is long enough to have a header ......", f);
    fclose(f);
    KT_CHECK(kt_db_open(&db, junk, &err) != KT_OK);
    KT_CHECK(strstr(err.msg, "junk.db"), "%s", err.msg);
}

KT_TEST(test_db_reopen_keeps_rows) {
    char path[4096];
    db_path(path, sizeof path, "reopen.db");
    kt_db *db;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_db_open(&db, path, &err), &err);
    int64_t uid = make_user(db, "Ana", "ana@example.com");
    int64_t t = kt_time_now_us();
    for (int i = 0; i < 3; i++) {
        cJSON *row = NULL;
        KT_CHECK_OK(kt_db_prediction_add(db, uid, NULL, i == 2 ? "LEVEL_5" : "LEVEL_4", 0.5 + 0.1 * i,
                                         "{\"LEVEL_4\": 0.5}", t + i * 1000, &row, &err),
                    &err);
        KT_CHECK(row && cJSON_GetObjectItem(row, "id")->valueint == i + 1);
        KT_CHECK(cJSON_IsObject(cJSON_GetObjectItem(row, "probabilities")));
        cJSON_Delete(row);
    }
    unsigned char k1[32], k2[32];
    KT_REQUIRE_OK(kt_db_secret(db, k1, &err), &err);
    kt_db_close(db);
    KT_REQUIRE_OK(kt_db_open(&db, path, &err), &err);
    cJSON *rows = NULL;
    KT_REQUIRE_OK(kt_db_predictions_list(db, uid, 0, &rows, &err), &err);
    KT_CHECK(cJSON_GetArraySize(rows) == 3);
    KT_CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(rows, 0), "predicted_stage")->valuestring, "LEVEL_5"),
             "newest first");
    cJSON_Delete(rows);
    kt_db_stage_at st[6];
    int n;
    KT_REQUIRE_OK(kt_db_prediction_stages(db, uid, st, 2, &n, &err), &err);
    KT_CHECK(n == 2 && !strcmp(st[0].stage, "LEVEL_5") && st[0].time_us == t + 2000);
    KT_REQUIRE_OK(kt_db_secret(db, k2, &err), &err);
    KT_CHECK(!memcmp(k1, k2, 32), "the signing key changed across a reopen");
    unsigned char zero[32] = {0};
    KT_CHECK(memcmp(k1, zero, 32));
    kt_db_close(db);
}

KT_TEST(test_db_sql_metacharacters_verbatim) {
    char path[4096];
    db_path(path, sizeof path, "meta.db");
    kt_db *db;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_db_open(&db, path, &err), &err);
    const char *evil = "Robert'); DROP TABLE users;-- \" OR 1=1 %_\\ ; DELETE FROM predictions; /* x */ \xc3\xa9";
    const char *evil_email = "o'hara\"; DROP TABLE users;--@example.com";
    int64_t uid = make_user(db, evil, evil_email);
    KT_REQUIRE(uid > 0);
    kt_db_user u;
    KT_REQUIRE_OK(kt_db_user_by_email(db, evil_email, &u, &err), &err);
    KT_CHECK(!strcmp(u.name, evil) && !strcmp(u.email, evil_email));
    /* LIKE wildcards must not match other rows either. */
    kt_status wild = kt_db_user_by_email(db, "%", &u, &err);
    KT_CHECK(wild == KT_ERR_NOTFOUND);
    cJSON *row = NULL;
    KT_REQUIRE_OK(kt_db_prediction_add(db, uid, evil, evil, 0.5, NULL, kt_time_now_us(), &row, &err), &err);
    KT_CHECK(!strcmp(cJSON_GetObjectItem(row, "image_path")->valuestring, evil));
    KT_CHECK(!strcmp(cJSON_GetObjectItem(row, "predicted_stage")->valuestring, evil));
    cJSON_Delete(row);
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "age", 30);
    cJSON_AddStringToObject(a, "gender", "female");
    cJSON_AddNumberToObject(a, "weight", 60);
    cJSON_AddNumberToObject(a, "height", 170);
    cJSON_AddStringToObject(a, "activity_level", "active");
    const char *list[] = {evil, "vegan"};
    cJSON_AddItemToObject(a, "dietary_restrictions", cJSON_CreateStringArray(list, 2));
    cJSON_AddStringToObject(a, "current_diet_pattern", evil);
    cJSON_AddItemToObject(a, "health_conditions", cJSON_CreateStringArray(list, 1));
    cJSON_AddNullToObject(a, "medications");
    KT_REQUIRE_OK(kt_db_assessment_add(db, uid, a, kt_time_now_us(), &row, &err), &err);
    cJSON_Delete(row);
    KT_REQUIRE_OK(kt_db_assessment_latest(db, uid, &row, &err), &err);
    KT_CHECK(!strcmp(cJSON_GetObjectItem(row, "current_diet_pattern")->valuestring, evil));
    KT_CHECK(!strcmp(cJSON_GetArrayItem(cJSON_GetObjectItem(row, "dietary_restrictions"), 0)->valuestring, evil));
    KT_CHECK(cJSON_IsNull(cJSON_GetObjectItem(row, "medications")));
    cJSON_Delete(row);
    cJSON_Delete(a);
    KT_REQUIRE_OK(kt_db_lifestyle_add(db, uid, "2024-05-01", 5, 7.5, 30, 2.0, evil, kt_time_now_us(), &row, &err), &err);
    KT_CHECK(!strcmp(cJSON_GetObjectItem(row, "notes")->valuestring, evil));
    cJSON_Delete(row);
    cJSON *foods = cJSON_CreateStringArray(list, 2);
    char *ft = cJSON_PrintUnformatted(foods);
    KT_REQUIRE_OK(kt_db_food_log_add(db, uid, "2024-05-01", "snack", ft, NULL, kt_time_now_us(), &row, &err), &err);
    KT_CHECK(!strcmp(cJSON_GetArrayItem(cJSON_GetObjectItem(row, "foods"), 0)->valuestring, evil));
    cJSON_Delete(row);
    cJSON_free(ft);
    cJSON_Delete(foods);
    /* Every table is still there with exactly the rows written. */
    KT_CHECK(count(db, "users") == 1);
    KT_CHECK(count(db, "predictions") == 1);
    KT_CHECK(count(db, "diet_assessments") == 1);
    KT_CHECK(count(db, "lifestyle_entries") == 1);
    KT_CHECK(count(db, "food_logs") == 1);
    kt_db_close(db);
}

KT_TEST(test_db_per_user_isolation) {
    char path[4096];
    db_path(path, sizeof path, "iso.db");
    kt_db *db;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_db_open(&db, path, &err), &err);
    int64_t a = make_user(db, "A", "a@example.com"), b = make_user(db, "B", "b@example.com");
    int64_t now = kt_time_now_us();
    cJSON *row;
    for (int i = 0; i < 4; i++) {
        KT_REQUIRE_OK(kt_db_prediction_add(db, i % 2 ? b : a, NULL, "LEVEL_2", 0.9, NULL, now + i, &row, &err), &err);
        cJSON_Delete(row);
        KT_REQUIRE_OK(kt_db_lifestyle_add(db, i % 2 ? b : a, "2024-05-01", 3, 8, 10, 1, NULL, now, &row, &err), &err);
        cJSON_Delete(row);
    }
    KT_REQUIRE_OK(kt_db_prediction_add(db, a, NULL, "LEVEL_7", 0.9, NULL, now + 10, &row, &err), &err);
    cJSON_Delete(row);
    cJSON *ra, *rb;
    KT_REQUIRE_OK(kt_db_predictions_list(db, a, 0, &ra, &err), &err);
    KT_REQUIRE_OK(kt_db_predictions_list(db, b, 0, &rb, &err), &err);
    KT_CHECK(cJSON_GetArraySize(ra) == 3 && cJSON_GetArraySize(rb) == 2);
    const cJSON *it;
    cJSON_ArrayForEach(it, ra) KT_CHECK(cJSON_GetObjectItem(it, "user_id")->valueint == a);
    cJSON_ArrayForEach(it, rb) KT_CHECK(cJSON_GetObjectItem(it, "user_id")->valueint == b);
    cJSON_Delete(ra);
    cJSON_Delete(rb);
    KT_REQUIRE_OK(kt_db_lifestyle_since(db, b, "2024-01-01", &rb, &err), &err);
    KT_CHECK(cJSON_GetArraySize(rb) == 2);
    cJSON_Delete(rb);
    KT_REQUIRE_OK(kt_db_lifestyle_since(db, b, "2024-06-01", &rb, &err), &err);
    KT_CHECK(cJSON_GetArraySize(rb) == 0);
    cJSON_Delete(rb);
    KT_CHECK(kt_db_assessment_latest(db, b, &rb, &err) == KT_ERR_NOTFOUND);
    /* Recommendations: replacing b's leaves a's active row alone. */
    cJSON *bundle = cJSON_Parse("{\"hair_stage_at_time\": \"LEVEL_2\", \"recommended_nutrients\": {}, \"meal_plan\": {},"
                                " \"supplements\": [], \"foods_to_avoid\": [], \"confidence_score\": 0.8,"
                                " \"reasoning\": \"r\", \"hair_analysis\": {\"trend\": \"stable\"}, \"warnings\": [],"
                                " \"next_review_date\": \"2024-06-01T00:00:00.000000Z\"}");
    KT_REQUIRE(bundle);
    KT_REQUIRE_OK(kt_db_recommendation_replace(db, a, bundle, now, &row, &err), &err);
    int64_t a_rec = (int64_t)cJSON_GetObjectItem(row, "id")->valuedouble;
    KT_CHECK(cJSON_IsTrue(cJSON_GetObjectItem(row, "is_active")));
    KT_CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetObjectItem(row, "hair_analysis"), "trend")->valuestring, "stable"));
    cJSON_Delete(row);
    KT_REQUIRE_OK(kt_db_recommendation_replace(db, b, bundle, now, &row, &err), &err);
    cJSON_Delete(row);
    KT_REQUIRE_OK(kt_db_recommendation_active(db, a, &row, &err), &err);
    KT_CHECK((int64_t)cJSON_GetObjectItem(row, "id")->valuedouble == a_rec);
    cJSON_Delete(row);
    cJSON_Delete(bundle);
    kt_db_close(db);
}

KT_TEST(test_db_duplicate_email_and_atomic_replace) {
    char path[4096];
    db_path(path, sizeof path, "dup.db");
    kt_db *db;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_db_open(&db, path, &err), &err);
    int64_t uid = make_user(db, "A", "same@example.com");
    kt_db_user u;
    KT_CHECK(kt_db_user_create(db, "B", "SAME@example.com", "h", kt_time_now_us(), &u, &err) == KT_ERR_STATE);
    KT_CHECK(strstr(err.msg, "Email already registered"), "%s", err.msg);
    KT_CHECK(count(db, "users") == 1);
    cJSON *bundle = cJSON_Parse("{\"hair_stage_at_time\": null, \"recommended_nutrients\": {\"iron\": {}},"
                                " \"meal_plan\": {}, \"supplements\": [], \"foods_to_avoid\": [],"
                                " \"confidence_score\": 0.7, \"reasoning\": \"first\"}");
    cJSON *row;
    KT_REQUIRE_OK(kt_db_recommendation_replace(db, uid, bundle, kt_time_now_us(), &row, &err), &err);
    cJSON_Delete(row);
    cJSON_ReplaceItemInObject(bundle, "reasoning", cJSON_CreateString("second"));
    KT_REQUIRE_OK(kt_db_recommendation_replace(db, uid, bundle, kt_time_now_us(), &row, &err), &err);
    cJSON_Delete(row);
    KT_CHECK(count(db, "diet_recommendations") == 2);
    /* A bundle missing a required part fails and leaves the active row and the count as they were. */
    cJSON_DeleteItemFromObject(bundle, "meal_plan");
    KT_CHECK(kt_db_recommendation_replace(db, uid, bundle, kt_time_now_us(), &row, &err) == KT_ERR_ARG);
    KT_CHECK(count(db, "diet_recommendations") == 2);
    KT_REQUIRE_OK(kt_db_recommendation_active(db, uid, &row, &err), &err);
    KT_CHECK(!strcmp(cJSON_GetObjectItem(row, "reasoning")->valuestring, "second"));
    cJSON_Delete(row);
    cJSON_Delete(bundle);
    /* A foreign key violation (no such user) is refused, not half-written. */
    KT_CHECK(kt_db_prediction_add(db, 999, NULL, "LEVEL_2", 0.5, NULL, kt_time_now_us(), &row, &err) != KT_OK);
    KT_CHECK(count(db, "predictions") == 0);
    kt_db_close(db);
}

typedef struct {
    kt_db_pool *pool;
    int64_t uid;
    int n, failures;
} writer_arg;

static void *writer(void *p) {
    writer_arg *w = p;
    for (int i = 0; i < w->n; i++) {
        kt_db *db = kt_db_pool_acquire(w->pool);
        kt_err err = {0};
        cJSON *row = NULL;
        if (kt_db_lifestyle_add(db, w->uid, "2024-05-02", 1 + i % 10, 7, 20, 1.5, "concurrent", kt_time_now_us(), &row,
                                &err))
            w->failures++;
        cJSON_Delete(row);
        kt_db_pool_release(w->pool, db);
    }
    return NULL;
}

KT_TEST(test_db_pool_concurrent_writers) {
    char path[4096];
    db_path(path, sizeof path, "pool.db");
    kt_db_pool *pool;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_db_pool_open(&pool, path, 3, &err), &err);
    kt_db *db = kt_db_pool_acquire(pool);
    int64_t uid = make_user(db, "P", "p@example.com");
    kt_db_pool_release(pool, db);
    pthread_t th[6];
    writer_arg args[6];
    for (int i = 0; i < 6; i++) {
        args[i] = (writer_arg){pool, uid, 15, 0};
        pthread_create(&th[i], NULL, writer, &args[i]);
    }
    int fails = 0;
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        fails += args[i].failures;
    }
    KT_CHECK(fails == 0, "%d writes failed", fails);
    db = kt_db_pool_acquire(pool);
    KT_CHECK(count(db, "lifestyle_entries") == 90);
    kt_db_pool_release(pool, db);
    kt_db_pool_close(pool);
}

/* The tree-free JSON writer of GET /history says exactly what the cJSON rows say. */
KT_TEST(test_db_rows_text_matches_json_rows) {
    char path[4096];
    db_path(path, sizeof path, "text.db");
    kt_db *db;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_db_open(&db, path, &err), &err);
    int64_t uid = make_user(db, "T", "t@example.com");
    const char *odd[] = {"plain", "quote \" backslash \\ slash /", "tab\tnewline\ncr\rbell\x07 esc\x1b",
                         "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 utf-8", ""};
    const double conf[] = {0.25738692283630371, 0.1, 1.0, 1e-300, 0.3333333333333333};
    for (int i = 0; i < 5; i++) {
        cJSON *row = NULL;
        KT_REQUIRE_OK(kt_db_prediction_add(db, uid, i % 2 ? odd[i] : NULL, odd[i], conf[i],
                                           i == 3 ? NULL : "{\"a\":0.5,\"b\\\"\":[1,2]}", kt_time_now_us() + i, &row, &err),
                      &err);
        cJSON_Delete(row);
    }
    cJSON *rows = NULL;
    char *text = NULL;
    size_t len = 0;
    KT_REQUIRE_OK(kt_db_predictions_list(db, uid, 0, &rows, &err), &err);
    KT_REQUIRE_OK(kt_db_predictions_list_text(db, uid, 0, &text, &len, &err), &err);
    KT_CHECK(len == strlen(text));
    cJSON *parsed = cJSON_Parse(text);
    KT_REQUIRE(parsed, "not JSON: %s", text);
    KT_CHECK(cJSON_Compare(rows, parsed, 1), "text %s\ntree %s", text, cJSON_PrintUnformatted(rows));
    cJSON_Delete(parsed);
    cJSON_Delete(rows);
    free(text);
    KT_REQUIRE_OK(kt_db_predictions_list_text(db, uid + 1, 0, &text, &len, &err), &err);
    KT_CHECK(!strcmp(text, "[]"));
    free(text);
    kt_db_close(db);
}
