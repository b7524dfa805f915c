/* stream_call.h - the transport's side of a bidirectional streaming call (the Stream RPC).
 *
 * A method with a `stream` handler (handler.h) is not queued for the worker pool: once accepted,
 * the call gets its own thread, which runs the handler for the call's whole life. The handler
 * drives the call through this small event API; gRPC completions arrive on the server's I/O thread
 * and only set flags and wake the handler, so no gRPC batch runs on the I/O thread's behalf:
 *   - at most one receive outstanding (srv_stream_read, then srv_stream_take): not posting the
 *     next receive is the flow control (gRPC's per-stream window then stops the client);
 *   - at most one send outstanding (srv_stream_write fails with 1 while one is);
 *   - srv_stream_wait sleeps until anything happened (a completion, srv_stream_wake from another
 *     thread, the call's cancellation) or a deadline;
 *   - srv_stream_finish sends the status; the handler then returns.
 * RECV_CLOSE_ON_SERVER is posted at accept: srv_stream_cancelled reports a client cancel or an
 * expired deadline, and server shutdown past its grace period (3: answer UNAVAILABLE).
 * Memory: one allocation per call (the state, its receive buffer grows to the largest message);
 * replies are gRPC slices. Threads: every function but srv_stream_wake belongs to the handler. */
#ifndef LS_SRV_STREAM_CALL_H
#define LS_SRV_STREAM_CALL_H

#include <grpc/grpc.h>
#include <stddef.h>
#include <stdint.h>

typedef struct srv_stream srv_stream;

/* Posts one receive. 0, or -1 when one is outstanding or the client has half-closed. */
int srv_stream_read(srv_stream *st);

/* After a read: 1 with the message (*data valid until the next take), 0 while it has not
 * arrived, -1 at the end of the client's stream (half-close, or the call failed). */
int srv_stream_take(srv_stream *st, const uint8_t **data, size_t *len);

/* 1 while a receive is outstanding. */
int srv_stream_reading(const srv_stream *st);

/* Sends one message (takes ownership of msg). 0 started, 1 a send is still outstanding (msg
 * untouched, still the caller's), -1 the call is over (msg released). */
int srv_stream_write(srv_stream *st, grpc_slice msg);
int srv_stream_writing(const srv_stream *st);

/* Sleeps until something happened since the last call, or until deadline_ns (srv_now_ns clock). */
void srv_stream_wait(srv_stream *st, int64_t deadline_ns);

/* From any thread: makes srv_stream_wait return. */
void srv_stream_wake(srv_stream *st);

/* 0, 1 cancelled by the client, 2 deadline passed, 3 the server is past its shutdown grace. */
int srv_stream_cancelled(const srv_stream *st);

/* Posts the status once any outstanding send has completed; returns without waiting for the
 * call to complete (the call's thread does that before it frees the stream). */
void srv_stream_finish(srv_stream *st, grpc_status_code code, const char *msg);

/* The handler's part of the call's log line. */
void srv_stream_note(srv_stream *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int64_t srv_stream_now_ns(void);
size_t srv_stream_max_message(const srv_stream *st);

#endif
