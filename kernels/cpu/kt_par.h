/* Shared sizing rules for CPU kernels: when to go parallel, and the fixed reduction blocking that
 * makes sums independent of the thread count (blocks depend on the problem size only). */
#ifndef KT_PAR_H
#define KT_PAR_H

#include <stdint.h>

#define KT_PAR_MIN 32768 /* elements below which a parallel region costs more than it saves */

/* Rows per reduction block and block count for summing `rows` rows: deterministic in rows. */
static inline int64_t kt_red_blocks(int64_t rows) {
    int64_t b = (rows + 255) / 256;
    return b < 1 ? 1 : (b > 64 ? 64 : b);
}

static inline int64_t kt_red_block_start(int64_t rows, int64_t nb, int64_t b) { return rows * b / nb; }

#endif
