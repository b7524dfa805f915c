"""server_alloc_test.py - steady-state request handling allocates nothing in lipsyncd's own code.

Usage: server_alloc_test.py LIPSYNCD_ALLOCCOUNT PROTO_DIR BUILD_DIR. lipsyncd_alloccount counts
every allocating call made by the code statically linked into it (ours; see
src/server/testing/alloc_count.c for exactly what is counted) and reports the count through
/lipsyncd.testing.Testing/AllocCount. After a warm-up (each request kind on both workers), 100
Render (JPEG, 16 kHz F32LE) and 100 InferBatchComposite (16 kHz raw audio) from 2 concurrent
clients must leave the count unchanged. Excluded from the claim, by design: ListAvatars (it reads
the avatars folder: opendir), requests at other sample rates (the resampler cache may create a
context for a new rate), and loads/evictions (they allocate the avatar).
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import unittest

import grpc
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lipsyncd_harness as harness  # noqa: E402

LIPSYNCD, PROTO_DIR, BUILD = sys.argv[1:4]
del sys.argv[1:4]
TMP = tempfile.mkdtemp(prefix="lipsyncd-alloc-")
MODELS = os.path.join(BUILD, "models")
ROOT = os.path.join(TMP, "avatars")
NO_PROXY = [("grpc.enable_http_proxy", 0)]
signal.alarm(220)  # the whole file; ctest's TIMEOUT is 240

harness.gen_stubs(PROTO_DIR, TMP, ["monolithic.proto", "lipsync/v1/lipsync.proto"])
import monolithic_pb2 as mpb  # noqa: E402
import monolithic_pb2_grpc as mpbg  # noqa: E402
from lipsync.v1 import lipsync_pb2 as pb, lipsync_pb2_grpc as pbg  # noqa: E402

W, H, N = harness.SMALL_W, harness.SMALL_H, harness.SMALL_N


def small_avatar(name):
    return harness.small_avatar(ROOT, MODELS, name, 1)


small_avatar("small")


def speech(seconds, seed):
    n = int(round(seconds * 16000))
    t = np.arange(n) / 16000
    rng = np.random.default_rng(seed)
    return (0.3 * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) * rng.standard_normal(n)).astype("<f4")


class AllocTest(unittest.TestCase):
    def setUp(self):
        self.srv = harness.Lipsyncd(LIPSYNCD, "server:\n  listen: 127.0.0.1:0\n  worker_count: 2\n  queue_depth: 8\n"
                                    "avatars_root: %s\n" % ROOT, TMP).start()
        self.ch = grpc.insecure_channel(self.srv.addr, options=NO_PROXY)
        self.v1 = pbg.LipSyncStub(self.ch)
        self.mono = mpbg.MonolithicServiceStub(self.ch)
        self.count_rpc = self.ch.unary_unary("/lipsyncd.testing.Testing/AllocCount")

    def tearDown(self):
        self.ch.close()
        # A clean exit: SIGTERM, exit 0 (under the sanitizers also: no leak at exit).
        self.srv.proc.send_signal(signal.SIGTERM)
        rc = self.srv.proc.wait(timeout=30)
        self.srv.log.close()
        self.assertEqual(rc, 0, self.srv.read_log())

    def allocations(self, since=0):
        text = self.count_rpc(str(since).encode(), timeout=10).decode()
        return int(re.match(r"allocations=(\d+)", text).group(1)), text

    def sites(self, text):
        """The report's call sites, with file:line from addr2line where it can tell."""
        out = []
        for line in text.splitlines()[1:]:
            parts = line.split()
            where = ""
            m = re.match(r"(.*)\+(0x[0-9a-f]+)$", parts[2])
            if m and shutil.which("addr2line") and os.path.exists(m.group(1)):
                r = subprocess.run(["addr2line", "-f", "-i", "-e", m.group(1), hex(int(m.group(2), 16) - 1)],
                                   capture_output=True, text=True)
                where = " ".join(r.stdout.split())
            out.append("%s %s" % (line, where))
        return "\n".join(out)

    def in_two_threads(self, fn, per_thread):
        errors = []

        def run(t):
            try:
                for i in range(per_thread):
                    fn(t, i)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        ts = [threading.Thread(target=run, args=(t,)) for t in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        self.assertEqual(errors, [])

    def test_warm_render_and_composite_allocate_nothing(self):
        audio = [speech(0.5, seed=s) for s in range(4)]

        def render(t, i):
            r = self.v1.Render(pb.RenderRequest(
                avatar_id="small", first_frame_index=(7 * i + t) % 50, max_frames=4,
                audio=pb.Audio(data=audio[(i + t) % 4].tobytes(), encoding=pb.AUDIO_ENCODING_F32LE,
                               sample_rate=16000)), timeout=60)
            self.assertEqual(len(r.frames), 4)

        def composite(t, i):
            r = self.mono.InferBatchComposite(mpb.CompositeBatchRequest(
                model_id="small", raw_audio=audio[(i + t) % 4].tobytes(), batch_size=4,
                start_frame_idx=(5 * i + t) % 50, sample_rate=16000), timeout=60)
            self.assertTrue(r.success, r.error)
            self.assertEqual(len(r.composited_frames), 4)

        # Warm-up: the avatar loads, every worker binds its models and runs each kind of request.
        for _ in range(3):
            self.in_two_threads(render, 2)
            self.in_two_threads(composite, 2)
        before, _ = self.allocations()
        self.in_two_threads(render, 50)      # 100 Render
        self.in_two_threads(composite, 50)   # 100 InferBatchComposite
        after, report = self.allocations(before)
        self.assertEqual(after, before, "warm requests allocated in our code:\n" + self.sites(report))

    def test_the_counter_counts(self):
        """The test above cannot pass by a counter that never moves: loading an avatar allocates."""
        before, _ = self.allocations()
        r = self.v1.LoadAvatar(pb.LoadAvatarRequest(avatar_id="small"), timeout=30)
        self.assertFalse(r.already_loaded)
        after, report = self.allocations(before)
        self.assertGreater(after, before)
        self.assertIn("site ", report)


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
