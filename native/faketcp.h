/*
 * faketcp: the fake-TCP link's syscalls and per-flow sequence state (faketcp.c).
 *
 * A fake-TCP flow is named by an endpoint handle (src/wire/endpoint-handle.ts):
 * 0xFD800000 | i, the upper half of the transport connection table's index
 * space (0xFD000000 | i, i < 2^23, stays for TCP streams). Everything above
 * the socket sends to and receives from { ip: handle, port: the peer's TCP
 * port }; the UDP send paths (udp.c, fastpath.c) hand datagrams addressed to
 * a handle to this file, which sends each as one TCP segment on a raw socket.
 */
#ifndef LWT_FAKETCP_H
#define LWT_FAKETCP_H

#include <node_api.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "napi_util.h"

/* The handle range of fake-TCP flows (8M entries; the table holds FT_MAX of them). */
#define FT_HANDLE_BASE 0xFD800000u
#define FT_HANDLE_MASK 0xFF800000u

static inline int ftcp_is_handle(uint32_t ip) { return (ip & FT_HANDLE_MASK) == FT_HANDLE_BASE; }

/* Sends one segment carrying iov[0..n) to the flow `handle`: payload bytes, or -1 with errno (ENOTCONN: no such flow or not up). */
ssize_t ftcp_send_iov(uint32_t handle, const struct iovec *iov, int n);

/*
 * Sends every datagram of the batch *a addressed to a fake-TCP handle and
 * leaves in *a (this thread's scratch) the others, for the caller's UDP send.
 * Returns 0 and changes nothing when no datagram is addressed to a handle;
 * else 1, with *sent = datagrams sent as segments.
 */
int ftcp_divert(packet_args *a, int64_t *sent);

/* Frees this thread's scratch (module.c, when the thread's last env goes). */
void ftcp_thread_free(void);

napi_value ftcp_open(napi_env env, napi_callback_info info);
napi_value ftcp_flow_set(napi_env env, napi_callback_info info);
napi_value ftcp_flow_drop(napi_env env, napi_callback_info info);
napi_value ftcp_flow_info(napi_env env, napi_callback_info info);
napi_value ftcp_send_raw(napi_env env, napi_callback_info info);
napi_value ftcp_recv(napi_env env, napi_callback_info info);
napi_value ftcp_recv_ctl(napi_env env, napi_callback_info info);
/* faketcp-packet.c */
napi_value ftcp_open_packet(napi_env env, napi_callback_info info);
napi_value ftcp_unpair(napi_env env, napi_callback_info info);
napi_value ftcp_offload_stats(napi_env env, napi_callback_info info);

#endif
