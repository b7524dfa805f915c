"""test_demo_avatar.py - the generated demo avatar (build/avatars/demo) is a valid, loadable package:
250 frames of 1280x720 JPEG at 25 fps, square boxes inside the frame that move smoothly, and the
model paths of the demo models.

usage: test_demo_avatar.py LIPSYNC_EXE BUILD_DIR
"""
import json
import subprocess
import sys
from pathlib import Path

import cv2

LIPSYNC, BUILD = sys.argv[1], Path(sys.argv[2])
DEMO = BUILD / "avatars" / "demo"
failures = 0


def check(cond, msg):
    global failures
    print("ok  " if cond else "FAIL", msg)
    failures += 0 if cond else 1


m = json.loads((DEMO / "manifest.json").read_text())
check(m == {"name": "demo", "fps": 25, "width": 1280, "height": 720, "frame_count": 250,
            "frames": "frames", "boxes": "crop_rects.json",
            "unet": "../../models/demo_unet.onnx", "encoder": "../../models/demo_encoder.onnx"},
      f"manifest: {m}")
frames = sorted((DEMO / "frames").glob("*.jpg"))
check([f.name for f in frames] == [f"{i:04d}.jpg" for i in range(250)], "frames 0000.jpg .. 0249.jpg")
sizes = [f.stat().st_size for f in frames]
check(max(sizes) < 250_000, f"JPEG frames stay small (largest {max(sizes)} bytes)")
first = cv2.imread(str(frames[0]))
check(first is not None and first.shape == (720, 1280, 3), "frames are 1280x720 colour JPEG")

boxes = json.loads((DEMO / "crop_rects.json").read_text())
check(len(boxes) == 250, "one box per frame")
check(all(x2 - x1 == y2 - y1 > 100 for x1, y1, x2, y2 in boxes), "boxes are square and face-sized")
check(all(0 <= x1 < x2 <= 1280 and 0 <= y1 < y2 <= 720 for x1, y1, x2, y2 in boxes), "boxes inside the frame")
steps = [max(abs(a - b) for a, b in zip(p, q)) for p, q in zip(boxes, boxes[1:] + boxes[:1])]
check(max(steps) <= 3, f"boxes move smoothly, also across the loop (largest step {max(steps)} px)")
check(len({tuple(b) for b in boxes}) > 50, "boxes follow the head motion")

p = subprocess.run([LIPSYNC, "avatar", "info", str(DEMO)], capture_output=True, text=True)
check(p.returncode == 0 and "frames   250" in p.stdout and "1280x720" in p.stdout,
      f"lipsync avatar info loads it ({p.stderr.strip()})")

print(f"{failures} failed")
sys.exit(1 if failures else 0)
