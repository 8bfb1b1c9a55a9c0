/* Every stored fuzz input (tests/fuzz/corpus/<target>/: seeds and the inputs that once crashed or
 * broke an invariant) through its target, then deterministic mutations of each: bit flips, bytes set
 * to edge values, 32/64-bit integers overwritten, truncations, insertions and repeated slices. This is
 * the part of fuzzing CI runs on every build, sanitized too; tests/fuzz/run_libfuzzer.sh runs the
 * same targets coverage-guided, and its merged corpora are what tests/fuzz/corpus/ holds. Each
 * target gets 40000 mutated runs shared among its inputs (3000 for HTTP, where every run is a
 * request to a live server); KT_FUZZ_MUTATIONS=N runs N per input instead. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fileio.h"
#include "fuzz_targets.h"
#include "kt_test.h"

typedef struct {
    char **paths;
    int n, cap;
} path_list;

static void add_path(path_list *l, const char *p) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->paths = realloc(l->paths, sizeof(char *) * (size_t)l->cap);
        if (!l->paths) abort();
    }
    l->paths[l->n++] = strdup(p);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Files of dir (relative to the repository, or absolute) whose names end with suffix ("" = any), sorted. */
static void add_dir(path_list *l, const char *dir, const char *suffix) {
    char full[4096];
    if (dir[0] == '/') snprintf(full, sizeof full, "%s", dir);
    else snprintf(full, sizeof full, "%s/%s", kt_test_root(), dir);
    DIR *d = opendir(full);
    if (!d) return;
    int first = l->n;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t nl = strlen(e->d_name), sl = strlen(suffix);
        if (e->d_name[0] == '.' || nl < sl || strcmp(e->d_name + nl - sl, suffix)) continue;
        char p[4096 + 256];
        snprintf(p, sizeof p, "%s/%s", full, e->d_name);
        add_path(l, p);
    }
    closedir(d);
    qsort(l->paths + first, (size_t)(l->n - first), sizeof(char *), by_name);
}

static uint64_t next(uint64_t *s) { /* splitmix64: a fixed sequence, so a failure repeats */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* One mutation of src (n bytes) into dst (room for n + 64); returns the new length. */
static size_t mutate(const uint8_t *src, size_t n, uint8_t *dst, uint64_t *s) {
    static const uint64_t edges[] = {0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000u, 0xFFFFFFFFu,
                                     0x7FFFFFFFFFFFFFFFull, 0xFFFFFFFFFFFFFFFFull};
    memcpy(dst, src, n);
    size_t len = n;
    int rounds = 1 + (int)(next(s) % 3);
    for (int r = 0; r < rounds; r++) {
        size_t at = len ? (size_t)(next(s) % len) : 0;
        switch (next(s) % 7) {
        case 0: if (len) dst[at] ^= (uint8_t)(1u << (next(s) % 8)); break;
        case 1: if (len) dst[at] = (uint8_t)edges[next(s) % 5]; break;
        case 2: { /* a 2-, 4- or 8-byte integer, either byte order */
            int w = 2 << (next(s) % 3);
            uint64_t v = edges[next(s) % 12] + (next(s) % 3) - 1;
            int be = (int)(next(s) & 1);
            for (int i = 0; i < w && at + (size_t)i < len; i++)
                dst[at + (size_t)i] = (uint8_t)(v >> (8 * (be ? w - 1 - i : i)));
            break;
        }
        case 3: len = at; break; /* truncate */
        case 4: { /* insert up to 16 random bytes */
            size_t k = 1 + next(s) % 16;
            if (len + k > n + 64) break;
            memmove(dst + at + k, dst + at, len - at);
            for (size_t i = 0; i < k; i++) dst[at + i] = (uint8_t)next(s);
            len += k;
            break;
        }
        case 5: { /* delete a slice */
            size_t k = 1 + next(s) % 16;
            if (at + k > len) k = len - at;
            memmove(dst + at, dst + at + k, len - at - k);
            len -= k;
            break;
        }
        default: { /* copy a slice over another place */
            if (!len) break;
            size_t from = (size_t)(next(s) % len), k = 1 + next(s) % 32;
            if (from + k > len) k = len - from;
            if (at + k > len) k = len - at;
            memmove(dst + at, dst + from, k);
            break;
        }
        }
    }
    return len;
}

/* The input being run, so that an abort (a broken invariant) says which one and leaves its bytes
 * in fuzz_failure.bin (in the build folder) to copy into tests/fuzz/corpus/<target>/ once fixed. */
static const char *cur_path;
static int cur_mutation;
static const uint8_t *cur_bytes;
static size_t cur_len;

static void on_abort(int sig) {
    char msg[4200];
    int n = snprintf(msg, sizeof msg, "fuzz: the failing input is %s, mutation %d (-1: as stored); its bytes are in "
                     "fuzz_failure.bin\n", cur_path ? cur_path : "?", cur_mutation);
    if (write(2, msg, (size_t)(n < (int)sizeof msg ? n : (int)sizeof msg - 1)) < 0) { /* nothing more to do */ }
    int fd = open("fuzz_failure.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        if (write(fd, cur_bytes, cur_len) < 0) { /* best effort */ }
        close(fd);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Runs t on an exact-size copy of bytes, so that the sanitizers see a read one past the end. */
static void run_one(const kt_fuzz_target *t, const uint8_t *bytes, size_t len) {
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) abort();
    memcpy(exact, bytes, len);
    cur_bytes = exact, cur_len = len;
    t->fn(exact, len);
    cur_bytes = NULL, cur_len = 0;
    free(exact);
}

/* budget: mutated runs in all, shared among the inputs (KT_FUZZ_MUTATIONS: that many per input instead) */
static void run_target(const char *name, const path_list *seeds, int min_seeds, int budget) {
    const kt_fuzz_target *t = kt_fuzz_find(name);
    KT_REQUIRE(t, "no fuzz target %s", name);
    KT_REQUIRE(seeds->n >= min_seeds, "%s: %d inputs found, expected at least %d (tests/fuzz/corpus/%s)", name, seeds->n,
               min_seeds, name);
    const char *env = getenv("KT_FUZZ_MUTATIONS");
    int muts = env ? atoi(env) : (budget + seeds->n - 1) / seeds->n;
    long runs = 0;
    signal(SIGABRT, on_abort);
    for (int i = 0; i < seeds->n; i++) {
        char *data = NULL;
        size_t len = 0;
        kt_err err = {0};
        KT_REQUIRE_OK(kt_file_read(seeds->paths[i], &data, &len, &err), &err);
        cur_path = seeds->paths[i];
        cur_mutation = -1;
        run_one(t, (const uint8_t *)data, len);
        uint8_t *buf = malloc(len + 64);
        KT_REQUIRE(buf, "no memory");
        uint64_t s = 0x4B54465A00000000ull ^ (uint64_t)i; /* "KTFZ" */
        for (int m = 0; m < muts; m++) {
            cur_mutation = m;
            run_one(t, buf, mutate((const uint8_t *)data, len, buf, &s));
        }
        runs += 1 + muts;
        free(buf);
        free(data);
    }
    signal(SIGABRT, SIG_DFL);
    cur_path = NULL;
    printf("fuzz %s: %d stored inputs, %ld runs, no crash and no broken invariant\n", name, seeds->n, runs);
}

/* Target name's stored inputs (tests/fuzz/corpus/<name>/) plus extra seed folders given as
 * (folder, file-name suffix) pairs, NULL-terminated. */
static void fuzz_stored(const char *name, const char *const *extra, int min_seeds, int budget) {
    path_list l = {0};
    char dir[128];
    snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", name);
    add_dir(&l, dir, "");
    for (int i = 0; extra && extra[i]; i += 2) add_dir(&l, extra[i], extra[i + 1]);
    run_target(name, &l, min_seeds, budget);
    for (int i = 0; i < l.n; i++) free(l.paths[i]);
    free(l.paths);
}

KT_TEST(test_fuzz_safetensors_inputs_and_mutations) {
    fuzz_stored("safetensors", (const char *const[]){"tests/golden/checkpoints", ".safetensors", NULL}, 3, 40000);
}

/* Stored inputs plus fresh seeds written by this build (byte 0 picks the load mode: both). */
static void fuzz_loader(const char *name, int which) {
    char w[4096], st[4096];
    snprintf(w, sizeof w, "%s/seed.safetensors", kt_test_tmpdir());
    snprintf(st, sizeof st, "%s/seed.state.safetensors", kt_test_tmpdir());
    KT_REQUIRE(kt_fuzz_write_seeds(w, st) == 0, "cannot write the seed files in %s", kt_test_tmpdir());
    char *data = NULL;
    size_t len = 0;
    kt_err err = {0};
    KT_REQUIRE_OK(kt_file_read(which ? st : w, &data, &len, &err), &err);
    /* the seed as a stored input would be: mode byte, file. KT_FUZZ_SEED_DIR=tests/fuzz/corpus/<name>
     * writes them there instead (how the stored ones were made, for libFuzzer to start from) */
    const char *keep = getenv("KT_FUZZ_SEED_DIR");
    for (int mode = 0; mode < 2; mode++) {
        char p[4096 + 16];
        snprintf(p, sizeof p, "%s/seed_mode%d.bin", keep ? keep : kt_test_tmpdir(), mode);
        FILE *f = fopen(p, "wb");
        KT_REQUIRE(f, "cannot write %s", p);
        fputc(mode, f);
        fwrite(data, 1, len, f);
        fclose(f);
    }
    free(data);
    const char *const extra[] = {keep ? keep : kt_test_tmpdir(), ".bin", NULL};
    fuzz_stored(name, extra, 2, 20000);
}

KT_TEST(test_fuzz_weights_inputs_and_mutations) { fuzz_loader("weights", 0); }

KT_TEST(test_fuzz_train_state_inputs_and_mutations) { fuzz_loader("train_state", 1); }

KT_TEST(test_fuzz_csv_inputs_and_mutations) {
    fuzz_stored("csv", (const char *const[]){"tests/serve/fixtures", ".csv", NULL}, 3, 40000);
}

KT_TEST(test_fuzz_image_inputs_and_mutations) {
    fuzz_stored("image", (const char *const[]){"tests/golden/datasets", ".png", "tests/golden/datasets", ".jpg", NULL}, 8,
                40000);
}

KT_TEST(test_fuzz_predict_inputs_and_mutations) {
    fuzz_stored("predict", (const char *const[]){"tests/fuzz/corpus/image", "", "tests/golden/datasets", ".png",
                                                  "tests/golden/datasets", ".jpg", NULL},
                8, 4000);
}

KT_TEST(test_fuzz_dataset_inputs_and_mutations) { fuzz_stored("dataset", NULL, 3, 8000); }

KT_TEST(test_fuzz_diet_inputs_and_mutations) { fuzz_stored("diet", NULL, 2, 40000); }

KT_TEST(test_fuzz_meals_inputs_and_mutations) { fuzz_stored("meals", NULL, 1, 40000); }

KT_TEST(test_fuzz_http_inputs_and_mutations) {
    fuzz_stored("http", NULL, 8, 3000);
    kt_fuzz_http_stop();
}
