"""test_onnx_fp16.py - tools/onnx_fp16.py: converted models are well formed and close to float32.

usage: test_onnx_fp16.py FP16_RUN_EXE BUILD_DIR
The float16 models are the ones the build made (cmake/models_fp16.cmake); small hand-made graphs
check the converter's rules and refusals. Numerics are checked on real frames: crops of the demo
avatar made by the reference prep (common.md step 3), and compared two ways against the float32
model run by ONNX Runtime through src/infer (tests/fp16_run.c, as lipsyncd runs it):
  - ONNX Runtime's CPU provider runs the float16 model through src/infer too. It has no float16
    kernels for these ops, so it inserts casts and folds them away: the graph runs in float32 with
    float16-rounded weights. That proves lipsyncd loads and runs the file, and measures weight
    rounding only.
  - A numpy evaluator of the converted graph (below) keeps every activation in float16 (each op
    computes in float32 from float16 inputs and stores float16, as GPU float16 kernels with float32
    accumulation do): the error a float16 GPU run should show.
Images are compared as lipsyncd pastes them, uint8(output * 255) truncated, element by element
(a stated maximum difference) and by PSNR (issue 6's target: >= 40 dB).
"""
import json
import os
import subprocess
import sys
import tempfile

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

RUN, BUILD = sys.argv[1], sys.argv[2]
SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONVERTER = os.path.join(SRC, 'tools', 'onnx_fp16.py')
MODELS = os.path.join(BUILD, 'models')
AVATAR = os.path.join(BUILD, 'avatars', 'demo')
TMP = tempfile.mkdtemp(prefix='ls_fp16_')
sys.path.insert(0, os.path.join(SRC, 'tools'))
from gen_models import np_conv, np_up2_align_corners  # noqa: E402 (the generator's reference ops)

failures = []


def check(cond, msg):
    print(('ok    ' if cond else 'FAIL  ') + msg)
    if not cond:
        failures.append(msg)


def convert(src, dst):
    return subprocess.run([sys.executable, CONVERTER, src, dst], capture_output=True, text=True)


# ---- real inputs: demo avatar frames through the reference prep -------------------------------------

def real_inputs(frames):
    boxes = json.load(open(os.path.join(AVATAR, 'crop_rects.json')))
    items = []
    for i in frames:
        img = cv2.imread(os.path.join(AVATAR, 'frames', f'{i:04d}.jpg'))
        x1, y1, x2, y2 = boxes[i]
        crop = cv2.resize(img[y1:y2, x1:x2], (328, 328), interpolation=cv2.INTER_CUBIC)
        real = crop[4:324, 4:324].copy()
        masked = real.copy()
        masked[5:310, 5:315] = 0          # x 5..314, y 5..309 inclusive
        items.append(np.concatenate([real.transpose(2, 0, 1), masked.transpose(2, 0, 1)]) / np.float32(255))
    return np.stack(items).astype(np.float32)


def speech_like_audio(n):
    """Encoder-feature-like audio blocks: |N(0,1)| (what gen_models calibrates the UNet with) plus
    0.3 everywhere, loud enough to open the demo UNet's mouth fully (demo_models.py)."""
    rng = np.random.default_rng(6)
    return (np.abs(rng.standard_normal((n, 32, 16, 16))) + 0.3).astype(np.float32)


def run_ort(model, img, aud):
    n = img.shape[0]
    pi, pa, po = (os.path.join(TMP, f) for f in ('in.f32', 'aud.f32', 'out.f32'))
    img.tofile(pi)
    aud.tofile(pa)
    r = subprocess.run([RUN, 'unet', model, str(n), pi, pa, po], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f'fp16_run {model}: {r.stderr}')
    return np.fromfile(po, np.float32).reshape(n, 3, 320, 320)


# ---- numpy evaluator of a converted graph, float16 activations ------------------------------------

def attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def np_op(node, x, a):
    f = [v.astype(np.float32) if v is not None and v.dtype == np.float16 else v for v in x]
    op = node.op_type
    if op == 'Cast':
        return {TensorProto.FLOAT: np.float32, TensorProto.FLOAT16: np.float16}[a['to']], f[0]
    if op == 'Conv':
        kh, kw = a['kernel_shape']
        pads, g = a.get('pads', [0, 0, 0, 0]), a.get('group', 1)
        assert pads[0] == pads[2] and pads[1] == pads[3] and g in (1, f[0].shape[1]), node.name
        return None, np_conv(f[0], f[1], f[2] if len(f) > 2 else None, tuple(a.get('strides', [1, 1])),
                             tuple(pads[:2]), g)
    if op == 'Resize':
        assert a['mode'] == b'linear' and a['coordinate_transformation_mode'] == b'align_corners'
        assert list(f[2]) == [1, 1, 2, 2], 'only x2 upsampling'
        return None, np_up2_align_corners(f[0])
    if op == 'Slice':
        sl = [slice(None)] * f[0].ndim
        for s, e, ax in zip(f[1], f[2], f[3]):
            sl[ax] = slice(s, e)
        return None, f[0][tuple(sl)]
    if op == 'ReduceMean':
        return None, f[0].mean(axis=tuple(a['axes']), keepdims=bool(a.get('keepdims', 1)))
    if op == 'Clip':
        return None, np.clip(f[0], f[1], f[2])
    ew = {'Identity': lambda: f[0], 'Relu': lambda: np.maximum(f[0], 0),
          'Sigmoid': lambda: 1 / (1 + np.exp(-f[0])), 'Add': lambda: f[0] + f[1],
          'Sub': lambda: f[0] - f[1], 'Mul': lambda: f[0] * f[1], 'Div': lambda: f[0] / f[1],
          'Concat': lambda: np.concatenate(f, axis=a['axis'])}
    return None, ew[op]()


def np_run_fp16(model, feeds):
    env = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    env.update(feeds)
    for node in model.graph.node:
        x = [env[i] if i else None for i in node.input]
        to, y = np_op(node, x, attrs(node))
        if to is None:  # float results take the type of the op's float inputs: float16 ones are rounded
            half = any(v is not None and v.dtype == np.float16 for v in x)
            to = np.float16 if half and y.dtype.kind == 'f' else y.dtype
        env[node.output[0]] = np.asarray(y).astype(to)
    return env[model.graph.output[0].name]


# ---- comparisons -----------------------------------------------------------------------------------

def as_image(out):
    return np.array(out * 255, dtype=np.uint8)  # the paste step's truncation (common.md step 5)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float('inf') if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def compare(what, got, want, max_levels, min_psnr):
    ig, iw = as_image(got), as_image(want)
    diff = np.abs(ig.astype(int) - iw.astype(int))
    worst = min(psnr(ig[k], iw[k]) for k in range(len(ig)))
    print(f'      {what}: max |diff| {diff.max()} levels, {np.count_nonzero(diff)} of {diff.size} values '
          f'differ, float max |diff| {np.abs(got - want).max():.2e}, worst-frame PSNR {worst:.1f} dB')
    check(diff.max() <= max_levels, f'{what}: every output value within {max_levels}/255 of float32')
    check(worst >= min_psnr, f'{what}: PSNR >= {min_psnr} dB on every frame')


# ---- structure of the build's converted models -----------------------------------------------------

def float_inits(model):
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer
            if t.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16)}


def fp32_required(model):
    """Initializer names the spec requires float32: Resize roi (1) and scales (2)."""
    return {n.input[k] for n in model.graph.node if n.op_type == 'Resize' for k in (1, 2)
            if len(n.input) > k and n.input[k]}


def check_structure(name):
    f32 = onnx.load(os.path.join(MODELS, name + '.onnx'))
    f16 = onnx.load(os.path.join(MODELS, name + '_fp16.onnx'))
    try:
        onnx.checker.check_model(f16)
        onnx.shape_inference.infer_shapes(f16, check_type=True, strict_mode=True)
        ok = True
    except Exception as ex:  # noqa: BLE001
        print('      ', ex)
        ok = False
    check(ok, f'{name}_fp16: passes onnx.checker and strict type/shape inference')
    io = lambda m: [(v.name, v.type) for v in list(m.graph.input) + list(m.graph.output)]  # noqa: E731
    check(io(f16) == io(f32), f'{name}_fp16: inputs/outputs have the same names, float32 type and shapes '
          '(batch dimension included)')
    check(list(f16.opset_import) == list(f32.opset_import), f'{name}_fp16: opset kept')
    # ONNX Runtime 1.29 refuses IR versions above 13 (what a newer onnx package writes by default).
    check(f32.ir_version == 8 and f16.ir_version == f32.ir_version,
          f'{name}: IR version 8 in both files (got {f32.ir_version}, {f16.ir_version})')
    keep = fp32_required(f16)
    a, b = float_inits(f32), float_inits(f16)
    wrong = [n for n, v in b.items() if (v.dtype == np.float32) != (n in keep)]
    check(not wrong, f'{name}_fp16: every float initializer is float16 except Resize roi/scales '
          f'({len(b)} initializers, {len(keep)} float32) {wrong[:3]}')
    same = all(n in a and np.array_equal(v, a[n].astype(v.dtype)) for n, v in b.items())
    check(same and len(a) == len(b), f'{name}_fp16: each weight is exactly its float32 original rounded to float16')
    s32 = os.path.getsize(os.path.join(MODELS, name + '.onnx'))
    s16 = os.path.getsize(os.path.join(MODELS, name + '_fp16.onnx'))
    print(f'      {name}: {s32} bytes float32, {s16} bytes float16')
    if name == 'unet328':
        check(s16 < 0.51 * s32, f'{name}_fp16: file about half the size ({s16 / s32:.3f})')


def test_unet328_structure():
    check_structure('unet328')


def test_demo_unet_structure():
    check_structure('demo_unet')


# ---- numerics on real frames -----------------------------------------------------------------------

IMG = AUD = None


def inputs():
    global IMG, AUD
    if IMG is None:
        IMG = real_inputs([0, 125])
        AUD = speech_like_audio(2)
    return IMG, AUD


def test_unet328_on_real_frames():
    img, aud = inputs()
    ref = run_ort(os.path.join(MODELS, 'unet328.onnx'), img, aud)
    check(0.05 < ref.mean() < 0.95, f'unet328 float32 output is not saturated (mean {ref.mean():.3f})')
    cpu = run_ort(os.path.join(MODELS, 'unet328_fp16.onnx'), img, aud)
    # float16 weights alone: measured max 5 levels, 52.5 dB; margins cover other ORT builds.
    compare('unet328 float16 weights (ORT CPU via src/infer)', cpu, ref, max_levels=16, min_psnr=45)
    model = onnx.load(os.path.join(MODELS, 'unet328_fp16.onnx'))
    emu = np_run_fp16(model, {'input': img[:1], 'audio': aud[:1]})  # one frame: numpy conv is slow
    # float16 activations too (measured max 9 levels, 49.7 dB): ~100 stacked layers, each output
    # rounded to 11 significant bits.
    compare('unet328 float16 activations (numpy evaluator)', emu, ref[:1], max_levels=32, min_psnr=40)


def test_demo_unet_on_real_frames():
    img, aud = inputs()
    ref = run_ort(os.path.join(MODELS, 'demo_unet.onnx'), img, aud)
    mouth = np.abs(ref - img[:, :3]).max()
    check(mouth > 0.3, f'demo_unet float32 draws a mouth on these inputs (max change {mouth:.2f})')
    cpu = run_ort(os.path.join(MODELS, 'demo_unet_fp16.onnx'), img, aud)
    compare('demo_unet float16 weights (ORT CPU via src/infer)', cpu, ref, max_levels=2, min_psnr=50)
    model = onnx.load(os.path.join(MODELS, 'demo_unet_fp16.onnx'))
    emu = np_run_fp16(model, {'input': img, 'audio': aud})
    # float16 steps near 1.0 are 1/2048 (1/8 level), but the mask edge (slope 8 / o^2) amplifies
    # rounding of d: a few edge pixels move by a few levels.
    compare('demo_unet float16 activations (numpy evaluator)', emu, ref, max_levels=8, min_psnr=45)


# ---- converter rules on small graphs ---------------------------------------------------------------

def small_model(nodes, inits, inputs, outputs, opset=17):
    g = helper.make_graph(nodes, 'small', inputs, outputs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid('', opset)])
    onnx.checker.check_model(m)
    path = os.path.join(TMP, f'small_{len(os.listdir(TMP))}.onnx')
    onnx.save(m, path)
    return path


def vi(name, dims, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, dims)


def test_refuses_unknown_operator_and_writes_nothing():
    path = small_model([helper.make_node('LRN', ['x'], ['y'], size=3)], [],
                       [vi('x', [1, 3, 4, 4])], [vi('y', [1, 3, 4, 4])])
    out = os.path.join(TMP, 'lrn_fp16.onnx')
    r = convert(path, out)
    check(r.returncode == 2 and 'LRN' in r.stderr and not os.path.exists(out),
          f'unknown operator: exit 2 naming it, no file ({r.returncode}: {r.stderr.strip()})')


def test_shared_constant_is_kept_in_both_precisions():
    """`two` feeds both Resize's scales (float32 by spec) and a Mul on activations (float16)."""
    two = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), 'two')
    nodes = [helper.make_node('Resize', ['x', '', 'two'], ['up'], mode='nearest'),
             helper.make_node('Mul', ['up', 'two'], ['y'])]
    path = small_model(nodes, [two], [vi('x', [1, 3, 2, 2])], [vi('y', [1, 3, 4, 4])])
    out = os.path.join(TMP, 'shared_fp16.onnx')
    r = convert(path, out)
    m = onnx.load(out) if r.returncode == 0 else None
    types = sorted(t.data_type for t in m.graph.initializer) if m else []
    check(types == [TensorProto.FLOAT, TensorProto.FLOAT16],
          f'constant used as Resize scales and in math: one float32 and one float16 copy ({types} {r.stderr})')
    resize = [n for n in m.graph.node if n.op_type == 'Resize'][0] if m else None
    scales = [t for t in m.graph.initializer if resize and t.name == resize.input[2]] if m else []
    check(len(scales) == 1 and scales[0].data_type == TensorProto.FLOAT, 'Resize reads the float32 copy')


def test_shape_arithmetic_stays_float32():
    """Cast(Shape(x)) * 2 -> Cast(int64) computes Resize sizes, as torch exports do: not an activation."""
    nodes = [helper.make_node('Shape', ['x'], ['s']),
             helper.make_node('Cast', ['s'], ['sf'], to=TensorProto.FLOAT),
             helper.make_node('Mul', ['sf', 'k'], ['sf2']),
             helper.make_node('Cast', ['sf2'], ['sizes'], to=TensorProto.INT64),
             helper.make_node('Resize', ['x', '', '', 'sizes'], ['y'], mode='nearest')]
    k = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), 'k')
    path = small_model(nodes, [k], [vi('x', [1, 3, 2, 2])], [vi('y', [1, 3, 4, 4])])
    out = os.path.join(TMP, 'shape_fp16.onnx')
    r = convert(path, out)
    m = onnx.load(out) if r.returncode == 0 else None
    cast = [n for n in m.graph.node if n.op_type == 'Cast' and n.input == ['s']] if m else []
    kt = [t.data_type for t in m.graph.initializer] if m else []
    check(len(cast) == 1 and cast[0].attribute[0].i == TensorProto.FLOAT and kt == [TensorProto.FLOAT],
          f'Cast(Shape) and its multiplier stay float32 ({r.stderr.strip()})')


def test_clamps_out_of_range_weights_with_a_warning():
    w = numpy_helper.from_array(np.array([1e5, -7e4, 3.0, np.inf], np.float32), 'w')
    nodes = [helper.make_node('Mul', ['x', 'w'], ['y'])]
    path = small_model(nodes, [w], [vi('x', [4])], [vi('y', [4])])
    out = os.path.join(TMP, 'clamp_fp16.onnx')
    r = convert(path, out)
    got = numpy_helper.to_array(onnx.load(out).graph.initializer[0]) if r.returncode == 0 else None
    check(got is not None and got.tolist() == [65504.0, -65504.0, 3.0, 65504.0] and '3 weight values' in r.stderr,
          f'weights beyond +-65504 clamped and counted ({got}, {r.stderr.strip()})')


def test_value_info_follows_the_conversion():
    """Exporters write value_info for intermediates; after conversion they must say float16."""
    src = os.path.join(TMP, 'demo_unet_vi.onnx')
    onnx.save(onnx.shape_inference.infer_shapes(onnx.load(os.path.join(MODELS, 'demo_unet.onnx'))), src)
    out = os.path.join(TMP, 'demo_unet_vi_fp16.onnx')
    r = convert(src, out)
    m = onnx.load(out) if r.returncode == 0 else None
    floats = [v.type.tensor_type.elem_type for v in m.graph.value_info
              if v.type.tensor_type.elem_type in (TensorProto.FLOAT, TensorProto.FLOAT16)] if m else []
    check(len(floats) > 10 and set(floats) == {TensorProto.FLOAT16},
          f'{len(floats)} intermediate value_info entries all float16 ({r.stderr.strip()})')


def test_constant_nodes_and_encoder_convert():
    """Constant(value_float) becomes a float16 value; the AVE encoder (Conv/Add/Relu/Reshape) converts
    and its int64 Reshape shape is untouched."""
    nodes = [helper.make_node('Constant', [], ['c'], value_float=0.5),
             helper.make_node('Mul', ['x', 'c'], ['y'])]
    path = small_model(nodes, [], [vi('x', [2])], [vi('y', [2])])
    out = os.path.join(TMP, 'const_fp16.onnx')
    r = convert(path, out)
    m = onnx.load(out) if r.returncode == 0 else None
    const = [n for n in m.graph.node if n.op_type == 'Constant'] if m else []
    check(len(const) == 1 and const[0].attribute[0].t.data_type == TensorProto.FLOAT16,
          f'Constant value_float becomes a float16 tensor ({r.stderr.strip()})')
    out = os.path.join(TMP, 'ave_encoder_fp16.onnx')
    r = convert(os.path.join(MODELS, 'ave_encoder.onnx'), out)
    m = onnx.load(out) if r.returncode == 0 else None
    shapes = [t for t in m.graph.initializer if t.data_type == TensorProto.INT64] if m else []
    check(len(shapes) == 1 and numpy_helper.to_array(shapes[0]).tolist() == [-1, 512],
          f'ave_encoder converts; Reshape shape stays int64 [-1, 512] ({r.stderr.strip()})')


if __name__ == '__main__':
    print('numpy', np.__version__, 'onnx', onnx.__version__, 'cv2', cv2.__version__)
    for name, fn in list(globals().items()):
        if name.startswith('test_') and callable(fn):
            before = len(failures)
            fn()
            print(('ok   ' if len(failures) == before else 'FAIL ') + name)
    for f in failures:
        print('  FAIL', f)
    print(f'{len(failures)} failures')
    sys.exit(1 if failures else 0)
