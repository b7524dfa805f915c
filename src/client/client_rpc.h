/* client_rpc.h - a gRPC channel to lipsyncd and one blocking unary call on it (gRPC core C API).
 *
 * cli_conn_open creates a channel (plaintext, or TLS with a CA file) that carries an optional
 * bearer token on every call and a per-call deadline. cli_unary sends one serialized request and
 * waits for the reply; request and reply are raw bytes (callers pack/unpack with protobuf-c).
 * Threads: one cli_conn may be used by several threads at once (each call has its own completion
 * queue); the gRPC library is initialised by open and released by close (grpc_init is counted).
 * Memory: open and every call allocate (client side, not a hot path); a reply is malloc'd and
 * freed with cli_reply_free. Errors: a call that ends with a non-OK gRPC status fills err with
 * "CODE: message" (code mapped to an ls_code) and sets reply->status; local failures (unreadable
 * CA file, bad arguments) are LS_EIO / LS_EINVAL with reply->status CLI_STATUS_LOCAL. */
#ifndef LS_CLIENT_RPC_H
#define LS_CLIENT_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define CLI_STATUS_LOCAL (-1)  /* reply->status when the call never reached gRPC */
#define CLI_DEFAULT_TIMEOUT_MS 30000
#define CLI_DEFAULT_MAX_MESSAGE_MB 100  /* same default as the server's max_message_size_mb */

typedef struct cli_conn_opts {
    const char *target;      /* "host:port" or any gRPC target URI */
    const char *token;       /* NULL/"": no authorization metadata */
    const char *tls_ca_path; /* NULL: plaintext; else PEM roots that must sign the server cert */
    const char *tls_name;    /* NULL: host name of target; else the name the cert must carry */
    int timeout_ms;          /* per call; 0 means CLI_DEFAULT_TIMEOUT_MS */
    int max_message_mb;      /* largest reply accepted; 0 means CLI_DEFAULT_MAX_MESSAGE_MB */
} cli_conn_opts;

typedef struct cli_conn cli_conn;

typedef struct cli_reply {
    uint8_t *data;     /* reply message bytes (malloc'd; NULL when len is 0 or on error) */
    size_t len;
    int status;        /* grpc_status_code, or CLI_STATUS_LOCAL */
    char message[512]; /* status details as sent by the server (empty on OK) */
    double ms;         /* wall time of the call, start to status */
} cli_reply;

/* Creates the channel (does not connect yet: gRPC connects on the first call). */
cli_conn *cli_conn_open(const cli_conn_opts *opts, ls_err *err);
void cli_conn_close(cli_conn *c);

/* Calls `method` ("/pkg.Service/Method") with req[0..req_len) and waits for the status.
 * Returns 0 when the status is OK (reply holds the message), else -1 with err and reply->status
 * filled. *reply is always initialised; free it with cli_reply_free either way. */
int cli_unary(cli_conn *c, const char *method, const void *req, size_t req_len, cli_reply *reply,
              ls_err *err);
void cli_reply_free(cli_reply *reply);

/* For streaming calls (client_stream.c), which run their own ops on the channel: the channel, the
 * authorization metadata value ("Bearer ..." or NULL) and the per-call timeout in milliseconds. */
struct grpc_channel *cli_conn_channel(cli_conn *c);
const char *cli_conn_auth(const cli_conn *c);
int cli_conn_timeout_ms(const cli_conn *c);

/* The ls_code a gRPC status stands for (LS_EIO for the ones without a closer match). */
ls_code cli_code_from_status(int status);

/* "OK", "CANCELLED", ... "UNAUTHENTICATED"; "LOCAL" for CLI_STATUS_LOCAL; "UNKNOWN" otherwise. */
const char *cli_status_name(int status);

/* Monotonic clock in milliseconds, for timings the client prints. */
double cli_now_ms(void);

#endif
