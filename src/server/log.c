/* log.c - the ring logger declared in log.h. */
#include "server/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINE_MAX_BYTES 480

typedef struct {
    srv_log_level level;
    struct timespec when;
    char text[LINE_MAX_BYTES];
} log_line;

struct srv_log {
    srv_log_level level;
    FILE *out;
    log_line *ring;
    int cap, head, len;
    unsigned long dropped;
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_t thread;
};

static void *writer(void *arg) {
    srv_log *log = arg;
    log_line line;
    pthread_mutex_lock(&log->mu);
    for (;;) {
        while (!log->len && !log->stop) pthread_cond_wait(&log->wake, &log->mu);
        if (!log->len) break;
        line = log->ring[log->head];
        log->head = (log->head + 1) % log->cap;
        log->len--;
        unsigned long dropped = log->dropped;
        log->dropped = 0;
        pthread_mutex_unlock(&log->mu);
        /* The I/O happens here, outside the lock and off every worker's path. */
        struct tm tm;
        gmtime_r(&line.when.tv_sec, &tm);
        if (dropped) fprintf(log->out, "lipsyncd: warn: log ring full, %lu lines dropped\n", dropped);
        fprintf(log->out, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s\n", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                line.when.tv_nsec / 1000000, srv_log_level_name(line.level), line.text);
        fflush(log->out);
        pthread_mutex_lock(&log->mu);
    }
    pthread_mutex_unlock(&log->mu);
    return NULL;
}

srv_log *srv_log_create(srv_log_level level, int capacity, FILE *out, ls_err *err) {
    srv_log *log = calloc(1, sizeof *log);
    if (log) log->ring = calloc((size_t)(capacity > 0 ? capacity : 1), sizeof *log->ring);
    if (!log || !log->ring) {
        free(log);
        ls_fail(err, LS_ENOMEM, "logger: cannot allocate %d lines", capacity);
        return NULL;
    }
    log->level = level;
    log->out = out;
    log->cap = capacity > 0 ? capacity : 1;
    pthread_mutex_init(&log->mu, NULL);
    pthread_cond_init(&log->wake, NULL);
    if (pthread_create(&log->thread, NULL, writer, log)) {
        free(log->ring);
        free(log);
        ls_fail(err, LS_EINTERNAL, "logger: cannot start thread");
        return NULL;
    }
    return log;
}

void srv_log_destroy(srv_log *log) {
    if (!log) return;
    pthread_mutex_lock(&log->mu);
    log->stop = 1;
    pthread_cond_signal(&log->wake);
    pthread_mutex_unlock(&log->mu);
    pthread_join(log->thread, NULL);
    pthread_mutex_destroy(&log->mu);
    pthread_cond_destroy(&log->wake);
    free(log->ring);
    free(log);
}

int srv_log_enabled(const srv_log *log, srv_log_level level) { return log && level <= log->level; }

void srv_logf(srv_log *log, srv_log_level level, const char *fmt, ...) {
    if (!srv_log_enabled(log, level)) return;
    pthread_mutex_lock(&log->mu);
    if (log->len == log->cap) {
        log->dropped++;
        pthread_mutex_unlock(&log->mu);
        return;
    }
    log_line *line = &log->ring[(log->head + log->len) % log->cap];
    line->level = level;
    clock_gettime(CLOCK_REALTIME, &line->when);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line->text, sizeof line->text, fmt, ap);
    va_end(ap);
    log->len++;
    pthread_cond_signal(&log->wake);
    pthread_mutex_unlock(&log->mu);
}
