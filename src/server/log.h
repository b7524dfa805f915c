/* log.h - lipsyncd's logger: callers format a line into a fixed ring (no I/O, no malloc); one
 * logger thread writes the ring to stderr. When the ring is full, lines are dropped and counted
 * (the count is reported with the next line written), so a slow terminal never stalls a worker.
 * srv_log_create allocates the ring once; srv_log_destroy writes what is left and joins. */
#ifndef LS_SRV_LOG_H
#define LS_SRV_LOG_H

#include <stdio.h>

#include "common/err.h"
#include "server/config.h"

typedef struct srv_log srv_log;

srv_log *srv_log_create(srv_log_level level, int capacity, FILE *out, ls_err *err);
void srv_log_destroy(srv_log *log);

/* Thread-safe. Lines above the configured level are skipped before formatting. */
void srv_logf(srv_log *log, srv_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int srv_log_enabled(const srv_log *log, srv_log_level level);

#endif
