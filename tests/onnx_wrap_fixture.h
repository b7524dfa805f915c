/* onnx_wrap_fixture.h - helpers for test_onnx_wrap.c: ORT sessions from bytes and runs of the
 * float UNet or its uint8 wrapping, and a tiny hand-made "UNet" built with protobuf-c whose output
 * can be NaN, infinite or out of range on demand. Test code only; aborts on fixture failures. */
#ifndef LS_ONNX_WRAP_FIXTURE_H
#define LS_ONNX_WRAP_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/ort_runtime.h"
#include "onnx/onnx.pb-c.h"

static ort_runtime *fx_rt;

/* Releases an ORT status, printing its message; 0 for success, -1 otherwise. */
static int fx_ok(OrtStatus *st) {
    if (!st) return 0;
    fprintf(stderr, "  ORT: %s\n", ort_runtime_api(fx_rt)->GetErrorMessage(st));
    ort_runtime_api(fx_rt)->ReleaseStatus(st);
    return -1;
}

/* A session over model bytes (2 intra-op threads); NULL after printing ORT's message. */
static OrtSession *fx_session(const void *bytes, size_t len) {
    const OrtApi *api = ort_runtime_api(fx_rt);
    OrtSessionOptions *so = NULL;
    OrtSession *s = NULL;
    OrtStatus *st = api->CreateSessionOptions(&so);
    if (!st) st = api->SetIntraOpNumThreads(so, 2);
    if (!st) st = api->CreateSessionFromArray(ort_runtime_env(fx_rt), bytes, len, so, &s);
    if (st) fprintf(stderr, "  session: %s\n", api->GetErrorMessage(st)), api->ReleaseStatus(st);
    if (so) api->ReleaseSessionOptions(so);
    return s;
}

/* One Run: image (uint8 crops when u8, else float NCHW input) + audio -> out. 0 or -1. */
static int fx_run(OrtSession *s, int u8, int batch, void *image, float *audio, void *out) {
    const OrtApi *api = ort_runtime_api(fx_rt);
    const int64_t img_u8[4] = {batch, 328, 328, 3}, img_f[4] = {batch, 6, 320, 320};
    const int64_t aud[4] = {batch, 32, 16, 16}, out_u8[4] = {batch, 320, 320, 3}, out_f[4] = {batch, 3, 320, 320};
    const size_t n = (size_t)batch;
    ONNXTensorElementDataType t = u8 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    size_t esz = u8 ? 1 : sizeof(float);
    OrtMemoryInfo *mem = NULL;
    OrtValue *in[2] = {NULL, NULL}, *o = NULL;
    const char *in_names[2] = {u8 ? "crop_u8" : "input", "audio"}, *out_name = u8 ? "output_u8" : "output";
    OrtStatus *st = api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mem);
    if (!st) st = api->CreateTensorWithDataAsOrtValue(mem, image, n * (u8 ? 328 * 328 * 3 : 6 * 320 * 320) * esz,
                                                      u8 ? img_u8 : img_f, 4, t, &in[0]);
    if (!st) st = api->CreateTensorWithDataAsOrtValue(mem, audio, n * 32 * 16 * 16 * sizeof(float), aud, 4,
                                                      ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in[1]);
    if (!st) st = api->CreateTensorWithDataAsOrtValue(mem, out, n * 3 * 320 * 320 * esz, u8 ? out_u8 : out_f, 4, t, &o);
    if (!st) st = api->Run(s, NULL, in_names, (const OrtValue *const *)in, 2, &out_name, 1, &o);
    int rc = st ? -1 : 0;
    if (st) fprintf(stderr, "  run: %s\n", api->GetErrorMessage(st)), api->ReleaseStatus(st);
    for (int i = 0; i < 2; i++) api->ReleaseValue(in[i]);
    api->ReleaseValue(o);
    api->ReleaseMemoryInfo(mem);
    return rc;
}

/* ---- the tiny model: output = input[:, 0:3] * audio[:, 0, 0, 0] (per item), so the audio's first
 * value picks NaN, +-inf, huge or negative outputs. Variants make it invalid in one way each. ---- */
typedef struct tiny_opts {
    const char *in_name, *out_name; /* NULL: "input", "output" */
    int64_t opset;                  /* 0: 13 */
    int external;                   /* add an initializer whose data is in an external file */
    const char *node_name;          /* NULL: "mul" */
} tiny_opts;

static Onnx__ValueInfoProto *fx_value(const char *name, int64_t d1, int64_t d2, int64_t d3) {
    Onnx__ValueInfoProto *v = calloc(1, sizeof *v);
    Onnx__TypeProto *tp = calloc(1, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = calloc(1, sizeof *tt);
    Onnx__TensorShapeProto *sh = calloc(1, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dims = calloc(4, sizeof *dims);
    int64_t d[3] = {d1, d2, d3};
    for (int i = 0; i < 4; i++) {
        dims[i] = calloc(1, sizeof **dims);
        *dims[i] = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
        if (i == 0) dims[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM, dims[i]->dim_param = "N";
        else dims[i]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE, dims[i]->dim_value = d[i - 1];
    }
    *sh = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
    sh->n_dim = 4, sh->dim = dims;
    *tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
    tt->has_elem_type = 1, tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, tt->shape = sh;
    *tp = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, tp->tensor_type = tt;
    *v = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
    v->name = (char *)name, v->type = tp;
    return v;
}

static void fx_free_value(Onnx__ValueInfoProto *v) {
    Onnx__TensorShapeProto *sh = v->type->tensor_type->shape;
    for (int i = 0; i < 4; i++) free(sh->dim[i]);
    free(sh->dim), free(sh), free(v->type->tensor_type), free(v->type), free(v);
}

static Onnx__TensorProto *fx_i64(const char *name, const int64_t *v, size_t n) {
    static int64_t one[1] = {1}, three[1] = {3}; /* the only lengths used */
    Onnx__TensorProto *t = calloc(1, sizeof *t);
    *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    t->name = (char *)name, t->n_dims = 1, t->dims = n == 1 ? one : three;
    t->has_data_type = 1, t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    t->n_int64_data = n, t->int64_data = (int64_t *)v;
    return t;
}

static Onnx__NodeProto *fx_node(const char *op, const char *name, char **in, size_t n_in, char **out) {
    Onnx__NodeProto *nd = calloc(1, sizeof *nd);
    *nd = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
    nd->op_type = (char *)op, nd->name = (char *)name, nd->input = in, nd->n_input = n_in;
    nd->output = out, nd->n_output = 1;
    return nd;
}

/* The serialized tiny model (malloc'd), its size in *len. */
static void *fx_tiny_model(const tiny_opts *o, size_t *len) {
    static const int64_t v0[1] = {0}, v3[1] = {3}, v1[1] = {1}, z3[3] = {0, 0, 0}, o3[3] = {1, 1, 1}, a3[3] = {1, 2, 3};
    const char *in_name = o->in_name ? o->in_name : "input", *out_name = o->out_name ? o->out_name : "output";
    char *s1_in[4] = {(char *)in_name, "c0", "c3", "c1"}, *s1_out[1] = {"real3"};
    char *s2_in[4] = {"audio", "z3", "o3", "a3"}, *s2_out[1] = {"scale"};
    char *m_in[2] = {"real3", "scale"}, *m_out[1] = {(char *)out_name};
    Onnx__NodeProto *nodes[3] = {fx_node("Slice", "slice_img", s1_in, 4, s1_out),
                                 fx_node("Slice", "slice_audio", s2_in, 4, s2_out),
                                 fx_node("Mul", o->node_name ? o->node_name : "mul", m_in, 2, m_out)};
    Onnx__TensorProto *inits[7] = {fx_i64("c0", v0, 1), fx_i64("c3", v3, 1), fx_i64("c1", v1, 1),
                                   fx_i64("z3", z3, 3), fx_i64("o3", o3, 3), fx_i64("a3", a3, 3), NULL};
    size_t n_inits = 6;
    Onnx__StringStringEntryProto loc = ONNX__STRING_STRING_ENTRY_PROTO__INIT, *locs[1] = {&loc};
    if (o->external) {
        Onnx__TensorProto *t = inits[n_inits++] = fx_i64("weights", v0, 1);
        t->n_int64_data = 0, t->has_data_location = 1;
        t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
        loc.key = "location", loc.value = "weights.bin";
        t->n_external_data = 1, t->external_data = locs;
    }
    Onnx__ValueInfoProto *ins[2] = {fx_value(in_name, 6, 320, 320), fx_value("audio", 32, 16, 16)};
    Onnx__ValueInfoProto *outs[1] = {fx_value(out_name, 3, 320, 320)};
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    g.name = "tiny", g.n_node = 3, g.node = nodes, g.n_initializer = n_inits, g.initializer = inits;
    g.n_input = 2, g.input = ins, g.n_output = 1, g.output = outs;
    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT, *opsets[1] = {&opset};
    opset.domain = "", opset.has_version = 1, opset.version = o->opset ? o->opset : 13;
    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    m.has_ir_version = 1, m.ir_version = 8, m.n_opset_import = 1, m.opset_import = opsets, m.graph = &g;
    *len = protobuf_c_message_get_packed_size(&m.base);
    void *buf = malloc(*len);
    if (!buf || protobuf_c_message_pack(&m.base, buf) != *len) abort();
    for (int i = 0; i < 3; i++) free(nodes[i]);
    for (size_t i = 0; i < n_inits; i++) free(inits[i]);
    fx_free_value(ins[0]), fx_free_value(ins[1]), fx_free_value(outs[0]);
    return buf;
}

#endif
