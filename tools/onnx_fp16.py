#!/usr/bin/python3
"""onnx_fp16.py - converts a float32 SyncTalk_2D ONNX export (UNet or audio encoder) to float16.

  onnx_fp16.py IN.onnx OUT.onnx

The graph's inputs and outputs keep their names, float32 type and shapes (batch dimension included),
so lipsyncd loads the result exactly like the original: a Cast(to=FLOAT16) follows each float input
and a Cast(to=FLOAT) precedes each float output. Inside, the activations and the weights are float16:

  - every float32 initializer / Constant / ConstantOfShape value used by float math becomes float16
    (values beyond the float16 range are clamped to +-65504, and counted in a warning);
  - tensors the ONNX spec types as float32 stay float32: Resize's `roi` and `scales`, Upsample's
    `scales`; a constant used both there and in float16 math is kept in both precisions;
  - shape arithmetic stays float32: a float tensor computed without any float activation among its
    inputs (e.g. Cast(Shape(x)) * 2 in a torch export) is not an activation, and float16 would
    round its integers above 2048;
  - int64 / bool tensors and the opset are untouched; intermediate value_info types are updated.

Only the operator types listed in OPS are converted; any other (or a subgraph, or a non-standard
domain) is refused with exit status 2 rather than written into a model that might be wrong. The
result is checked with onnx.checker and strict shape/type inference before it is saved.
Uses only onnx.helper / numpy_helper / shape_inference, so it runs with Debian's numpy 1.24 + onnx
1.12 and with numpy 2.x + onnx 1.2x alike (onnxconverter-common's float16 converter is not packaged
for Debian).
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT, FLOAT16 = TensorProto.FLOAT, TensorProto.FLOAT16
FP16_MAX = 65504.0

# Operator types this converter understands, with the type of their outputs: 'same' = the type of
# input 0 (float in -> float out), or a fixed elem type, or a special rule handled in out_types().
OPS = {op: 'same' for op in (
    'Abs', 'Add', 'AveragePool', 'BatchNormalization', 'Ceil', 'Clip', 'Concat', 'Conv',
    'ConvTranspose', 'DepthToSpace', 'Div', 'Erf', 'Exp', 'Expand', 'Flatten', 'Floor', 'Gather',
    'Gemm', 'GlobalAveragePool', 'GlobalMaxPool', 'HardSigmoid', 'HardSwish', 'Identity',
    'InstanceNormalization', 'LeakyRelu', 'Log', 'MatMul', 'Max', 'Mean', 'Min', 'Mul', 'Neg', 'Pad',
    'Pow', 'PRelu', 'Reciprocal', 'ReduceMax', 'ReduceMean', 'ReduceMin', 'ReduceSum', 'Relu',
    'Reshape', 'Resize', 'Round', 'Sigmoid', 'Slice', 'Softmax', 'SpaceToDepth', 'Split', 'Sqrt',
    'Squeeze', 'Sub', 'Sum', 'Tanh', 'Tile', 'Transpose', 'Unsqueeze', 'Upsample')}
OPS.update({'Shape': TensorProto.INT64, 'Size': TensorProto.INT64,
            'Equal': TensorProto.BOOL, 'Greater': TensorProto.BOOL, 'Less': TensorProto.BOOL,
            'GreaterOrEqual': TensorProto.BOOL, 'LessOrEqual': TensorProto.BOOL, 'Not': TensorProto.BOOL,
            'And': TensorProto.BOOL, 'Or': TensorProto.BOOL,
            'Cast': 'cast', 'Constant': 'constant', 'ConstantOfShape': 'constant', 'Where': 'where',
            'MaxPool': 'maxpool'})
CONST_OPS = ('Constant', 'ConstantOfShape')


class Refused(Exception):
    """The model uses something this converter does not handle; nothing is written."""


def fp32_positions(op, opset):
    """Input indices the spec types as float32 whatever the data's type."""
    if op == 'Resize':
        return {1} if opset <= 10 else {1, 2}   # opset 10: (X, scales); 11+: (X, roi, scales, sizes)
    if op == 'Upsample':
        return {1}                              # opset 9: (X, scales); opset 7 has an attribute
    return set()


def to_fp16(arr, stats):
    """float32 array -> float16, clamping to the float16 range (NaN stays NaN)."""
    arr = np.asarray(arr, dtype=np.float32)
    over = int(np.count_nonzero(np.abs(arr) > FP16_MAX))   # NaN compares False: not counted
    stats['clamped'] += over
    if over:
        arr = np.clip(arr, -FP16_MAX, FP16_MAX)
    return arr.astype(np.float16)


def const_value(node):
    """The float32 tensor a Constant / ConstantOfShape node makes, as numpy, or None if not float32."""
    if node.op_type == 'ConstantOfShape':
        attr = next((a for a in node.attribute if a.name == 'value'), None)
        if attr is None:
            return np.zeros(1, np.float32)      # the spec's default: float32 zero
        return numpy_helper.to_array(attr.t) if attr.t.data_type == FLOAT else None
    for a in node.attribute:
        if a.name == 'value':
            return numpy_helper.to_array(a.t) if a.t.data_type == FLOAT else None
        if a.name == 'value_float':
            return np.array(a.f, np.float32)
        if a.name == 'value_floats':
            return np.array(list(a.floats), np.float32)
        if a.name == 'sparse_value':
            raise Refused(f'Constant {node.name or node.output[0]}: sparse_value is not supported')
    return None


def const_node(node, arr, out_name):
    """A copy of Constant / ConstantOfShape `node` producing `arr` as `out_name`."""
    tensor = numpy_helper.from_array(arr, out_name + '_value')
    return helper.make_node(node.op_type, list(node.input), [out_name], name=(node.name or out_name) + '_' +
                            ('fp16' if arr.dtype == np.float16 else 'fp32'), value=tensor)


def out_types(node, in_types):
    rule = OPS[node.op_type]
    if isinstance(rule, int):
        return [rule] * len(node.output)
    if rule == 'cast':
        return [next(a.i for a in node.attribute if a.name == 'to')]
    if rule == 'constant':
        if node.op_type == 'ConstantOfShape':
            attr = next((a for a in node.attribute if a.name == 'value'), None)
            return [attr.t.data_type if attr is not None else FLOAT]
        a = node.attribute[0]
        if a.name == 'value':
            return [a.t.data_type]
        return [{'value_float': FLOAT, 'value_floats': FLOAT, 'value_int': TensorProto.INT64,
                 'value_ints': TensorProto.INT64, 'value_string': TensorProto.STRING,
                 'value_strings': TensorProto.STRING}.get(a.name, TensorProto.UNDEFINED)]
    if rule == 'where':
        return [in_types[1]]
    if rule == 'maxpool':
        return [in_types[0], TensorProto.INT64][:len(node.output)]
    return [in_types[0]] * len(node.output)


class Converter:
    def __init__(self, model):
        self.model = model
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')), 0)
        self.stats = {'converted': 0, 'kept32': 0, 'clamped': 0, 'casts': 0}
        self.names = set()
        for v in list(self.graph.input) + list(self.graph.output) + list(self.graph.initializer):
            self.names.add(v.name)
        for n in self.graph.node:
            self.names.update(n.input)
            self.names.update(n.output)

    def unique(self, base):
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f'{base}{k}'
        self.names.add(name)
        return name

    def check_supported(self):
        if self.graph.sparse_initializer:
            raise Refused('sparse initializers are not supported')
        for n in self.graph.node:
            where = f'node {n.name or n.output[0]!r} ({n.op_type})'
            if n.domain not in ('', 'ai.onnx'):
                raise Refused(f'{where}: operator domain {n.domain!r} is not supported')
            if n.op_type not in OPS:
                raise Refused(f'{where}: operator type {n.op_type} is not one this converter knows')
            if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in n.attribute):
                raise Refused(f'{where}: subgraphs are not supported')
            if n.op_type == 'Cast' and any(a.name == 'to' and a.i == TensorProto.DOUBLE for a in n.attribute):
                raise Refused(f'{where}: Cast to double is not supported')

    def analyse(self):
        """Types of every tensor, which float tensors are activations (depend on a float graph input),
        which nodes compute in float16, and the precisions each float tensor is needed in."""
        g = self.graph
        self.types = {v.name: v.type.tensor_type.elem_type for v in g.input}
        self.types.update({t.name: t.data_type for t in g.initializer})
        self.init_names = {t.name for t in g.initializer}
        self.input_names = {v.name for v in g.input} - self.init_names
        self.output_names = {v.name for v in g.output}
        act = {v.name for v in g.input if v.name in self.input_names and self.types[v.name] == FLOAT}
        self.producer, self.half_node = {}, set()
        for i, n in enumerate(g.node):
            for name in n.input:
                if name and name not in self.types:
                    raise Refused(f'node {n.name or n.output[0]!r}: input {name!r} is not defined before it')
            in_types = [self.types.get(x, TensorProto.UNDEFINED) for x in n.input]
            outs = out_types(n, in_types)
            half = n.op_type not in CONST_OPS and any(x in act for x in n.input if x)
            if half:
                self.half_node.add(i)
            for name, t in zip(n.output, outs):
                self.types[name] = t
                self.producer[name] = i
                if half and t == FLOAT:
                    act.add(name)
        # needs[name] = {FLOAT16, FLOAT}: the precisions in which consumers read each float tensor.
        self.needs = {}
        for i, n in enumerate(g.node):
            keep = fp32_positions(n.op_type, self.opset)
            for k, name in enumerate(n.input):
                if name and self.types[name] == FLOAT:
                    want = FLOAT16 if i in self.half_node and k not in keep else FLOAT
                    self.needs.setdefault(name, set()).add(want)
        for name in self.output_names:
            if self.types.get(name) == FLOAT:
                self.needs.setdefault(name, set()).add(FLOAT)

    def native(self, name):
        """Precision in which a float tensor is produced (constants: whichever is needed, fp16 first)."""
        if name in self.input_names:
            return FLOAT
        if name in self.init_names or self.graph.node[self.producer[name]].op_type in CONST_OPS:
            return FLOAT16 if FLOAT16 in self.needs.get(name, ()) else FLOAT
        return FLOAT16 if self.producer[name] in self.half_node else FLOAT

    def plan_names(self):
        """version[(name, type)] = the tensor name holding that precision of float tensor `name`.
        Graph inputs and outputs keep their names for the float32 version (the external contract);
        otherwise the native version keeps the name and the other gets a suffix."""
        self.version = {}
        for name, need in self.needs.items():
            nat = self.native(name)
            for t in need | {nat}:
                if name in self.input_names or name in self.output_names:
                    own = t == FLOAT
                else:
                    own = t == nat
                self.version[(name, t)] = name if own else self.unique(name + ('_fp16' if t == FLOAT16 else '_fp32'))

    def cast(self, src, dst, to):
        self.stats['casts'] += 1
        return helper.make_node('Cast', [src], [dst], name=self.unique(dst + '_cast'), to=to)

    def extra_versions(self, name, nat):
        """(type, new name) of the versions of `name` other than its native one."""
        return [(t, self.version[(name, t)]) for t in self.needs.get(name, ()) if t != nat]

    def build_nodes(self):
        g, nodes = self.graph, []
        for name in sorted(self.input_names):
            if self.types[name] == FLOAT:
                for t, vname in self.extra_versions(name, FLOAT):
                    nodes.append(self.cast(name, vname, t))
        for i, n in enumerate(g.node):
            if n.op_type in CONST_OPS and self.types[n.output[0]] == FLOAT:
                nodes += self.convert_const(n)
                continue
            keep = fp32_positions(n.op_type, self.opset)
            new = onnx.NodeProto()
            new.CopyFrom(n)
            half = i in self.half_node
            for k, name in enumerate(n.input):
                if name and self.types[name] == FLOAT:
                    want = FLOAT16 if half and k not in keep else FLOAT
                    new.input[k] = self.version[(name, want)]
            if half and n.op_type == 'Cast':
                for a in new.attribute:
                    if a.name == 'to' and a.i == FLOAT:
                        a.i = FLOAT16
            extra = []
            for k, name in enumerate(n.output):
                if name and self.types[name] == FLOAT and name in self.needs:
                    nat = FLOAT16 if half else FLOAT
                    new.output[k] = self.version[(name, nat)]
                    extra += [self.cast(new.output[k], vname, t) for t, vname in self.extra_versions(name, nat)]
            nodes.append(new)
            nodes += extra
        del g.node[:]
        g.node.extend(nodes)

    def convert_const(self, n):
        arr = const_value(n)
        name = n.output[0]
        out = []
        for t in sorted(self.needs.get(name, {FLOAT16})):
            data = to_fp16(arr, self.stats) if t == FLOAT16 else arr.astype(np.float32)
            self.stats['converted' if t == FLOAT16 else 'kept32'] += 1
            out.append(const_node(n, data, self.version.get((name, t), name)))
        return out

    def convert_initializers(self):
        g, inits = self.graph, []
        for t in g.initializer:
            if t.data_type != FLOAT:
                inits.append(t)
                continue
            arr = numpy_helper.to_array(t)
            need = self.needs.get(t.name, set())
            if FLOAT16 in need:
                inits.append(numpy_helper.from_array(to_fp16(arr, self.stats), self.version[(t.name, FLOAT16)]))
                self.stats['converted'] += 1
            if FLOAT in need:
                inits.append(numpy_helper.from_array(arr, self.version[(t.name, FLOAT)]))
                self.stats['kept32'] += 1
            # an initializer no node reads is dropped
        del g.initializer[:]
        g.initializer.extend(inits)
        for v in g.input:  # IR < 4 models list initializers as inputs too: follow the initializer
            if v.name in self.init_names and self.types[v.name] == FLOAT:
                v.type.tensor_type.elem_type = FLOAT16 if (v.name, FLOAT16) in self.version else FLOAT

    def update_value_info(self):
        for v in self.graph.value_info:
            name = v.name
            if self.types.get(name) == FLOAT and v.type.HasField('tensor_type'):
                own = [t for (n, t), vn in self.version.items() if n == name and vn == name]
                v.type.tensor_type.elem_type = own[0] if own else self.native(name)

    def run(self):
        self.check_supported()
        self.analyse()
        self.plan_names()
        self.build_nodes()
        self.convert_initializers()
        self.update_value_info()
        return self.model


def io_signature(graph):
    return [(v.name, v.type.SerializeToString()) for v in list(graph.input) + list(graph.output)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('input', help='float32 ONNX model')
    ap.add_argument('output', help='float16 ONNX model to write')
    args = ap.parse_args()
    try:
        model = onnx.load(args.input)
    except Exception as ex:  # noqa: BLE001 (onnx raises several unrelated types)
        print(f'onnx_fp16: {args.input}: cannot read the model: {ex}', file=sys.stderr)
        return 2
    bytes_before = os.path.getsize(args.input)
    before = io_signature(model.graph)
    conv = Converter(model)
    try:
        conv.run()
    except Refused as ex:
        print(f'onnx_fp16: {args.input}: {ex}; nothing written', file=sys.stderr)
        return 2
    if io_signature(model.graph) != before:
        print('onnx_fp16: internal error: graph inputs/outputs changed; nothing written', file=sys.stderr)
        return 1
    try:
        onnx.checker.check_model(model)
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except Exception as ex:  # noqa: BLE001
        print(f'onnx_fp16: internal error: the converted model does not check: {ex}; nothing written',
              file=sys.stderr)
        return 1
    tmp = args.output + '.tmp'
    onnx.save(model, tmp)
    os.replace(tmp, args.output)  # atomic: a half-written model never has the final name
    s = conv.stats
    if s['clamped']:
        print(f'onnx_fp16: warning: {s["clamped"]} weight values beyond +-65504 clamped', file=sys.stderr)
    print(f'onnx_fp16: {os.path.basename(args.input)} -> {os.path.basename(args.output)}: '
          f'{s["converted"]} initializers/constants to float16, {s["kept32"]} kept float32, {s["casts"]} casts, '
          f'{bytes_before} -> {os.path.getsize(args.output)} bytes')
    return 0


if __name__ == '__main__':
    sys.exit(main())
