/* ISO 8601 parsing and formatting in UTC (timegm/gmtime_r; no locale, no local zone). */
#include "serve/timeutil.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t kt_time_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Reads exactly n digits at *p; returns -1 if any is not a digit. */
static int digits(const char **p, int n) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return v;
}

static int days_in_month(int y, int m) {
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return d[m - 1];
}

kt_status kt_time_parse_iso(const char *s, int64_t *us, kt_err *err) {
    const char *p = s;
    if (!s) return kt_err_set(err, KT_ERR_FORMAT, "missing timestamp");
    while (*p == ' ') p++;
    int y = digits(&p, 4);
    if (y < 0 || *p++ != '-') goto bad;
    int mo = digits(&p, 2);
    if (mo < 1 || mo > 12 || *p++ != '-') goto bad;
    int d = digits(&p, 2);
    if (y < 1900 || y > 9999 || d < 1 || d > days_in_month(y, mo)) goto bad;
    int hh = 0, mm = 0, ss = 0;
    int64_t frac_us = 0, offset_s = 0;
    if (*p == 'T' || *p == 't' || (*p == ' ' && isdigit((unsigned char)p[1]))) {
        p++;
        hh = digits(&p, 2);
        if (hh < 0 || hh > 23 || *p++ != ':') goto bad;
        mm = digits(&p, 2);
        if (mm < 0 || mm > 59) goto bad;
        if (*p == ':') {
            p++;
            ss = digits(&p, 2);
            if (ss < 0 || ss > 60) goto bad; /* 60: a leap second, folded into the next minute */
            if (*p == '.' || *p == ',') {
                p++;
                int64_t scale = 100000;
                if (!isdigit((unsigned char)*p)) goto bad;
                while (isdigit((unsigned char)*p)) {
                    frac_us += (*p - '0') * scale;
                    scale /= 10;
                    p++;
                }
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1;
            p++;
            int oh = digits(&p, 2);
            if (oh < 0 || oh > 23) goto bad;
            if (*p == ':') p++;
            int om = digits(&p, 2);
            if (om < 0 || om > 59) goto bad;
            offset_s = sign * (oh * 3600 + om * 60);
        }
    }
    while (*p == ' ') p++;
    if (*p) goto bad;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    time_t t = timegm(&tm);
    *us = ((int64_t)t - offset_s) * 1000000 + frac_us;
    return KT_OK;
bad:
    return kt_err_set(err, KT_ERR_FORMAT,
                      "'%.40s' is not an ISO 8601 date or date-time (expected e.g. 2024-05-01 or "
                      "2024-05-01T08:30:00Z)",
                      s);
}

static void split(int64_t us, struct tm *tm, int *micro) {
    int64_t sec = us / 1000000, rem = us % 1000000;
    if (rem < 0) {
        rem += 1000000;
        sec -= 1;
    }
    time_t t = (time_t)sec;
    gmtime_r(&t, tm);
    *micro = (int)rem;
}

void kt_time_format_iso(int64_t us, char *buf, size_t cap) {
    struct tm tm;
    int micro;
    split(us, &tm, &micro);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, micro);
}

void kt_time_format_date(int64_t us, char *buf, size_t cap) {
    struct tm tm;
    int micro;
    split(us, &tm, &micro);
    snprintf(buf, cap, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}
