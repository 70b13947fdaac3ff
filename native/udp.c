/*
 * udp: the UDP socket's syscalls. No policy lives here.
 *
 * Owns: udpOpen (socket of either family, buffer sizes, bind) and close; batched receive
 * (recvmmsg, or one recvmmsg of GRO-coalesced datagrams split in place) and
 * batched send (sendmmsg, or sendmmsg with UDP_SEGMENT runs); one datagram
 * (sendto, or sendmsg with a per-packet IP_TTL); this thread's mmsg scratch.
 *
 * Flow of a batch: arguments parsed and every slot bounds-checked
 * (napi_util.c) before the first syscall; the headers are built in this
 * thread's scratch (tScratch, tGso, tGroRx: allocated on first use, freed by
 * udp_thread_free) at most MMSG_CHUNK messages per call. Receives stop at
 * EAGAIN and throw only when nothing was received; sends stop at
 * EAGAIN/ENOBUFS, skip a datagram the kernel refuses, and throw only for
 * EBADF/ENOTSOCK/EFAULT.
 */
#include "udp.h"
#include "faketcp.h"
#include "napi_util.h"
#include "addr6.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* recvmmsg/sendmmsg are called with at most this many messages (the kernel's UIO_MAXIOV). */
#define MMSG_CHUNK 1024
/* Segments per GSO send: the kernel's UDP_MAX_SEGMENTS is 64 on older kernels (128 since 6.x). */
#define GSO_MAX_SEGS 64
/* UDP payload bytes per GSO send (one skb: 64 KiB minus the IPv4 and UDP headers, with slack). */
#define GSO_MAX_BYTES 65000
/* Datagrams per recvmmsg in udpRecvGro (each needs a 64 KiB buffer). */
#define GRO_RX_MAX_BUFS 64
/* gro info words (Int32Array shared with JS): */
#define GRO_INFO_DGRAMS 0     /* datagrams the last call received */
#define GRO_INFO_COALESCED 1  /* cumulative: datagrams that carried more than one packet */
#define GRO_INFO_DROPPED 2    /* cumulative: packets dropped for want of room in offsets/lens */
#define GRO_INFO_WORDS 4

/* ------------------------------------------------------------------ */
/* Per-thread scratch                                                  */
/* ------------------------------------------------------------------ */

typedef struct {
  struct mmsghdr msgs[MMSG_CHUNK];
  struct iovec iov[MMSG_CHUNK];
  lwt_sockaddr sa[MMSG_CHUNK];
} mmsg_scratch;

/* GSO send: the messages (each a run of datagrams, one iovec per datagram) and per message its run and cmsg. */
typedef struct {
  mmsg_scratch m;
  int32_t first[MMSG_CHUNK]; /* first datagram index of message j */
  int32_t count[MMSG_CHUNK]; /* its datagram count */
  union { char buf[CMSG_SPACE(sizeof(uint16_t))]; struct cmsghdr align; } ctrl[MMSG_CHUNK];
} gso_scratch;

typedef struct {
  struct mmsghdr msgs[GRO_RX_MAX_BUFS];
  struct iovec iov[GRO_RX_MAX_BUFS];
  lwt_sockaddr sa[GRO_RX_MAX_BUFS];
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctrl[GRO_RX_MAX_BUFS];
} gro_rx_scratch;

/* This thread's scratch, allocated on first use; udp_thread_free releases it. */
static __thread mmsg_scratch *tScratch;
static __thread gso_scratch *tGso;
static __thread gro_rx_scratch *tGroRx;
/* Set after the kernel refused UDP_SEGMENT with EIO (egress device without checksum offload): plain sendmmsg from then on. */
static __thread int tGsoOff;

void udp_thread_free(void) {
  free(tScratch);
  tScratch = NULL;
  free(tGso);
  tGso = NULL;
  free(tGroRx);
  tGroRx = NULL;
}

static mmsg_scratch *scratch(void) {
  if (!tScratch) tScratch = malloc(sizeof *tScratch);
  return tScratch;
}

/* ------------------------------------------------------------------ */
/* Open and close                                                      */
/* ------------------------------------------------------------------ */

/*
 * udpOpen(host, port, bufBytes) -> { fd, port, family }
 * host: a dotted quad (AF_INET), or an IPv6 address ("::" for all): AF_INET6
 * with IPV6_V6ONLY off, so IPv4 peers reach it too (as ::ffff:a.b.c.d,
 * mapped back to the plain u32 by addr6.c). family is 4 or 6.
 */
napi_value udp_open(napi_env env, napi_callback_info info) {
  static const char *fn = "udpOpen";
  char host[64];
  int64_t port, buf;
  if (PARSE_ARGS(env, info, fn, ARG_STRING("host", host, sizeof host - 1), ARG_INT("port", 0, 65535, &port),
                 ARG_INT("bufBytes", 0, INT32_MAX, &buf))) return NULL;
  lwt_sockaddr sa;
  socklen_t salen;
  int is6;
  if (lwt_bind_sockaddr(env, fn, host, port, &sa, &salen, &is6) < 0) return NULL;

  int fd = socket(is6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { throw_errno(env, errno, fn, "socket"); return NULL; }
  if (is6) {
    int off = 0;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) < 0) {
      int e = errno;
      close(fd);
      throw_errno(env, e, fn, "setsockopt(IPV6_V6ONLY)");
      return NULL;
    }
  }
  if (buf > 0) {
    int b = (int)buf;
    /* FORCE ignores net.core.[rw]mem_max but needs CAP_NET_ADMIN; the plain option is clamped. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &b, sizeof b) < 0)
      (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &b, sizeof b);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &b, sizeof b) < 0)
      (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &b, sizeof b);
  }
  /*
   * DF on every datagram, and the kernel's cached path MTU never consulted
   * (ip(7) IP_PMTUDISC_PROBE, ipv6(7) IPV6_PMTUDISC_PROBE; the IPv4 option also
   * governs v4-mapped peers of a dual-stack socket): the daemon finds each
   * path's MTU itself with authenticated probes (src/control/path-mtu.ts). DO
   * would refuse our probes above a cached (possibly forged or stale) PMTU;
   * WANT would fragment.
   */
  int pmtud = IP_PMTUDISC_PROBE;
  (void)setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtud, sizeof pmtud);
  if (is6) {
    int pmtud6 = IPV6_PMTUDISC_PROBE;
    (void)setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtud6, sizeof pmtud6);
  }
  if (bind(fd, &sa.sa, salen) < 0) {
    int e = errno;
    close(fd);
    throw_errno(env, e, fn, "bind");
    return NULL;
  }
  socklen_t sl = sizeof sa;
  if (getsockname(fd, &sa.sa, &sl) < 0) {
    int e = errno;
    close(fd);
    throw_errno(env, e, fn, "getsockname");
    return NULL;
  }
  napi_value res;
  if (napi_create_object(env, &res) != napi_ok ||
      napi_set_named_property(env, res, "fd", make_int(env, fd)) != napi_ok ||
      napi_set_named_property(env, res, "port", make_int(env, ntohs(is6 ? sa.v6.sin6_port : sa.v4.sin_port))) != napi_ok ||
      napi_set_named_property(env, res, "family", make_int(env, is6 ? 6 : 4)) != napi_ok) {
    close(fd);
    throw_internal(env, fn);
    return NULL;
  }
  if (is6) lwt_sock_register(fd, 1);
  return res;
}

/* close(fd). EINTR counts as closed (Linux always releases the fd). Any fd: TUN and UDP alike. */
napi_value fd_close(napi_env env, napi_callback_info info) {
  static const char *fn = "close";
  int fd;
  if (PARSE_ARGS(env, info, fn, ARG_FD(&fd))) return NULL;
  lwt_sock_forget(fd);
  if (close(fd) < 0 && errno != EINTR) { throw_errno(env, errno, fn, "close"); return NULL; }
  return NULL;
}

/* ------------------------------------------------------------------ */
/* Batched receive and send                                            */
/* ------------------------------------------------------------------ */

/* Errors a recv can report for an earlier ICMP error; the call consumed it, so retry. */
static int transient_recv_error(int e) {
  return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH || e == EHOSTDOWN || e == ENETDOWN;
}

/*
 * udpRecvBatch(fd, mem, offsets, lens, addrs, max, cap) -> n
 * lens[i] = bytes, or -1 for a datagram truncated to cap (MSG_TRUNC).
 * addrs[2i] = source IPv4 (host order), addrs[2i+1] = source port.
 * Errors are thrown only when nothing was received.
 */
napi_value udp_recv_batch(napi_env env, napi_callback_info info) {
  static const char *fn = "udpRecvBatch";
  int fd;
  uint8_t *mem; int32_t *offsets, *lens; uint32_t *addrs;
  size_t memLen;
  int64_t max, cap;
  if (PARSE_ARGS(env, info, fn, ARG_FD(&fd), ARG_U8("mem", &mem, &memLen), ARG_I32_N("offsets", &offsets, 1, &max),
                 ARG_I32_N("lens", &lens, 1, &max), ARG_U32_N("addrs", &addrs, 2, &max), ARG_INT("max", 0, INT32_MAX, &max),
                 ARG_INT("cap", 0, INT32_MAX, &cap)) ||
      check_slots(env, fn, memLen, offsets, NULL, cap, max)) return NULL;
  mmsg_scratch *s = max > 0 ? scratch() : NULL;
  if (max > 0 && !s) { throw_errno(env, ENOMEM, fn, "malloc"); return NULL; }
  const lwt_sock *so = lwt_sock_get(fd);

  int64_t got = 0;
  int retries = 0;
  while (got < max) {
    unsigned chunk = (unsigned)(max - got < MMSG_CHUNK ? max - got : MMSG_CHUNK);
    for (unsigned j = 0; j < chunk; j++) {
      s->iov[j].iov_base = mem + offsets[got + j];
      s->iov[j].iov_len = (size_t)cap;
      memset(&s->msgs[j], 0, sizeof s->msgs[j]);
      s->msgs[j].msg_hdr.msg_iov = &s->iov[j];
      s->msgs[j].msg_hdr.msg_iovlen = 1;
      s->msgs[j].msg_hdr.msg_name = &s->sa[j];
      s->msgs[j].msg_hdr.msg_namelen = sizeof s->sa[j];
    }
    int r = recvmmsg(fd, s->msgs, chunk, MSG_DONTWAIT, NULL);
    if (r < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (e == EAGAIN || e == EWOULDBLOCK) break;
      if (transient_recv_error(e) && ++retries < 8) continue;
      if (got > 0) break;
      throw_errno(env, e, fn, "recvmmsg");
      return NULL;
    }
    for (int j = 0; j < r; j++) {
      int64_t i = got + j;
      struct msghdr *h = &s->msgs[j].msg_hdr;
      lens[i] = (h->msg_flags & MSG_TRUNC) ? -1 : (int32_t)s->msgs[j].msg_len;
      lwt_ep_from(so, &s->sa[j], h->msg_namelen, &addrs[2 * i], &addrs[2 * i + 1]);
    }
    got += r;
    if ((unsigned)r < chunk) break;
  }
  return make_int(env, got);
}

/*
 * Sends datagrams [from, to) one message each (no GSO), in chunks of
 * MMSG_CHUNK built in s. Returns how many were sent; *stop = 1 on
 * EAGAIN/ENOBUFS (the rest of the batch is not sent), *fatal = errno for
 * EBADF/ENOTSOCK/EFAULT; any other per-datagram error skips that datagram.
 */
static int64_t send_plain(mmsg_scratch *s, const lwt_sock *so, int fd, uint8_t *mem, const int32_t *offsets, const int32_t *lens,
                          const uint32_t *addrs, int64_t from, int64_t to, int *stop, int *fatal) {
  int64_t sent = 0;
  while (from < to) {
    unsigned chunk = (unsigned)(to - from < MMSG_CHUNK ? to - from : MMSG_CHUNK);
    for (unsigned j = 0; j < chunk; j++) {
      int64_t i = from + j;
      s->iov[j].iov_base = mem + offsets[i];
      s->iov[j].iov_len = (size_t)lens[i];
      memset(&s->msgs[j], 0, sizeof s->msgs[j]);
      s->msgs[j].msg_hdr.msg_iov = &s->iov[j];
      s->msgs[j].msg_hdr.msg_iovlen = 1;
      s->msgs[j].msg_hdr.msg_name = &s->sa[j];
      /* 0 for a handle that does not resolve: the kernel refuses it (EDESTADDRREQ) and it is skipped below. */
      s->msgs[j].msg_hdr.msg_namelen = lwt_ep_sockaddr(so, addrs[2 * i], addrs[2 * i + 1], &s->sa[j]);
    }
    unsigned pos = 0;
    while (pos < chunk) {
      int r = sendmmsg(fd, s->msgs + pos, chunk - pos, MSG_DONTWAIT);
      if (r < 0) {
        int e = errno;
        if (e == EINTR) continue;
        if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) { *stop = 1; return sent; }
        if (e == EBADF || e == ENOTSOCK || e == EFAULT) { *fatal = e; return sent; }
        pos++; /* this datagram failed (EPERM, ENETUNREACH, EMSGSIZE, ...): skip it */
        continue;
      }
      pos += (unsigned)r;
      sent += r;
    }
    from += chunk;
  }
  return sent;
}

/*
 * udpSendBatch(fd, mem, offsets, lens, addrs, n) -> number sent
 * sendmmsg, looping over partial results. EAGAIN/ENOBUFS stop the batch;
 * any other per-datagram error skips that datagram. EBADF/ENOTSOCK throw.
 */
napi_value udp_send_batch(napi_env env, napi_callback_info info) {
  static const char *fn = "udpSendBatch";
  napi_value argv[6];
  int fd;
  packet_args a;
  if (get_fd_args(env, info, fn, 6, argv, &fd) || get_packets(env, argv + 1, fn, 1, &a)) return NULL;
  int64_t ftSent = 0;
  ftcp_divert(&a, &ftSent); /* datagrams to fake-TCP flows leave as segments (faketcp.c) */
  mmsg_scratch *s = a.n > 0 ? scratch() : NULL;
  if (a.n > 0 && !s) { throw_errno(env, ENOMEM, fn, "malloc"); return NULL; }
  int stop = 0, fatal = 0;
  int64_t sent = send_plain(s, lwt_sock_get(fd), fd, a.mem, a.offsets, a.lens, a.addrs, 0, a.n, &stop, &fatal);
  if (fatal) { throw_errno(env, fatal, fn, "sendmmsg"); return NULL; }
  return make_int(env, sent + ftSent);
}

/*
 * udpSendBatchGso(fd, mem, offsets, lens, addrs, n) -> number of datagrams sent
 * Same contract as udpSendBatch (same datagrams, same order, EAGAIN/ENOBUFS
 * stop the batch, other per-datagram errors skip, EBADF/ENOTSOCK throw), but
 * runs of consecutive datagrams to the same address with the same length
 * (the last of a run may be shorter) go out as ONE message with UDP_SEGMENT:
 * the kernel carries them as one skb and splits them into the same
 * datagrams. The datagrams need not be adjacent in mem (one iovec each).
 * A run the kernel refuses (EINVAL, EMSGSIZE: e.g. a segment above the path
 * MTU) is resent one datagram per message; EIO (no checksum offload on the
 * egress device) turns GSO off for this thread, as wireguard-go does.
 */
napi_value udp_send_batch_gso(napi_env env, napi_callback_info info) {
  static const char *fn = "udpSendBatchGso";
  napi_value argv[6];
  int fd;
  packet_args a;
  if (get_fd_args(env, info, fn, 6, argv, &fd) || get_packets(env, argv + 1, fn, 1, &a)) return NULL;
  int64_t sent = 0;
  ftcp_divert(&a, &sent); /* datagrams to fake-TCP flows leave as segments (faketcp.c) */
  uint8_t *mem = a.mem; int32_t *offsets = a.offsets, *lens = a.lens; uint32_t *addrs = a.addrs; int64_t n = a.n;
  if (n == 0) return make_int(env, sent);
  if (!tGso) tGso = malloc(sizeof *tGso);
  gso_scratch *s = tGso;
  if (!s) { throw_errno(env, ENOMEM, fn, "malloc"); return NULL; }

  int64_t i = 0;
  int stop = 0, fatal = 0;
  const lwt_sock *so = lwt_sock_get(fd);
  if (tGsoOff) {
    sent += send_plain(&s->m, so, fd, mem, offsets, lens, addrs, 0, n, &stop, &fatal);
    if (fatal) { throw_errno(env, fatal, fn, "sendmmsg"); return NULL; }
    return make_int(env, sent);
  }
  while (i < n && !stop) {
    /* Build up to MMSG_CHUNK messages, each a run of datagrams. */
    unsigned m = 0, iv = 0;
    while (i < n && m < MMSG_CHUNK && iv < MMSG_CHUNK) {
      int64_t first = i;
      int32_t seg = lens[i];
      int64_t bytes = seg;
      i++;
      while (i < n && iv + (i - first) < MMSG_CHUNK && i - first < GSO_MAX_SEGS && seg > 0 &&
             addrs[2 * i] == addrs[2 * first] && addrs[2 * i + 1] == addrs[2 * first + 1] &&
             lens[i] > 0 && lens[i] <= seg && bytes + lens[i] <= GSO_MAX_BYTES) {
        bytes += lens[i];
        i++;
        if (lens[i - 1] < seg) break; /* a shorter datagram ends the run */
      }
      int32_t cnt = (int32_t)(i - first);
      struct msghdr *h = &s->m.msgs[m].msg_hdr;
      memset(&s->m.msgs[m], 0, sizeof s->m.msgs[m]);
      for (int32_t k = 0; k < cnt; k++) {
        s->m.iov[iv + k].iov_base = mem + offsets[first + k];
        s->m.iov[iv + k].iov_len = (size_t)lens[first + k];
      }
      h->msg_iov = &s->m.iov[iv];
      h->msg_iovlen = (size_t)cnt;
      h->msg_name = &s->m.sa[m];
      h->msg_namelen = lwt_ep_sockaddr(so, addrs[2 * first], addrs[2 * first + 1], &s->m.sa[m]);
      if (cnt > 1) {
        h->msg_control = s->ctrl[m].buf;
        h->msg_controllen = sizeof s->ctrl[m].buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(h);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t gso = (uint16_t)seg;
        memcpy(CMSG_DATA(c), &gso, sizeof gso);
      }
      s->first[m] = (int32_t)first;
      s->count[m] = cnt;
      iv += (unsigned)cnt;
      m++;
    }
    unsigned pos = 0;
    while (pos < m && !stop) {
      int r = sendmmsg(fd, s->m.msgs + pos, m - pos, MSG_DONTWAIT);
      if (r < 0) {
        int e = errno;
        if (e == EINTR) continue;
        if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) { stop = 1; break; }
        if (e == EBADF || e == ENOTSOCK || e == EFAULT) { throw_errno(env, e, fn, "sendmmsg"); return NULL; }
        int32_t f = s->first[pos], cnt = s->count[pos];
        if (cnt > 1 && (e == EIO || e == EINVAL || e == EMSGSIZE)) {
          if (e == EIO) tGsoOff = 1;
          /* Resend this run one datagram per message. The scratch is shared, so rebuild the rest afterwards. */
          int64_t rest = (int64_t)f + cnt;
          sent += send_plain(&s->m, so, fd, mem, offsets, lens, addrs, f, rest, &stop, &fatal);
          if (fatal) { throw_errno(env, fatal, fn, "sendmmsg"); return NULL; }
          i = rest; /* continue building from the datagram after this run */
          pos = m;  /* abandon the remaining built messages: they are rebuilt from i */
          if (tGsoOff && !stop) {
            sent += send_plain(&s->m, so, fd, mem, offsets, lens, addrs, i, n, &stop, &fatal);
            if (fatal) { throw_errno(env, fatal, fn, "sendmmsg"); return NULL; }
            return make_int(env, sent);
          }
          break;
        }
        pos++; /* this message failed (EPERM, ENETUNREACH, ...): skip its datagrams */
        continue;
      }
      for (int k = 0; k < r; k++) sent += s->count[pos + (unsigned)k];
      pos += (unsigned)r;
    }
  }
  return make_int(env, sent);
}

/* udpSetGro(fd, on) -> true when the kernel took UDP_GRO (Linux 5.0+). */
napi_value udp_set_gro(napi_env env, napi_callback_info info) {
  static const char *fn = "udpSetGro";
  int fd;
  bool on;
  if (PARSE_ARGS(env, info, fn, ARG_FD(&fd), ARG_BOOL("on", &on))) return NULL;
  int v = on ? 1 : 0;
  int ok = setsockopt(fd, SOL_UDP, UDP_GRO, &v, sizeof v) == 0;
  if (!ok && (errno == EBADF || errno == ENOTSOCK)) { throw_errno(env, errno, fn, "setsockopt"); return NULL; }
  napi_value res;
  if (napi_get_boolean(env, ok, &res) != napi_ok) { throw_internal(env, fn); return NULL; }
  return res;
}

/*
 * udpRecvGro(fd, mem, bufOffsets, nBufs, bufCap, offsets, lens, addrs, max, info) -> packets
 * One recvmmsg of up to nBufs datagrams, datagram j into mem[bufOffsets[j] ..
 * + bufCap). A datagram the kernel coalesced (UDP_GRO on the socket: the
 * sender's GSO batch, or GRO on the way in) carries its segment size in a
 * cmsg and is split, in place, into its packets: packet k of it is at
 * bufOffsets[j] + k*size. Every packet gets an entry: offsets[i], lens[i]
 * (-1: datagram truncated to bufCap), addrs[2i] = source IPv4 (host order),
 * addrs[2i+1] = source port. At most `max` entries; packets beyond are
 * dropped and counted (info[2]; never with max >= nBufs * 128, the kernel's
 * segment limit). info[0] = datagrams received (nBufs: call again),
 * info[1] += coalesced datagrams. Errors are thrown only when nothing was
 * received; EAGAIN is 0.
 */
napi_value udp_recv_gro(napi_env env, napi_callback_info info) {
  static const char *fn = "udpRecvGro";
  int fd;
  uint8_t *mem; int32_t *bufOffsets, *offsets, *lens, *gi; uint32_t *addrs;
  size_t memLen;
  int64_t nBufs, cap, max;
  if (PARSE_ARGS(env, info, fn, ARG_FD(&fd), ARG_U8("mem", &mem, &memLen), ARG_I32_N("bufOffsets", &bufOffsets, 1, &nBufs),
                 ARG_INT("nBufs", 0, GRO_RX_MAX_BUFS, &nBufs), ARG_INT("bufCap", 1, INT32_MAX, &cap),
                 ARG_I32_N("offsets", &offsets, 1, &max), ARG_I32_N("lens", &lens, 1, &max), ARG_U32_N("addrs", &addrs, 2, &max),
                 ARG_INT("max", 0, INT32_MAX, &max), ARG_I32_W("info", &gi, GRO_INFO_WORDS)) ||
      check_slots(env, fn, memLen, bufOffsets, NULL, cap, nBufs)) return NULL;
  gi[GRO_INFO_DGRAMS] = 0;
  if (nBufs == 0 || max == 0) return make_int(env, 0);
  if (!tGroRx) tGroRx = malloc(sizeof *tGroRx);
  gro_rx_scratch *s = tGroRx;
  if (!s) { throw_errno(env, ENOMEM, fn, "malloc"); return NULL; }

  for (int64_t j = 0; j < nBufs; j++) {
    s->iov[j].iov_base = mem + bufOffsets[j];
    s->iov[j].iov_len = (size_t)cap;
    memset(&s->msgs[j], 0, sizeof s->msgs[j]);
    struct msghdr *h = &s->msgs[j].msg_hdr;
    h->msg_iov = &s->iov[j];
    h->msg_iovlen = 1;
    h->msg_name = &s->sa[j];
    h->msg_namelen = sizeof s->sa[j];
    h->msg_control = s->ctrl[j].buf;
    h->msg_controllen = sizeof s->ctrl[j].buf;
  }
  int r, retries = 0;
  for (;;) {
    r = recvmmsg(fd, s->msgs, (unsigned)nBufs, MSG_DONTWAIT, NULL);
    if (r >= 0) break;
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) return make_int(env, 0);
    if (transient_recv_error(e) && ++retries < 8) continue;
    throw_errno(env, e, fn, "recvmmsg");
    return NULL;
  }
  gi[GRO_INFO_DGRAMS] = r;
  const lwt_sock *so = lwt_sock_get(fd);
  int64_t out = 0;
  for (int j = 0; j < r; j++) {
    struct msghdr *h = &s->msgs[j].msg_hdr;
    uint32_t ip, port;
    lwt_ep_from(so, &s->sa[j], h->msg_namelen, &ip, &port);
    int64_t len = (int64_t)s->msgs[j].msg_len;
    int64_t seg = len;
    if (!(h->msg_flags & MSG_TRUNC)) {
      for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
          int g;
          memcpy(&g, CMSG_DATA(c), sizeof g);
          if (g > 0 && g < seg) seg = g;
        }
      }
    }
    if (h->msg_flags & MSG_TRUNC) {
      if (out < max) { offsets[out] = bufOffsets[j]; lens[out] = -1; addrs[2 * out] = ip; addrs[2 * out + 1] = port; out++; }
      else gi[GRO_INFO_DROPPED]++;
      continue;
    }
    if (seg < len) gi[GRO_INFO_COALESCED]++;
    int64_t pos = 0;
    do {
      int64_t l = len - pos < seg ? len - pos : seg;
      if (out < max) {
        offsets[out] = (int32_t)(bufOffsets[j] + pos);
        lens[out] = (int32_t)l;
        addrs[2 * out] = ip;
        addrs[2 * out + 1] = port;
        out++;
      } else {
        gi[GRO_INFO_DROPPED]++;
      }
      pos += l;
    } while (pos < len);
  }
  return make_int(env, out);
}

/* ------------------------------------------------------------------ */
/* One datagram                                                        */
/* ------------------------------------------------------------------ */

/* udpSendTo(fd, buf, ip, port) -> bytes sent, or -errno. Throws only for bad arguments. */
napi_value udp_send_to(napi_env env, napi_callback_info info) {
  static const char *fn = "udpSendTo";
  int fd;
  uint8_t *buf;
  size_t len;
  int64_t ip, port;
  if (PARSE_ARGS(env, info, fn, ARG_FD(&fd), ARG_U8("buf", &buf, &len), ARG_INT("ip", 0, UINT32_MAX, &ip),
                 ARG_INT("port", 0, 65535, &port))) return NULL;
  if (ftcp_is_handle((uint32_t)ip)) {
    struct iovec v = { .iov_base = buf, .iov_len = len };
    return make_int(env, ftcp_send_iov((uint32_t)ip, &v, len ? 1 : 0) < 0 ? -(int64_t)errno : (int64_t)len);
  }
  lwt_sockaddr sa;
  socklen_t sl = lwt_ep_sockaddr(lwt_sock_get(fd), (uint32_t)ip, (uint32_t)port, &sa);
  if (sl == 0) return make_int(env, -EDESTADDRREQ);
  ssize_t r;
  const void *data = len ? (const void *)buf : (const void *)"";
  do r = sendto(fd, data, len, MSG_DONTWAIT, &sa.sa, sl);
  while (r < 0 && errno == EINTR);
  return make_int(env, r < 0 ? -(int64_t)errno : (int64_t)r);
}

/*
 * udpSendToTtl(fd, buf, ip, port, ttl) -> bytes sent, or -errno. The TTL
 * travels as IP_TTL ancillary data (ip(7)), so it applies to this datagram
 * only and never races with the workers' sends on the same socket. A
 * low-TTL first probe opens our own NAT's mapping without reaching (and
 * confusing) the peer's NAT: the conntrack-race guard of docs/NAT-TRAVERSAL.md.
 */
napi_value udp_send_to_ttl(napi_env env, napi_callback_info info) {
  static const char *fn = "udpSendToTtl";
  int fd;
  uint8_t *buf;
  size_t len;
  int64_t ip, port, ttl;
  if (PARSE_ARGS(env, info, fn, ARG_FD(&fd), ARG_U8("buf", &buf, &len), ARG_INT("ip", 0, UINT32_MAX, &ip),
                 ARG_INT("port", 0, 65535, &port), ARG_INT("ttl", 1, 255, &ttl))) return NULL;
  if (ftcp_is_handle((uint32_t)ip)) { /* a fake-TCP flow: no per-packet TTL there */
    struct iovec v = { .iov_base = buf, .iov_len = len };
    return make_int(env, ftcp_send_iov((uint32_t)ip, &v, len ? 1 : 0) < 0 ? -(int64_t)errno : (int64_t)len);
  }
  lwt_sockaddr sa;
  socklen_t sl = lwt_ep_sockaddr(lwt_sock_get(fd), (uint32_t)ip, (uint32_t)port, &sa);
  if (sl == 0) return make_int(env, -EDESTADDRREQ);
  /* A real IPv6 destination takes the hop limit (ipv6(7)); IPv4, also v4-mapped on an AF_INET6 socket, IP_TTL. */
  int v6dst = sa.sa.sa_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&sa.v6.sin6_addr);
  struct iovec iov;
  iov.iov_base = len ? (void *)buf : (void *)"";
  iov.iov_len = len;
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_name = &sa;
  msg.msg_namelen = sl;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = v6dst ? IPPROTO_IPV6 : IPPROTO_IP;
  c->cmsg_type = v6dst ? IPV6_HOPLIMIT : IP_TTL;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  int t = (int)ttl;
  memcpy(CMSG_DATA(c), &t, sizeof t);
  ssize_t r;
  do r = sendmsg(fd, &msg, MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  return make_int(env, r < 0 ? -(int64_t)errno : (int64_t)r);
}
