/*
 * lwt_native: the dataplane's syscalls and bulk crypto. No policy lives here.
 * This file: the export table and the module's per-thread lifecycle.
 *
 * Owns (one file per concern, each with a header of declarations):
 *   tun.c        TUN devices: open (plain or IFF_VNET_HDR + offloads), batched
 *                read/write, split read and coalescing write of a vnet fd
 *   addr6.c      endpoints of both families on a socket; the IPv6 address table
 *   udp.c        UDP sockets: open/close, recvmmsg/sendmmsg batches, GSO send,
 *                GRO receive, one datagram (with a per-packet TTL)
 *   poll.c       readability of an fd on the calling thread's libuv loop
 *   aead.c       ChaCha20-Poly1305 seal/open in place, in batches (Node's own
 *                OpenSSL, the symbols resolve against the node binary; small
 *                packets by chacha20poly1305.c)
 *   offload.c    checksums, TSO/USO split, TCP/UDP coalescing (byte work only)
 *   fastpath.c   the lone-packet fast path run inside a poll callback
 *   faketcp.c    the fake-TCP link: raw sockets, flow sequence state, segments out/in
 *   fec.c        GF(2^8) matrix times shards: the FEC code's encode and rebuild
 *   napi_util.c  errno names, throw helpers, the argument parser, batch checks
 *   notify.c     sd_notify(3) readiness datagrams to $NOTIFY_SOCKET (systemd)
 *   tcplisten.c  the TCP transport's listening socket and accept4
 *   testing.c    test-only exports, in the test build only (LWT_TESTING)
 *
 * Memory: every `mem` argument is a Uint8Array (normally over a
 * SharedArrayBuffer); offsets are byte offsets relative to the view's start.
 * All offsets and lengths of a batch are validated before any byte is touched:
 * misuse throws TypeError/RangeError instead of corrupting memory.
 *
 * Threads: the module is context-aware (NAPI_MODULE_INIT), so every
 * worker_thread loads its own instance. Cipher contexts and mmsg scratch are
 * per thread (__thread, in aead.c and udp.c) and freed when the last env of
 * that thread goes away (thread_env_gone below). A poll handle belongs to the
 * loop of the thread that created it.
 *
 * Addresses: a host-order uint32 plus a port; on an AF_INET6 socket IPv4 is
 * v4-mapped and 0xFE000000|i names entry i of the IPv6 table (addr6.c).
 *
 * Builds (binding.gyp): lwt_native.node, the production addon, and
 * lwt_native_testing.node, the same plus testing.c's exports; both link the
 * same objects (the lwt_native_core static library) and differ only in this
 * file's LWT_TESTING table.
 */
#include <node_api.h>
#include <stddef.h>

#include "aead.h"
#include "fastpath.h"
#include "fec.h"
#include "notify.h"
#include "poll.h"
#include "tcplisten.h"
#include "tun.h"
#include "udp.h"
#include "faketcp.h"
#include "addr6.h"
#ifdef LWT_TESTING
#include "testing.h"
#endif

typedef struct { const char *name; napi_callback cb; } lwt_export;

/* buildInfo(): { napiVersion, testing, compiler } of this build, for `lightweight-tunnel --version`. */
static napi_value build_info(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value o, v;
  if (napi_create_object(env, &o) != napi_ok) return NULL;
  if (napi_create_uint32(env, NAPI_VERSION, &v) != napi_ok || napi_set_named_property(env, o, "napiVersion", v) != napi_ok) return NULL;
#ifdef LWT_TESTING
  if (napi_get_boolean(env, true, &v) != napi_ok) return NULL;
#else
  if (napi_get_boolean(env, false, &v) != napi_ok) return NULL;
#endif
  if (napi_set_named_property(env, o, "testing", v) != napi_ok) return NULL;
#if defined(__clang__)
  const char *cc = __VERSION__;          /* "Clang 16.0.6 ..." */
#elif defined(__GNUC__)
  const char *cc = "gcc " __VERSION__;   /* "gcc 12.2.0" */
#else
  const char *cc = "unknown";
#endif
  if (napi_create_string_utf8(env, cc, NAPI_AUTO_LENGTH, &v) != napi_ok || napi_set_named_property(env, o, "compiler", v) != napi_ok) return NULL;
  return o;
}

static const lwt_export fns[] = {
  { "tunOpen", tun_open },
  { "ifIndex", if_index },
  { "udpOpen", udp_open },
  { "close", fd_close },
  { "pollStart", poll_start },
  { "pollStop", poll_stop },
  { "tunReadBatch", tun_read_batch },
  { "tunWriteBatch", tun_write_batch },
  { "udpRecvBatch", udp_recv_batch },
  { "udpSendBatch", udp_send_batch },
  { "udpSendBatchGso", udp_send_batch_gso },
  { "tunOpenVnet", tun_open_vnet },
  { "tunReadSplit", tun_read_split },
  { "tunWriteBatchVnet", tun_write_batch_vnet },
  { "tunWriteBatchGro", tun_write_batch_gro },
  { "udpSendTo", udp_send_to },
  { "aeadSealBatch", aead_seal_batch },
  { "aeadOpenBatch", aead_open_batch },
  { "aeadForget", aead_forget },
  { "udpSendToTtl", udp_send_to_ttl },
  { "udpSetGro", udp_set_gro },
  { "udpAttachV6Table", udp_attach_v6_table },
  { "udpRecvGro", udp_recv_gro },
  { "fastPathOut", fast_path_out },
  { "fastPathIn", fast_path_in },
  { "fastLayout", fast_layout },
  { "fastPathLink", fast_path_link },
  { "sdNotify", sd_notify_js },
  { "tcpListen", tcp_listen },
  { "tcpAccept", tcp_accept },
  { "buildInfo", build_info },
  { "ftcpOpen", ftcp_open },
  { "ftcpFlowSet", ftcp_flow_set },
  { "ftcpFlowDrop", ftcp_flow_drop },
  { "ftcpFlowInfo", ftcp_flow_info },
  { "ftcpSendRaw", ftcp_send_raw },
  { "ftcpRecv", ftcp_recv },
  { "ftcpRecvCtl", ftcp_recv_ctl },
  { "ftcpOpenPacket", ftcp_open_packet },
  { "ftcpUnpair", ftcp_unpair },
  { "ftcpOffloadStats", ftcp_offload_stats },
  { "gfMatMul", gf_mat_mul },
};

#ifdef LWT_TESTING
static const lwt_export testFns[] = {
  { "vnetSplit", vnet_split_js },
  { "vnetCoalesce", vnet_coalesce_js },
  { "poly1305Blocks", poly1305_blocks_js },
  { "socketPairDgram", socket_pair_dgram },
  { "aeadCachedKeys", aead_cached_keys_js },
  { "ftcpRunPlan", ftcp_run_plan_js },
};
#endif

static __thread int tEnvs; /* envs alive on this thread that loaded the module */

/* The last env of this thread is gone: free the thread's scratch and cipher contexts. */
static void thread_env_gone(napi_env env, void *data, void *hint) {
  (void)env; (void)data; (void)hint;
  if (--tEnvs > 0) return;
  aead_thread_free();
  udp_thread_free();
  ftcp_thread_free();
}

static int add_exports(napi_env env, napi_value exports, const lwt_export *list, size_t n) {
  for (size_t i = 0; i < n; i++) {
    napi_value f;
    if (napi_create_function(env, list[i].name, NAPI_AUTO_LENGTH, list[i].cb, NULL, &f) != napi_ok ||
        napi_set_named_property(env, exports, list[i].name, f) != napi_ok) return -1;
  }
  return 0;
}

NAPI_MODULE_INIT() {
  if (add_exports(env, exports, fns, sizeof fns / sizeof fns[0])) return NULL;
#ifdef LWT_TESTING
  if (add_exports(env, exports, testFns, sizeof testFns / sizeof testFns[0])) return NULL;
#endif
  /* Per-thread state is freed when the last env of this thread is torn down. */
  static int marker;
  tEnvs++;
  if (napi_set_instance_data(env, &marker, thread_env_gone, NULL) != napi_ok) { tEnvs--; return NULL; }
  return exports;
}
