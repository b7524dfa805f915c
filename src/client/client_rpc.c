/* client_rpc.c - channel creation and the blocking unary call of the lipsyncd client, on the gRPC
 * core C API: one batch of the six unary ops on a per-call pluck completion queue. */
#include "client/client_rpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#define CLI_MAX_CA_BYTES (1u << 20)

struct cli_conn {
    grpc_channel *channel;
    char *auth_value; /* "Bearer <token>" or NULL */
    int timeout_ms;
};

double cli_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

const char *cli_status_name(int status) {
    static const char *const names[] = {
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
        "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
        "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
        "UNAUTHENTICATED"};
    if (status == CLI_STATUS_LOCAL) return "LOCAL";
    if (status < 0 || status >= (int)(sizeof names / sizeof names[0])) return "UNKNOWN";
    return names[status];
}

/* The ls_code a gRPC status stands for (inverse of the server's mapping, roughly). */
ls_code cli_code_from_status(int s) {
    switch ((grpc_status_code)s) {
    case GRPC_STATUS_INVALID_ARGUMENT: case GRPC_STATUS_OUT_OF_RANGE: return LS_EINVAL;
    case GRPC_STATUS_NOT_FOUND: return LS_ENOTFOUND;
    case GRPC_STATUS_RESOURCE_EXHAUSTED: return LS_ENOMEM;
    case GRPC_STATUS_UNAVAILABLE: return LS_EBUSY;
    case GRPC_STATUS_CANCELLED: case GRPC_STATUS_DEADLINE_EXCEEDED: return LS_ECANCELLED;
    case GRPC_STATUS_FAILED_PRECONDITION: return LS_EFORMAT;
    case GRPC_STATUS_INTERNAL: case GRPC_STATUS_DATA_LOSS: return LS_EINTERNAL;
    default: return LS_EIO;
    }
}

/* Reads a small text file (a PEM bundle) into a NUL-terminated malloc'd string. */
static char *read_text_file(const char *path, ls_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        ls_fail(err, LS_EIO, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(CLI_MAX_CA_BYTES + 1);
    size_t n = buf ? fread(buf, 1, CLI_MAX_CA_BYTES + 1, f) : 0;
    int bad = !buf || ferror(f);
    fclose(f);
    if (bad || n == 0 || n > CLI_MAX_CA_BYTES) {
        free(buf);
        ls_fail(err, LS_EIO, "%s: %s", path, !buf ? "out of memory" : n == 0 ? "empty or unreadable"
                                                                     : "larger than 1 MiB");
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

cli_conn *cli_conn_open(const cli_conn_opts *o, ls_err *err) {
    if (!o || !o->target || !*o->target) {
        ls_fail(err, LS_EINVAL, "no server address given (--server HOST:PORT)");
        return NULL;
    }
    if (o->timeout_ms < 0 || o->max_message_mb < 0 || o->max_message_mb > 2047) {
        ls_fail(err, LS_EINVAL, "timeout and message size must be positive (message size < 2 GiB)");
        return NULL;
    }
    char *ca = NULL;
    if (o->tls_ca_path && !(ca = read_text_file(o->tls_ca_path, err))) return NULL;
    cli_conn *c = calloc(1, sizeof *c);
    if (!c) {
        free(ca);
        ls_fail(err, LS_ENOMEM, "out of memory");
        return NULL;
    }
    c->timeout_ms = o->timeout_ms ? o->timeout_ms : CLI_DEFAULT_TIMEOUT_MS;
    if (o->token && *o->token) {
        size_t n = strlen(o->token) + sizeof "Bearer ";
        if (!(c->auth_value = malloc(n))) {
            free(ca);
            free(c);
            ls_fail(err, LS_ENOMEM, "out of memory");
            return NULL;
        }
        snprintf(c->auth_value, n, "Bearer %s", o->token);
    }
    grpc_init();
    int max_mb = o->max_message_mb ? o->max_message_mb : CLI_DEFAULT_MAX_MESSAGE_MB;
    grpc_arg args[2];
    size_t n_args = 0;
    args[n_args++] = (grpc_arg){.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                                .value.integer = max_mb * 1024 * 1024};
    if (ca && o->tls_name)
        args[n_args++] = (grpc_arg){.type = GRPC_ARG_STRING, .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                                    .value.string = (char *)o->tls_name};
    grpc_channel_args cargs = {.num_args = n_args, .args = args};
    grpc_channel_credentials *creds =
        ca ? grpc_ssl_credentials_create(ca, NULL, NULL, NULL) : grpc_insecure_credentials_create();
    free(ca);
    if (creds) {
        c->channel = grpc_channel_create(o->target, creds, &cargs);
        grpc_channel_credentials_release(creds);
    }
    if (!c->channel) {
        cli_conn_close(c);
        ls_fail(err, LS_EINVAL, "cannot create a channel to '%s'", o->target);
        return NULL;
    }
    return c;
}

void cli_conn_close(cli_conn *c) {
    if (!c) return;
    if (c->channel) grpc_channel_destroy(c->channel);
    free(c->auth_value);
    free(c);
    grpc_shutdown_blocking(); /* a CLI exits next: let gRPC stop its threads first */
}

struct grpc_channel *cli_conn_channel(cli_conn *c) { return c->channel; }
const char *cli_conn_auth(const cli_conn *c) { return c->auth_value; }
int cli_conn_timeout_ms(const cli_conn *c) { return c->timeout_ms; }

void cli_reply_free(cli_reply *r) {
    if (!r) return;
    free(r->data);
    r->data = NULL;
    r->len = 0;
}

/* Copies a received message into one malloc'd block (the byte buffer may be several slices). */
static int take_message(grpc_byte_buffer *bb, cli_reply *r, ls_err *err) {
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return ls_fail(err, LS_EINTERNAL, "cannot read the reply (bad compression?)");
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    size_t n = GRPC_SLICE_LENGTH(all);
    int rc = 0;
    if (n > 0) {
        if ((r->data = malloc(n))) {
            memcpy(r->data, GRPC_SLICE_START_PTR(all), n);
            r->len = n;
        } else {
            rc = ls_fail(err, LS_ENOMEM, "out of memory for a %zu-byte reply", n);
        }
    }
    grpc_slice_unref(all);
    return rc;
}

int cli_unary(cli_conn *c, const char *method, const void *req, size_t req_len, cli_reply *r,
              ls_err *err) {
    *r = (cli_reply){.status = CLI_STATUS_LOCAL};
    if (!c || !method || (!req && req_len)) return ls_fail(err, LS_EINVAL, "bad call arguments");
    double t0 = cli_now_ms();
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                         gpr_time_from_millis(c->timeout_ms, GPR_TIMESPAN));
    grpc_slice method_slice = grpc_slice_from_static_string(method);
    grpc_call *call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                               method_slice, NULL, deadline, NULL);
    /* Copied: the transport may still hold the slice when a server answers before reading all. */
    grpc_slice req_slice = grpc_slice_from_copied_buffer(req ? req : "", req_len);
    grpc_byte_buffer *send_buf = grpc_raw_byte_buffer_create(&req_slice, 1);
    grpc_slice_unref(req_slice);
    grpc_metadata md[1];
    size_t n_md = 0;
    if (c->auth_value) {
        md[0] = (grpc_metadata){.key = grpc_slice_from_static_string("authorization"),
                                .value = grpc_slice_from_static_string(c->auth_value)};
        n_md = 1;
    }
    grpc_metadata_array initial_md, trailing_md;
    grpc_metadata_array_init(&initial_md);
    grpc_metadata_array_init(&trailing_md);
    grpc_byte_buffer *recv_buf = NULL;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    const char *debug = NULL;
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = n_md;
    ops[0].data.send_initial_metadata.metadata = n_md ? md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = send_buf;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &recv_buf;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
    ops[5].data.recv_status_on_client.status = &status;
    ops[5].data.recv_status_on_client.status_details = &details;
    ops[5].data.recv_status_on_client.error_string = &debug;
    int rc = -1;
    grpc_call_error ce = grpc_call_start_batch(call, ops, 6, (void *)call, NULL);
    if (ce != GRPC_CALL_OK) {
        ls_fail(err, LS_EINTERNAL, "%s: cannot start the call: %s", method, grpc_call_error_to_string(ce));
    } else {
        /* The call's deadline bounds the wait: the batch always completes by then. */
        grpc_event ev = grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        r->ms = cli_now_ms() - t0;
        r->status = (int)status;
        size_t dn = GRPC_SLICE_LENGTH(details);
        if (dn >= sizeof r->message) dn = sizeof r->message - 1;
        memcpy(r->message, GRPC_SLICE_START_PTR(details), dn);
        r->message[dn] = '\0';
        if (ev.type != GRPC_OP_COMPLETE || !ev.success) {
            r->status = CLI_STATUS_LOCAL;
            ls_fail(err, LS_EINTERNAL, "%s: the call did not complete", method);
        } else if (status != GRPC_STATUS_OK) {
            ls_fail(err, cli_code_from_status((int)status), "%s: %s", cli_status_name((int)status),
                    r->message[0] ? r->message : "(no message)");
        } else if (!recv_buf) {
            ls_fail(err, LS_EINTERNAL, "%s: status OK but no reply message", method);
        } else {
            rc = take_message(recv_buf, r, err);
        }
    }
    if (debug) gpr_free((void *)debug);
    grpc_slice_unref(details);
    if (recv_buf) grpc_byte_buffer_destroy(recv_buf);
    grpc_byte_buffer_destroy(send_buf);
    grpc_metadata_array_destroy(&initial_md);
    grpc_metadata_array_destroy(&trailing_md);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    return rc;
}
