/* The server's SQLite store: the report's tables (users, predictions, diet_assessments,
 * diet_recommendations, lifestyle_entries, food_logs) with versioned migrations, WAL, prepared statements. */
#ifndef KT_SERVE_DB_H
#define KT_SERVE_DB_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "base/status.h"

/* One connection and its prepared statements. Not thread-safe: a thread uses its own (kt_db_pool).
 * Every write runs in its own BEGIN IMMEDIATE transaction; SQL never contains user text (all values
 * are bound parameters). */
typedef struct kt_db kt_db;

#define KT_DB_SCHEMA_VERSION 2 /* the version this program migrates to */

/* Opens (creating if needed) path, enables WAL, foreign keys and a busy timeout, and applies any
 * missing migrations, each in one transaction. A database from a newer program is refused. */
kt_status kt_db_open(kt_db **out, const char *path, kt_err *err);
/* For tests: opens without migrating past target_version (0 = none at all). */
kt_status kt_db_open_at_version(kt_db **out, const char *path, int target_version, kt_err *err);
void kt_db_close(kt_db *db);
int kt_db_schema_version(kt_db *db); /* -1 on error */

/* A fixed set of connections shared by the server's worker threads. */
typedef struct kt_db_pool kt_db_pool;
kt_status kt_db_pool_open(kt_db_pool **out, const char *path, int n_conn, kt_err *err);
kt_db *kt_db_pool_acquire(kt_db_pool *p); /* blocks until a connection is free */
void kt_db_pool_release(kt_db_pool *p, kt_db *db);
void kt_db_pool_close(kt_db_pool *p);

/* ---- users ----------------------------------------------------------------------------------- */
typedef struct kt_db_user {
    int64_t id;
    char name[256];
    char email[256];
    char password_hash[256]; /* argon2id encoded string */
    char created_at[40];     /* ISO 8601 UTC */
} kt_db_user;

/* KT_ERR_STATE when the email is taken (emails compare case-insensitively). */
kt_status kt_db_user_create(kt_db *db, const char *name, const char *email, const char *password_hash, int64_t now_us,
                            kt_db_user *out, kt_err *err);
kt_status kt_db_user_by_email(kt_db *db, const char *email, kt_db_user *out, kt_err *err); /* KT_ERR_NOTFOUND */
kt_status kt_db_user_by_id(kt_db *db, int64_t id, kt_db_user *out, kt_err *err);

/* ---- predictions ------------------------------------------------------------------------------ */
/* probabilities: JSON object text {class: p} or NULL; image_path may be NULL. *row gets the stored row
 * {id, user_id, image_path, predicted_stage, confidence, probabilities, created_at}. */
kt_status kt_db_prediction_add(kt_db *db, int64_t user_id, const char *image_path, const char *stage, double confidence,
                               const char *probabilities_json, int64_t now_us, cJSON **row, kt_err *err);
/* One of the user's predictions; KT_ERR_NOTFOUND when it does not exist or belongs to another user. */
kt_status kt_db_prediction_get(kt_db *db, int64_t user_id, int64_t id, cJSON **row, kt_err *err);
/* *known = 1 when a prediction row names image_path (an upload kept with --keep-uploads). */
kt_status kt_db_prediction_path_known(kt_db *db, const char *image_path, int *known, kt_err *err);
/* The user's predictions, newest first, at most limit (<= 0: all). */
kt_status kt_db_predictions_list(kt_db *db, int64_t user_id, int limit, cJSON **rows, kt_err *err);
/* The same list as JSON text, written without building a tree (GET /history); *json is malloc'd. */
kt_status kt_db_predictions_list_text(kt_db *db, int64_t user_id, int limit, char **json, size_t *len, kt_err *err);

typedef struct kt_db_stage_at {
    int64_t time_us;
    char stage[64];
} kt_db_stage_at;
/* The newest n_max predictions as (time, stage), newest first; *n gets how many. */
kt_status kt_db_prediction_stages(kt_db *db, int64_t user_id, kt_db_stage_at *out, int n_max, int *n, kt_err *err);

/* ---- diet assessments ------------------------------------------------------------------------ */
/* a: a validated POST /diet/assessment body. Stores it with assessment_date = the UTC date of now and,
 * in the same transaction, deactivates the user's active recommendation (it was made for the old one). */
kt_status kt_db_assessment_add(kt_db *db, int64_t user_id, const cJSON *a, int64_t now_us, cJSON **row, kt_err *err);
/* The newest assessment row (lists decoded back to arrays); KT_ERR_NOTFOUND if none. */
kt_status kt_db_assessment_latest(kt_db *db, int64_t user_id, cJSON **row, kt_err *err);

/* ---- diet recommendations -------------------------------------------------------------------- */
/* The active recommendation row; KT_ERR_NOTFOUND if none. */
kt_status kt_db_recommendation_active(kt_db *db, int64_t user_id, cJSON **row, kt_err *err);
/* In one transaction: deactivates the user's active rows and stores bundle (kt_diet_plan_to_json's
 * object) as the new active row, returned in *row. */
kt_status kt_db_recommendation_replace(kt_db *db, int64_t user_id, const cJSON *bundle, int64_t now_us, cJSON **row,
                                       kt_err *err);

/* ---- lifestyle and food logs ----------------------------------------------------------------- */
kt_status kt_db_lifestyle_add(kt_db *db, int64_t user_id, const char *date, int stress_level, double sleep_hours,
                              int exercise_minutes, double water_intake, const char *notes, int64_t now_us, cJSON **row,
                              kt_err *err);
/* Entries with date >= since_date ("YYYY-MM-DD"), newest first. */
kt_status kt_db_lifestyle_since(kt_db *db, int64_t user_id, const char *since_date, cJSON **rows, kt_err *err);
/* foods_json: JSON array text; nutrients_json: JSON object text or NULL. */
kt_status kt_db_food_log_add(kt_db *db, int64_t user_id, const char *date, const char *meal_type, const char *foods_json,
                             const char *nutrients_json, int64_t now_us, cJSON **row, kt_err *err);

/* ---- server secret --------------------------------------------------------------------------- */
/* The 32-byte token-signing key kept in the database, created (random) on first use. */
kt_status kt_db_secret(kt_db *db, unsigned char key[32], kt_err *err);

/* Row counts per table (for tests and /metrics); table must be one of the report's six. */
kt_status kt_db_count(kt_db *db, const char *table, int64_t *n, kt_err *err);

#endif
