/* Shared by serve/db.c and serve/db_rows.c only: the connection struct, the statement catalogue
 * (every SQL text the store runs, prepared once per connection) and transaction helpers. */
#ifndef KT_SERVE_DB_INTERNAL_H
#define KT_SERVE_DB_INTERNAL_H

#include <sqlite3.h>

#include "serve/db.h"

typedef enum {
    KT_SQL_BEGIN,
    KT_SQL_COMMIT,
    KT_SQL_ROLLBACK,
    KT_SQL_USER_INSERT,
    KT_SQL_USER_BY_EMAIL,
    KT_SQL_USER_BY_ID,
    KT_SQL_PRED_INSERT,
    KT_SQL_PRED_BY_ID,
    KT_SQL_PRED_BY_ID_USER,
    KT_SQL_PRED_LIST,
    KT_SQL_PRED_BY_PATH,
    KT_SQL_PRED_STAGES,
    KT_SQL_ASSESS_INSERT,
    KT_SQL_ASSESS_BY_ID,
    KT_SQL_ASSESS_LATEST,
    KT_SQL_REC_ACTIVE,
    KT_SQL_REC_DEACTIVATE,
    KT_SQL_REC_INSERT,
    KT_SQL_REC_BY_ID,
    KT_SQL_LIFE_INSERT,
    KT_SQL_LIFE_BY_ID,
    KT_SQL_LIFE_SINCE,
    KT_SQL_FOOD_INSERT,
    KT_SQL_FOOD_BY_ID,
    KT_SQL_SECRET_INSERT,
    KT_SQL_SECRET_GET,
    KT_SQL_COUNT_USERS,
    KT_SQL_COUNT_PREDICTIONS,
    KT_SQL_COUNT_ASSESSMENTS,
    KT_SQL_COUNT_RECOMMENDATIONS,
    KT_SQL_COUNT_LIFESTYLE,
    KT_SQL_COUNT_FOOD_LOGS,
    KT_SQL_N
} kt_sql_id;

struct kt_db {
    sqlite3 *conn;
    char path[1024];
    sqlite3_stmt *stmts[KT_SQL_N]; /* prepared on first use, reset after each use */
};

/* The prepared statement for id, reset and unbound; NULL with err set on failure. */
sqlite3_stmt *kt_db_stmt(kt_db *db, kt_sql_id id, kt_err *err);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK (rollback never fails loudly: it is the error path). */
kt_status kt_db_begin(kt_db *db, kt_err *err);
kt_status kt_db_commit(kt_db *db, kt_err *err);
void kt_db_rollback(kt_db *db);
/* Fills err from the connection's last error, prefixed with what was being done. */
kt_status kt_db_fail(kt_db *db, kt_err *err, const char *what);
/* The current row of st as a JSON object named by column: integers/reals as numbers, text as
 * strings, NULL as null; columns listed in json_cols (NULL-terminated) are parsed back from JSON
 * text, and "is_active" becomes a boolean. */
cJSON *kt_db_row_json(sqlite3_stmt *st, const char *const *json_cols);
/* The same rows written straight to JSON text (no tree: the hot path of list endpoints); every
 * remaining row of st as an array. JSON columns are copied verbatim (the store only ever writes
 * cJSON output there); *text is malloc'd. */
kt_status kt_db_rows_text(kt_db *db, sqlite3_stmt *st, const char *const *json_cols, char **text, size_t *len,
                          kt_err *err);

#endif
