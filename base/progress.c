/* Progress line drawing. */
#include "base/progress.h"

#include <string.h>
#include <unistd.h>

#include "base/timer.h"

void kt_format_duration(double s, char *buf, int n) {
    if (s < 0 || s != s) s = 0;
    if (s < 60) snprintf(buf, (size_t)n, "%.1fs", s);
    else if (s < 3600) snprintf(buf, (size_t)n, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(buf, (size_t)n, "%dh%02dm", (int)(s / 3600), ((int)s % 3600) / 60);
}

void kt_progress_begin(kt_progress *p, FILE *out, const char *label, int64_t total, const char *unit) {
    memset(p, 0, sizeof *p);
    p->out = out;
    p->tty = out && isatty(fileno(out));
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->unit = unit ? unit : "it";
    p->total = total;
    p->t0 = kt_now();
}

void kt_progress_update(kt_progress *p, int64_t done, const char *extra) {
    if (!p->out) return;
    p->done = done;
    double now = kt_now();
    double el = now - p->t0;
    int finished = p->total > 0 && done >= p->total;
    /* Terminal: redraw at 10 Hz. File: a line every 10 s and at the end, so logs stay short. */
    double gap = p->tty ? 0.1 : 10.0;
    if (!finished && p->drawn && now - p->last_draw < gap) return;
    if (!p->tty && finished) return; /* the caller's summary line follows */
    p->last_draw = now;
    p->drawn = 1;
    double rate = el > 0 ? (double)done / el : 0;
    char eta[32] = "?", els[32];
    if (rate > 0 && p->total > 0) kt_format_duration((double)(p->total - done) / rate, eta, sizeof eta);
    kt_format_duration(el, els, sizeof els);
    char bar[26];
    int w = 24, fill = p->total > 0 ? (int)((double)done / (double)p->total * w) : 0;
    if (fill > w) fill = w;
    for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
    bar[w] = '\0';
    fprintf(p->out, "%s%s [%s] %lld/%lld %s  %.1f %s/s  %s elapsed  ETA %s%s%s%s", p->tty ? "\r\033[K" : "",
            p->label, bar, (long long)done, (long long)p->total, p->unit, rate, p->unit, els, eta, extra ? "  " : "",
            extra ? extra : "", p->tty ? "" : "\n");
    fflush(p->out);
}

void kt_progress_end(kt_progress *p) {
    if (p->out && p->tty && p->drawn) {
        fputs("\r\033[K", p->out);
        fflush(p->out);
    }
}
