/* A live progress line (bar, count, rate, ETA and caller fields) for long work. On a terminal it
 * redraws in place at most 10 times a second; into a file or pipe it prints a plain line now and then. */
#ifndef KT_PROGRESS_H
#define KT_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

typedef struct kt_progress {
    FILE *out;
    int tty;
    char label[64];
    const char *unit; /* "img", "batch", ... */
    int64_t total, done;
    double t0, last_draw;
    int drawn;
} kt_progress;

void kt_progress_begin(kt_progress *p, FILE *out, const char *label, int64_t total, const char *unit);
/* done = units finished so far; extra is printed after the ETA (may be NULL). */
void kt_progress_update(kt_progress *p, int64_t done, const char *extra);
/* Clears the live line (on a terminal) so the caller can print its summary line. */
void kt_progress_end(kt_progress *p);
/* "1h02m", "3m05s", "12.3s" */
void kt_format_duration(double seconds, char *buf, int n);

#endif
