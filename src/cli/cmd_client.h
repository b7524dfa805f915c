/* cmd_client.h - shared between the files of `lipsync client` (cmd_client.c: options and the
 * small commands; cmd_client_render.c: render and bench;
 * cmd_client_stream.c: stream). Not a library interface. */
#ifndef LS_CMD_CLIENT_H
#define LS_CMD_CLIENT_H

#include <stdio.h>

#include "cli/commands.h"
#include "client/client_bench.h"
#include "client/client_render.h"
#include "client/client_rpc.h"

#define CLIENT_DEFAULT_SERVER "127.0.0.1:50053"

typedef struct client_opts {
    cli_conn_opts conn;
    const char *avatar, *audio, *out;
    cli_api api;
    int batch;               /* 0: default for the API */
    long long start_frame;
    int threads, requests;   /* bench */
    int loaded_only, quiet;
    /* stream */
    const char *frames_dir;
    int chunk_ms, realtime, pacing; /* pacing: -1 = follow --realtime, 0 burst, 1 realtime */
    int lookahead, idle_detect, jpeg_quality, stats_ms;
} client_opts;

void client_usage(FILE *out);
int client_fail(const ls_err *err);
int client_render(cli_conn *conn, const client_opts *o);
int client_bench(cli_conn *conn, const client_opts *o);
int client_stream(cli_conn *conn, const client_opts *o); /* cmd_client_stream.c */

#endif
