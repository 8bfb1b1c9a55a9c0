/* Fuzz targets of the dataset inputs: CSV records (read and written back) and Roboflow exports
 * (_classes.csv). See fuzz_targets.h. */
#include "fuzz_targets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/csv.h"
#include "datasets/roboflow.h"

#include "fuzz_internal.h"

/* ---- CSV ------------------------------------------------------------------------------------- */
/* The record as kt_csv_write_field writes it (the folds file of a run) must read back as the same
 * fields. A record of one empty field is a blank line, which readers skip: left out. */
static void csv_roundtrip(const kt_csv *c) {
    if (c->n_fields == 1 && !c->fields[0][0]) return;
    char *text = NULL;
    size_t tlen = 0;
    FILE *f = open_memstream(&text, &tlen);
    if (!f) return;
    for (int i = 0; i < c->n_fields; i++) {
        if (i) fputc(',', f);
        kt_csv_write_field(f, c->fields[i]);
    }
    fputc('\n', f);
    if (fclose(f) != 0) return;
    kt_csv back;
    kt_csv_init(&back, text, tlen);
    kt_err err = {0};
    int line, r = kt_csv_next(&back, &line, "roundtrip.csv", &err);
    if (r != 1 || back.n_fields != c->n_fields)
        kt_fuzz_broken("csv", "a record of %d fields written as [%s] reads back as %d fields (%s)", c->n_fields, text,
               r == 1 ? back.n_fields : -1, err.msg);
    for (int i = 0; i < c->n_fields; i++)
        if (strcmp(back.fields[i], c->fields[i]))
            kt_fuzz_broken("csv", "field %d [%s] written as [%s] reads back as [%s]", i, c->fields[i], text, back.fields[i]);
    if (kt_csv_next(&back, &line, "roundtrip.csv", &err) != 0) kt_fuzz_broken("csv", "one record written as [%s] reads as more", text);
    kt_csv_free(&back);
    free(text);
}

int kt_fuzz_csv(const uint8_t *data, size_t len) {
    kt_csv c;
    kt_csv_init(&c, (const char *)data, len);
    kt_err err = {0};
    int line = 0, prev = 0, r;
    while ((r = kt_csv_next(&c, &line, "fuzz.csv", &err)) == 1) {
        if (line < prev) kt_fuzz_broken("csv", "record on line %d after one on line %d", line, prev);
        prev = line;
        size_t total = 0;
        for (int i = 0; i < c.n_fields; i++) total += strlen(c.fields[i]); /* every field NUL-terminated */
        if (total > len) kt_fuzz_broken("csv", "fields of %zu bytes from %zu bytes of text", total, len);
        csv_roundtrip(&c);
    }
    if (r == -1 && !err.msg[0]) kt_fuzz_broken("csv", "an error without a message");
    kt_csv_free(&c);
    return 0;
}


/* ---- a Roboflow export: the input becomes train/_classes.csv [NUL valid/_classes.csv] ------------ */
static int write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static char ds_root[64];
static const char *const ds_splits[] = {"train", "valid"}, *const ds_files[] = {"a.jpg", "b.jpg", "c.png", "_classes.csv"};

static void ds_remove(void) { /* at exit: the folder and everything in it */
    char p[160];
    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 4; j++) {
            snprintf(p, sizeof p, "%s/%s/%s", ds_root, ds_splits[i], ds_files[j]);
            unlink(p);
        }
        snprintf(p, sizeof p, "%s/%s", ds_root, ds_splits[i]);
        rmdir(p);
    }
    rmdir(ds_root);
}

int kt_fuzz_dataset(const uint8_t *data, size_t len) {
    const char *root = ds_root;
    char p[160];
    if (!ds_root[0]) { /* a folder for the process: a.jpg, b.jpg and c.png exist in train/ and valid/ */
        snprintf(ds_root, sizeof ds_root, "/tmp/kt_fuzz_dataset.XXXXXX");
        if (!mkdtemp(ds_root)) kt_fuzz_broken("dataset", "cannot make a temporary folder");
        atexit(ds_remove);
        for (int i = 0; i < 2; i++) {
            snprintf(p, sizeof p, "%s/%s", root, ds_splits[i]);
            mkdir(p, 0755);
            for (int j = 0; j < 3; j++) {
                snprintf(p, sizeof p, "%s/%s/%s", root, ds_splits[i], ds_files[j]);
                write_file(p, "x", 1);
            }
        }
    }
    if (len < 1) return 0;
    kt_dataset_opts o;
    kt_dataset_opts_default(&o);
    o.strict = data[0] & 1;
    o.labels = (kt_label_kind)((data[0] >> 1) % 3);
    o.verify = KT_VERIFY_EXISTS;
    o.max_messages = 4;
    data++, len--;
    const uint8_t *nul = memchr(data, 0, len);
    size_t tlen = nul ? (size_t)(nul - data) : len;
    snprintf(p, sizeof p, "%s/train/_classes.csv", root);
    if (!write_file(p, data, tlen)) return 0;
    snprintf(p, sizeof p, "%s/valid/_classes.csv", root);
    if (nul) {
        if (!write_file(p, nul + 1, len - tlen - 1)) return 0;
    } else {
        unlink(p);
    }
    kt_dataset ds;
    kt_err err = {0};
    kt_status st = kt_dataset_open(&ds, root, &o, &err);
    if (getenv("KT_FUZZ_VERBOSE"))
        fprintf(stderr, "fuzz dataset: %s\n", st == KT_OK ? "opened" : err.msg);
    if (st == KT_OK) {
        if (getenv("KT_FUZZ_VERBOSE"))
            fprintf(stderr, "  %d classes, %lld items, %lld bad rows\n", ds.n_classes, (long long)ds.n_items,
                    (long long)ds.n_bad_rows);
        if (ds.n_classes < 1) kt_fuzz_broken("dataset", "opened with %d classes", ds.n_classes);
        for (int c = 0; c < ds.n_classes; c++) {
            if (!ds.class_names[c]) kt_fuzz_broken("dataset", "class %d has no name", c);
            for (int d = 0; d < c; d++)
                if (!strcmp(ds.class_names[c], ds.class_names[d])) kt_fuzz_broken("dataset", "class %s twice", ds.class_names[c]);
        }
        int64_t total = 0;
        for (int sp = 0; sp < KT_SPLIT_COUNT; sp++) {
            if (ds.split_count[sp] && ds.split_first[sp] != total)
                kt_fuzz_broken("dataset", "split %d starts at %lld, not %lld", sp, (long long)ds.split_first[sp], (long long)total);
            total += ds.split_count[sp];
        }
        if (total != ds.n_items) kt_fuzz_broken("dataset", "splits hold %lld items of %lld", (long long)total, (long long)ds.n_items);
        if (ds.n_messages > o.max_messages) kt_fuzz_broken("dataset", "%d messages kept, limit %d", ds.n_messages, o.max_messages);
        for (int64_t i = 0; i < ds.n_items; i++) {
            const kt_ds_item *it = &ds.items[i];
            const float *t = kt_dataset_target(&ds, i);
            int ones = 0;
            for (int c = 0; c < ds.n_classes; c++) {
                if (t[c] != 0.0f && t[c] != 1.0f) kt_fuzz_broken("dataset", "item %lld: target %g", (long long)i, t[c]);
                ones += t[c] == 1.0f;
            }
            if (ds.kind == KT_LABELS_SINGLE && (ones != 1 || it->label < 0 || it->label >= ds.n_classes || t[it->label] != 1.0f))
                kt_fuzz_broken("dataset", "single-label item %lld: label %d with %d ones", (long long)i, it->label, ones);
            if (ds.kind == KT_LABELS_MULTI && it->label != -1)
                kt_fuzz_broken("dataset", "multi-label item %lld has label %d", (long long)i, it->label);
            if (kt_dataset_find(&ds, it->path) != i) kt_fuzz_broken("dataset", "item %s listed twice", it->path);
        }
        kt_dataset_close(&ds);
    } else if (!err.msg[0]) {
        kt_fuzz_broken("dataset", "refused without a message");
    }
    return 0;
}
