/* Diet endpoints: assessment, recommendations (the engine of serve/diet.c over the user's history),
 * lifestyle entries, food logs and the progress analysis. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serve/diet.h"
#include "serve/diet_json.h"
#include "serve/http_internal.h"
#include "serve/timeutil.h"

#define NOTES_MAX_BYTES 2000
#define FOODS_MAX 50
#define FOOD_MAX_BYTES 200
#define NUTRIENT_KEYS_MAX 50
#define PLAN_MAX_AGE_DAYS 30

void kt_h_diet_assessment(kt_http_req *r) {
    cJSON *body = kt_http_body_object(r);
    if (!body) return;
    kt_diet_assessment a;
    char field[32];
    kt_err err = {0};
    cJSON_DeleteItemFromObjectCaseSensitive(body, "assessment_date"); /* the server stamps the date */
    if (kt_diet_assessment_parse(body, &a, field, &err)) {
        kt_http_invalid(r, "body", strcmp(field, "body") ? field : NULL, err.msg, "value_error");
        cJSON_Delete(body);
        return;
    }
    cJSON *row = NULL;
    if (kt_db_assessment_add(kt_http_db(r), r->user_id, body, kt_time_now_us(), &row, &err)) kt_http_internal(r, &err);
    else kt_http_json(r, 200, row);
    cJSON_Delete(body);
}

/* The user's newest 6 predictions as engine observations. Answers 400 (and returns -1) when a stored
 * stage has no severity, e.g. a model trained on other classes. */
static int load_history(kt_http_req *r, kt_diet_obs *obs) {
    kt_db_stage_at st[KT_DIET_HISTORY_MAX];
    int n = 0;
    kt_err err = {0};
    if (kt_db_prediction_stages(kt_http_db(r), r->user_id, st, KT_DIET_HISTORY_MAX, &n, &err)) {
        kt_http_internal(r, &err);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        memset(&obs[i], 0, sizeof obs[i]);
        obs[i].time_us = st[i].time_us;
        if (kt_diet_stage_severity(st[i].stage, &obs[i].severity, &err)) {
            char msg[KT_ERR_MSG_MAX + 64];
            snprintf(msg, sizeof msg, "prediction history: %s", err.msg);
            kt_http_error(r, 400, msg);
            return -1;
        }
        snprintf(obs[i].stage, sizeof obs[i].stage, "%s", st[i].stage);
    }
    return n;
}

void kt_h_diet_recommendations(kt_http_req *r) {
    kt_db *db = kt_http_db(r);
    kt_err err = {0};
    cJSON *assess = NULL, *active = NULL;
    kt_status st = kt_db_assessment_latest(db, r->user_id, &assess, &err);
    if (st == KT_ERR_NOTFOUND) {
        kt_http_error(r, 400, "Please complete a diet assessment first");
        return;
    }
    if (st) {
        kt_http_internal(r, &err);
        return;
    }
    int64_t now = kt_time_now_us();
    st = kt_db_recommendation_active(db, r->user_id, &active, &err);
    if (st && st != KT_ERR_NOTFOUND) {
        kt_http_internal(r, &err);
        cJSON_Delete(assess);
        return;
    }
    if (!st) {
        const cJSON *created = cJSON_GetObjectItemCaseSensitive(active, "created_at");
        int64_t t;
        if (cJSON_IsString(created) && !kt_time_parse_iso(created->valuestring, &t, NULL) &&
            now - t <= PLAN_MAX_AGE_DAYS * KT_US_PER_DAY) {
            kt_http_json(r, 200, active);
            cJSON_Delete(assess);
            return;
        }
        cJSON_Delete(active);
    }
    kt_diet_obs obs[KT_DIET_HISTORY_MAX];
    int n = load_history(r, obs);
    kt_diet_assessment a;
    char field[32];
    kt_diet_plan *plan = calloc(1, sizeof *plan);
    if (n < 0 || !plan) {
        if (!plan) kt_http_error(r, 500, "Internal Server Error");
        goto out;
    }
    if (kt_diet_assessment_parse(assess, &a, field, &err)) { /* stored rows were validated: a bug if it fails */
        kt_http_internal(r, &err);
        goto out;
    }
    st = kt_diet_plan_make(plan, &a, obs, n, &r->srv->meals, &r->srv->facts, now, &err);
    if (st == KT_ERR_NOTFOUND) {
        kt_http_error(r, 400, err.msg); /* no meal satisfies the restrictions */
        goto out;
    }
    if (st) {
        kt_http_internal(r, &err);
        goto out;
    }
    cJSON *bundle = kt_diet_plan_to_json(plan, &r->srv->facts), *row = NULL;
    st = bundle ? kt_db_recommendation_replace(db, r->user_id, bundle, now, &row, &err)
                : kt_err_set(&err, KT_ERR_NOMEM, "no memory for the plan");
    /* The stored row is the answer, so a fresh plan and a cached one have the same shape. */
    if (st) kt_http_internal(r, &err);
    else kt_http_json(r, 200, row);
    cJSON_Delete(bundle);
out:
    free(plan);
    cJSON_Delete(assess);
}

/* ---- field validation for the logging endpoints ---------------------------------------------- */
static int num_field(kt_http_req *r, const cJSON *body, const char *name, double lo, double hi, int integer, double *out) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!f || cJSON_IsNull(f)) {
        kt_http_invalid(r, "body", name, "field required", "value_error.missing");
        return 0;
    }
    char msg[96];
    snprintf(msg, sizeof msg, "must be %s from %g to %g", integer ? "an integer" : "a number", lo, hi);
    if (!cJSON_IsNumber(f) || !isfinite(f->valuedouble) || f->valuedouble < lo || f->valuedouble > hi ||
        (integer && f->valuedouble != floor(f->valuedouble))) {
        kt_http_invalid(r, "body", name, msg, "value_error.number");
        return 0;
    }
    *out = f->valuedouble;
    return 1;
}

/* "date" as YYYY-MM-DD (a date-time is reduced to its UTC date). */
static int date_field(kt_http_req *r, const cJSON *body, char out[16]) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(body, "date");
    int64_t us;
    if (!f || cJSON_IsNull(f)) {
        kt_http_invalid(r, "body", "date", "field required", "value_error.missing");
        return 0;
    }
    if (!cJSON_IsString(f) || kt_time_parse_iso(f->valuestring, &us, NULL)) {
        kt_http_invalid(r, "body", "date", "invalid date format (expected YYYY-MM-DD)", "value_error.date");
        return 0;
    }
    kt_time_format_date(us, out, 16);
    return 1;
}

void kt_h_diet_lifestyle(kt_http_req *r) {
    cJSON *body = kt_http_body_object(r);
    if (!body) return;
    char date[16];
    double stress, sleep, exercise, water;
    if (!date_field(r, body, date) || !num_field(r, body, "stress_level", 1, 10, 1, &stress) ||
        !num_field(r, body, "sleep_hours", 0, 24, 0, &sleep) ||
        !num_field(r, body, "exercise_minutes", 0, 1440, 1, &exercise) ||
        !num_field(r, body, "water_intake", 0, 20, 0, &water))
        goto out;
    const cJSON *notes = cJSON_GetObjectItemCaseSensitive(body, "notes");
    if (notes && !cJSON_IsNull(notes) && (!cJSON_IsString(notes) || strlen(notes->valuestring) > NOTES_MAX_BYTES)) {
        kt_http_invalid(r, "body", "notes", "must be a string of at most 2000 bytes, or null", "value_error");
        goto out;
    }
    cJSON *row = NULL;
    kt_err err = {0};
    if (kt_db_lifestyle_add(kt_http_db(r), r->user_id, date, (int)stress, sleep, (int)exercise, water,
                            cJSON_IsString(notes) ? notes->valuestring : NULL, kt_time_now_us(), &row, &err))
        kt_http_internal(r, &err);
    else kt_http_json(r, 200, row);
out:
    cJSON_Delete(body);
}

void kt_h_diet_lifestyle_history(kt_http_req *r) {
    const char *v = kt_http_query(r, "days");
    long days = 30;
    if (v) {
        char *end;
        days = strtol(v, &end, 10);
        if (!*v || *end || days < 1 || days > 3650) {
            kt_http_invalid(r, "query", "days", "must be an integer from 1 to 3650", "value_error.number");
            return;
        }
    }
    char since[16];
    kt_time_format_date(kt_time_now_us() - days * KT_US_PER_DAY, since, sizeof since);
    cJSON *rows = NULL;
    kt_err err = {0};
    if (kt_db_lifestyle_since(kt_http_db(r), r->user_id, since, &rows, &err)) kt_http_internal(r, &err);
    else kt_http_json(r, 200, rows);
}

void kt_h_diet_food_log(kt_http_req *r) {
    cJSON *body = kt_http_body_object(r);
    if (!body) return;
    char date[16], *foods_txt = NULL, *nut_txt = NULL;
    if (!date_field(r, body, date)) goto out;
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(body, "meal_type");
    static const char *const types[] = {"breakfast", "lunch", "dinner", "snack"};
    const char *meal = NULL;
    for (int i = 0; i < 4 && cJSON_IsString(mt); i++)
        if (!strcmp(mt->valuestring, types[i])) meal = types[i];
    if (!meal) {
        kt_http_invalid(r, "body", "meal_type", mt ? "must be breakfast, lunch, dinner or snack" : "field required",
                        mt ? "value_error" : "value_error.missing");
        goto out;
    }
    const cJSON *foods = cJSON_GetObjectItemCaseSensitive(body, "foods"), *it;
    int nf = cJSON_IsArray(foods) ? cJSON_GetArraySize(foods) : -1;
    int ok = nf >= 1 && nf <= FOODS_MAX;
    if (ok) cJSON_ArrayForEach(it, foods) ok &= cJSON_IsString(it) && it->valuestring[0] &&
                                               strlen(it->valuestring) <= FOOD_MAX_BYTES;
    if (!ok) {
        kt_http_invalid(r, "body", "foods", foods ? "must be a list of 1 to 50 non-empty strings of at most 200 bytes"
                                                  : "field required",
                        foods ? "value_error" : "value_error.missing");
        goto out;
    }
    const cJSON *nut = cJSON_GetObjectItemCaseSensitive(body, "estimated_nutrients");
    if (nut && !cJSON_IsNull(nut)) {
        ok = cJSON_IsObject(nut) && cJSON_GetArraySize(nut) <= NUTRIENT_KEYS_MAX;
        if (ok) cJSON_ArrayForEach(it, nut) ok &= strlen(it->string) <= 64 && cJSON_IsNumber(it) &&
                                                 isfinite(it->valuedouble) && it->valuedouble >= 0;
        if (!ok) {
            kt_http_invalid(r, "body", "estimated_nutrients",
                            "must be an object of at most 50 {name: number >= 0} entries, or null", "value_error");
            goto out;
        }
        nut_txt = cJSON_PrintUnformatted(nut);
    }
    foods_txt = cJSON_PrintUnformatted(foods);
    cJSON *row = NULL;
    kt_err err = {0};
    if (!foods_txt || (nut && !cJSON_IsNull(nut) && !nut_txt)) kt_http_error(r, 500, "Internal Server Error");
    else if (kt_db_food_log_add(kt_http_db(r), r->user_id, date, meal, foods_txt, nut_txt, kt_time_now_us(), &row, &err))
        kt_http_internal(r, &err);
    else kt_http_json(r, 200, row);
out:
    cJSON_free(foods_txt);
    cJSON_free(nut_txt);
    cJSON_Delete(body);
}

void kt_h_diet_progress(kt_http_req *r) {
    kt_diet_obs obs[KT_DIET_HISTORY_MAX];
    int n = load_history(r, obs);
    if (n < 0) return;
    kt_hair_analysis ha;
    kt_err err = {0};
    if (kt_diet_analyze(obs, n, &ha, &err)) {
        kt_http_internal(r, &err);
        return;
    }
    char since[16];
    kt_time_format_date(kt_time_now_us() - 30 * KT_US_PER_DAY, since, sizeof since);
    cJSON *rows = NULL;
    if (kt_db_lifestyle_since(kt_http_db(r), r->user_id, since, &rows, &err)) {
        kt_http_internal(r, &err);
        return;
    }
    double stress = 0, sleep = 0;
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, rows) {
        stress += cJSON_GetObjectItemCaseSensitive(it, "stress_level")->valuedouble;
        sleep += cJSON_GetObjectItemCaseSensitive(it, "sleep_hours")->valuedouble;
        k++;
    }
    cJSON_Delete(rows);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "hair_analysis", kt_diet_hair_analysis_to_json(&ha));
    cJSON *lc = cJSON_AddObjectToObject(o, "lifestyle_correlations");
    if (k) {
        cJSON_AddNumberToObject(lc, "avg_stress_level", kt_round3(stress / k));
        cJSON_AddNumberToObject(lc, "avg_sleep_hours", kt_round3(sleep / k));
    } else {
        cJSON_AddNullToObject(lc, "avg_stress_level");
        cJSON_AddNullToObject(lc, "avg_sleep_hours");
    }
    /* Entries in the last 30 days per day, at most 1 (one entry a day is fully consistent). */
    cJSON_AddNumberToObject(lc, "lifestyle_consistency", kt_round3(fmin(1.0, k / 30.0)));
    cJSON_AddNumberToObject(lc, "entries", k);
    cJSON_AddStringToObject(o, "recommendations_status", ha.trend == KT_TREND_WORSENING ? "needs_adjustment" : "active");
    kt_http_json(r, 200, o);
}
