/* arena.h - a bump allocator over one block sized at start-up.
 *
 * A per-worker context carves all its buffers from one arena when it is created; the hot path then
 * only borrows them. arena_alloc never calls malloc: it returns NULL when the block is exhausted.
 * arena_reset makes the whole block available again (for per-request scratch). Not thread-safe:
 * one arena belongs to one thread at a time. */
#ifndef LS_ARENA_H
#define LS_ARENA_H

#include <stddef.h>

typedef struct ls_arena {
    unsigned char *base;
    size_t cap;
    size_t used;
    size_t high_water;  /* the most bytes ever in use, for sizing */
} ls_arena;

/* Allocates the block (64-byte aligned). Returns 0, or -1 when cap bytes cannot be had. */
int arena_init(ls_arena *a, size_t cap);
void arena_free(ls_arena *a);

/* `size` bytes aligned to `align` (a power of two, at most 4096), or NULL when full. */
void *arena_alloc(ls_arena *a, size_t size, size_t align);

/* Typed helper; contents are unspecified: callers write before reading. */
#define arena_array(a, type, n) ((type *)arena_alloc((a), sizeof(type) * (size_t)(n), 64))

static inline void arena_reset(ls_arena *a) { a->used = 0; }

#endif
