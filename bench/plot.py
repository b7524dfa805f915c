#!/usr/bin/env python3
"""plot.py RESULTS.json OUT.png - per-stage chart of a bench/run.sh results file.

Left: the CPU work around the UNet per frame (one thread), naive against optimised, at 1280x720 and
1920x1080. Right: every stage's cost per frame on a log scale, UNet included, so the share of the
work that is not the model is visible. Needs Debian's python3-matplotlib."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    with open(src) as f:
        doc = json.load(f)
    figs = {f["name"]: f for f in doc["figures"]}
    m = doc["meta"]

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, 6.5), gridspec_kw={"width_ratios": [1.1, 1]})
    stages = [("input prep", "prep", "prep_cached"), ("frame copy", "frame_copy", "frame_copy_region"),
              ("paste-back", "paste_naive", "paste"), ("JPEG", "jpeg_tj", "jpeg_splice"),
              ("all of it", "cpu_naive", "cpu_opt")]
    width, y = 0.2, list(range(len(stages)))
    bars = [("1280x720", 0, "naive", "#e8a39a"), ("1280x720", 1, "optimised", "#c0392b"),
            ("1920x1080", 0, "naive", "#9fc5e8"), ("1920x1080", 1, "optimised", "#1f5f99")]
    for k, (res, opt, what, colour) in enumerate(bars):
        vals, errs = [], [[], []]
        for _, naive, best in stages:
            f = figs.get(f"{best if opt else naive}_{res}")
            v = f["median"] if f else 0
            vals.append(v)
            errs[0].append(v - f["min"] if f else 0)
            errs[1].append(0)
        pos = [i + (k - 1.5) * width for i in y]
        ax1.barh(pos, vals, height=width, color=colour, xerr=errs, capsize=2, label=f"{res} {what}")
        for p, v in zip(pos, vals):
            ax1.text(v, p, f" {v:.2f}", va="center", fontsize=7)
    ax1.set_yticks(y, [s[0] for s in stages])
    ax1.invert_yaxis()
    ax1.set_xlabel("ms per frame, one thread (median; bar to min)")
    ax1.set_title("CPU work around the UNet: naive vs optimised")
    ax1.axvline(0.5, color="grey", ls=":", lw=1)
    ax1.text(0.5, len(stages) - 0.4, " 0.5 ms target (720p)", color="grey", fontsize=7)
    ax1.legend(fontsize=8, loc="center right")

    rows = [("audio front end (mel + windows)", "audio_front", 1e-3), ("audio encoder", "encoder", 1),
            ("input prep (cached, 720p)", "prep_cached_1280x720", 1), ("paste-back (720p)", "paste_1280x720", 1),
            ("region restore (720p)", "frame_copy_region_1280x720", 1), ("JPEG splice (720p)", "jpeg_splice_1280x720", 1),
            ("JPEG TurboJPEG full (720p)", "jpeg_tj_1280x720", 1), ("UNet batch 1", "unet_b1", 1),
            ("UNet batch 8", "unet_b8", 1), ("UNet batch 25", "unet_b25", 1),
            ("UNet batch 8, ORT defaults", "unet_b8_default", 1)]
    rows = [(lab, figs[k]["median"] * s) for lab, k, s in rows if k in figs]
    colours = ["#7f8c8d" if "UNet" in lab else "#27ae60" for lab, _ in rows]
    ax2.barh(range(len(rows)), [v for _, v in rows], color=colours)
    for i, (_, v) in enumerate(rows):
        ax2.text(v, i, f" {v:.3g}", va="center", fontsize=7)
    ax2.set_xscale("log")
    ax2.set_yticks(range(len(rows)), [lab for lab, _ in rows])
    ax2.invert_yaxis()
    ax2.set_xlabel("ms per frame (median, log scale)")
    r8, r25 = figs.get("e2e_ratio_b8"), figs.get("e2e_ratio_b25")
    ratio = "" if not (r8 and r25) else \
        f"\nend to end / UNet-only: {r8['median']:.3f} (batch 8), {r25['median']:.3f} (batch 25)"
    ax2.set_title("Where the time goes per frame" + ratio, fontsize=10)
    fig.suptitle(f"lipsyncd stages - {m['cpu']} ({m['cores']} cores) - commit {m['commit']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(dst, dpi=110)
    print(f"wrote {dst}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: plot.py RESULTS.json OUT.png")
    main(sys.argv[1], sys.argv[2])
