/* Status codes and the caller-owned error buffer every library call fills.
 * Library code never prints or exits: it returns a kt_status and says why in kt_err. */
#ifndef KT_STATUS_H
#define KT_STATUS_H

#include <stddef.h>

typedef enum {
    KT_OK = 0,
    KT_ERR_ARG,         /* a bad argument or option value */
    KT_ERR_SHAPE,       /* tensor shapes that do not fit together */
    KT_ERR_IO,          /* a file could not be read or written */
    KT_ERR_FORMAT,      /* a file or message whose content is malformed */
    KT_ERR_NOMEM,       /* an allocation failed */
    KT_ERR_UNSUPPORTED, /* valid request this build or backend cannot serve */
    KT_ERR_CUDA,        /* a CUDA, cuBLAS or cuDNN call failed */
    KT_ERR_STATE,       /* called in the wrong order (e.g. run before plan) */
    KT_ERR_INTERRUPTED, /* stopped by the user (Ctrl-C) after a clean save */
    KT_ERR_NOTFOUND     /* a named thing (file, key, class, user) does not exist */
} kt_status;

#define KT_ERR_MSG_MAX 1024

typedef struct kt_err {
    kt_status code;
    char msg[KT_ERR_MSG_MAX];
} kt_err;

/* Records code and message in e (e may be NULL) and returns code, so callers can
 * write `return kt_err_set(err, KT_ERR_IO, "cannot open %s", path);`. */
kt_status kt_err_set(kt_err *e, kt_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepends context ("loading model.safetensors: ") to the message already in e. */
kt_status kt_err_prefix(kt_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void kt_err_clear(kt_err *e);
const char *kt_status_name(kt_status s);

#endif
