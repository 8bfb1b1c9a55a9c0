/* Lookup over the table the build generates (generated/kt_assets_data.c). */
#include "serve/assets.h"

#include <string.h>

extern const kt_asset kt_assets_table[];
extern const int kt_assets_table_count;

const kt_asset *kt_asset_find(const char *name) {
    for (int i = 0; i < kt_assets_table_count; i++)
        if (!strcmp(kt_assets_table[i].name, name)) return &kt_assets_table[i];
    return NULL;
}

const kt_asset *kt_asset_all(int *n) {
    *n = kt_assets_table_count;
    return kt_assets_table;
}
