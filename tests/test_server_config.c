/* test_server_config.c - lipsyncd's YAML configuration (src/server/config.h): defaults, the Go
 * server's keys, and errors that name the file, line and key path. */
#include <string.h>

#include "check.h"
#include "server/config.h"

static int parse(srv_config *cfg, const char *yaml, ls_err *err) {
    srv_config_defaults(cfg);
    return srv_config_parse(cfg, yaml, strlen(yaml), "t.yaml", err);
}

TEST(defaults_serve_localhost_50053) {
    srv_config c;
    srv_config_defaults(&c);
    CHECK(!strcmp(c.listen, "127.0.0.1:50053"), "listen %s", c.listen);
    CHECK(c.max_message_size_mb == 100, "max message %d", c.max_message_size_mb);
    CHECK(c.shutdown_grace_ms == 10000, "grace %d", c.shutdown_grace_ms);
    CHECK(c.worker_count >= 1 && c.queue_depth >= 1, "workers %d queue %d", c.worker_count, c.queue_depth);
    CHECK(c.jpeg_quality == 75 && c.eviction_policy == SRV_EVICT_LFU, "jpeg %d", c.jpeg_quality);
    CHECK(!c.auth_token[0] && !c.tls_cert[0] && !c.testing_enable_sleep, "auth/TLS/test hooks off");
}

TEST(empty_file_keeps_defaults) {
    srv_config c;
    ls_err e = {0};
    CHECK(parse(&c, "", &e) == 0, "%s", e.msg);
    CHECK(!strcmp(c.listen, "127.0.0.1:50053"), "listen %s", c.listen);
}

TEST(go_server_keys_are_accepted) {
    const char *y =
        "server:\n  port: \":6000\"\n  max_message_size_mb: 50\n  worker_count: 3\n"
        "capacity:\n  max_models: 4\n  max_memory_gb: 2.5\n  eviction_policy: lru\n"
        "onnx:\n  intra_op_threads: 2\noutput:\n  jpeg_quality: 90\n"
        "models:\n  alice:\n    model_path: /m/a.onnx\n    background_dir: /m/a_frames\n"
        "    crop_rects_path: /m/a.json\n    num_frames: 100\n    preload_backgrounds: true\n"
        "    preload_model: yes\n  bob:\n    model_path: b.onnx\n    source_video: b.mp4\n";
    srv_config c;
    ls_err e = {0};
    CHECK(parse(&c, y, &e) == 0, "%s", e.msg);
    CHECK(!strcmp(c.listen, "127.0.0.1:6000"), "server.port overrides the port: %s", c.listen);
    CHECK(c.max_message_size_mb == 50 && c.worker_count == 3, "server keys");
    CHECK(c.max_models == 4 && c.max_memory_gb == 2.5 && c.eviction_policy == SRV_EVICT_LRU, "capacity");
    CHECK(c.intra_op_threads == 2 && c.jpeg_quality == 90, "onnx/output");
    CHECK(c.n_models == 2, "models %d", c.n_models);
    CHECK(!strcmp(c.models[0].id, "alice") && !strcmp(c.models[0].background_dir, "/m/a_frames"), "alice");
    CHECK(c.models[0].num_frames == 100 && c.models[0].preload_backgrounds && c.models[0].preload_model, "alice flags");
    CHECK(c.models[0].line == 14, "alice declared on line 14, got %d", c.models[0].line);
    CHECK(!strcmp(c.models[1].source_video, "b.mp4") && !c.models[1].preload_model, "bob");
    srv_config_free(&c);
}

TEST(port_overrides_listen_in_any_order) {
    srv_config c;
    ls_err e = {0};
    CHECK(parse(&c, "server:\n  port: 7000\n  listen: 0.0.0.0:1\n", &e) == 0, "%s", e.msg);
    CHECK(!strcmp(c.listen, "0.0.0.0:7000"), "listen %s", c.listen);
}

TEST(unknown_key_reports_path_and_line) {
    srv_config c;
    ls_err e = {0};
    CHECK(parse(&c, "server:\n  keepalive:\n    time_ms: 5000\n    tmeout_ms: 1\n", &e) == -1, "must fail");
    CHECK(e.code == LS_EINVAL, "code %d", e.code);
    CHECK(!strcmp(e.msg, "t.yaml:4: server.keepalive.tmeout_ms: unknown key"), "msg: %s", e.msg);
    CHECK(parse(&c, "color: blue\n", &e) == -1 && strstr(e.msg, "t.yaml:1: color: unknown key"), "%s", e.msg);
}

TEST(wrong_types_report_path_and_line) {
    srv_config c;
    ls_err e = {0};
    CHECK(parse(&c, "server:\n  worker_count: many\n", &e) == -1, "string for int");
    CHECK(strstr(e.msg, "t.yaml:2: server.worker_count: expected an integer"), "%s", e.msg);
    CHECK(parse(&c, "server:\n  worker_count: \"4\"\n", &e) == -1, "quoted int is a string");
    CHECK(parse(&c, "output:\n  jpeg_quality: 101\n", &e) == -1, "range");
    CHECK(strstr(e.msg, "t.yaml:2: output.jpeg_quality: out of range"), "%s", e.msg);
    CHECK(parse(&c, "server: [1, 2]\n", &e) == -1 && strstr(e.msg, "t.yaml:1: server: expected a mapping"), "%s", e.msg);
    CHECK(parse(&c, "server:\n  listen:\n    a: b\n", &e) == -1 && strstr(e.msg, "t.yaml:3: server.listen: expected a string"), "%s", e.msg);
    CHECK(parse(&c, "logging:\n  level: loud\n", &e) == -1 && strstr(e.msg, "logging.level"), "%s", e.msg);
    CHECK(parse(&c, "server:\n  port: 70000\n", &e) == -1 && strstr(e.msg, "server.port: out of range"), "%s", e.msg);
}

TEST(model_entries_are_validated) {
    srv_config c;
    ls_err e = {0};
    CHECK(parse(&c, "models:\n  ../etc:\n    model_path: m\n    source_video: v\n", &e) == -1, "path-like id");
    CHECK(strstr(e.msg, "t.yaml:2: models.../etc: model id must match"), "%s", e.msg);
    srv_config_free(&c);
    CHECK(parse(&c, "models:\n  a:\n    model_path: m\n", &e) == -1, "no frames source");
    CHECK(strstr(e.msg, "exactly one of background_dir and source_video"), "%s", e.msg);
    srv_config_free(&c);
    CHECK(parse(&c, "models:\n  a:\n    model_path: m\n    source_video: v\n    fps: 25\n", &e) == -1, "unknown");
    CHECK(strstr(e.msg, "t.yaml:5: models.a.fps: unknown key"), "%s", e.msg);
    srv_config_free(&c);
}

TEST(yaml_syntax_error_has_a_line) {
    srv_config c;
    ls_err e = {0};
    CHECK(parse(&c, "server:\n  listen: [\n", &e) == -1, "must fail");
    CHECK(strstr(e.msg, "t.yaml:") && strstr(e.msg, "YAML syntax error"), "%s", e.msg);
}

TEST(tls_needs_cert_and_key) {
    srv_config c;
    ls_err e = {0};
    CHECK(parse(&c, "server:\n  tls:\n    cert: a.pem\n", &e) == -1 && strstr(e.msg, "server.tls"), "%s", e.msg);
}

TEST(listen_flag) {
    srv_config c;
    ls_err e = {0};
    srv_config_defaults(&c);
    CHECK(srv_config_set_listen(&c, ":9000", &e) == 0 && !strcmp(c.listen, "127.0.0.1:9000"), "%s", c.listen);
    CHECK(srv_config_set_listen(&c, "[::1]:9001", &e) == 0 && !strcmp(c.listen, "[::1]:9001"), "%s", c.listen);
    CHECK(srv_config_set_listen(&c, "localhost", &e) == -1, "no port");
    CHECK(srv_config_set_listen(&c, "h:99999", &e) == -1, "port range");
}

TEST(missing_file_is_an_io_error) {
    srv_config c;
    ls_err e = {0};
    srv_config_defaults(&c);
    CHECK(srv_config_load(&c, "/nonexistent/lipsyncd.yaml", &e) == -1 && e.code == LS_EIO, "%s", e.msg);
}

TEST(render_capacity_keys_and_build_defaults) {
    srv_config c;
    ls_err e = {0};
    srv_config_defaults(&c);
    CHECK(c.max_frame_width == 1920 && c.max_frame_height == 1080 && c.max_audio_seconds == 60.0,
          "worker frame 1920x1080, 60 s of audio by default");
    /* No config: the build's demo avatar and encoder (compile definitions from cmake/server.cmake). */
    CHECK(strstr(c.avatars_root, "/avatars") && c.avatars_root[0] == '/', "avatars_root %s", c.avatars_root);
    CHECK(strstr(c.audio_encoder, "/models/ave_encoder.onnx"), "audio_encoder %s", c.audio_encoder);
    CHECK(strstr(c.ort_cache_dir, "/ort-cache"), "optimised-graph cache in the build: %s", c.ort_cache_dir);
    CHECK(parse(&c, "onnx:\n  optimized_model_dir: \"\"\n", &e) == 0 && c.ort_cache_dir[0] == 0,
          "an empty optimized_model_dir turns the cache off: %s", e.msg);
    CHECK(parse(&c, "audio_encoder: /m/enc.onnx\ncapacity:\n  max_frame_width: 640\n  max_frame_height: 480\n"
                    "  max_audio_seconds: 2.5\n", &e) == 0, "%s", e.msg);
    CHECK(!strcmp(c.audio_encoder, "/m/enc.onnx") && c.max_frame_width == 640 && c.max_frame_height == 480 &&
          c.max_audio_seconds == 2.5, "keys applied");
    CHECK(parse(&c, "capacity:\n  max_audio_seconds: 0\n", &e) != 0 && strstr(e.msg, "t.yaml:2: capacity.max_audio_seconds"),
          "range checked: %s", e.msg);
    CHECK(parse(&c, "capacity:\n  max_frame_width: 9000\n", &e) != 0 && strstr(e.msg, "max_frame_width"),
          "range checked: %s", e.msg);
    srv_config_free(&c);
}

TEST(execution_provider_defaults_to_cpu) {
    srv_config c;
    srv_config_defaults(&c);
    CHECK(c.provider == ORT_EP_CPU && !c.fallback_cpu && c.uint8_io == -1, "provider %d", (int)c.provider);
    CHECK(c.n_cuda_devices == 1 && c.cuda_device_ids[0] == 0, "devices: [0]");
    CHECK(c.cudnn_search == ORT_CUDNN_EXHAUSTIVE && c.cuda_tf32 == -1 && c.cuda_graph == -1, "cuda defaults");
    CHECK(c.cuda_api == ORT_CUDA_API_AUTO && c.cuda_device_tensors, "auto API, device tensors");
}

TEST(stream_waits_and_stall_threshold_are_range_checked) {
    srv_config c;
    ls_err e = {0};
    srv_config_defaults(&c);
    CHECK(c.stream_encoder_max_wait_us == 1000 && c.stream_stalled_send_ms == 1000, "defaults");
    CHECK(parse(&c, "stream:\n  encoder_max_wait_us: 20000\n  stalled_send_ms: 5000\n", &e) == 0 &&
              c.stream_encoder_max_wait_us == 20000 && c.stream_stalled_send_ms == 5000, "in range: %s", e.msg);
    srv_config_free(&c);
    /* The encoder wait holds a session's lock that the shared UNet scheduler also takes. */
    CHECK(parse(&c, "stream:\n  encoder_max_wait_us: 20001\n", &e) != 0 && strstr(e.msg, "encoder_max_wait_us"),
          "capped at 20 ms: %s", e.msg);
    srv_config_free(&c);
    CHECK(parse(&c, "stream:\n  stalled_send_ms: 99\n", &e) != 0 && strstr(e.msg, "stalled_send_ms"), "%s", e.msg);
    srv_config_free(&c);
}

TEST(pipeline_key_is_a_tribool) {
    srv_config c;
    ls_err e = {0};
    srv_config_defaults(&c);
    CHECK(c.pipeline == -1, "default: by provider");
    CHECK(parse(&c, "capacity:\n  pipeline: true\n", &e) == 0 && c.pipeline == 1, "true: %s", e.msg);
    srv_config_free(&c);
    CHECK(parse(&c, "capacity:\n  pipeline: false\n", &e) == 0 && c.pipeline == 0, "false: %s", e.msg);
    srv_config_free(&c);
    CHECK(parse(&c, "capacity:\n  pipeline: sometimes\n", &e) != 0 && strstr(e.msg, "capacity.pipeline"),
          "bad value named: %s", e.msg);
    srv_config_free(&c);
}

TEST(cuda_keys_are_parsed) {
    const char *y = "onnx:\n  provider: cuda\n  fallback: cpu\n  uint8_io: false\n  cuda:\n"
                    "    device_ids: [1, 0, 3]\n    memory_limit_gb: 20\n    cudnn_conv_algo_search: heuristic\n"
                    "    tf32: true\n    cuda_graph: false\n    provider_library: /opt/ort/libp.so\n    api: classic\n"
                    "    device_tensors: false\n"
                    "models:\n  a:\n    model_path: a.onnx\n    background_dir: d\n    provider: cpu\n";
    srv_config c;
    ls_err e = {0};
    CHECK(parse(&c, y, &e) == 0, "%s", e.msg);
    CHECK(c.provider == ORT_EP_CUDA && c.fallback_cpu && c.uint8_io == 0, "provider, fallback, uint8_io");
    CHECK(c.n_cuda_devices == 3 && c.cuda_device_ids[0] == 1 && c.cuda_device_ids[1] == 0 &&
              c.cuda_device_ids[2] == 3, "devices in order");
    CHECK(c.cuda_memory_limit_gb == 20 && c.cudnn_search == ORT_CUDNN_HEURISTIC && c.cuda_tf32 == 1 && c.cuda_graph == 0,
          "cuda options");
    CHECK(!strcmp(c.cuda_provider_lib, "/opt/ort/libp.so"), "library %s", c.cuda_provider_lib);
    CHECK(c.cuda_api == ORT_CUDA_API_CLASSIC && !c.cuda_device_tensors, "api, device tensors");
    CHECK(c.n_models == 1 && c.models[0].provider == ORT_EP_CPU, "per-model provider");
    srv_config_free(&c);
    CHECK(parse(&c, "onnx:\n  cuda:\n    device_ids: 2\n", &e) == 0 && c.n_cuda_devices == 1 &&
              c.cuda_device_ids[0] == 2, "one device as a scalar: %s", e.msg);
    CHECK(parse(&c, "models:\n  a:\n    model_path: a.onnx\n    background_dir: d\n", &e) == 0 &&
              c.models[0].provider == -1, "a model without provider follows onnx.provider");
    srv_config_free(&c);
}

TEST(bad_cuda_settings_name_key_and_line) {
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"onnx:\n  provider: tpu\n", "t.yaml:2: onnx.provider: expected cpu|cuda, got 'tpu'"},
        {"onnx:\n  fallback: gpu\n", "t.yaml:2: onnx.fallback: expected none|cpu"},
        {"onnx:\n  cuda:\n    device_ids: [0, 0]\n", "t.yaml:3: onnx.cuda.device_ids: GPU listed twice"},
        {"onnx:\n  cuda:\n    device_ids: [16]\n", "t.yaml:3: onnx.cuda.device_ids: expected GPU numbers"},
        {"onnx:\n  cuda:\n    device_ids: [-1]\n", "onnx.cuda.device_ids: expected GPU numbers"},
        {"onnx:\n  cuda:\n    device_ids: []\n", "onnx.cuda.device_ids: lists no GPU"},
        {"onnx:\n  cuda:\n    device_ids: {a: 1}\n", "onnx.cuda.device_ids: expected a list"},
        {"onnx:\n  cuda:\n    cudnn_conv_algo_search: fast\n", "expected exhaustive|heuristic|default"},
        {"onnx:\n  cuda:\n    tf32: maybe\n", "onnx.cuda.tf32: expected true or false"},
        {"onnx:\n  cuda:\n    memory_limit_gb: -1\n", "onnx.cuda.memory_limit_gb: out of range"},
        {"onnx:\n  cuda:\n    graphs: true\n", "onnx.cuda.graphs: unknown key"},
        {"onnx:\n  cuda:\n    api: v2\n", "onnx.cuda.api: expected auto|ep_device|classic, got 'v2'"},
        {"models:\n  a:\n    model_path: a\n    background_dir: d\n    provider: x\n", "models.a.provider"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        srv_config c;
        ls_err e = {0};
        CHECK(parse(&c, cases[i].yaml, &e) != 0 && e.code == LS_EINVAL && strstr(e.msg, cases[i].want),
              "case %zu: got '%s', want '%s'", i, e.msg, cases[i].want);
        srv_config_free(&c);
    }
}

TEST(thread_affinity_is_none_auto_or_a_cpu_list) {
    srv_config c;
    ls_err e = {0};
    srv_config_defaults(&c);
    CHECK(c.thread_affinity == SRV_AFFINITY_NONE && c.n_affinity_cpus == 0, "default none");
    CHECK(parse(&c, "onnx:\n  thread_affinity: auto\n", &e) == 0, "%s", e.msg);
    CHECK(c.thread_affinity == SRV_AFFINITY_AUTO && c.n_affinity_cpus == 0, "auto: every allowed CPU");
    CHECK(parse(&c, "onnx:\n  thread_affinity: [4, 0, 2]\n", &e) == 0, "%s", e.msg);
    CHECK(c.thread_affinity == SRV_AFFINITY_AUTO && c.n_affinity_cpus == 3 && c.affinity_cpus[0] == 4 &&
              c.affinity_cpus[1] == 0 && c.affinity_cpus[2] == 2, "a list: auto over those CPUs, in order");
    CHECK(parse(&c, "onnx:\n  thread_affinity: [1]\n  intra_op_threads: 4\n", &e) == 0 && c.intra_op_threads == 4,
          "%s", e.msg);
    CHECK(parse(&c, "onnx:\n  thread_affinity: none\n", &e) == 0 && c.thread_affinity == SRV_AFFINITY_NONE, "none");
}

TEST(bad_thread_affinity_names_key_and_line) {
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"onnx:\n  thread_affinity: pinned\n", "t.yaml:2: onnx.thread_affinity: expected none, auto or a list"},
        {"onnx:\n  thread_affinity: [0, 0]\n", "t.yaml:2: onnx.thread_affinity: CPU listed twice"},
        {"onnx:\n  thread_affinity: [1024]\n", "onnx.thread_affinity: expected CPU numbers 0..1023"},
        {"onnx:\n  thread_affinity: [-1]\n", "onnx.thread_affinity: expected CPU numbers"},
        {"onnx:\n  thread_affinity: ['1']\n", "onnx.thread_affinity: expected CPU numbers"},
        {"onnx:\n  thread_affinity: [[1]]\n", "onnx.thread_affinity: expected CPU numbers"},
        {"onnx:\n  thread_affinity: []\n", "onnx.thread_affinity: lists no CPU"},
        {"onnx:\n  thread_affinity: {a: 1}\n", "onnx.thread_affinity: expected none, auto or a list"},
        {"onnx:\n  thread_affinity: auto\n  intra_op_threads: 0\n",
         "t.yaml: onnx.thread_affinity: needs onnx.intra_op_threads >= 1"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        srv_config c;
        ls_err e = {0};
        CHECK(parse(&c, cases[i].yaml, &e) != 0 && e.code == LS_EINVAL && strstr(e.msg, cases[i].want),
              "case %zu: got '%s', want '%s'", i, e.msg, cases[i].want);
        srv_config_free(&c);
    }
}

int main(void) {
    RUN(defaults_serve_localhost_50053);
    RUN(empty_file_keeps_defaults);
    RUN(go_server_keys_are_accepted);
    RUN(port_overrides_listen_in_any_order);
    RUN(unknown_key_reports_path_and_line);
    RUN(wrong_types_report_path_and_line);
    RUN(model_entries_are_validated);
    RUN(yaml_syntax_error_has_a_line);
    RUN(tls_needs_cert_and_key);
    RUN(listen_flag);
    RUN(missing_file_is_an_io_error);
    RUN(render_capacity_keys_and_build_defaults);
    RUN(execution_provider_defaults_to_cpu);
    RUN(stream_waits_and_stall_threshold_are_range_checked);
    RUN(pipeline_key_is_a_tribool);
    RUN(cuda_keys_are_parsed);
    RUN(bad_cuda_settings_name_key_and_line);
    RUN(thread_affinity_is_none_auto_or_a_cpu_list);
    RUN(bad_thread_affinity_names_key_and_line);
    return check_summary();
}
