/* test_arena.c - the bump allocator hands out aligned, disjoint blocks and refuses past its cap. */
#include "check.h"
#include "common/arena.h"
#include "common/err.h"

#include <stdint.h>
#include <string.h>

TEST(arena_aligns_and_refuses_when_full) {
    ls_arena a;
    CHECK(arena_init(&a, 256) == 0, "init");
    void *p = arena_alloc(&a, 10, 64), *q = arena_alloc(&a, 10, 64);
    CHECK(p && q && ((uintptr_t)q % 64) == 0 && (char *)q >= (char *)p + 10, "aligned, disjoint");
    CHECK(arena_alloc(&a, 1000, 8) == NULL, "over capacity gives NULL");
    arena_reset(&a);
    CHECK(arena_alloc(&a, 256, 64) == a.base, "reset reuses the block");
    arena_free(&a);
}

TEST(err_wrap_keeps_code_and_adds_context) {
    ls_err e;
    CHECK(ls_fail(&e, LS_EINVAL, "bad %d", 7) == -1, "returns -1");
    ls_wrap(&e, "reading %s", "x.wav");
    CHECK(e.code == LS_EINVAL && strcmp(e.msg, "reading x.wav: bad 7") == 0, "got '%s'", e.msg);
}

int main(void) {
    RUN(arena_aligns_and_refuses_when_full);
    RUN(err_wrap_keeps_code_and_adds_context);
    return check_summary();
}
