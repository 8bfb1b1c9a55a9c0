/* Error-buffer helpers: formatting, prefixing and status names. */
#include "base/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

kt_status kt_err_set(kt_err *e, kt_status code, const char *fmt, ...) {
    if (!e) return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

kt_status kt_err_prefix(kt_err *e, const char *fmt, ...) {
    if (!e) return KT_ERR_ARG;
    char pre[KT_ERR_MSG_MAX], old[KT_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    /* Truncation is acceptable here: the message stays a valid, shortened string. */
    size_t pl = strnlen(pre, sizeof e->msg - 1);
    memcpy(e->msg, pre, pl);
    size_t room = sizeof e->msg - 1 - pl;
    size_t ol = strnlen(old, room);
    memcpy(e->msg + pl, old, ol);
    e->msg[pl + ol] = '\0';
    return e->code;
}

void kt_err_clear(kt_err *e) {
    if (!e) return;
    e->code = KT_OK;
    e->msg[0] = '\0';
}

const char *kt_status_name(kt_status s) {
    switch (s) {
    case KT_OK: return "ok";
    case KT_ERR_ARG: return "bad argument";
    case KT_ERR_SHAPE: return "shape mismatch";
    case KT_ERR_IO: return "i/o error";
    case KT_ERR_FORMAT: return "bad format";
    case KT_ERR_NOMEM: return "out of memory";
    case KT_ERR_UNSUPPORTED: return "unsupported";
    case KT_ERR_CUDA: return "cuda error";
    case KT_ERR_STATE: return "bad state";
    case KT_ERR_INTERRUPTED: return "interrupted";
    case KT_ERR_NOTFOUND: return "not found";
    }
    return "unknown";
}
