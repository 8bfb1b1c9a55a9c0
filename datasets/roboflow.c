/* Reads Roboflow CSV exports and folder-per-class trees into a kt_dataset. The CSV reader takes
 * what real exports contain: a space after each comma or none, quoted fields (with "" escapes and
 * line breaks), CRLF or CR endings, a UTF-8 BOM, a missing final newline, blank lines. */
#include "datasets/roboflow.h"

#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/fileio.h"
#include "datasets/csv.h"
#include "datasets/image.h"
#include "datasets/strmap.h"

/* snprintf whose truncation is acceptable (paths and messages are bounded for display). */
static void sfmt(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sfmt(char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

static const char *const split_names[KT_SPLIT_COUNT] = {"train", "valid", "test"};

const char *kt_split_name(int split) { return split >= 0 && split < KT_SPLIT_COUNT ? split_names[split] : "?"; }

void kt_dataset_opts_default(kt_dataset_opts *o) {
    memset(o, 0, sizeof *o);
    o->verify = KT_VERIFY_HEADER;
    o->labels = KT_LABELS_AUTO;
    o->max_messages = 100;
}

void kt_dataset_close(kt_dataset *ds) {
    for (int i = 0; i < ds->n_classes; i++) free(ds->class_names[i]);
    free(ds->class_names);
    for (int64_t i = 0; i < ds->n_items; i++) free(ds->items[i].path);
    free(ds->items);
    free(ds->targets);
    for (int i = 0; i < ds->n_messages; i++) free(ds->messages[i]);
    free(ds->messages);
    free(ds->root);
    memset(ds, 0, sizeof *ds);
}

/* ---- building state ------------------------------------------------------------------------ */

typedef struct builder {
    kt_dataset *ds;
    kt_dataset_opts o;
    int64_t cap;      /* items allocated (targets follow) */
    int64_t *ones;    /* (cap) number of 1s in each item's row, for single/multi detection */
    kt_decoder dec;
    kt_image img;
    char path[8192];  /* scratch for full paths */
} builder;

static void add_message(builder *b, const char *msg) {
    kt_dataset *ds = b->ds;
    if (ds->n_messages >= b->o.max_messages) return;
    char **m = realloc(ds->messages, (size_t)(ds->n_messages + 1) * sizeof *m);
    if (!m) return;
    ds->messages = m;
    m[ds->n_messages] = strdup(msg);
    if (m[ds->n_messages]) ds->n_messages++;
}

/* A bad row or image: an error when strict, else counted and remembered. Returns the status the
 * caller should return (KT_OK = skip the row and go on). */
static kt_status problem(builder *b, int image, kt_status code, kt_err *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static kt_status problem(builder *b, int image, kt_status code, kt_err *err, const char *fmt, ...) {
    char msg[KT_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (b->o.strict) return kt_err_set(err, code, "%s (strict mode: fix the dataset or drop --strict)", msg);
    if (image) b->ds->n_bad_images++;
    else b->ds->n_bad_rows++;
    add_message(b, msg);
    return KT_OK;
}

static kt_status add_item(builder *b, char *path, int split, int line, const float *row, int64_t ones, kt_err *err) {
    kt_dataset *ds = b->ds;
    if (ds->n_items == b->cap) {
        int64_t cap = b->cap ? b->cap * 2 : 256;
        kt_ds_item *it = realloc(ds->items, (size_t)cap * sizeof *it);
        if (it) ds->items = it;
        float *t = realloc(ds->targets, (size_t)cap * (size_t)ds->n_classes * sizeof *t);
        if (t) ds->targets = t;
        int64_t *on = realloc(b->ones, (size_t)cap * sizeof *on);
        if (on) b->ones = on;
        if (!it || !t || !on) return kt_err_set(err, KT_ERR_NOMEM, "no memory for %lld dataset items", (long long)cap);
        b->cap = cap;
    }
    kt_ds_item *it = &ds->items[ds->n_items];
    it->path = path;
    it->label = -1;
    it->split = split;
    it->line = line;
    memcpy(ds->targets + ds->n_items * ds->n_classes, row, (size_t)ds->n_classes * sizeof(float));
    b->ones[ds->n_items] = ones;
    ds->n_items++;
    ds->split_count[split]++;
    return KT_OK;
}

/* Checks one listed image as opts.verify says; on a problem writes why into why and returns 0. */
static int image_ok(builder *b, const char *rel, char *why, size_t n) {
    if (b->o.verify == KT_VERIFY_NONE) return 1;
    sfmt(b->path, sizeof b->path, "%s/%s", b->ds->root, rel);
    struct stat st;
    if (stat(b->path, &st) != 0 || !S_ISREG(st.st_mode)) {
        sfmt(why, n, "image %s is missing", rel);
        return 0;
    }
    if (b->o.verify == KT_VERIFY_EXISTS) return 1;
    kt_err e = {0};
    const uint8_t *data;
    size_t len;
    kt_decode_opts dopt = {.max_pixels = b->o.max_pixels};
    kt_image_header hdr;
    if (kt_decoder_read_file(&b->dec, b->path, &data, &len, &e) != KT_OK ||
        kt_image_probe(&b->dec, data, len, &dopt, &hdr, &e) != KT_OK) {
        sfmt(why, n, "image %s: %s", rel, e.msg);
        return 0;
    }
    if (!hdr.complete) {
        sfmt(why, n, "image %s: truncated %s (%zu bytes, no end marker)", rel,
                 hdr.format == KT_IMG_PNG ? "PNG" : "JPEG", len);
        return 0;
    }
    if (b->o.verify == KT_VERIFY_DECODE && kt_image_decode(&b->dec, data, len, &dopt, &b->img, &e) != KT_OK) {
        sfmt(why, n, "image %s: %s", rel, e.msg);
        return 0;
    }
    return 1;
}

/* ---- CSV ------------------------------------------------------------------------------------- */

/* "0", "1", "0.0", "1.0" -> 0/1; anything else -> -1. */
static int parse_flag(const char *s) {
    if (!*s) return -1;
    char *end;
    double v = strtod(s, &end);
    if (*end != '\0') return -1;
    return v == 0.0 ? 0 : v == 1.0 ? 1 : -1;
}

static kt_status set_classes(builder *b, char **names, int n, const char *where, kt_err *err) {
    kt_dataset *ds = b->ds;
    ds->class_names = calloc((size_t)n, sizeof *ds->class_names);
    if (!ds->class_names) return kt_err_set(err, KT_ERR_NOMEM, "no memory for %d class names", n);
    for (int i = 0; i < n; i++) {
        if (!names[i][0]) return kt_err_set(err, KT_ERR_FORMAT, "%s: class %d has an empty name", where, i + 1);
        for (int j = 0; j < i; j++)
            if (!strcmp(names[i], names[j]))
                return kt_err_set(err, KT_ERR_FORMAT, "%s: class '%s' appears twice", where, names[i]);
        ds->class_names[i] = strdup(names[i]);
        if (!ds->class_names[i]) return kt_err_set(err, KT_ERR_NOMEM, "no memory for class names");
        ds->n_classes = i + 1;
    }
    return KT_OK;
}

static kt_status read_csv_split(builder *b, int split, const char *dir, kt_err *err) {
    kt_dataset *ds = b->ds;
    char name[512];
    sfmt(name, sizeof name, "%s/_classes.csv", dir);
    sfmt(b->path, sizeof b->path, "%s/%s", ds->root, name);
    char *text = NULL;
    size_t len = 0;
    kt_status st = kt_file_read(b->path, &text, &len, err);
    if (st != KT_OK) return st;
    kt_csv c;
    kt_csv_init(&c, text, len);
    int *colmap = NULL;
    float *row = NULL;
    kt_strmap seen = {0};
    char **dead = NULL; /* paths of skipped images, still keys in seen */
    int n_dead = 0;
    int line, r = kt_csv_next(&c, &line, name, err);
    if (r <= 0) {
        st = r < 0 ? err->code : kt_err_set(err, KT_ERR_FORMAT, "%s is empty: expected a header 'filename, A, B, ...'", name);
        goto done;
    }
    if (strcasecmp(c.fields[0], "filename") != 0) {
        st = kt_err_set(err, KT_ERR_FORMAT, "%s:%d: first column is '%s', expected 'filename'", name, line, c.fields[0]);
        goto done;
    }
    int ncols = c.n_fields - 1;
    if (ncols < 1) {
        st = kt_err_set(err, KT_ERR_FORMAT, "%s:%d: the header names no class columns", name, line);
        goto done;
    }
    char where[600];
    sfmt(where, sizeof where, "%s:%d", name, line);
    if (ds->n_classes == 0 && (st = set_classes(b, c.fields + 1, ncols, where, err)) != KT_OK) goto done;
    colmap = malloc((size_t)ncols * sizeof *colmap);
    row = malloc((size_t)ds->n_classes * sizeof *row);
    if (!colmap || !row) {
        st = kt_err_set(err, KT_ERR_NOMEM, "no memory for %s", name);
        goto done;
    }
    /* Columns are matched by name, so another split may order them differently. */
    for (int j = 0; j < ncols; j++) {
        colmap[j] = kt_dataset_class_index(ds, c.fields[1 + j]);
        if (colmap[j] < 0) {
            st = kt_err_set(err, KT_ERR_FORMAT, "%s: unknown class column '%s' (%s has %d classes, first '%s')", where,
                            c.fields[1 + j], kt_split_name(KT_SPLIT_TRAIN), ds->n_classes, ds->class_names[0]);
            goto done;
        }
        for (int i = 0; i < j; i++)
            if (colmap[i] == colmap[j]) {
                st = kt_err_set(err, KT_ERR_FORMAT, "%s: class column '%s' appears twice", where, c.fields[1 + j]);
                goto done;
            }
    }
    if (ncols != ds->n_classes) {
        for (int k = 0; k < ds->n_classes; k++) {
            int found = 0;
            for (int j = 0; j < ncols; j++) found |= colmap[j] == k;
            if (!found) {
                st = kt_err_set(err, KT_ERR_FORMAT, "%s: class column '%s' is missing", where, ds->class_names[k]);
                goto done;
            }
        }
    }
    if ((st = kt_strmap_init(&seen, 1024, err)) != KT_OK) goto done;
    while ((r = kt_csv_next(&c, &line, name, err)) == 1) {
        if (c.n_fields != ncols + 1) {
            st = problem(b, 0, KT_ERR_FORMAT, err, "%s:%d: %d fields, expected %d (filename + %d classes)", name, line,
                         c.n_fields, ncols + 1, ncols);
            if (st != KT_OK) goto done;
            continue;
        }
        const char *fn = c.fields[0];
        if (!fn[0] || strchr(fn, '/') || strchr(fn, '\\') || !strcmp(fn, ".") || !strcmp(fn, "..")) {
            st = problem(b, 0, KT_ERR_FORMAT, err, "%s:%d: file name '%s' is not a plain name in %s/", name, line, fn, dir);
            if (st != KT_OK) goto done;
            continue;
        }
        int64_t ones = 0, bad_col = -1;
        for (int j = 0; j < ncols && bad_col < 0; j++) {
            int v = parse_flag(c.fields[1 + j]);
            if (v < 0) bad_col = j;
            row[colmap[j]] = (float)(v > 0);
            ones += v > 0;
        }
        if (bad_col >= 0) {
            st = problem(b, 0, KT_ERR_FORMAT, err, "%s:%d: value '%s' in column '%s' is not 0 or 1", name, line,
                         c.fields[1 + bad_col], ds->class_names[colmap[bad_col]]);
            if (st != KT_OK) goto done;
            continue;
        }
        if (b->o.labels == KT_LABELS_SINGLE && ones != 1) {
            st = problem(b, 0, KT_ERR_FORMAT, err, "%s:%d: %lld classes marked, a single-label row needs exactly one",
                         name, line, (long long)ones);
            if (st != KT_OK) goto done;
            continue;
        }
        size_t plen = strlen(dir) + 1 + strlen(fn) + 1;
        char *path = malloc(plen);
        if (!path) {
            st = kt_err_set(err, KT_ERR_NOMEM, "no memory for file names");
            goto done;
        }
        snprintf(path, plen, "%s/%s", dir, fn);
        int64_t old;
        if ((st = kt_strmap_put(&seen, path, line, &old, err)) != KT_OK) {
            free(path);
            goto done;
        }
        if (old >= 0) {
            free(path);
            st = problem(b, 0, KT_ERR_FORMAT, err, "%s:%d: duplicate file name '%s' (first at line %lld)", name, line, fn,
                         (long long)old);
            if (st != KT_OK) goto done;
            continue;
        }
        char why[KT_ERR_MSG_MAX];
        if (!image_ok(b, path, why, sizeof why)) {
            /* The map still borrows path (a later duplicate must be caught): keep it until the end. */
            char **d = realloc(dead, (size_t)(n_dead + 1) * sizeof *d);
            if (!d) {
                free(path);
                st = kt_err_set(err, KT_ERR_NOMEM, "no memory for file names");
                goto done;
            }
            dead = d;
            dead[n_dead++] = path;
            st = problem(b, 1, KT_ERR_FORMAT, err, "%s:%d: %s", name, line, why);
            if (st != KT_OK) goto done;
            continue;
        }
        if ((st = add_item(b, path, split, line, row, ones, err)) != KT_OK) {
            free(path);
            goto done;
        }
    }
    if (r < 0) st = err->code;
done:
    kt_strmap_free(&seen);
    for (int i = 0; i < n_dead; i++) free(dead[i]);
    free(dead);
    kt_csv_free(&c);
    free(colmap);
    free(row);
    free(text);
    return st;
}

/* ---- folder-per-class layout ---------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted names in dir that are sub-folders (want_dirs) or image files (by extension). */
static kt_status list_dir(const char *dir, int want_dirs, char ***out, int *n_out, kt_err *err) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) return kt_err_set(err, KT_ERR_IO, "cannot list %s", dir);
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    char full[8192];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* ., .., hidden files */
        sfmt(full, sizeof full, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(full, &st) != 0) continue;
        if (want_dirs ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) continue;
        if (!want_dirs) {
            const char *dot = strrchr(e->d_name, '.');
            if (!dot || (strcasecmp(dot, ".jpg") && strcasecmp(dot, ".jpeg") && strcasecmp(dot, ".png"))) continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **m = realloc(names, (size_t)cap * sizeof *m);
            if (!m) goto nomem;
            names = m;
        }
        if (!(names[n] = strdup(e->d_name))) goto nomem;
        n++;
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_str);
    *out = names;
    *n_out = n;
    return KT_OK;
nomem:
    closedir(d);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return kt_err_set(err, KT_ERR_NOMEM, "no memory listing %s", dir);
}

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static kt_status read_folder_split(builder *b, int split, const char *dir, kt_err *err) {
    kt_dataset *ds = b->ds;
    char base[8192];
    sfmt(base, sizeof base, "%s/%s", ds->root, dir);
    char **classes;
    int nc;
    kt_status st = list_dir(base, 1, &classes, &nc, err);
    if (st != KT_OK) return st;
    if (ds->n_classes == 0) {
        if (nc == 0) {
            free_names(classes, nc);
            return kt_err_set(err, KT_ERR_FORMAT, "%s/ holds no class folders", dir);
        }
        if ((st = set_classes(b, classes, nc, dir, err)) != KT_OK) goto out;
    }
    float *row = malloc((size_t)ds->n_classes * sizeof *row);
    if (!row) {
        st = kt_err_set(err, KT_ERR_NOMEM, "no memory");
        goto out;
    }
    for (int ci = 0; ci < nc && st == KT_OK; ci++) {
        int k = kt_dataset_class_index(ds, classes[ci]);
        if (k < 0) {
            st = kt_err_set(err, KT_ERR_FORMAT, "%s/%s/: unknown class folder (train has %d classes, first '%s')", dir,
                            classes[ci], ds->n_classes, ds->class_names[0]);
            break;
        }
        char cdir[8192];
        sfmt(cdir, sizeof cdir, "%s/%s", base, classes[ci]);
        char **files;
        int nf;
        if ((st = list_dir(cdir, 0, &files, &nf, err)) != KT_OK) break;
        for (int i = 0; i < ds->n_classes; i++) row[i] = (float)(i == k);
        for (int fi = 0; fi < nf && st == KT_OK; fi++) {
            size_t plen = strlen(dir) + strlen(classes[ci]) + strlen(files[fi]) + 3;
            char *path = malloc(plen);
            if (!path) {
                st = kt_err_set(err, KT_ERR_NOMEM, "no memory for file names");
                break;
            }
            snprintf(path, plen, "%s/%s/%s", dir, classes[ci], files[fi]);
            char why[KT_ERR_MSG_MAX];
            if (!image_ok(b, path, why, sizeof why)) {
                st = problem(b, 1, KT_ERR_FORMAT, err, "%s", why);
                free(path);
                continue;
            }
            if ((st = add_item(b, path, split, 0, row, 1, err)) != KT_OK) free(path);
        }
        free_names(files, nf);
    }
    free(row);
out:
    free_names(classes, nc);
    return st;
}

/* ---- open ------------------------------------------------------------------------------------ */

static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The folder name a split uses in this dataset, or NULL when absent. */
static const char *split_dir(const char *root, int split, int csv_layout) {
    static const char *const alias[KT_SPLIT_COUNT][3] = {{"train"}, {"valid", "val", "validation"}, {"test"}};
    char p[8192];
    for (int i = 0; i < 3 && alias[split][i]; i++) {
        if (csv_layout) sfmt(p, sizeof p, "%s/%s/_classes.csv", root, alias[split][i]);
        else sfmt(p, sizeof p, "%s/%s", root, alias[split][i]);
        if (csv_layout ? is_file(p) : is_dir(p)) return alias[split][i];
    }
    return NULL;
}

kt_status kt_dataset_open(kt_dataset *ds, const char *root, const kt_dataset_opts *opts, kt_err *err) {
    memset(ds, 0, sizeof *ds);
    builder b = {.ds = ds};
    kt_dataset_opts_default(&b.o);
    if (opts) b.o = *opts;
    if (b.o.max_messages <= 0) b.o.max_messages = 100;
    if (!is_dir(root))
        return kt_err_set(err, KT_ERR_NOTFOUND, "dataset folder %s does not exist", root);
    ds->root = strdup(root);
    if (!ds->root) return kt_err_set(err, KT_ERR_NOMEM, "no memory");
    size_t rl = strlen(ds->root);
    while (rl > 1 && ds->root[rl - 1] == '/') ds->root[--rl] = '\0';
    kt_status st = kt_decoder_init(&b.dec, err);
    if (st != KT_OK) {
        kt_dataset_close(ds);
        return st;
    }
    kt_image_init(&b.img);
    int csv_layout = split_dir(ds->root, KT_SPLIT_TRAIN, 1) != NULL;
    if (!csv_layout && !split_dir(ds->root, KT_SPLIT_TRAIN, 0)) {
        st = kt_err_set(err, KT_ERR_FORMAT,
                        "%s has no train split: expected train/_classes.csv (a Roboflow export) or "
                        "train/<class>/ folders of images",
                        ds->root);
        goto out;
    }
    ds->layout = csv_layout ? KT_LAYOUT_ROBOFLOW_CSV : KT_LAYOUT_FOLDERS;
    for (int s = 0; s < KT_SPLIT_COUNT && st == KT_OK; s++) {
        const char *dir = split_dir(ds->root, s, csv_layout);
        ds->split_first[s] = ds->n_items;
        if (!dir) continue;
        ds->has_split[s] = 1;
        st = csv_layout ? read_csv_split(&b, s, dir, err) : read_folder_split(&b, s, dir, err);
    }
    if (st != KT_OK) goto out;
    if (ds->split_count[KT_SPLIT_TRAIN] == 0) {
        st = kt_err_set(err, KT_ERR_FORMAT, "%s: the train split lists no usable image (%lld bad rows, %lld bad images%s%s)",
                        ds->root, (long long)ds->n_bad_rows, (long long)ds->n_bad_images,
                        ds->n_messages ? "; first: " : "", ds->n_messages ? ds->messages[0] : "");
        goto out;
    }
    /* Single-label when every row marks exactly one class (or when forced). */
    ds->kind = b.o.labels == KT_LABELS_MULTI ? KT_LABELS_MULTI : KT_LABELS_SINGLE;
    if (b.o.labels == KT_LABELS_AUTO)
        for (int64_t i = 0; i < ds->n_items; i++)
            if (b.ones[i] != 1) ds->kind = KT_LABELS_MULTI;
    if (ds->kind == KT_LABELS_SINGLE)
        for (int64_t i = 0; i < ds->n_items; i++) {
            const float *t = kt_dataset_target(ds, i);
            for (int c = 0; c < ds->n_classes; c++)
                if (t[c] > 0.5f) ds->items[i].label = c;
        }
out:
    free(b.ones);
    kt_decoder_free(&b.dec);
    kt_image_free(&b.img);
    if (st != KT_OK) kt_dataset_close(ds);
    return st;
}

int kt_dataset_class_index(const kt_dataset *ds, const char *name) {
    for (int i = 0; i < ds->n_classes; i++)
        if (!strcmp(ds->class_names[i], name)) return i;
    return -1;
}

kt_status kt_dataset_item_path(const kt_dataset *ds, int64_t i, char *buf, size_t n, kt_err *err) {
    if (i < 0 || i >= ds->n_items)
        return kt_err_set(err, KT_ERR_ARG, "item %lld is outside the dataset (%lld items)", (long long)i,
                          (long long)ds->n_items);
    int w = snprintf(buf, n, "%s/%s", ds->root, ds->items[i].path);
    if (w < 0 || (size_t)w >= n) return kt_err_set(err, KT_ERR_ARG, "path of %s is too long", ds->items[i].path);
    return KT_OK;
}

int64_t kt_dataset_find(const kt_dataset *ds, const char *path) {
    for (int64_t i = 0; i < ds->n_items; i++)
        if (!strcmp(ds->items[i].path, path)) return i;
    return -1;
}

int64_t kt_dataset_class_count(const kt_dataset *ds, int split, int c) {
    int64_t n = 0;
    for (int64_t i = 0; i < ds->n_items; i++)
        if ((split < 0 || ds->items[i].split == split) && kt_dataset_target(ds, i)[c] > 0.5f) n++;
    return n;
}

void kt_dataset_summary(const kt_dataset *ds, char *buf, size_t n) {
    char counts[KT_SPLIT_COUNT][24];
    for (int s = 0; s < KT_SPLIT_COUNT; s++) {
        if (ds->has_split[s]) snprintf(counts[s], sizeof counts[s], "%lld", (long long)ds->split_count[s]);
        else snprintf(counts[s], sizeof counts[s], "-");
    }
    snprintf(buf, n, "%s: %s, %s, %d classes, train %s / valid %s / test %s, %lld bad row%s, %lld bad image%s",
             ds->root ? ds->root : "?", ds->layout == KT_LAYOUT_FOLDERS ? "class folders" : "Roboflow CSV",
             ds->kind == KT_LABELS_MULTI ? "multi-label" : "single-label", ds->n_classes, counts[0], counts[1],
             counts[2], (long long)ds->n_bad_rows, ds->n_bad_rows == 1 ? "" : "s", (long long)ds->n_bad_images,
             ds->n_bad_images == 1 ? "" : "s");
}
