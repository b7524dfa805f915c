#!/usr/bin/env python3
"""End-to-end tests of `lipsync render`: espeak-ng speech through the demo avatar to an MP4 whose
frame count follows the reference formula, JPEG frame output, and clean failures on bad input.

usage: test_render_cli.py LIPSYNC BUILD_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import wave

import numpy as np

LIPSYNC, BUILD = sys.argv[1], sys.argv[2]
DEMO = os.path.join(BUILD, "avatars", "demo")
MODELS = os.path.join(BUILD, "models")
TMP = tempfile.mkdtemp(prefix="lipsync-render-")
failures = []
TESTS_RUN = 0


def test(fn):
    """Runs the test as it is defined (tests run in file order and may share files in TMP)."""
    global TESTS_RUN
    TESTS_RUN += 1
    try:
        fn()
        print("ok  ", fn.__name__)
    except AssertionError as e:
        print("FAIL", fn.__name__, e)
        failures.append(fn.__name__)
    return fn


def run(*args, timeout=300):
    return subprocess.run([LIPSYNC, *args], capture_output=True, text=True, timeout=timeout)


def reference_frame_count(n_samples_16k):
    # SyncTalk_2D AudDataset: mel rows = 1 + n // 200 (centred STFT, hop 200), then
    # data_len = int((rows - 16) / 80. * 25) + 2
    rows = 1 + n_samples_16k // 200
    return int((rows - 16) / 80.0 * 25) + 2


def write_wav(path, samples, rate=16000):
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def ffprobe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json", path],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["streams"]


def assert_clean_failure(res, needle):
    # A clean failure: exit status 1 or 2 (not a signal), one message naming the problem.
    assert res.returncode in (1, 2), f"exit {res.returncode}, stderr: {res.stderr!r}"
    assert needle.lower() in res.stderr.lower(), f"expected '{needle}' in: {res.stderr!r}"
    assert "Sanitizer" not in res.stderr, res.stderr


@test
def render_speech_gives_reference_frame_count_and_valid_mp4():
    wav = os.path.join(TMP, "speech.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", wav,
                    "The quick brown fox jumps over the lazy dog."], check=True)
    with wave.open(wav) as w:  # espeak-ng writes 22.05 kHz; the renderer resamples to 16 kHz
        rate, n = w.getframerate(), w.getnframes()
    n16 = -(-n * 16000 // rate)  # ceil: the loader keeps exactly ceil(n * 16000 / rate) samples
    out = os.path.join(TMP, "speech.mp4")
    res = run("render", "--avatar", DEMO, "--audio", wav, "--out", out, "--batch", "4")
    assert res.returncode == 0, res.stderr
    streams = ffprobe(out)
    video = [s for s in streams if s["codec_type"] == "video"]
    audio = [s for s in streams if s["codec_type"] == "audio"]
    assert len(video) == 1 and len(audio) == 1, streams
    assert video[0]["codec_name"] in ("h264", "mjpeg"), video[0]["codec_name"]
    assert (video[0]["width"], video[0]["height"]) == (1280, 720)
    assert int(video[0]["nb_read_frames"]) == reference_frame_count(n16), \
        (video[0]["nb_read_frames"], reference_frame_count(n16))
    assert audio[0]["codec_name"] == "aac"


@test
def render_frames_writes_one_jpeg_per_frame():
    n = 16000  # one second of a 300 Hz tone
    npy = os.path.join(TMP, "tone.npy")
    np.save(npy, (0.3 * np.sin(2 * np.pi * 300 * np.arange(n) / 16000)).astype(np.float32))
    out = os.path.join(TMP, "frames")
    res = run("render", "--avatar", DEMO, "--audio", npy, "--frames", out, "--start-frame", "240")
    assert res.returncode == 0, res.stderr
    files = sorted(os.listdir(out))
    expect = reference_frame_count(n)
    assert files == [f"{i:06d}.jpg" for i in range(expect)], files
    import cv2
    img = cv2.imread(os.path.join(out, files[-1]))
    assert img is not None and img.shape == (720, 1280, 3)


@test
def batch_size_does_not_change_the_output():
    npy = os.path.join(TMP, "tone.npy")
    outs = []
    for batch in ("1", "3"):
        d = os.path.join(TMP, f"batch{batch}")
        res = run("render", "--avatar", DEMO, "--audio", npy, "--frames", d, "--batch", batch)
        assert res.returncode == 0, res.stderr
        outs.append([open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d))])
    assert outs[0] == outs[1], "JPEG frames differ between batch 1 and batch 3"


@test
def uint8_io_gives_the_same_jpeg_bytes():
    npy = os.path.join(TMP, "tone.npy")
    d = os.path.join(TMP, "u8")
    res = run("render", "--avatar", DEMO, "--audio", npy, "--frames", d, "--batch", "3", "--uint8-io")
    assert res.returncode == 0, res.stderr
    got = [open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d))]
    ref_dir = os.path.join(TMP, "batch3")  # the float UNet's frames from the test above
    ref = [open(os.path.join(ref_dir, f), "rb").read() for f in sorted(os.listdir(ref_dir))]
    assert got == ref, "JPEG frames differ between the float and the uint8-wrapped UNet"


@test
def pipeline_off_gives_the_same_jpeg_bytes():
    npy = os.path.join(TMP, "tone.npy")
    d = os.path.join(TMP, "serial")
    res = run("render", "--avatar", DEMO, "--audio", npy, "--frames", d, "--batch", "3", "--pipeline", "off")
    assert res.returncode == 0, res.stderr
    got = [open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d))]
    ref_dir = os.path.join(TMP, "batch3")  # pipelined (the default) in the test above
    ref = [open(os.path.join(ref_dir, f), "rb").read() for f in sorted(os.listdir(ref_dir))]
    assert len(got) > 3 and got == ref, "JPEG frames differ between the serial and the pipelined render"


@test
def affinity_auto_gives_the_same_jpeg_bytes():
    # --affinity auto: this thread and the models' pool threads pinned (2 intra-op threads).
    npy = os.path.join(TMP, "tone.npy")
    d = os.path.join(TMP, "pinned")
    res = run("render", "--avatar", DEMO, "--audio", npy, "--frames", d, "--batch", "3", "--threads", "2",
              "--affinity", "auto")
    assert res.returncode == 0, res.stderr
    got = [open(os.path.join(d, f), "rb").read() for f in sorted(os.listdir(d))]
    ref_dir = os.path.join(TMP, "batch3")
    ref = [open(os.path.join(ref_dir, f), "rb").read() for f in sorted(os.listdir(ref_dir))]
    assert got == ref, "JPEG frames differ with pinned threads"
    assert_clean_failure(run("render", "--avatar", DEMO, "--audio", npy, "--frames", d, "--affinity", "all"),
                         "--affinity")


@test
def tune_prints_frames_per_second_per_batch_and_the_config_lines():
    unet = os.path.join(MODELS, "demo_unet.onnx")
    res = run("tune", "--unet", unet, "--batches", "1,2,4", "--seconds", "0", "--threads", "2", "--affinity", "auto")
    assert res.returncode == 0, res.stderr
    rows = {}
    for line in res.stdout.splitlines():
        f = line.split()
        if len(f) == 6 and f[0].isdigit():
            rows[int(f[0])] = float(f[1])
    assert sorted(rows) == [1, 2, 4] and all(v > 0 for v in rows.values()), res.stdout
    best = max(rows, key=lambda b: (rows[b], -b))
    assert f"best: batch {best}," in res.stdout, res.stdout
    assert f"    max_batch: {best}\n  stream:\n    max_batch: {best}\n" in res.stdout, res.stdout
    assert_clean_failure(run("tune", "--unet", unet, "--batches", "1,33"), "1..32")
    assert_clean_failure(run("tune", "--batches", "1"), "--unet is required")
    assert_clean_failure(run("tune", "--unet", os.path.join(TMP, "nope.onnx"), "--seconds", "0"), "nope.onnx")


@test
def cuda_without_its_provider_fails_cleanly():
    res = run("render", "--avatar", DEMO, "--audio", os.path.join(TMP, "tone.npy"), "--frames",
              os.path.join(TMP, "cuda"), "--provider", "cuda")
    assert_clean_failure(res, "CUDA provider is not available")
    res = run("render", "--avatar", DEMO, "--audio", "x", "--out", "y", "--provider", "tpu")
    assert_clean_failure(res, "--provider must be cpu or cuda")


@test
def truncated_wav_fails_cleanly():
    wav = os.path.join(TMP, "trunc.wav")
    write_wav(wav, np.zeros(16000))
    data = open(wav, "rb").read()
    open(wav, "wb").write(data[:30])  # cut inside the header
    res = run("render", "--avatar", DEMO, "--audio", wav, "--out", os.path.join(TMP, "x.mp4"))
    assert_clean_failure(res, "trunc.wav")


@test
def empty_audio_fails_cleanly():
    wav = os.path.join(TMP, "empty.wav")
    write_wav(wav, np.zeros(0))
    res = run("render", "--avatar", DEMO, "--audio", wav, "--out", os.path.join(TMP, "x.mp4"))
    assert_clean_failure(res, "empty.wav")


@test
def too_short_audio_fails_cleanly():
    npy = os.path.join(TMP, "short.npy")
    np.save(npy, np.zeros(1000, np.float32))
    res = run("render", "--avatar", DEMO, "--audio", npy, "--out", os.path.join(TMP, "x.mp4"))
    assert_clean_failure(res, "too short")


@test
def nan_samples_fail_cleanly():
    npy = os.path.join(TMP, "nan.npy")
    a = np.zeros(16000, np.float32)
    a[5000] = np.nan
    np.save(npy, a)
    res = run("render", "--avatar", DEMO, "--audio", npy, "--out", os.path.join(TMP, "x.mp4"))
    assert_clean_failure(res, "nan.npy")


def small_avatar(name, boxes):
    """A 3-frame 160x120 avatar package using the demo models."""
    import cv2
    d = os.path.join(TMP, name)
    os.makedirs(os.path.join(d, "frames"))
    rng = np.random.default_rng(1)
    for i in range(3):
        cv2.imwrite(os.path.join(d, "frames", f"{i:04d}.png"),
                    rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    json.dump(boxes, open(os.path.join(d, "crop_rects.json"), "w"))
    json.dump({"name": name, "fps": 25, "width": 160, "height": 120, "frame_count": 3,
               "frames": "frames", "boxes": "crop_rects.json",
               "unet": os.path.relpath(os.path.join(MODELS, "demo_unet.onnx"), d),
               "encoder": os.path.relpath(os.path.join(MODELS, "demo_encoder.onnx"), d)},
              open(os.path.join(d, "manifest.json"), "w"))
    return d


@test
def small_avatar_renders():
    d = small_avatar("good", [[10, 10, 90, 90]] * 3)
    res = run("render", "--avatar", d, "--audio", os.path.join(TMP, "tone.npy"),
              "--frames", os.path.join(TMP, "good-frames"))
    assert res.returncode == 0, res.stderr


@test
def box_outside_the_image_fails_cleanly():
    d = small_avatar("badbox", [[10, 10, 90, 90], [100, 50, 200, 150], [10, 10, 90, 90]])
    res = run("render", "--avatar", d, "--audio", os.path.join(TMP, "tone.npy"),
              "--out", os.path.join(TMP, "x.mp4"))
    assert_clean_failure(res, "frame 1")


@test
def wrong_model_io_fails_cleanly():
    wrong = os.path.join(MODELS, "bad_shape_unet.onnx")
    assert os.path.exists(wrong), "the generator's wrong-I/O test model is missing"
    res = run("render", "--avatar", DEMO, "--audio", os.path.join(TMP, "tone.npy"),
              "--out", os.path.join(TMP, "x.mp4"), "--unet", wrong)
    assert_clean_failure(res, "bad_shape_unet.onnx")


@test
def missing_avatar_fails_cleanly():
    res = run("render", "--avatar", os.path.join(TMP, "nope"), "--audio",
              os.path.join(TMP, "tone.npy"), "--out", os.path.join(TMP, "x.mp4"))
    assert_clean_failure(res, "nope")


@test
def bad_arguments_fail_with_usage():
    res = run("render", "--avatar", DEMO, "--batch", "0", "--audio", "x", "--out", "y")
    assert_clean_failure(res, "--batch")
    res = run("render", "--avatar", DEMO)
    assert_clean_failure(res, "required")
    res = run("render", "--avatar", DEMO, "--audio", "x", "--out", "y", "--pipeline", "maybe")
    assert_clean_failure(res, "--pipeline")


shutil.rmtree(TMP, ignore_errors=True)
print(f"{TESTS_RUN - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
