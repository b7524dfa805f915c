"""client_stream_test.py - `lipsync client stream` against the real lipsyncd, and lipsyncd's Stream
under SIGTERM.

Usage: client_stream_test.py LIPSYNC LIPSYNCD PROTO_DIR BUILD_DIR. A small generated avatar (10 PNG
frames of 320x240) uses the build's demo models; speech comes from espeak-ng. Each server listens
on port 0 and is always killed; the run is bounded by an alarm, every process by a timeout.

Identity: the streamed JPEG frames (burst pacing, silence gate off) are compared with v1 Render's
JPEG frames of the same audio, decoded, pixel for pixel (tolerance 0); both encode the composited
frame with the server's JPEG settings, so decoded pixels are equal whatever encoder path Render
takes (byte equality is reported, not required).
"""
import os
import re
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

LIPSYNC, LIPSYNCD, PROTO_DIR, BUILD = sys.argv[1:5]
del sys.argv[1:5]
TMP = tempfile.mkdtemp(prefix="lipsync-cstream-")
MODELS = os.path.join(os.path.abspath(BUILD), "models")
ROOT = os.path.join(TMP, "avatars")
NO_PROXY = [("grpc.enable_http_proxy", 0), ("grpc.max_receive_message_length", 100 << 20)]
ENV = dict(os.environ, no_proxy="*", NO_PROXY="*")
signal.alarm(170)

harness.gen_stubs(PROTO_DIR, TMP, ["lipsync/v1/lipsync.proto"])
from lipsync.v1 import lipsync_pb2 as pb, lipsync_pb2_grpc as pbg  # noqa: E402

W, H, N = harness.SMALL_W, harness.SMALL_H, harness.SMALL_N


def small_avatar(name, seed):
    return harness.small_avatar(ROOT, MODELS, name, seed)


small_avatar("small", 1)


def espeak_wav(text, name):
    """espeak-ng speech resampled to 16 kHz mono WAV (ffmpeg); returns (path, float32 samples)."""
    raw = os.path.join(TMP, name + "-raw.wav")
    path = os.path.join(TMP, name + ".wav")
    subprocess.run(["espeak-ng", "-w", raw, text], check=True, timeout=30)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", raw, "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", path],
                   check=True, timeout=30)
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "f32le", "-ac", "1", "-ar", "16000", "-"],
                         check=True, timeout=30, stdout=subprocess.PIPE).stdout
    return path, np.frombuffer(pcm, "<f4")


SPEECH, SPEECH_PCM = espeak_wav("The quick brown fox jumps over the lazy dog.", "speech")
SHORT, SHORT_PCM = espeak_wav("Hello there, friend.", "short")


def ref_frames(n16):
    """The reference frame count L for n16 samples at 16 kHz."""
    return int((1 + n16 // 200 - 16) / 80.0 * 25) + 2


class Server(harness.Lipsyncd):
    """lipsyncd on the small avatar, 1 s shutdown grace; always killed (the exit is not checked here)."""

    def __init__(self, extra=""):
        super().__init__(LIPSYNCD, "server:\n  listen: 127.0.0.1:0\n  shutdown_grace_s: 1\navatars_root: %s\n%s" % (ROOT, extra),
                         TMP, check_exit=False)

    def __enter__(self):
        self.start()
        self.ch = grpc.insecure_channel(self.addr, options=NO_PROXY)
        self.v1 = pbg.LipSyncStub(self.ch)
        return self

    def __exit__(self, *exc):
        self.ch.close()
        self.stop()

    def client(self, *args, timeout=60):
        return subprocess.run([LIPSYNC, "client", "stream", "--server", self.addr] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout, env=ENV)


def report_value(out, pattern):
    m = re.search(pattern, out)
    assert m, "report line %r missing in:\n%s" % (pattern, out)
    return m.groups()


class ClientStream(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def test_burst_frames_equal_render_and_mp4_has_L_frames(self):
        frames_dir, mp4 = os.path.join(TMP, "burst-frames"), os.path.join(TMP, "burst.mp4")
        p = self.srv.client("--avatar", "small", "--audio", SPEECH, "--chunk-ms", "20", "--frames", frames_dir,
                            "--out", mp4)
        self.assertEqual(p.returncode, 0, p.stderr)
        L = ref_frames(len(SPEECH_PCM))
        files = sorted(os.listdir(frames_dir))
        self.assertEqual(files, ["%06d.jpg" % i for i in range(L)])  # exactly frames 0 .. L-1
        # The report: every line present, counts as streamed (all generated: silence gate off).
        self.assertEqual(report_value(p.stdout, r"frames: (\d+) received \((\d+) generated, (\d+) idle\), (\d+) missing"),
                         (str(L), str(L), "0", "0"))
        lat, = report_value(p.stdout, r"first-frame latency: ([\d.]+) ms")
        self.assertGreater(float(lat), 0)
        report_value(p.stdout, r"frame-interval jitter: n/a \(burst pacing\)")
        out, gen, dropped = report_value(p.stdout, r"server stats: frames_out (\d+) generated (\d+) idle \d+ dropped (\d+)")
        self.assertEqual((int(out), int(gen), int(dropped)), (L, L, 0))
        # ffprobe: the MP4 has L video frames.
        probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                                "stream=nb_read_frames", "-of", "csv=p=0", mp4], stdout=subprocess.PIPE, text=True,
                               timeout=30, check=True)
        self.assertEqual(int(probe.stdout.strip()), L)
        # Render of the same audio: decoded pixels equal, tolerance 0.
        audio = pb.Audio(data=SPEECH_PCM.tobytes(), encoding=pb.AUDIO_ENCODING_F32LE, sample_rate=16000)
        ref = self.srv.v1.Render(pb.RenderRequest(avatar_id="small", audio=audio), timeout=60).frames
        self.assertEqual(len(ref), L)
        same_bytes = 0
        for i, fr in enumerate(ref):
            with open(os.path.join(frames_dir, "%06d.jpg" % i), "rb") as f:
                got = f.read()
            same_bytes += got == fr.data
            a = cv2.imdecode(np.frombuffer(got, np.uint8), cv2.IMREAD_COLOR)
            b = cv2.imdecode(np.frombuffer(fr.data, np.uint8), cv2.IMREAD_COLOR)
            self.assertEqual(a.shape, (H, W, 3))
            np.testing.assert_array_equal(a, b, err_msg="frame %d" % i)  # tolerance 0
        print("burst: %d frames, %d byte-identical to Render's JPEG" % (L, same_bytes), file=sys.stderr)

    def test_realtime_run_reports(self):
        pcm = SHORT_PCM[:32000] if len(SHORT_PCM) > 32000 else SHORT_PCM  # ~2 s
        path = os.path.join(TMP, "rt.wav")
        cv2_free_wav(path, pcm)
        mp4 = os.path.join(TMP, "rt.mp4")
        p = self.srv.client("--avatar", "small", "--audio", path, "--chunk-ms", "20", "--realtime", "--out", mp4)
        self.assertEqual(p.returncode, 0, p.stderr)
        print(p.stdout, file=sys.stderr)
        report_value(p.stdout, r"realtime send\), realtime pacing")
        n, gen, idle, _ = map(int, report_value(p.stdout, r"frames: (\d+) received \((\d+) generated, (\d+) idle\), (\d+) missing"))
        dropped, = map(int, report_value(p.stdout, r"server stats: .* dropped (\d+)"))
        L = ref_frames(len(pcm))
        self.assertTrue(L - dropped <= gen <= L, (gen, L, dropped))  # every utterance frame generated or dropped
        self.assertEqual(n, gen + idle)
        self.assertGreater(idle, 0)  # realtime: idle fillers before the utterance's first frame
        lat, = report_value(p.stdout, r"first-frame latency: ([\d.]+) ms")
        p50, p99, intervals = report_value(p.stdout, r"frame-interval jitter: p50 ([\d.]+) ms, p99 ([\d.]+) ms .*?(\d+) intervals")
        self.assertEqual(int(intervals), n - 1)
        self.assertLessEqual(float(p50), float(p99))
        report_value(p.stdout, r"late chunks: \d+")
        report_value(p.stdout, r"server stats: frames_out %d " % n)
        self.assertTrue(os.path.getsize(mp4) > 0)

    def test_unknown_avatar_is_not_found(self):
        p = self.srv.client("--avatar", "nobody", "--audio", SHORT)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("lipsync client: NOT_FOUND:", p.stderr)

    def test_usage_errors_exit_2(self):
        p = self.srv.client("--avatar", "small", "--audio", SHORT, "--pacing", "fast")
        self.assertEqual(p.returncode, 2)
        p = self.srv.client("--audio", SHORT)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--avatar ID and --audio FILE are required", p.stderr)


def cv2_free_wav(path, pcm):
    """Writes float samples as a 16 kHz mono s16 WAV through ffmpeg."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "f32le", "-ar", "16000", "-ac", "1", "-i", "-",
                    "-c:a", "pcm_s16le", path], input=pcm.astype("<f4").tobytes(), check=True, timeout=30)


class Shutdown(unittest.TestCase):
    def test_sigterm_during_a_live_stream(self):
        """SIGTERM while a realtime stream runs: the stream ends UNAVAILABLE (or OK if it had
        finished) and lipsyncd exits 0."""
        with Server() as srv:
            first_frame = threading.Event()
            result = {}

            def requests():
                yield pb.StreamRequest(config=pb.StreamConfig(
                    avatar_id="small", encoding=pb.AUDIO_ENCODING_F32LE, sample_rate=16000,
                    pacing=pb.PACING_REALTIME))
                for i in range(0, len(SPEECH_PCM), 320):  # 20 ms chunks on the wall clock, no end
                    yield pb.StreamRequest(audio=pb.AudioChunk(data=SPEECH_PCM[i:i + 320].tobytes()))
                    time.sleep(0.02)
                while not result.get("done"):
                    time.sleep(0.05)

            def consume():
                try:
                    n = 0
                    for r in srv.v1.Stream(requests(), timeout=60):
                        if r.WhichOneof("msg") == "frame":
                            n += 1
                            first_frame.set()
                    result["code"] = grpc.StatusCode.OK
                except grpc.RpcError as e:
                    result["code"] = e.code()
                result["frames"] = n
                result["done"] = True
                first_frame.set()

            t = threading.Thread(target=consume)
            t.start()
            self.assertTrue(first_frame.wait(20))
            srv.proc.send_signal(signal.SIGTERM)
            self.assertEqual(srv.proc.wait(timeout=30), 0)  # grace 1 s, then streams end
            t.join(10)
            self.assertFalse(t.is_alive())
            self.assertIn(result["code"], (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK))
            self.assertGreater(result["frames"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
