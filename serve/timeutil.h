/* ISO 8601 timestamps for the server and the diet engine: parse what clients send (dates,
 * date-times with optional fraction and zone) and format UTC times the way the API answers. */
#ifndef KT_SERVE_TIMEUTIL_H
#define KT_SERVE_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

/* Microseconds since the Unix epoch (UTC wall clock, not monotonic). */
int64_t kt_time_now_us(void);

/* Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM[:SS[.ffffff]]" (a space may replace T) with an optional
 * "Z" or "+HH:MM"/"-HH:MM" zone (no zone = UTC). *us gets microseconds since the epoch.
 * Rejects impossible dates (2023-02-30) and trailing text. */
kt_status kt_time_parse_iso(const char *s, int64_t *us, kt_err *err);

/* "2024-05-01T12:34:56.123456Z" (27 chars + NUL); buf needs >= 32 bytes. */
void kt_time_format_iso(int64_t us, char *buf, size_t cap);
/* "2024-05-01" (UTC date); buf needs >= 11 bytes. */
void kt_time_format_date(int64_t us, char *buf, size_t cap);

#define KT_US_PER_DAY ((int64_t)86400 * 1000000)

#endif
