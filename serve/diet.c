/* The diet engine's arithmetic and rules, following report sections 4.5-4.6 step by step. */
#include "serve/diet.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/timeutil.h"

/* ---- stage severity -------------------------------------------------------------------------- */
static const struct {
    const char *stage;
    double severity;
} stage_map[] = {{"LEVEL_2", 0.2}, {"LEVEL_3", 0.4}, {"LEVEL_4", 0.6},
                 {"LEVEL_5", 0.8}, {"LEVEL_6", 0.9}, {"LEVEL_7", 1.0}};

kt_status kt_diet_stage_severity(const char *stage, double *severity, kt_err *err) {
    for (size_t i = 0; i < sizeof stage_map / sizeof stage_map[0]; i++)
        if (stage && !strcmp(stage, stage_map[i].stage)) {
            *severity = stage_map[i].severity;
            return KT_OK;
        }
    return kt_err_set(err, KT_ERR_NOTFOUND,
                      "unknown hair-loss stage '%.40s' (known: LEVEL_2, LEVEL_3, LEVEL_4, LEVEL_5, LEVEL_6, LEVEL_7)",
                      stage ? stage : "(null)");
}

const char *kt_trend_name(kt_trend t) {
    switch (t) {
    case KT_TREND_STABLE: return "stable";
    case KT_TREND_IMPROVING: return "improving";
    case KT_TREND_WORSENING: return "worsening";
    default: return "insufficient_data";
    }
}

const char *kt_slot_name(int slot) {
    static const char *const names[KT_SLOT_COUNT] = {"breakfast", "lunch", "dinner"};
    return slot >= 0 && slot < KT_SLOT_COUNT ? names[slot] : "?";
}

/* ---- hair analysis (report 4.5 step 1) -------------------------------------------------------- */
kt_status kt_diet_analyze(const kt_diet_obs *obs, int n, kt_hair_analysis *out, kt_err *err) {
    memset(out, 0, sizeof *out);
    /* Pick the 6 newest by insertion into a small sorted list (newest first, ties keep order). */
    const kt_diet_obs *used[KT_DIET_HISTORY_MAX];
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!(obs[i].severity >= 0.0 && obs[i].severity <= 1.0))
            return kt_err_set(err, KT_ERR_ARG, "prediction %d: severity %g is outside [0, 1]", i, obs[i].severity);
        int pos = k;
        while (pos > 0 && used[pos - 1]->time_us < obs[i].time_us) pos--;
        if (pos >= KT_DIET_HISTORY_MAX) continue;
        int last = k < KT_DIET_HISTORY_MAX ? k : KT_DIET_HISTORY_MAX - 1;
        for (int j = last; j > pos; j--) used[j] = used[j - 1];
        used[pos] = &obs[i];
        if (k < KT_DIET_HISTORY_MAX) k++;
    }
    out->n_used = k;
    if (k > 0) snprintf(out->stage, sizeof out->stage, "%s", used[0]->stage);
    if (k < 2) {
        out->severity = 0.5;
        out->rate = 0.0;
        out->trend = KT_TREND_INSUFFICIENT_DATA;
        return KT_OK;
    }
    const kt_diet_obs *t0 = used[0], *tn = used[k - 1];
    /* Whole days, floored, as Python's timedelta.days. */
    int64_t dus = t0->time_us - tn->time_us;
    out->days = (int)(dus / KT_US_PER_DAY);
    out->severity = t0->severity;
    out->rate = (t0->severity - tn->severity) / (double)(out->days > 1 ? out->days : 1) * 30.0;
    out->trend = out->rate > 0.05 ? KT_TREND_WORSENING : out->rate < -0.05 ? KT_TREND_IMPROVING : KT_TREND_STABLE;
    return KT_OK;
}

/* ---- base needs and multipliers (report 4.6) ------------------------------------------------- */
double kt_diet_base_need(kt_nutrient n, kt_sex sex, double weight_kg) {
    int male = sex == KT_SEX_MALE;
    switch (n) {
    case KT_NUT_PROTEIN: return 0.8 * weight_kg;
    case KT_NUT_IRON: return male ? 8.0 : 18.0;
    case KT_NUT_BIOTIN: return 30.0;
    case KT_NUT_ZINC: return male ? 11.0 : 8.0;
    case KT_NUT_OMEGA3: return male ? 1.6 : 1.1;
    case KT_NUT_VITAMIN_D: return 600.0;
    case KT_NUT_VITAMIN_C: return male ? 90.0 : 75.0;
    default: return 0.0;
    }
}

double kt_diet_hair_multiplier(kt_nutrient n) {
    static const double m[KT_NUT_COUNT] = {1.3, 1.5, 100.0, 1.5, 2.0, 2.0, 1.2};
    return (unsigned)n < KT_NUT_COUNT ? m[n] : 0.0;
}

double kt_diet_meal_score(const kt_meal *m, const kt_nutrient_target targets[KT_NUT_COUNT]) {
    double score = 0.0;
    for (int n = 0; n < KT_NUT_COUNT; n++) {
        double a = m->nutrients[n], t = targets[n].per_meal;
        if (a >= 0.8 * t) score += 1.0;
        else if (a >= 0.5 * t) score += 0.5;
    }
    return score;
}

/* ---- supplements (API.md wording) ------------------------------------------------------------ */
static const kt_supplement supp_biotin = {"Biotin Complex", "5000 mcg daily",
                                          "Supports keratin production when hair-loss severity is high",
                                          "With breakfast"};
static const kt_supplement supp_iron = {"Iron + Vitamin C", "25 mg iron with 100 mg vitamin C",
                                        "Replenishes iron stores; vitamin C improves iron absorption",
                                        "Between meals"};
static const kt_supplement supp_fish_oil = {"Omega-3 Fish Oil", "1000 mg EPA/DHA daily",
                                            "Reduces scalp inflammation and supports follicle health",
                                            "With the largest meal"};
static const kt_supplement supp_algae_oil = {"Omega-3 Algae Oil", "1000 mg EPA/DHA daily (algae-derived)",
                                             "Plant-based EPA/DHA for vegetarians and vegans; reduces scalp "
                                             "inflammation and supports follicle health",
                                             "With the largest meal"};
static const kt_supplement supp_zinc = {"Zinc Picolinate", "15 mg daily",
                                        "Supports hair tissue growth and repair", "On an empty stomach"};

static void warn(kt_diet_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(kt_diet_plan *p, const char *fmt, ...) {
    if (p->n_warnings >= KT_DIET_MAX_WARNINGS) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->warnings[p->n_warnings++], sizeof p->warnings[0], fmt, ap);
    va_end(ap);
}

/* Appends to the reasoning text (silently truncating: it is a human summary). */
static void say(kt_diet_plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(kt_diet_plan *p, const char *fmt, ...) {
    size_t len = strlen(p->reasoning);
    if (len + 1 >= sizeof p->reasoning) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->reasoning + len, sizeof p->reasoning - len, fmt, ap);
    va_end(ap);
}

static void restriction_list(const kt_diet_assessment *a, char *buf, size_t cap) {
    buf[0] = '\0';
    size_t len = 0;
    for (int i = 0; i < a->n_restrictions && len + 1 < cap; i++) {
        int w = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", a->restrictions[i]);
        if (w < 0) break;
        len += (size_t)w;
    }
}

static int meal_allowed(const kt_meal *m, unsigned required) { return (m->tags & required) == required; }

/* Day d takes the slot's (d mod min(K, 3))-th best meal: day 1 is the report's argmax, and a
 * larger library gives variety without leaving the best-scoring meals. */
static kt_status plan_slot(kt_diet_plan *p, int slot, const kt_meal_lib *lib, unsigned required, kt_err *err) {
    int rank[256], k = 0;
    double score[256];
    const char *name = kt_slot_name(slot);
    for (int i = 0; i < lib->n_meals && k < 256; i++) {
        const kt_meal *m = &lib->meals[i];
        if (!meal_allowed(m, required) || !strstr(m->id, name)) continue;
        double s = kt_diet_meal_score(m, p->targets);
        int pos = k;
        while (pos > 0 && score[pos - 1] < s) pos--; /* stable: equal scores keep library order */
        for (int j = k; j > pos; j--) {
            rank[j] = rank[j - 1];
            score[j] = score[j - 1];
        }
        rank[pos] = i;
        score[pos] = s;
        k++;
    }
    if (k == 0) {
        int first = -1;
        for (int i = 0; i < lib->n_meals && first < 0; i++)
            if (meal_allowed(&lib->meals[i], required)) first = i;
        if (first < 0) return kt_err_set(err, KT_ERR_NOTFOUND, "no meal in the library satisfies the restrictions");
        for (int d = 0; d < KT_DIET_DAYS; d++) {
            p->days[d][slot].meal = &lib->meals[first];
            p->days[d][slot].score = kt_diet_meal_score(&lib->meals[first], p->targets);
            p->days[d][slot].fallback = 1;
        }
        say(p, " No allowed meal fits %s, so the first allowed meal (%s) stands in.", name, lib->meals[first].name);
        return KT_OK;
    }
    int cycle = k < KT_DIET_ROTATION ? k : KT_DIET_ROTATION;
    for (int d = 0; d < KT_DIET_DAYS; d++) {
        p->days[d][slot].meal = &lib->meals[rank[d % cycle]];
        p->days[d][slot].score = score[d % cycle];
        p->days[d][slot].fallback = 0;
    }
    return KT_OK;
}

static void fmt_amount(double v, char *buf, size_t cap) {
    /* Up to 3 decimals, trailing zeros dropped: 58.32, 4.752, 6480. */
    snprintf(buf, cap, "%.3f", v);
    char *dot = strchr(buf, '.');
    if (!dot) return;
    char *e = buf + strlen(buf) - 1;
    while (e > dot && *e == '0') *e-- = '\0';
    if (e == dot) *e = '\0';
}

kt_status kt_diet_plan_make(kt_diet_plan *p, const kt_diet_assessment *a, const kt_diet_obs *hist, int n_hist,
                            const kt_meal_lib *lib, const kt_diet_facts *facts, int64_t now_us, kt_err *err) {
    memset(p, 0, sizeof *p);
    if (!(a->weight_kg > 0) || (a->sex != KT_SEX_FEMALE && a->sex != KT_SEX_MALE))
        return kt_err_set(err, KT_ERR_ARG, "assessment: weight must be > 0 and gender male or female");
    kt_status st = kt_diet_analyze(hist, n_hist, &p->hair, err);
    if (st) return st;
    const kt_hair_analysis *h = &p->hair;

    /* Step 2: multipliers. The report's urgency uses r > 0, not the trend label. */
    p->h = 1.0 + h->severity;
    p->u = h->rate > 0 ? 1.2 : 1.0;
    say(p, "Hair analysis: severity s = %.2f%s%s%s from %d prediction%s", h->severity, h->stage[0] ? " (" : "",
        h->stage, h->stage[0] ? ")" : "", h->n_used, h->n_used == 1 ? "" : "s");
    if (h->trend == KT_TREND_INSUFFICIENT_DATA)
        say(p, "; fewer than 2 predictions, so s defaults to 0.5 and the trend is insufficient_data.");
    else
        say(p, " over %d days; progression r = %+.3f per month, trend %s.", h->days, h->rate, kt_trend_name(h->trend));
    say(p, " Daily targets T = b x m x h x u with h = 1 + s = %.2f and u = %.1f%s.", p->h, p->u,
        p->u > 1.0 ? " (hair loss progressing)" : "");

    /* Steps 3-4: targets, and the UL cap beside them. */
    for (int n = 0; n < KT_NUT_COUNT; n++) {
        kt_nutrient_target *t = &p->targets[n];
        t->base = kt_diet_base_need((kt_nutrient)n, a->sex, a->weight_kg);
        t->multiplier = kt_diet_hair_multiplier((kt_nutrient)n);
        t->target = t->base * t->multiplier * p->h * p->u;
        t->per_meal = t->target / 3.0;
        t->upper_limit = facts ? facts->nutrients[n].upper_limit : 0.0;
        t->capped = t->upper_limit > 0 && t->target > t->upper_limit;
        t->recommended = t->capped ? t->upper_limit : t->target;
        if (t->capped) {
            char tv[32], ul[32];
            fmt_amount(t->target, tv, sizeof tv);
            fmt_amount(t->upper_limit, ul, sizeof ul);
            const char *u = kt_nutrient_unit((kt_nutrient)n);
            warn(p, "%s: the formula target %s %s/day exceeds the adult tolerable upper intake level (%s %s/day); "
                    "recommended amount capped at %s %s/day",
                 kt_nutrient_label((kt_nutrient)n), tv, u, ul, u, ul, u);
            say(p, " %s is capped at its upper limit %s %s (formula %s %s).", kt_nutrient_label((kt_nutrient)n), ul, u,
                tv, u);
        }
    }

    /* Step 5: restriction filtering (unknown restrictions cannot be honoured: say so). */
    char rl[800];
    restriction_list(a, rl, sizeof rl);
    if (a->n_restrictions) say(p, " Meals and snacks respect: %s.", rl);
    for (int i = 0; i < a->n_restrictions; i++)
        if (a->unknown_restrictions & (1u << i))
            warn(p, "dietary restriction '%s' is not known to the meal library; meals were not filtered for it",
                 a->restrictions[i]);
    int any = 0;
    for (int i = 0; i < lib->n_meals; i++) any |= meal_allowed(&lib->meals[i], a->required_tags);
    if (!any) return kt_err_set(err, KT_ERR_NOTFOUND, "no meal in the library satisfies the restrictions (%s)", rl);

    /* Step 6: per-slot scoring and selection. */
    for (int s = 0; s < KT_SLOT_COUNT; s++)
        if ((st = plan_slot(p, s, lib, a->required_tags, err))) return st;

    /* Step 7: the first three allowed snacks, in library order. */
    for (int i = 0; i < lib->n_snacks && p->n_snacks < KT_DIET_SNACKS; i++)
        if ((lib->snacks[i].tags & a->required_tags) == a->required_tags) p->snacks[p->n_snacks++] = &lib->snacks[i];

    /* Step 8: supplements from the current severity (not a fixed stage, unlike the original code). */
    double s = h->severity;
    if (s > 0.6) {
        int plant = (a->required_tags & (KT_TAG_VEGETARIAN | KT_TAG_VEGAN)) != 0;
        p->supplements[p->n_supplements++] = supp_biotin;
        p->supplements[p->n_supplements++] = supp_iron;
        p->supplements[p->n_supplements++] = plant ? supp_algae_oil : supp_fish_oil;
        say(p, " Severity above 0.6 adds biotin, iron + vitamin C and omega-3%s supplements.", plant ? " (algae oil)" : "");
    }
    if (a->sex == KT_SEX_MALE || s > 0.7) {
        p->supplements[p->n_supplements++] = supp_zinc;
        say(p, " Zinc is added (%s).", s > 0.7 ? "severity above 0.7" : "male");
    }

    /* Step 9: confidence. */
    p->c_d = fmin(1.0, h->n_used / 6.0);
    p->c_a = a->completeness / 10.0;
    p->confidence = fmin(0.7 + 0.2 * p->c_d + 0.1 * p->c_a, 0.95);
    say(p, " Confidence %.2f from %d of 6 predictions and %d of 10 assessment fields.", p->confidence, h->n_used,
        a->completeness);
    say(p, " Doses are illustrative; consult a clinician before starting supplements.");

    p->created_us = now_us;
    p->next_review_us = now_us + 30 * KT_US_PER_DAY;
    return KT_OK;
}
