/* The synthetic generator: a loadable Roboflow export, deterministic, not written half-way. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fileio.h"
#include "datasets/roboflow.h"
#include "datasets/synth.h"
#include "dstest.h"
#include "kt_test.h"

KT_TEST(test_synth_writes_a_loadable_roboflow_export) {
    kt_synth_opts o;
    kt_synth_opts_default(&o);
    o.out = dst_path("synth");
    o.classes = 5;
    o.per_class = 8;
    o.size = 48;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_synth_write(&o, NULL, &err), &err);
    kt_dataset ds;
    kt_dataset_opts dopt;
    kt_dataset_opts_default(&dopt);
    dopt.verify = KT_VERIFY_DECODE;
    dopt.strict = 1;
    KT_REQUIRE_OK(kt_dataset_open(&ds, o.out, &dopt, &err), &err);
    KT_CHECK(ds.kind == KT_LABELS_SINGLE && ds.n_classes == 5, "kind %d classes %d", ds.kind, ds.n_classes);
    KT_CHECK(ds.split_count[0] == 40 && ds.split_count[1] == 10 && ds.split_count[2] == 10, "counts %lld/%lld/%lld",
             (long long)ds.split_count[0], (long long)ds.split_count[1], (long long)ds.split_count[2]);
    for (int c = 0; c < 5; c++) {
        KT_CHECK(!strcmp(ds.class_names[c], kt_synth_class_name(c)), "class %d name", c);
        KT_CHECK(kt_dataset_class_count(&ds, KT_SPLIT_TRAIN, c) == 8, "class %d has 8 train images", c);
    }
    /* Roboflow style: a space after each comma. */
    char p[4096], *text;
    size_t len;
    snprintf(p, sizeof p, "%s/train/_classes.csv", o.out);
    KT_REQUIRE_OK(kt_file_read(p, &text, &len, &err), &err);
    KT_CHECK(!strncmp(text, "filename, disk, square, triangle, ring, plus sign\n", 50), "header: %.60s", text);
    free(text);
    kt_dataset_close(&ds);
    /* Refuses to overwrite a non-empty folder unless told to. */
    KT_CHECK(kt_synth_write(&o, NULL, &err) == KT_ERR_ARG && strstr(err.msg, "--force"), "%s", err.msg);
    o.overwrite = 1;
    o.classes = 2;
    KT_REQUIRE_OK(kt_synth_write(&o, NULL, &err), &err);
    KT_REQUIRE_OK(kt_dataset_open(&ds, o.out, NULL, &err), &err);
    KT_CHECK(ds.n_classes == 2, "overwritten dataset has %d classes", ds.n_classes);
    kt_dataset_close(&ds);
    o.classes = 13;
    KT_CHECK(kt_synth_write(&o, NULL, &err) == KT_ERR_ARG && strstr(err.msg, "13 classes"), "%s", err.msg);
}

KT_TEST(test_synth_is_deterministic_and_classes_differ) {
    const int S = 64;
    uint8_t *a = malloc(S * S * 3), *b = malloc(S * S * 3);
    kt_synth_draw(a, S, 1u << 2, 1234);
    kt_synth_draw(b, S, 1u << 2, 1234);
    KT_CHECK(memcmp(a, b, S * S * 3) == 0, "same key, same image");
    kt_synth_draw(b, S, 1u << 3, 1234);
    KT_CHECK(memcmp(a, b, S * S * 3) != 0, "another class, another image");
    /* The shape changes a sizeable part of the picture (it is visible, not a few pixels). */
    kt_synth_draw(b, S, 0, 1234);
    int changed = 0;
    for (int i = 0; i < S * S; i++) changed += abs(a[i * 3] - b[i * 3]) + abs(a[i * 3 + 1] - b[i * 3 + 1]) > 60;
    KT_CHECK(changed > S * S / 20, "shape covers %d of %d pixels", changed, S * S);
    free(a), free(b);
}

KT_TEST(test_synth_multilabel_export) {
    kt_synth_opts o;
    kt_synth_opts_default(&o);
    o.out = dst_path("multi");
    o.classes = 4;
    o.per_class = 6;
    o.size = 32;
    o.multilabel = 1;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_synth_write(&o, NULL, &err), &err);
    kt_dataset ds;
    KT_REQUIRE_OK(kt_dataset_open(&ds, o.out, NULL, &err), &err);
    KT_CHECK(ds.kind == KT_LABELS_MULTI, "kind %d", ds.kind);
    for (int s = 0; s < 3; s++)
        for (int c = 0; c < 4; c++)
            KT_CHECK(kt_dataset_class_count(&ds, s, c) > 0, "split %d label %d never appears", s, c);
    kt_dataset_close(&ds);
}

/* A synth killed mid-write leaves "<out>.tmp-<pid>/"; the next write of that dataset removes it when
 * its process is gone, and keeps a live writer's. */
KT_TEST(test_synth_removes_a_killed_writers_folder) {
    long dead = 4194303;
    while (dead > 1000 && !kt_process_gone(dead)) dead--;
    char out[4200], stale[4300], live[4300], f[4400];
    snprintf(out, sizeof out, "%s", dst_path("killed"));
    snprintf(stale, sizeof stale, "%s.tmp-%ld", out, dead);
    snprintf(live, sizeof live, "%s.tmp-%ld", out, (long)getppid());
    kt_err err = {0};
    snprintf(f, sizeof f, "%s/train/a.jpg", stale);
    KT_REQUIRE(dst_write(f, "x", 1) == 0, "%s", f);
    snprintf(f, sizeof f, "%s/b.jpg", live);
    KT_REQUIRE(dst_write(f, "x", 1) == 0, "%s", f);
    kt_synth_opts o;
    kt_synth_opts_default(&o);
    o.out = out;
    o.per_class = 2;
    o.size = 16;
    KT_REQUIRE_OK(kt_synth_write(&o, NULL, &err), &err);
    KT_CHECK(!kt_dir_exists(stale), "the killed writer's folder is still there");
    KT_CHECK(kt_dir_exists(live), "a live writer's folder was removed");
    KT_CHECK(kt_dir_exists(out), "no dataset");
}
