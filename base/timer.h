/* Monotonic wall-clock time and peak resident memory, for progress, profiling and benchmarks. */
#ifndef KT_TIMER_H
#define KT_TIMER_H

#include <stdint.h>

double kt_now(void);              /* seconds, monotonic */
int64_t kt_peak_rss_bytes(void);  /* VmHWM of this process, -1 if unknown */
int64_t kt_cur_rss_bytes(void);   /* VmRSS of this process, -1 if unknown */

#endif
