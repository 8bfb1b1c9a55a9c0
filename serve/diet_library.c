/* Loading and validating the meal library and nutrient facts (JSON via cJSON). */
#include "serve/diet_library.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "serve/assets.h"

/* ---- nutrients -------------------------------------------------------------------------------- */
static const char *const nut_names[KT_NUT_COUNT] = {"protein", "iron", "biotin", "zinc",
                                                   "omega3", "vitamin_d", "vitamin_c"};
static const char *const nut_units[KT_NUT_COUNT] = {"g", "mg", "mcg", "mg", "g", "IU", "mg"};
static const char *const nut_labels[KT_NUT_COUNT] = {"Protein", "Iron", "Biotin", "Zinc",
                                                    "Omega-3", "Vitamin D", "Vitamin C"};

const char *kt_nutrient_name(kt_nutrient n) { return (unsigned)n < KT_NUT_COUNT ? nut_names[n] : "?"; }
const char *kt_nutrient_unit(kt_nutrient n) { return (unsigned)n < KT_NUT_COUNT ? nut_units[n] : "?"; }
const char *kt_nutrient_label(kt_nutrient n) { return (unsigned)n < KT_NUT_COUNT ? nut_labels[n] : "?"; }

int kt_nutrient_from_name(const char *name) {
    for (int i = 0; i < KT_NUT_COUNT; i++)
        if (!strcmp(name, nut_names[i])) return i;
    return -1;
}

/* ---- tags ------------------------------------------------------------------------------------ */
static const char *const tag_names[KT_TAG_COUNT] = {"vegetarian", "vegan",      "pescatarian",
                                                   "gluten_free", "dairy_free", "nut_free"};

const char *kt_diet_tag_name(unsigned bit) {
    for (int i = 0; i < KT_TAG_COUNT; i++)
        if (bit == 1u << i) return tag_names[i];
    return "?";
}

/* Lower-case letters only: "Gluten-Free" -> "glutenfree". */
static void squash(const char *s, char *out, size_t cap) {
    size_t k = 0;
    for (; *s && k + 1 < cap; s++)
        if (isalnum((unsigned char)*s)) out[k++] = (char)tolower((unsigned char)*s);
    out[k] = '\0';
}

int kt_diet_tag_from_name(const char *restriction, unsigned *bit) {
    static const struct {
        const char *alias;
        unsigned bit;
    } aliases[] = {
        {"vegetarian", KT_TAG_VEGETARIAN}, {"lactoovovegetarian", KT_TAG_VEGETARIAN},
        {"vegan", KT_TAG_VEGAN},           {"plantbased", KT_TAG_VEGAN},
        {"pescatarian", KT_TAG_PESCATARIAN}, {"pescetarian", KT_TAG_PESCATARIAN},
        {"glutenfree", KT_TAG_GLUTEN_FREE}, {"nogluten", KT_TAG_GLUTEN_FREE}, {"coeliac", KT_TAG_GLUTEN_FREE},
        {"celiac", KT_TAG_GLUTEN_FREE},    {"dairyfree", KT_TAG_DAIRY_FREE}, {"nodairy", KT_TAG_DAIRY_FREE},
        {"lactosefree", KT_TAG_DAIRY_FREE}, {"lactoseintolerant", KT_TAG_DAIRY_FREE},
        {"nutfree", KT_TAG_NUT_FREE},      {"nonuts", KT_TAG_NUT_FREE},      {"nutallergy", KT_TAG_NUT_FREE},
        {"treenutfree", KT_TAG_NUT_FREE},
    };
    char sq[64];
    squash(restriction, sq, sizeof sq);
    *bit = 0;
    if (!sq[0] || !strcmp(sq, "none")) return 0;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (!strcmp(sq, aliases[i].alias)) {
            *bit = aliases[i].bit;
            return 0;
        }
    return -1;
}

/* ---- small JSON helpers ---------------------------------------------------------------------- */
static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* Copies a JSON array of strings; fails naming where/field on anything else. */
static kt_status str_array(const cJSON *arr, char ***out, int *n, const char *where, const char *field,
                           kt_err *err) {
    *out = NULL;
    *n = 0;
    if (!cJSON_IsArray(arr)) return kt_err_set(err, KT_ERR_FORMAT, "%s: field '%s' must be a list of strings", where, field);
    int cnt = cJSON_GetArraySize(arr);
    char **v = calloc((size_t)(cnt > 0 ? cnt : 1), sizeof *v);
    if (!v) return kt_err_set(err, KT_ERR_NOMEM, "%s: no memory", where);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsString(it) || !it->valuestring[0]) {
            for (int k = 0; k < i; k++) free(v[k]);
            free(v);
            return kt_err_set(err, KT_ERR_FORMAT, "%s: field '%s' item %d must be a non-empty string", where, field, i);
        }
        v[i] = dup_str(it->valuestring);
        if (!v[i]) {
            for (int k = 0; k < i; k++) free(v[k]);
            free(v);
            return kt_err_set(err, KT_ERR_NOMEM, "%s: no memory", where);
        }
        i++;
    }
    *out = v;
    *n = cnt;
    return KT_OK;
}

static void free_strs(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

static kt_status parse_tags(const cJSON *arr, unsigned *tags, const char *where, kt_err *err) {
    *tags = 0;
    if (!cJSON_IsArray(arr))
        return kt_err_set(err, KT_ERR_FORMAT, "%s: field 'suitable_for' must be a list of restriction names", where);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        int found = 0;
        for (int i = 0; i < KT_TAG_COUNT && cJSON_IsString(it); i++)
            if (!strcmp(it->valuestring, tag_names[i])) {
                *tags |= 1u << i;
                found = 1;
            }
        if (!found)
            return kt_err_set(err, KT_ERR_FORMAT,
                              "%s: field 'suitable_for' has unknown tag %s%s%s (known: vegetarian, vegan, "
                              "pescatarian, gluten_free, dairy_free, nut_free)",
                              where, cJSON_IsString(it) ? "'" : "", cJSON_IsString(it) ? it->valuestring : "(not a string)",
                              cJSON_IsString(it) ? "'" : "");
    }
    if ((*tags & KT_TAG_VEGAN) && !((*tags & KT_TAG_VEGETARIAN) && (*tags & KT_TAG_DAIRY_FREE)))
        return kt_err_set(err, KT_ERR_FORMAT, "%s: 'vegan' must come with 'vegetarian' and 'dairy_free'", where);
    if ((*tags & KT_TAG_VEGETARIAN) && !(*tags & KT_TAG_PESCATARIAN))
        return kt_err_set(err, KT_ERR_FORMAT, "%s: 'vegetarian' must come with 'pescatarian'", where);
    return KT_OK;
}

/* ---- meal library ---------------------------------------------------------------------------- */
void kt_meal_lib_free(kt_meal_lib *lib) {
    if (!lib) return;
    for (int i = 0; i < lib->n_meals; i++) {
        free(lib->meals[i].id);
        free(lib->meals[i].name);
        free_strs(lib->meals[i].ingredients, lib->meals[i].n_ingredients);
    }
    free(lib->meals);
    for (int i = 0; i < lib->n_snacks; i++) free(lib->snacks[i].text);
    free(lib->snacks);
    memset(lib, 0, sizeof *lib);
}

static kt_status parse_meal(kt_meal *m, const cJSON *j, const char *origin, int idx, kt_err *err) {
    char where[512];
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    if (!cJSON_IsObject(j)) return kt_err_set(err, KT_ERR_FORMAT, "%s: meals[%d] must be an object", origin, idx);
    if (!cJSON_IsString(id) || !id->valuestring[0])
        return kt_err_set(err, KT_ERR_FORMAT, "%s: meals[%d]: field 'id' must be a non-empty string", origin, idx);
    snprintf(where, sizeof where, "%s: meal '%.200s'", origin, id->valuestring);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    if (!cJSON_IsString(name) || !name->valuestring[0])
        return kt_err_set(err, KT_ERR_FORMAT, "%s: field 'name' must be a non-empty string", where);
    m->id = dup_str(id->valuestring);
    m->name = dup_str(name->valuestring);
    if (!m->id || !m->name) return kt_err_set(err, KT_ERR_NOMEM, "%s: no memory", where);
    kt_status st = str_array(cJSON_GetObjectItemCaseSensitive(j, "ingredients"), &m->ingredients, &m->n_ingredients,
                             where, "ingredients", err);
    if (st) return st;
    const cJSON *nut = cJSON_GetObjectItemCaseSensitive(j, "nutrients");
    if (!cJSON_IsObject(nut)) return kt_err_set(err, KT_ERR_FORMAT, "%s: field 'nutrients' must be an object", where);
    const cJSON *it;
    cJSON_ArrayForEach(it, nut) {
        int n = kt_nutrient_from_name(it->string);
        if (n < 0)
            return kt_err_set(err, KT_ERR_FORMAT,
                              "%s: nutrients: unknown nutrient '%.60s' (known: protein, iron, biotin, zinc, omega3, "
                              "vitamin_d, vitamin_c)",
                              where, it->string);
        if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < 0)
            return kt_err_set(err, KT_ERR_FORMAT, "%s: nutrients.%s must be a number >= 0", where, it->string);
        m->nutrients[n] = it->valuedouble;
        m->listed |= 1u << n;
    }
    return parse_tags(cJSON_GetObjectItemCaseSensitive(j, "suitable_for"), &m->tags, where, err);
}

kt_status kt_meal_lib_parse(kt_meal_lib *lib, const char *json, size_t len, const char *origin, kt_err *err) {
    memset(lib, 0, sizeof *lib);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t off = end ? (size_t)(end - json) : 0;
        return kt_err_set(err, KT_ERR_FORMAT, "%s: not valid JSON (near byte %zu)", origin, off);
    }
    kt_status st = KT_OK;
    const cJSON *meals = cJSON_GetObjectItemCaseSensitive(root, "meals");
    const cJSON *snacks = cJSON_GetObjectItemCaseSensitive(root, "snacks");
    if (!cJSON_IsArray(meals) || cJSON_GetArraySize(meals) == 0) {
        st = kt_err_set(err, KT_ERR_FORMAT, "%s: field 'meals' must be a non-empty list of meals", origin);
        goto out;
    }
    if (snacks && !cJSON_IsArray(snacks)) {
        st = kt_err_set(err, KT_ERR_FORMAT, "%s: field 'snacks' must be a list", origin);
        goto out;
    }
    int nm = cJSON_GetArraySize(meals), ns = snacks ? cJSON_GetArraySize(snacks) : 0;
    lib->meals = calloc((size_t)nm, sizeof *lib->meals);
    lib->snacks = calloc((size_t)(ns > 0 ? ns : 1), sizeof *lib->snacks);
    if (!lib->meals || !lib->snacks) {
        st = kt_err_set(err, KT_ERR_NOMEM, "%s: no memory", origin);
        goto out;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, meals) {
        st = parse_meal(&lib->meals[lib->n_meals], it, origin, lib->n_meals, err);
        lib->n_meals++; /* counted even on failure so kt_meal_lib_free releases what was copied */
        if (st) goto out;
        for (int k = 0; k < lib->n_meals - 1; k++)
            if (!strcmp(lib->meals[k].id, lib->meals[lib->n_meals - 1].id)) {
                st = kt_err_set(err, KT_ERR_FORMAT, "%s: meal id '%.200s' appears twice", origin, lib->meals[k].id);
                goto out;
            }
    }
    if (snacks) cJSON_ArrayForEach(it, snacks) {
        char where[300];
        snprintf(where, sizeof where, "%s: snacks[%d]", origin, lib->n_snacks);
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(it, "text");
        if (!cJSON_IsString(text) || !text->valuestring[0]) {
            st = kt_err_set(err, KT_ERR_FORMAT, "%s: field 'text' must be a non-empty string", where);
            goto out;
        }
        kt_snack *s = &lib->snacks[lib->n_snacks++];
        if (!(s->text = dup_str(text->valuestring))) {
            st = kt_err_set(err, KT_ERR_NOMEM, "%s: no memory", where);
            goto out;
        }
        if ((st = parse_tags(cJSON_GetObjectItemCaseSensitive(it, "suitable_for"), &s->tags, where, err))) goto out;
    }
out:
    cJSON_Delete(root);
    if (st) kt_meal_lib_free(lib);
    return st;
}

kt_status kt_meal_lib_load(kt_meal_lib *lib, const char *path, kt_err *err) {
    char *data;
    size_t len;
    memset(lib, 0, sizeof *lib);
    kt_status st = kt_file_read(path, &data, &len, err);
    if (st) return st;
    st = kt_meal_lib_parse(lib, data, len, path, err);
    free(data);
    return st;
}

kt_status kt_meal_lib_load_default(kt_meal_lib *lib, kt_err *err) {
    const kt_asset *a = kt_asset_find("data/meals.json");
    memset(lib, 0, sizeof *lib);
    if (!a) return kt_err_set(err, KT_ERR_NOTFOUND, "this build has no embedded data/meals.json");
    return kt_meal_lib_parse(lib, (const char *)a->data, a->len, "embedded data/meals.json", err);
}

/* ---- nutrient facts -------------------------------------------------------------------------- */
void kt_diet_facts_free(kt_diet_facts *f) {
    if (!f) return;
    for (int i = 0; i < KT_NUT_COUNT; i++) {
        free_strs(f->nutrients[i].sources, f->nutrients[i].n_sources);
        free(f->nutrients[i].importance);
        free(f->nutrients[i].upper_limit_source);
    }
    free_strs(f->foods_to_avoid, f->n_foods_to_avoid);
    memset(f, 0, sizeof *f);
}

static kt_status parse_facts(kt_diet_facts *f, const cJSON *root, const char *origin, kt_err *err) {
    const cJSON *nuts = cJSON_GetObjectItemCaseSensitive(root, "nutrients");
    const cJSON *cites = cJSON_GetObjectItemCaseSensitive(root, "upper_limit_sources");
    if (!cJSON_IsObject(nuts)) return kt_err_set(err, KT_ERR_FORMAT, "%s: field 'nutrients' must be an object", origin);
    for (int n = 0; n < KT_NUT_COUNT; n++) {
        char where[300];
        snprintf(where, sizeof where, "%s: nutrients.%s", origin, nut_names[n]);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(nuts, nut_names[n]);
        if (!cJSON_IsObject(e)) return kt_err_set(err, KT_ERR_FORMAT, "%s is missing", where);
        const cJSON *unit = cJSON_GetObjectItemCaseSensitive(e, "unit");
        if (!cJSON_IsString(unit) || strcmp(unit->valuestring, nut_units[n]))
            return kt_err_set(err, KT_ERR_FORMAT, "%s: field 'unit' must be \"%s\" (the engine's unit)", where, nut_units[n]);
        kt_nutrient_facts *nf = &f->nutrients[n];
        kt_status st = str_array(cJSON_GetObjectItemCaseSensitive(e, "sources"), &nf->sources, &nf->n_sources, where,
                                 "sources", err);
        if (st) return st;
        const cJSON *imp = cJSON_GetObjectItemCaseSensitive(e, "importance");
        if (!cJSON_IsString(imp) || !imp->valuestring[0])
            return kt_err_set(err, KT_ERR_FORMAT, "%s: field 'importance' must be a non-empty string", where);
        if (!(nf->importance = dup_str(imp->valuestring))) return kt_err_set(err, KT_ERR_NOMEM, "no memory");
        const cJSON *ul = cJSON_GetObjectItemCaseSensitive(e, "upper_limit");
        if (!ul || cJSON_IsNull(ul)) continue;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(ul, "value");
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(ul, "source");
        if (!cJSON_IsNumber(v) || !(v->valuedouble > 0))
            return kt_err_set(err, KT_ERR_FORMAT, "%s: upper_limit.value must be a number > 0", where);
        const cJSON *cite = cJSON_IsString(src) ? cJSON_GetObjectItemCaseSensitive(cites, src->valuestring) : NULL;
        if (!cJSON_IsString(cite) || !cite->valuestring[0])
            return kt_err_set(err, KT_ERR_FORMAT,
                              "%s: upper_limit.source must name an entry of 'upper_limit_sources' (the citation)", where);
        nf->upper_limit = v->valuedouble;
        if (!(nf->upper_limit_source = dup_str(cite->valuestring))) return kt_err_set(err, KT_ERR_NOMEM, "no memory");
    }
    return str_array(cJSON_GetObjectItemCaseSensitive(root, "foods_to_avoid"), &f->foods_to_avoid,
                     &f->n_foods_to_avoid, origin, "foods_to_avoid", err);
}

kt_status kt_diet_facts_parse(kt_diet_facts *f, const char *json, size_t len, const char *origin, kt_err *err) {
    memset(f, 0, sizeof *f);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t off = end ? (size_t)(end - json) : 0;
        return kt_err_set(err, KT_ERR_FORMAT, "%s: not valid JSON (near byte %zu)", origin, off);
    }
    kt_status st = parse_facts(f, root, origin, err);
    cJSON_Delete(root);
    if (st) kt_diet_facts_free(f);
    return st;
}

kt_status kt_diet_facts_load_default(kt_diet_facts *f, kt_err *err) {
    const kt_asset *a = kt_asset_find("data/nutrients.json");
    memset(f, 0, sizeof *f);
    if (!a) return kt_err_set(err, KT_ERR_NOTFOUND, "this build has no embedded data/nutrients.json");
    return kt_diet_facts_parse(f, (const char *)a->data, a->len, "embedded data/nutrients.json", err);
}
