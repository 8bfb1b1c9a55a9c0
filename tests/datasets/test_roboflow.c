/* Roboflow CSV exports and folder-per-class trees: quirks, label kinds, and every bad input. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datasets/roboflow.h"
#include "dstest.h"
#include "kt_test.h"

/* Creates root/<split>/<name> JPEGs for the names listed (NULL-terminated). */
static void make_images(const char *root, const char *split, const char *const *names) {
    char p[4096];
    for (int i = 0; names[i]; i++) {
        snprintf(p, sizeof p, "%s/%s/%s", root, split, names[i]);
        if (dst_write_jpeg(p, 16, 12) != 0) kt_test_fail(__FILE__, __LINE__, "cannot write %s", p);
    }
}

static void make_csv(const char *root, const char *split, const char *text) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s/_classes.csv", root, split);
    if (dst_write_text(p, text) != 0) kt_test_fail(__FILE__, __LINE__, "cannot write %s", p);
}

static int has_message(const kt_dataset *ds, const char *a, const char *b) {
    for (int i = 0; i < ds->n_messages; i++)
        if (strstr(ds->messages[i], a) && (!b || strstr(ds->messages[i], b))) return 1;
    return 0;
}

KT_TEST(test_roboflow_csv_quirks_crlf_quotes_no_spaces_missing_split) {
    const char *root = dst_path("quirks");
    static const char *const train[] = {"a.jpg", "b b.jpg", "c,1.jpg", "d.jpg", NULL};
    static const char *const valid[] = {"v1.jpg", "v2.jpg", NULL};
    make_images(root, "train", train);
    make_images(root, "valid", valid);
    /* BOM, no spaces, CRLF, a quoted class name with a comma, names with spaces and dashes, a quoted
     * file name with a space, a quoted file name with a comma, a blank line, no final newline. */
    make_csv(root, "train",
             "\xEF\xBB\xBF"
             "filename,Bluish Nail,\"Terry-s nail\",\"a, b\"\r\n"
             "a.jpg,1,0,0\r\n"
             "\"b b.jpg\",0,1,0\r\n"
             "\r\n"
             "\"c,1.jpg\",0,0,1\r\n"
             "d.jpg,0,1,0");
    /* valid: Roboflow's spaces after commas, LF, columns in another order. */
    make_csv(root, "valid",
             "filename, \"a, b\", Terry-s nail, Bluish Nail\n"
             "v1.jpg, 1, 0, 0\n"
             "v2.jpg, 0, 0, 1\n");
    kt_err err = {0};
    kt_dataset ds;
    KT_REQUIRE_OK(kt_dataset_open(&ds, root, NULL, &err), &err);
    KT_CHECK(ds.layout == KT_LAYOUT_ROBOFLOW_CSV && ds.kind == KT_LABELS_SINGLE, "layout %d kind %d", ds.layout, ds.kind);
    KT_REQUIRE(ds.n_classes == 3, "classes %d", ds.n_classes);
    KT_CHECK(!strcmp(ds.class_names[0], "Bluish Nail") && !strcmp(ds.class_names[1], "Terry-s nail") &&
                 !strcmp(ds.class_names[2], "a, b"),
             "names '%s' '%s' '%s'", ds.class_names[0], ds.class_names[1], ds.class_names[2]);
    KT_CHECK(ds.has_split[0] && ds.has_split[1] && !ds.has_split[2], "splits %d %d %d", ds.has_split[0],
             ds.has_split[1], ds.has_split[2]);
    KT_CHECK(ds.split_count[0] == 4 && ds.split_count[1] == 2 && ds.split_count[2] == 0, "counts %lld %lld %lld",
             (long long)ds.split_count[0], (long long)ds.split_count[1], (long long)ds.split_count[2]);
    KT_CHECK(ds.n_bad_rows == 0 && ds.n_bad_images == 0, "bad %lld/%lld: %s", (long long)ds.n_bad_rows,
             (long long)ds.n_bad_images, ds.n_messages ? ds.messages[0] : "");
    int64_t i = kt_dataset_find(&ds, "train/b b.jpg");
    KT_CHECK(i >= 0 && ds.items[i].label == 1 && ds.items[i].line == 3, "b b.jpg label/line");
    i = kt_dataset_find(&ds, "train/c,1.jpg");
    KT_CHECK(i >= 0 && ds.items[i].label == 2 && ds.items[i].line == 5, "c,1.jpg label %d line %d",
             i >= 0 ? ds.items[i].label : -9, i >= 0 ? ds.items[i].line : -9);
    i = kt_dataset_find(&ds, "train/d.jpg");
    KT_CHECK(i >= 0 && ds.items[i].label == 1 && ds.items[i].line == 6, "d.jpg (no final newline)");
    /* valid's columns are matched by name: v1 marks "a, b", v2 marks "Bluish Nail". */
    i = kt_dataset_find(&ds, "valid/v1.jpg");
    KT_CHECK(i >= 0 && ds.items[i].label == 2 && ds.items[i].split == KT_SPLIT_VALID, "v1 label");
    i = kt_dataset_find(&ds, "valid/v2.jpg");
    KT_CHECK(i >= 0 && ds.items[i].label == 0, "v2 label");
    KT_CHECK(kt_dataset_class_count(&ds, KT_SPLIT_TRAIN, 1) == 2, "train class 1 count");
    char line[1024];
    kt_dataset_summary(&ds, line, sizeof line);
    KT_CHECK(strstr(line, "Roboflow CSV, single-label, 3 classes, train 4 / valid 2 / test -, 0 bad rows, 0 bad images") != NULL,
             "summary: %s", line);
    kt_dataset_close(&ds);
}

KT_TEST(test_roboflow_multilabel_is_detected) {
    const char *root = dst_path("multi");
    static const char *const train[] = {"a.jpg", "b.jpg", "c.jpg", NULL};
    make_images(root, "train", train);
    make_csv(root, "train", "filename, x, y, z\na.jpg, 1, 1, 0\nb.jpg, 0, 0, 0\nc.jpg, 0, 0, 1\n");
    kt_err err = {0};
    kt_dataset ds;
    KT_REQUIRE_OK(kt_dataset_open(&ds, root, NULL, &err), &err);
    KT_CHECK(ds.kind == KT_LABELS_MULTI, "kind %d", ds.kind);
    KT_REQUIRE(ds.n_items == 3, "items %lld", (long long)ds.n_items);
    const float *t = kt_dataset_target(&ds, 0);
    KT_CHECK(t[0] == 1 && t[1] == 1 && t[2] == 0 && ds.items[0].label == -1, "row a");
    t = kt_dataset_target(&ds, 1);
    KT_CHECK(t[0] == 0 && t[1] == 0 && t[2] == 0, "row b (no labels)");
    kt_dataset_close(&ds);
    /* Forcing single-label turns the rows without exactly one 1 into bad rows. */
    kt_dataset_opts o;
    kt_dataset_opts_default(&o);
    o.labels = KT_LABELS_SINGLE;
    KT_REQUIRE_OK(kt_dataset_open(&ds, root, &o, &err), &err);
    KT_CHECK(ds.kind == KT_LABELS_SINGLE && ds.n_items == 1 && ds.n_bad_rows == 2, "forced single: %lld items, %lld bad",
             (long long)ds.n_items, (long long)ds.n_bad_rows);
    KT_CHECK(has_message(&ds, "train/_classes.csv:2:", "exactly one"), "message names line 2");
    kt_dataset_close(&ds);
}

KT_TEST(test_roboflow_bad_rows) {
    const char *root = dst_path("badrows");
    static const char *const train[] = {"a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", NULL};
    make_images(root, "train", train);
    make_csv(root, "train",
             "filename, A, B\n"
             "a.jpg, 1, 0\n"
             "b.jpg, 1\n"           /* line 3: wrong column count */
             "c.jpg, 0, 1, 1\n"     /* line 4: wrong column count */
             "d.jpg, 0, yes\n"      /* line 5: not 0/1 */
             "a.jpg, 0, 1\n"        /* line 6: duplicate of line 2 */
             "../x.jpg, 0, 1\n"     /* line 7: leaves the folder */
             "e.jpg, 0, 1\n");
    kt_err err = {0};
    kt_dataset ds;
    KT_REQUIRE_OK(kt_dataset_open(&ds, root, NULL, &err), &err);
    KT_CHECK(ds.n_items == 2 && ds.n_bad_rows == 5 && ds.n_bad_images == 0, "items %lld bad rows %lld",
             (long long)ds.n_items, (long long)ds.n_bad_rows);
    KT_CHECK(has_message(&ds, "train/_classes.csv:3:", "2 fields, expected 3"), "column count line 3");
    KT_CHECK(has_message(&ds, "train/_classes.csv:4:", "4 fields"), "column count line 4");
    KT_CHECK(has_message(&ds, "train/_classes.csv:5:", "'yes'"), "bad value line 5");
    KT_CHECK(has_message(&ds, "train/_classes.csv:6:", "duplicate file name 'a.jpg' (first at line 2)"), "duplicate");
    KT_CHECK(has_message(&ds, "train/_classes.csv:7:", "not a plain name"), "path escape");
    KT_CHECK(ds.items[0].label == 0 && ds.items[1].label == 1, "kept rows keep their labels");
    char line[1024];
    kt_dataset_summary(&ds, line, sizeof line);
    KT_CHECK(strstr(line, "5 bad rows, 0 bad images") != NULL, "summary: %s", line);
    kt_dataset_close(&ds);
    kt_dataset_opts o;
    kt_dataset_opts_default(&o);
    o.strict = 1;
    KT_CHECK(kt_dataset_open(&ds, root, &o, &err) == KT_ERR_FORMAT && strstr(err.msg, "train/_classes.csv:3:") &&
                 strstr(err.msg, "strict"),
             "strict: %s", err.msg);
    KT_CHECK(ds.n_items == 0 && ds.items == NULL, "a failed open leaves the dataset empty");
}

KT_TEST(test_roboflow_bad_images) {
    const char *root = dst_path("badimg");
    static const char *const train[] = {"good.jpg", "trunc.jpg", NULL};
    make_images(root, "train", train);
    char p[4096];
    /* A truncated JPEG: the first half of a larger, noisy one. */
    {
        uint8_t *px = dst_picture(64, 64);
        for (int i = 0; i < 64 * 64 * 3; i++) px[i] ^= (uint8_t)(i * 31);
        size_t n;
        uint8_t *j = dst_jpeg(px, 64, 64, 0 /* TJPF_RGB */, 2 /* TJSAMP_420 */, 90, &n);
        snprintf(p, sizeof p, "%s/train/trunc.jpg", root);
        dst_write(p, j, n / 2);
        free(j), free(px);
    }
    snprintf(p, sizeof p, "%s/train/empty.jpg", root);
    dst_write(p, "", 0);
    snprintf(p, sizeof p, "%s/train/fake.png", root);
    dst_write_text(p, "<html>not a png</html>");
    make_csv(root, "train",
             "filename, A, B\n"
             "good.jpg, 1, 0\n"
             "missing.jpg, 0, 1\n" /* line 3 */
             "empty.jpg, 0, 1\n"   /* line 4 */
             "trunc.jpg, 1, 0\n"   /* line 5 */
             "fake.png, 0, 1\n");  /* line 6 */
    kt_err err = {0};
    kt_dataset ds;
    KT_REQUIRE_OK(kt_dataset_open(&ds, root, NULL, &err), &err);
    KT_CHECK(ds.n_items == 1 && ds.n_bad_images == 4 && ds.n_bad_rows == 0, "items %lld bad images %lld",
             (long long)ds.n_items, (long long)ds.n_bad_images);
    KT_CHECK(has_message(&ds, "train/_classes.csv:3:", "train/missing.jpg is missing"), "missing");
    KT_CHECK(has_message(&ds, "train/_classes.csv:4:", "empty file"), "empty");
    KT_CHECK(has_message(&ds, "train/_classes.csv:5:", "truncated JPEG"), "truncated");
    KT_CHECK(has_message(&ds, "train/_classes.csv:6:", "not a JPEG or PNG"), "fake png");
    for (int i = 0; i < ds.n_messages; i++) printf("  message: %s\n", ds.messages[i]);
    kt_dataset_close(&ds);
    /* Full decoding finds the same four; strict mode stops at the first. */
    kt_dataset_opts o;
    kt_dataset_opts_default(&o);
    o.verify = KT_VERIFY_DECODE;
    KT_REQUIRE_OK(kt_dataset_open(&ds, root, &o, &err), &err);
    KT_CHECK(ds.n_items == 1 && ds.n_bad_images == 4, "decode verify: bad images %lld", (long long)ds.n_bad_images);
    kt_dataset_close(&ds);
    o.strict = 1;
    KT_CHECK(kt_dataset_open(&ds, root, &o, &err) == KT_ERR_FORMAT && strstr(err.msg, "train/_classes.csv:3:") &&
                 strstr(err.msg, "missing"),
             "strict: %s", err.msg);
}

KT_TEST(test_roboflow_header_faults_are_errors) {
    kt_err err = {0};
    kt_dataset ds;
    static const char *const one[] = {"a.jpg", NULL};
    /* An unknown class column in valid. */
    const char *r1 = dst_path("unknowncol");
    make_images(r1, "train", one);
    make_images(r1, "valid", one);
    make_csv(r1, "train", "filename, A, B\na.jpg, 1, 0\n");
    make_csv(r1, "valid", "filename, A, C\na.jpg, 1, 0\n");
    KT_CHECK(kt_dataset_open(&ds, r1, NULL, &err) == KT_ERR_FORMAT && strstr(err.msg, "valid/_classes.csv:1") &&
                 strstr(err.msg, "unknown class column 'C'"),
             "unknown column: %s", err.msg);
    /* A class column missing from test. */
    const char *r2 = dst_path("missingcol");
    make_images(r2, "train", one);
    make_images(r2, "test", one);
    make_csv(r2, "train", "filename, A, B\na.jpg, 1, 0\n");
    make_csv(r2, "test", "filename, B\na.jpg, 1\n");
    KT_CHECK(kt_dataset_open(&ds, r2, NULL, &err) == KT_ERR_FORMAT && strstr(err.msg, "test/_classes.csv:1") &&
                 strstr(err.msg, "'A' is missing"),
             "missing column: %s", err.msg);
    /* No filename column; duplicate class names; unterminated quote; empty file. */
    const char *r3 = dst_path("nofilename");
    make_images(r3, "train", one);
    make_csv(r3, "train", "file, A\na.jpg, 1\n");
    KT_CHECK(kt_dataset_open(&ds, r3, NULL, &err) == KT_ERR_FORMAT && strstr(err.msg, "expected 'filename'"), "%s",
             err.msg);
    make_csv(r3, "train", "filename, A, A\na.jpg, 1, 0\n");
    KT_CHECK(kt_dataset_open(&ds, r3, NULL, &err) == KT_ERR_FORMAT && strstr(err.msg, "appears twice"), "%s", err.msg);
    make_csv(r3, "train", "filename, A\n\"a.jpg, 1\n");
    KT_CHECK(kt_dataset_open(&ds, r3, NULL, &err) == KT_ERR_FORMAT && strstr(err.msg, "never closed"), "%s", err.msg);
    make_csv(r3, "train", "");
    KT_CHECK(kt_dataset_open(&ds, r3, NULL, &err) == KT_ERR_FORMAT && strstr(err.msg, "empty"), "%s", err.msg);
    /* No train split at all, and a folder that does not exist. */
    const char *r4 = dst_path("notrain");
    make_images(r4, "valid", one);
    make_csv(r4, "valid", "filename, A\na.jpg, 1\n");
    KT_CHECK(kt_dataset_open(&ds, r4, NULL, &err) == KT_ERR_FORMAT && strstr(err.msg, "no train split"), "%s", err.msg);
    KT_CHECK(kt_dataset_open(&ds, dst_path("nothing-here"), NULL, &err) == KT_ERR_NOTFOUND, "%s", err.msg);
}

KT_TEST(test_folder_per_class_layout) {
    const char *root = dst_path("folders");
    char p[4096];
    const char *files[][2] = {{"train/cat", "1.jpg"}, {"train/cat", "2.png"}, {"train/dog", "a.jpg"},
                              {"train/big-dog", "x.JPG"}, {"val/dog", "v.jpg"}, {"test/cat", "t.jpeg"}};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s/%s", root, files[i][0], files[i][1]);
        dst_write_jpeg(p, 8, 8); /* 2.png holds JPEG bytes: decoding goes by content, as PIL's does */
    }
    snprintf(p, sizeof p, "%s/train/cat/notes.txt", root);
    dst_write_text(p, "ignored: not an image extension");
    kt_err err = {0};
    kt_dataset ds;
    KT_REQUIRE_OK(kt_dataset_open(&ds, root, NULL, &err), &err);
    KT_CHECK(ds.layout == KT_LAYOUT_FOLDERS && ds.kind == KT_LABELS_SINGLE, "layout %d", ds.layout);
    KT_REQUIRE(ds.n_classes == 3, "classes %d", ds.n_classes);
    KT_CHECK(!strcmp(ds.class_names[0], "big-dog") && !strcmp(ds.class_names[1], "cat") &&
                 !strcmp(ds.class_names[2], "dog"),
             "classes sorted like torchvision's ImageFolder");
    KT_CHECK(ds.split_count[0] == 4 && ds.split_count[1] == 1 && ds.split_count[2] == 1, "split counts");
    int64_t i = kt_dataset_find(&ds, "val/dog/v.jpg");
    KT_CHECK(i >= 0 && ds.items[i].label == 2 && ds.items[i].split == KT_SPLIT_VALID, "val alias and label");
    kt_dataset_close(&ds);
    /* A class folder in test that train does not have is an error. */
    snprintf(p, sizeof p, "%s/test/bird/b.jpg", root);
    dst_write_jpeg(p, 8, 8);
    KT_CHECK(kt_dataset_open(&ds, root, NULL, &err) == KT_ERR_FORMAT && strstr(err.msg, "test/bird/") &&
                 strstr(err.msg, "unknown class folder"),
             "%s", err.msg);
}
