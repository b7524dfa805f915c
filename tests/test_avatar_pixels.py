"""test_avatar_pixels.py - avatar frames decode to exactly the pixels the reference reads with OpenCV.

The reference pipeline reads frames with cv2.imread (JPEG, PNG) or cv2.VideoCapture (video); the
visual path must start from the same BGR values, so frames are compared pixel by pixel.
usage: test_avatar_pixels.py AVATAR_DUMP_EXE
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

DUMP = sys.argv[1]
W, H = 97, 61  # odd sizes: exercise chroma edges and unaligned rows
failures = 0


def check(cond, msg):
    global failures
    if cond:
        print("ok  ", msg)
    else:
        failures += 1
        print("FAIL", msg)


def image(i):
    """A photo-like test image: gradients plus noise, so upsampling and IDCT details matter."""
    rng = np.random.default_rng(i)
    y, x = np.mgrid[0:H, 0:W]
    base = np.dstack([x * 2 + i * 10, y * 3, (x + y) * 1.5]).astype(np.float32)
    return np.clip(base + rng.normal(0, 25, (H, W, 3)), 0, 255).astype(np.uint8)


def package(d: Path, n, source, w=W, h=H):
    boxes = [[1, 1, w - 1, h - 1]] * n
    (d / "crop_rects.json").write_text(json.dumps(boxes))
    m = {"fps": 25, "width": w, "height": h, "frame_count": n, "boxes": "crop_rects.json",
         "unet": "u.onnx", "encoder": "e.onnx"}
    m.update(source)
    (d / "manifest.json").write_text(json.dumps(m))


def dump(d: Path):
    raw = d / "dump.raw"
    out = subprocess.run([DUMP, str(d), str(raw)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"avatar_dump failed: {out.stderr}")
    w, h, n = map(int, out.stdout.split())
    return np.fromfile(raw, np.uint8).reshape(n, h, w, 3)


def compare(got, want, what):
    diff = np.abs(got.astype(int) - want.astype(int))
    where = np.argwhere(diff > 0)
    check(got.shape == want.shape and where.size == 0,
          f"{what}: identical to OpenCV ({len(where)} values differ, max {diff.max()})")


with tempfile.TemporaryDirectory() as tmp:
    # Frames folder: JPEG at two qualities, grey and colour PNG, PNG with alpha (dropped by both).
    d = Path(tmp) / "frames_pkg"
    (d / "frames").mkdir(parents=True)
    writers = [
        ("0.jpg", lambda p, im: cv2.imwrite(p, im, [cv2.IMWRITE_JPEG_QUALITY, 92])),
        ("1.jpg", lambda p, im: cv2.imwrite(p, im, [cv2.IMWRITE_JPEG_QUALITY, 60])),
        ("2.png", lambda p, im: cv2.imwrite(p, im)),
        ("3.png", lambda p, im: cv2.imwrite(p, cv2.cvtColor(im, cv2.COLOR_BGR2GRAY))),
        ("4.png", lambda p, im: cv2.imwrite(p, np.dstack([im, np.full((H, W), 7, np.uint8)]))),
    ]
    for i, (name, write) in enumerate(writers):
        assert write(str(d / "frames" / name), image(i))
    package(d, len(writers), {"frames": "frames"})
    got = dump(d)
    for i, (name, _) in enumerate(writers):
        compare(got[i], cv2.imread(str(d / "frames" / name), cv2.IMREAD_COLOR), f"frame {name}")

    # Video: H.264 4:2:0 (what real avatar videos are), read back by cv2.VideoCapture.
    v = Path(tmp) / "video_pkg"
    v.mkdir()
    src = v / "source.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=size=98x62:rate=25", "-frames:v", "6",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(src)], check=True)
    cap = cv2.VideoCapture(str(src))
    want = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        want.append(frame)
    package(v, len(want), {"video": "source.mp4"}, 98, 62)
    got = dump(v)
    check(len(want) == 6 and got.shape[0] == 6, f"video: 6 frames ({got.shape[0]} vs OpenCV {len(want)})")
    for i in range(min(len(want), got.shape[0])):
        compare(got[i], want[i], f"video frame {i}")

print(f"{failures} failed")
sys.exit(1 if failures else 0)
