/* Assessment validation, history CSV parsing and the recommendation bundle as JSON. */
#include "serve/diet_json.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serve/timeutil.h"

double kt_round3(double x) { return round(x * 1000.0) / 1000.0; }

/* ---- assessment ------------------------------------------------------------------------------ */
static kt_status bad(char *bad_field, const char *field, kt_err *err, const char *fmt, const char *detail) {
    if (bad_field) snprintf(bad_field, 32, "%s", field);
    return kt_err_set(err, KT_ERR_ARG, fmt, field, detail);
}

/* NULL when the key is absent or JSON null (both count as "not filled" for K). */
static const cJSON *field(const cJSON *obj, const char *name) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
    return f && !cJSON_IsNull(f) ? f : NULL;
}

static kt_status check_text_list(const cJSON *arr, const char *name, int max_items, size_t max_len,
                                 char *bad_field, kt_err *err) {
    if (!cJSON_IsArray(arr)) return bad(bad_field, name, err, "field '%s': %s", "must be a list of strings");
    if (cJSON_GetArraySize(arr) > max_items) {
        char d[64];
        snprintf(d, sizeof d, "at most %d items", max_items);
        return bad(bad_field, name, err, "field '%s': %s", d);
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsString(it)) return bad(bad_field, name, err, "field '%s': %s", "every item must be a string");
        if (strlen(it->valuestring) > max_len) {
            char d[64];
            snprintf(d, sizeof d, "items must be at most %zu bytes", max_len);
            return bad(bad_field, name, err, "field '%s': %s", d);
        }
    }
    return KT_OK;
}

kt_status kt_diet_assessment_parse(const cJSON *obj, kt_diet_assessment *a, char *bad_field, kt_err *err) {
    memset(a, 0, sizeof *a);
    if (bad_field) bad_field[0] = '\0';
    if (!cJSON_IsObject(obj)) return bad(bad_field, "body", err, "%s: %s", "the assessment must be a JSON object");
    char d[128];
    int k = 1; /* assessment_date: always set (by the server, or today for a file) */

    const cJSON *f = field(obj, "age");
    if (!f) return bad(bad_field, "age", err, "field '%s': %s", "field required");
    if (!cJSON_IsNumber(f) || f->valuedouble != floor(f->valuedouble) || f->valuedouble < KT_DIET_AGE_MIN ||
        f->valuedouble > KT_DIET_AGE_MAX) {
        snprintf(d, sizeof d, "must be a whole number of years from %d to %d (the engine uses adult reference values)",
                 KT_DIET_AGE_MIN, KT_DIET_AGE_MAX);
        return bad(bad_field, "age", err, "field '%s': %s", d);
    }
    a->age = (int)f->valuedouble;
    k++;

    f = field(obj, "gender");
    if (!f) return bad(bad_field, "gender", err, "field '%s': %s", "field required");
    if (!cJSON_IsString(f) || (strcasecmp(f->valuestring, "male") && strcasecmp(f->valuestring, "female")))
        return bad(bad_field, "gender", err, "field '%s': %s", "must be \"male\" or \"female\"");
    a->sex = strcasecmp(f->valuestring, "male") ? KT_SEX_FEMALE : KT_SEX_MALE;
    k++;

    f = field(obj, "weight");
    if (!f) return bad(bad_field, "weight", err, "field '%s': %s", "field required");
    if (!cJSON_IsNumber(f) || !(f->valuedouble >= KT_DIET_WEIGHT_MIN && f->valuedouble <= KT_DIET_WEIGHT_MAX)) {
        snprintf(d, sizeof d, "must be a number of kilograms from %g to %g", KT_DIET_WEIGHT_MIN, KT_DIET_WEIGHT_MAX);
        return bad(bad_field, "weight", err, "field '%s': %s", d);
    }
    a->weight_kg = f->valuedouble;
    k++;

    f = field(obj, "height");
    if (!f) return bad(bad_field, "height", err, "field '%s': %s", "field required");
    if (!cJSON_IsNumber(f) || !(f->valuedouble >= KT_DIET_HEIGHT_MIN && f->valuedouble <= KT_DIET_HEIGHT_MAX)) {
        snprintf(d, sizeof d, "must be a number of centimetres from %g to %g", KT_DIET_HEIGHT_MIN, KT_DIET_HEIGHT_MAX);
        return bad(bad_field, "height", err, "field '%s': %s", d);
    }
    a->height_cm = f->valuedouble;
    k++;

    f = field(obj, "activity_level");
    if (!f) return bad(bad_field, "activity_level", err, "field '%s': %s", "field required");
    static const char *const acts[] = {"sedentary", "moderate", "active"};
    int act = -1;
    for (int i = 0; i < 3 && cJSON_IsString(f); i++)
        if (!strcasecmp(f->valuestring, acts[i])) act = i;
    if (act < 0) return bad(bad_field, "activity_level", err, "field '%s': %s", "must be sedentary, moderate or active");
    a->activity = (kt_activity)act;
    k++;

    if ((f = field(obj, "dietary_restrictions"))) {
        kt_status st = check_text_list(f, "dietary_restrictions", KT_DIET_MAX_RESTRICTIONS,
                                       sizeof a->restrictions[0] - 1, bad_field, err);
        if (st) return st;
        const cJSON *it;
        cJSON_ArrayForEach(it, f) {
            const char *s = it->valuestring;
            while (isspace((unsigned char)*s)) s++;
            char *dst = a->restrictions[a->n_restrictions];
            snprintf(dst, sizeof a->restrictions[0], "%s", s);
            for (size_t e = strlen(dst); e > 0 && isspace((unsigned char)dst[e - 1]); e--) dst[e - 1] = '\0';
            if (!dst[0]) continue;
            unsigned bit;
            if (kt_diet_tag_from_name(dst, &bit) < 0) a->unknown_restrictions |= 1u << a->n_restrictions;
            else if (!bit) continue; /* "none" */
            a->required_tags |= bit;
            a->n_restrictions++;
        }
        /* A vegan meal is vegetarian and dairy-free; a vegetarian one is pescatarian: requiring the
         * stricter tag is enough, the data's consistency check guarantees the rest. */
        k++;
    }
    if ((f = field(obj, "current_diet_pattern"))) {
        if (!cJSON_IsString(f)) return bad(bad_field, "current_diet_pattern", err, "field '%s': %s", "must be a string or null");
        if (strlen(f->valuestring) > KT_DIET_TEXT_MAX) {
            snprintf(d, sizeof d, "must be at most %d bytes", KT_DIET_TEXT_MAX);
            return bad(bad_field, "current_diet_pattern", err, "field '%s': %s", d);
        }
        k++;
    }
    if ((f = field(obj, "health_conditions"))) {
        kt_status st = check_text_list(f, "health_conditions", KT_DIET_LIST_MAX, KT_DIET_TEXT_MAX, bad_field, err);
        if (st) return st;
        k++;
    }
    if ((f = field(obj, "medications"))) {
        kt_status st = check_text_list(f, "medications", KT_DIET_LIST_MAX, KT_DIET_TEXT_MAX, bad_field, err);
        if (st) return st;
        k++;
    }
    if ((f = field(obj, "assessment_date"))) {
        int64_t us;
        kt_err e2;
        if (!cJSON_IsString(f) || kt_time_parse_iso(f->valuestring, &us, &e2))
            return bad(bad_field, "assessment_date", err, "field '%s': %s", "must be an ISO 8601 date (2024-05-01)");
    }
    a->completeness = k;
    return KT_OK;
}

/* ---- history CSV ----------------------------------------------------------------------------- */
/* Splits line (modified in place) at commas; strips spaces and one pair of double quotes. */
static int split_csv(char *line, char **fields, int max) {
    int n = 0;
    char *p = line;
    for (;;) {
        char *start = p;
        while (*p && *p != ',') p++;
        char end = *p;
        *p = '\0';
        while (isspace((unsigned char)*start)) start++;
        for (size_t e = strlen(start); e > 0 && isspace((unsigned char)start[e - 1]); e--) start[e - 1] = '\0';
        size_t l = strlen(start);
        if (l >= 2 && start[0] == '"' && start[l - 1] == '"') {
            start[l - 1] = '\0';
            start++;
        }
        if (n < max) fields[n] = start;
        n++;
        if (!end) break;
        p++;
    }
    return n;
}

kt_status kt_diet_history_parse_csv(const char *text, size_t len, const char *origin, kt_diet_obs **obs, int *n,
                                    kt_err *err) {
    *obs = NULL;
    *n = 0;
    int cap = 16, cnt = 0, lineno = 0;
    kt_diet_obs *v = malloc((size_t)cap * sizeof *v);
    if (!v) return kt_err_set(err, KT_ERR_NOMEM, "%s: no memory", origin);
    size_t pos = 0;
    kt_status st = KT_OK;
    while (pos < len) {
        size_t e = pos;
        while (e < len && text[e] != '\n') e++;
        lineno++;
        char line[512];
        size_t l = e - pos;
        if (l > 0 && text[pos + l - 1] == '\r') l--;
        if (l >= sizeof line) {
            st = kt_err_set(err, KT_ERR_FORMAT, "%s line %d: line longer than %zu bytes", origin, lineno, sizeof line - 1);
            goto fail;
        }
        memcpy(line, text + pos, l);
        line[l] = '\0';
        pos = e + 1;
        if (memchr(line, '\0', l)) {
            st = kt_err_set(err, KT_ERR_FORMAT, "%s line %d: contains a NUL byte (not a text CSV file?)", origin, lineno);
            goto fail;
        }
        char *p = line;
        while (isspace((unsigned char)*p)) p++;
        if (!*p || *p == '#') continue;
        char *f[3];
        int nf = split_csv(p, f, 3);
        if (cnt == 0 && !strcasecmp(f[0], "timestamp")) continue; /* header */
        if (nf < 2 || nf > 3) {
            st = kt_err_set(err, KT_ERR_FORMAT, "%s line %d: expected 2 or 3 fields (timestamp,stage[,confidence]), got %d",
                            origin, lineno, nf);
            goto fail;
        }
        if (cnt == cap) {
            cap *= 2;
            kt_diet_obs *nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv) {
                st = kt_err_set(err, KT_ERR_NOMEM, "%s: no memory", origin);
                goto fail;
            }
            v = nv;
        }
        kt_diet_obs *o = &v[cnt];
        memset(o, 0, sizeof *o);
        kt_err e2;
        if (kt_time_parse_iso(f[0], &o->time_us, &e2)) {
            st = kt_err_set(err, KT_ERR_FORMAT, "%s line %d, field 'timestamp': %s", origin, lineno, e2.msg);
            goto fail;
        }
        char *endp;
        double sv = strtod(f[1], &endp);
        if (f[1][0] && !*endp && (isdigit((unsigned char)f[1][0]) || f[1][0] == '.')) {
            if (!(sv >= 0.0 && sv <= 1.0)) {
                st = kt_err_set(err, KT_ERR_FORMAT, "%s line %d, field 'stage': severity %s is outside [0, 1]", origin,
                                lineno, f[1]);
                goto fail;
            }
            o->severity = sv;
        } else {
            if (kt_diet_stage_severity(f[1], &o->severity, &e2)) {
                st = kt_err_set(err, KT_ERR_FORMAT, "%s line %d, field 'stage': %s", origin, lineno, e2.msg);
                goto fail;
            }
            snprintf(o->stage, sizeof o->stage, "%s", f[1]);
        }
        if (nf == 3 && f[2][0]) {
            double c = strtod(f[2], &endp);
            if (*endp || !(c >= 0.0 && c <= 1.0)) {
                st = kt_err_set(err, KT_ERR_FORMAT, "%s line %d, field 'confidence': '%.40s' is not a number in [0, 1]",
                                origin, lineno, f[2]);
                goto fail;
            }
        }
        cnt++;
    }
    *obs = v;
    *n = cnt;
    return KT_OK;
fail:
    free(v);
    return st;
}

/* ---- bundle ---------------------------------------------------------------------------------- */
static cJSON *str_list(char *const *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

cJSON *kt_diet_hair_analysis_to_json(const kt_hair_analysis *h) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "current_severity", kt_round3(h->severity));
    if (h->stage[0]) cJSON_AddStringToObject(o, "current_stage", h->stage);
    else cJSON_AddNullToObject(o, "current_stage");
    cJSON_AddNumberToObject(o, "progression_rate", kt_round3(h->rate));
    cJSON_AddStringToObject(o, "trend", kt_trend_name(h->trend));
    cJSON_AddNumberToObject(o, "predictions_used", h->n_used);
    cJSON_AddNumberToObject(o, "days_spanned", h->days);
    return o;
}

static cJSON *meal_json(const kt_meal_pick *pick) {
    const kt_meal *m = pick->meal;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", m->id);
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddItemToObject(o, "ingredients", str_list(m->ingredients, m->n_ingredients));
    cJSON *nut = cJSON_AddObjectToObject(o, "nutrients");
    for (int n = 0; n < KT_NUT_COUNT; n++)
        if (m->listed & (1u << n)) cJSON_AddNumberToObject(nut, kt_nutrient_name((kt_nutrient)n), m->nutrients[n]);
    cJSON_AddNumberToObject(o, "score", pick->score);
    cJSON_AddBoolToObject(o, "fallback", pick->fallback);
    return o;
}

cJSON *kt_diet_plan_to_json(const kt_diet_plan *p, const kt_diet_facts *facts) {
    cJSON *o = cJSON_CreateObject();
    if (p->hair.stage[0]) cJSON_AddStringToObject(o, "hair_stage_at_time", p->hair.stage);
    else cJSON_AddNullToObject(o, "hair_stage_at_time");

    cJSON *rn = cJSON_AddObjectToObject(o, "recommended_nutrients");
    for (int n = 0; n < KT_NUT_COUNT; n++) {
        const kt_nutrient_target *t = &p->targets[n];
        cJSON *e = cJSON_AddObjectToObject(rn, kt_nutrient_name((kt_nutrient)n));
        cJSON_AddNumberToObject(e, "daily_target", kt_round3(t->target));
        cJSON_AddStringToObject(e, "unit", kt_nutrient_unit((kt_nutrient)n));
        const kt_nutrient_facts *nf = facts ? &facts->nutrients[n] : NULL;
        cJSON_AddItemToObject(e, "sources", nf ? str_list(nf->sources, nf->n_sources) : cJSON_CreateArray());
        cJSON_AddStringToObject(e, "importance", nf && nf->importance ? nf->importance : "");
        cJSON_AddNumberToObject(e, "base_need", kt_round3(t->base));
        cJSON_AddNumberToObject(e, "multiplier", t->multiplier);
        cJSON_AddNumberToObject(e, "per_meal_target", kt_round3(t->per_meal));
        if (t->upper_limit > 0) cJSON_AddNumberToObject(e, "upper_limit", t->upper_limit);
        else cJSON_AddNullToObject(e, "upper_limit");
        cJSON_AddNumberToObject(e, "recommended_amount", kt_round3(t->recommended));
        cJSON_AddBoolToObject(e, "capped", t->capped);
        if (nf && nf->upper_limit_source) cJSON_AddStringToObject(e, "upper_limit_source", nf->upper_limit_source);
        if (t->capped)
            for (int w = 0; w < p->n_warnings; w++)
                if (!strncmp(p->warnings[w], kt_nutrient_label((kt_nutrient)n), strlen(kt_nutrient_label((kt_nutrient)n))) &&
                    p->warnings[w][strlen(kt_nutrient_label((kt_nutrient)n))] == ':')
                    cJSON_AddStringToObject(e, "warning", p->warnings[w]);
    }

    cJSON *mp = cJSON_AddObjectToObject(o, "meal_plan");
    for (int d = 0; d < KT_DIET_DAYS; d++) {
        char key[16];
        snprintf(key, sizeof key, "day_%d", d + 1);
        cJSON *day = cJSON_AddObjectToObject(mp, key);
        for (int s = 0; s < KT_SLOT_COUNT; s++) cJSON_AddItemToObject(day, kt_slot_name(s), meal_json(&p->days[d][s]));
        cJSON *sn = cJSON_AddArrayToObject(day, "snacks");
        for (int i = 0; i < p->n_snacks; i++) cJSON_AddItemToArray(sn, cJSON_CreateString(p->snacks[i]->text));
    }

    cJSON *sup = cJSON_AddArrayToObject(o, "supplements");
    for (int i = 0; i < p->n_supplements; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", p->supplements[i].name);
        cJSON_AddStringToObject(e, "dosage", p->supplements[i].dosage);
        cJSON_AddStringToObject(e, "reason", p->supplements[i].reason);
        cJSON_AddStringToObject(e, "timing", p->supplements[i].timing);
        cJSON_AddItemToArray(sup, e);
    }
    cJSON_AddItemToObject(o, "foods_to_avoid",
                          facts ? str_list(facts->foods_to_avoid, facts->n_foods_to_avoid) : cJSON_CreateArray());
    cJSON_AddNumberToObject(o, "confidence_score", kt_round3(p->confidence));
    cJSON_AddStringToObject(o, "reasoning", p->reasoning);
    cJSON *ha = kt_diet_hair_analysis_to_json(&p->hair);
    cJSON_AddNumberToObject(ha, "confidence", kt_round3(p->confidence));
    cJSON_AddItemToObject(o, "hair_analysis", ha);
    cJSON *mu = cJSON_AddObjectToObject(o, "multipliers");
    cJSON_AddNumberToObject(mu, "h", kt_round3(p->h));
    cJSON_AddNumberToObject(mu, "u", kt_round3(p->u));
    cJSON *cc = cJSON_AddObjectToObject(o, "confidence_components");
    cJSON_AddNumberToObject(cc, "c_d", kt_round3(p->c_d));
    cJSON_AddNumberToObject(cc, "c_a", kt_round3(p->c_a));
    cJSON *w = cJSON_AddArrayToObject(o, "warnings");
    for (int i = 0; i < p->n_warnings; i++) cJSON_AddItemToArray(w, cJSON_CreateString(p->warnings[i]));
    char buf[40];
    kt_time_format_iso(p->next_review_us, buf, sizeof buf);
    cJSON_AddStringToObject(o, "next_review_date", buf);
    return o;
}
