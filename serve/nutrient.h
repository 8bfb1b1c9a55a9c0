/* The seven nutrients the diet engine tracks, with their fixed units (set by the report's base
 * needs: protein g, iron mg, biotin mcg, zinc mg, omega-3 g, vitamin D IU, vitamin C mg). */
#ifndef KT_SERVE_NUTRIENT_H
#define KT_SERVE_NUTRIENT_H

typedef enum {
    KT_NUT_PROTEIN = 0, /* g */
    KT_NUT_IRON,        /* mg */
    KT_NUT_BIOTIN,      /* mcg */
    KT_NUT_ZINC,        /* mg */
    KT_NUT_OMEGA3,      /* g */
    KT_NUT_VITAMIN_D,   /* IU */
    KT_NUT_VITAMIN_C,   /* mg */
    KT_NUT_COUNT
} kt_nutrient;

const char *kt_nutrient_name(kt_nutrient n);  /* "protein", "iron", ..., "vitamin_d", "vitamin_c" */
const char *kt_nutrient_unit(kt_nutrient n);  /* "g", "mg", "mcg", "mg", "g", "IU", "mg" */
const char *kt_nutrient_label(kt_nutrient n); /* "Protein", ..., "Omega-3", "Vitamin D" (for tables) */
int kt_nutrient_from_name(const char *name);  /* the kt_nutrient, or -1 */

#endif
