/* queue.c - the bounded, non-blocking-push queue declared in queue.h. */
#include "server/queue.h"

#include <stdlib.h>

int srv_queue_init(srv_queue *q, int workers, int depth) {
    q->cap = workers + depth > 0 ? workers + depth : 1;
    q->head = q->len = q->closed = q->active = 0;
    q->items = calloc((size_t)q->cap, sizeof *q->items);
    if (!q->items) return -1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->nonempty, NULL);
    return 0;
}

void srv_queue_destroy(srv_queue *q) {
    if (!q->items) return;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->nonempty);
    free(q->items);
    q->items = NULL;
}

int srv_queue_try_push(srv_queue *q, void *item) {
    pthread_mutex_lock(&q->mu);
    int ok = !q->closed && q->active < q->cap;
    if (ok) {
        q->active++;
        q->items[(q->head + q->len) % q->cap] = item;
        q->len++;
        pthread_cond_signal(&q->nonempty);
    }
    pthread_mutex_unlock(&q->mu);
    return ok ? 0 : -1;
}

void *srv_queue_pop(srv_queue *q) {
    pthread_mutex_lock(&q->mu);
    while (!q->len && !q->closed) pthread_cond_wait(&q->nonempty, &q->mu);
    void *item = NULL;
    if (q->len) {
        item = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
    }
    pthread_mutex_unlock(&q->mu);
    return item;
}

void srv_queue_done(srv_queue *q) {
    pthread_mutex_lock(&q->mu);
    q->active--;
    pthread_mutex_unlock(&q->mu);
}

void srv_queue_close(srv_queue *q) {
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->nonempty);
    pthread_mutex_unlock(&q->mu);
}

int srv_queue_length(srv_queue *q) {
    pthread_mutex_lock(&q->mu);
    int n = q->len;
    pthread_mutex_unlock(&q->mu);
    return n;
}
