/* The Keratrack diet engine (report seeds/000 sections 4.4-4.7, facts in shared/API.md): hair-stage
 * history -> severity s and trend r; T_n = b_n * m_n * (1 + s) * u; meal plan, snacks, supplements, C. */
#ifndef KT_SERVE_DIET_H
#define KT_SERVE_DIET_H

#include <stdint.h>

#include "base/status.h"
#include "serve/diet_library.h"
#include "serve/nutrient.h"

/* ---- hair analysis ---------------------------------------------------------------------------- */
typedef enum { KT_SEX_FEMALE = 0, KT_SEX_MALE = 1 } kt_sex;
typedef enum {
    KT_TREND_INSUFFICIENT_DATA = 0, /* fewer than 2 predictions */
    KT_TREND_STABLE,
    KT_TREND_IMPROVING, /* r < -0.05 per month */
    KT_TREND_WORSENING  /* r > +0.05 per month */
} kt_trend;
const char *kt_trend_name(kt_trend t); /* "insufficient_data", "stable", "improving", "worsening" */

#define KT_DIET_HISTORY_MAX 6 /* the report uses the user's last 6 predictions */
#define KT_DIET_STAGE_MAX 64

/* LEVEL_2 0.2, LEVEL_3 0.4, LEVEL_4 0.6, LEVEL_5 0.8, LEVEL_6 0.9, LEVEL_7 1.0 (API.md). Any other
 * string is KT_ERR_NOTFOUND with a message listing the known stages. */
kt_status kt_diet_stage_severity(const char *stage, double *severity, kt_err *err);

/* One prediction of the user's history. */
typedef struct kt_diet_obs {
    int64_t time_us;                /* when it was made, microseconds since the epoch (UTC) */
    double severity;                /* s in [0, 1] */
    char stage[KT_DIET_STAGE_MAX];  /* "LEVEL_5", or "" when the history gave a severity directly */
} kt_diet_obs;

typedef struct kt_hair_analysis {
    int n_used;           /* predictions used: min(N, 6) of the newest */
    double severity;      /* s: newest prediction's severity; 0.5 with fewer than 2 */
    double rate;          /* r per 30 days: (s(t0) - s(tn)) / max(1, days(t0, tn)) * 30; 0 with < 2 */
    int days;             /* whole days between the newest (t0) and oldest used (tn) prediction */
    kt_trend trend;
    char stage[KT_DIET_STAGE_MAX]; /* the newest prediction's stage ("" if none or given as s) */
} kt_hair_analysis;

/* Uses the KT_DIET_HISTORY_MAX newest of obs (any order; ties keep input order). days() counts
 * whole days like Python's timedelta.days (floor). Fails on a severity outside [0, 1]. */
kt_status kt_diet_analyze(const kt_diet_obs *obs, int n, kt_hair_analysis *out, kt_err *err);

/* ---- the user's assessment (POST /diet/assessment) ------------------------------------------- */
typedef enum { KT_ACTIVITY_SEDENTARY = 0, KT_ACTIVITY_MODERATE, KT_ACTIVITY_ACTIVE } kt_activity;
#define KT_DIET_MAX_RESTRICTIONS 16

typedef struct kt_diet_assessment {
    int age;             /* years, 1..120 */
    kt_sex sex;
    double weight_kg;    /* 20..400 */
    double height_cm;    /* 50..260 */
    kt_activity activity;
    unsigned required_tags; /* KT_TAG_* bits every offered meal and snack must carry */
    int n_restrictions;
    char restrictions[KT_DIET_MAX_RESTRICTIONS][48]; /* as the user wrote them (trimmed, <= 47 bytes) */
    unsigned unknown_restrictions;                   /* bit i: restrictions[i] is not a known tag */
    int completeness; /* K: non-null fields of the ten (age, gender, weight, height, activity_level,
                       * dietary_restrictions, current_diet_pattern, health_conditions, medications,
                       * assessment_date) */
} kt_diet_assessment;

/* ---- targets, plan, bundle ------------------------------------------------------------------ */
typedef struct kt_nutrient_target {
    double base;        /* b_n, in the nutrient's unit */
    double multiplier;  /* m_n */
    double target;      /* T_n = b_n * m_n * h * u, unrounded */
    double per_meal;    /* T_n / 3 (what meals are scored against) */
    double upper_limit; /* adult UL in the nutrient's unit; 0 = none established */
    double recommended; /* min(T_n, UL): the amount we recommend */
    int capped;         /* 1 when the UL bounded the recommendation */
} kt_nutrient_target;

typedef struct kt_meal_pick {
    const kt_meal *meal; /* points into the kt_meal_lib the plan was made from */
    double score;        /* sum over nutrients of 1 (A >= 0.8 T/3) or 0.5 (A >= 0.5 T/3) */
    int fallback;        /* 1: no allowed meal fits the slot; the first allowed meal stands in */
} kt_meal_pick;

typedef struct kt_supplement {
    const char *name, *dosage, *reason, *timing; /* static strings */
} kt_supplement;

enum { KT_SLOT_BREAKFAST = 0, KT_SLOT_LUNCH, KT_SLOT_DINNER, KT_SLOT_COUNT };
const char *kt_slot_name(int slot); /* "breakfast", "lunch", "dinner" */

#define KT_DIET_DAYS 7
#define KT_DIET_SNACKS 3
#define KT_DIET_ROTATION 3 /* days cycle through the slot's 3 best-scoring meals */
#define KT_DIET_MAX_WARNINGS 16

typedef struct kt_diet_plan {
    kt_hair_analysis hair;
    double h, u;                               /* severity (1 + s) and urgency (1.2 if r > 0) multipliers */
    kt_nutrient_target targets[KT_NUT_COUNT];
    kt_meal_pick days[KT_DIET_DAYS][KT_SLOT_COUNT]; /* day 0 = the report's argmax per slot */
    const kt_snack *snacks[KT_DIET_SNACKS];
    int n_snacks;
    kt_supplement supplements[4];
    int n_supplements;
    double c_d, c_a, confidence;               /* min(1, Np/6), K/10, min(0.7 + 0.2 c_d + 0.1 c_a, 0.95) */
    int64_t created_us, next_review_us;        /* next review = created + 30 days */
    int n_warnings;
    char warnings[KT_DIET_MAX_WARNINGS][256];
    char reasoning[2048];
} kt_diet_plan;

/* Base need b_n for a sex and weight (report 4.6), and the hair multiplier m_n. */
double kt_diet_base_need(kt_nutrient n, kt_sex sex, double weight_kg);
double kt_diet_hair_multiplier(kt_nutrient n);

/* The whole engine: analysis of hist (any order; the newest 6 are used), targets, restriction
 * filtering, per-slot scoring and selection with the report's fallback, snacks, supplements,
 * confidence, warnings (UL caps, unknown restrictions) and reasoning. now_us stamps the plan. */
kt_status kt_diet_plan_make(kt_diet_plan *plan, const kt_diet_assessment *a, const kt_diet_obs *hist, int n_hist,
                            const kt_meal_lib *lib, const kt_diet_facts *facts, int64_t now_us, kt_err *err);

/* Score of meal m against the per-meal targets of plan (report 4.6). */
double kt_diet_meal_score(const kt_meal *m, const kt_nutrient_target targets[KT_NUT_COUNT]);

#endif
