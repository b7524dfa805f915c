#!/usr/bin/env python3
"""lipsyncd_bench.py BUILD_DIR OUT.json [--quick] - lipsyncd over gRPC on loopback (not a test).

Starts BUILD_DIR/lipsyncd on the build's demo avatar WITH THE DEMO MODELS (tiny random UNet and
encoder: the full UNet takes ~50-80 ms per frame here and would hide everything else), drives it
with `lipsync client bench` and writes bench_stages-style figures (group "server"):
  - frames/s and client latency p50/p99 per batch of 8 frames under 1, 2 and 4 concurrent clients
    (each figure the median, min and max of repeated runs);
  - protobuf/gRPC overhead per frame: client latency minus the server's own total per request
    (which covers audio, render and encode), p50 of each, at batch 2 and batch 8 (batch 1 carries too little audio for v1);
  - heap allocations per warm request: needs BUILD_DIR/lipsyncd_alloccount; skipped with a
    message when that build does not exist;
  - RSS of the server before and after 10,000 two-frame requests (reported, not asserted).
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

BUILD, OUT = sys.argv[1], sys.argv[2]
QUICK = "--quick" in sys.argv[3:]
LIPSYNCD, LIPSYNC = os.path.join(BUILD, "lipsyncd"), os.path.join(BUILD, "lipsync")
figures = []
LABEL = " [demo models]"


def add(name, label, unit, values, variant="", res="1280x720"):
    v = sorted(values)
    figures.append({"group": "server", "name": name, "label": label + LABEL, "variant": variant,
                    "resolution": res, "unit": unit, "median": v[len(v) // 2], "min": v[0], "max": v[-1],
                    "runs": len(v)})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def client(addr, cmd, *args, timeout=600):
    r = subprocess.run([LIPSYNC, "client", cmd, "--server", addr, *args], capture_output=True, text=True,
                       timeout=timeout, env=dict(os.environ, no_proxy="*", NO_PROXY="*"))
    return r


def bench(addr, audio, threads, requests, batch):
    r = client(addr, "bench", "--avatar", "demo", "--audio", audio, "--threads", str(threads),
               "--requests", str(requests), "--batch", str(batch))
    if r.returncode != 0:
        raise SystemExit(f"lipsync client bench failed: {r.stderr.strip()}")
    out = r.stdout
    num = lambda pat: float(re.search(pat, out).group(1))
    return {"fps": num(r"throughput: ([\d.]+) frames/s"), "p50": num(r"\(client\): p50 ([\d.]+) ms"),
            "p99": num(r"\(client\): p50 [\d.]+ ms, p99 ([\d.]+) ms"),
            "srv_p50": num(r"server total per request:\s+p50 ([\d.]+) ms")}


def main():
    tmp = tempfile.mkdtemp(prefix="lipsyncd-bench-")
    audio = os.path.join(tmp, "speech.npy")
    t = np.arange(16000 * 10) / 16000.0
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    x = 0.3 * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) * (np.sin(2 * np.pi * f0 * t) + 0.5 * np.sin(4 * np.pi * f0 * t))
    np.save(audio, x.astype(np.float32))
    port = free_port()
    addr = f"127.0.0.1:{port}"
    cfg = os.path.join(tmp, "lipsyncd.yaml")
    with open(cfg, "w") as f:
        f.write(f"server:\n  listen: \"{addr}\"\n  worker_count: 2\n"
                f"avatars_root: {os.path.join(os.path.abspath(BUILD), 'avatars')}\n"
                "capacity:\n  max_batch: 8\nonnx:\n  intra_op_threads: 1\nlogging:\n  level: error\n")
    srv = subprocess.Popen([LIPSYNCD, "--config", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):  # wait until it serves, and load the avatar (caches built at load)
            if client(addr, "load", "--avatar", "demo", timeout=120).returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise SystemExit("lipsyncd did not start")
        reps = 1 if QUICK else 3
        requests = 10 if QUICK else 25
        bench(addr, audio, 2, 4, 8)  # warm-up: every worker binds the models, sizes ORT's arena
        for n in (1, 2, 4):
            runs = [bench(addr, audio, n, requests, 8) for _ in range(reps)]
            add(f"srv_fps_c{n}", f"lipsyncd, {n} client(s), batch 8: throughput", "frames/s", [r["fps"] for r in runs])
            add(f"srv_p50_c{n}", f"lipsyncd, {n} client(s): latency per batch p50", "ms", [r["p50"] for r in runs])
            add(f"srv_p99_c{n}", f"lipsyncd, {n} client(s): latency per batch p99", "ms", [r["p99"] for r in runs])
        for batch in (2, 8):
            runs = [bench(addr, audio, 1, 4 * requests, batch) for _ in range(reps)]
            add(f"srv_overhead_b{batch}", f"protobuf/gRPC per frame (client - server total, batch {batch})",
                "ms/frame", [(r["p50"] - r["srv_p50"]) / batch for r in runs])
        alloc = os.path.join(BUILD, "lipsyncd_alloccount")
        if not os.access(alloc, os.X_OK):
            print(f"allocations per warm request skipped: {alloc} does not exist", file=sys.stderr)
        else:
            print(f"allocations per warm request: {alloc} exists but this script does not drive it yet",
                  file=sys.stderr)
        n_req = 1000 if QUICK else 10000
        bench(addr, audio, 4, 100, 2)
        before = rss_kb(srv.pid)
        t0 = time.time()
        bench(addr, audio, 4, n_req // 4, 2)
        after = rss_kb(srv.pid)
        print(f"RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB over {n_req} requests "
              f"({time.time() - t0:.0f} s)", file=sys.stderr)
        add("srv_rss_before", "lipsyncd RSS after warm-up", "MiB", [before / 1024])
        add("srv_rss_after", f"lipsyncd RSS after {n_req} more two-frame requests", "MiB", [after / 1024])
        add("srv_rss_growth", f"lipsyncd RSS growth over {n_req} requests", "%", [100.0 * (after - before) / before])
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(timeout=30)
        except subprocess.TimeoutExpired:
            srv.kill()
    import json
    with open(OUT, "w") as f:
        json.dump({"figures": figures}, f, indent=1)


if __name__ == "__main__":
    main()
