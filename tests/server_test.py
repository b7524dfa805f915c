"""server_test.py - drives the real lipsyncd process with grpcio clients.

Usage: server_test.py LIPSYNCD PROTO_DIR. Stubs are generated at test time from the repo's .proto
files (grpc_tools.protoc) into a temp dir. Each test starts its own server on port 0 (the bound
port is read from the startup log line), and always kills it. The whole run is bounded by an
alarm. The test-only Sleep method (testing.enable_sleep_method) holds workers on demand.
"""
import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lipsyncd_harness as harness  # noqa: E402

LIPSYNCD, PROTO_DIR = sys.argv[1], sys.argv[2]
TMP = tempfile.mkdtemp(prefix="lipsyncd-test-")
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
SLEEP = "/lipsyncd.testing.Testing/Sleep"
NO_PROXY = [("grpc.enable_http_proxy", 0)]


harness.gen_stubs(PROTO_DIR, os.path.join(TMP, "stubs"), ["monolithic.proto", "lipsync/v1/lipsync.proto"])
# grpc/health/v1 would shadow the grpc package if put on sys.path: load the message module alone.
harness.gen_stubs(PROTO_DIR, os.path.join(TMP, "health"), ["grpc/health/v1/health.proto"], on_path=False)
import monolithic_pb2  # noqa: E402
import monolithic_pb2_grpc  # noqa: E402
from lipsync.v1 import lipsync_pb2, lipsync_pb2_grpc  # noqa: E402

health_pb2 = harness.load_module("health_pb2", os.path.join(TMP, "health", "grpc", "health", "v1", "health_pb2.py"))
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Server(harness.Lipsyncd):
    """A lipsyncd process with a temp config; a context manager that stops it with SIGTERM and
    checks it exited cleanly (killed instead when the test failed)."""

    def __init__(self, yaml_text, tls=False):
        super().__init__(LIPSYNCD, yaml_text, TMP)
        self.tls = tls

    def channel(self, root_cert=None):
        if root_cert:
            creds = grpc.ssl_channel_credentials(root_certificates=root_cert)
            return grpc.secure_channel("localhost:%d" % self.port, creds, options=NO_PROXY)
        return grpc.insecure_channel("127.0.0.1:%d" % self.port, options=NO_PROXY)

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout):
        return self.proc.wait(timeout=timeout)


def shutdown_seconds(log):
    """Seconds between "received SIGTERM" and "lipsyncd stopped" in lipsyncd's log."""
    def when(needle):
        m = re.search(r"^\d{4}-\d\d-\d\dT(\d\d):(\d\d):(\d\d\.\d+)Z \w+ +%s" % needle, log, re.M)
        assert m, "no '%s' line in the log:\n%s" % (needle, log)
        return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    return when("lipsyncd stopped") - when("received SIGTERM")


def health_check(ch, service="", **kw):
    fn = ch.unary_unary("/grpc.health.v1.Health/Check",
                        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                        response_deserializer=health_pb2.HealthCheckResponse.FromString)
    return fn(health_pb2.HealthCheckRequest(service=service), timeout=5, **kw)


def sleep_call(ch, ms, reply_bytes=None, timeout=10, payload=None, metadata=None):
    fn = ch.unary_unary(SLEEP)
    req = payload if payload is not None else (
        ("%d" % ms) if reply_bytes is None else ("%d %d" % (ms, reply_bytes))).encode()
    return fn(req, timeout=timeout, metadata=metadata)


def in_threads(n, fn):
    """Runs fn() n times concurrently; returns results or (code, details) of RpcErrors."""
    out = [None] * n

    def run(i):
        try:
            out[i] = fn()
        except grpc.RpcError as e:
            out[i] = (e.code(), e.details())

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    return ts, out


def join(ts):
    for t in ts:
        t.join(20)


BASE = "server:\n  listen: 127.0.0.1:0\n%s\ntesting:\n  enable_sleep_method: true\n"


class ServerTest(unittest.TestCase):
    def assertCode(self, code, fn, *args, **kw):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*args, **kw)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        return cm.exception.details()

    def test_health_check_serving_and_unknown_service(self):
        with Server(BASE % "" + "capacity:\n  max_models: 5\n") as s, s.channel() as ch:
            self.assertEqual(health_check(ch).status, SERVING)
            self.assertEqual(health_check(ch, "lipsync.v1.LipSync").status, SERVING)
            self.assertCode(grpc.StatusCode.NOT_FOUND, health_check, ch, "no.such.Service")
            h = monolithic_pb2_grpc.MonolithicServiceStub(ch).Health(monolithic_pb2.HealthRequest(), timeout=5)
            self.assertTrue(h.healthy)
            self.assertEqual(h.max_models, 5)  # from capacity.max_models
            self.assertEqual(h.loaded_models, 0)

    def test_unknown_methods_are_unimplemented(self):
        with Server(BASE % "") as s, s.channel() as ch:
            d = self.assertCode(grpc.StatusCode.UNIMPLEMENTED, ch.unary_unary("/no.Such/Method"), b"", timeout=5)
            self.assertIn("/no.Such/Method", d)
            # Streaming health Watch is not served either.
            self.assertCode(grpc.StatusCode.UNIMPLEMENTED, ch.unary_unary("/grpc.health.v1.Health/Watch"), b"", timeout=5)
            # The API methods are wired (server_render_test.py covers them): an empty Render is
            # refused by validation, not by the method table.
            stub = lipsync_pb2_grpc.LipSyncStub(ch)
            d = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, stub.Render, lipsync_pb2.RenderRequest(), timeout=5)
            self.assertIn("avatar id", d)

    def test_sleep_method_absent_without_test_hook(self):
        with Server("server:\n  listen: 127.0.0.1:0\n") as s, s.channel() as ch:
            self.assertCode(grpc.StatusCode.UNIMPLEMENTED, sleep_call, ch, 1)

    def test_get_stats_counts_requests(self):
        with Server(BASE % "  worker_count: 3\n  queue_depth: 4") as s, s.channel() as ch:
            for _ in range(3):
                sleep_call(ch, 1)
            st = lipsync_pb2_grpc.LipSyncStub(ch).GetStats(lipsync_pb2.GetStatsRequest(), timeout=5)
            self.assertEqual(st.requests_total, 3)  # the three Sleep calls; GetStats itself not yet
            self.assertEqual((st.workers, st.queue_depth), (3, 4))
            self.assertTrue(st.serving)

    def test_bearer_token_auth(self):
        with Server(BASE % "  auth:\n    token: s3cret") as s, s.channel() as ch:
            self.assertCode(grpc.StatusCode.UNAUTHENTICATED, sleep_call, ch, 1)
            self.assertCode(grpc.StatusCode.UNAUTHENTICATED, sleep_call, ch, 1,
                            metadata=[("authorization", "Bearer wrong")])
            self.assertCode(grpc.StatusCode.UNAUTHENTICATED, sleep_call, ch, 1,
                            metadata=[("authorization", "s3cret")])
            self.assertEqual(sleep_call(ch, 1, metadata=[("authorization", "Bearer s3cret")]), b"slept 1")
            # Unknown methods do not reveal themselves to unauthenticated callers.
            self.assertCode(grpc.StatusCode.UNAUTHENTICATED, ch.unary_unary("/no.Such/Method"), b"", timeout=5)
            # The standard health probe is exempt (server.auth.exempt_health, default true) ...
            self.assertEqual(health_check(ch).status, SERVING)
            # ... the Go API's Health is not.
            stub = monolithic_pb2_grpc.MonolithicServiceStub(ch)
            self.assertCode(grpc.StatusCode.UNAUTHENTICATED, stub.Health, monolithic_pb2.HealthRequest(), timeout=5)

    def test_health_needs_token_when_not_exempt(self):
        with Server(BASE % "  auth:\n    token: t\n    exempt_health: false") as s, s.channel() as ch:
            self.assertCode(grpc.StatusCode.UNAUTHENTICATED, health_check, ch)
            self.assertEqual(health_check(ch, metadata=[("authorization", "Bearer t")]).status, SERVING)

    def test_message_size_limits(self):
        with Server(BASE % "  max_message_size_mb: 1") as s, s.channel() as ch:
            # Request over 1 MiB: refused by gRPC before any handler runs.
            big = b"1 " + b" " * (2 << 20)
            self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, sleep_call, ch, 0, payload=big)
            # Reply over 1 MiB: refused by the server.
            self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, sleep_call, ch, 0, reply_bytes=(1 << 20) + 1)
            self.assertEqual(len(sleep_call(ch, 0, reply_bytes=900000)), 900000)  # under the limit

    def test_calls_on_one_connection_run_in_parallel_on_all_workers(self):
        with Server(BASE % "  worker_count: 4\n  queue_depth: 1") as s, s.channel() as ch:
            sleep_call(ch, 1)  # connect first
            t0 = time.time()
            ts, out = in_threads(4, lambda: sleep_call(ch, 500))
            join(ts)
            elapsed = time.time() - t0
            self.assertEqual(out, [b"slept 500"] * 4)
            # Serially this would take 2 s; in parallel ~0.5 s (allow scheduling slack: < 1.4 s).
            self.assertLess(elapsed, 1.4)

    def test_overload_answers_resource_exhausted_at_once(self):
        with Server(BASE % "  worker_count: 1\n  queue_depth: 1") as s, s.channel() as ch:
            sleep_call(ch, 1)
            t0 = time.time()
            ts, out = in_threads(4, lambda: sleep_call(ch, 1500))
            time.sleep(0.5)
            done_early = [o for o in out if o is not None]
            join(ts)
            ok = [o for o in out if o == b"slept 1500"]
            rejected = [o for o in out if isinstance(o, tuple) and o[0] == grpc.StatusCode.RESOURCE_EXHAUSTED]
            # 1 worker + 1 queued are admitted; the other two are refused immediately (< 0.5 s),
            # not after waiting for a worker.
            self.assertEqual((len(ok), len(rejected)), (2, 2), out)
            self.assertEqual(len(done_early), 2, out)
            self.assertIn("overloaded", rejected[0][1])
            self.assertGreater(time.time() - t0, 2.9)  # the queued one waited for the worker

    def test_deadline_stops_the_handler_early(self):
        with Server(BASE % "") as s, s.channel() as ch:
            self.assertCode(grpc.StatusCode.DEADLINE_EXCEEDED, sleep_call, ch, 5000, timeout=0.3)
            deadline = time.time() + 3
            while time.time() < deadline and "stopped after" not in s.read_log():
                time.sleep(0.05)
            m = re.search(r"error=stopped after (\d+) ms", s.read_log())
            self.assertIsNotNone(m, s.read_log())
            self.assertLess(int(m.group(1)), 1500)  # it did not sleep the full 5 s

    def test_client_cancel_is_seen_by_the_handler(self):
        with Server(BASE % "") as s, s.channel() as ch:
            fut = ch.unary_unary(SLEEP).future(b"5000", timeout=10)
            time.sleep(0.3)
            fut.cancel()
            deadline = time.time() + 3
            while time.time() < deadline and "stopped after" not in s.read_log():
                time.sleep(0.05)
            self.assertRegex(s.read_log(), r"status=CANCELLED .*stopped after")

    def test_sigterm_lets_in_flight_calls_finish_and_exits_0(self):
        with Server(BASE % "  worker_count: 2\n  shutdown_grace_s: 5") as s, s.channel() as ch:
            sleep_call(ch, 1)
            ts, out = in_threads(2, lambda: sleep_call(ch, 800))
            time.sleep(0.2)
            s.terminate()
            time.sleep(0.1)
            # While draining: health NOT_SERVING, new work UNAVAILABLE.
            self.assertEqual(health_check(ch).status, NOT_SERVING)
            self.assertCode(grpc.StatusCode.UNAVAILABLE, sleep_call, ch, 1)
            join(ts)
            self.assertEqual(out, [b"slept 800"] * 2)
            # The bound only catches a hang: an ASan build under load needs seconds for LeakSanitizer.
            self.assertEqual(s.wait(harness.STOP_TIMEOUT_S), 0, s.read_log())
            self.assertIn("lipsyncd stopped", s.read_log())

    def test_sigterm_cancels_calls_past_the_grace_period(self):
        with Server(BASE % "  shutdown_grace_s: 0.3") as s, s.channel() as ch:
            sleep_call(ch, 1)
            ts, out = in_threads(1, lambda: sleep_call(ch, 10000))
            time.sleep(0.2)
            t0 = time.time()
            s.terminate()
            # The bound only catches a hang: an ASan build under load needs seconds for LeakSanitizer.
            self.assertEqual(s.wait(harness.STOP_TIMEOUT_S), 0, s.read_log())
            # Grace 0.3 s, then cancelled: the shutdown (signal to "stopped", from the log's ms
            # timestamps) takes well under the 10 s the call would sleep. The process's own exit
            # comes after that (LeakSanitizer's scan alone takes a second or two under ASan).
            self.assertLess(shutdown_seconds(s.read_log()), 3.0)
            self.assertLess(time.time() - t0, 8.0)
            join(ts)
            self.assertIsInstance(out[0], tuple)
            self.assertIn(out[0][0], (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE), out)

    def test_tls(self):
        cert, key = os.path.join(TMP, "cert.pem"), os.path.join(TMP, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                        "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=30)
        cfg = BASE % ("  tls:\n    cert: %s\n    key: %s" % (cert, key))
        with Server(cfg) as s:
            with open(cert, "rb") as f, s.channel(root_cert=f.read()) as ch:
                self.assertEqual(health_check(ch).status, SERVING)
                self.assertEqual(sleep_call(ch, 1), b"slept 1")
            with s.channel() as plain:  # plaintext against a TLS port fails
                self.assertCode(grpc.StatusCode.UNAVAILABLE, health_check, plain)


class ConfigErrorTest(unittest.TestCase):
    def run_bad(self, text):
        fd, path = tempfile.mkstemp(suffix=".yaml", dir=TMP)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        p = subprocess.run([LIPSYNCD, "--config", path], capture_output=True, text=True, timeout=60)
        return p.returncode, p.stderr, os.path.basename(path)

    def test_unknown_key_names_path_and_line(self):
        rc, err, name = self.run_bad("server:\n  listen: 127.0.0.1:0\n  prot: 5\n")
        self.assertEqual(rc, 2)
        self.assertIn(name + ":3: server.prot: unknown key", err)

    def test_wrong_type_names_path_and_line(self):
        rc, err, name = self.run_bad("capacity:\n  max_models: 2\n\n  max_memory_gb: lots\n")
        self.assertEqual(rc, 2)
        self.assertIn(name + ":4: capacity.max_memory_gb: expected a number", err)

    def test_bad_model_entry(self):
        rc, err, name = self.run_bad("models:\n  alice:\n    model_path: m.onnx\n    preload_model: maybe\n")
        self.assertEqual(rc, 2)
        self.assertIn(name + ":4: models.alice.preload_model: expected true or false", err)

    def test_port_in_use_fails_to_start(self):
        with Server(BASE % "") as s:
            # The timeout only guards against a hang: an ASan build on a busy machine needs seconds
            # to start (ONNX Runtime is loaded) and to run LeakSanitizer at exit.
            p = subprocess.run([LIPSYNCD, "--listen", "127.0.0.1:%d" % s.port], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(p.returncode, 1)
            self.assertIn("cannot listen", p.stderr)


if __name__ == "__main__":
    signal.alarm(240)  # hard bound for the whole file; the default SIGALRM action kills us
    unittest.main(argv=[sys.argv[0], "-v"])
