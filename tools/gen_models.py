#!/usr/bin/python3
"""gen_models.py - writes the ONNX models lipsyncd runs, deterministically from a seed.

  ave_encoder.onnx   SyncTalk_2D / Wav2Lip AVE audio encoder:
                     mel_spectrogram [B,1,80,16] -> audio_features [B,512]
  unet328.onnx       SyncTalk_2D 'ave' UNet-328:
                     input [B,6,320,320] + audio [B,32,16,16] -> output [B,3,320,320]
  demo_encoder.onnx  demonstration pair with the same I/O: features encode loudness (silence -> 0),
  demo_unet.onnx     and the UNet draws an opening mouth on the real image in proportion to it.
  --test-variants    also: *_b1.onnx (batch fixed to 1), demo_encoder_b2.onnx, bad_name_encoder.onnx,
                     poison_encoder.onnx (a run fails on a value >= 100), bad_shape_unet.onnx,
                     and reference input/output pairs (*.ref_*.f32, raw little-endian float32) from
                     the numpy forward pass below, so that tests can check ONNX Runtime element by
                     element.

The architectures follow SyncTalk_2D's utils.py (AudioEncoder) and unet_328.py (Model(6, 'ave')) layer
for layer. Weights are random; every BatchNorm is folded into the convolution before it, with its
statistics measured on a random calibration batch (what BN folding of a trained net does with running
statistics). That keeps activations O(1) through the residual stacks and the sigmoid unsaturated,
which plain He init does not. Only Debian's python3 + numpy + onnx (1.12) are needed; no torch.
"""
import argparse
import copy
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
# Written explicitly: a newer onnx package (1.23 writes IR 14 by default) would otherwise make files
# that ONNX Runtime 1.29 (IR <= 13) refuses. IR 8 is what opset 17 came with.
IR_VERSION = 8


# ---------------------------------------------------------------------------------------------
# numpy reference operators (NCHW, float32). Written for clarity; only run once per generation.

def np_conv(x, w, b, stride=(1, 1), pad=(0, 0), groups=1):
    n, c, h, wd = x.shape
    co, ci, kh, kw = w.shape
    sh, sw = stride
    ph, pw = pad
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    ho = (h + 2 * ph - kh) // sh + 1
    wo = (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, co, ho, wo), np.float32)
    for ky in range(kh):
        for kx in range(kw):
            tap = xp[:, :, ky:ky + sh * (ho - 1) + 1:sh, kx:kx + sw * (wo - 1) + 1:sw]
            if groups == 1:
                out += np.matmul(w[:, :, ky, kx], tap.reshape(n, ci, ho * wo)).reshape(n, co, ho, wo)
            else:  # depthwise (groups == channels, one filter per channel)
                out += w[None, :, 0, ky, kx, None, None] * tap
    if b is not None:
        out += b[None, :, None, None]
    return out


def np_up2_align_corners(x):
    """Bilinear x2 upsampling with align_corners=True (torch nn.Upsample semantics)."""
    def interp_matrix(n_in):
        n_out = 2 * n_in
        m = np.zeros((n_out, n_in), np.float32)
        for i in range(n_out):
            src = i * (n_in - 1) / (n_out - 1)
            i0 = int(np.floor(src))
            i1 = min(i0 + 1, n_in - 1)
            f = src - i0
            m[i, i0] += 1 - f
            m[i, i1] += f
        return m
    my = interp_matrix(x.shape[2])
    mx = interp_matrix(x.shape[3])
    return np.einsum('yh,nchw,xw->ncyx', my, x, mx, optimize=True).astype(np.float32)


def relu(x):
    return np.maximum(x, 0)


# ---------------------------------------------------------------------------------------------
# Graph builder: every layer is added to the ONNX graph and run in numpy at the same time.

class Net:
    def __init__(self, rng):
        self.rng = rng
        self.nodes, self.inits = [], []
        self.params = 0
        self.macs = 0  # per batch item
        self.count = 0

    def name(self, kind):
        self.count += 1
        return f'{kind}_{self.count}'

    def const(self, arr, kind='c'):
        n = self.name(kind)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), n))
        return n

    def op(self, op_type, inputs, **attrs):
        out = self.name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def conv_bn(self, x, cout, k, stride=1, pad=0, groups=1, conv_bias=False, gamma=1.0, beta=0.0):
        """Conv2d (+ BatchNorm folded in, statistics measured on the calibration batch).
        x is (onnx name, numpy activation). Returns the same pair for the folded conv's output."""
        xn, xa = x
        cin = xa.shape[1]
        kh, kw = (k, k) if isinstance(k, int) else k
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        ph, pw = (pad, pad) if isinstance(pad, int) else pad
        fan_in = cin // groups * kh * kw
        w = (self.rng.standard_normal((cout, cin // groups, kh, kw)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        b = (self.rng.standard_normal(cout) * 0.1).astype(np.float32) if conv_bias else np.zeros(cout, np.float32)
        z = np_conv(xa, w, b, (sh, sw), (ph, pw), groups)
        mean = z.mean(axis=(0, 2, 3), dtype=np.float64)
        std = np.sqrt(z.var(axis=(0, 2, 3), dtype=np.float64) + 1e-5)
        scale = (gamma / std).astype(np.float32)
        wf = (w * scale[:, None, None, None]).astype(np.float32)
        bf = ((b - mean) * scale + beta).astype(np.float32)
        # Same as np_conv(xa, wf, bf, ...) up to float rounding, without running the conv twice.
        ya = ((z - mean[None, :, None, None].astype(np.float32)) * scale[None, :, None, None]
              + np.float32(beta)).astype(np.float32)
        yn = self.op('Conv', [xn, self.const(wf, 'w'), self.const(bf, 'b')],
                     kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw], group=groups)
        self.params += wf.size + bf.size
        self.macs += cout * ya.shape[2] * ya.shape[3] * fan_in
        return yn, ya

    def relu(self, x):
        return self.op('Relu', [x[0]]), relu(x[1])

    def add(self, x, y):
        return self.op('Add', [x[0], y[0]]), x[1] + y[1]

    def concat(self, x, y):
        return self.op('Concat', [x[0], y[0]], axis=1), np.concatenate([x[1], y[1]], axis=1)

    def up2(self, x):
        scales = self.const(np.array([1, 1, 2, 2], np.float32), 'scales')
        n = self.op('Resize', [x[0], '', scales], mode='linear', coordinate_transformation_mode='align_corners')
        return n, np_up2_align_corners(x[1])


# ---------------------------------------------------------------------------------------------
# SyncTalk_2D layers (unet_328.py / utils.py), BN folded.

def inverted_residual(net, x, oup, stride, use_res, expand=6):
    inp = x[1].shape[1]
    hid = inp * expand
    y = net.relu(net.conv_bn(x, hid, 1))
    y = net.relu(net.conv_bn(y, hid, 3, stride, 1, groups=hid))
    # A trained residual branch starts near zero; gamma 0.5 keeps x + f(x) from growing block by block.
    y = net.conv_bn(y, oup, 1, gamma=0.5 if use_res else 1.0)
    return net.add(x, y) if use_res else y


def double_conv_dw(net, x, oup, stride):
    x = inverted_residual(net, x, oup, stride, False, 2)
    return inverted_residual(net, x, oup, 1, True, 2)


def audio_conv_ave(net, a):
    ch = [32, 64, 128, 256, 512]
    a = inverted_residual(net, a, ch[1], 1, False, 2)
    a = inverted_residual(net, a, ch[2], 1, False, 2)
    a = net.relu(net.conv_bn(a, ch[3], 3, 1, 1, conv_bias=True))
    a = inverted_residual(net, a, ch[3], 1, True, 2)
    a = net.relu(net.conv_bn(a, ch[4], 3, 2, 3, conv_bias=True))
    a = inverted_residual(net, a, ch[4], 1, True, 2)
    return inverted_residual(net, a, ch[4], 1, True, 2)


def build_unet(net, img, aud):
    ch = [32, 64, 128, 256, 512]
    x1 = inverted_residual(net, img, ch[0], 1, False, 2)      # inc
    x2 = double_conv_dw(net, x1, ch[0], 2)                    # down1 .. down5
    x3 = double_conv_dw(net, x2, ch[1], 2)
    x4 = double_conv_dw(net, x3, ch[2], 2)
    x5 = double_conv_dw(net, x4, ch[3], 2)
    x6 = double_conv_dw(net, x5, ch[4], 2)
    a = audio_conv_ave(net, aud)
    x6 = net.concat(x6, a)
    x6 = double_conv_dw(net, x6, ch[4], 1)                    # fuse_conv
    x6 = double_conv_dw(net, x6, ch[3], 1)
    x = x6
    for skip, oup in ((x5, ch[3] // 2), (x4, ch[2] // 2), (x3, ch[1] // 2), (x2, ch[0]), (x1, ch[0] // 2)):
        x = double_conv_dw(net, net.concat(net.up2(x), skip), oup, 1)  # up1 .. up5
    # OutConv: plain 1x1 conv with bias (no BN); calibrated so the sigmoid input has spread 0.5:
    # outputs mostly in 0.2 .. 0.8, far from saturation.
    y = net.conv_bn(x, 3, 1, conv_bias=True, gamma=0.5)
    return net.op('Sigmoid', [y[0]]), 1 / (1 + np.exp(-y[1]))


def build_ave_encoder(net, mel):
    specs = [  # (cout, stride, pad, residual) for 3x3 convs, then the valid 3x3 and the 1x1
        (32, 1, 1, False), (32, 1, 1, True), (32, 1, 1, True),
        (64, (3, 1), 1, False), (64, 1, 1, True), (64, 1, 1, True),
        (128, 3, 1, False), (128, 1, 1, True), (128, 1, 1, True),
        (256, (3, 2), 1, False), (256, 1, 1, True),
        (512, 1, 0, False)]
    x = mel
    for cout, stride, pad, res in specs:
        y = net.conv_bn(x, cout, 3, stride, pad, conv_bias=True, gamma=0.5 if res else 1.0)
        x = net.relu(net.add(y, x) if res else y)
    x = net.relu(net.conv_bn(x, 512, 1, conv_bias=True))
    shape = net.const(np.array([-1, 512], np.int64), 'shape')   # squeeze(2).squeeze(2): [B,512,1,1] -> [B,512]
    return net.op('Reshape', [x[0], shape]), x[1].reshape(-1, 512)


# ---------------------------------------------------------------------------------------------

def vinfo(name, dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def make_model(nodes, inits, inputs, outputs, doc):
    graph = helper.make_graph(nodes, doc, inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)], ir_version=IR_VERSION,
                              producer_name='lipsyncd tools/gen_models.py', doc_string=doc)
    onnx.checker.check_model(model)
    return model


def finish(net, io_in, io_out, result_name, doc):
    # The last layer's output has an internal name; Identity gives it the public output name.
    net.nodes.append(helper.make_node('Identity', [result_name], [io_out[0].name]))
    return make_model(net.nodes, net.inits, io_in, io_out, doc)


def gen_encoder(rng, n_cal):
    net = Net(rng)
    # Calibration windows: mel-like values in [-4, 4] (silence is -4).
    mel = np.clip(rng.standard_normal((n_cal, 1, 80, 16)) * 1.5 - 1.0, -4, 4).astype(np.float32)
    out, feats = build_ave_encoder(net, ('mel_spectrogram', mel))
    model = finish(net, [vinfo('mel_spectrogram', ['batch', 1, 80, 16])],
                   [vinfo('audio_features', ['batch', 512])], out, 'SyncTalk_2D AVE audio encoder (random weights)')
    return model, net, mel, feats


def gen_unet(rng):
    net = Net(rng)
    real = rng.random((1, 3, 320, 320), dtype=np.float32)
    masked = real.copy()
    masked[:, :, 5:310, 5:315] = 0
    img = np.concatenate([real, masked], axis=1)
    aud = np.abs(rng.standard_normal((1, 32, 16, 16))).astype(np.float32)
    out, pred = build_unet(net, ('input', img), ('audio', aud))
    model = finish(net, [vinfo('input', ['batch', 6, 320, 320]), vinfo('audio', ['batch', 32, 16, 16])],
                   [vinfo('output', ['batch', 3, 320, 320])], out, "SyncTalk_2D 'ave' UNet-328 (random weights)")
    return model, net, img, aud, pred


def fixed_batch(model, n):
    m = copy.deepcopy(model)
    for v in list(m.graph.input) + list(m.graph.output):
        d = v.type.tensor_type.shape.dim[0]
        d.Clear()
        d.dim_value = n
    onnx.checker.check_model(m)
    return m


def save(model, out_dir, name):
    path = os.path.join(out_dir, name)
    tmp = path + '.tmp'
    onnx.save(model, tmp)
    os.replace(tmp, path)  # atomic: a half-written model never has the final name


def save_f32(arr, out_dir, name):
    np.ascontiguousarray(arr, dtype='<f4').tofile(os.path.join(out_dir, name))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', required=True, help='output folder')
    ap.add_argument('--seed', type=int, default=1234)
    ap.add_argument('--test-variants', action='store_true', help='also write the models and references tests use')
    ap.add_argument('--skip-unet', action='store_true', help='do not write unet328.onnx (the slow one)')
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import demo_models  # noqa: E402  (kept in its own file: it is hand-designed, not an architecture)

    enc, enc_net, mel, feats = gen_encoder(np.random.default_rng([args.seed, 1]), 16)
    save(enc, args.out, 'ave_encoder.onnx')
    print(f'ave_encoder.onnx: {enc_net.params / 1e6:.3f} M parameters, {enc_net.macs / 1e6:.1f} MMAC per window')
    if args.test_variants:
        save(fixed_batch(enc, 1), args.out, 'ave_encoder_b1.onnx')
        save_f32(mel[:3], args.out, 'ave_encoder.ref_mel.f32')
        save_f32(feats[:3], args.out, 'ave_encoder.ref_features.f32')
        save(fixed_batch(demo_models.demo_encoder(), 2), args.out, 'demo_encoder_b2.onnx')  # chunking with N > 1
        save(demo_models.bad_name_encoder(), args.out, 'bad_name_encoder.onnx')
        save(demo_models.poison_encoder(), args.out, 'poison_encoder.onnx')
        save(demo_models.bad_shape_unet(), args.out, 'bad_shape_unet.onnx')

    if not args.skip_unet:
        unet, unet_net, img, aud, pred = gen_unet(np.random.default_rng([args.seed, 2]))
        print(f'unet328.onnx: {unet_net.params / 1e6:.3f} M parameters, {unet_net.macs / 1e9:.3f} GMAC per frame, '
              f'output mean {pred.mean():.3f} min {pred.min():.3f} max {pred.max():.3f}')
        # SyncTalk_2D's UNet-328 ('ave') is ~12.2 M parameters and ~4.9 GMAC per frame: a miscount
        # here means the architecture was not reproduced.
        if not (11.9e6 < unet_net.params < 12.5e6 and 4.7e9 < unet_net.macs < 5.1e9):
            sys.exit('gen_models.py: UNet-328 size is off: not the SyncTalk_2D architecture')
        save(unet, args.out, 'unet328.onnx')
        if args.test_variants:
            save(fixed_batch(unet, 1), args.out, 'unet328_b1.onnx')
            save_f32(img, args.out, 'unet328.ref_input.f32')
            save_f32(aud, args.out, 'unet328.ref_audio.f32')
            save_f32(pred, args.out, 'unet328.ref_output.f32')

    save(demo_models.demo_encoder(), args.out, 'demo_encoder.onnx')
    save(demo_models.demo_unet(), args.out, 'demo_unet.onnx')


if __name__ == '__main__':
    main()
