/* The diet engine's data: the meal library (meals + snacks, tagged by the restrictions they satisfy)
 * and the nutrient facts (sources, importance, upper limits, foods to avoid), loaded from JSON. */
#ifndef KT_SERVE_DIET_LIBRARY_H
#define KT_SERVE_DIET_LIBRARY_H

#include <stddef.h>

#include "base/status.h"
#include "serve/nutrient.h"

/* Dietary restrictions a meal can satisfy. Consistency is checked at load: vegan implies
 * vegetarian and dairy_free; vegetarian implies pescatarian. */
typedef enum {
    KT_TAG_VEGETARIAN = 1u << 0,
    KT_TAG_VEGAN = 1u << 1,
    KT_TAG_PESCATARIAN = 1u << 2,
    KT_TAG_GLUTEN_FREE = 1u << 3,
    KT_TAG_DAIRY_FREE = 1u << 4,
    KT_TAG_NUT_FREE = 1u << 5,
} kt_diet_tag;
#define KT_TAG_COUNT 6

/* The tag bit for a restriction as users write it: case, '-', ' ' and '_' are ignored, so
 * "Gluten-Free", "gluten free" and "gluten_free" are one; "lactose-free" means dairy_free and
 * "no nuts"/"nut allergy" nut_free. Returns 0 for "none"/"" and -1 for an unknown restriction. */
int kt_diet_tag_from_name(const char *restriction, unsigned *bit);
const char *kt_diet_tag_name(unsigned bit); /* "vegetarian", ..., "nut_free" */

typedef struct kt_meal {
    char *id;                       /* "iron_rich_lunch"; fits slot X when it contains "X" */
    char *name;                     /* "Lentil and Spinach Salad" */
    char **ingredients;             /* (n_ingredients) strings */
    int n_ingredients;
    double nutrients[KT_NUT_COUNT]; /* per serving, in kt_nutrient_unit(); 0 where not listed */
    unsigned listed;                /* bit n: the data listed nutrient n (only those are reported) */
    unsigned tags;                  /* KT_TAG_* it satisfies */
} kt_meal;

typedef struct kt_snack {
    char *text; /* "Handful of walnuts (omega-3)" */
    unsigned tags;
} kt_snack;

typedef struct kt_meal_lib {
    kt_meal *meals; /* (n_meals), in file order: ties and fallbacks follow this order */
    int n_meals;
    kt_snack *snacks; /* (n_snacks), in offer order */
    int n_snacks;
} kt_meal_lib;

/* Parses a library {"meals": [...], "snacks": [...]}; origin names the file in errors, which say
 * which meal/field is wrong. An empty meal list, duplicate ids, unknown nutrients or tags, negative
 * amounts and inconsistent tags are errors. */
kt_status kt_meal_lib_parse(kt_meal_lib *lib, const char *json, size_t len, const char *origin, kt_err *err);
kt_status kt_meal_lib_load(kt_meal_lib *lib, const char *path, kt_err *err);
/* The library compiled into the program (serve/data/meals.json). */
kt_status kt_meal_lib_load_default(kt_meal_lib *lib, kt_err *err);
void kt_meal_lib_free(kt_meal_lib *lib);

typedef struct kt_nutrient_facts {
    char **sources;  /* (n_sources) food sources */
    int n_sources;
    char *importance;
    double upper_limit;      /* adult UL in the nutrient's unit; 0 = none established */
    char *upper_limit_source; /* citation of the UL, NULL when none */
} kt_nutrient_facts;

typedef struct kt_diet_facts {
    kt_nutrient_facts nutrients[KT_NUT_COUNT];
    char **foods_to_avoid; /* (n_foods_to_avoid) */
    int n_foods_to_avoid;
} kt_diet_facts;

/* Parses serve/data/nutrients.json's format: every nutrient present, its unit equal to
 * kt_nutrient_unit() (so a mg/mcg slip cannot pass), each UL with a citation. */
kt_status kt_diet_facts_parse(kt_diet_facts *f, const char *json, size_t len, const char *origin, kt_err *err);
kt_status kt_diet_facts_load_default(kt_diet_facts *f, kt_err *err);
void kt_diet_facts_free(kt_diet_facts *f);

#endif
