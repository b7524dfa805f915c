/* queue.h - the bounded queue in front of the workers: a fixed ring of pointers (allocated once).
 * srv_queue_try_push never blocks: it fails when the ring is full, which the server turns into
 * RESOURCE_EXHAUSTED. srv_queue_pop blocks until an item arrives or the queue is closed and
 * empty (then it returns NULL). */
#ifndef LS_SRV_QUEUE_H
#define LS_SRV_QUEUE_H

#include <pthread.h>

typedef struct srv_queue {
    void **items;
    int cap, head, len;
    int closed;
    pthread_mutex_t mu;
    pthread_cond_t nonempty;
} srv_queue;

int srv_queue_init(srv_queue *q, int capacity);  /* 0, or -1 when out of memory */
void srv_queue_destroy(srv_queue *q);
int srv_queue_try_push(srv_queue *q, void *item); /* 0, or -1 when full or closed */
void *srv_queue_pop(srv_queue *q);
void srv_queue_close(srv_queue *q);               /* wakes all poppers */
int srv_queue_length(srv_queue *q);

#endif
