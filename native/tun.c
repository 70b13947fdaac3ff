/*
 * tun: the TUN device's syscalls. No policy lives here.
 *
 * Owns: opening /dev/net/tun (TUNSETIFF; for a vnet fd also
 * TUNSETVNETHDRSZ and TUNSETOFFLOAD), batched read() and write() of plain
 * packets, and for a vnet fd (every read and write carries a 10-byte
 * virtio_net_hdr): the split read (tunReadSplit: read into sbuf, then
 * offload.c's vnet_split into slots), the plain write (a zero vnet header
 * in front of each packet) and the coalescing write (tunWriteBatchGro:
 * offload.c's gro_plan/gro_prepare, then one writev per superpacket).
 *
 * Flow of a batch: arguments parsed and every slot bounds-checked
 * (napi_util.c) before the first syscall; read loops stop at EAGAIN and
 * throw only when nothing was read (the error shows up on the next call
 * otherwise); write loops skip a packet the kernel refuses and throw only
 * for EBADF.
 */
#include "tun.h"
#include "offload.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/uio.h>

#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

/* ------------------------------------------------------------------ */
/* Open                                                                */
/* ------------------------------------------------------------------ */

/*
 * tunOpen(name, multiQueue, exclusive) -> { fd, name }
 * tunOpenVnet(name, multiQueue, exclusive) -> { fd, name, offload }: tunOpen
 * plus IFF_VNET_HDR and TUNSETOFFLOAD(CSUM|TSO4|TSO6|USO4|USO6, or less).
 * offload: 0 none, 1 csum+tso4, 2 csum+tso4+tso6, 3 csum+tso4+tso6+uso4+uso6.
 */
static napi_value open_tun(napi_env env, napi_callback_info info, const char *fn, int vnet) {
  char name[IFNAMSIZ];
  bool mq, excl;
  if (PARSE_ARGS(env, info, fn, ARG_STRING("the TUN device name", name, IFNAMSIZ - 1), ARG_BOOL("multiQueue", &mq),
                 ARG_BOOL("exclusive", &excl))) return NULL;

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) { throw_errno(env, errno, fn, "open"); return NULL; }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strlen(name));
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0) | (mq ? IFF_MULTI_QUEUE : 0) | (excl ? IFF_TUN_EXCL : 0);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    throw_errno(env, e, fn, "ioctl(TUNSETIFF)");
    return NULL;
  }
  int offload = 0;
  if (vnet) {
    int hsz = VNET_HDR_LEN;
    if (ioctl(fd, TUNSETVNETHDRSZ, &hsz) < 0) {
      int e = errno;
      close(fd);
      throw_errno(env, e, fn, "ioctl(TUNSETVNETHDRSZ)");
      return NULL;
    }
    /*
     * The kernel takes USO only as USO4|USO6 together (tun.c set_offload: any
     * other leftover bit is EINVAL); TSO6 came long before USO, so a kernel
     * that refuses it has no USO either. Best first, then less.
     */
    if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_USO4 | TUN_F_USO6)) == 0) offload = 3;
    else if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) == 0) offload = 2;
    else if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4)) == 0) offload = 1;
  }
  ifr.ifr_name[IFNAMSIZ - 1] = 0;
  napi_value res, vname;
  if (napi_create_object(env, &res) != napi_ok ||
      napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &vname) != napi_ok ||
      napi_set_named_property(env, res, "fd", make_int(env, fd)) != napi_ok ||
      napi_set_named_property(env, res, "name", vname) != napi_ok ||
      (vnet && napi_set_named_property(env, res, "offload", make_int(env, offload)) != napi_ok)) {
    close(fd);
    throw_internal(env, fn);
    return NULL;
  }
  return res;
}

napi_value tun_open(napi_env env, napi_callback_info info) { return open_tun(env, info, "tunOpen", 0); }
napi_value tun_open_vnet(napi_env env, napi_callback_info info) { return open_tun(env, info, "tunOpenVnet", 1); }

/* ifIndex(name) -> if_nametoindex(name), 0 when there is no such device. */
napi_value if_index(napi_env env, napi_callback_info info) {
  static const char *fn = "ifIndex";
  napi_value argv[1];
  char name[64];
  if (get_args(env, info, 1, argv, fn)) return NULL;
  napi_valuetype t;
  if (napi_typeof(env, argv[0], &t) != napi_ok) { throw_internal(env, fn); return NULL; }
  if (t != napi_string) { throw_type(env, fn, "the device name must be a string"); return NULL; }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok) { throw_internal(env, fn); return NULL; }
  if (len == 0 || len >= IFNAMSIZ) return make_int(env, 0);
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok) { throw_internal(env, fn); return NULL; }
  if (strlen(name) != len) return make_int(env, 0);
  return make_int(env, if_nametoindex(name));
}

/* ------------------------------------------------------------------ */
/* Plain fds                                                           */
/* ------------------------------------------------------------------ */

/*
 * One read() of at most cap bytes into buf, retried on EINTR, after `got`
 * packets of this call. Returns the bytes read (> 0), 0 when nothing more
 * comes now (EAGAIN; EOF, for a fd that is not a TUN; or an error after
 * got > 0: it shows up on the next call), -1 with the error thrown.
 */
static ssize_t read_one(napi_env env, const char *fn, int fd, uint8_t *buf, size_t cap, int64_t got) {
  for (;;) {
    ssize_t r = read(fd, buf, cap);
    if (r >= 0) return r;
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK || got > 0) return 0;
    throw_errno(env, e, fn, "read");
    return -1;
  }
}

/*
 * tunReadBatch(fd, mem, offsets, lens, max, cap) -> n
 * read() one packet per slot until EAGAIN or max. Errors are thrown only when
 * nothing was read; otherwise the packets read so far are returned and the
 * error shows up on the next call.
 */
napi_value tun_read_batch(napi_env env, napi_callback_info info) {
  static const char *fn = "tunReadBatch";
  int fd;
  uint8_t *mem; int32_t *offsets, *lens;
  size_t memLen;
  int64_t max, cap;
  if (PARSE_ARGS(env, info, fn, ARG_FD(&fd), ARG_U8("mem", &mem, &memLen), ARG_I32_N("offsets", &offsets, 1, &max),
                 ARG_I32_N("lens", &lens, 1, &max), ARG_INT("max", 0, INT32_MAX, &max), ARG_INT("cap", 0, INT32_MAX, &cap)) ||
      check_slots(env, fn, memLen, offsets, NULL, cap, max)) return NULL;

  int64_t n = 0;
  while (n < max) {
    ssize_t r = read_one(env, fn, fd, mem + offsets[n], (size_t)cap, n);
    if (r < 0) return NULL;
    if (r == 0) break;
    lens[n++] = (int32_t)r;
  }
  return make_int(env, n);
}

/* One write() of len bytes at p, retried on EINTR: 1 written, 0 refused (skip it), -1 EBADF (thrown). */
static int write_one(napi_env env, const char *fn, int fd, const uint8_t *p, size_t len) {
  ssize_t r;
  do r = write(fd, p, len); while (r < 0 && errno == EINTR);
  if (r >= 0) return 1;
  if (errno == EBADF) { throw_errno(env, EBADF, fn, "write"); return -1; }
  return 0;
}

/*
 * tunWriteBatch(fd, mem, offsets, lens, n) -> number written
 * A failed write (EAGAIN, EINVAL for a bad packet, EIO while the device is
 * down, ...) is skipped. Only EBADF (not an open fd) throws.
 */
napi_value tun_write_batch(napi_env env, napi_callback_info info) {
  static const char *fn = "tunWriteBatch";
  napi_value argv[5];
  int fd;
  packet_args a;
  if (get_fd_args(env, info, fn, 5, argv, &fd) || get_packets(env, argv + 1, fn, 0, &a)) return NULL;
  int64_t ok = 0;
  for (int64_t i = 0; i < a.n; i++) {
    int w = write_one(env, fn, fd, a.mem + a.offsets[i], (size_t)a.lens[i]);
    if (w < 0) return NULL;
    ok += w;
  }
  return make_int(env, ok);
}

/* ------------------------------------------------------------------ */
/* Vnet fds (tunOpenVnet): split read, plain and coalescing write      */
/* ------------------------------------------------------------------ */

int get_split_args(napi_env env, napi_value *argv, const char *fn, split_args *a) {
  size_t memLen;
  if (PARSE_ARGV(env, fn, argv, ARG_U8("sbuf", &a->sbuf, &a->sbufLen), ARG_U8("mem", &a->mem, &memLen),
                 ARG_I32_N("offsets", &a->offsets, 1, &a->max), ARG_I32_N("lens", &a->lens, 1, &a->max),
                 ARG_INT("max", 0, INT32_MAX, &a->max), ARG_INT("cap", 0, INT32_MAX, &a->cap),
                 ARG_I32_W("state", &a->state, SPLIT_WORDS)) ||
      check_slots(env, fn, memLen, a->offsets, NULL, a->cap, a->max)) return -1;
  int64_t pend = a->state[SPLIT_PENDING];
  if (pend < 0 || pend > (int64_t)a->sbufLen || a->state[SPLIT_NEXT] < 0) {
    throw_range(env, fn, "state is corrupt (pending bytes outside sbuf or a negative segment index)");
    return -1;
  }
  return 0;
}

int get_vnet_packets(napi_env env, napi_value *argv, const char *fn, packet_args *a) {
  if (get_packets(env, argv, fn, 0, a)) return -1;
  for (int64_t i = 0; i < a->n; i++) {
    if (a->offsets[i] < VNET_HDR_LEN) { throw_range(env, fn, "every offset must leave 10 bytes for the vnet header"); return -1; }
  }
  return 0;
}

/*
 * tunReadSplit(fd, sbuf, mem, offsets, lens, max, cap, state) -> n
 * For a TUN fd opened with tunOpenVnet: read() packets (vnet header +
 * packet, superpackets up to 64 KiB) into sbuf and split each into slots:
 * TSO (TCP over IPv4 or IPv6) and USO (UDP, either) superpackets into
 * MSS-sized packets with their own IP length (IPv4: id and checksum too) and
 * TCP sequence number / UDP length and a full L4 checksum; a packet with only a partial checksum (NEEDS_CSUM) gets
 * its checksum completed. A superpacket that does not fit the remaining
 * slots stays in sbuf (state) and continues on the next call, so order holds.
 * Returns the number of slots filled (0: nothing to read).
 */
napi_value tun_read_split(napi_env env, napi_callback_info info) {
  static const char *fn = "tunReadSplit";
  napi_value argv[8];
  int fd;
  split_args a;
  if (get_fd_args(env, info, fn, 8, argv, &fd) || get_split_args(env, argv + 1, fn, &a)) return NULL;
  if (a.sbufLen < 65536 + VNET_HDR_LEN) { throw_range(env, fn, "sbuf must hold at least 65546 bytes"); return NULL; }
  uint8_t *sbuf = a.sbuf;
  int32_t *state = a.state;
  int64_t n = 0;
  while (n < a.max) {
    if (state[SPLIT_PENDING] == 0) {
      ssize_t r = read_one(env, fn, fd, sbuf, a.sbufLen, n);
      if (r < 0) return NULL;
      if (r == 0) break;
      if (r < VNET_HDR_LEN) { state[SPLIT_DROPPED]++; continue; }
      state[SPLIT_PENDING] = (int32_t)r;
      state[SPLIT_NEXT] = 0;
      if ((sbuf[1] & (uint8_t)~VNET_GSO_ECN) != VNET_GSO_NONE) state[SPLIT_SUPER]++;
    }
    n += vnet_split(sbuf, state[SPLIT_PENDING], a.mem, a.offsets + n, a.lens + n, a.max - n, a.cap, state);
  }
  return make_int(env, n);
}

/* Packet i with a zero vnet header (no offload) in the 10 bytes before it: write_one's result. */
static int write_plain_vnet(napi_env env, const char *fn, int fd, const packet_args *a, int64_t i) {
  uint8_t *q = a->mem + a->offsets[i] - VNET_HDR_LEN;
  memset(q, 0, VNET_HDR_LEN);
  return write_one(env, fn, fd, q, (size_t)a->lens[i] + VNET_HDR_LEN);
}

/*
 * tunWriteBatchVnet(fd, mem, offsets, lens, n) -> number written
 * tunWriteBatch for a TUN fd opened with tunOpenVnet: writes a zero
 * virtio_net_hdr (no offload) into the 10 bytes in front of each packet
 * (offsets[i] >= 10; those bytes are overwritten) and writes header+packet.
 */
napi_value tun_write_batch_vnet(napi_env env, napi_callback_info info) {
  static const char *fn = "tunWriteBatchVnet";
  napi_value argv[5];
  int fd;
  packet_args a;
  if (get_fd_args(env, info, fn, 5, argv, &fd) || get_vnet_packets(env, argv + 1, fn, &a)) return NULL;
  int64_t ok = 0;
  for (int64_t i = 0; i < a.n; i++) {
    int w = write_plain_vnet(env, fn, fd, &a, i);
    if (w < 0) return NULL;
    ok += w;
  }
  return make_int(env, ok);
}

/*
 * tunWriteBatchGro(fd, mem, offsets, lens, n) -> packets written
 * tunWriteBatchVnet with TCP coalescing: each run of consecutive in-sequence
 * TCP segments of one flow (IPv4, or IPv6 without extension headers) (equal payloads, only ACK/PSH, same options; at
 * most 64 and 64 KiB) is written as ONE TSO superpacket (writev: the first
 * packet's headers, rewritten, then every payload, no copy), and each run of
 * equal-size DF datagrams of one UDP flow as ONE USO superpacket; anything else
 * goes out as before with a zero vnet header. If the kernel refuses a
 * superpacket, its segments are written one by one (the head restored).
 * Packet order is kept. Packets' bytes in mem are clobbered.
 */
napi_value tun_write_batch_gro(napi_env env, napi_callback_info info) {
  static const char *fn = "tunWriteBatchGro";
  napi_value argv[5];
  int fd;
  packet_args a;
  if (get_fd_args(env, info, fn, 5, argv, &fd) || get_vnet_packets(env, argv + 1, fn, &a)) return NULL;
  uint8_t *mem = a.mem; int32_t *offsets = a.offsets, *lens = a.lens; int64_t n = a.n;
  struct iovec iov[GRO_MAX_SEGS];
  int64_t ok = 0, i = 0;
  while (i < n) {
    int64_t cnt = gro_plan(mem, offsets, lens, n, i);
    uint8_t *p = mem + offsets[i];
    if (cnt > 1) {
      uint8_t saved[100 + VNET_HDR_LEN]; /* the head's headers: IPv6 40 + TCP 60 at most */
      size_t keep = sizeof saved < (size_t)lens[i] + VNET_HDR_LEN ? sizeof saved : (size_t)lens[i] + VNET_HDR_LEN;
      memcpy(saved, p - VNET_HDR_LEN, keep);
      gro_prepare(iov, mem, offsets, lens, i, cnt);
      ssize_t r;
      do r = writev(fd, iov, (int)cnt); while (r < 0 && errno == EINTR);
      if (r >= 0) { ok += cnt; i += cnt; continue; }
      if (errno == EBADF) { throw_errno(env, EBADF, fn, "writev"); return NULL; }
      /* Refused: undo the head and write the segments one by one. */
      memcpy(p - VNET_HDR_LEN, saved, keep);
    }
    for (int64_t k = i; k < i + cnt; k++) {
      int w = write_plain_vnet(env, fn, fd, &a, k);
      if (w < 0) return NULL;
      ok += w;
    }
    i += cnt;
  }
  return make_int(env, ok);
}
