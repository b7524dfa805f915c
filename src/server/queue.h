/* queue.h - the bounded queue in front of the workers: a fixed ring of pointers (allocated once).
 * It counts admitted items (waiting + being worked on, until srv_queue_done) against
 * `workers + depth`, so a burst is admitted while workers are idle even before they wake up.
 * srv_queue_try_push never blocks: it fails when that bound is reached, which the server turns
 * into RESOURCE_EXHAUSTED. srv_queue_pop blocks until an item arrives or the queue is closed and
 * empty (then it returns NULL). */
#ifndef LS_SRV_QUEUE_H
#define LS_SRV_QUEUE_H

#include <pthread.h>

typedef struct srv_queue {
    void **items;
    int cap, head, len;
    int active;     /* pushed and not yet srv_queue_done */
    int closed;
    pthread_mutex_t mu;
    pthread_cond_t nonempty;
} srv_queue;

int srv_queue_init(srv_queue *q, int workers, int depth); /* 0, or -1 when out of memory */
void srv_queue_destroy(srv_queue *q);
int srv_queue_try_push(srv_queue *q, void *item); /* 0, or -1 when full or closed */
void *srv_queue_pop(srv_queue *q);
void srv_queue_done(srv_queue *q);                /* a popped item is finished */
void srv_queue_close(srv_queue *q);               /* wakes all poppers */
int srv_queue_length(srv_queue *q);               /* waiting items */

#endif
