/* Opening the store: pragmas, schema migrations, the statement catalogue, the connection pool. */
#include "serve/db.h"

#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/db_internal.h"

/* ---- migrations: append only; each runs in one transaction and bumps schema_version ------------ */
static const char *const migrations[KT_DB_SCHEMA_VERSION] = {
    /* 1: the report's tables (seeds/000 section 7.3). Lists and nested objects are JSON text. */
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  name TEXT NOT NULL,"
    "  email TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  hashed_password TEXT NOT NULL,"
    "  created_at TEXT NOT NULL);"
    "CREATE TABLE predictions ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  image_path TEXT,"
    "  predicted_stage TEXT NOT NULL,"
    "  confidence REAL NOT NULL,"
    "  created_at TEXT NOT NULL);"
    "CREATE TABLE diet_assessments ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  age INTEGER NOT NULL, gender TEXT NOT NULL, weight REAL NOT NULL, height REAL NOT NULL,"
    "  activity_level TEXT NOT NULL,"
    "  dietary_restrictions TEXT,"
    "  current_diet_pattern TEXT,"
    "  health_conditions TEXT,"
    "  medications TEXT,"
    "  assessment_date TEXT NOT NULL);"
    "CREATE TABLE diet_recommendations ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  hair_stage_at_time TEXT,"
    "  recommended_nutrients TEXT NOT NULL,"
    "  meal_plan TEXT NOT NULL,"
    "  supplements TEXT NOT NULL,"
    "  foods_to_avoid TEXT NOT NULL,"
    "  confidence_score REAL NOT NULL,"
    "  reasoning TEXT NOT NULL,"
    "  created_at TEXT NOT NULL,"
    "  is_active INTEGER NOT NULL DEFAULT 1);"
    "CREATE TABLE lifestyle_entries ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  date TEXT NOT NULL,"
    "  stress_level INTEGER NOT NULL, sleep_hours REAL NOT NULL, exercise_minutes INTEGER NOT NULL,"
    "  water_intake REAL NOT NULL,"
    "  notes TEXT,"
    "  created_at TEXT NOT NULL);"
    "CREATE TABLE food_logs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  date TEXT NOT NULL,"
    "  meal_type TEXT NOT NULL,"
    "  foods TEXT NOT NULL,"
    "  estimated_nutrients TEXT,"
    "  logged_at TEXT NOT NULL);",
    /* 2: what the C server adds: per-class probabilities, the engine's extra outputs (hair analysis,
     * UL warnings, next review), the token-signing key, and per-user indexes. */
    "ALTER TABLE predictions ADD COLUMN probabilities TEXT;"
    "ALTER TABLE diet_recommendations ADD COLUMN hair_analysis TEXT;"
    "ALTER TABLE diet_recommendations ADD COLUMN warnings TEXT;"
    "ALTER TABLE diet_recommendations ADD COLUMN next_review_date TEXT;"
    "CREATE TABLE server_secret (id INTEGER PRIMARY KEY CHECK (id = 1), key BLOB NOT NULL);"
    "CREATE INDEX predictions_user ON predictions(user_id, created_at);"
    "CREATE INDEX assessments_user ON diet_assessments(user_id, id);"
    "CREATE INDEX recommendations_user ON diet_recommendations(user_id, is_active);"
    "CREATE INDEX lifestyle_user ON lifestyle_entries(user_id, date);"
    "CREATE INDEX food_logs_user ON food_logs(user_id, date);",
};

/* ---- the statement catalogue ------------------------------------------------------------------ */
#define PRED_COLS "id, user_id, image_path, predicted_stage, confidence, probabilities, created_at"
#define ASSESS_COLS                                                                                        \
    "id, user_id, age, gender, weight, height, activity_level, dietary_restrictions, current_diet_pattern, " \
    "health_conditions, medications, assessment_date"
#define REC_COLS                                                                                            \
    "id, user_id, hair_stage_at_time, recommended_nutrients, meal_plan, supplements, foods_to_avoid, "       \
    "confidence_score, reasoning, created_at, is_active, hair_analysis, warnings, next_review_date"
#define LIFE_COLS "id, user_id, date, stress_level, sleep_hours, exercise_minutes, water_intake, notes, created_at"
#define FOOD_COLS "id, user_id, date, meal_type, foods, estimated_nutrients, logged_at"

static const char *const sql_text[KT_SQL_N] = {
    [KT_SQL_BEGIN] = "BEGIN IMMEDIATE",
    [KT_SQL_COMMIT] = "COMMIT",
    [KT_SQL_ROLLBACK] = "ROLLBACK",
    [KT_SQL_USER_INSERT] = "INSERT INTO users(name, email, hashed_password, created_at) VALUES (?1, ?2, ?3, ?4)",
    [KT_SQL_USER_BY_EMAIL] = "SELECT id, name, email, hashed_password, created_at FROM users WHERE email = ?1",
    [KT_SQL_USER_BY_ID] = "SELECT id, name, email, hashed_password, created_at FROM users WHERE id = ?1",
    [KT_SQL_PRED_INSERT] = "INSERT INTO predictions(user_id, image_path, predicted_stage, confidence, probabilities, "
                           "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [KT_SQL_PRED_BY_ID] = "SELECT " PRED_COLS " FROM predictions WHERE id = ?1",
    [KT_SQL_PRED_BY_ID_USER] = "SELECT " PRED_COLS " FROM predictions WHERE id = ?1 AND user_id = ?2",
    [KT_SQL_PRED_BY_PATH] = "SELECT 1 FROM predictions WHERE image_path = ?1 LIMIT 1",
    [KT_SQL_PRED_LIST] = "SELECT " PRED_COLS " FROM predictions WHERE user_id = ?1 "
                         "ORDER BY created_at DESC, id DESC LIMIT ?2",
    [KT_SQL_PRED_STAGES] = "SELECT created_at, predicted_stage FROM predictions WHERE user_id = ?1 "
                           "ORDER BY created_at DESC, id DESC LIMIT ?2",
    [KT_SQL_ASSESS_INSERT] = "INSERT INTO diet_assessments(user_id, age, gender, weight, height, activity_level, "
                             "dietary_restrictions, current_diet_pattern, health_conditions, medications, "
                             "assessment_date) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [KT_SQL_ASSESS_BY_ID] = "SELECT " ASSESS_COLS " FROM diet_assessments WHERE id = ?1",
    [KT_SQL_ASSESS_LATEST] = "SELECT " ASSESS_COLS " FROM diet_assessments WHERE user_id = ?1 ORDER BY id DESC LIMIT 1",
    [KT_SQL_REC_ACTIVE] = "SELECT " REC_COLS " FROM diet_recommendations WHERE user_id = ?1 AND is_active = 1 "
                          "ORDER BY id DESC LIMIT 1",
    [KT_SQL_REC_DEACTIVATE] = "UPDATE diet_recommendations SET is_active = 0 WHERE user_id = ?1 AND is_active = 1",
    [KT_SQL_REC_INSERT] = "INSERT INTO diet_recommendations(user_id, hair_stage_at_time, recommended_nutrients, "
                          "meal_plan, supplements, foods_to_avoid, confidence_score, reasoning, created_at, is_active, "
                          "hair_analysis, warnings, next_review_date) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, ?11, ?12)",
    [KT_SQL_REC_BY_ID] = "SELECT " REC_COLS " FROM diet_recommendations WHERE id = ?1",
    [KT_SQL_LIFE_INSERT] = "INSERT INTO lifestyle_entries(user_id, date, stress_level, sleep_hours, exercise_minutes, "
                           "water_intake, notes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [KT_SQL_LIFE_BY_ID] = "SELECT " LIFE_COLS " FROM lifestyle_entries WHERE id = ?1",
    [KT_SQL_LIFE_SINCE] = "SELECT " LIFE_COLS " FROM lifestyle_entries WHERE user_id = ?1 AND date >= ?2 "
                          "ORDER BY date DESC, id DESC",
    [KT_SQL_FOOD_INSERT] = "INSERT INTO food_logs(user_id, date, meal_type, foods, estimated_nutrients, logged_at) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [KT_SQL_FOOD_BY_ID] = "SELECT " FOOD_COLS " FROM food_logs WHERE id = ?1",
    [KT_SQL_SECRET_INSERT] = "INSERT OR IGNORE INTO server_secret(id, key) VALUES (1, ?1)",
    [KT_SQL_SECRET_GET] = "SELECT key FROM server_secret WHERE id = 1",
    [KT_SQL_COUNT_USERS] = "SELECT count(*) FROM users",
    [KT_SQL_COUNT_PREDICTIONS] = "SELECT count(*) FROM predictions",
    [KT_SQL_COUNT_ASSESSMENTS] = "SELECT count(*) FROM diet_assessments",
    [KT_SQL_COUNT_RECOMMENDATIONS] = "SELECT count(*) FROM diet_recommendations",
    [KT_SQL_COUNT_LIFESTYLE] = "SELECT count(*) FROM lifestyle_entries",
    [KT_SQL_COUNT_FOOD_LOGS] = "SELECT count(*) FROM food_logs",
};

kt_status kt_db_fail(kt_db *db, kt_err *err, const char *what) {
    return kt_err_set(err, KT_ERR_IO, "%s: %s: %s", db->path, what, sqlite3_errmsg(db->conn));
}

sqlite3_stmt *kt_db_stmt(kt_db *db, kt_sql_id id, kt_err *err) {
    if (!db->stmts[id]) {
        if (sqlite3_prepare_v3(db->conn, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT, &db->stmts[id], NULL) !=
            SQLITE_OK) {
            kt_db_fail(db, err, "preparing a statement");
            db->stmts[id] = NULL;
            return NULL;
        }
    } else {
        sqlite3_reset(db->stmts[id]);
        sqlite3_clear_bindings(db->stmts[id]);
    }
    return db->stmts[id];
}

static kt_status run_simple(kt_db *db, kt_sql_id id, kt_err *err) {
    sqlite3_stmt *st = kt_db_stmt(db, id, err);
    if (!st) return err ? err->code : KT_ERR_IO;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return kt_db_fail(db, err, sql_text[id]);
    return KT_OK;
}

kt_status kt_db_begin(kt_db *db, kt_err *err) { return run_simple(db, KT_SQL_BEGIN, err); }
kt_status kt_db_commit(kt_db *db, kt_err *err) {
    kt_status st = run_simple(db, KT_SQL_COMMIT, err);
    if (st) kt_db_rollback(db);
    return st;
}
void kt_db_rollback(kt_db *db) {
    if (!sqlite3_get_autocommit(db->conn)) (void)run_simple(db, KT_SQL_ROLLBACK, NULL);
}

cJSON *kt_db_row_json(sqlite3_stmt *st, const char *const *json_cols) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int nc = sqlite3_column_count(st);
    for (int c = 0; c < nc; c++) {
        const char *name = sqlite3_column_name(st, c);
        cJSON *v = NULL;
        switch (sqlite3_column_type(st, c)) {
        case SQLITE_INTEGER:
            if (!strcmp(name, "is_active")) v = cJSON_CreateBool(sqlite3_column_int(st, c));
            else v = cJSON_CreateNumber((double)sqlite3_column_int64(st, c));
            break;
        case SQLITE_FLOAT: v = cJSON_CreateNumber(sqlite3_column_double(st, c)); break;
        case SQLITE_NULL: v = cJSON_CreateNull(); break;
        default: {
            const char *text = (const char *)sqlite3_column_text(st, c);
            int is_json = 0;
            for (int j = 0; json_cols && json_cols[j]; j++) is_json |= !strcmp(json_cols[j], name);
            if (is_json) v = cJSON_Parse(text ? text : "null");
            if (!v) v = cJSON_CreateString(text ? text : "");
        }
        }
        cJSON_AddItemToObject(o, name, v);
    }
    return o;
}

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} tbuf;

static void tb_put(tbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void tb_str(tbuf *b, const char *s) {
    static const char hex[] = "0123456789abcdef";
    tb_put(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        tb_put(b, run, (size_t)(s - run));
        char esc[7] = {'\\', (char)c, 0};
        size_t n = 2;
        switch (c) {
        case '"': case '\\': break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        tb_put(b, esc, n);
        run = s + 1;
    }
    tb_put(b, run, (size_t)(s - run));
    tb_put(b, "\"", 1);
}

/* Shortest of %.15g / %.17g that reads back exactly (what cJSON prints). */
static void tb_num(tbuf *b, double v) {
    char num[32];
    if (!isfinite(v)) {
        tb_put(b, "null", 4);
        return;
    }
    int n = snprintf(num, sizeof num, "%.15g", v);
    if (strtod(num, NULL) != v) n = snprintf(num, sizeof num, "%.17g", v);
    tb_put(b, num, (size_t)n);
}

kt_status kt_db_rows_text(kt_db *db, sqlite3_stmt *st, const char *const *json_cols, char **text, size_t *len,
                          kt_err *err) {
    tbuf b = {0};
    int rc, first = 1, nc = sqlite3_column_count(st);
    int is_json[64] = {0};
    for (int c = 0; c < nc && c < 64; c++)
        for (int j = 0; json_cols && json_cols[j]; j++) is_json[c] |= !strcmp(json_cols[j], sqlite3_column_name(st, c));
    tb_put(&b, "[", 1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        tb_put(&b, first ? "{" : ",{", first ? 1 : 2);
        first = 0;
        for (int c = 0; c < nc; c++) {
            const char *name = sqlite3_column_name(st, c);
            if (c) tb_put(&b, ",", 1);
            tb_str(&b, name);
            tb_put(&b, ":", 1);
            switch (sqlite3_column_type(st, c)) {
            case SQLITE_INTEGER:
                if (!strcmp(name, "is_active")) {
                    if (sqlite3_column_int(st, c)) tb_put(&b, "true", 4);
                    else tb_put(&b, "false", 5);
                } else {
                    char num[24];
                    int n = snprintf(num, sizeof num, "%lld", (long long)sqlite3_column_int64(st, c));
                    tb_put(&b, num, (size_t)n);
                }
                break;
            case SQLITE_FLOAT: tb_num(&b, sqlite3_column_double(st, c)); break;
            case SQLITE_NULL: tb_put(&b, "null", 4); break;
            default: {
                const char *t = (const char *)sqlite3_column_text(st, c);
                if (c < 64 && is_json[c] && t && (t[0] == '{' || t[0] == '[')) tb_put(&b, t, strlen(t));
                else tb_str(&b, t ? t : "");
            }
            }
        }
        tb_put(&b, "}", 1);
    }
    tb_put(&b, "]", 1);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE || b.oom) {
        free(b.p);
        return b.oom ? kt_err_set(err, KT_ERR_NOMEM, "no memory for rows") : kt_db_fail(db, err, "listing rows");
    }
    *text = b.p;
    *len = b.len;
    return KT_OK;
}

/* ---- open and migrate ------------------------------------------------------------------------- */
static int exec(kt_db *db, const char *sql, kt_err *err, const char *what) {
    char *msg = NULL;
    if (sqlite3_exec(db->conn, sql, NULL, NULL, &msg) != SQLITE_OK) {
        kt_err_set(err, KT_ERR_IO, "%s: %s: %s", db->path, what, msg ? msg : sqlite3_errmsg(db->conn));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int read_version(kt_db *db) {
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(db->conn, "SELECT max(version) FROM schema_version", -1, &st, NULL) != SQLITE_OK) return -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_type(st, 0) == SQLITE_NULL ? 0 : sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

int kt_db_schema_version(kt_db *db) { return read_version(db); }

static kt_status migrate(kt_db *db, int target, kt_err *err) {
    if (exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
             err, "creating schema_version"))
        return KT_ERR_IO;
    for (;;) {
        /* BEGIN IMMEDIATE first, so two processes opening one file cannot both apply a step. */
        if (exec(db, "BEGIN IMMEDIATE", err, "starting a migration")) return KT_ERR_IO;
        int v = read_version(db);
        if (v < 0) {
            kt_db_rollback(db);
            return kt_db_fail(db, err, "reading schema_version");
        }
        if (v > KT_DB_SCHEMA_VERSION) {
            kt_db_rollback(db);
            return kt_err_set(err, KT_ERR_UNSUPPORTED,
                              "%s has schema version %d, newer than this program's %d: use a newer keratrack",
                              db->path, v, KT_DB_SCHEMA_VERSION);
        }
        if (v >= target) {
            kt_db_rollback(db);
            return KT_OK;
        }
        char what[64];
        snprintf(what, sizeof what, "applying migration %d", v + 1);
        sqlite3_stmt *st = NULL;
        if (exec(db, migrations[v], err, what)) {
            kt_db_rollback(db);
            return KT_ERR_IO;
        }
        if (sqlite3_prepare_v2(db->conn,
                               "INSERT INTO schema_version(version, applied_at) "
                               "VALUES (?1, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                               -1, &st, NULL) != SQLITE_OK) {
            kt_db_fail(db, err, what);
            kt_db_rollback(db);
            return KT_ERR_IO;
        }
        sqlite3_bind_int(st, 1, v + 1);
        int rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
            kt_db_fail(db, err, what);
            kt_db_rollback(db);
            return KT_ERR_IO;
        }
        if (exec(db, "COMMIT", err, what)) {
            kt_db_rollback(db);
            return KT_ERR_IO;
        }
    }
}

kt_status kt_db_open_at_version(kt_db **out, const char *path, int target_version, kt_err *err) {
    *out = NULL;
    kt_db *db = calloc(1, sizeof *db);
    if (!db) return kt_err_set(err, KT_ERR_NOMEM, "no memory for a database connection");
    snprintf(db->path, sizeof db->path, "%s", path);
    int rc = sqlite3_open_v2(path, &db->conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        kt_err_set(err, KT_ERR_IO, "cannot open database %s: %s", path,
                   db->conn ? sqlite3_errmsg(db->conn) : sqlite3_errstr(rc));
        kt_db_close(db);
        return KT_ERR_IO;
    }
    sqlite3_busy_timeout(db->conn, 10000);
    sqlite3_extended_result_codes(db->conn, 1);
    /* WAL: readers never block the writer; synchronous=FULL: a committed row survives power loss. */
    if (exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;", err, "setting pragmas") ||
        migrate(db, target_version, err)) {
        kt_db_close(db);
        return err ? err->code : KT_ERR_IO;
    }
    *out = db;
    return KT_OK;
}

kt_status kt_db_open(kt_db **out, const char *path, kt_err *err) {
    return kt_db_open_at_version(out, path, KT_DB_SCHEMA_VERSION, err);
}

void kt_db_close(kt_db *db) {
    if (!db) return;
    for (int i = 0; i < KT_SQL_N; i++) sqlite3_finalize(db->stmts[i]);
    sqlite3_close(db->conn);
    free(db);
}

/* ---- secret and counts ------------------------------------------------------------------------ */
kt_status kt_db_secret(kt_db *db, unsigned char key[32], kt_err *err) {
    unsigned char fresh[32];
    randombytes_buf(fresh, sizeof fresh);
    kt_status st = kt_db_begin(db, err);
    if (st) return st;
    sqlite3_stmt *s = kt_db_stmt(db, KT_SQL_SECRET_INSERT, err);
    if (!s) goto fail;
    sqlite3_bind_blob(s, 1, fresh, sizeof fresh, SQLITE_TRANSIENT);
    if (sqlite3_step(s) != SQLITE_DONE) {
        kt_db_fail(db, err, "storing the server secret");
        goto fail;
    }
    sqlite3_reset(s);
    if (!(s = kt_db_stmt(db, KT_SQL_SECRET_GET, err))) goto fail;
    if (sqlite3_step(s) != SQLITE_ROW || sqlite3_column_bytes(s, 0) != 32) {
        kt_err_set(err, KT_ERR_FORMAT, "%s: server_secret.key is missing or not 32 bytes", db->path);
        goto fail;
    }
    memcpy(key, sqlite3_column_blob(s, 0), 32);
    sqlite3_reset(s);
    sodium_memzero(fresh, sizeof fresh);
    return kt_db_commit(db, err);
fail:
    if (s) sqlite3_reset(s);
    kt_db_rollback(db);
    sodium_memzero(fresh, sizeof fresh);
    return err ? err->code : KT_ERR_IO;
}

kt_status kt_db_count(kt_db *db, const char *table, int64_t *n, kt_err *err) {
    static const struct {
        const char *table;
        kt_sql_id id;
    } tables[] = {{"users", KT_SQL_COUNT_USERS},
                  {"predictions", KT_SQL_COUNT_PREDICTIONS},
                  {"diet_assessments", KT_SQL_COUNT_ASSESSMENTS},
                  {"diet_recommendations", KT_SQL_COUNT_RECOMMENDATIONS},
                  {"lifestyle_entries", KT_SQL_COUNT_LIFESTYLE},
                  {"food_logs", KT_SQL_COUNT_FOOD_LOGS}};
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        if (strcmp(table, tables[i].table)) continue;
        sqlite3_stmt *s = kt_db_stmt(db, tables[i].id, err);
        if (!s) return err ? err->code : KT_ERR_IO;
        if (sqlite3_step(s) != SQLITE_ROW) return kt_db_fail(db, err, "counting rows");
        *n = sqlite3_column_int64(s, 0);
        sqlite3_reset(s);
        return KT_OK;
    }
    return kt_err_set(err, KT_ERR_ARG, "unknown table '%s'", table);
}

/* ---- pool ------------------------------------------------------------------------------------ */
struct kt_db_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n, n_free;
    kt_db **all;  /* (n) */
    kt_db **free; /* (n) stack of idle connections */
};

kt_status kt_db_pool_open(kt_db_pool **out, const char *path, int n_conn, kt_err *err) {
    *out = NULL;
    if (n_conn < 1) return kt_err_set(err, KT_ERR_ARG, "a database pool needs at least 1 connection");
    kt_db_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->all = calloc((size_t)n_conn, sizeof *p->all)) || !(p->free = calloc((size_t)n_conn, sizeof *p->free))) {
        if (p) free(p->all);
        free(p);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for the database pool");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int i = 0; i < n_conn; i++) {
        kt_status st = kt_db_open(&p->all[i], path, err);
        if (st) {
            kt_db_pool_close(p);
            return st;
        }
        p->n++;
        p->free[p->n_free++] = p->all[i];
    }
    *out = p;
    return KT_OK;
}

kt_db *kt_db_pool_acquire(kt_db_pool *p) {
    pthread_mutex_lock(&p->mu);
    while (p->n_free == 0) pthread_cond_wait(&p->cv, &p->mu);
    kt_db *db = p->free[--p->n_free];
    pthread_mutex_unlock(&p->mu);
    return db;
}

void kt_db_pool_release(kt_db_pool *p, kt_db *db) {
    if (!db) return;
    kt_db_rollback(db); /* never hand on a connection inside a transaction */
    pthread_mutex_lock(&p->mu);
    p->free[p->n_free++] = db;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void kt_db_pool_close(kt_db_pool *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) kt_db_close(p->all[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->all);
    free(p->free);
    free(p);
}
