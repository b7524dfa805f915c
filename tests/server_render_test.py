"""server_render_test.py - lipsyncd rendering for real, driven by grpcio clients.

Usage: server_render_test.py LIPSYNCD LIPSYNC PROTO_DIR BUILD_DIR. Stubs are generated at test
time. A temp avatars_root holds small generated avatars (10 PNG frames of 320x240, the build's
demo models) and a package whose frames are the demo avatar's; a `models:` entry (Go layout)
reuses a small avatar's files. Each server is started on port 0 and always killed; the whole run
is bounded by an alarm, every call by a timeout.
"""
import json
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

import cv2
import grpc
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lipsyncd_harness as harness  # noqa: E402

LIPSYNCD, LIPSYNC, PROTO_DIR, BUILD = sys.argv[1:5]
del sys.argv[1:5]
TMP = tempfile.mkdtemp(prefix="lipsyncd-render-")
MODELS = os.path.join(BUILD, "models")
DEMO = os.path.join(BUILD, "avatars", "demo")
ROOT = os.path.join(TMP, "avatars")
NO_PROXY = [("grpc.enable_http_proxy", 0), ("grpc.max_receive_message_length", 100 << 20)]
signal.alarm(280)  # the whole file; ctest's TIMEOUT is 300

harness.gen_stubs(PROTO_DIR, TMP, ["monolithic.proto", "lipsync/v1/lipsync.proto"])
import monolithic_pb2 as mpb  # noqa: E402
import monolithic_pb2_grpc as mpbg  # noqa: E402
from lipsync.v1 import lipsync_pb2 as pb, lipsync_pb2_grpc as pbg  # noqa: E402

S16, F32 = pb.AUDIO_ENCODING_S16LE, pb.AUDIO_ENCODING_F32LE
C = grpc.StatusCode
W, H, N = harness.SMALL_W, harness.SMALL_H, harness.SMALL_N


def small_avatar(name, seed, box_shift=0):
    return harness.small_avatar(ROOT, MODELS, name, seed, box_shift)


SMALL, SMALL_BOXES = small_avatar("small", 1)
small_avatar("small2", 2, box_shift=20)
small_avatar("small3", 3, box_shift=40)
# A real folder whose data are the demo avatar's (symlinks inside a package are followed).
os.makedirs(os.path.join(ROOT, "demo"))
os.symlink(os.path.join(DEMO, "frames"), os.path.join(ROOT, "demo", "frames"))
os.symlink(os.path.join(DEMO, "crop_rects.json"), os.path.join(ROOT, "demo", "crop_rects.json"))
with open(os.path.join(DEMO, "manifest.json")) as f:
    m = json.load(f)
m["unet"], m["encoder"] = os.path.join(MODELS, "demo_unet.onnx"), os.path.join(MODELS, "demo_encoder.onnx")
with open(os.path.join(ROOT, "demo", "manifest.json"), "w") as f:
    json.dump(m, f)
# A package whose UNet file is missing: a broken package, not an unknown avatar.
small_avatar("nounet", 4)
with open(os.path.join(ROOT, "nounet", "manifest.json")) as f:
    m = json.load(f)
m["unet"] = os.path.join(TMP, "missing_unet.onnx")
with open(os.path.join(ROOT, "nounet", "manifest.json"), "w") as f:
    json.dump(m, f)
# A package outside the root, reachable through a symlink in it: must be refused.
shutil.copytree(SMALL, os.path.join(TMP, "elsewhere"))
os.symlink(os.path.join(TMP, "elsewhere"), os.path.join(ROOT, "escape"))

GO_MODELS = """models:
  goavatar:
    model_path: {m}/demo_unet.onnx
    background_dir: {s}/frames
    crop_rects_path: {s}/crop_rects.json
    num_frames: 5
audio_encoder: {m}/demo_encoder.onnx
""".format(m=MODELS, s=SMALL)


def config(extra=""):
    """8 concurrent clients fit the queue (2 workers + 16 waiting)."""
    return "server:\n  listen: 127.0.0.1:0\n  queue_depth: 16\navatars_root: %s\n%s%s" % (ROOT, GO_MODELS, extra)


def speech(seconds, seed=0, rate=16000):
    """Deterministic speech-like float audio: noise shaped by a syllable-rate envelope."""
    n = int(round(seconds * rate))
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return (0.3 * env * rng.standard_normal(n)).astype("<f4")


def ref_frames(n16):
    rows = 1 + n16 // 200
    return int((rows - 16) / 80.0 * 25) + 2


def pingpong(k, start, n):
    p = 2 * (n - 1)
    t = (start + k) % p
    return t if t < n else p - t


def audio_msg(samples, enc=F32, rate=16000):
    data = samples.tobytes() if enc == F32 else np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2").tobytes()
    return pb.Audio(data=data, encoding=enc, sample_rate=rate)


class Server(harness.Lipsyncd):
    """A lipsyncd process (context manager): stopped with SIGTERM and checked for a clean exit
    when the test passed, killed when it failed."""

    def __init__(self, yaml_text):
        super().__init__(LIPSYNCD, yaml_text, TMP)

    def __enter__(self):
        self.start()
        self.ch = grpc.insecure_channel("127.0.0.1:%d" % self.port, options=NO_PROXY)
        self.v1 = pbg.LipSyncStub(self.ch)
        self.mono = mpbg.MonolithicServiceStub(self.ch)
        return self

    def __exit__(self, exc_type, *exc):
        if hasattr(self, "ch"):
            self.ch.close()
        self.stop(exc_type is None)

    def render(self, avatar="small", samples=None, timeout=60, **kw):
        samples = speech(1.0) if samples is None else samples
        return self.v1.Render(pb.RenderRequest(avatar_id=avatar, audio=audio_msg(samples), **kw), timeout=timeout)

    def composite(self, timeout=60, **kw):
        kw.setdefault("model_id", "small")
        if "raw_audio" not in kw and "audio_features" not in kw:
            kw["raw_audio"] = speech(1.0).tobytes()
        kw.setdefault("batch_size", 8)
        return self.mono.InferBatchComposite(mpb.CompositeBatchRequest(**kw), timeout=timeout)

    def info(self, avatar):
        for a in self.v1.ListAvatars(pb.ListAvatarsRequest(), timeout=10).avatars:
            if a.avatar_id == avatar:
                return a
        return None


def cli_frames(avatar_dir, samples, quality):
    """`lipsync render --frames` for the same audio: the JPEG bytes of each frame."""
    d = tempfile.mkdtemp(dir=TMP)
    npy = os.path.join(d, "a.npy")
    np.save(npy, samples.astype(np.float32))
    out = os.path.join(d, "frames")
    r = subprocess.run([LIPSYNC, "render", "--avatar", avatar_dir, "--audio", npy, "--frames", out,
                        "--batch", "32", "--threads", "1", "--quality", str(quality)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    names = sorted(os.listdir(out))
    frames = []
    for n in names:
        with open(os.path.join(out, n), "rb") as f:
            frames.append(f.read())
    return frames


def decode(jpg):
    return cv2.imdecode(np.frombuffer(jpg, np.uint8), cv2.IMREAD_COLOR)


def prep_visual(avatar_dir, boxes, idx):
    """The reference visual input of avatar frame idx: 6x320x320 float32 (real, masked) / 255."""
    img = cv2.imread(os.path.join(avatar_dir, "frames", "%04d.png" % idx))
    x1, y1, x2, y2 = boxes[idx]
    crop = cv2.resize(img[y1:y2, x1:x2], (328, 328), interpolation=cv2.INTER_CUBIC)
    real = crop[4:324, 4:324].copy()
    masked = real.copy()
    masked[5:310, 5:315] = 0
    return np.concatenate([real.transpose(2, 0, 1), masked.transpose(2, 0, 1)]).astype(np.float32) / 255.0


def in_threads(n, fn):
    out = [None] * n

    def run(i):
        try:
            out[i] = fn(i)
        except grpc.RpcError as e:
            out[i] = (e.code(), e.details())

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    return ts, out


def join(ts, timeout=60):
    for t in ts:
        t.join(timeout)


class RenderTest(unittest.TestCase):
    """One server for the read-mostly tests (max_audio_seconds 20 to test the limit)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(config("capacity:\n  max_audio_seconds: 20\n")).__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def code(self, code, fn, *a, **kw):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*a, **kw)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        return cm.exception.details()

    def test_render_jpeg_is_identical_to_lipsync_render(self):
        # Both sides encode through pipe_jpeg_encode. At q90 the server's backgrounds (built at the
        # default q75) do not apply, so it full-encodes, while lipsync render splices into its own
        # q90 backgrounds: equal bytes also show splicing equals a full encode of the whole frame.
        a = speech(1.0, seed=3)
        r = self.srv.render(samples=a, jpeg_quality=90)
        self.assertEqual(len(r.frames), ref_frames(16000))  # 22 frames for 1 s
        self.assertEqual((r.frame_width, r.frame_height), (W, H))
        cli = cli_frames(SMALL, a, 90)
        self.assertEqual(len(cli), len(r.frames))
        for i, f in enumerate(r.frames):
            self.assertEqual(f.index, i)
            self.assertEqual(f.avatar_frame, pingpong(i, 0, N))
            self.assertEqual(f.data, cli[i], "frame %d differs from lipsync render's" % i)
            self.assertEqual(decode(f.data).shape, (H, W, 3))
        t = r.timings
        # At the default quality both splice; still the same bytes.
        d = self.srv.render(samples=a, max_frames=6)
        self.assertEqual([f.data for f in d.frames], cli_frames(SMALL, a, 75)[:6])
        for name in ("audio_ms", "prepare_ms", "inference_ms", "composite_ms", "encode_ms", "total_ms"):
            self.assertGreater(getattr(t, name), 0.0, name)
        self.assertGreaterEqual(t.total_ms, t.prepare_ms + t.inference_ms + t.composite_ms)

    def test_s16le_and_resampled_audio_give_the_reference_frame_count(self):
        for rate, secs in ((8000, 0.8), (44100, 1.3), (48000, 0.5)):
            a = speech(secs, rate=rate)
            r = self.srv.v1.Render(pb.RenderRequest(avatar_id="small", audio=audio_msg(a, S16, rate)), timeout=60)
            n16 = -(-len(a) * 16000 // rate)  # ceil: the 16 kHz instants inside the input
            self.assertEqual(len(r.frames), ref_frames(n16), "rate %d" % rate)

    def test_raw_rgb24_and_face_patch(self):
        a = speech(0.5)
        jpg = self.srv.render(samples=a, max_frames=4)
        raw = self.srv.render(samples=a, max_frames=4, output=pb.OUTPUT_KIND_RAW_RGB24)
        patch = self.srv.render(samples=a, max_frames=4, output=pb.OUTPUT_KIND_FACE_PATCH)
        self.assertEqual(len(raw.frames), 4)
        for j, r, p in zip(jpg.frames, raw.frames, patch.frames):
            self.assertEqual((r.width, r.height, len(r.data)), (W, H, W * H * 3))
            rgb = np.frombuffer(r.data, np.uint8).reshape(H, W, 3)
            bgr = rgb[:, :, ::-1]
            x1, y1, x2, y2 = SMALL_BOXES[r.avatar_frame]
            orig = cv2.imread(os.path.join(SMALL, "frames", "%04d.png" % r.avatar_frame))
            outside = np.ones((H, W), bool)
            outside[y1:y2, x1:x2] = False
            self.assertTrue(np.array_equal(bgr[outside], orig[outside]), "pixels outside the box are the avatar's")
            self.assertFalse(np.array_equal(bgr[y1:y2, x1:x2], orig[y1:y2, x1:x2]), "the face was redrawn")
            self.assertEqual((p.box.x1, p.box.y1, p.box.x2, p.box.y2), (x1, y1, x2, y2))
            self.assertEqual((p.width, p.height, len(p.data)), (x2 - x1, y2 - y1, (x2 - x1) * (y2 - y1) * 3))
            self.assertEqual(np.frombuffer(p.data, np.uint8).reshape(y2 - y1, x2 - x1, 3).tobytes(),
                             rgb[y1:y2, x1:x2].tobytes(), "the patch is the frame's box region")
            # JPEG q75 of the same frame: within JPEG error of the raw pixels (mean abs < 4 levels).
            self.assertLess(np.abs(decode(j.data).astype(int) - bgr.astype(int)).mean(), 4.0)

    def test_first_frame_index_walks_ping_pong_and_max_frames_limits(self):
        r = self.srv.render(first_frame_index=12, max_frames=7)
        self.assertEqual([f.index for f in r.frames], list(range(12, 19)))
        self.assertEqual([f.avatar_frame for f in r.frames], [pingpong(k, 12, N) for k in range(7)])

    def test_go_layout_model_entry_renders_its_num_frames(self):
        r = self.srv.render(avatar="goavatar")
        self.assertEqual(len(r.frames), 22)
        self.assertEqual({f.avatar_frame for f in r.frames}, set(range(5)))  # num_frames: 5
        same = self.srv.render(avatar="small", max_frames=4)  # same files, same models
        self.assertEqual([f.data for f in r.frames[:4]], [f.data for f in same.frames])

    def test_render_errors(self):
        v1, ok = self.srv.v1, speech(1.0)
        bad = lambda **kw: v1.Render(pb.RenderRequest(**kw), timeout=20)  # noqa: E731
        for avatar in ("../x", "a/b", "", "x" * 65, ".", "..", "a b", "small\n"):
            d = self.code(C.INVALID_ARGUMENT, bad, avatar_id=avatar, audio=audio_msg(ok))
            self.assertIn("avatar id", d)
        self.assertIn("outside avatars_root", self.code(C.INVALID_ARGUMENT, bad, avatar_id="escape", audio=audio_msg(ok)))
        self.assertIn("nobody", self.code(C.NOT_FOUND, bad, avatar_id="nobody", audio=audio_msg(ok)))
        self.assertIn("missing_unet.onnx", self.code(C.FAILED_PRECONDITION, bad, avatar_id="nounet", audio=audio_msg(ok)))
        self.assertIn("encoding", self.code(C.INVALID_ARGUMENT, bad, avatar_id="small",
                                            audio=pb.Audio(data=ok.tobytes(), sample_rate=16000)))
        for rate in (7999, 48001, 0):
            self.assertIn("sample rate", self.code(C.INVALID_ARGUMENT, bad, avatar_id="small",
                                                   audio=audio_msg(ok, F32, rate)))
        self.assertIn("multiple", self.code(C.INVALID_ARGUMENT, bad, avatar_id="small", audio=pb.Audio(
            data=b"\0" * 16001, encoding=S16, sample_rate=16000)))
        self.assertIn("multiple", self.code(C.INVALID_ARGUMENT, bad, avatar_id="small", audio=pb.Audio(
            data=b"\0" * 16002, encoding=F32, sample_rate=16000)))
        for v in (np.nan, np.inf):
            a = ok.copy()
            a[100] = v
            self.assertIn("not finite", self.code(C.INVALID_ARGUMENT, bad, avatar_id="small", audio=audio_msg(a)))
        d = self.code(C.INVALID_ARGUMENT, bad, avatar_id="small", audio=audio_msg(speech(20.5)))
        self.assertIn("max_audio_seconds", d)
        self.assertIn("20", d)
        self.assertIn("too short", self.code(C.INVALID_ARGUMENT, bad, avatar_id="small", audio=audio_msg(speech(0.1))))
        self.assertIn("empty", self.code(C.INVALID_ARGUMENT, bad, avatar_id="small",
                                         audio=pb.Audio(encoding=F32, sample_rate=16000)))
        self.assertIn("missing", self.code(C.INVALID_ARGUMENT, bad, avatar_id="small"))
        self.assertIn("first_frame_index", self.code(C.INVALID_ARGUMENT, bad, avatar_id="small",
                                                     audio=audio_msg(ok), first_frame_index=-1))
        for q in (-1, 101):
            self.assertIn("jpeg_quality", self.code(C.INVALID_ARGUMENT, bad, avatar_id="small",
                                                    audio=audio_msg(ok), jpeg_quality=q))
        self.assertIn("max_frames", self.code(C.INVALID_ARGUMENT, bad, avatar_id="small",
                                              audio=audio_msg(ok), max_frames=-1))
        self.assertIn("output", self.code(C.INVALID_ARGUMENT, bad, avatar_id="small", audio=audio_msg(ok), output=7))
        self.assertEqual(len(self.srv.render(max_frames=2).frames), 2)  # still serving

    def test_composite_renders_batch_size_jpeg_frames_like_render(self):
        a = speech(1.0, seed=5)
        r = self.srv.composite(raw_audio=a.tobytes(), batch_size=8, start_frame_idx=12, sample_rate=16000)
        self.assertTrue(r.success, r.error)
        self.assertEqual(len(r.composited_frames), 8)
        self.assertEqual(r.gpu_id, -1)
        for name in ("inference_time_ms", "composite_time_ms", "total_time_ms", "audio_processing_ms"):
            self.assertGreater(getattr(r, name), 0.0, name)
        # Each batch is a new clip: the same frames as Render of that audio from frame 12.
        v1 = self.srv.render(samples=a, first_frame_index=12, max_frames=8)
        self.assertEqual(list(r.composited_frames), [f.data for f in v1.frames])
        # sample_rate 0 means 16 kHz.
        r0 = self.srv.composite(raw_audio=a.tobytes(), batch_size=8, start_frame_idx=12)
        self.assertEqual(list(r0.composited_frames), list(r.composited_frames))

    def test_composite_with_client_visual_frames_equals_server_prep(self):
        a = speech(1.0, seed=6)
        idx = [pingpong(k, 3, N) for k in range(4)]
        visual = np.stack([prep_visual(SMALL, SMALL_BOXES, i) for i in idx]).astype("<f4")
        given = self.srv.composite(raw_audio=a.tobytes(), batch_size=4, start_frame_idx=3, visual_frames=visual.tobytes())
        self.assertTrue(given.success, given.error)
        own = self.srv.composite(raw_audio=a.tobytes(), batch_size=4, start_frame_idx=3)
        self.assertEqual(list(given.composited_frames), list(own.composited_frames))
        # A different visual input changes the output (it is really used).
        other = self.srv.composite(raw_audio=a.tobytes(), batch_size=4, start_frame_idx=3,
                                   visual_frames=(visual * 0.5).astype("<f4").tobytes())
        self.assertNotEqual(list(other.composited_frames), list(own.composited_frames))

    def test_composite_audio_features_and_batches_past_the_clip(self):
        zeros = np.zeros((4, 32, 16, 16), "<f4").tobytes()
        z = self.srv.composite(audio_features=zeros, batch_size=4)
        self.assertTrue(z.success, z.error)
        self.assertEqual(len(z.composited_frames), 4)
        self.assertTrue(all(decode(f).shape == (H, W, 3) for f in z.composited_frames))
        real = self.srv.composite(batch_size=4)
        self.assertNotEqual(list(z.composited_frames), list(real.composited_frames))
        # 0.25 s gives a 3-frame clip; a batch of 16 still yields 16 frames: the windows past the
        # end hold fewer real rows, and from frame L+10 = 13 on only zeros, like all-zero features.
        short = self.srv.composite(raw_audio=speech(0.25).tobytes(), batch_size=16)
        self.assertTrue(short.success, short.error)
        self.assertEqual(len(short.composited_frames), 16)
        z16 = self.srv.composite(audio_features=np.zeros((16, 32, 16, 16), "<f4").tobytes(), batch_size=16)
        self.assertEqual(short.composited_frames[13:], z16.composited_frames[13:])
        self.assertNotEqual(short.composited_frames[3], z16.composited_frames[3])
        # A batch of 2 carries 1,280 samples, less than one mel window (3,000): it is padded with
        # silence, so it equals Render of the same audio padded to 3,000 samples.
        a = speech(1.0, seed=9)[:1280]
        tiny = self.srv.composite(raw_audio=a.tobytes(), batch_size=2)
        self.assertTrue(tiny.success, tiny.error)
        padded = np.concatenate([a, np.zeros(3000 - 1280, a.dtype)])
        self.assertEqual(list(tiny.composited_frames), [f.data for f in self.srv.render(samples=padded, max_frames=2).frames])

    def test_composite_errors_are_in_band(self):
        ok = speech(1.0).tobytes()
        cases = [
            (dict(batch_size=0), "batch_size"), (dict(batch_size=33), "batch_size"),
            (dict(visual_frames=b"\0" * 100), "visual_frames"),
            (dict(batch_size=2, visual_frames=np.zeros((1, 6, 320, 320), "<f4").tobytes()), "visual_frames"),
            (dict(batch_size=1, visual_frames=np.full((1, 6, 320, 320), np.nan, "<f4").tobytes()), "not finite"),
            (dict(audio_features=b"\0" * 12), "audio_features"),
            (dict(start_frame_idx=-1), "start_frame_idx"),
            (dict(model_id="nobody"), "nobody"), (dict(model_id="../x"), "avatar id"),
            (dict(raw_audio=b""), "raw_audio"), (dict(raw_audio=b"\0" * 6), "multiple"),
            (dict(raw_audio=np.full(16000, np.nan, "<f4").tobytes()), "not finite"),
            (dict(raw_audio=ok, sample_rate=7999), "sample rate"),
        ]
        for kw, needle in cases:
            r = self.srv.composite(**kw)
            self.assertFalse(r.success, kw)
            self.assertIn(needle, r.error, kw)
            self.assertEqual(len(r.composited_frames), 0)

    def test_list_load_unload_and_stats_of_both_apis(self):
        v1, mono = self.srv.v1, self.srv.mono
        ids = {a.avatar_id for a in v1.ListAvatars(pb.ListAvatarsRequest(), timeout=10).avatars}
        self.assertTrue({"small", "small2", "small3", "demo", "goavatar"} <= ids, ids)
        self.assertNotIn("escape", ids)
        r = v1.LoadAvatar(pb.LoadAvatarRequest(avatar_id="small3"), timeout=30)
        self.assertFalse(r.already_loaded)
        self.assertGreater(r.load_ms, 0)
        self.assertEqual((r.avatar.num_frames, r.avatar.frame_width, r.avatar.frame_height), (N, W, H))
        self.assertGreaterEqual(r.avatar.memory_bytes, N * W * H * 3)
        self.assertTrue(v1.LoadAvatar(pb.LoadAvatarRequest(avatar_id="small3"), timeout=30).already_loaded)
        loaded = {a.avatar_id for a in v1.ListAvatars(pb.ListAvatarsRequest(loaded_only=True), timeout=10).avatars}
        self.assertIn("small3", loaded)
        st = v1.GetStats(pb.GetStatsRequest(), timeout=10)
        self.assertGreaterEqual(st.loaded_avatars, 1)
        self.assertGreaterEqual(st.memory_bytes, r.avatar.memory_bytes)
        # The runs' working memory: ORT's shared CPU arena, which a render grows.
        self.assertGreater(len(self.srv.render("small3", speech(0.5)).frames), 0)
        self.assertGreater(v1.GetStats(pb.GetStatsRequest(), timeout=10).inference_host_bytes, 1 << 20)
        self.assertFalse(v1.UnloadAvatar(pb.UnloadAvatarRequest(avatar_id="small3"), timeout=10).deferred)
        self.code(C.NOT_FOUND, v1.UnloadAvatar, pb.UnloadAvatarRequest(avatar_id="small3"), timeout=10)
        self.code(C.INVALID_ARGUMENT, v1.LoadAvatar, pb.LoadAvatarRequest(avatar_id="../small"), timeout=10)
        self.code(C.NOT_FOUND, v1.LoadAvatar, pb.LoadAvatarRequest(avatar_id="nobody"), timeout=10)
        # Compat: LoadModel / UnloadModel / stats with real counts.
        lm = mono.LoadModel(mpb.LoadModelRequest(model_id="small3"), timeout=30)
        self.assertTrue(lm.success, lm.error)
        self.assertGreater(lm.load_time_ms, 0)
        before = {m.model_id: m for m in mono.GetModelStats(mpb.GetModelStatsRequest(), timeout=10).models}
        self.assertTrue(self.srv.composite(model_id="small3", batch_size=2).success)
        self.assertTrue(self.srv.composite(model_id="small3", batch_size=2).success)
        after = {m.model_id: m for m in mono.GetModelStats(mpb.GetModelStatsRequest(), timeout=10).models}
        s = after["small3"]
        self.assertEqual(s.request_count, before["small3"].request_count + 2)
        self.assertTrue(s.loaded)
        self.assertGreaterEqual(s.memory_mb, 1)
        self.assertGreater(s.avg_inference_ms, 0)
        self.assertLessEqual(abs(s.last_used_timestamp - time.time()), 60)
        info = {m.model_id: m for m in mono.ListModels(mpb.ListModelsRequest(), timeout=10).models}
        self.assertEqual(info["small3"].request_count, s.request_count)
        self.assertTrue(info["small3"].loaded)
        h = mono.Health(mpb.HealthRequest(), timeout=10)
        self.assertTrue(h.healthy)
        self.assertGreaterEqual(h.loaded_models, 1)
        self.assertTrue(mono.UnloadModel(mpb.UnloadModelRequest(model_id="small3"), timeout=10).success)
        u = mono.UnloadModel(mpb.UnloadModelRequest(model_id="small3"), timeout=10)
        self.assertFalse(u.success)
        self.assertIn("not loaded", u.error)
        self.assertFalse(mono.LoadModel(mpb.LoadModelRequest(model_id="nobody"), timeout=10).success)

    def test_8_concurrent_clients_get_single_client_outputs(self):
        audios = [speech(0.6, seed=10 + i) for i in range(4)]
        ref = [[f.data for f in self.srv.render(samples=a, first_frame_index=i).frames] for i, a in enumerate(audios)]

        def client(c):
            outs = []
            for k in range(4):
                i = (c + k) % 4
                outs.append((i, [f.data for f in self.srv.render(samples=audios[i], first_frame_index=i).frames]))
            return outs

        ts, out = in_threads(8, client)
        join(ts, 120)
        for c, res in enumerate(out):
            self.assertIsInstance(res, list, "client %d: %s" % (c, res))
            for i, frames in res:
                self.assertEqual(frames, ref[i], "client %d request %d" % (c, i))

    def test_log_line_per_render_names_avatar_frames_and_stages(self):
        self.srv.render(max_frames=3)
        time.sleep(0.3)
        lines = [l for l in self.srv.read_log().splitlines() if "Render" in l and "frames=3 " in l]
        self.assertTrue(lines)
        for key in ("avatar=small", "audio_ms=", "prep_ms=", "unet_ms=", "paste_ms=", "encode_ms=", "status=OK"):
            self.assertIn(key, lines[-1])

    @unittest.skipUnless(len(os.sched_getaffinity(0)) >= 2, "one CPU: every thread is on it, pinned or not")
    def test_thread_affinity_auto_pins_the_workers_and_pools_and_gives_the_same_bytes(self):
        # onnx.thread_affinity: auto with 2 intra-op threads: every render worker thread starts on
        # one CPU of its own, each CPU session's pool thread gets one too (cpu_plan.h), and the
        # frames do not change. Threads allowed a single CPU are counted from /proc.
        def single_cpu_threads(pid):
            n = 0
            for tid in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                    lst = [l.split(":", 1)[1].strip() for l in f if l.startswith("Cpus_allowed_list:")][0]
                n += lst.isdigit()
            return n
        if len(os.sched_getaffinity(0)) > 1:
            self.assertEqual(single_cpu_threads(self.srv.proc.pid), 0, "without affinity nothing is pinned")
        a = speech(1.0, seed=3)
        with Server(config("onnx:\n  thread_affinity: auto\n  intra_op_threads: 2\n")) as s:
            self.assertIn("threads pinned: auto over", s.read_log())
            r = s.render(samples=a)
            self.assertEqual([f.data for f in r.frames], cli_frames(SMALL, a, 75))
            workers = os.cpu_count()  # server.worker_count's default: one per online CPU
            # The workers, plus the pool threads of the encoder's and the UNet's sessions.
            self.assertGreaterEqual(single_cpu_threads(s.proc.pid), workers + 2)


def wait_in_use(srv, avatar, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        a = srv.info(avatar)
        if a is not None and a.in_use > 0:
            return
        time.sleep(0.01)
    raise AssertionError("%s never in use" % avatar)


def wait_busy(srv, workers, timeout=20):
    """Until `workers` workers run calls (GetStats runs on the I/O thread, never queued)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if srv.v1.GetStats(pb.GetStatsRequest(), timeout=10).workers_busy >= workers:
            return
        time.sleep(0.01)
    raise AssertionError("never %d workers busy" % workers)


def loaded(srv):
    return {a.avatar_id for a in srv.v1.ListAvatars(pb.ListAvatarsRequest(loaded_only=True), timeout=10).avatars}


LONG = speech(15.0, seed=9)  # 377 frames: a render that lasts a while


class ExecutionProviderTest(unittest.TestCase):
    """The build's ONNX Runtime has no CUDA provider (CI has no GPU): asking for CUDA must stop
    lipsyncd at start with the reason, or run on the CPU when onnx.fallback says so; on the CPU no
    GPU is reported in either API."""

    def test_cuda_unavailable_refuses_to_start_and_says_how_to_fall_back(self):
        fd, path = tempfile.mkstemp(suffix=".yaml", dir=TMP)
        with os.fdopen(fd, "w") as f:
            f.write(config("onnx:\n  provider: cuda\n  cuda:\n    device_ids: [0, 1]\n"))
        p = subprocess.run([LIPSYNCD, "--config", path], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("onnx.provider cuda: ONNX Runtime's CUDA provider is not available", p.stderr)
        self.assertIn("fallback: cpu", p.stderr)
        self.assertIn("libonnxruntime_providers_cuda.so", p.stderr)  # what cannot be used (missing, or a CPU-only ORT)

    def test_fallback_cpu_serves_and_reports_no_gpu_in_either_api(self):
        with Server(config("onnx:\n  provider: cuda\n  fallback: cpu\n")) as s:
            log = s.read_log()
            self.assertIn("warn  CUDA unavailable, running on the CPU (onnx.fallback: cpu)", log)
            self.assertIn("inference on cpu", log)
            self.assertGreater(len(s.render(samples=speech(0.5)).frames), 0)
            self.assertEqual(s.info("small").gpu_id, -1)
            self.assertEqual(len(s.v1.GetStats(pb.GetStatsRequest(), timeout=10).gpus), 0)
            self.assertEqual(list(s.mono.Health(mpb.HealthRequest(), timeout=10).gpu_ids), [])
            c = s.composite(batch_size=2)
            self.assertTrue(c.success, c.error)
            self.assertEqual(c.gpu_id, -1)
            lm = s.mono.LoadModel(mpb.LoadModelRequest(model_id="small2"), timeout=30)
            self.assertTrue(lm.success, lm.error)
            self.assertEqual(lm.gpu_id, -1)


    def test_uint8_io_gives_the_float_paths_bytes(self):
        # The UNet wrapped for uint8 images (onnx.uint8_io) on the CPU: Render equals lipsync
        # render's float path byte for byte, and client visual frames (quantised back to the crop)
        # give the server's own preparation.
        a = speech(1.0, seed=3)
        with Server(config("onnx:\n  uint8_io: true\n")) as s:
            self.assertIn("inference on cpu, uint8 I/O", s.read_log())
            r = s.render(samples=a)
            self.assertEqual([f.data for f in r.frames], cli_frames(SMALL, a, 75))
            idx = [pingpong(k, 3, N) for k in range(4)]
            visual = np.stack([prep_visual(SMALL, SMALL_BOXES, i) for i in idx]).astype("<f4")
            given = s.composite(raw_audio=a.tobytes(), batch_size=4, start_frame_idx=3, visual_frames=visual.tobytes())
            own = s.composite(raw_audio=a.tobytes(), batch_size=4, start_frame_idx=3)
            self.assertTrue(given.success and own.success, given.error + own.error)
            self.assertEqual(list(given.composited_frames), list(own.composited_frames))

    def test_pipelined_render_gives_the_same_bytes(self):
        # capacity.pipeline: the UNet of batch i runs beside the preparation of batch i+1 and the
        # composite of batch i-1 (1 s = 26 frames in batches of 4), with float and uint8 UNets.
        a = speech(1.0, seed=5)
        ref = cli_frames(SMALL, a, 75)
        for extra in ("", "onnx:\n  uint8_io: true\n"):
            with Server(config("capacity:\n  max_batch: 4\n  pipeline: true\n" + extra)) as s:
                self.assertIn(", pipelined", s.read_log())
                r = s.render(samples=a)
                self.assertEqual(len(r.frames), len(ref))
                self.assertEqual([f.data for f in r.frames], ref, extra)


class RegistryTest(unittest.TestCase):
    def test_default_config_serves_the_build_demo_avatar_like_lipsync_render(self):
        with Server("server:\n  listen: 127.0.0.1:0\n") as s:
            self.assertIn("demo", {a.avatar_id for a in s.v1.ListAvatars(pb.ListAvatarsRequest(), timeout=10).avatars})
            a = speech(0.6, seed=4)
            r = s.render(avatar="demo", samples=a, timeout=120)
            self.assertGreater(r.timings.avatar_load_ms, 0)
            self.assertEqual((r.frame_width, r.frame_height), (1280, 720))
            self.assertEqual([f.data for f in r.frames], cli_frames(DEMO, a, 75))

    def test_startup_log_names_what_it_loaded_and_where_it_listens(self):
        with Server(config().replace("    num_frames: 5\n", "    num_frames: 5\n    preload_model: true\n")) as s:
            log = s.read_log()
            self.assertIn("listening on 127.0.0.1:%d" % s.port, log)
            self.assertIn("avatars_root %s" % ROOT, log)
            self.assertIn("1 avatars loaded; models: goavatar (preloaded);", log)
            self.assertEqual(loaded(s), {"goavatar"})

    def test_max_models_1_evicts_and_a_busy_avatar_is_never_evicted(self):
        with Server(config("capacity:\n  max_models: 1\n")) as s:
            s.render(max_frames=1)
            self.assertEqual(loaded(s), {"small"})
            s.render(avatar="small2", max_frames=1)
            self.assertEqual(loaded(s), {"small2"})
            ts, out = in_threads(1, lambda i: s.render(avatar="small2", samples=LONG, timeout=120))
            wait_in_use(s, "small2")
            with self.assertRaises(grpc.RpcError) as cm:
                s.render(max_frames=1)
            self.assertEqual(cm.exception.code(), C.RESOURCE_EXHAUSTED)
            self.assertIn("max_models", cm.exception.details())
            join(ts, 120)
            self.assertEqual(len(out[0].frames), ref_frames(len(LONG)))
            self.assertEqual(loaded(s), {"small2"})

    def test_lfu_evicts_the_least_requested_not_the_least_recent(self):
        with Server(config("capacity:\n  max_models: 2\n")) as s:
            for _ in range(3):
                s.render(max_frames=1)
            s.render(avatar="small2", max_frames=1)  # most recent, but 1 request against 3
            s.render(avatar="small3", max_frames=1)
            self.assertEqual(loaded(s), {"small", "small3"})
            counts = {a.avatar_id: a.request_count for a in s.v1.ListAvatars(pb.ListAvatarsRequest(), timeout=10).avatars}
            self.assertEqual((counts["small"], counts["small2"], counts["small3"]), (3, 1, 1))

    def test_memory_budget_is_resource_exhausted(self):
        with Server(config("capacity:\n  max_memory_gb: 0.001\n")) as s:  # 1 MiB; a small avatar is 2.3
            with self.assertRaises(grpc.RpcError) as cm:
                s.render(max_frames=1)
            self.assertEqual(cm.exception.code(), C.RESOURCE_EXHAUSTED)
            self.assertIn("memory budget", cm.exception.details())
            r = s.mono.LoadModel(mpb.LoadModelRequest(model_id="small"), timeout=30)
            self.assertFalse(r.success)
            self.assertIn("memory budget", r.error)
            self.assertEqual(s.v1.GetStats(pb.GetStatsRequest(), timeout=10).loaded_avatars, 0)

    def test_a_load_that_cannot_fit_evicts_nothing(self):
        # 50 MiB: the small avatar fits, the demo (~700 MiB) never can, so it must not cost the
        # small one its place.
        with Server(config("capacity:\n  max_memory_gb: 0.05\n")) as s:
            s.render(max_frames=1)
            with self.assertRaises(grpc.RpcError) as cm:
                s.render(avatar="demo", max_frames=1, timeout=120)
            self.assertEqual(cm.exception.code(), C.RESOURCE_EXHAUSTED)
            loaded = [a.avatar_id for a in s.v1.ListAvatars(pb.ListAvatarsRequest(loaded_only=True), timeout=10).avatars]
            self.assertEqual(loaded, ["small"])

    def test_load_and_unload_while_requests_run(self):
        with Server(config()) as s:
            a = speech(0.6, seed=7)
            ref = [f.data for f in s.render(samples=a).frames]
            stop = threading.Event()

            def client(i):
                outs = []
                while not stop.is_set():
                    outs.append([f.data for f in s.render(samples=a).frames])
                return outs

            ts, out = in_threads(3, client)
            deferred = 0
            for _ in range(15):
                try:
                    deferred += s.v1.UnloadAvatar(pb.UnloadAvatarRequest(avatar_id="small"), timeout=10).deferred
                except grpc.RpcError as e:
                    self.assertEqual(e.code(), C.NOT_FOUND)  # between a reload and the next request
                s.v1.LoadAvatar(pb.LoadAvatarRequest(avatar_id="small"), timeout=30)
                time.sleep(0.02)
            stop.set()
            join(ts, 60)
            for res in out:
                self.assertIsInstance(res, list, res)
                self.assertTrue(res)
                for frames in res:
                    self.assertEqual(frames, ref)
            # Deterministically deferred: unload while a long render holds it.
            ts, out = in_threads(1, lambda i: s.render(samples=LONG, timeout=120))
            wait_in_use(s, "small")
            self.assertTrue(s.v1.UnloadAvatar(pb.UnloadAvatarRequest(avatar_id="small"), timeout=10).deferred)
            self.assertIn("small", loaded(s))
            join(ts, 120)
            self.assertEqual(len(out[0].frames), ref_frames(len(LONG)))
            self.assertNotIn("small", loaded(s))
            self.assertEqual(len(s.render(max_frames=2).frames), 2)  # reloads on demand


class CallLifecycleTest(unittest.TestCase):
    def stopped_renders(self, s, n, timeout=20):
        """ms of the first n Renders that the server stopped early. A client deadline reaches the
        server either as its own deadline passing or as the client's cancel at that moment (a race
        inside gRPC), so both statuses count."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = re.findall(r"LipSync/Render .*status=(?:DEADLINE_EXCEEDED|CANCELLED) ms=([0-9.]+)", s.read_log())
            if len(got) >= n:
                return [float(v) for v in got[:n]]
            time.sleep(0.02)
        raise AssertionError("fewer than %d stopped Renders in the log:\n%s" % (n, s.read_log()))

    def test_deadline_and_cancel_stop_the_render_early(self):
        with Server(config()) as s:
            t0 = time.time()
            full = s.render(samples=LONG, timeout=120)
            full_ms = (time.time() - t0) * 1000
            with self.assertRaises(grpc.RpcError) as cm:
                s.render(samples=LONG, timeout=0.3)
            self.assertEqual(cm.exception.code(), C.DEADLINE_EXCEEDED)
            self.assertLess(self.stopped_renders(s, 1)[0], full_ms * 0.8)
            fut = s.v1.Render.future(pb.RenderRequest(avatar_id="small", audio=audio_msg(LONG)), timeout=120)
            time.sleep(0.3)
            fut.cancel()
            self.assertLess(self.stopped_renders(s, 2)[1], full_ms * 0.8)
            self.assertRegex(s.read_log(), r"LipSync/Render .*status=CANCELLED")
            again = s.render(samples=LONG, timeout=120)  # healthy, and the same output
            self.assertEqual([f.data for f in again.frames], [f.data for f in full.frames])

    def test_sigterm_during_traffic_finishes_in_flight_calls_and_exits_0(self):
        # A grace period no render here can outlast, even under ASan on a busy machine.
        with Server(config().replace("  queue_depth: 16\n", "  queue_depth: 16\n  shutdown_grace_s: 120\n  worker_count: 2\n")) as s:
            s.render(max_frames=1)
            a = speech(3.0)
            ts, out = in_threads(2, lambda i: s.render(samples=a, timeout=60))
            wait_busy(s, 2)  # both calls admitted (a call arriving after SIGTERM gets UNAVAILABLE)
            s.proc.send_signal(signal.SIGTERM)
            join(ts, 60)
            for r in out:
                self.assertNotIsInstance(r, tuple, r)
                self.assertEqual(len(r.frames), ref_frames(len(a)))
            self.assertEqual(s.proc.wait(timeout=30), 0)


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
