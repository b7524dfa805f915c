"""lipsyncd_harness.py - what the Python tests that drive the real lipsyncd share.

- gen_stubs: Python (and grpc) stubs generated at test time from the repo's .proto files.
- Lipsyncd: a lipsyncd process with a temp config; port 0, the bound port read from its
  "listening on ...:PORT" startup line (.port, .addr, .proc, .read_log()).
- stop_and_check / SANITIZER_REPORT: a clean exit on SIGTERM (status 0, no sanitizer report).
- small_avatar: a small avatar package (10 PNG frames of 320x240, moving boxes, the demo models).

Test files import it after putting the tests folder on sys.path.
"""
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
from grpc_tools import protoc

SMALL_W, SMALL_H, SMALL_N = 320, 240, 10


def small_avatar(root, models, name, seed, box_shift=0):
    """root/name: SMALL_N PNG frames of smooth random texture (shifted 3 px a frame), 140x140 boxes
    that move one pixel a frame from (90 + box_shift, 50), the build's demo models. -> (dir, boxes)"""
    d = os.path.join(root, name)
    os.makedirs(os.path.join(d, "frames"))
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), (SMALL_W, SMALL_H),
                      interpolation=cv2.INTER_CUBIC)
    boxes = []
    for i in range(SMALL_N):
        cv2.imwrite(os.path.join(d, "frames", "%04d.png" % i), np.roll(base, 3 * i, axis=1))
        x1, y1 = 90 + box_shift + i, 50 + i
        boxes.append([x1, y1, x1 + 140, y1 + 140])
    with open(os.path.join(d, "crop_rects.json"), "w") as f:
        json.dump(boxes, f)
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump({"name": name, "fps": 25, "width": SMALL_W, "height": SMALL_H, "frame_count": SMALL_N,
                   "frames": "frames", "boxes": "crop_rects.json",
                   "unet": os.path.join(models, "demo_unet.onnx"),
                   "encoder": os.path.join(models, "demo_encoder.onnx")}, f)
    return d, boxes


SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: \w+Sanitizer")
START_TIMEOUT_S = 30  # an ASan build on a busy machine starts slowly
STOP_TIMEOUT_S = 30


def gen_stubs(proto_dir, out, protos, grpc_stubs=True, on_path=True):
    """Runs protoc on `protos` (relative to proto_dir) into `out`: *_pb2 modules, and *_pb2_grpc
    ones when grpc_stubs. With on_path, `out` goes first on sys.path (for `import x_pb2`)."""
    os.makedirs(out, exist_ok=True)
    args = ["protoc", "-I" + proto_dir, "--python_out=" + out]
    if grpc_stubs:
        args.append("--grpc_python_out=" + out)
    rc = protoc.main(args + list(protos))
    assert rc == 0, "protoc failed for %s" % (protos,)
    if on_path:
        sys.path.insert(0, out)
    return out


def load_module(name, path):
    """Imports one generated module by file path (for packages that must stay off sys.path)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def stop_and_check(proc, read_log, clean):
    """Stops lipsyncd as an operator would (SIGTERM). When `clean` (the test itself passed), the
    exit must be clean: status 0 and no sanitizer report in its log. Leaks are only reported at
    exit (LeakSanitizer turns the status into 23), so a killed server would hide them."""
    if proc.poll() is None:
        if not clean:
            proc.kill()
        else:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("lipsyncd did not exit within 30 s of SIGTERM:\n" + read_log())
    if clean:
        log = read_log()
        if proc.returncode != 0 or SANITIZER_REPORT.search(log):
            raise AssertionError("lipsyncd exited %d (want 0, no sanitizer report):\n%s" % (proc.returncode, log))


class Lipsyncd:
    """The real server (`binary`) started with `config_text` written to a temp file in `tmp_dir`;
    its stdout and stderr go to config + ".log". A context manager: on exit it is stopped with
    SIGTERM and checked for a clean exit when the block passed, killed when it failed
    (check_exit=False: always killed, exit status not checked)."""

    def __init__(self, binary, config_text, tmp_dir, check_exit=True):
        self.binary = binary
        self.check_exit = check_exit
        fd, self.config = tempfile.mkstemp(suffix=".yaml", dir=tmp_dir)
        with os.fdopen(fd, "w") as f:
            f.write(config_text)
        self.log_path = self.config + ".log"

    def start(self):
        """Starts lipsyncd and waits for its startup line: sets .proc, .port and .addr."""
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen([self.binary, "--config", self.config], stdout=self.log, stderr=self.log)
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline:
            m = re.search(r"listening on [^ ]*:(\d+)", self.read_log())
            if m:
                self.port = int(m.group(1))
                self.addr = "127.0.0.1:%d" % self.port
                return self
            if self.proc.poll() is not None:
                self.log.close()
                raise AssertionError("lipsyncd exited %d:\n%s" % (self.proc.returncode, self.read_log()))
            time.sleep(0.02)
        self.proc.kill()
        self.proc.wait()
        self.log.close()
        raise AssertionError("lipsyncd did not start:\n" + self.read_log())

    def stop(self, clean=True):
        """stop_and_check (clean: the test passed), or a kill when check_exit is off."""
        try:
            if self.check_exit:
                stop_and_check(self.proc, self.read_log, clean)
            else:
                if self.proc.poll() is None:
                    self.proc.kill()
                self.proc.wait()
        finally:
            self.log.close()

    def read_log(self):
        with open(self.log_path) as f:
            return f.read()

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, *exc):
        self.stop(exc_type is None)
