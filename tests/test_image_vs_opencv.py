"""test_image_vs_opencv.py - src/image's resize, prep and paste against the reference code.

The expected images are computed here, at test time, by the reference pipeline's own code
(Debian's OpenCV 4.6 + numpy); nothing expected is stored. tests/image_tool (argv[1]) runs our C
code on the same inputs. Comparisons are element by element:
  - uint8 pixels: |ours - cv2| <= 1 per channel value (the contract), and we also require and
    print the count of exact matches: the emulation is meant to be bit-exact with OpenCV 4.6;
  - float network inputs: |ours - numpy| <= 1e-6.
Run: /usr/bin/python3 tests/test_image_vs_opencv.py build/tests/image_tool
"""
import json
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np

TOOL = sys.argv[1]
TMP = tempfile.mkdtemp(prefix="ls_image_")
RNG = np.random.default_rng(20240611)
failures = []
exact_total = [0, 0]  # exact matches, values compared (uint8 comparisons)


# ---- the reference pipeline (common.md steps 3 and 5), verbatim numpy/cv2 ----
def ref_prep(img, box):
    x1, y1, x2, y2 = box
    crop_img = cv2.resize(img[y1:y2, x1:x2], (328, 328), interpolation=cv2.INTER_CUBIC)
    img_real_ex = crop_img[4:324, 4:324].copy()
    img_masked = cv2.rectangle(img_real_ex.copy(), (5, 5, 310, 305), (0, 0, 0), -1)
    real = img_real_ex.transpose(2, 0, 1).astype(np.float32) / 255.0
    masked = img_masked.transpose(2, 0, 1).astype(np.float32) / 255.0
    return crop_img, np.concatenate([real, masked], axis=0)


def ref_paste(frame, crop_img, pred, box):
    x1, y1, x2, y2 = box
    p = pred.transpose(1, 2, 0) * 255
    p = np.array(p, dtype=np.uint8)
    crop = crop_img.copy()
    crop[4:324, 4:324] = p
    crop = cv2.resize(crop, (x2 - x1, y2 - y1), interpolation=cv2.INTER_CUBIC)
    out = frame.copy()
    out[y1:y2, x1:x2] = crop
    return out


# ---- inputs ----
def random_image(h, w):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def photo_like(h, w):
    """Smooth shading, hard edges, saturated areas and mild noise, like a video frame."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        img[..., c] = 128 + 90 * np.sin(xx / (23.0 + 7 * c)) * np.cos(yy / (17.0 + 5 * c))
    img[(xx // 37 + yy // 29) % 5 == 0] = (250, 250, 250)          # blocks of near-white
    img[((xx - w / 2) ** 2 + (yy - h / 2) ** 2) < (min(h, w) / 5) ** 2] = (10, 40, 200)
    img += RNG.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def run(*args):
    r = subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"image_tool {' '.join(map(str, args))}: {r.stderr.strip()}")


def path(name):
    return os.path.join(TMP, name)


# ---- comparisons ----
def compare_u8(what, ours, ref):
    if ours.shape != ref.shape:
        failures.append(f"{what}: shape {ours.shape} != {ref.shape}")
        return
    d = np.abs(ours.astype(np.int32) - ref.astype(np.int32))
    exact = int((d == 0).sum())
    exact_total[0] += exact
    exact_total[1] += d.size
    print(f"  {what}: {exact}/{d.size} exact, max |diff| {d.max()}")
    if d.max() > 1:  # tolerance: +-1 per channel value
        bad = np.argwhere(d > 1)[:5].tolist()
        failures.append(f"{what}: {int((d > 1).sum())} values differ by more than 1, e.g. at {bad}")


def compare_f32(what, ours, ref):
    if ours.shape != ref.shape or ours.dtype != np.float32:
        failures.append(f"{what}: shape/dtype {ours.shape} {ours.dtype} != {ref.shape} float32")
        return
    d = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    print(f"  {what}: max |diff| {d.max():.3g}")
    if d.max() > 1e-6:  # tolerance: 1e-6 per element
        failures.append(f"{what}: {int((d > 1e-6).sum())} floats differ by more than 1e-6")


# ---- tests: one behaviour each ----
def test_resize_matches_cv2_inter_cubic():
    """Up- and down-scaling, odd and extreme sizes, 1-pixel images, the same-size copy, and
    widths whose 3*w is not a multiple of 8 (OpenCV's scalar tail)."""
    cases = [((182, 182), (328, 328)), ((328, 328), (182, 182)), ((20, 20), (328, 328)),
             ((328, 328), (20, 20)), ((600, 600), (328, 328)), ((328, 328), (600, 600)),
             ((183, 171), (328, 328)), ((328, 328), (183, 171)), ((1, 1), (328, 328)),
             ((328, 328), (1, 1)), ((5, 3), (7, 11)), ((328, 328), (2, 1)),
             ((100, 328), (328, 328)), ((257, 199), (331, 97)), ((328, 328), (328, 328)),
             ((328, 40), (328, 328)), ((1, 300), (5, 2))]
    for (sw, sh), (dw, dh) in cases:
        for kind, make in (("random", random_image), ("photo", photo_like)):
            img = make(sh, sw)
            np.save(path("in.npy"), img)
            run("resize", path("in.npy"), dw, dh, path("out.npy"))
            compare_u8(f"resize {kind} {sw}x{sh}->{dw}x{dh}", np.load(path("out.npy")),
                       cv2.resize(img, (dw, dh), interpolation=cv2.INTER_CUBIC))


def boxes_for(fw, fh):
    """Typical face boxes (from a real video when the golden data is present), frame edges,
    odd, small and large boxes."""
    boxes = []
    golden = os.environ.get("LS_GOLDEN_DIR", os.path.join(os.path.dirname(__file__), "../../shared/golden"))
    rects = os.path.join(golden, "crop_rects_523.json")
    if fw == 1280 and os.path.exists(rects):
        with open(rects) as f:
            r = json.load(f)
        boxes += [tuple(r[i]) for i in (0, 100, 261, 522)]
    boxes += [(fw // 2 - 91, fh // 3, fw // 2 + 91, fh // 3 + 182),  # 182 px, typical for 720p
              (0, 0, 181, 183),                    # top-left corner
              (fw - 201, fh - 187, fw, fh),        # bottom-right corner
              (0, 100, 37, 341),                   # left edge, tall and thin
              (301, 77, 302 + 254, 77 + 199),      # odd sizes
              (100, 100, 120, 120),                # small, 20x20
              (7, 3, 8, 4),                        # 1x1
              (fw - 600, fh - 600, fw, fh)]        # large, 600x600 at the edge
    return boxes


def test_prep_matches_reference():
    for fw, fh in ((1280, 720), (641, 603)):
        for kind, make in (("photo", photo_like), ("random", random_image)):
            frame = make(fh, fw)
            np.save(path("frame.npy"), frame)
            for box in boxes_for(fw, fh):
                run("prep", path("frame.npy"), *box, path("crop.npy"), path("input.npy"))
                crop_ref, inp_ref = ref_prep(frame, box)
                compare_u8(f"prep crop {kind} {fw}x{fh} {box}", np.load(path("crop.npy")), crop_ref)
                compare_f32(f"prep input {kind} {fw}x{fh} {box}", np.load(path("input.npy")), inp_ref)


def test_masked_half_has_the_reference_rectangle_zeroed():
    """Guards the reading of cv2.rectangle((5,5,310,305)): x 5..314, y 5..309 inclusive are 0."""
    frame = np.full((100, 100, 3), 200, np.uint8)
    np.save(path("frame.npy"), frame)
    run("prep", path("frame.npy"), 10, 10, 90, 90, path("crop.npy"), path("input.npy"))
    inp = np.load(path("input.npy"))
    zero = np.zeros((320, 320), bool)
    zero[5:310, 5:315] = True
    for c in range(3, 6):
        if not (np.all(inp[c][zero] == 0) and np.all(inp[c][~zero] == np.float32(200) / np.float32(255))):
            failures.append(f"masked channel {c}: rectangle not x 5..314, y 5..309")


def pred_like(kind):
    if kind == "random":
        return RNG.random((3, 320, 320), dtype=np.float32)
    # exact multiples k/255 in float32: pred*255 lands just below or on k, where truncation bites
    k = RNG.integers(0, 256, (3, 320, 320))
    return (k / 255.0).astype(np.float32)


def test_paste_matches_reference():
    for fw, fh in ((1280, 720), (641, 603)):
        frame = photo_like(fh, fw)
        np.save(path("frame.npy"), frame)
        for box in boxes_for(fw, fh):
            crop, _ = ref_prep(frame, box)
            for kind in ("random", "multiples_of_1/255"):
                pred = pred_like(kind)
                np.save(path("crop.npy"), crop)
                np.save(path("pred.npy"), pred)
                run("paste", path("frame.npy"), path("crop.npy"), path("pred.npy"), *box, path("out.npy"))
                compare_u8(f"paste {kind} {fw}x{fh} {box}", np.load(path("out.npy")),
                           ref_paste(frame, crop, pred, box))


def test_prep_then_paste_round_trip_matches_reference():
    """The whole visual path on one frame: prep's own crop feeds paste."""
    frame = photo_like(720, 1280)
    box = (532, 210, 714, 392)
    np.save(path("frame.npy"), frame)
    run("prep", path("frame.npy"), *box, path("crop.npy"), path("input.npy"))
    pred = pred_like("random")
    np.save(path("pred.npy"), pred)
    run("paste", path("frame.npy"), path("crop.npy"), path("pred.npy"), *box, path("out.npy"))
    crop_ref, _ = ref_prep(frame, box)
    compare_u8("prep+paste 1280x720", np.load(path("out.npy")), ref_paste(frame, crop_ref, pred, box))


if __name__ == "__main__":
    print("cv2", cv2.__version__, "numpy", np.__version__, "python", sys.executable)
    for name, fn in list(globals().items()):
        if name.startswith("test_") and callable(fn):
            before = len(failures)
            fn()
            print(("ok   " if len(failures) == before else "FAIL ") + name)
    print(f"uint8 values: {exact_total[0]}/{exact_total[1]} exact "
          f"({100.0 * exact_total[0] / max(1, exact_total[1]):.4f}%)")
    # Stricter than the +-1 contract: the emulation is bit-exact with Debian's OpenCV 4.6. If this
    # alone fails, the emulation drifted (or OpenCV changed) but stays within the contract.
    if exact_total[0] != exact_total[1]:
        failures.append("not bit-exact with cv2 (within +-1, see above)")
    for f in failures:
        print("  FAIL", f)
    print(f"{len(failures)} failures")
    sys.exit(1 if failures else 0)
