/* check.h - the smallest test harness that reads like the spec.
 *
 * TEST(name) { CHECK(cond, "why"); CHECK_NEAR(a, b, tol, "what"); }
 * main: RUN(name); ... return check_summary();  -- prints "N passed, N failed" and returns nonzero
 * when anything failed. A failed CHECK stops that test (return) but not the others. */
#ifndef LS_CHECK_H
#define LS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check_passed, check_failed, check_current_failed;

#define TEST(name) static void name(void)

#define CHECK(cond, ...)                                                            \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "  FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);        \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
            check_current_failed = 1;                                               \
            return;                                                                 \
        }                                                                           \
    } while (0)

#define CHECK_NEAR(a, b, tol, ...)                                                  \
    do {                                                                            \
        double check_a_ = (a), check_b_ = (b);                                      \
        if (!(fabs(check_a_ - check_b_) <= (tol))) {                                \
            fprintf(stderr, "  FAIL %s:%d: |%.9g - %.9g| > %g: ", __FILE__, __LINE__, \
                    check_a_, check_b_, (double)(tol));                             \
            fprintf(stderr, __VA_ARGS__);                                           \
            fputc('\n', stderr);                                                    \
            check_current_failed = 1;                                               \
            return;                                                                 \
        }                                                                           \
    } while (0)

#define RUN(name)                                                                   \
    do {                                                                            \
        check_current_failed = 0;                                                   \
        name();                                                                     \
        if (check_current_failed) { check_failed++; fprintf(stderr, "FAIL %s\n", #name); } \
        else { check_passed++; printf("ok   %s\n", #name); }                        \
    } while (0)

static inline int check_summary(void) {
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

/* Path of a golden file: $LS_GOLDEN_DIR/name (set by ctest). Returns a static buffer. */
static inline const char *check_golden(const char *name) {
    static char path[1024];
    const char *dir = getenv("LS_GOLDEN_DIR");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "../../shared/golden", name);
    return path;
}

/* Path of a generated model: $LS_BUILD_DIR/models/name (set by ctest). Two static buffers used in
 * turn, so two results can be held at once. */
static inline const char *check_model(const char *name) {
    static char path[2][1024];
    static int k;
    k ^= 1;
    const char *dir = getenv("LS_BUILD_DIR");
    snprintf(path[k], sizeof path[k], "%s/models/%s", dir ? dir : "../build", name);
    return path[k];
}

#endif
