/* err.c - the error-value helpers declared in err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ls_fail(ls_err *e, ls_code code, const char *fmt, ...) {
    if (!e) return -1;
    va_list ap;
    va_start(ap, fmt);
    e->code = code;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int ls_wrap(ls_err *e, const char *fmt, ...) {
    if (!e) return -1;
    char prefix[256], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    /* Truncation is fine here: a long message loses its tail, never its start. */
    size_t n = strnlen(prefix, sizeof e->msg - 3);
    memcpy(e->msg, prefix, n);
    memcpy(e->msg + n, ": ", 2);
    size_t room = sizeof e->msg - n - 3;
    size_t m = strnlen(old, room);
    memcpy(e->msg + n + 2, old, m);
    e->msg[n + 2 + m] = '\0';
    return -1;
}

const char *ls_code_name(ls_code code) {
    switch (code) {
    case LS_OK: return "ok";
    case LS_EINVAL: return "invalid argument";
    case LS_ENOTFOUND: return "not found";
    case LS_EIO: return "i/o error";
    case LS_EFORMAT: return "bad format";
    case LS_EMODEL: return "model error";
    case LS_ENOMEM: return "out of memory";
    case LS_EBUSY: return "busy";
    case LS_ECANCELLED: return "cancelled";
    case LS_EINTERNAL: return "internal error";
    }
    return "unknown error";
}
