"""test_avatar_cli.py - `lipsync avatar build` and `lipsync avatar info` end to end.

usage: test_avatar_cli.py LIPSYNC_EXE
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

LIPSYNC = sys.argv[1]
failures = 0


def check(cond, msg):
    global failures
    print("ok  " if cond else "FAIL", msg)
    failures += 0 if cond else 1


def run(*args):
    p = subprocess.run([LIPSYNC, "avatar", *map(str, args)], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def make_frames(d: Path, n, w, h):
    d.mkdir(parents=True)
    for i in range(n):
        img = np.full((h, w, 3), (30 * i) % 256, np.uint8)
        cv2.imwrite(str(d / f"{i + 1}.jpg"), img)  # unpadded, starting at 1 like SyncTalk_2D folders


def landmarks_for(boxes):
    """110 points per frame whose points 1, 31 and 52 give `boxes` under the landmark rule, written
    as floats with fractions that int() drops."""
    frames = []
    for x1, y1, x2, _ in boxes:
        pts = [[float(x1 + 5), float(y1 + 5)] for _ in range(110)]
        pts[1] = [x1 + 0.7, 0.0]
        pts[31] = [x2 + 0.2, 0.0]
        pts[52] = [0.0, y1 + 0.9]
        frames.append(pts)
    return frames


with tempfile.TemporaryDirectory() as t:
    t = Path(t)
    (t / "models").mkdir()
    unet, enc = t / "models" / "unet.onnx", t / "models" / "enc.onnx"
    unet.write_bytes(b"unet")
    enc.write_bytes(b"enc")

    # 1. From a frames folder plus crop_rects.json.
    make_frames(t / "in_frames", 5, 96, 64)
    boxes = [[10 + i, 8, 60 + i, 58] for i in range(5)]
    (t / "boxes.json").write_text(json.dumps(boxes))
    out = t / "pkgs" / "alice"
    (t / "pkgs").mkdir()
    rc, so, se = run("build", "--out", out, "--frames", t / "in_frames", "--boxes", t / "boxes.json",
                     "--unet", unet, "--encoder", enc, "--name", "Alice")
    check(rc == 0, f"build from frames exits 0 ({se.strip()})")
    m = json.loads((out / "manifest.json").read_text())
    check(m["name"] == "Alice" and m["fps"] == 25 and m["width"] == 96 and m["height"] == 64
          and m["frame_count"] == 5 and m["frames"] == "frames" and m["boxes"] == "crop_rects.json",
          f"manifest fields: {m}")
    check((out / m["unet"]).resolve() == unet.resolve() and (out / m["encoder"]).resolve() == enc.resolve(),
          f"model paths relative to the package: {m['unet']}, {m['encoder']}")
    check(not os.path.isabs(m["unet"]), "model paths are relative")
    check(all((out / "frames" / f"{i:04d}.jpg").read_bytes() == (t / "in_frames" / f"{i + 1}.jpg").read_bytes()
              for i in range(5)), "frames copied byte for byte as 0000.jpg..0004.jpg")
    check(json.loads((out / "crop_rects.json").read_text()) == boxes, "crop_rects.json holds the boxes")
    rc, so, se = run("info", out)
    check(rc == 0, f"info exits 0 ({se.strip()})")
    for want in ["name     Alice", "size     96x64", "frames   5", "fps      25", str(unet), "memory   "]:
        check(want in so, f"info shows {want!r}")

    # 2. From a video plus landmarks: boxes follow the landmark rule, the video is kept as is.
    video = t / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=128x96:rate=25",
                    "-frames:v", "10", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(video)], check=True)
    vboxes = [[20 + i, 10, 80 + i, 70] for i in range(10)]
    (t / "lm.json").write_text(json.dumps(landmarks_for(vboxes)))
    vout = t / "pkgs" / "bob"
    rc, so, se = run("build", "--out", vout, "--video", video, "--landmarks", t / "lm.json",
                     "--unet", unet, "--encoder", enc)
    check(rc == 0, f"build from video + landmarks exits 0 ({se.strip()})")
    m = json.loads((vout / "manifest.json").read_text())
    check(m["video"] == "source.mp4" and m["frame_count"] == 10 and m["name"] == "bob", f"manifest {m}")
    check((vout / "source.mp4").read_bytes() == video.read_bytes(), "video kept byte for byte")
    check(json.loads((vout / "crop_rects.json").read_text()) == vboxes,
          "boxes from landmarks: x1=int(p1.x), y1=int(p52.y), x2=int(p31.x), y2=y1+x2-x1")

    # 3. Errors: one clear message, a nonzero exit, nothing left behind.
    bad = t / "pkgs" / "bad"
    (t / "short.json").write_text(json.dumps(boxes[:4]))
    rc, so, se = run("build", "--out", bad, "--frames", t / "in_frames", "--boxes", t / "short.json",
                     "--unet", unet, "--encoder", enc)
    check(rc != 0 and "4 entries but the avatar has 5 frames" in se, f"box count mismatch: {se.strip()}")
    check(not bad.exists(), "failed build removes its output folder")
    (t / "outside.json").write_text(json.dumps(boxes[:2] + [[50, 8, 97, 58]] + boxes[3:]))
    rc, so, se = run("build", "--out", bad, "--frames", t / "in_frames", "--boxes", t / "outside.json",
                     "--unet", unet, "--encoder", enc)
    check(rc != 0 and "frame 2" in se and "outside" in se, f"box outside the image: {se.strip()}")
    rc, so, se = run("build", "--out", out, "--frames", t / "in_frames", "--boxes", t / "boxes.json",
                     "--unet", unet, "--encoder", enc)
    check(rc != 0 and "not empty" in se and (out / "manifest.json").exists(),
          f"refuses a non-empty output folder and leaves it alone: {se.strip()}")
    rc, so, se = run("build", "--out", bad, "--frames", t / "in_frames", "--boxes", t / "boxes.json",
                     "--encoder", enc)
    check(rc != 0 and "unet" in se.lower(), f"missing --unet: {se.strip()}")
    rc, so, se = run("build", "--out", bad, "--frames", t / "nope", "--boxes", t / "boxes.json",
                     "--unet", unet, "--encoder", enc)
    check(rc != 0 and "nope" in se and not bad.exists(), f"missing frames folder: {se.strip()}")
    rc, so, se = run("build", "--out", bad, "--video", t / "boxes.json", "--boxes", t / "boxes.json",
                     "--unet", unet, "--encoder", enc)
    check(rc != 0 and "boxes.json" in se and not bad.exists(), f"not a video: {se.strip()}")
    rc, so, se = run("build", "--out", bad, "--frames", t / "in_frames", "--video", video,
                     "--boxes", t / "boxes.json", "--unet", unet, "--encoder", enc)
    check(rc != 0 and "exactly one" in se, f"frames and video together: {se.strip()}")
    rc, so, se = run("build", "--bogus", "x")
    check(rc == 2 and "unknown option" in se, "unknown option -> usage, exit 2")
    rc, so, se = run("info", t / "missing")
    check(rc == 1 and "does not exist" in se, f"info on a missing folder: {se.strip()}")

print(f"{failures} failed")
sys.exit(1 if failures else 0)
