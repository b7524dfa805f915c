/* client_msg.h - a unary call with protobuf-c messages on both ends (client_rpc.h underneath).
 *
 * cli_call_msg packs `req`, calls `method` and unpacks the reply as `reply_desc`. The unpacked
 * reply is owned by the caller: free it with protobuf_c_message_free_unpacked(msg, NULL).
 * Errors as cli_unary (non-OK status: "CODE: message", *status set), plus LS_EFORMAT when the reply
 * does not parse as reply_desc. Allocates (client side only). */
#ifndef LS_CLIENT_MSG_H
#define LS_CLIENT_MSG_H

#include <protobuf-c/protobuf-c.h>

#include "client/client_rpc.h"

/* Returns the reply message, or NULL with err filled. *status (may be NULL) gets the gRPC status
 * (or CLI_STATUS_LOCAL) and *ms (may be NULL) the call's wall time in milliseconds. */
ProtobufCMessage *cli_call_msg(cli_conn *c, const char *method, const ProtobufCMessage *req,
                               const ProtobufCMessageDescriptor *reply_desc, int *status, double *ms,
                               ls_err *err);

#endif
