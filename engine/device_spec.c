/* Device names: see device_spec.h. */
#include "engine/device_spec.h"

#include <stdio.h>
#include <string.h>

kt_status kt_device_spec_parse(const char *text, int allow_auto, kt_device_spec *out, kt_err *err) {
    *out = (kt_device_spec){KT_CPU, 0, 0};
    const char *accepted = allow_auto ? "auto, cpu, cuda or cuda:N (N: a GPU index, 0 the first)"
                                      : "cpu, cuda or cuda:N (N: a GPU index, 0 the first)";
    if (!text || !*text) return kt_err_set(err, KT_ERR_ARG, "device '' is empty: use %s", accepted);
    if (!strcmp(text, "cpu")) return KT_OK;
    if (!strcmp(text, "auto")) {
        if (!allow_auto) return kt_err_set(err, KT_ERR_ARG, "device 'auto' is not taken here: use %s", accepted);
        *out = (kt_device_spec){KT_CUDA, 0, 1};
        return KT_OK;
    }
    if (!strcmp(text, "cuda")) {
        out->device = KT_CUDA;
        return KT_OK;
    }
    if (!strncmp(text, "cuda:", 5)) {
        /* digits only: strtol would take "+1", " 1" and "0x1", which nobody means as a GPU */
        const char *d = text + 5;
        long v = 0;
        size_t n = strspn(d, "0123456789");
        if (n == 0 || d[n] != '\0')
            return kt_err_set(err, KT_ERR_ARG, "device '%s': the GPU index after 'cuda:' must be a number (cuda:0 is the first GPU)", text);
        for (size_t i = 0; i < n; i++) {
            v = v * 10 + (d[i] - '0');
            if (v > KT_DEVICE_INDEX_MAX)
                return kt_err_set(err, KT_ERR_ARG, "device '%s': GPU index out of range (0..%d)", text, KT_DEVICE_INDEX_MAX);
        }
        *out = (kt_device_spec){KT_CUDA, (int)v, 0};
        return KT_OK;
    }
    return kt_err_set(err, KT_ERR_ARG, "device '%s' is unknown: use %s", text, accepted);
}

void kt_device_spec_name(const kt_device_spec *d, char *buf, size_t len) {
    if (d->is_auto) snprintf(buf, len, "auto");
    else if (d->device == KT_CPU) snprintf(buf, len, "cpu");
    else if (d->index == 0) snprintf(buf, len, "cuda");
    else snprintf(buf, len, "cuda:%d", d->index);
}
