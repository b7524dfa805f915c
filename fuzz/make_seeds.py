"""make_seeds.py - seed corpus for fuzz_requests: valid and edge-case requests of both APIs.

Usage: make_seeds.py PROTO_DIR OUT_DIR. Python stubs are generated from the repo's .proto files
(Debian's python3-grpc-tools), so nothing binary is committed. Each seed is one byte choosing the
message (the kind numbers of fuzz_requests.c; +128 for the tiny arena) and the serialized message.
"""
import os
import struct
import sys
import tempfile

from grpc_tools import protoc

PROTO_DIR, OUT = sys.argv[1:3]
tmp = tempfile.mkdtemp(prefix="fuzz-seeds-")
assert protoc.main(["protoc", "-I" + PROTO_DIR, "--python_out=" + tmp, "monolithic.proto",
                    "lipsync/v1/lipsync.proto"]) == 0
sys.path.insert(0, tmp)
import monolithic_pb2 as mpb  # noqa: E402
from lipsync.v1 import lipsync_pb2 as pb  # noqa: E402

# The kind byte of each message (enum kind in fuzz_requests.c).
(K_RENDER, K_COMPOSITE, K_LOAD_AVATAR, K_UNLOAD_AVATAR, K_LIST_AVATARS, K_GET_STATS, K_LOAD_MODEL,
 K_UNLOAD_MODEL, K_LIST_MODELS, K_MODEL_STATS, K_MONO_HEALTH, K_HEALTH_CHECK, K_FLOATS) = range(13)
os.makedirs(OUT, exist_ok=True)
n = 0


def seed(kind, payload, tiny=False):
    global n
    data = bytes([kind | (0x80 if tiny else 0)]) + (payload if isinstance(payload, bytes) else payload.SerializeToString())
    with open(os.path.join(OUT, "seed-%03d" % n), "wb") as f:
        f.write(data)
    n += 1


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def tone(n_samples):  # a short, deterministic waveform (no numpy needed)
    return [0.3 * ((i * 7919) % 200 - 100) / 100.0 for i in range(n_samples)]


S16, F32 = pb.AUDIO_ENCODING_S16LE, pb.AUDIO_ENCODING_F32LE
ok16k = f32(tone(4000))  # 0.25 s at 16 kHz: one video frame
s16 = struct.pack("<2000h", *[(i * 37) % 2000 - 1000 for i in range(2000)])

# Render: valid, every output kind, other rates, and each check's edge.
seed(K_RENDER, pb.RenderRequest(avatar_id="demo", audio=pb.Audio(data=ok16k, encoding=F32, sample_rate=16000)))
seed(K_RENDER, pb.RenderRequest(avatar_id="a.b-c_9", audio=pb.Audio(data=s16, encoding=S16, sample_rate=8000),
                                first_frame_index=12, output=pb.OUTPUT_KIND_FACE_PATCH, jpeg_quality=90,
                                max_frames=3))
seed(K_RENDER, pb.RenderRequest(avatar_id="x" * 64, audio=pb.Audio(data=s16, encoding=S16, sample_rate=48000),
                                output=pb.OUTPUT_KIND_RAW_RGB24, jpeg_quality=100))
for bad in ("..", ".", "a/b", "x" * 65, "", "caf\u00e9"):
    seed(K_RENDER, pb.RenderRequest(avatar_id=bad, audio=pb.Audio(data=ok16k, encoding=F32, sample_rate=16000)))
seed(K_RENDER, pb.RenderRequest(avatar_id="demo"))  # no audio
for rate in (7999, 48001, 0, -16000):
    seed(K_RENDER, pb.RenderRequest(avatar_id="demo", audio=pb.Audio(data=ok16k, encoding=F32, sample_rate=rate)))
seed(K_RENDER, pb.RenderRequest(avatar_id="demo", audio=pb.Audio(data=ok16k[:-1], encoding=F32, sample_rate=16000)))
seed(K_RENDER, pb.RenderRequest(avatar_id="demo", audio=pb.Audio(data=ok16k, encoding=7, sample_rate=16000)))
for special in (float("nan"), float("inf"), -float("inf"), 1e30):
    seed(K_RENDER, pb.RenderRequest(avatar_id="demo", audio=pb.Audio(data=f32([special] + tone(3999)), encoding=F32,
                                                                     sample_rate=16000)))
seed(K_RENDER, pb.RenderRequest(avatar_id="demo", audio=pb.Audio(data=f32(tone(1000)), encoding=F32, sample_rate=16000)))
seed(K_RENDER, pb.RenderRequest(avatar_id="demo", audio=pb.Audio(data=ok16k, encoding=F32, sample_rate=16000),
                                first_frame_index=-1, output=9, jpeg_quality=101, max_frames=-1))
seed(K_RENDER, pb.RenderRequest(avatar_id="demo", audio=pb.Audio(data=ok16k, encoding=F32, sample_rate=16000)), tiny=True)

# InferBatchComposite: raw audio, features, visual frames of the wrong size, each limit.
seed(K_COMPOSITE, mpb.CompositeBatchRequest(model_id="demo", raw_audio=ok16k, batch_size=8, start_frame_idx=3,
                                            sample_rate=16000))
seed(K_COMPOSITE, mpb.CompositeBatchRequest(model_id="demo", raw_audio=ok16k, batch_size=1))  # rate 0 = 16 kHz
seed(K_COMPOSITE, mpb.CompositeBatchRequest(model_id="demo", audio_features=f32([0.5] * (32 * 16 * 16)), batch_size=1))
seed(K_COMPOSITE, mpb.CompositeBatchRequest(model_id="demo", audio_features=f32([float("nan")] * (32 * 16 * 16)),
                                            batch_size=1))
seed(K_COMPOSITE, mpb.CompositeBatchRequest(model_id="demo", audio_features=b"\0" * 12, batch_size=1))
seed(K_COMPOSITE, mpb.CompositeBatchRequest(model_id="demo", raw_audio=ok16k, visual_frames=b"\0" * 100, batch_size=1))
for batch in (0, 33, -1, 32):
    seed(K_COMPOSITE, mpb.CompositeBatchRequest(model_id="demo", raw_audio=ok16k, batch_size=batch))
seed(K_COMPOSITE, mpb.CompositeBatchRequest(model_id="demo", raw_audio=ok16k, batch_size=4, start_frame_idx=-5))
seed(K_COMPOSITE, mpb.CompositeBatchRequest(model_id="../etc", raw_audio=ok16k, batch_size=4))
seed(K_COMPOSITE, mpb.CompositeBatchRequest(model_id="demo", raw_audio=b"\0" * 6, batch_size=4, sample_rate=44100))
seed(K_COMPOSITE, mpb.CompositeBatchRequest(model_id="demo", raw_audio=f32([float("inf")] * 4000), batch_size=4))
seed(K_COMPOSITE, mpb.CompositeBatchRequest(model_id="demo", batch_size=4))

# The small messages.
for kind, msg in ((K_LOAD_AVATAR, pb.LoadAvatarRequest(avatar_id="demo")),
                  (K_LOAD_AVATAR, pb.LoadAvatarRequest(avatar_id="..")),
                  (K_UNLOAD_AVATAR, pb.UnloadAvatarRequest(avatar_id="small3")),
                  (K_LIST_AVATARS, pb.ListAvatarsRequest(loaded_only=True)),
                  (K_GET_STATS, pb.GetStatsRequest()),
                  (K_LOAD_MODEL, mpb.LoadModelRequest(model_id="demo", preferred_gpu=1)),
                  (K_LOAD_MODEL, mpb.LoadModelRequest(model_id="a b")),
                  (K_UNLOAD_MODEL, mpb.UnloadModelRequest(model_id="demo")),
                  (K_LIST_MODELS, mpb.ListModelsRequest()),
                  (K_MODEL_STATS, mpb.GetModelStatsRequest()),
                  (K_MONO_HEALTH, mpb.HealthRequest()),
                  # grpc.health.v1.HealthCheckRequest{1: service} by hand: a generated "grpc" module
                  # would shadow grpcio's.
                  (K_HEALTH_CHECK, b"\x0a\x12lipsync.v1.LipSync")):
    seed(kind, msg)
# Wire-format oddities: truncated varint, wrong wire type, unknown field, length past the end.
for raw in (b"\x0a", b"\x0a\x05ab", b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", b"\xf8\x07\x01",
            b"\x12\x80\x80\x80\x80\x10", b"\x0d\x00\x00\x80\x7f"):
    seed(K_RENDER, raw)
    seed(K_COMPOSITE, raw)
# val_finite_f32 directly: limit, then samples.
seed(K_FLOATS, f32([1.0, 0.5, -1.0, float("nan")]))
seed(K_FLOATS, f32([1024.0] + tone(16)))
print("wrote %d seeds to %s" % (n, OUT))
