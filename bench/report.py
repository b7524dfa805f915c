#!/usr/bin/env python3
"""report.py - merges the benchmark parts into one results JSON and prints it as one table.

  report.py --out RESULTS.json --cpu MODEL --cores N --commit SHA --dirty true|false PART.json...
  report.py --print RESULTS.json          (the table of an existing results file)

Each part is {"figures": [{group, name, label, variant, resolution, unit, median, min, max, runs}]}.
The table ends with issue 5's targets beside the measured figures (information, not a test)."""
import argparse
import datetime
import json
import sys

GROUPS = [("stage", "Per stage, per frame (one thread)"), ("unet", "UNet (ONNX Runtime)"),
          ("e2e", "End to end: offline renderer (pipe_clip_features + pipe_render + JPEG)"),
          ("ratio", "Ratios (same run)"), ("alloc", "Heap allocations per warm render"),
          ("memory", "Memory and sizes"), ("load", "Load-time costs"), ("server", "lipsyncd over gRPC")]


def fig(figs, name):
    return next((f for f in figs if f["name"] == name), None)


def targets(figs):
    """(target, measured text, met) rows for the figures issue 5 sets targets for."""
    rows = []

    def add(text, name, ok, fmt="{:.3f}"):
        f = fig(figs, name)
        if f:
            rows.append((text, fmt.format(f["median"]) + " " + f["unit"], "yes" if ok(f["median"]) else "NO"))

    for res, limit in (("1280x720", 0.5), ("1920x1080", 1.0)):
        p, s, j = (fig(figs, f"{k}_{res}") for k in ("prep_cached", "paste", "jpeg_splice"))
        if p and s and j:
            v = p["median"] + s["median"] + j["median"]
            rows.append((f"prep + paste + JPEG <= {limit} ms at {res}", f"{v:.3f} ms/frame",
                         "yes" if v <= limit else "NO"))
        add(f"... with the region restore render makes, <= {limit} ms at {res}", f"cpu_opt_{res}",
            lambda v, l=limit: v <= l)
        add(f"incremental JPEG >= 10x TurboJPEG at {res}", f"speedup_jpeg_{res}", lambda v: v >= 10, "{:.1f}")
    add("audio front end <= 20 us per frame", "audio_front", lambda v: v <= 20, "{:.1f}")
    for b in (8, 25):
        add(f"end to end >= 0.95 x UNet-only at batch {b}", f"e2e_ratio_b{b}", lambda v: v >= 0.95)
        add(f"... pipelined, >= 0.95 x UNet-only at batch {b}", f"e2e_ratio_pipelined_b{b}", lambda v: v >= 0.95)
    add("lipsyncd RSS flat within 1% over 10,000 requests", "srv_rss_growth", lambda v: abs(v) <= 1, "{:.2f}")
    return rows


def print_table(doc):
    m = doc["meta"]
    figs = doc["figures"]
    print(f"lipsyncd benchmarks - {m['date']} - commit {m['commit']}{' (dirty)' if m['dirty'] else ''}")
    print(f"CPU: {m['cpu']} ({m['cores']} cores)")
    head = f"{'figure':<50} {'res':<10} {'median':>11} {'min':>11} {'max':>11}  {'unit':<16} runs"
    for g, title in GROUPS:
        rows = [f for f in figs if f["group"] == g]
        if not rows:
            continue
        print(f"\n{title}\n{head}\n{'-' * len(head)}")
        for f in rows:
            one = f["runs"] == 1 and f["min"] == f["max"]
            lo, hi = ("", "") if one else (f"{f['min']:11.4g}", f"{f['max']:11.4g}")
            print(f"{f['label'][:50]:<50} {f['resolution'][:10]:<10} {f['median']:11.4g} {lo:>11} {hi:>11}"
                  f"  {f['unit']:<16} {f['runs']}")
    best = fig(figs, "unet_best_batch")
    if best:  # issue 5: "the best batch size measured, not guessed"
        b = int(best["median"])
        fps = fig(figs, f"unet_fps_b{b}")
        aff = fig(figs, "speedup_affinity_b8")
        print(f"\nUNet batch size measured: best {b}" + (f" ({fps['median']:.2f} frames/s)" if fps else "") +
              (f"; thread affinity at batch 8, not pinned / pinned: {aff['median']:.3f}x" if aff else ""))
    rows = targets(figs)
    if rows:
        print(f"\nIssue 5 targets (medians)\n{'target':<62} {'measured':<22} met\n{'-' * 90}")
        for t, v, ok in rows:
            print(f"{t:<62} {v:<22} {ok}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--print", dest="show")
    ap.add_argument("--cpu", default="unknown")
    ap.add_argument("--cores", type=int, default=0)
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--dirty", default="false")
    ap.add_argument("parts", nargs="*")
    a = ap.parse_args()
    if a.show:
        with open(a.show) as f:
            print_table(json.load(f))
        return 0
    if not a.out:
        ap.error("--out or --print is needed")
    figs = []
    for p in a.parts:
        with open(p) as f:
            figs += json.load(f)["figures"]
    doc = {"meta": {"date": datetime.datetime.now().isoformat(timespec="seconds"), "commit": a.commit,
                    "dirty": a.dirty == "true", "cpu": a.cpu, "cores": a.cores},
           "figures": figs}
    with open(a.out, "w") as f:
        json.dump(doc, f, indent=1)
    print_table(doc)
    print(f"\nwrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
