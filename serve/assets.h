/* Files compiled into the program (the JSON under serve/data, the page under serve/web), so `keratrack`
 * is self-contained: the build turns each into a byte array (serve/assets.cmake); look them up by path. */
#ifndef KT_SERVE_ASSETS_H
#define KT_SERVE_ASSETS_H

#include <stddef.h>

typedef struct kt_asset {
    const char *name;          /* path relative to serve/, e.g. "data/meals.json", "web/index.html" */
    const unsigned char *data; /* (len + 1) bytes: the file, then a NUL so text can be used as a string */
    size_t len;                /* bytes, without the NUL */
} kt_asset;

/* The embedded file called name, or NULL. */
const kt_asset *kt_asset_find(const char *name);
/* All embedded files (for listing); *n gets the count. */
const kt_asset *kt_asset_all(int *n);

#endif
