"""stream_rpc_test.py - the Stream RPC of lipsyncd end to end, driven by grpcio clients.

Usage: stream_rpc_test.py LIPSYNCD PROTO_DIR BUILD_DIR. Stubs are generated at test time; small
generated avatars (10 PNG frames of 320x240) use the build's demo models. Each server listens on
port 0 and is always killed; the run is bounded by an alarm, every call by a timeout.

Identity is checked on RAW_RGB24 output against v1 Render's RAW_RGB24 output of the same audio:
both carry the composited pixels before any encoder, so the comparison is exact (tolerance 0) and
independent of how Render encodes JPEG (it may splice); JPEG output only adds the encoder.
"""
import os
import queue
import signal
import sys
import tempfile
import threading
import time
import unittest

import grpc
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lipsyncd_harness as harness  # noqa: E402

LIPSYNCD, PROTO_DIR, BUILD = sys.argv[1:4]
del sys.argv[1:4]
TMP = tempfile.mkdtemp(prefix="lipsyncd-stream-")
MODELS = os.path.join(os.path.abspath(BUILD), "models")
ROOT = os.path.join(TMP, "avatars")
NO_PROXY = [("grpc.enable_http_proxy", 0), ("grpc.max_receive_message_length", 100 << 20)]
signal.alarm(280)

harness.gen_stubs(PROTO_DIR, TMP, ["lipsync/v1/lipsync.proto"])
from lipsync.v1 import lipsync_pb2 as pb, lipsync_pb2_grpc as pbg  # noqa: E402

C = grpc.StatusCode
W, H, N = harness.SMALL_W, harness.SMALL_H, harness.SMALL_N
RAW = pb.OUTPUT_KIND_RAW_RGB24
CTL = pb.Control


def small_avatar(name, seed):
    return harness.small_avatar(ROOT, MODELS, name, seed)


small_avatar("small", 1)
small_avatar("small2", 2)


def speech(seconds, seed=0):
    n = int(round(seconds * 16000))
    rng = np.random.default_rng(seed)
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * np.arange(n) / 16000)
    return (0.3 * env * rng.standard_normal(n)).astype("<f4")


def ref_frames(n16):
    return int((1 + n16 // 200 - 16) / 80.0 * 25) + 2


def cfg_msg(avatar="small", **kw):
    kw.setdefault("encoding", pb.AUDIO_ENCODING_F32LE)
    kw.setdefault("sample_rate", 16000)
    kw.setdefault("output", RAW)
    return pb.StreamRequest(config=pb.StreamConfig(avatar_id=avatar, **kw))


def chunks(samples, n):
    return [pb.StreamRequest(audio=pb.AudioChunk(data=samples[i:i + n].tobytes())) for i in range(0, len(samples), n)]


def ctl(kind):
    return pb.StreamRequest(control=pb.Control(kind=kind))


class Server(harness.Lipsyncd):
    """lipsyncd on the small avatars; always killed (the exit is not checked here)."""

    def __init__(self, extra=""):
        super().__init__(LIPSYNCD, "server:\n  listen: 127.0.0.1:0\n  queue_depth: 16\navatars_root: %s\n%s" % (ROOT, extra),
                         TMP, check_exit=False)

    def __enter__(self):
        self.start()
        self.ch = grpc.insecure_channel(self.addr, options=NO_PROXY)
        self.v1 = pbg.LipSyncStub(self.ch)
        return self

    def __exit__(self, *exc):
        if hasattr(self, "ch"):
            self.ch.close()
        self.stop()

    def stream(self, reqs, timeout=60):
        """All responses of a stream fed from a list: (frames, events, stats list)."""
        frames, events, stats = [], [], []
        for r in self.v1.Stream(iter(reqs), timeout=timeout):
            kind = r.WhichOneof("msg")
            (frames if kind == "frame" else events if kind == "event" else stats).append(getattr(r, kind))
        return frames, events, stats

    def render_raw(self, samples, start=0, avatar="small"):
        audio = pb.Audio(data=samples.tobytes(), encoding=pb.AUDIO_ENCODING_F32LE, sample_rate=16000)
        return self.v1.Render(pb.RenderRequest(avatar_id=avatar, audio=audio, first_frame_index=start, output=RAW),
                              timeout=60).frames


class Feeder:
    """A request iterator the test feeds while the stream runs."""
    def __init__(self, first):
        self.q = queue.Queue()
        self.q.put(first)

    def put(self, *reqs):
        for r in reqs:
            self.q.put(r)

    def end(self):
        self.q.put(None)

    def __iter__(self):
        while True:
            r = self.q.get()
            if r is None:
                return
            yield r


def take(it, want, timeout_s=20):
    """Reads responses until `want` frames arrived; returns (frames, events)."""
    frames, events = [], []
    end = time.time() + timeout_s
    while len(frames) < want and time.time() < end:
        r = next(it)
        kind = r.WhichOneof("msg")
        if kind == "frame":
            frames.append(r.frame)
        elif kind == "event":
            events.append(r.event)
    return frames, events


SRV = None


def setUpModule():
    global SRV
    SRV = Server("stream:\n  max_sessions: 12\n  max_sessions_per_model: 10\n").__enter__()


def tearDownModule():
    SRV.__exit__(None, None, None)


class StreamIdentity(unittest.TestCase):
    def identity(self, chunk):
        audio = speech(2.25, seed=7)
        ref = SRV.render_raw(audio, start=2)
        frames, _, stats = SRV.stream([cfg_msg(start_frame=2)] + chunks(audio, chunk) + [ctl(CTL.FLUSH), ctl(CTL.CLOSE)])
        self.assertEqual(len(ref), ref_frames(len(audio)))
        self.assertEqual(len(frames), len(ref), "frame count after flush equals the offline L")
        for i, (f, r) in enumerate(zip(frames, ref)):
            self.assertEqual(f.index, i)
            self.assertEqual(f.pts_ms, 40 * i)
            self.assertEqual(f.pts_samples, 640 * i)
            self.assertTrue(f.generated)
            self.assertEqual(f.avatar_frame, r.avatar_frame, "frame %d avatar frame" % i)
            self.assertEqual(f.data, r.data, "frame %d pixels identical to Render (tolerance 0)" % i)
        self.assertEqual(stats[-1].frames_dropped, 0)
        self.assertEqual(stats[-1].unet_overlapped_runs, 0, "serial scheduler on the CPU by default")

    def test_10ms_chunks(self):
        self.identity(160)

    def test_37ms_chunks(self):
        self.identity(592)

    def test_1s_chunks(self):
        self.identity(16000)

    def test_44100_hz_in_10ms_chunks_equals_one_render(self):
        # The resampler keeps its state across chunks: the streamed frames equal Render's of the
        # same 44.1 kHz audio in one request (tolerance 0).
        audio16 = speech(1.5, seed=11)
        t = np.arange(int(1.5 * 44100)) / 44100.0
        audio = np.interp(t, np.arange(len(audio16)) / 16000.0, audio16).astype("<f4")
        ref = SRV.v1.Render(pb.RenderRequest(avatar_id="small", output=RAW, audio=pb.Audio(
            data=audio.tobytes(), encoding=pb.AUDIO_ENCODING_F32LE, sample_rate=44100)), timeout=60).frames
        frames, _, stats = SRV.stream([cfg_msg(sample_rate=44100)] + chunks(audio, 441) + [ctl(CTL.FLUSH), ctl(CTL.CLOSE)])
        self.assertEqual(len(frames), len(ref))
        for i, (f, r) in enumerate(zip(frames, ref)):
            self.assertEqual(f.data, r.data, "frame %d" % i)

    def test_uint8_unet_streams_the_float_paths_pixels(self):
        # The scheduler's batches through a UNet wrapped for uint8 images (onnx.uint8_io): the
        # streamed pixels equal Render's on the float UNet (the module's server), tolerance 0.
        audio = speech(1.0, seed=9)
        ref = SRV.render_raw(audio)
        with Server("onnx:\n  uint8_io: true\n") as s:
            self.assertIn("inference on cpu, uint8 I/O", s.read_log())
            frames, _, _ = s.stream([cfg_msg()] + chunks(audio, 3200) + [ctl(CTL.FLUSH), ctl(CTL.CLOSE)])
        self.assertEqual(len(frames), len(ref))
        for i, (f, r) in enumerate(zip(frames, ref)):
            self.assertEqual(f.data, r.data, "frame %d" % i)


    def test_pipelined_scheduler_streams_the_same_pixels(self):
        # capacity.pipeline (the default with cuda): the scheduler prepares the next batch while
        # the UNet runs; with the uint8 wrap as on a GPU, three concurrent sessions in 1 s chunks
        # (deep queues, so batches overlap) stream Render's float pixels, tolerance 0.
        audio = speech(2.0, seed=5)
        ref = SRV.render_raw(audio)
        with Server("capacity:\n  pipeline: true\nonnx:\n  uint8_io: true\n") as s:
            self.assertIn("uint8 I/O, pipelined", s.read_log())
            # One session alone keeps two batches at the scheduler, so its runs overlap too.
            alone, _, stats = s.stream([cfg_msg()] + chunks(audio, 16000) + [ctl(CTL.FLUSH), ctl(CTL.CLOSE)])
            self.assertGreater(stats[-1].unet_overlapped_runs, 0, "one session's runs overlap")
            self.assertEqual([f.data for f in alone], [r.data for r in ref])
            out, overlapped = [None] * 3, [0] * 3

            def one(i):
                out[i], _, stats = s.stream([cfg_msg()] + chunks(audio, 16000) + [ctl(CTL.FLUSH), ctl(CTL.CLOSE)])
                overlapped[i] = stats[-1].unet_overlapped_runs
            threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        self.assertGreater(max(overlapped), 0, "runs prepared while another ran")
        for k, frames in enumerate(out):
            self.assertEqual(len(frames), len(ref), "session %d" % k)
            for i, (f, r) in enumerate(zip(frames, ref)):
                self.assertEqual(f.data, r.data, "session %d frame %d" % (k, i))


    @unittest.skipUnless(len(os.sched_getaffinity(0)) >= 2, "one CPU: every thread is on it, pinned or not")
    def test_pinned_scheduler_threads_stream_the_same_pixels(self):
        # onnx.thread_affinity: auto: each of the model's scheduler threads (stream.workers 2)
        # starts pinned to a CPU (cpu_plan.h), counted from /proc while the session is open (a
        # Render first loads the models, so their pools are already counted); pixels unchanged.
        def single_cpu_threads(pid):
            n = 0
            for tid in os.listdir("/proc/%d/task" % pid):
                try:
                    with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                        n += [l.split(":", 1)[1].strip() for l in f if l.startswith("Cpus_allowed_list:")][0].isdigit()
                except FileNotFoundError:  # a thread that ended meanwhile
                    pass
            return n
        audio = speech(1.0, seed=9)
        ref = SRV.render_raw(audio)
        with Server("onnx:\n  thread_affinity: auto\n  intra_op_threads: 2\nstream:\n  workers: 2\n") as s:
            self.assertIn("threads pinned: auto over", s.read_log())
            self.assertEqual(len(s.render_raw(audio)), len(ref))
            before = single_cpu_threads(s.proc.pid)
            feed = Feeder(cfg_msg())
            it = s.v1.Stream(iter(feed), timeout=60)
            feed.put(*chunks(audio, 3200), ctl(CTL.FLUSH))
            frames, _ = take(it, len(ref))
            during = single_cpu_threads(s.proc.pid)
            feed.put(ctl(CTL.CLOSE))
            feed.end()
            for _ in it:
                pass
        self.assertGreaterEqual(during, before + 2, "the 2 scheduler threads are pinned")
        self.assertEqual(len(frames), len(ref))
        for i, (f, r) in enumerate(zip(frames, ref)):
            self.assertEqual(f.data, r.data, "frame %d" % i)


class StreamControl(unittest.TestCase):
    def test_frames_wait_for_lookahead_and_flush_emits_the_rest(self):
        audio = speech(1.0, seed=3)
        feed = Feeder(cfg_msg())
        feed.put(*chunks(audio, 16000))
        it = SRV.v1.Stream(iter(feed), timeout=60)
        before, _ = take(it, 14)
        self.assertEqual(len(before), 14, "1 s of audio gives 14 frames before flush (look-ahead 7)")
        feed.put(ctl(CTL.STATS))
        r = next(it)  # nothing else may come before the flush: the stats answer is next
        self.assertEqual(r.WhichOneof("msg"), "stats")
        feed.put(ctl(CTL.FLUSH), ctl(CTL.CLOSE))
        rest = [r.frame for r in it if r.WhichOneof("msg") == "frame"]
        feed.end()
        self.assertEqual(len(before) + len(rest), ref_frames(16000), "flush emits all L frames")

    def test_interrupt_drops_pending_frames(self):
        audio = speech(3.0, seed=4)
        feed = Feeder(cfg_msg())
        feed.put(*chunks(audio, 16000))
        it = SRV.v1.Stream(iter(feed), timeout=60)
        got, _ = take(it, 3)
        feed.put(ctl(CTL.INTERRUPT), ctl(CTL.CLOSE))
        rest = list(it)
        feed.end()
        frames = got + [r.frame for r in rest if r.WhichOneof("msg") == "frame"]
        events = [r.event for r in rest if r.WhichOneof("msg") == "event"]
        self.assertIn(pb.StreamEvent.INTERRUPTED, [e.kind for e in events], "an INTERRUPTED event")
        self.assertLess(len(frames), ref_frames(len(audio)), "the interrupted utterance is not completed")
        self.assertEqual([f.index for f in frames], list(range(len(frames))), "indices stay consecutive")

    def test_silence_gives_idle_frames_without_unet_runs(self):
        silence = np.zeros(32000, "<f4")
        frames, _, stats = SRV.stream([cfg_msg(idle_detect=True)] + chunks(silence, 3200) + [ctl(CTL.FLUSH), ctl(CTL.CLOSE)])
        self.assertEqual(len(frames), ref_frames(32000))
        self.assertFalse(any(f.generated for f in frames), "every silent frame is idle")
        self.assertEqual(stats[-1].unet_jobs, 0, "no UNet work for silence")
        self.assertEqual(stats[-1].frames_idle, len(frames))

    def test_missing_config_is_invalid_argument(self):
        with self.assertRaises(grpc.RpcError) as e:
            SRV.stream(chunks(speech(0.1), 1600))
        self.assertEqual(e.exception.code(), C.INVALID_ARGUMENT)

    def test_unknown_avatar_is_not_found(self):
        with self.assertRaises(grpc.RpcError) as e:
            SRV.stream([cfg_msg(avatar="nosuch")])
        self.assertEqual(e.exception.code(), C.NOT_FOUND)

    def test_bad_config_is_invalid_argument(self):
        with self.assertRaises(grpc.RpcError) as e:
            SRV.stream([cfg_msg(sample_rate=100)])
        self.assertEqual(e.exception.code(), C.INVALID_ARGUMENT)


class StreamConcurrency(unittest.TestCase):
    def test_8_sessions_share_batches_and_match_render(self):
        audios = [speech(1.5, seed=20 + i) for i in range(8)]
        refs = [SRV.render_raw(a) for a in audios]
        out = [None] * 8
        barrier = threading.Barrier(8)

        def run(i):
            def reqs():
                yield cfg_msg()
                barrier.wait(10)
                for r in chunks(audios[i], 640):
                    yield r
                yield ctl(CTL.FLUSH)
                yield ctl(CTL.CLOSE)
            try:
                out[i] = SRV.stream(reqs())
            except grpc.RpcError as e:
                out[i] = e
        ts = [threading.Thread(target=run, args=(i,)) for i in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        runs = items = enc_runs = enc_run_windows = enc_shared = enc_requests = enc_windows = 0
        for i in range(8):
            self.assertIsInstance(out[i], tuple, "session %d: %r" % (i, out[i]))
            frames, _, stats = out[i]
            self.assertEqual(len(frames), len(refs[i]), "session %d frame count" % i)
            self.assertTrue(all(f.data == r.data for f, r in zip(frames, refs[i])), "session %d output" % i)
            runs, items = max(runs, stats[-1].unet_runs), max(items, stats[-1].unet_items)
            # The encoder batcher's counters are shared (the last session to end saw them all);
            # requests and windows are the session's own.
            enc_runs = max(enc_runs, stats[-1].encoder_runs)
            enc_run_windows = max(enc_run_windows, stats[-1].encoder_run_windows)
            enc_shared = max(enc_shared, stats[-1].encoder_shared_runs)
            enc_requests += stats[-1].encoder_requests
            enc_windows += stats[-1].encoder_windows
            self.assertEqual(stats[-1].encoder_windows, len(frames), "session %d: one encoder window per frame" % i)
        self.assertLess(runs, items, "fewer UNet runs (%d) than frames (%d): batches span sessions" % (runs, items))
        self.assertEqual(enc_run_windows, enc_windows, "every session's windows went through the one shared batcher")
        self.assertLess(enc_runs, enc_requests, "fewer encoder runs (%d) than requests (%d): runs span sessions"
                        % (enc_runs, enc_requests))
        self.assertGreater(enc_shared, 0, "runs carrying several sessions' windows")
        print("\n     8 sessions: %d encoder runs (%d shared) for %d requests, %d windows; %d UNet runs for %d frames"
              % (enc_runs, enc_shared, enc_requests, enc_windows, runs, items), file=sys.stderr)

    def test_cancel_mid_stream_leaves_server_healthy(self):
        audio = speech(3.0, seed=9)
        feed = Feeder(cfg_msg())
        feed.put(*chunks(audio, 8000))
        call = SRV.v1.Stream(iter(feed), timeout=60)
        take(call, 2)
        call.cancel()
        feed.end()
        time.sleep(0.3)
        frames, _, _ = SRV.stream([cfg_msg()] + chunks(speech(1.0), 16000) + [ctl(CTL.CLOSE)])
        self.assertEqual(len(frames), ref_frames(16000))
        self.assertTrue(SRV.v1.GetStats(pb.GetStatsRequest(), timeout=10).serving)


class StreamLimits(unittest.TestCase):
    def test_session_limit_is_resource_exhausted(self):
        with Server("stream:\n  max_sessions: 2\n") as s:
            feeds, calls = [], []
            for _ in range(2):
                f = Feeder(cfg_msg())
                c = s.v1.Stream(iter(f), timeout=30)
                f.put(ctl(CTL.STATS))
                self.assertEqual(next(c).WhichOneof("msg"), "stats", "admitted session answers")
                feeds.append(f)
                calls.append(c)
            with self.assertRaises(grpc.RpcError) as e:
                s.stream([cfg_msg()])
            self.assertEqual(e.exception.code(), C.RESOURCE_EXHAUSTED)
            for f in feeds:
                f.put(ctl(CTL.CLOSE))
                f.end()
            for c in calls:
                list(c)
            s.stream([cfg_msg(), ctl(CTL.CLOSE)])  # a slot is free again

    def test_slow_reader_is_bounded_and_others_unaffected(self):
        # What lipsyncd holds for a client that stops reading: the session's queue (queue_limit
        # frames), one message in gRPC (the stream handler keeps one send outstanding, and gRPC
        # completes a send only once its bytes passed HTTP/2 flow control) and what fits the
        # client's window. Everything else is dropped and counted; memory does not grow with the
        # audio. RAW frames of 320x240 are 230,400 bytes: a 64 KiB window passes none whole.
        qlimit, window, frame_bytes = 16, 65536, W * H * 3
        with Server("stream:\n  queue_limit: %d\n" % qlimit) as s:
            fast_audio = speech(1.5, seed=12)
            ref = s.render_raw(fast_audio, avatar="small2")
            peaks = {}
            for seconds in (6.0, 20.0):
                slow_audio = speech(seconds, seed=11)
                # A client channel with a small, fixed HTTP/2 window: not reading then stops the server.
                slow_ch = grpc.insecure_channel(s.addr, options=NO_PROXY + [
                    ("grpc.http2.bdp_probe", 0), ("grpc.http2.lookahead_bytes", window)])
                self.addCleanup(slow_ch.close)
                slow = pbg.LipSyncStub(slow_ch).Stream(iter([cfg_msg()] + chunks(slow_audio, 16000) +
                                                             [ctl(CTL.FLUSH), ctl(CTL.CLOSE)]), timeout=90)
                if seconds == 6.0:
                    time.sleep(0.5)
                    frames, _, stats = s.stream([cfg_msg("small2")] + chunks(fast_audio, 1600) + [ctl(CTL.FLUSH), ctl(CTL.CLOSE)])
                    self.assertEqual(len(frames), len(ref), "the other session gets every frame")
                    self.assertTrue(all(f.data == r.data for f, r in zip(frames, ref)), "the other session is correct")
                    self.assertEqual(stats[-1].frames_dropped, 0)
                peaks[seconds] = wait_idle_peak_rss(s.proc.pid)  # the slow session computed everything
                got = [r for r in slow]
                sframes = [r.frame for r in got if r.WhichOneof("msg") == "frame"]
                sstats = [r.stats for r in got if r.WhichOneof("msg") == "stats"]
                L = ref_frames(len(slow_audio))
                bound = qlimit + 1 + window // frame_bytes + 2  # + 2: slack for frames made after reading resumes
                self.assertEqual(len(sframes) + sstats[-1].frames_dropped, L, "delivered + dropped = all frames")
                self.assertGreater(sstats[-1].frames_dropped, 0, "a reader that stops loses frames")
                self.assertLessEqual(len(sframes), bound, "%.0f s: delivered %d of %d: at most queue + 1 in gRPC + "
                                     "window" % (seconds, len(sframes), L))
                self.assertEqual([f.index for f in sframes], sorted(f.index for f in sframes), "in order")
                print("\n     slow reader, %.0f s: %d of %d frames delivered (bound %d), %d dropped, server peak RSS %d MiB"
                      % (seconds, len(sframes), L, bound, sstats[-1].frames_dropped, peaks[seconds] >> 10), file=sys.stderr)
            # 350 more frames (80 MB of RAW pixels) went through the 20 s session: held, they would
            # show; dropped, the peak stays within allocator noise.
            self.assertLess(peaks[20.0] - peaks[6.0], 32 << 10, "server RSS does not grow with the audio: "
                            "%d -> %d KiB" % (peaks[6.0], peaks[20.0]))


def wait_idle_peak_rss(pid, timeout_s=60):
    """Waits until the server's CPU time stops moving for 2 s (its sessions have nothing left to
    compute; 2 s so that a server merely starved of CPU by other tests is not taken for idle);
    returns the peak VmRSS (KiB) seen meanwhile."""
    def cpu():
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime, in ticks

    def rss():
        with open("/proc/%d/status" % pid) as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
    peak, last, still, end = rss(), cpu(), 0, time.time() + timeout_s
    time.sleep(1.0)
    while still < 8 and time.time() < end:
        time.sleep(0.25)
        now = cpu()
        still = still + 1 if now - last <= 1 else 0
        last, peak = now, max(peak, rss())
    return peak


if __name__ == "__main__":
    unittest.main(verbosity=2)
