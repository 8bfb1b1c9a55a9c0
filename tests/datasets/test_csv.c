/* kt_csv_write_field against kt_csv_next: every field a run writes (the folds file lists image
 * paths) reads back as written, whatever characters it holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/csv.h"
#include "kt_test.h"

KT_TEST(test_csv_written_fields_read_back) {
    static const char *const fields[] = {
        "plain.jpg", " leading space", "trailing tab\t", "a,comma", "a \"quote\"", "line\nbreak", "cr\rreturn",
        "\xEF\xBB\xBF" "starts with a BOM", "", "\"", "train/x y.jpg",
    };
    enum { N = sizeof fields / sizeof fields[0] };
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    KT_REQUIRE(f, "open_memstream");
    /* the first record starts with the BOM field: at the start of a file a bare BOM is the file's own */
    static const int first[2] = {7, 3};
    for (int rec = 0; rec < 2; rec++) {
        for (int i = 0; i < N; i++) {
            if (i) fputc(',', f);
            kt_csv_write_field(f, fields[(i + first[rec]) % N]);
        }
        fputs(rec ? "\r\n" : "\n", f);
    }
    KT_REQUIRE(fclose(f) == 0, "writing");
    kt_csv c;
    kt_csv_init(&c, text, len);
    kt_err err = {0};
    int line;
    for (int rec = 0; rec < 2; rec++) {
        KT_REQUIRE(kt_csv_next(&c, &line, "t.csv", &err) == 1, "record %d: %s", rec, err.msg);
        KT_REQUIRE(c.n_fields == N, "record %d: %d fields, wrote %d", rec, c.n_fields, N);
        for (int i = 0; i < N; i++) {
            const char *want = fields[(i + first[rec]) % N];
            KT_CHECK(!strcmp(c.fields[i], want), "record %d field %d: [%s], wrote [%s]", rec, i, c.fields[i], want);
        }
    }
    KT_CHECK(kt_csv_next(&c, &line, "t.csv", &err) == 0, "two records written, more read");
    kt_csv_free(&c);
    free(text);
}
