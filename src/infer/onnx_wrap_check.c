/* onnx_wrap_check.c - what onnx_wrap_unet_u8 checks before touching a model (see onnx_wrap.h):
 * the nesting depth of the raw bytes, then on the parsed ModelProto the opset, external data,
 * reserved names and the UNet's three tensors. */
#include "infer/onnx_wrap_priv.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* protobuf-c unpacks nested messages recursively with no depth limit, so a hostile file of nested
 * subgraphs could exhaust the stack. This walks the wire format first (iteratively within a
 * message, recursing only into fields that the schema says are messages, at most
 * WRAP_MAX_DEPTH deep): the same limit protobuf's own readers (ONNX, ONNX Runtime) apply. */
static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

static int scan(const uint8_t *p, const uint8_t *end, const ProtobufCMessageDescriptor *d, int depth) {
    if (depth > WRAP_MAX_DEPTH) return -1;
    while (p < end) {
        uint64_t tag, v;
        if (read_varint(&p, end, &tag)) return -1;
        switch (tag & 7) {
        case 0: /* varint */
            if (read_varint(&p, end, &v)) return -1;
            break;
        case 1: /* 64-bit */
            if (end - p < 8) return -1;
            p += 8;
            break;
        case 5: /* 32-bit */
            if (end - p < 4) return -1;
            p += 4;
            break;
        case 2: { /* length-delimited: bytes, string, packed array or a nested message */
            if (read_varint(&p, end, &v) || v > (uint64_t)(end - p)) return -1;
            uint64_t num = tag >> 3;
            const ProtobufCFieldDescriptor *f =
                num <= 0x1fffffff ? protobuf_c_message_descriptor_get_field(d, (unsigned)num) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && scan(p, p + v, f->descriptor, depth + 1))
                return -1;
            p += v;
            break;
        }
        default: /* groups (3, 4) are not in ONNX's schema; 6, 7 do not exist */
            return -1;
        }
    }
    return 0;
}

int wrap_check_bytes(const void *model, size_t len, ls_err *err) {
    const uint8_t *p = model;
    if (scan(p, p + len, &onnx__model_proto__descriptor, 0))
        return ls_fail(err, LS_EFORMAT, "not an ONNX model: malformed protobuf or nested deeper than %d",
                       WRAP_MAX_DEPTH);
    return 0;
}

int wrap_check_opset(const Onnx__ModelProto *m, ls_err *err) {
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        if (o->domain && *o->domain && strcmp(o->domain, "ai.onnx") != 0) continue;
        if (!o->has_version || o->version < ONNX_WRAP_MIN_OPSET)
            return ls_fail(err, LS_EMODEL, "the model uses ONNX opset %lld; wrapping needs opset %d or later",
                           (long long)(o->has_version ? o->version : 0), ONNX_WRAP_MIN_OPSET);
        return 0;
    }
    return ls_fail(err, LS_EMODEL, "the model imports no default-domain ONNX opset");
}

/* ---- a walk over every graph (subgraphs included) for external data and reserved names ---- */

static int external(const Onnx__TensorProto *t) {
    return t && ((t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) ||
                 t->n_external_data > 0);
}

static int sparse_external(const Onnx__SparseTensorProto *s) {
    return s && (external(s->values) || external(s->indices));
}

static int reserved(const char *name) {
    return name && (strncmp(name, ONNX_WRAP_PREFIX, strlen(ONNX_WRAP_PREFIX)) == 0 ||
                    strcmp(name, ONNX_WRAP_INPUT) == 0 || strcmp(name, ONNX_WRAP_OUTPUT) == 0);
}

static int fail_name(const char *name, ls_err *err) {
    return ls_fail(err, LS_EMODEL,
                   "the model already uses the name '%s', reserved for the uint8 wrapper ('%s', '%s', "
                   "'%s*'); is it already wrapped?", name, ONNX_WRAP_INPUT, ONNX_WRAP_OUTPUT, ONNX_WRAP_PREFIX);
}

static int fail_external(ls_err *err) {
    return ls_fail(err, LS_EMODEL, "external data is not supported: save the model with its weights inside");
}

static int walk_graph(const Onnx__GraphProto *g, ls_err *err);

static int walk_nodes(Onnx__NodeProto *const *nodes, size_t n, ls_err *err) {
    for (size_t i = 0; i < n; i++) {
        const Onnx__NodeProto *nd = nodes[i];
        if (reserved(nd->name)) return fail_name(nd->name, err);
        for (size_t k = 0; k < nd->n_input; k++)
            if (reserved(nd->input[k])) return fail_name(nd->input[k], err);
        for (size_t k = 0; k < nd->n_output; k++)
            if (reserved(nd->output[k])) return fail_name(nd->output[k], err);
        for (size_t k = 0; k < nd->n_attribute; k++) {
            const Onnx__AttributeProto *a = nd->attribute[k];
            if (external(a->t) || sparse_external(a->sparse_tensor)) return fail_external(err);
            for (size_t j = 0; j < a->n_tensors; j++)
                if (external(a->tensors[j])) return fail_external(err);
            for (size_t j = 0; j < a->n_sparse_tensors; j++)
                if (sparse_external(a->sparse_tensors[j])) return fail_external(err);
            if (a->g && walk_graph(a->g, err)) return -1;
            for (size_t j = 0; j < a->n_graphs; j++)
                if (walk_graph(a->graphs[j], err)) return -1;
        }
    }
    return 0;
}

static int walk_values(Onnx__ValueInfoProto *const *v, size_t n, ls_err *err) {
    for (size_t i = 0; i < n; i++)
        if (reserved(v[i]->name)) return fail_name(v[i]->name, err);
    return 0;
}

/* Depth is bounded by wrap_check_bytes, so this recursion is too. */
static int walk_graph(const Onnx__GraphProto *g, ls_err *err) {
    for (size_t i = 0; i < g->n_initializer; i++) {
        if (external(g->initializer[i])) return fail_external(err);
        if (reserved(g->initializer[i]->name)) return fail_name(g->initializer[i]->name, err);
    }
    for (size_t i = 0; i < g->n_sparse_initializer; i++)
        if (sparse_external(g->sparse_initializer[i])) return fail_external(err);
    if (walk_values(g->input, g->n_input, err) || walk_values(g->output, g->n_output, err) ||
        walk_values(g->value_info, g->n_value_info, err))
        return -1;
    return walk_nodes(g->node, g->n_node, err);
}

int wrap_check_contents(const Onnx__ModelProto *m, ls_err *err) {
    if (walk_graph(m->graph, err)) return -1;
    for (size_t i = 0; i < m->n_functions; i++)
        if (walk_nodes(m->functions[i]->node, m->functions[i]->n_node, err)) return -1;
    return 0;
}

/* ---- the UNet's tensors ---- */

/* Appends to a message buffer, never past its end. */
static void add(char *buf, size_t cap, size_t *n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void add(char *buf, size_t cap, size_t *n, const char *fmt, ...) {
    if (*n >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *n, cap - *n, fmt, ap);
    va_end(ap);
    if (k > 0) *n += (size_t)k;
}

static const Onnx__TypeProto__Tensor *tensor_type(const Onnx__ValueInfoProto *v) {
    return v->type && v->type->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ? v->type->tensor_type : NULL;
}

/* "float32 [batch,6,320,320]" for messages. */
static const char *type_str(const Onnx__ValueInfoProto *v, char *buf, size_t cap) {
    const Onnx__TypeProto__Tensor *t = tensor_type(v);
    size_t n = 0;
    buf[0] = 0;
    if (!t) return add(buf, cap, &n, "not a tensor"), buf;
    int elem = t->has_elem_type ? t->elem_type : 0;
    if (elem == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) add(buf, cap, &n, "float32");
    else add(buf, cap, &n, "element type %d", elem);
    if (!t->shape) return add(buf, cap, &n, " of unknown shape"), buf;
    add(buf, cap, &n, " [");
    for (size_t i = 0; i < t->shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = t->shape->dim[i];
        const char *sep = i ? "," : "";
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
            add(buf, cap, &n, "%s%lld", sep, (long long)d->dim_value);
        else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM)
            add(buf, cap, &n, "%s%.32s", sep, d->dim_param);
        else
            add(buf, cap, &n, "%s?", sep);
    }
    add(buf, cap, &n, "]");
    return buf;
}

/* 0 when v is a float32 tensor of rank 4 whose dims 1..3 are fixed to want[1..3] (dim 0, the batch,
 * may be anything). */
static int shape_ok(const Onnx__ValueInfoProto *v, const int64_t want[4]) {
    const Onnx__TypeProto__Tensor *t = tensor_type(v);
    if (!t || !t->has_elem_type || t->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || !t->shape ||
        t->shape->n_dim != 4)
        return -1;
    for (int i = 1; i < 4; i++) {
        const Onnx__TensorShapeProto__Dimension *d = t->shape->dim[i];
        if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE || d->dim_value != want[i])
            return -1;
    }
    return 0;
}

static int find(Onnx__ValueInfoProto *const *v, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (v[i]->name && strcmp(v[i]->name, name) == 0) return (int)i;
    return -1;
}

int wrap_find_unet(const Onnx__GraphProto *g, wrap_unet *u, ls_err *err) {
    static const struct { const char *name, *want; int64_t dims[4]; int is_out; } spec[3] = {
        {"input", "[B,6,320,320]", {-1, 6, 320, 320}, 0},
        {"audio", "[B,32,16,16]", {-1, 32, 16, 16}, 0},
        {"output", "[B,3,320,320]", {-1, 3, 320, 320}, 1},
    };
    int *idx[3] = {&u->input, &u->audio, &u->output};
    if (g->n_input > INT32_MAX || g->n_output > INT32_MAX) return ls_fail(err, LS_EMODEL, "too many graph inputs");
    for (int k = 0; k < 3; k++) {
        Onnx__ValueInfoProto *const *v = spec[k].is_out ? g->output : g->input;
        int i = find(v, spec[k].is_out ? g->n_output : g->n_input, spec[k].name);
        if (i < 0)
            return ls_fail(err, LS_EMODEL, "the model has no %s named '%s' (a SyncTalk_2D UNet has inputs "
                           "'input', 'audio' and output 'output')", spec[k].is_out ? "output" : "input",
                           spec[k].name);
        char buf[128];
        if (shape_ok(v[i], spec[k].dims))
            return ls_fail(err, LS_EMODEL, "UNet %s '%s' is %s, expected float32 %s",
                           spec[k].is_out ? "output" : "input", spec[k].name, type_str(v[i], buf, sizeof buf),
                           spec[k].want);
        *idx[k] = i;
    }
    /* An initializer named `input` would be a default value that our Concat then duplicates. */
    for (size_t i = 0; i < g->n_initializer; i++)
        if (g->initializer[i]->name && strcmp(g->initializer[i]->name, "input") == 0)
            return ls_fail(err, LS_EMODEL, "the UNet's 'input' also has an initializer; it must be a plain input");
    return 0;
}
