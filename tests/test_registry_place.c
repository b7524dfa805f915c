/* test_registry_place.c - which GPU a new avatar's models go to (reg_model_place, registry_priv.h).
 * CI has no GPU, so the rule is checked on registry state built by hand: the configured GPU with
 * the fewest avatars loaded or still loading (a load drops the registry lock while its models
 * load, so one still loading must count, or concurrent loads all land on one GPU); ties go to the
 * first listed; the CPU (-1) when CUDA is not configured or the avatar's entry says cpu. */
#include <string.h>

#include "check.h"
#include "server/config.h"
#include "server/registry_priv.h"

enum { N_ENTRIES = 6 };
static reg_entry entries[N_ENTRIES];
static reg_entry *entry_ptrs[N_ENTRIES];

/* A registry on GPUs devs[0..n-1] whose entries are in the given states, placed on the given GPUs. */
static void registry_with(reg_registry *r, const int *devs, int n_devs, const int *states, const int *placed,
                          int n) {
    memset(r, 0, sizeof *r);
    memset(entries, 0, sizeof entries);
    r->cfg.ep.kind = ORT_EP_CUDA;
    r->cfg.cuda_devices = devs;
    r->cfg.n_cuda_devices = n_devs;
    for (int i = 0; i < n; i++) {
        entries[i].state = states[i];
        entries[i].device = placed[i];
        entry_ptrs[i] = &entries[i];
    }
    r->entries = entry_ptrs;
    r->n_entries = n;
}

TEST(an_empty_registry_uses_the_first_listed_gpu) {
    static const int devs[] = {2, 0, 1};
    reg_registry r;
    registry_with(&r, devs, 3, NULL, NULL, 0);
    CHECK(reg_model_place(&r, NULL) == 2, "got %d", reg_model_place(&r, NULL));
}

TEST(avatars_still_loading_count_so_concurrent_loads_spread) {
    static const int devs[] = {0, 1};
    static const int states[] = {ENTRY_LOADING, ENTRY_LOADING}, placed[] = {0, -1};
    reg_registry r;
    /* One load placed on GPU 0 and still loading its models, one not placed yet: GPU 1 is next. */
    registry_with(&r, devs, 2, states, placed, 2);
    CHECK(reg_model_place(&r, NULL) == 1, "got %d", reg_model_place(&r, NULL));
}

TEST(the_gpu_with_fewest_loaded_avatars_wins_and_unloaded_ones_do_not_count) {
    static const int devs[] = {0, 1, 2};
    static const int states[] = {ENTRY_LOADED, ENTRY_LOADED, ENTRY_LOADED, ENTRY_UNLOADED, ENTRY_UNLOADED,
                                 ENTRY_LOADED};
    static const int placed[] = {0, 1, 1, 2, 2, 2};
    reg_registry r;
    registry_with(&r, devs, 3, states, placed, 6);
    CHECK(reg_model_place(&r, NULL) == 0, "GPU 0 (1 avatar) and 2 (1, two gone) tie: got %d",
          reg_model_place(&r, NULL));
    entries[0].device = 2; /* now 0 has none */
    CHECK(reg_model_place(&r, NULL) == 0, "GPU 0 is empty: got %d", reg_model_place(&r, NULL));
    entries[5].state = ENTRY_UNLOADED, entries[0].state = ENTRY_UNLOADED;
    entries[1].device = 0;
    CHECK(reg_model_place(&r, NULL) == 2, "GPU 2 is the only empty one: got %d", reg_model_place(&r, NULL));
}

TEST(the_cpu_when_cuda_is_off_or_the_models_entry_says_cpu) {
    static const int devs[] = {0};
    reg_registry r;
    registry_with(&r, devs, 1, NULL, NULL, 0);
    srv_model_cfg on_cpu = {.provider = ORT_EP_CPU}, default_provider = {.provider = -1};
    CHECK(reg_model_place(&r, &on_cpu) == -1, "entry on the cpu");
    CHECK(reg_model_place(&r, &default_provider) == 0, "entry with the default provider");
    r.cfg.ep.kind = ORT_EP_CPU;
    CHECK(reg_model_place(&r, NULL) == -1, "cpu configured");
    r.cfg.ep.kind = ORT_EP_CUDA, r.cfg.n_cuda_devices = 0;
    CHECK(reg_model_place(&r, NULL) == -1, "no GPU listed");
}

int main(void) {
    RUN(an_empty_registry_uses_the_first_listed_gpu);
    RUN(avatars_still_loading_count_so_concurrent_loads_spread);
    RUN(the_gpu_with_fewest_loaded_avatars_wins_and_unloaded_ones_do_not_count);
    RUN(the_cpu_when_cuda_is_off_or_the_models_entry_says_cpu);
    return check_summary();
}
