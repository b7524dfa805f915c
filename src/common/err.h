/* err.h - errors as values: a code plus a human-readable message.
 *
 * Library functions that can fail take an `ls_err *` (may be NULL) and return -1 (or NULL) after
 * filling it with ls_fail(). Nothing in the library prints or exits; callers decide what to show.
 * The codes map one-to-one onto gRPC status codes in the server (see srv_status_from_err). */
#ifndef LS_ERR_H
#define LS_ERR_H

#include <stddef.h>

typedef enum {
    LS_OK = 0,
    LS_EINVAL,      /* caller's input is malformed or out of range (INVALID_ARGUMENT) */
    LS_ENOTFOUND,   /* a named thing does not exist (NOT_FOUND) */
    LS_EIO,         /* a file could not be read or written (INTERNAL / FAILED_PRECONDITION) */
    LS_EFORMAT,     /* a file exists but its contents are wrong (FAILED_PRECONDITION) */
    LS_EMODEL,      /* ONNX Runtime failed or a model has the wrong inputs/outputs */
    LS_ENOMEM,      /* an allocation or a configured budget was exceeded (RESOURCE_EXHAUSTED) */
    LS_EBUSY,       /* try again later: queue full, shutting down (UNAVAILABLE) */
    LS_ECANCELLED,  /* the caller gave up (CANCELLED / DEADLINE_EXCEEDED) */
    LS_EINTERNAL    /* a bug: an invariant did not hold */
} ls_code;

typedef struct ls_err {
    ls_code code;
    char msg[512];
} ls_err;

/* Fills *e (when non-NULL) with code and a printf-style message; always returns -1. */
int ls_fail(ls_err *e, ls_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prepends "prefix: " to e->msg, keeping the code; returns -1. For adding context on the way up. */
int ls_wrap(ls_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Short name of a code ("invalid argument", ...). Never NULL. */
const char *ls_code_name(ls_code code);

#endif
