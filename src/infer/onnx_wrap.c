/* onnx_wrap.c - the UNet wrapped with uint8 pre- and post-processing nodes (see onnx_wrap.h).
 *
 * The user's ModelProto is parsed with protobuf-c and never modified: the wrapped model is a
 * shallow copy whose graph lists point at the original nodes, weights and value infos plus the new
 * nodes, all of which live in one arena freed after packing. New names use ONNX_WRAP_PREFIX.
 * Constants are Constant nodes rather than initializers, so IR versions before 4 (where every
 * initializer must also be a graph input) need no special case. */
#include "infer/onnx_wrap_priv.h"

#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "image/prepare.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "TensorProto.raw_data is little-endian: the constants below are written in host order"
#endif

#define P ONNX_WRAP_PREFIX
#define MASK_FLOATS ((size_t)PREP_SIZE * PREP_SIZE)
#define N_PRE 11  /* nodes before the UNet, N_POST after: see add_pre / add_post */
#define N_POST 8

typedef struct builder {
    ls_arena a;
    int oom; /* an allocation failed: everything after it is NULL and the result is discarded */
} builder;

static void *bnew(builder *b, size_t size) {
    void *p = arena_alloc(&b->a, size, 16);
    if (!p) {
        b->oom = 1;
        return NULL;
    }
    return memset(p, 0, size);
}

/* protobuf-c's structs have `char *` names; packing only reads them, so literals are safe. */
static char *str(const char *s) { return (char *)s; }

static Onnx__TensorProto *tensor(builder *b, int type, const int64_t *dims, size_t n_dims, const void *raw,
                                 size_t raw_len) {
    Onnx__TensorProto *t = bnew(b, sizeof *t);
    if (!t) return NULL;
    *t = (Onnx__TensorProto)ONNX__TENSOR_PROTO__INIT;
    t->n_dims = n_dims;
    t->dims = (int64_t *)dims;
    t->has_data_type = 1;
    t->data_type = type;
    t->has_raw_data = 1;
    t->raw_data = (ProtobufCBinaryData){raw_len, (uint8_t *)raw};
    return t;
}

static Onnx__AttributeProto *attr(builder *b, const char *name, Onnx__AttributeProto__AttributeType type) {
    Onnx__AttributeProto *a = bnew(b, sizeof *a);
    if (!a) return NULL;
    *a = (Onnx__AttributeProto)ONNX__ATTRIBUTE_PROTO__INIT;
    a->name = str(name);
    a->has_type = 1;
    a->type = type;
    return a;
}

static Onnx__AttributeProto *attr_int(builder *b, const char *name, int64_t v) {
    Onnx__AttributeProto *a = attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) a->has_i = 1, a->i = v;
    return a;
}

static Onnx__AttributeProto *attr_ints(builder *b, const char *name, const int64_t *v, size_t n) {
    Onnx__AttributeProto *a = attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    if (a) a->n_ints = n, a->ints = (int64_t *)v;
    return a;
}

/* One node with at most one attribute; its name is its output's. `in` is copied (callers pass
 * compound literals). */
static Onnx__NodeProto *node(builder *b, const char *op, const char *const *in, size_t n_in, const char *out,
                             Onnx__AttributeProto *at) {
    Onnx__NodeProto *nd = bnew(b, sizeof *nd);
    char **ins = bnew(b, (n_in + 1) * sizeof *ins), **outs = bnew(b, sizeof *outs);
    Onnx__AttributeProto **ats = bnew(b, sizeof *ats);
    if (!nd || !ins || !outs || !ats) return NULL;
    for (size_t i = 0; i < n_in; i++) ins[i] = str(in[i]);
    *nd = (Onnx__NodeProto)ONNX__NODE_PROTO__INIT;
    nd->op_type = str(op);
    nd->name = str(out);
    nd->n_input = n_in;
    nd->input = ins;
    outs[0] = str(out);
    nd->n_output = 1;
    nd->output = outs;
    if (at) {
        ats[0] = at;
        nd->n_attribute = 1;
        nd->attribute = ats;
    }
    return nd;
}

static Onnx__NodeProto *constant(builder *b, const char *out, Onnx__TensorProto *t) {
    Onnx__AttributeProto *a = attr(b, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    if (a) a->t = t;
    return node(b, "Constant", NULL, 0, out, a);
}

#define IN(...) (const char *const[]){__VA_ARGS__}, sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *)

static const float k0 = 0.0f, k255 = 255.0f;
static const int64_t slice_starts[2] = {PREP_BORDER, PREP_BORDER}, slice_ends[2] = {PREP_BORDER + PREP_SIZE,
                                                                                   PREP_BORDER + PREP_SIZE},
                     slice_axes[2] = {1, 2}, two[1] = {2}, to_nchw[4] = {0, 3, 1, 2}, to_nhwc[4] = {0, 2, 3, 1},
                     mask_dims[4] = {1, 1, PREP_SIZE, PREP_SIZE};

/* 1 outside the mouth rectangle, 0 inside: prep_input_from_crop's masked copy. */
static float *make_mask(builder *b) {
    float *m = bnew(b, MASK_FLOATS * sizeof *m);
    if (!m) return NULL;
    for (int y = 0; y < PREP_SIZE; y++)
        for (int x = 0; x < PREP_SIZE; x++)
            m[(size_t)y * PREP_SIZE + x] =
                (x >= PREP_MASK_X0 && x <= PREP_MASK_X1 && y >= PREP_MASK_Y0 && y <= PREP_MASK_Y1) ? 0.0f : 1.0f;
    return m;
}

/* crop_u8 -> the UNet's `input` (whose name the Concat's output takes over). */
static void add_pre(builder *b, Onnx__NodeProto **n) {
    const int F = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, I64 = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    n[0] = constant(b, P "starts", tensor(b, I64, two, 1, slice_starts, sizeof slice_starts));
    n[1] = constant(b, P "ends", tensor(b, I64, two, 1, slice_ends, sizeof slice_ends));
    n[2] = constant(b, P "axes", tensor(b, I64, two, 1, slice_axes, sizeof slice_axes));
    n[3] = constant(b, P "255", tensor(b, F, NULL, 0, &k255, sizeof k255));
    n[4] = constant(b, P "mask", tensor(b, F, mask_dims, 4, make_mask(b), MASK_FLOATS * sizeof(float)));
    n[5] = node(b, "Slice", IN(ONNX_WRAP_INPUT, P "starts", P "ends", P "axes"), P "inner_u8", NULL);
    n[6] = node(b, "Cast", IN(P "inner_u8"), P "inner", attr_int(b, "to", F));
    /* A true division, as prepare.c (and numpy) round it: x * (1/255) differs in the last bit. */
    n[7] = node(b, "Div", IN(P "inner", P "255"), P "real_nhwc", NULL);
    n[8] = node(b, "Transpose", IN(P "real_nhwc"), P "real", attr_ints(b, "perm", to_nchw, 4));
    n[9] = node(b, "Mul", IN(P "real", P "mask"), P "masked", NULL);
    n[10] = node(b, "Concat", IN(P "real", P "masked"), "input", attr_int(b, "axis", 1));
}

/* The UNet's `output` -> output_u8, as paste.c's to_u8: v = p * 255; NaN -> 0; clamp to 0..255;
 * truncate (Floor, the values being non-negative); uint8; HWC. */
static void add_post(builder *b, Onnx__NodeProto **n) {
    const int F = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, U8 = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
    n[0] = constant(b, P "0", tensor(b, F, NULL, 0, &k0, sizeof k0));
    n[1] = node(b, "Mul", IN("output", P "255"), P "scaled", NULL);
    n[2] = node(b, "IsNaN", IN(P "scaled"), P "is_nan", NULL);
    n[3] = node(b, "Where", IN(P "is_nan", P "0", P "scaled"), P "no_nan", NULL);
    n[4] = node(b, "Clip", IN(P "no_nan", P "0", P "255"), P "clipped", NULL);
    n[5] = node(b, "Floor", IN(P "clipped"), P "whole", NULL);
    n[6] = node(b, "Cast", IN(P "whole"), P "u8_nchw", attr_int(b, "to", U8));
    n[7] = node(b, "Transpose", IN(P "u8_nchw"), ONNX_WRAP_OUTPUT, attr_ints(b, "perm", to_nhwc, 4));
}

/* A uint8 tensor value [batch, d1, d2, d3], the batch dimension shared with the original's. */
static Onnx__ValueInfoProto *u8_value(builder *b, const char *name, Onnx__TensorShapeProto__Dimension *batch,
                                      int64_t d1, int64_t d2, int64_t d3) {
    Onnx__ValueInfoProto *v = bnew(b, sizeof *v);
    Onnx__TypeProto *tp = bnew(b, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = bnew(b, sizeof *tt);
    Onnx__TensorShapeProto *sh = bnew(b, sizeof *sh);
    Onnx__TensorShapeProto__Dimension *d = bnew(b, 3 * sizeof *d), **dims = bnew(b, 4 * sizeof *dims);
    if (!v || !tp || !tt || !sh || !d || !dims) return NULL;
    int64_t side[3] = {d1, d2, d3};
    dims[0] = batch;
    for (int i = 0; i < 3; i++) {
        d[i] = (Onnx__TensorShapeProto__Dimension)ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
        d[i].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d[i].dim_value = side[i];
        dims[i + 1] = &d[i];
    }
    *sh = (Onnx__TensorShapeProto)ONNX__TENSOR_SHAPE_PROTO__INIT;
    sh->n_dim = 4;
    sh->dim = dims;
    *tt = (Onnx__TypeProto__Tensor)ONNX__TYPE_PROTO__TENSOR__INIT;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
    tt->shape = sh;
    *tp = (Onnx__TypeProto)ONNX__TYPE_PROTO__INIT;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    *v = (Onnx__ValueInfoProto)ONNX__VALUE_INFO_PROTO__INIT;
    v->name = str(name);
    v->type = tp;
    return v;
}

/* Copy of a pointer list with room for `extra` more at the end. */
static void *list(builder *b, void *const *src, size_t n, size_t extra) {
    void **l = bnew(b, (n + extra) * sizeof *l);
    if (l && n) memcpy(l, src, n * sizeof *l);
    return l;
}

static Onnx__TensorShapeProto__Dimension *batch_dim(const Onnx__ValueInfoProto *v) {
    return v->type->tensor_type->shape->dim[0]; /* rank 4 checked by wrap_find_unet */
}

/* The wrapped model as a shallow copy of m: new graph lists, everything else shared. */
static int build(builder *b, const Onnx__ModelProto *m, const wrap_unet *u, void **out, size_t *out_len,
                 ls_err *err) {
    const Onnx__GraphProto *g = m->graph;
    Onnx__GraphProto g2 = *g;
    Onnx__ModelProto m2 = *m;
    m2.graph = &g2;

    Onnx__NodeProto **nodes = list(b, NULL, 0, N_PRE + g->n_node + N_POST);
    g2.input = list(b, (void *const *)g->input, g->n_input, 0);
    g2.output = list(b, (void *const *)g->output, g->n_output, 0);
    g2.value_info = list(b, (void *const *)g->value_info, g->n_value_info, 2);
    Onnx__ValueInfoProto *in = u8_value(b, ONNX_WRAP_INPUT, batch_dim(g->input[u->input]), PREP_CROP, PREP_CROP, 3);
    Onnx__ValueInfoProto *o = u8_value(b, ONNX_WRAP_OUTPUT, batch_dim(g->output[u->output]), PREP_SIZE, PREP_SIZE, 3);
    if (!nodes || b->oom) return ls_fail(err, LS_ENOMEM, "wrapping the UNet: out of memory");
    add_pre(b, nodes);
    memcpy(nodes + N_PRE, g->node, g->n_node * sizeof *nodes);
    add_post(b, nodes + N_PRE + g->n_node);
    if (b->oom) return ls_fail(err, LS_ENOMEM, "wrapping the UNet: out of memory");
    g2.node = nodes;
    g2.n_node = N_PRE + g->n_node + N_POST;
    /* crop_u8 and output_u8 take the places of input and output, which become inner values (their
     * types kept as value_info, for shape inference). */
    g2.input[u->input] = in;
    g2.output[u->output] = o;
    g2.value_info[g2.n_value_info++] = g->input[u->input];
    g2.value_info[g2.n_value_info++] = g->output[u->output];

    size_t size = protobuf_c_message_get_packed_size(&m2.base);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return ls_fail(err, LS_ENOMEM, "wrapping the UNet: cannot allocate %zu bytes", size);
    if (protobuf_c_message_pack(&m2.base, buf) != size) {
        free(buf);
        return ls_fail(err, LS_EINTERNAL, "wrapping the UNet: protobuf-c packed an unexpected size");
    }
    *out = buf;
    *out_len = size;
    return 0;
}

int onnx_wrap_unet_u8(const void *model, size_t len, void **out, size_t *out_len, ls_err *err) {
    if (!out || !out_len) return ls_fail(err, LS_EINVAL, "onnx_wrap_unet_u8: NULL out or out_len");
    *out = NULL;
    *out_len = 0;
    if (!model || len == 0) return ls_fail(err, LS_EFORMAT, "not an ONNX model: no bytes");
    if (wrap_check_bytes(model, len, err)) return -1;
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, len, model);
    if (!m) return ls_fail(err, LS_EFORMAT, "not an ONNX model: the protobuf does not parse as a ModelProto");
    int rc = -1;
    wrap_unet u;
    builder b = {0};
    if (!m->graph) {
        ls_fail(err, LS_EFORMAT, "not an ONNX model: no graph");
        goto done;
    }
    if (wrap_check_opset(m, err) || wrap_check_contents(m, err) || wrap_find_unet(m->graph, &u, err)) goto done;
    /* Everything new: the mask, ~20 small nodes, and the graph's lists. */
    const Onnx__GraphProto *g = m->graph;
    size_t cap = MASK_FLOATS * sizeof(float) + 64 * 1024 +
                 (N_PRE + N_POST + g->n_node + g->n_input + g->n_output + g->n_value_info + 2 + 4 * 2) *
                     sizeof(void *); /* the four lists, with their alignment */
    if (arena_init(&b.a, cap)) {
        ls_fail(err, LS_ENOMEM, "wrapping the UNet: cannot allocate %zu bytes", cap);
        goto done;
    }
    rc = build(&b, m, &u, out, out_len, err);
done:
    arena_free(&b.a);
    onnx__model_proto__free_unpacked(m, NULL);
    return rc;
}
