/* client_msg.c - pack, call, unpack: the typed layer over cli_unary. */
#include "client/client_msg.h"

#include <stdlib.h>

ProtobufCMessage *cli_call_msg(cli_conn *c, const char *method, const ProtobufCMessage *req,
                               const ProtobufCMessageDescriptor *reply_desc, int *status, double *ms,
                               ls_err *err) {
    if (status) *status = CLI_STATUS_LOCAL;
    if (ms) *ms = 0;
    size_t n = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        ls_fail(err, LS_ENOMEM, "out of memory for a %zu-byte request", n);
        return NULL;
    }
    protobuf_c_message_pack(req, buf);
    cli_reply r;
    int rc = cli_unary(c, method, buf, n, &r, err);
    free(buf);
    if (status) *status = r.status;
    if (ms) *ms = r.ms;
    ProtobufCMessage *msg = NULL;
    if (rc == 0 && !(msg = protobuf_c_message_unpack(reply_desc, NULL, r.len, r.data)))
        ls_fail(err, LS_EFORMAT, "%s: the reply is not a valid %s", method, reply_desc->name);
    cli_reply_free(&r);
    return msg;
}
