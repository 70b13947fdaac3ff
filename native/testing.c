/*
 * testing: the addon's test seams, exported only by the test build
 * (lwt_native_testing.node; see testing.h). Each runs one production step
 * on its own so a test can check it against an independent implementation:
 *
 *   socketPairDgram  a stand-in TUN fd (AF_UNIX datagrams: one read, one packet)
 *   vnetSplit        the split step of tunReadSplit on a packet already in sbuf
 *   vnetCoalesce     what tunWriteBatchGro would write, gathered into a buffer
 *   poly1305Blocks   Poly1305 alone, by the compact implementation
 *   aeadCachedKeys   this thread's cached OpenSSL seal/open keys (aeadForget wipes them)
 *   ftcpRunPlan      how fake TCP cuts a batch into superpackets (faketcp-packet.c, ftp_run)
 *
 * Arguments are checked exactly as their production counterparts check
 * theirs (the same helpers from tun.c and napi_util.c).
 */
#include "testing.h"
#include "aead.h"
#include "chacha20poly1305.h"
#include "faketcp-int.h"
#include "napi_util.h"
#include "offload.h"
#include "tun.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* socketPairDgram() -> [fd, fd]: an AF_UNIX datagram pair (non-blocking); a stand-in TUN fd for tests (one read = one packet). */
napi_value socket_pair_dgram(napi_env env, napi_callback_info info) {
  (void)info;
  static const char *fn = "socketPairDgram";
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) { throw_errno(env, errno, fn, "socketpair"); return NULL; }
  napi_value arr;
  if (napi_create_array_with_length(env, 2, &arr) != napi_ok ||
      napi_set_element(env, arr, 0, make_int(env, sv[0])) != napi_ok ||
      napi_set_element(env, arr, 1, make_int(env, sv[1])) != napi_ok) {
    close(sv[0]);
    close(sv[1]);
    throw_internal(env, fn);
    return NULL;
  }
  return arr;
}

/*
 * vnetSplit(sbuf, mem, offsets, lens, max, cap, state) -> n
 * The split step of tunReadSplit on a packet already in sbuf (length in
 * state[PENDING], vnet header first).
 */
napi_value vnet_split_js(napi_env env, napi_callback_info info) {
  static const char *fn = "vnetSplit";
  napi_value argv[7];
  split_args a;
  if (get_args(env, info, 7, argv, fn) || get_split_args(env, argv, fn, &a)) return NULL;
  int32_t *state = a.state;
  int64_t pend = state[SPLIT_PENDING];
  if (pend == 0) return make_int(env, 0);
  if (pend < VNET_HDR_LEN) { state[SPLIT_PENDING] = 0; state[SPLIT_NEXT] = 0; state[SPLIT_DROPPED]++; return make_int(env, 0); }
  return make_int(env, vnet_split(a.sbuf, pend, a.mem, a.offsets, a.lens, a.max, a.cap, state));
}

/*
 * vnetCoalesce(mem, offsets, lens, n, out, outLens) -> writes
 * What tunWriteBatchGro would write, gathered into out (each write: vnet
 * header + packet, back to back; outLens[w] = its length).
 */
napi_value vnet_coalesce_js(napi_env env, napi_callback_info info) {
  static const char *fn = "vnetCoalesce";
  napi_value argv[6];
  packet_args a;
  uint8_t *out; int32_t *outLens;
  size_t outLen;
  if (get_args(env, info, 6, argv, fn) || get_vnet_packets(env, argv, fn, &a) ||
      PARSE_ARGV(env, fn, argv + 4, ARG_U8("out", &out, &outLen), ARG_I32_N("outLens", &outLens, 1, &a.n))) return NULL;
  uint8_t *mem = a.mem; int32_t *offsets = a.offsets, *lens = a.lens; int64_t n = a.n;
  int64_t need = 0;
  for (int64_t i = 0; i < n; i++) need += lens[i] + VNET_HDR_LEN;
  if ((int64_t)outLen < need) { throw_range(env, fn, "out is too small for the batch"); return NULL; }
  struct iovec iov[GRO_MAX_SEGS];
  int64_t w = 0, i = 0, pos = 0;
  while (i < n) {
    int64_t cnt = gro_plan(mem, offsets, lens, n, i);
    uint8_t *p = mem + offsets[i];
    if (cnt > 1) {
      gro_prepare(iov, mem, offsets, lens, i, cnt);
    } else {
      memset(p - VNET_HDR_LEN, 0, VNET_HDR_LEN);
      iov[0].iov_base = p - VNET_HDR_LEN;
      iov[0].iov_len = (size_t)lens[i] + VNET_HDR_LEN;
    }
    int64_t start = pos;
    for (int64_t k = 0; k < cnt; k++) { memcpy(out + pos, iov[k].iov_base, iov[k].iov_len); pos += (int64_t)iov[k].iov_len; }
    outLens[w++] = (int32_t)(pos - start);
    i += cnt;
  }
  return make_int(env, w);
}

/* poly1305Blocks(key, msg) -> tag: Poly1305 of msg (a multiple of 16 bytes) with the compact implementation. */
napi_value poly1305_blocks_js(napi_env env, napi_callback_info info) {
  static const char *fn = "poly1305Blocks";
  uint8_t *key, *msg;
  size_t keyLen, msgLen;
  if (PARSE_ARGS(env, info, fn, ARG_U8("key", &key, &keyLen), ARG_U8("msg", &msg, &msgLen))) return NULL;
  if (keyLen != 32 || msgLen % 16 != 0) { throw_range(env, fn, "key must be 32 bytes and msg a multiple of 16"); return NULL; }
  cp_poly p;
  cp_poly_init(&p, key);
  cp_poly_blocks(&p, msg, msgLen / 16);
  void *out;
  napi_value ab, res;
  if (napi_create_arraybuffer(env, 16, &out, &ab) != napi_ok || napi_create_typedarray(env, napi_uint8_array, 16, ab, 0, &res) != napi_ok) {
    throw_internal(env, fn);
    return NULL;
  }
  cp_poly_finish(&p, out);
  return res;
}

/* aeadCachedKeys() -> Uint8Array(64): this thread's cached seal key, then open key (zeros: none, or wiped by aeadForget). */
napi_value aead_cached_keys_js(napi_env env, napi_callback_info info) {
  (void)info;
  uint8_t keys[2 * AEAD_KEY_LEN];
  aead_cached_keys(keys);
  void *data;
  napi_value ab, out;
  if (napi_create_arraybuffer(env, sizeof keys, &data, &ab) != napi_ok ||
      napi_create_typedarray(env, napi_uint8_array, sizeof keys, ab, 0, &out) != napi_ok) {
    throw_internal(env, "aeadCachedKeys");
    return NULL;
  }
  memcpy(data, keys, sizeof keys);
  return out;
}

/*
 * ftcpRunPlan(addrs Uint32Array(2n), lens Int32Array(n), n, maxLen, maxSegs, out Int32Array(n)) -> runs
 * How ftcp_divert would cut a batch of datagrams (to fake-TCP flows with a known next hop) into
 * superpackets: out[r] = the datagram count of run r (faketcp-packet.c, ftp_run).
 */
napi_value ftcp_run_plan_js(napi_env env, napi_callback_info info) {
  static const char *fn = "ftcpRunPlan";
  uint32_t *addrs;
  int32_t *lens, *out;
  int64_t n, maxLen, maxSegs;
  if (PARSE_ARGS(env, info, fn, ARG_U32_N("addrs", &addrs, 2, &n), ARG_I32_N("lens", &lens, 1, &n), ARG_INT("n", 0, 1 << 20, &n),
                 ARG_INT("maxLen", 1, 65535, &maxLen), ARG_INT("maxSegs", 1, FTP_MAX_SEGS, &maxSegs), ARG_I32_N("out", &out, 1, &n))) return NULL;
  for (int64_t i = 0; i < n; i++) if (lens[i] < 0) { throw_range(env, fn, "lens must be >= 0"); return NULL; }
  int64_t runs = 0;
  for (int64_t i = 0; i < n;) {
    size_t k = ftp_run(addrs, lens, (size_t)i, (size_t)n, (size_t)maxLen, (size_t)maxSegs);
    out[runs++] = (int32_t)k;
    i += (int64_t)k;
  }
  return make_int(env, runs);
}
