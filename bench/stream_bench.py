#!/usr/bin/env python3
"""stream_bench.py BUILD PART.json [--quick] - live sessions (lipsync.v1.LipSync/Stream) measured with
`lipsync client stream` as the client, over loopback. Called by bench/run.sh (its own section).

1. Demo models (tiny random UNet and encoder), demo avatar, realtime pacing, 20 ms chunks sent on the
   wall clock: first-frame latency (first audio chunk sent -> first generated frame received),
   frame-interval jitter (|interval - 40 ms|, p50/p99 over every frame of the session), then the
   number of concurrent realtime sessions sustained without drops: 1, 2, 4, 8, 16 sessions until
   one drops a frame (server `frames_dropped` or a missing index) or the cap (16) is reached.
2. The full-size UNet (BUILD/models/unet328.onnx, random weights, in an avatar package made here
   around the demo avatar's frames): frames/s for 1, 4 and 8 concurrent burst sessions on two
   servers started side by side, stream.max_batch 8 (batching across sessions) and 1 (none),
   alternated per session count so that load from other processes hits both alike.
3. Demo models, 8 concurrent burst sessions: the live-session scheduler pipelined (capacity.pipeline,
   the default with cuda) against serial, two servers alternated, 3 repetitions.
Writes {"figures": [...]} (report.py's part format, group "server"). Nothing passes or fails."""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BUILD, OUT = os.path.abspath(sys.argv[1]), sys.argv[2]
QUICK = "--quick" in sys.argv[3:]
LIPSYNC, LIPSYNCD = os.path.join(BUILD, "lipsync"), os.path.join(BUILD, "lipsyncd")
MODELS = os.path.join(BUILD, "models")
ENV = dict(os.environ, no_proxy="*", NO_PROXY="*")
TMP = tempfile.mkdtemp(prefix="stream-bench-")
CAP = 16
FIGS = []


def log(msg):
    print("stream bench: " + msg, file=sys.stderr, flush=True)


def fig(name, label, unit, values):
    values = [float(v) for v in values]
    FIGS.append({"group": "server", "name": name, "label": label, "variant": "", "resolution": "",
                 "unit": unit, "median": statistics.median(values), "min": min(values),
                 "max": max(values), "runs": len(values)})


def clip(seconds, name):
    """espeak-ng speech as 16 kHz mono WAV, cut to `seconds`."""
    raw, path = os.path.join(TMP, name + "-raw.wav"), os.path.join(TMP, name + ".wav")
    text = ("Live avatars push audio as it is produced and need frames back at twenty five frames "
            "per second with low and steady latency, so the server streams them.")
    subprocess.run(["espeak-ng", "-w", raw, text], check=True, timeout=60)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", raw, "-t", str(seconds), "-ac", "1", "-ar", "16000",
                    "-c:a", "pcm_s16le", path], check=True, timeout=60)
    return path


class Server:
    def __init__(self, name, yaml):
        self.config = os.path.join(TMP, name + ".yaml")
        self.log_path = self.config + ".log"
        with open(self.config, "w") as f:
            f.write("server:\n  listen: 127.0.0.1:0\n  shutdown_grace_s: 1\n" + yaml)

    def __enter__(self):
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen([LIPSYNCD, "--config", self.config], stdout=self.log, stderr=self.log)
        deadline = time.time() + 60
        while time.time() < deadline:
            with open(self.log_path) as f:
                m = re.search(r"listening on [^ ]*:(\d+)", f.read())
            if m:
                self.addr = "127.0.0.1:" + m.group(1)
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.proc.kill()
        raise SystemExit("stream bench: lipsyncd did not start (see %s)" % self.log_path)

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()
        self.log.close()


def parse(out):
    """The figures of one `lipsync client stream` report."""
    r = {}
    m = re.search(r"frames: (\d+) received \((\d+) generated, (\d+) idle\), (\d+) missing", out)
    if m:
        r["frames"], r["generated"], r["idle"], r["missing"] = map(int, m.groups())
    m = re.search(r"first-frame latency: ([\d.]+) ms", out)
    if m:
        r["latency"] = float(m.group(1))
    m = re.search(r"jitter: p50 ([\d.]+) ms, p99 ([\d.]+) ms", out)
    if m:
        r["jitter_p50"], r["jitter_p99"] = map(float, m.groups())
    m = re.search(r"dropped (\d+) late (\d+); unet jobs \d+, runs (\d+) \((\d+) frames, (\d+) overlapped\)", out)
    if m:
        r["dropped"], r["late"], r["unet_runs"], r["unet_items"], r["unet_overlapped"] = map(int, m.groups())
    m = re.search(r"encoder requests \d+ \(\d+ windows\), runs (\d+) \((\d+) windows, (\d+) shared\)", out)
    if m:
        r["enc_runs"], r["enc_windows"], r["enc_shared"] = map(int, m.groups())
    return r


def lost(r):
    """Frames a session lost: the server's count, or the indices missing at the client if more (a
    frame the server drops is also a missing index: not added)."""
    return max(r["dropped"], r["missing"])


def sessions(srv, n, avatar, audio, *args):
    """n concurrent clients; returns (wall seconds, [parsed report or None per client])."""
    cmd = [LIPSYNC, "client", "stream", "--server", srv.addr, "--avatar", avatar, "--audio", audio,
           "--timeout-ms", "120000"] + list(args)
    t0 = time.monotonic()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for _ in range(n)]
    res = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        if p.returncode != 0:
            log("client failed (%d): %s" % (p.returncode, err.strip()))
        res.append(parse(out) if p.returncode == 0 else None)
    return time.monotonic() - t0, res


def demo_part(speech):
    yaml = ("avatars_root: %s\nstream:\n  max_sessions: %d\n  max_sessions_per_model: %d\n  max_batch: 8\n"
            % (os.path.join(BUILD, "avatars"), CAP, CAP))
    with Server("demo", yaml) as srv:
        sessions(srv, 1, "demo", speech, "--chunk-ms", "200")  # loads the avatar
        runs = [sessions(srv, 1, "demo", speech, "--realtime", "--chunk-ms", "20")[1][0] for _ in range(1 if QUICK else 3)]
        runs = [r for r in runs if r and "latency" in r]
        if runs:
            # Labels: the table prints 50 characters. rt = realtime pacing, 20 ms chunks on the clock.
            fig("stream_first_frame_ms", "stream rt 1x: first-frame latency [demo]", "ms", [r["latency"] for r in runs])
            fig("stream_jitter_p50_ms", "stream rt 1x: |interval-40ms| p50 [demo]", "ms", [r["jitter_p50"] for r in runs])
            fig("stream_jitter_p99_ms", "stream rt 1x: |interval-40ms| p99 [demo]", "ms", [r["jitter_p99"] for r in runs])
            fig("stream_rt_drops_default_stats", "stream rt 1x: dropped/session, 1 s stats [demo]", "frames",
                [lost(r) for r in runs])
            log("realtime 1 session: " + "; ".join("latency %.0f ms, jitter p50 %.2f p99 %.1f ms, dropped %d"
                                                    % (r["latency"], r["jitter_p50"], r["jitter_p99"], r["dropped"])
                                                    for r in runs))
        best, n = 0, 1
        while n <= CAP:
            _, res = sessions(srv, n, "demo", speech, "--realtime", "--chunk-ms", "20", "--stats-ms", "600000")
            ok = [r for r in res if r and "dropped" in r]
            drops = sum(lost(r) for r in ok) + (n - len(ok)) * 1000
            late = sum(r["late"] for r in ok)
            p99 = max((r["jitter_p99"] for r in ok), default=0)
            log("realtime %2d sessions: %d dropped, %d late, worst jitter p99 %.1f ms" % (n, drops, late, p99))
            fig("stream_rt_n%d_jitter_p99_ms" % n, "stream rt %dx: worst jitter p99 [demo]" % n, "ms", [p99])
            fig("stream_rt_n%d_dropped" % n, "stream rt %dx: frames dropped [demo]" % n, "frames", [drops])
            if drops:
                break
            best, n = n, n * 2
        fig("stream_rt_sessions_no_drops", "stream rt sessions without drops, cap %d [demo]" % CAP,
            "sessions", [best])


def full_part(short):
    unet = os.path.join(MODELS, "unet328.onnx")
    demo = os.path.join(BUILD, "avatars", "demo")
    if not os.path.exists(unet) or not os.path.isdir(demo):
        log("full UNet part skipped: needs %s and %s" % (unet, demo))
        return
    root = os.path.join(TMP, "avatars")
    av = os.path.join(root, "full")
    os.makedirs(av)
    with open(os.path.join(demo, "manifest.json")) as f:
        man = json.load(f)
    os.symlink(os.path.join(demo, man["frames"]), os.path.join(av, "frames"))
    os.symlink(os.path.join(demo, man["boxes"]), os.path.join(av, "boxes.json"))
    enc = os.path.join(MODELS, "ave_encoder.onnx")
    man.update(name="full", frames="frames", boxes="boxes.json", unet=unet,
               encoder=enc if os.path.exists(enc) else os.path.join(MODELS, "demo_encoder.onnx"))
    with open(os.path.join(av, "manifest.json"), "w") as f:
        json.dump(man, f)
    common = "avatars_root: %s\nonnx:\n  intra_op_threads: 2\nstream:\n  max_sessions_per_model: 8\n" % root
    with Server("batch8", common + "  max_batch: 8\n") as on, Server("batch1", common + "  max_batch: 1\n") as off:
        for srv in (on, off):
            sessions(srv, 1, "full", short, "--chunk-ms", "1000")  # loads the model and the avatar
        for n in (1, 4, 8):
            for srv, tag in ((on, "on"), (off, "off")):
                wall, res = sessions(srv, n, "full", short, "--chunk-ms", "1000")
                ok = [r for r in res if r and "frames" in r]
                frames = sum(r["frames"] for r in ok)
                runs = max((r["unet_runs"] for r in ok), default=0)
                items = max((r["unet_items"] for r in ok), default=0)
                fps = frames / wall
                log("unet328 burst, %d sessions, batching %s: %d frames in %.1f s = %.2f frames/s (%s)"
                    % (n, tag, frames, wall, fps, "%d failed" % (n - len(ok)) if len(ok) < n else "all ok"))
                lab = "stream burst %dx, max_batch %s" % (n, "8" if tag == "on" else "1")
                fig("stream_unet328_n%d_batch_%s_fps" % (n, tag), lab + ": frames/s [unet328]", "frames/s", [fps])
                if runs:  # the scheduler lives while the group's sessions do: its runs are the group's
                    fig("stream_unet328_n%d_batch_%s_frames_per_run" % (n, tag), lab + ": frames/run [unet328]",
                        "frames", [items / runs])
                enc_runs = max((r.get("enc_runs", 0) for r in ok), default=0)
                enc_windows = max((r.get("enc_windows", 0) for r in ok), default=0)
                if enc_runs:  # the encoder batcher, likewise
                    fig("stream_unet328_n%d_batch_%s_encoder_windows_per_run" % (n, tag),
                        lab + ": encoder windows/run", "windows", [enc_windows / enc_runs])


def pipeline_part(speech):
    """Burst sessions on the demo models through a pipelined scheduler (capacity.pipeline: the
    default with cuda) and a serial one, two servers side by side, alternated per repetition."""
    yaml = ("avatars_root: %s\nstream:\n  max_sessions: %d\n  max_sessions_per_model: %d\n  max_batch: 8\n"
            % (os.path.join(BUILD, "avatars"), CAP, CAP))
    n, fps = 8, {"on": [], "off": []}
    with Server("pipe_on", yaml + "capacity:\n  pipeline: true\n") as on, \
            Server("pipe_off", yaml + "capacity:\n  pipeline: false\n") as off:
        for srv in (on, off):
            sessions(srv, 1, "demo", speech, "--chunk-ms", "1000")  # loads the avatar
        for _ in range(1 if QUICK else 3):
            for srv, tag in ((on, "on"), (off, "off")):
                wall, res = sessions(srv, n, "demo", speech, "--chunk-ms", "1000")
                ok = [r for r in res if r and "frames" in r]
                fps[tag].append(sum(r["frames"] for r in ok) / wall)
                log("demo burst %d sessions, pipeline %s: %.1f frames/s, %d of %d runs overlapped"
                    % (n, tag, fps[tag][-1], max((r.get("unet_overlapped", 0) for r in ok), default=0),
                       max((r.get("unet_runs", 0) for r in ok), default=0)))
    for tag in ("on", "off"):
        fig("stream_demo_n%d_pipeline_%s_fps" % (n, tag), "stream burst %dx, %s sched: frames/s [demo]"
            % (n, "pipelined" if tag == "on" else "serial"), "frames/s", fps[tag])
    fig("stream_demo_n%d_pipeline_speedup" % n, "stream burst %dx: pipelined/serial [demo]" % n, "x",
        [a / b for a, b in zip(fps["on"], fps["off"])])


def main():
    if not (os.access(LIPSYNC, os.X_OK) and os.access(LIPSYNCD, os.X_OK)):
        log("skipped: needs %s and %s" % (LIPSYNC, LIPSYNCD))
        return
    try:
        t0 = time.monotonic()
        demo_part(clip(2.0 if QUICK else 3.0, "speech"))
        pipeline_part(clip(8.0, "speech8"))
        full_part(clip(0.6 if QUICK else 1.0, "short"))
        log("done in %.0f s" % (time.monotonic() - t0))
    finally:
        with open(OUT, "w") as f:
            json.dump({"figures": FIGS}, f, indent=1)
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
