/* The diet engine's inputs and outputs as text: assessment JSON (validated as POST /diet/assessment
 * does), history CSV (timestamp, stage[, confidence]) and the recommendation bundle as JSON. */
#ifndef KT_SERVE_DIET_JSON_H
#define KT_SERVE_DIET_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "base/status.h"
#include "serve/diet.h"

/* Limits the assessment validation enforces (the engine's reference values are adult ones). */
#define KT_DIET_AGE_MIN 18
#define KT_DIET_AGE_MAX 120
#define KT_DIET_WEIGHT_MIN 20.0  /* kg */
#define KT_DIET_WEIGHT_MAX 400.0 /* kg */
#define KT_DIET_HEIGHT_MIN 50.0  /* cm */
#define KT_DIET_HEIGHT_MAX 272.0 /* cm */
#define KT_DIET_LIST_MAX 32      /* items in health_conditions / medications */
#define KT_DIET_TEXT_MAX 200     /* bytes in one free-text item */

/* Validates an assessment object {age, gender, weight, height, activity_level, dietary_restrictions,
 * current_diet_pattern, health_conditions, medications[, assessment_date]} and fills a. Required:
 * age, gender, weight, height, activity_level. On failure bad_field (>= 32 bytes, may be NULL) gets
 * the offending field's name and err says what is wrong with it. Unknown keys are ignored.
 * K counts assessment_date as filled (the server always stamps it; a file without one gets today). */
kt_status kt_diet_assessment_parse(const cJSON *obj, kt_diet_assessment *a, char *bad_field, kt_err *err);

/* History CSV: one prediction a line, "timestamp,stage[,confidence]"; blank lines and '#' comments
 * skipped; an optional header line starting with "timestamp". stage is LEVEL_2..LEVEL_7 or a
 * severity number in [0, 1]. Errors name origin, line and field. *obs is malloc'd (free it). */
kt_status kt_diet_history_parse_csv(const char *text, size_t len, const char *origin, kt_diet_obs **obs, int *n,
                                    kt_err *err);

/* The bundle: hair_stage_at_time, recommended_nutrients {n: {daily_target, unit, sources, importance,
 * base_need, multiplier, per_meal_target, upper_limit, recommended_amount, capped[, warning]}},
 * meal_plan {day_1..day_7: {breakfast, lunch, dinner, snacks}}, supplements, foods_to_avoid,
 * confidence_score, reasoning, hair_analysis, multipliers, warnings, next_review_date.
 * Numbers are rounded to 3 decimals (T_n stays the formula's value at that precision). */
cJSON *kt_diet_plan_to_json(const kt_diet_plan *p, const kt_diet_facts *facts);
cJSON *kt_diet_hair_analysis_to_json(const kt_hair_analysis *h);

/* x rounded to 3 decimals (what the JSON carries). */
double kt_round3(double x);

#endif
