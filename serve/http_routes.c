/* Account, history, health, metrics and static-page handlers. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "kt_build_info.h"
#include "serve/assets.h"
#include "serve/http_internal.h"
#include "serve/timeutil.h"

#define NAME_MAX_BYTES 100
#define EMAIL_MAX_BYTES 254
#define PASSWORD_MIN_BYTES 8
#define PASSWORD_MAX_BYTES 256

/* A pragmatic address check (pydantic's EmailStr refuses the same shapes): local@domain.tld,
 * printable ASCII or UTF-8, no spaces, one '@', a dot inside the domain. */
static int valid_email(const char *e) {
    const char *at = strchr(e, '@');
    if (!at || at == e || strchr(at + 1, '@') || at - e > 64) return 0;
    for (const char *p = e; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '<' || *p == '>' || *p == ',') return 0;
    const char *dom = at + 1, *dot = strrchr(dom, '.');
    return dot && dot != dom && dot[1] && dom[strlen(dom) - 1] != '.' && !strstr(dom, "..");
}

static const char *str_field(kt_http_req *r, const cJSON *body, const char *name) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!f || cJSON_IsNull(f)) {
        kt_http_invalid(r, "body", name, "field required", "value_error.missing");
        return NULL;
    }
    if (!cJSON_IsString(f)) {
        kt_http_invalid(r, "body", name, "str type expected", "type_error.str");
        return NULL;
    }
    return f->valuestring;
}

static cJSON *user_json(const kt_db_user *u) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)u->id);
    cJSON_AddStringToObject(o, "name", u->name);
    cJSON_AddStringToObject(o, "email", u->email);
    cJSON_AddStringToObject(o, "created_at", u->created_at);
    return o;
}

void kt_h_register(kt_http_req *r) {
    cJSON *body = kt_http_body_object(r);
    if (!body) return;
    const char *name = str_field(r, body, "name"), *email = name ? str_field(r, body, "email") : NULL;
    const char *password = email ? str_field(r, body, "password") : NULL;
    char trimmed[NAME_MAX_BYTES + 1];
    if (!password) goto out;
    while (isspace((unsigned char)*name)) name++;
    size_t nl = strlen(name);
    while (nl && isspace((unsigned char)name[nl - 1])) nl--;
    if (nl == 0 || nl > NAME_MAX_BYTES) {
        kt_http_invalid(r, "body", "name", "name must have 1 to 100 characters", "value_error.any_str");
        goto out;
    }
    memcpy(trimmed, name, nl);
    trimmed[nl] = '\0';
    if (strlen(email) > EMAIL_MAX_BYTES || !valid_email(email)) {
        kt_http_invalid(r, "body", "email", "value is not a valid email address", "value_error.email");
        goto out;
    }
    size_t pl = strlen(password);
    if (pl < PASSWORD_MIN_BYTES || pl > PASSWORD_MAX_BYTES) {
        kt_http_invalid(r, "body", "password", "password must have 8 to 256 characters", "value_error.any_str");
        goto out;
    }
    kt_db *db = kt_http_db(r);
    kt_err err = {0};
    kt_db_user u;
    if (kt_db_user_by_email(db, email, &u, &err) == KT_OK) { /* skip the costly hash for a known email */
        kt_http_error(r, 400, "Email already registered");
        goto out;
    }
    char hash[KT_AUTH_HASH_MAX];
    if (kt_auth_hash_password(password, hash, &err)) {
        kt_http_internal(r, &err);
        goto out;
    }
    kt_status st = kt_db_user_create(db, trimmed, email, hash, kt_time_now_us(), &u, &err);
    if (st == KT_ERR_STATE) kt_http_error(r, 400, "Email already registered"); /* lost a race */
    else if (st) kt_http_internal(r, &err);
    else kt_http_json(r, 200, user_json(&u));
out:
    cJSON_Delete(body);
}

void kt_h_token(kt_http_req *r) {
    if (r->field_too_long) {
        kt_http_invalid(r, "body", r->has_username && strlen(r->username) >= KT_FORM_FIELD_MAX - 1 ? "username" : "password",
                        "value too long", "value_error.any_str.max_length");
        return;
    }
    if (!r->has_username) {
        kt_http_invalid(r, "body", "username", "field required", "value_error.missing");
        return;
    }
    if (!r->has_password) {
        kt_http_invalid(r, "body", "password", "field required", "value_error.missing");
        return;
    }
    kt_db *db = kt_http_db(r);
    kt_err err = {0};
    kt_db_user u;
    kt_status st = kt_db_user_by_email(db, r->username, &u, &err);
    if (st && st != KT_ERR_NOTFOUND) {
        kt_http_internal(r, &err);
        return;
    }
    if (!kt_auth_verify_password(st ? NULL : u.password_hash, r->password)) {
        kt_http_error(r, 401, "Invalid credentials");
        return;
    }
    char tok[KT_AUTH_TOKEN_MAX];
    if (kt_auth_token_make(r->srv->key, u.id, kt_time_now_us() / 1000000 + r->srv->cfg.token_ttl_s, tok, &err)) {
        kt_http_internal(r, &err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "access_token", tok);
    cJSON_AddStringToObject(o, "token_type", "bearer");
    kt_http_json(r, 200, o);
}

/* Parses an optional positive integer query argument in [lo, hi]; answers 422 and returns -1 if bad. */
static long query_int(kt_http_req *r, const char *name, long lo, long hi, long dflt) {
    const char *v = kt_http_query(r, name);
    if (!v) return dflt;
    char *end;
    long n = strtol(v, &end, 10);
    if (!*v || *end || n < lo || n > hi) {
        char msg[96];
        snprintf(msg, sizeof msg, "must be an integer from %ld to %ld", lo, hi);
        kt_http_invalid(r, "query", name, msg, "value_error.number");
        return -1;
    }
    return n;
}

void kt_h_history(kt_http_req *r) {
    long limit = query_int(r, "limit", 1, 100000, 0);
    if (limit < 0) return;
    char *text = NULL;
    size_t len = 0;
    kt_err err = {0};
    if (kt_db_predictions_list_text(kt_http_db(r), r->user_id, (int)limit, &text, &len, &err)) {
        kt_http_internal(r, &err);
        return;
    }
    free(r->resp);
    r->resp = text;
    r->resp_len = len;
    r->status = 200;
    r->content_type = "application/json";
}

void kt_h_history_item(kt_http_req *r) {
    cJSON *row = NULL;
    kt_err err = {0};
    kt_status st = kt_db_prediction_get(kt_http_db(r), r->user_id, r->path_id, &row, &err);
    /* Another user's id answers exactly like a missing one: ids reveal nothing. */
    if (st == KT_ERR_NOTFOUND) kt_http_error(r, 404, "Prediction not found");
    else if (st) kt_http_internal(r, &err);
    else kt_http_json(r, 200, row);
}

void kt_h_health(kt_http_req *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON_AddStringToObject(o, "version", KT_VERSION);
    cJSON_AddBoolToObject(o, "model_loaded", kt_http_model_loaded(r->srv));
    cJSON_AddItemToObject(o, "classes", kt_http_model_classes(r->srv));
    const char *dev = kt_http_model_device(r->srv);
    if (dev) cJSON_AddStringToObject(o, "device", dev);
    cJSON_AddNumberToObject(o, "schema_version", KT_DB_SCHEMA_VERSION);
    kt_http_json(r, 200, o);
}

void kt_h_metrics(kt_http_req *r) {
    size_t len = 0;
    char *text = kt_metrics_render(r->srv->metrics, &len);
    if (!text) {
        kt_http_error(r, 500, "Internal Server Error");
        return;
    }
    free(r->resp);
    r->resp = text;
    r->resp_len = len;
    r->status = 200;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

void kt_h_static(kt_http_req *r) {
    static const struct {
        const char *path, *file, *type;
    } files[] = {{"/", "index.html", "text/html; charset=utf-8"},
                 {"/index.html", "index.html", "text/html; charset=utf-8"},
                 {"/app.js", "app.js", "text/javascript; charset=utf-8"},
                 {"/style.css", "style.css", "text/css; charset=utf-8"}};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (strcmp(files[i].path, r->route->pattern)) continue;
        /* The file name comes from this table, never from the request. */
        if (r->srv->cfg.web_dir) {
            char path[4096], *data = NULL;
            size_t len = 0;
            kt_err err = {0};
            snprintf(path, sizeof path, "%s/%s", r->srv->cfg.web_dir, files[i].file);
            if (kt_file_read(path, &data, &len, &err)) {
                kt_http_internal(r, &err);
                return;
            }
            kt_http_raw(r, 200, files[i].type, data, len);
            free(data);
            return;
        }
        char name[64];
        snprintf(name, sizeof name, "web/%s", files[i].file);
        const kt_asset *a = kt_asset_find(name);
        if (!a) {
            kt_http_error(r, 404, "Not Found");
            return;
        }
        kt_http_raw(r, 200, files[i].type, a->data, a->len);
        return;
    }
    kt_http_error(r, 404, "Not Found");
}
