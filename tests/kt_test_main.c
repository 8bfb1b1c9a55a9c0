/* Runner for KT_TEST suites: `suite` runs every case, `suite NAME` one, `suite --list` names them. */
#include "kt_test.h"

#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_TESTS 512

static struct {
    const char *name;
    kt_test_fn fn;
} tests[MAX_TESTS];
static int n_tests, failures;
static const char *current = "";
static char tmpdir[4096];

void kt_test_register(const char *name, kt_test_fn fn) {
    if (n_tests < MAX_TESTS) {
        tests[n_tests].name = name;
        tests[n_tests].fn = fn;
        n_tests++;
    }
}

void kt_test_fail(const char *file, int line, const char *fmt, ...) {
    failures++;
    fprintf(stderr, "FAIL %s (%s:%d): ", current, file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void kt_test_skip(const char *fmt, ...) {
    fprintf(stdout, "SKIP %s: ", current);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    exit(77);
}

int kt_test_failures(void) { return failures; }

const char *kt_test_root(void) {
    const char *r = getenv("KT_SOURCE_DIR");
    return r ? r : KT_SOURCE_DIR;
}

const char *kt_test_datasets(void) {
    static char buf[4096];
    const char *env = getenv("KT_DATASETS");
    if (env) snprintf(buf, sizeof buf, "%s", env);
    else snprintf(buf, sizeof buf, "%s/../shared/datasets", kt_test_root());
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) return NULL;
    return buf;
}

const char *kt_test_tmpdir(void) {
    if (!tmpdir[0]) {
        snprintf(tmpdir, sizeof tmpdir, "%s/kt_tmp_%s_%ld", KT_BINARY_DIR, current, (long)getpid());
        char cmd[8400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", tmpdir, tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "cannot create %s\n", tmpdir);
    }
    return tmpdir;
}

static void cleanup_tmp(void) {
    if (tmpdir[0] && failures == 0 && !getenv("KT_KEEP_TMP")) {
        char cmd[8400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
    }
    tmpdir[0] = '\0';
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < n_tests; i++) puts(tests[i].name);
        return 0;
    }
    int ran = 0;
    for (int i = 0; i < n_tests; i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0) continue;
        current = tests[i].name;
        int before = failures;
        tests[i].fn();
        cleanup_tmp();
        printf("%s %s\n", failures == before ? "PASS" : "FAIL", current);
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "no test named '%s' (try --list)\n", argc > 1 ? argv[1] : "");
        return 2;
    }
    return failures ? 1 : 0;
}
