/* arena.c - the bump allocator declared in arena.h. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>

int arena_init(ls_arena *a, size_t cap) {
    a->used = a->high_water = 0;
    a->cap = (cap + 63) & ~(size_t)63;
    a->base = a->cap ? aligned_alloc(64, a->cap) : NULL;
    return (a->cap && !a->base) ? -1 : 0;
}

void arena_free(ls_arena *a) {
    free(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
}

void *arena_alloc(ls_arena *a, size_t size, size_t align) {
    uintptr_t start = (uintptr_t)a->base + a->used;
    uintptr_t aligned = (start + (align - 1)) & ~(uintptr_t)(align - 1);
    size_t offset = (size_t)(aligned - (uintptr_t)a->base);
    if (offset > a->cap || size > a->cap - offset) return NULL;
    a->used = offset + size;
    if (a->used > a->high_water) a->high_water = a->used;
    return (void *)aligned;
}
