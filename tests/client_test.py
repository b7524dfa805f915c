"""client_test.py - `lipsync client` against the real lipsyncd and against a scripted grpcio server.

Usage: client_test.py LIPSYNC LIPSYNCD PROTO_DIR.
- LipsyncdTest starts the real lipsyncd (temp config, port 0 read from its startup line, stopped
  with SIGTERM and checked for a clean exit) and checks health, auth, error reporting and the
  admin commands.
- FakeServerTest runs an in-process grpcio server that implements Render and InferBatchComposite
  as the API docs describe (frame count from the clip formula, frames JPEG-encoded in a colour
  that encodes their index) and records every request, to check what the client sends (audio
  bytes, chunk boundaries, frame indices, token) and that the MP4 it writes holds those frames in
  order with an audio track.
"""
import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent import futures

import cv2
import grpc
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lipsyncd_harness as harness  # noqa: E402

LIPSYNC, LIPSYNCD, PROTO_DIR = sys.argv[1], sys.argv[2], sys.argv[3]
TMP = tempfile.mkdtemp(prefix="lipsync-client-test-")
atexit.register(shutil.rmtree, TMP, ignore_errors=True)

harness.gen_stubs(PROTO_DIR, TMP, ["monolithic.proto", "lipsync/v1/lipsync.proto"], grpc_stubs=False)
import monolithic_pb2  # noqa: E402
from lipsync.v1 import lipsync_pb2  # noqa: E402

SPF = 640  # samples per video frame: 16000 Hz / 25 fps


def clip_frames(n_samples):
    """Frames of a clip, as the pipeline spec defines them (common.md, step 1)."""
    mel = 1 + n_samples // 200
    return 0 if mel < 16 else int((mel - 16) / 80.0 * 25) + 2


def frame_colour(i):
    """BGR colour of frame i in the fake server's replies (well apart for neighbouring i)."""
    return (int(40 + (37 * i) % 180), int(200 - (53 * i) % 160), 128)


def jpeg_of(i, w=64, h=48):
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = frame_colour(i)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return buf.tobytes()


def client_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("LIPSYNC_TOKEN", "LIPSYNC_SERVER")}
    env.update({"no_proxy": "*", "NO_PROXY": "*"}, **extra)
    return env


def run_client(*args, timeout=30, **env):
    return subprocess.run([LIPSYNC, "client"] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=client_env(**env))


def write_audio(seconds, seed=1):
    """Random speech-level float32 samples at 16 kHz as .npy (read exactly, no resampling)."""
    pcm = (np.random.default_rng(seed).uniform(-0.5, 0.5, int(16000 * seconds))).astype(np.float32)
    path = os.path.join(TMP, "audio_%g_%d.npy" % (seconds, seed))
    np.save(path, pcm)
    return path, pcm


def video_frames(path):
    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    return frames


def has_audio_stream(path):
    p = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a", "-show_entries",
                        "stream=codec_type", "-of", "csv=p=0", path], capture_output=True, text=True,
                       timeout=30)
    return p.stdout.strip() == "audio"


class Lipsyncd(harness.Lipsyncd):
    """The real server with a temp config; a context manager that stops it with SIGTERM and checks
    the exit was clean (killed instead when the test failed)."""

    def __init__(self, extra_yaml=""):
        super().__init__(LIPSYNCD, "server:\n  listen: 127.0.0.1:0\n" + extra_yaml, TMP)


class LipsyncdTest(unittest.TestCase):
    def test_health_serving_exits_0(self):
        with Lipsyncd() as s:
            p = run_client("health", "--server", s.addr)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("grpc.health.v1: SERVING", p.stdout)
        self.assertIn("monolithic: healthy=true", p.stdout)

    def test_server_from_environment(self):
        with Lipsyncd() as s:
            p = run_client("health", LIPSYNC_SERVER=s.addr)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_refused_connection_is_a_clean_error(self):
        with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        p = run_client("health", "--server", "127.0.0.1:%d" % port, "--timeout-ms", "2000")
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"^lipsync client: UNAVAILABLE: .+\n$")

    def test_silent_server_gives_deadline_exceeded_within_the_timeout(self):
        # Accepts TCP connections (kernel backlog) but never speaks HTTP/2.
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(8)
            t0 = time.time()
            p = run_client("health", "--server", "127.0.0.1:%d" % sock.getsockname()[1],
                           "--timeout-ms", "700")
            elapsed = time.time() - t0
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"^lipsync client: DEADLINE_EXCEEDED: .+\n$")
        self.assertLess(elapsed, 5.0)  # 0.7 s deadline + process start; generous for a loaded CI

    def test_token(self):
        with Lipsyncd("  auth:\n    token: s3cret\n") as s:
            bad = run_client("stats", "--server", s.addr, "--token", "wrong")
            missing = run_client("stats", "--server", s.addr)
            good = run_client("stats", "--server", s.addr, "--token", "s3cret")
            from_env = run_client("stats", "--server", s.addr, LIPSYNC_TOKEN="s3cret")
        for p in (bad, missing):
            self.assertEqual(p.returncode, 1)
            self.assertRegex(p.stderr, r"^lipsync client: UNAUTHENTICATED: .+\n$")
        for p in (good, from_env):
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertRegex(p.stdout, r"serving: +yes")

    def test_health_not_serving_with_a_wrong_token_exits_1(self):
        # Check is exempt from the token by default; the monolithic Health is not.
        with Lipsyncd("  auth:\n    token: s3cret\n") as s:
            p = run_client("health", "--server", s.addr, "--token", "wrong")
        self.assertEqual(p.returncode, 1)
        self.assertIn("grpc.health.v1: SERVING", p.stdout)
        self.assertRegex(p.stderr, r"lipsync client: UNAUTHENTICATED: ")

    def test_tls(self):
        cert, key = os.path.join(TMP, "cert.pem"), os.path.join(TMP, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                        "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=30)
        with Lipsyncd("  tls:\n    cert: %s\n    key: %s\n" % (cert, key)) as s:
            # The certificate names "localhost"; connect by IP (c-ares, which resolves names for
            # gRPC, leaks one string per "localhost" lookup under LeakSanitizer) and name it.
            named = run_client("health", "--server", s.addr, "--tls-ca", cert, "--tls-name", "localhost")
            wrong = run_client("health", "--server", s.addr, "--tls-ca", cert, "--tls-name", "example.org",
                               "--timeout-ms", "3000")
            plain = run_client("health", "--server", s.addr, "--timeout-ms", "3000")
        self.assertEqual(named.returncode, 0, named.stderr)
        self.assertIn("grpc.health.v1: SERVING", named.stdout)
        self.assertEqual(wrong.returncode, 1)
        self.assertRegex(wrong.stderr, r"^lipsync client: UNAVAILABLE: ")
        self.assertEqual(plain.returncode, 1)
        self.assertRegex(plain.stderr, r"^lipsync client: UNAVAILABLE: ")

    def test_missing_ca_file(self):
        p = run_client("health", "--tls-ca", os.path.join(TMP, "nope.pem"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("nope.pem", p.stderr)

    def test_avatars(self):
        with Lipsyncd() as s:  # no avatars_root in the config: the build's demo avatar
            p = run_client("avatars", "--server", s.addr)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertRegex(lines[0], r"^AVATAR +LOADED +FRAMES")
        self.assertTrue(any(line.split()[0] == "demo" for line in lines[1:]), p.stdout)

    def test_render_against_the_real_server_with_both_apis(self):
        # 1.2 s of a 200 Hz tone: 97 mel rows, int((97 - 16) / 80 * 25) + 2 = 27 frames.
        wav = os.path.join(TMP, "tone.npy")
        np.save(wav, (0.4 * np.sin(2 * np.pi * 200 * np.arange(19200) / 16000)).astype(np.float32))
        with Lipsyncd() as s:
            for api in ("v1", "compat"):
                out = os.path.join(TMP, "real-%s.mp4" % api)
                p = run_client("render", "--server", s.addr, "--avatar", "demo", "--audio", wav,
                               "--out", out, "--api", api, "--timeout-ms", "170000", timeout=180)
                self.assertEqual(p.returncode, 0, p.stderr)
                probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                                        "-show_entries", "stream=nb_read_frames,width,height", "-of", "csv=p=0",
                                        out], capture_output=True, text=True, check=True).stdout.strip()
                self.assertEqual(probe, "1280,720,27", api)

    def test_usage_errors_exit_2(self):
        for args in (["bogus"], ["load"], ["render", "--avatar", "a"], ["health", "--api", "v3"],
                     ["bench", "--batch", "33"], ["health", "extra"]):
            p = run_client(*args)
            self.assertEqual(p.returncode, 2, args)
            self.assertTrue(p.stderr.startswith("lipsync client"), (args, p.stderr))


class FakeServer:
    """A grpcio server scripted per test: records requests, answers like lipsyncd's API docs."""

    def __init__(self, compat_error=None, v1_abort=None):
        self.requests, self.metadata = [], []
        self.lock = threading.Lock()
        self.compat_error, self.v1_abort = compat_error, v1_abort

    def _record(self, req, ctx):
        with self.lock:
            self.requests.append(req)
            self.metadata.append(dict(ctx.invocation_metadata()))

    def render(self, req, ctx):
        self._record(req, ctx)
        if self.v1_abort:
            ctx.abort(*self.v1_abort)
        n = clip_frames(len(req.audio.data) // 4)
        if req.max_frames:
            n = min(n, req.max_frames)
        first = req.first_frame_index
        return lipsync_pb2.RenderResponse(
            frames=[lipsync_pb2.Frame(index=first + i, avatar_frame=first + i, data=jpeg_of(first + i),
                                      width=64, height=48) for i in range(n)],
            timings=lipsync_pb2.Timings(total_ms=1.5), frame_width=64, frame_height=48)

    def infer(self, req, ctx):
        self._record(req, ctx)
        if self.compat_error:
            return monolithic_pb2.CompositeBatchResponse(success=False, error=self.compat_error)
        return monolithic_pb2.CompositeBatchResponse(
            success=True, total_time_ms=2.0,
            composited_frames=[jpeg_of(req.start_frame_idx + i) for i in range(req.batch_size)])

    def __enter__(self):
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers([
            grpc.method_handlers_generic_handler("lipsync.v1.LipSync", {
                "Render": grpc.unary_unary_rpc_method_handler(
                    self.render, lipsync_pb2.RenderRequest.FromString,
                    lipsync_pb2.RenderResponse.SerializeToString)}),
            grpc.method_handlers_generic_handler("monolithic.MonolithicService", {
                "InferBatchComposite": grpc.unary_unary_rpc_method_handler(
                    self.infer, monolithic_pb2.CompositeBatchRequest.FromString,
                    monolithic_pb2.CompositeBatchResponse.SerializeToString)})])
        self.addr = "127.0.0.1:%d" % self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop(None)


class FakeServerTest(unittest.TestCase):
    def assertVideo(self, path, first, count):
        """MP4 at path holds `count` frames showing indices first.. in order, and an audio track."""
        frames = video_frames(path)
        self.assertEqual(len(frames), count)
        for i, img in enumerate(frames):
            self.assertEqual(img.shape, (48, 64, 3))
            mean = img.reshape(-1, 3).mean(axis=0)
            # Flat colours through JPEG q95, yuv420 and H.264/MJPEG: within 8 levels per channel;
            # neighbouring frames' colours differ by >= 37 in some channel.
            np.testing.assert_allclose(mean, frame_colour(first + i), atol=8, err_msg="frame %d" % i)
        self.assertTrue(has_audio_stream(path))

    def test_v1_one_request_sends_the_whole_clip(self):
        audio, pcm = write_audio(1.0)
        out = os.path.join(TMP, "v1.mp4")
        with FakeServer() as fs:
            p = run_client("render", "--server", fs.addr, "--avatar", "alice", "--audio", audio,
                           "--out", out, "--start-frame", "3", "--token", "tok")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(fs.requests), 1)
        req = fs.requests[0]
        self.assertEqual(req.avatar_id, "alice")
        self.assertEqual(req.audio.encoding, lipsync_pb2.AUDIO_ENCODING_F32LE)
        self.assertEqual(req.audio.sample_rate, 16000)
        self.assertEqual(req.audio.data, pcm.astype("<f4").tobytes())
        self.assertEqual((req.first_frame_index, req.max_frames, req.output), (3, 0, lipsync_pb2.OUTPUT_KIND_JPEG))
        self.assertEqual(fs.metadata[0].get("authorization"), "Bearer tok")
        self.assertVideo(out, 3, clip_frames(len(pcm)))
        self.assertRegex(p.stderr, r"frames/s.*p50 [0-9.]+ ms, p99 [0-9.]+ ms")

    def test_v1_chunks(self):
        audio, pcm = write_audio(1.0)
        out = os.path.join(TMP, "v1_chunks.mp4")
        with FakeServer() as fs:
            p = run_client("render", "--server", fs.addr, "--avatar", "alice", "--audio", audio,
                           "--out", out, "--batch", "8", "--start-frame", "5")
        self.assertEqual(p.returncode, 0, p.stderr)
        total = clip_frames(len(pcm))
        ks = list(range(0, total, 8))
        self.assertEqual(len(fs.requests), len(ks))
        self.assertNotIn("authorization", fs.metadata[0])
        for k, req in zip(ks, fs.requests):
            count = min(8, total - k)
            # Chunk k sends its frames' samples plus 4 frames of tail so the chunk covers them.
            begin, end = SPF * k, min(len(pcm), SPF * (k + count) + 4 * SPF)
            self.assertEqual(req.audio.data, pcm[begin:end].astype("<f4").tobytes(), "chunk %d" % k)
            self.assertEqual((req.first_frame_index, req.max_frames), (5 + k, count))
        self.assertVideo(out, 5, total)

    def test_compat_batches(self):
        audio, pcm = write_audio(1.0)
        out = os.path.join(TMP, "compat.mp4")
        with FakeServer() as fs:
            p = run_client("render", "--server", fs.addr, "--avatar", "bob", "--audio", audio,
                           "--out", out, "--api", "compat", "--batch", "4", "--start-frame", "2")
        self.assertEqual(p.returncode, 0, p.stderr)
        total = clip_frames(len(pcm))  # 22 for 1 s
        ks = list(range(0, total, 4))
        self.assertEqual(len(fs.requests), len(ks))
        for k, req in zip(ks, fs.requests):
            b = min(4, total - k)
            self.assertEqual(req.model_id, "bob")
            self.assertEqual((req.batch_size, req.start_frame_idx, req.sample_rate), (b, 2 + k, 16000))
            self.assertEqual(req.visual_frames, b"")
            self.assertEqual(req.audio_features, b"")
            self.assertEqual(req.raw_audio, pcm[SPF * k:SPF * (k + b)].astype("<f4").tobytes())
        self.assertVideo(out, 2, total)
        self.assertEqual(len(re.findall(r"^request \d+: frames", p.stderr, re.M)), len(ks))

    def test_compat_default_batch_is_8(self):
        audio, pcm = write_audio(1.0)
        with FakeServer() as fs:
            p = run_client("render", "--server", fs.addr, "--avatar", "bob", "--audio", audio,
                           "--out", os.path.join(TMP, "compat8.mp4"), "--api", "compat", "--quiet")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual([r.batch_size for r in fs.requests], [8, 8, 6])

    def test_compat_in_band_error(self):
        audio, _ = write_audio(1.0)
        out = os.path.join(TMP, "compat_err.mp4")
        with FakeServer(compat_error="model bob not found") as fs:
            p = run_client("render", "--server", fs.addr, "--avatar", "bob", "--audio", audio,
                           "--out", out, "--api", "compat")
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr, "lipsync client: server error: model bob not found "
                                   "(request 0, frames 0..7)\n")
        self.assertFalse(os.path.exists(out))

    def test_v1_status_error(self):
        audio, _ = write_audio(1.0)
        out = os.path.join(TMP, "v1_err.mp4")
        with FakeServer(v1_abort=(grpc.StatusCode.RESOURCE_EXHAUSTED, "server overloaded")) as fs:
            p = run_client("render", "--server", fs.addr, "--avatar", "a", "--audio", audio,
                           "--out", out)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(p.stderr, "lipsync client: RESOURCE_EXHAUSTED: server overloaded "
                                   "(request 0, frames 0..21)\n")
        self.assertFalse(os.path.exists(out))

    def test_too_short_audio(self):
        audio, _ = write_audio(0.05)
        p = run_client("render", "--avatar", "a", "--audio", audio, "--out", os.path.join(TMP, "x.mp4"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("audio too short", p.stderr)

    def test_bench(self):
        audio, pcm = write_audio(2.0)
        for api in ("v1", "compat"):
            with FakeServer() as fs:
                p = run_client("bench", "--server", fs.addr, "--avatar", "a", "--audio", audio,
                               "--api", api, "--threads", "3", "--requests", "4", "--batch", "2")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(len(fs.requests), 12)
            self.assertIn("12 ok, 0 failed", p.stdout)
            self.assertRegex(p.stdout, r"throughput: [0-9.]+ frames/s")
            self.assertRegex(p.stdout, r"p50 [0-9.]+ ms, p99 [0-9.]+ ms")
            for req in fs.requests:
                if api == "compat":
                    self.assertEqual((req.batch_size, len(req.raw_audio)), (2, 2 * SPF * 4))
                else:
                    self.assertEqual(req.max_frames, 2)


if __name__ == "__main__":
    signal.alarm(240)  # hard bound for the whole file; the default SIGALRM action kills us
    unittest.main(argv=[sys.argv[0], "-v"])
