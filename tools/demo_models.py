"""demo_models.py - hand-built ONNX graphs: the demonstration encoder/UNet pair and broken test models.

The demo pair has the real models' I/O names and shapes, so it runs through exactly the same path, but
needs no training: the encoder measures loudness and the UNet draws an opening mouth from it.

Contract with the demo avatar (coordinates in the 320x320 UNet crop, pixel centres at integers):
  the mouth is the ellipse centred at (x=160, y=120) with semi-axes (64, 34). With opening o in [0,1]
  the UNet paints a dark-red inner ellipse, semi-axes (48 + 16 o, 34 o), with a soft edge; every
  pixel outside it is the input's real image (channels 0-2) unchanged, and in silence (o = 0) the
  whole output equals the real image bit for bit.
Loudness: the encoder's 512 features all equal mean((mel + 4) / 8) over the 80x16 window (normalised
mel is -4 in silence, so silence gives exactly 0); the UNet averages the audio block's rows 7 and 8 of
16 (channels 14..17: the current video frame and the one before) and maps it to
o = clip((a - 0.04) * 3.5, 0, 1), so ordinary speech (a ~ 0.3) opens the mouth fully.
Only standard opset-17 operators; all constants are computed here.
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
# Written explicitly: a newer onnx package (1.23 writes IR 14 by default) would otherwise make files
# that ONNX Runtime 1.29 (IR <= 13) refuses. IR 8 is what opset 17 came with.
IR_VERSION = 8
MOUTH_CX, MOUTH_CY, MOUTH_RX, MOUTH_RY = 160.0, 120.0, 64.0, 34.0
INNER_RX_CLOSED = 48.0         # inner ellipse width when barely open; grows to MOUTH_RX
LOUD_FLOOR, LOUD_GAIN = 0.04, 3.5
EDGE_SHARPNESS = 8.0           # mask goes 0 -> 1 over 1/8 of the normalised radius
MOUTH_BGR = (0.06, 0.05, 0.22)  # dark red, in the UNet's BGR [0,1] output


def _const(inits, name, arr):
    inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
    return name


def _model(nodes, inits, inputs, outputs, doc):
    graph = helper.make_graph(nodes, doc, inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)], ir_version=IR_VERSION,
                              producer_name='lipsyncd tools/demo_models.py', doc_string=doc)
    onnx.checker.check_model(model)
    return model


def _f(name, dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def demo_encoder():
    inits, n = [], helper.make_node
    # Every feature is the window's mean of (mel + 4) / 8.
    nodes = [
        n('Add', ['mel_spectrogram', _const(inits, 'four', np.array(4.0, np.float32))], ['shifted']),
        n('ReduceMean', ['shifted'], ['mean'], axes=[1, 2, 3], keepdims=0),          # [B]
        n('Unsqueeze', ['mean', _const(inits, 'ax1', np.array([1], np.int64))], ['mean_col']),  # [B,1]
        n('Mul', ['mean_col', _const(inits, 'eighths', np.full((1, 512), 1 / 8, np.float32))], ['loud']),
        n('Relu', ['loud'], ['audio_features']),  # only matters for hostile input below -4
    ]
    return _model(nodes, inits, [_f('mel_spectrogram', ['batch', 1, 80, 16])],
                  [_f('audio_features', ['batch', 512])], 'lipsyncd demo encoder: loudness features')


def demo_unet():
    inits, n = [], helper.make_node
    c = lambda name, arr: _const(inits, name, np.asarray(arr, np.float32))  # noqa: E731
    i64 = lambda name, arr: _const(inits, name, np.asarray(arr, np.int64))  # noqa: E731
    xs = np.arange(320, dtype=np.float32)
    dx2 = ((xs - MOUTH_CX) ** 2).reshape(1, 1, 1, 320)          # broadcast along rows
    ey2 = (((xs - MOUTH_CY) / MOUTH_RY) ** 2).reshape(1, 1, 320, 1)  # broadcast along columns
    nodes = [
        n('Slice', ['input', i64('s0', [0]), i64('s3', [3]), i64('ax1', [1])], ['real']),
        # Opening o from the centre rows of the 16-frame feature window.
        n('Slice', ['audio', i64('s14', [14]), i64('s18', [18]), 'ax1'], ['centre']),
        n('ReduceMean', ['centre'], ['loud'], axes=[1, 2, 3], keepdims=1),          # [B,1,1,1]
        n('Sub', ['loud', c('floor', LOUD_FLOOR)], ['loud_above']),
        n('Mul', ['loud_above', c('gain', LOUD_GAIN)], ['open_raw']),
        n('Clip', ['open_raw', c('zero', 0.0), c('one', 1.0)], ['open']),
        n('Mul', ['open', 'open'], ['open2']),
        # Inner ellipse, semi-axes rx = 48 + 16 o and ry = 34 o. Written as
        #   d = o^2 (1 - dx^2/rx^2) - (dy/34)^2,   mask = clip(d * sharpness / (o^2 + eps), 0, 1)
        # so that o = 0 gives d <= 0 and mask == 0 exactly (no division by a zero radius).
        n('Mul', ['open', c('rx_gain', MOUTH_RX - INNER_RX_CLOSED)], ['rx_grow']),
        n('Add', ['rx_grow', c('rx0', INNER_RX_CLOSED)], ['rx']),
        n('Mul', ['rx', 'rx'], ['rx2']),
        n('Div', [c('dx2', dx2), 'rx2'], ['xn2']),                                  # [B,1,1,320]
        n('Sub', ['one', 'xn2'], ['q']),
        n('Mul', ['open2', 'q'], ['oq']),
        n('Sub', ['oq', c('ey2', ey2)], ['d']),                                     # [B,1,320,320]
        n('Add', ['open2', c('eps', 1e-3)], ['open2_eps']),
        n('Div', [c('sharp', EDGE_SHARPNESS), 'open2_eps'], ['k']),
        n('Mul', ['d', 'k'], ['m_raw']),
        n('Clip', ['m_raw', 'zero', 'one'], ['mask']),
        # out = real + mask * (colour - real): exactly `real` where mask == 0.
        n('Sub', [c('colour', np.array(MOUTH_BGR).reshape(1, 3, 1, 1)), 'real'], ['towards']),
        n('Mul', ['mask', 'towards'], ['delta']),
        n('Add', ['real', 'delta'], ['blended']),
        n('Clip', ['blended', 'zero', 'one'], ['output']),
    ]
    return _model(nodes, inits, [_f('input', ['batch', 6, 320, 320]), _f('audio', ['batch', 32, 16, 16])],
                  [_f('output', ['batch', 3, 320, 320])], 'lipsyncd demo UNet: mouth opens with loudness')


def bad_name_encoder():
    """An encoder whose input is called `mel` instead of `mel_spectrogram` (for error tests)."""
    inits, n = [], helper.make_node
    nodes = [n('ReduceMean', ['mel'], ['mean'], axes=[1, 2, 3], keepdims=0),
             n('Unsqueeze', ['mean', _const(inits, 'ax1', np.array([1], np.int64))], ['mean_col']),
             n('Mul', ['mean_col', _const(inits, 'w', np.zeros((1, 512), np.float32))], ['audio_features'])]
    return _model(nodes, inits, [_f('mel', ['batch', 1, 80, 16])], [_f('audio_features', ['batch', 512])],
                  'test model: wrong input name')


def poison_encoder():
    """The demo encoder, except that a run fails in ONNX Runtime (a Gather index out of range) when
    any window of the batch holds a value >= 100: a run failure tests can trigger by data."""
    inits, n = [], helper.make_node
    nodes = [n('Add', ['mel_spectrogram', _const(inits, 'four', np.array(4.0, np.float32))], ['shifted']),
             n('ReduceMean', ['shifted'], ['mean'], axes=[1, 2, 3], keepdims=0),
             n('Unsqueeze', ['mean', _const(inits, 'ax1', np.array([1], np.int64))], ['mean_col']),
             n('Mul', ['mean_col', _const(inits, 'eighths', np.full((1, 512), 1 / 8, np.float32))], ['loud']),
             n('ReduceMax', ['mel_spectrogram'], ['peak'], keepdims=0),                     # scalar
             n('Div', ['peak', _const(inits, 'hundred', np.array(100.0, np.float32))], ['scaled']),
             n('Floor', ['scaled'], ['floored']),
             n('Cast', ['floored'], ['index'], to=TensorProto.INT64),                        # 0 below 100
             n('Gather', [_const(inits, 'zero', np.zeros(1, np.float32)), 'index'], ['nothing']),
             n('Add', ['loud', 'nothing'], ['audio_features'])]
    return _model(nodes, inits, [_f('mel_spectrogram', ['batch', 1, 80, 16])], [_f('audio_features', ['batch', 512])],
                  'test model: fails at run time on a value >= 100')


def bad_shape_unet():
    """A UNet whose `audio` input is [B,32,8,8] instead of [B,32,16,16] (for error tests)."""
    inits, n = [], helper.make_node
    i64 = lambda name, arr: _const(inits, name, np.asarray(arr, np.int64))  # noqa: E731
    nodes = [n('Slice', ['input', i64('s0', [0]), i64('s3', [3]), i64('ax1', [1])], ['real']),
             n('ReduceMean', ['audio'], ['loud'], axes=[1, 2, 3], keepdims=1),
             n('Add', ['real', 'loud'], ['output'])]
    return _model(nodes, inits, [_f('input', ['batch', 6, 320, 320]), _f('audio', ['batch', 32, 8, 8])],
                  [_f('output', ['batch', 3, 320, 320])], 'test model: wrong audio shape')
