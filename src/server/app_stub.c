/* app_stub.c - placeholder application (srv_app.h) until the rendering pipeline is wired in:
 * ready at once, no avatars loaded, no handlers of its own (the built-in "not wired yet" ones
 * answer the rendering methods). Replace this file with the pipeline-backed app. */
#include <stdlib.h>

#include "server/srv_app.h"

typedef struct {
    int max_models;
} stub_app;

static void stub_health(void *ctx, srv_app_health *out) {
    const stub_app *a = ctx;
    out->ready = true;
    out->loaded_models = 0;
    out->max_models = a->max_models;
    out->n_gpus = 0; /* CPU inference */
}

static void stub_destroy(void *ctx) { free(ctx); }

int srv_app_create(srv_app *app, const srv_config *cfg, ls_err *err) {
    stub_app *a = calloc(1, sizeof *a);
    if (!a) return ls_fail(err, LS_ENOMEM, "out of memory");
    a->max_models = cfg->max_models;
    *app = (srv_app){.ctx = a, .health = stub_health, .destroy = stub_destroy};
    return 0;
}
