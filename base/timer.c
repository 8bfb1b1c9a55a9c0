/* Clock and /proc/self/status readers. */
#include "base/timer.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

double kt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int64_t status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int64_t v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) == 0) {
            long long kb;
            if (sscanf(line + kl, " %lld", &kb) == 1) v = kb * 1024;
            break;
        }
    }
    fclose(f);
    return v;
}

int64_t kt_peak_rss_bytes(void) { return status_kb("VmHWM:"); }
int64_t kt_cur_rss_bytes(void) { return status_kb("VmRSS:"); }
