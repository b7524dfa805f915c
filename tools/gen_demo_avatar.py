#!/usr/bin/python3
"""gen_demo_avatar.py - builds the demo avatar package from NASA's public-domain astronaut portrait.

The portrait (skimage/data/astronaut.png, Eileen Collins, NASA) comes from Debian's python3-skimage
package: the .deb is fetched with `apt-get download` into a cache folder and only that one file is
extracted (the package is never installed). The portrait is animated with a gentle, smooth head
motion (translation, rotation, scale; every term periodic over the 10 s clip so it loops), rendered
at 1280x720 on a soft background, and written as frames/NNNN.jpg + crop_rects.json + manifest.json.

The face box follows the motion and obeys the demo model's contract: after cropping the box,
resizing it to 328x328 and taking [4:324, 4:324], the astronaut's mouth is centred at (160, 120) of
that 320x320 image, matching the ellipse (semi-axes 64 x 34) the demo UNet redraws. The box is square
and spans the face from temple to temple with its top near the nose bridge, as SyncTalk_2D's
landmark boxes do.

usage: gen_demo_avatar.py --out DIR --cache DIR [--astronaut PNG] [--check-dir DIR]
"""
import argparse
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np

W, H, FPS, SECONDS = 1280, 720, 25, 10
MEMBER = "./usr/lib/python3/dist-packages/skimage/data/astronaut.png"

# Measured on the 512x512 portrait (zoomed views): mouth corners at x 203 and 243, lips y 137..152.
MOUTH = (223.0, 144.5)
# Box side in portrait pixels: the temples are ~100 px apart; 104 makes the 40 px smile span the
# ellipse's 128 px (of 328) width, as the mouth does in real SyncTalk_2D crops.
BOX_SRC = 104.0
# Contract: mouth centre at (160, 120) of the 320x320 crop = (164, 124) of the 328x328 resize.
MOUTH_U, MOUTH_V = 164.0 / 328.0, 124.0 / 328.0
ELLIPSE = ((160, 120), (64, 34))

BASE_SCALE = 1.36                  # portrait 512 px -> ~696 px tall on the 720 px canvas
PIVOT_SRC = (225.0, 230.0)         # the neck: the head turns about it
PIVOT_DST = (W * 0.5, 350.0)       # where the neck sits on the canvas
FEATHER = 72                       # px of soft edge around the portrait


def fetch_astronaut(cache: Path) -> Path:
    """astronaut.png from the python3-skimage .deb, downloaded once into `cache`."""
    png = cache / "astronaut.png"
    if png.exists():
        return png
    installed = Path("/") / MEMBER  # the same file, if python3-skimage happens to be installed
    if installed.exists():
        return installed
    cache.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache.glob("python3-skimage_*.deb"))
    if not debs:
        try:
            subprocess.run(["apt-get", "download", "python3-skimage"], cwd=cache, check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            sys.exit(f"gen_demo_avatar: cannot download python3-skimage ({e}); put astronaut.png "
                     f"into {cache} or pass --astronaut FILE")
        debs = sorted(cache.glob("python3-skimage_*.deb"))
    if not debs:
        sys.exit("gen_demo_avatar: apt-get download python3-skimage gave no .deb")
    data = subprocess.run(["dpkg", "--fsys-tarfile", str(debs[-1])], check=True,
                          stdout=subprocess.PIPE).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        blob = tar.extractfile(MEMBER).read()
    tmp = png.with_suffix(".tmp")
    tmp.write_bytes(blob)
    tmp.replace(png)
    return png


def background() -> np.ndarray:
    """A calm blue-grey vertical gradient with a soft light behind the head (float BGR)."""
    y = np.linspace(0.0, 1.0, H, dtype=np.float32)[:, None, None]
    top = np.array([120, 96, 70], np.float32)      # BGR: muted slate blue
    bottom = np.array([70, 52, 40], np.float32)
    bg = top * (1 - y) + bottom * y
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    glow = np.exp(-(((xx - W / 2) / 420.0) ** 2 + ((yy - 260) / 300.0) ** 2))[..., None]
    return bg + glow * np.array([70, 70, 60], np.float32)


def portrait_rgba(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.shape[:2] != (512, 512):
        sys.exit(f"gen_demo_avatar: {path} is not the 512x512 astronaut portrait")
    h, w = img.shape[:2]
    # Alpha: 1 inside, falling smoothly to 0 over FEATHER px at the left, right and top edges (the
    # bottom runs off the canvas), so the photo melts into the background.
    ramp = lambda d: np.clip(d / FEATHER, 0.0, 1.0)
    xs, ys = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
    ax = np.minimum(ramp(xs), ramp(w - 1 - xs))
    a = np.outer(ramp(ys), ax)
    a = a * a * (3 - 2 * a)  # smoothstep
    return np.dstack([img.astype(np.float32), a.astype(np.float32)])


def motion(t: float):
    """(dx, dy, degrees, scale) at time t; periods 10, 5 and 10/3 s so the clip loops smoothly."""
    w = 2 * math.pi / SECONDS
    dx = 6.0 * math.sin(w * t) + 2.0 * math.sin(3 * w * t + 0.5)
    dy = 3.0 * math.sin(2 * w * t + 1.0)
    deg = 1.5 * math.sin(w * t + 0.8) + 0.5 * math.sin(3 * w * t)
    scale = 1.0 + 0.015 * math.sin(2 * w * t + 2.0)
    return dx, dy, deg, scale


def affine(t: float) -> np.ndarray:
    """2x3 matrix taking portrait pixels to canvas pixels at time t."""
    dx, dy, deg, scale = motion(t)
    s = BASE_SCALE * scale
    th = math.radians(deg)
    r = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]]) * s
    off = np.array([PIVOT_DST[0] + dx, PIVOT_DST[1] + dy]) - r @ np.array(PIVOT_SRC)
    return np.hstack([r, off[:, None]])


def face_box(m: np.ndarray):
    """Square box whose 328x328 resize puts the mouth at (164, 124)."""
    mx, my = m @ np.array([MOUTH[0], MOUTH[1], 1.0])
    side = int(round(BOX_SRC * math.hypot(m[0, 0], m[1, 0])))
    x1 = int(round(mx - MOUTH_U * side))
    y1 = int(round(my - MOUTH_V * side))
    box = [x1, y1, x1 + side, y1 + side]
    assert 0 <= box[0] < box[2] <= W and 0 <= box[1] < box[3] <= H, box
    return box


def render(src: np.ndarray, bg: np.ndarray, m: np.ndarray) -> np.ndarray:
    fg = cv2.warpAffine(src, m.astype(np.float32), (W, H), flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    a = fg[..., 3:4]
    return np.clip(bg * (1 - a) + fg[..., :3] * a + 0.5, 0, 255).astype(np.uint8)


def save_checks(frame: np.ndarray, box, out: Path):
    """A frame with its box, and the 320x320 model crop with the demo model's mouth ellipse."""
    x1, y1, x2, y2 = box
    crop = cv2.resize(frame[y1:y2, x1:x2], (328, 328), interpolation=cv2.INTER_CUBIC)[4:324, 4:324]
    crop = crop.copy()
    cv2.ellipse(crop, ELLIPSE[0], ELLIPSE[1], 0, 0, 360, (0, 255, 0), 1)
    marked = frame.copy()
    cv2.rectangle(marked, (x1, y1), (x2 - 1, y2 - 1), (0, 255, 0), 2)
    cv2.imwrite(str(out / "demo_check_frame.png"), marked)
    cv2.imwrite(str(out / "demo_check_crop.png"), crop)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--cache", required=True, type=Path, help="download cache (the .deb, the png)")
    ap.add_argument("--astronaut", type=Path, help="use this astronaut.png instead of fetching")
    ap.add_argument("--check-dir", type=Path, help="also write demo_check_*.png here")
    args = ap.parse_args()

    src = portrait_rgba(args.astronaut or fetch_astronaut(args.cache))
    bg = background()
    tmp = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "frames").mkdir(parents=True)
    boxes = []
    n = FPS * SECONDS
    for i in range(n):
        m = affine(i / FPS)
        frame = render(src, bg, m)
        boxes.append(face_box(m))
        if not cv2.imwrite(str(tmp / "frames" / f"{i:04d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 92]):
            sys.exit("gen_demo_avatar: cannot write frames")
        if i == 0 and args.check_dir:
            save_checks(frame, boxes[0], args.check_dir)
    (tmp / "crop_rects.json").write_text(json.dumps(boxes) + "\n")
    manifest = {"name": "demo", "fps": FPS, "width": W, "height": H, "frame_count": n,
                "frames": "frames", "boxes": "crop_rects.json",
                "unet": "../../models/demo_unet.onnx", "encoder": "../../models/demo_encoder.onnx"}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    # Swap in the finished package whole, so an interrupted run never leaves half an avatar.
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()
