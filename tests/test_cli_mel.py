"""`lipsync mel` end to end: the golden clips' audio, given as a .npy of samples and as a float32
WAV (made with ffmpeg), must give the golden mel element by element (tolerance 1e-4); bad input
gives a nonzero exit and a message naming the file. Run by ctest: test_cli_mel.py LIPSYNC GOLDEN."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

TOL = 1e-4  # per element, as for the library test


def run(lipsync, *args):
    return subprocess.run([lipsync, "mel", *args], capture_output=True, text=True)


def main():
    lipsync, golden = sys.argv[1], sys.argv[2]
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("sine440_640ms_mel.json", "speech_640ms_mel.json"):
            ref = json.load(open(os.path.join(golden, name)))
            audio = np.array(ref["audio"], dtype=np.float32)
            expect = np.array(ref["mel_spectrogram"], dtype=np.float64)
            npy_in = os.path.join(tmp, "in.npy")
            np.save(npy_in, audio)
            raw = os.path.join(tmp, "in.f32")
            audio.tofile(raw)
            wav_in = os.path.join(tmp, "in.wav")
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "f32le", "-ar", "16000", "-ac", "1",
                            "-i", raw, "-c:a", "pcm_f32le", wav_in], check=True)
            for src in (npy_in, wav_in):
                out = os.path.join(tmp, "out.npy")
                r = run(lipsync, src, "-o", out)
                if r.returncode != 0:
                    failures.append(f"{name} via {src}: exit {r.returncode}: {r.stderr}")
                    continue
                got = np.load(out)
                if got.dtype != np.float32 or got.shape != expect.shape:
                    failures.append(f"{name} via {src}: {got.dtype} {got.shape}, want float32 {expect.shape}")
                    continue
                err = np.abs(got.astype(np.float64) - expect)
                if not (err <= TOL).all():
                    i = np.unravel_index(np.argmax(err), err.shape)
                    failures.append(f"{name} via {src}: element {i} off by {err[i]:.3g} > {TOL}")
        missing = os.path.join(tmp, "missing.wav")
        r = run(lipsync, missing, "-o", os.path.join(tmp, "x.npy"))
        if r.returncode == 0 or missing not in r.stderr:
            failures.append(f"missing input: exit {r.returncode}, stderr {r.stderr!r}")
        if run(lipsync, missing).returncode == 0:
            failures.append("no -o accepted")
        h = run(lipsync, "--help")
        if h.returncode != 0 or "usage: lipsync mel" not in h.stdout:
            failures.append(f"--help: exit {h.returncode}")
    for f in failures:
        print("FAIL", f)
    print("ok" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
