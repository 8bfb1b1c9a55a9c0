/* Row operations on the report's tables: every value is a bound parameter, every write one transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/db.h"
#include "serve/db_internal.h"
#include "serve/timeutil.h"

static const char *const pred_json[] = {"probabilities", NULL};
static const char *const assess_json[] = {"dietary_restrictions", "health_conditions", "medications", NULL};
static const char *const rec_json[] = {"recommended_nutrients", "meal_plan", "supplements", "foods_to_avoid",
                                       "hair_analysis", "warnings", NULL};
static const char *const life_json[] = {NULL};
static const char *const food_json[] = {"foods", "estimated_nutrients", NULL};

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s) {
    if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}

static void copy(char *dst, size_t cap, const unsigned char *src) {
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

/* Reads the row with this id through the BY_ID statement into *row. */
static kt_status fetch_row(kt_db *db, kt_sql_id by_id, int64_t id, const char *const *json_cols, cJSON **row,
                           kt_err *err) {
    sqlite3_stmt *st = kt_db_stmt(db, by_id, err);
    if (!st) return err ? err->code : KT_ERR_IO;
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? kt_err_set(err, KT_ERR_NOTFOUND, "row %lld not found", (long long)id)
                                 : kt_db_fail(db, err, "reading a row back");
    }
    *row = kt_db_row_json(st, json_cols);
    sqlite3_reset(st);
    return *row ? KT_OK : kt_err_set(err, KT_ERR_NOMEM, "no memory for a row");
}

/* Steps an INSERT already bound, reads the new row back, commits; rolls back on any failure. */
static kt_status insert_and_fetch(kt_db *db, sqlite3_stmt *ins, kt_sql_id by_id, const char *const *json_cols,
                                  cJSON **row, const char *what, kt_err *err) {
    if (row) *row = NULL;
    int rc = sqlite3_step(ins);
    sqlite3_reset(ins);
    if (rc != SQLITE_DONE) {
        kt_status st = (rc & 0xff) == SQLITE_CONSTRAINT ? kt_err_set(err, KT_ERR_STATE, "%s: %s", what,
                                                                     sqlite3_errmsg(db->conn))
                                                        : kt_db_fail(db, err, what);
        kt_db_rollback(db);
        return st;
    }
    int64_t id = sqlite3_last_insert_rowid(db->conn);
    kt_status st = KT_OK;
    if (row) st = fetch_row(db, by_id, id, json_cols, row, err);
    if (!st) st = kt_db_commit(db, err);
    else kt_db_rollback(db);
    if (st && row) {
        cJSON_Delete(*row);
        *row = NULL;
    }
    return st;
}

/* ---- users ----------------------------------------------------------------------------------- */
static kt_status read_user(kt_db *db, sqlite3_stmt *st, kt_db_user *out, kt_err *err) {
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        copy(out->name, sizeof out->name, sqlite3_column_text(st, 1));
        copy(out->email, sizeof out->email, sqlite3_column_text(st, 2));
        copy(out->password_hash, sizeof out->password_hash, sqlite3_column_text(st, 3));
        copy(out->created_at, sizeof out->created_at, sqlite3_column_text(st, 4));
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return KT_OK;
    if (rc == SQLITE_DONE) return kt_err_set(err, KT_ERR_NOTFOUND, "no such user");
    return kt_db_fail(db, err, "reading a user");
}

kt_status kt_db_user_create(kt_db *db, const char *name, const char *email, const char *password_hash, int64_t now_us,
                            kt_db_user *out, kt_err *err) {
    char ts[40];
    kt_time_format_iso(now_us, ts, sizeof ts);
    kt_status st = kt_db_begin(db, err);
    if (st) return st;
    sqlite3_stmt *ins = kt_db_stmt(db, KT_SQL_USER_INSERT, err);
    if (!ins) {
        kt_db_rollback(db);
        return err ? err->code : KT_ERR_IO;
    }
    sqlite3_bind_text(ins, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 2, email, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 3, password_hash, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 4, ts, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(ins);
    sqlite3_reset(ins);
    if (rc != SQLITE_DONE) {
        st = rc == SQLITE_CONSTRAINT_UNIQUE ? kt_err_set(err, KT_ERR_STATE, "Email already registered")
                                            : kt_db_fail(db, err, "creating a user");
        kt_db_rollback(db);
        return st;
    }
    int64_t id = sqlite3_last_insert_rowid(db->conn);
    sqlite3_stmt *q = kt_db_stmt(db, KT_SQL_USER_BY_ID, err);
    if (!q) {
        kt_db_rollback(db);
        return err ? err->code : KT_ERR_IO;
    }
    sqlite3_bind_int64(q, 1, id);
    if ((st = read_user(db, q, out, err))) {
        kt_db_rollback(db);
        return st;
    }
    return kt_db_commit(db, err);
}

kt_status kt_db_user_by_email(kt_db *db, const char *email, kt_db_user *out, kt_err *err) {
    sqlite3_stmt *q = kt_db_stmt(db, KT_SQL_USER_BY_EMAIL, err);
    if (!q) return err ? err->code : KT_ERR_IO;
    sqlite3_bind_text(q, 1, email, -1, SQLITE_TRANSIENT);
    return read_user(db, q, out, err);
}

kt_status kt_db_user_by_id(kt_db *db, int64_t id, kt_db_user *out, kt_err *err) {
    sqlite3_stmt *q = kt_db_stmt(db, KT_SQL_USER_BY_ID, err);
    if (!q) return err ? err->code : KT_ERR_IO;
    sqlite3_bind_int64(q, 1, id);
    return read_user(db, q, out, err);
}

/* ---- predictions ------------------------------------------------------------------------------ */
kt_status kt_db_prediction_add(kt_db *db, int64_t user_id, const char *image_path, const char *stage, double confidence,
                               const char *probabilities_json, int64_t now_us, cJSON **row, kt_err *err) {
    char ts[40];
    kt_time_format_iso(now_us, ts, sizeof ts);
    kt_status st = kt_db_begin(db, err);
    if (st) return st;
    sqlite3_stmt *ins = kt_db_stmt(db, KT_SQL_PRED_INSERT, err);
    if (!ins) {
        kt_db_rollback(db);
        return err ? err->code : KT_ERR_IO;
    }
    sqlite3_bind_int64(ins, 1, user_id);
    bind_text_or_null(ins, 2, image_path);
    sqlite3_bind_text(ins, 3, stage, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(ins, 4, confidence);
    bind_text_or_null(ins, 5, probabilities_json);
    sqlite3_bind_text(ins, 6, ts, -1, SQLITE_TRANSIENT);
    return insert_and_fetch(db, ins, KT_SQL_PRED_BY_ID, pred_json, row, "storing a prediction", err);
}

static kt_status list_rows(kt_db *db, sqlite3_stmt *q, const char *const *json_cols, cJSON **rows, kt_err *err) {
    *rows = cJSON_CreateArray();
    if (!*rows) {
        sqlite3_reset(q);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for rows");
    }
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) cJSON_AddItemToArray(*rows, kt_db_row_json(q, json_cols));
    sqlite3_reset(q);
    if (rc != SQLITE_DONE) {
        cJSON_Delete(*rows);
        *rows = NULL;
        return kt_db_fail(db, err, "listing rows");
    }
    return KT_OK;
}

kt_status kt_db_prediction_get(kt_db *db, int64_t user_id, int64_t id, cJSON **row, kt_err *err) {
    *row = NULL;
    sqlite3_stmt *q = kt_db_stmt(db, KT_SQL_PRED_BY_ID_USER, err);
    if (!q) return err ? err->code : KT_ERR_IO;
    sqlite3_bind_int64(q, 1, id);
    sqlite3_bind_int64(q, 2, user_id);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) *row = kt_db_row_json(q, pred_json);
    sqlite3_reset(q);
    if (rc == SQLITE_DONE) return kt_err_set(err, KT_ERR_NOTFOUND, "no such prediction");
    if (rc != SQLITE_ROW) return kt_db_fail(db, err, "reading a prediction");
    return *row ? KT_OK : kt_err_set(err, KT_ERR_NOMEM, "no memory");
}

kt_status kt_db_prediction_path_known(kt_db *db, const char *image_path, int *known, kt_err *err) {
    *known = 0;
    sqlite3_stmt *q = kt_db_stmt(db, KT_SQL_PRED_BY_PATH, err);
    if (!q) return err ? err->code : KT_ERR_IO;
    sqlite3_bind_text(q, 1, image_path, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return kt_db_fail(db, err, "looking up an upload");
    *known = rc == SQLITE_ROW;
    return KT_OK;
}

kt_status kt_db_predictions_list(kt_db *db, int64_t user_id, int limit, cJSON **rows, kt_err *err) {
    sqlite3_stmt *q = kt_db_stmt(db, KT_SQL_PRED_LIST, err);
    if (!q) return err ? err->code : KT_ERR_IO;
    sqlite3_bind_int64(q, 1, user_id);
    sqlite3_bind_int64(q, 2, limit > 0 ? limit : -1);
    return list_rows(db, q, pred_json, rows, err);
}

kt_status kt_db_predictions_list_text(kt_db *db, int64_t user_id, int limit, char **json, size_t *len, kt_err *err) {
    sqlite3_stmt *q = kt_db_stmt(db, KT_SQL_PRED_LIST, err);
    if (!q) return err ? err->code : KT_ERR_IO;
    sqlite3_bind_int64(q, 1, user_id);
    sqlite3_bind_int64(q, 2, limit > 0 ? limit : -1);
    return kt_db_rows_text(db, q, pred_json, json, len, err);
}

kt_status kt_db_prediction_stages(kt_db *db, int64_t user_id, kt_db_stage_at *out, int n_max, int *n, kt_err *err) {
    *n = 0;
    sqlite3_stmt *q = kt_db_stmt(db, KT_SQL_PRED_STAGES, err);
    if (!q) return err ? err->code : KT_ERR_IO;
    sqlite3_bind_int64(q, 1, user_id);
    sqlite3_bind_int(q, 2, n_max);
    int rc;
    kt_status st = KT_OK;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW && *n < n_max) {
        kt_db_stage_at *o = &out[*n];
        kt_err e2;
        if (kt_time_parse_iso((const char *)sqlite3_column_text(q, 0), &o->time_us, &e2)) {
            st = kt_err_set(err, KT_ERR_FORMAT, "%s: predictions.created_at: %s", db->path, e2.msg);
            break;
        }
        copy(o->stage, sizeof o->stage, sqlite3_column_text(q, 1));
        (*n)++;
    }
    sqlite3_reset(q);
    if (!st && rc != SQLITE_DONE && rc != SQLITE_ROW) st = kt_db_fail(db, err, "reading predictions");
    return st;
}

/* ---- diet assessments ------------------------------------------------------------------------ */
/* JSON text of a's member (array/object), or NULL when absent or null; caller frees. */
static char *member_json(const cJSON *a, const char *name) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(a, name);
    return m && !cJSON_IsNull(m) ? cJSON_PrintUnformatted(m) : NULL;
}

static char *lower_dup(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (!d) return NULL;
    for (size_t i = 0; i <= n; i++) d[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
    return d;
}

kt_status kt_db_assessment_add(kt_db *db, int64_t user_id, const cJSON *a, int64_t now_us, cJSON **row, kt_err *err) {
    char date[16];
    kt_time_format_date(now_us, date, sizeof date);
    const cJSON *age = cJSON_GetObjectItemCaseSensitive(a, "age"), *gender = cJSON_GetObjectItemCaseSensitive(a, "gender");
    const cJSON *weight = cJSON_GetObjectItemCaseSensitive(a, "weight"), *height = cJSON_GetObjectItemCaseSensitive(a, "height");
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(a, "activity_level");
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(a, "current_diet_pattern");
    if (!cJSON_IsNumber(age) || !cJSON_IsString(gender) || !cJSON_IsNumber(weight) || !cJSON_IsNumber(height) ||
        !cJSON_IsString(act))
        return kt_err_set(err, KT_ERR_ARG, "assessment: not validated (age, gender, weight, height, activity_level)");
    char *restr = member_json(a, "dietary_restrictions"), *cond = member_json(a, "health_conditions");
    char *meds = member_json(a, "medications");
    char *g = lower_dup(gender->valuestring), *al = lower_dup(act->valuestring);
    kt_status st = KT_OK;
    if (!g || !al) {
        st = kt_err_set(err, KT_ERR_NOMEM, "no memory");
        goto out;
    }
    if ((st = kt_db_begin(db, err))) goto out;
    /* A new assessment retires the active plan, so the next GET /diet/recommendations uses it. */
    sqlite3_stmt *up = kt_db_stmt(db, KT_SQL_REC_DEACTIVATE, err);
    if (!up) {
        kt_db_rollback(db);
        st = err ? err->code : KT_ERR_IO;
        goto out;
    }
    sqlite3_bind_int64(up, 1, user_id);
    int rc = sqlite3_step(up);
    sqlite3_reset(up);
    if (rc != SQLITE_DONE) {
        st = kt_db_fail(db, err, "retiring the active recommendation");
        kt_db_rollback(db);
        goto out;
    }
    sqlite3_stmt *ins = kt_db_stmt(db, KT_SQL_ASSESS_INSERT, err);
    if (!ins) {
        kt_db_rollback(db);
        st = err ? err->code : KT_ERR_IO;
        goto out;
    }
    sqlite3_bind_int64(ins, 1, user_id);
    sqlite3_bind_int(ins, 2, age->valueint);
    sqlite3_bind_text(ins, 3, g, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(ins, 4, weight->valuedouble);
    sqlite3_bind_double(ins, 5, height->valuedouble);
    sqlite3_bind_text(ins, 6, al, -1, SQLITE_TRANSIENT);
    bind_text_or_null(ins, 7, restr);
    bind_text_or_null(ins, 8, cJSON_IsString(pat) ? pat->valuestring : NULL);
    bind_text_or_null(ins, 9, cond);
    bind_text_or_null(ins, 10, meds);
    sqlite3_bind_text(ins, 11, date, -1, SQLITE_TRANSIENT);
    st = insert_and_fetch(db, ins, KT_SQL_ASSESS_BY_ID, assess_json, row, "storing an assessment", err);
out:
    free(restr);
    free(cond);
    free(meds);
    free(g);
    free(al);
    return st;
}

kt_status kt_db_assessment_latest(kt_db *db, int64_t user_id, cJSON **row, kt_err *err) {
    *row = NULL;
    sqlite3_stmt *q = kt_db_stmt(db, KT_SQL_ASSESS_LATEST, err);
    if (!q) return err ? err->code : KT_ERR_IO;
    sqlite3_bind_int64(q, 1, user_id);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) *row = kt_db_row_json(q, assess_json);
    sqlite3_reset(q);
    if (rc == SQLITE_DONE) return kt_err_set(err, KT_ERR_NOTFOUND, "no diet assessment");
    if (rc != SQLITE_ROW) return kt_db_fail(db, err, "reading the assessment");
    return *row ? KT_OK : kt_err_set(err, KT_ERR_NOMEM, "no memory");
}

/* ---- diet recommendations -------------------------------------------------------------------- */
kt_status kt_db_recommendation_active(kt_db *db, int64_t user_id, cJSON **row, kt_err *err) {
    *row = NULL;
    sqlite3_stmt *q = kt_db_stmt(db, KT_SQL_REC_ACTIVE, err);
    if (!q) return err ? err->code : KT_ERR_IO;
    sqlite3_bind_int64(q, 1, user_id);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) *row = kt_db_row_json(q, rec_json);
    sqlite3_reset(q);
    if (rc == SQLITE_DONE) return kt_err_set(err, KT_ERR_NOTFOUND, "no active recommendation");
    if (rc != SQLITE_ROW) return kt_db_fail(db, err, "reading the recommendation");
    return *row ? KT_OK : kt_err_set(err, KT_ERR_NOMEM, "no memory");
}

kt_status kt_db_recommendation_replace(kt_db *db, int64_t user_id, const cJSON *bundle, int64_t now_us, cJSON **row,
                                       kt_err *err) {
    char ts[40];
    kt_time_format_iso(now_us, ts, sizeof ts);
    const char *json_keys[] = {"recommended_nutrients", "meal_plan", "supplements", "foods_to_avoid", "hair_analysis",
                               "warnings"};
    char *txt[6] = {0};
    kt_status st = KT_OK;
    for (int i = 0; i < 6; i++)
        if (!(txt[i] = member_json(bundle, json_keys[i])) && i < 4) {
            st = kt_err_set(err, KT_ERR_ARG, "recommendation bundle lacks '%s'", json_keys[i]);
            goto out;
        }
    const cJSON *stage = cJSON_GetObjectItemCaseSensitive(bundle, "hair_stage_at_time");
    const cJSON *conf = cJSON_GetObjectItemCaseSensitive(bundle, "confidence_score");
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(bundle, "reasoning");
    const cJSON *review = cJSON_GetObjectItemCaseSensitive(bundle, "next_review_date");
    if (!cJSON_IsNumber(conf) || !cJSON_IsString(why)) {
        st = kt_err_set(err, KT_ERR_ARG, "recommendation bundle lacks confidence_score or reasoning");
        goto out;
    }
    if ((st = kt_db_begin(db, err))) goto out;
    sqlite3_stmt *up = kt_db_stmt(db, KT_SQL_REC_DEACTIVATE, err);
    if (!up) {
        kt_db_rollback(db);
        st = err ? err->code : KT_ERR_IO;
        goto out;
    }
    sqlite3_bind_int64(up, 1, user_id);
    int rc = sqlite3_step(up);
    sqlite3_reset(up);
    if (rc != SQLITE_DONE) {
        st = kt_db_fail(db, err, "deactivating old recommendations");
        kt_db_rollback(db);
        goto out;
    }
    sqlite3_stmt *ins = kt_db_stmt(db, KT_SQL_REC_INSERT, err);
    if (!ins) {
        kt_db_rollback(db);
        st = err ? err->code : KT_ERR_IO;
        goto out;
    }
    sqlite3_bind_int64(ins, 1, user_id);
    bind_text_or_null(ins, 2, cJSON_IsString(stage) ? stage->valuestring : NULL);
    for (int i = 0; i < 4; i++) sqlite3_bind_text(ins, 3 + i, txt[i], -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(ins, 7, conf->valuedouble);
    sqlite3_bind_text(ins, 8, why->valuestring, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 9, ts, -1, SQLITE_TRANSIENT);
    bind_text_or_null(ins, 10, txt[4]);
    bind_text_or_null(ins, 11, txt[5]);
    bind_text_or_null(ins, 12, cJSON_IsString(review) ? review->valuestring : NULL);
    st = insert_and_fetch(db, ins, KT_SQL_REC_BY_ID, rec_json, row, "storing a recommendation", err);
out:
    for (int i = 0; i < 6; i++) cJSON_free(txt[i]);
    return st;
}

/* ---- lifestyle and food logs ----------------------------------------------------------------- */
kt_status kt_db_lifestyle_add(kt_db *db, int64_t user_id, const char *date, int stress_level, double sleep_hours,
                              int exercise_minutes, double water_intake, const char *notes, int64_t now_us, cJSON **row,
                              kt_err *err) {
    char ts[40];
    kt_time_format_iso(now_us, ts, sizeof ts);
    kt_status st = kt_db_begin(db, err);
    if (st) return st;
    sqlite3_stmt *ins = kt_db_stmt(db, KT_SQL_LIFE_INSERT, err);
    if (!ins) {
        kt_db_rollback(db);
        return err ? err->code : KT_ERR_IO;
    }
    sqlite3_bind_int64(ins, 1, user_id);
    sqlite3_bind_text(ins, 2, date, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(ins, 3, stress_level);
    sqlite3_bind_double(ins, 4, sleep_hours);
    sqlite3_bind_int(ins, 5, exercise_minutes);
    sqlite3_bind_double(ins, 6, water_intake);
    bind_text_or_null(ins, 7, notes);
    sqlite3_bind_text(ins, 8, ts, -1, SQLITE_TRANSIENT);
    return insert_and_fetch(db, ins, KT_SQL_LIFE_BY_ID, life_json, row, "storing a lifestyle entry", err);
}

kt_status kt_db_lifestyle_since(kt_db *db, int64_t user_id, const char *since_date, cJSON **rows, kt_err *err) {
    sqlite3_stmt *q = kt_db_stmt(db, KT_SQL_LIFE_SINCE, err);
    if (!q) return err ? err->code : KT_ERR_IO;
    sqlite3_bind_int64(q, 1, user_id);
    sqlite3_bind_text(q, 2, since_date, -1, SQLITE_TRANSIENT);
    return list_rows(db, q, life_json, rows, err);
}

kt_status kt_db_food_log_add(kt_db *db, int64_t user_id, const char *date, const char *meal_type, const char *foods_json,
                             const char *nutrients_json, int64_t now_us, cJSON **row, kt_err *err) {
    char ts[40];
    kt_time_format_iso(now_us, ts, sizeof ts);
    kt_status st = kt_db_begin(db, err);
    if (st) return st;
    sqlite3_stmt *ins = kt_db_stmt(db, KT_SQL_FOOD_INSERT, err);
    if (!ins) {
        kt_db_rollback(db);
        return err ? err->code : KT_ERR_IO;
    }
    sqlite3_bind_int64(ins, 1, user_id);
    sqlite3_bind_text(ins, 2, date, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 3, meal_type, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins, 4, foods_json, -1, SQLITE_TRANSIENT);
    bind_text_or_null(ins, 5, nutrients_json);
    sqlite3_bind_text(ins, 6, ts, -1, SQLITE_TRANSIENT);
    return insert_and_fetch(db, ins, KT_SQL_FOOD_BY_ID, food_json, row, "storing a food log", err);
}
