/*
 * faketcp: the fake-TCP link's syscalls and per-flow sequence state. No policy lives here: the
 * handshake (SYN / SYN-ACK / ACK, ISNs, re-SYN, expiry) is TypeScript's (src/dataplane/faketcp-flow.ts),
 * which tells this file a flow's numbers once it is up (ftcpFlowSet).
 *
 * Owns: the two raw sockets of a link (AF_INET, SOCK_RAW, IPPROTO_TCP, IP_HDRINCL), each with a
 * classic BPF filter for our port: the data socket sees only segments with payload and no
 * SYN/RST/FIN (polled by the inbound pipeline, ftcpRecv), the control socket the rest (polled by
 * the main thread, ftcpRecvCtl); the flow table (FT_MAX flows: remote and local address, next
 * sequence number to send, highest byte received, the peer's last TSval, IP id), one mutex.
 *
 * The superpacket path (faketcp-packet.c, sharing the flow table through faketcp-int.h): a link may
 * pair its raw data socket with an AF_PACKET socket (ftcpOpenPacket); then ftcp_divert hands runs of
 * equal-size datagrams to a flow whose next hop is known to it as one TSO superpacket, and ftcpRecv
 * on that socket splits GSO/GRO packets. What follows is the raw path, which still sends the
 * handshake, pure ACKs, lone packets of the fast path and everything before a next hop is known.
 *
 * Flow of a datagram out: udp.c / fastpath.c see an address that is a handle (ftcp_is_handle) and
 * call ftcp_divert / ftcp_send_iov; under the lock each segment takes its sequence number (seq
 * advances by the payload length) and the current ack; IP header (DF, TTL 64, per-flow IP id; the
 * kernel fills the IP checksum) + TCP header (ACK|PSH, window 65535 scaled by 2^9, NOP NOP
 * timestamps: 32 bytes) are built in this thread's scratch, the TCP checksum computed here
 * (RFC 1071, offload.h), and sendmmsg sends header and payload as two iovecs (no copy).
 * In: recvmmsg of segments into the pipeline's slots; each is parsed, its flow found by
 * (source ip, source port, our port), the flow's ack and TSval updated, and the payload handed up
 * as a datagram from { handle, source port }. A flow that received FT_ACK_EVERY bytes without
 * sending anything gets a pure ACK, so middleboxes' window tracking never sees it fall behind.
 * Segments of unknown flows are counted (info[3]) and dropped; their checksum is not verified here
 * (the payload is authenticated above; a stateful middlebox drops bad checksums anyway).
 */
#include "faketcp.h"
#include "faketcp-int.h"
#include "offload.h"
#include "udp.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <linux/filter.h>
#include <netinet/ip.h>
#include <sys/socket.h>

ft_flow ft_flows[FT_MAX];
static int32_t gHash[FT_HASH]; /* flow index + 1; 0 empty; -1 deleted */
static uint32_t gNext;         /* allocation cursor */
pthread_mutex_t ft_mu = PTHREAD_MUTEX_INITIALIZER;

int64_t ft_now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static uint32_t key_hash(uint32_t rip, uint16_t rport, uint16_t lport) {
  uint32_t h = rip * 2654435761u ^ ((uint32_t)rport << 16 | lport) * 2246822519u;
  return (h ^ (h >> 15)) & (FT_HASH - 1);
}

/* The flow index of a key, or -1. Under ft_mu. */
int32_t ft_lookup(uint32_t rip, uint16_t rport, uint16_t lport) {
  for (uint32_t i = key_hash(rip, rport, lport), k = 0; k < FT_HASH; i = (i + 1) & (FT_HASH - 1), k++) {
    int32_t v = gHash[i];
    if (v == 0) return -1;
    if (v < 0) continue;
    ft_flow *f = &ft_flows[v - 1];
    if (f->rip == rip && f->rport == rport && f->lport == lport) return v - 1;
  }
  return -1;
}

static void hash_remove(int32_t idx) {
  ft_flow *f = &ft_flows[idx];
  for (uint32_t i = key_hash(f->rip, f->rport, f->lport), k = 0; k < FT_HASH; i = (i + 1) & (FT_HASH - 1), k++) {
    if (gHash[i] == 0) return;
    if (gHash[i] == idx + 1) { gHash[i] = -1; return; }
  }
}

static void hash_insert(int32_t idx) {
  ft_flow *f = &ft_flows[idx];
  for (uint32_t i = key_hash(f->rip, f->rport, f->lport);; i = (i + 1) & (FT_HASH - 1)) {
    if (gHash[i] <= 0) { gHash[i] = idx + 1; return; }
  }
}

/* The flow of a handle, or NULL. Under ft_mu. */
ft_flow *ft_by_handle(uint32_t h) {
  if (!ftcp_is_handle(h)) return NULL;
  uint32_t i = h & ~FT_HANDLE_MASK;
  return i < FT_MAX && ft_flows[i].used ? &ft_flows[i] : NULL;
}

/* ------------------------------------------------------------------ */
/* Headers and checksums                                               */
/* ------------------------------------------------------------------ */

/* One's-complement sum over iovecs, carrying an odd byte across their boundaries. */
static uint64_t csum_iov(uint64_t sum, const struct iovec *iov, int n) {
  int odd = 0;
  for (int k = 0; k < n; k++) {
    const uint8_t *p = iov[k].iov_base;
    size_t len = iov[k].iov_len;
    if (odd && len) { sum += p[0]; p++; len--; odd = 0; }
    sum = csum_add(sum, p, len & ~(size_t)1);
    if (len & 1) { sum += (uint32_t)p[len - 1] << 8; odd = 1; }
  }
  return sum;
}

/* Builds the data segment header for `plen` payload bytes in hdr and advances the flow. Under ft_mu. */
void ft_build_hdr(ft_flow *f, uint8_t *hdr, size_t plen, int flags) {
  uint8_t *ip = hdr, *t = hdr + 20;
  ip[0] = 0x45; ip[1] = 0;
  put16(ip + 2, (uint16_t)(FT_HDR + plen));
  put16(ip + 4, f->ipId++);
  put16(ip + 6, 0x4000); /* DF */
  ip[8] = 64; ip[9] = IPPROTO_TCP;
  put16(ip + 10, 0);     /* the kernel fills the IP checksum (raw(7)) */
  put32(ip + 12, f->lip);
  put32(ip + 16, f->rip);
  put16(t, f->lport);
  put16(t + 2, f->rport);
  put32(t + 4, f->seq);
  put32(t + 8, f->ack);
  t[12] = 8 << 4;        /* data offset: 32 bytes */
  t[13] = (uint8_t)flags;
  put16(t + 14, FT_WINDOW);
  put16(t + 16, 0);
  put16(t + 18, 0);
  t[20] = 1; t[21] = 1; t[22] = 8; t[23] = 10;
  put32(t + 24, (uint32_t)ft_now_ms());
  put32(t + 28, f->tsRecent);
  f->seq += (uint32_t)plen;
  f->ackSent = f->ack;
  f->txPackets++;
  f->txBytes += (double)plen;
}

/* Completes the TCP checksum of a header built by build_hdr, over the payload iovecs. */
static void finish_csum(uint8_t *hdr, const struct iovec *pay, int n, size_t plen) {
  uint64_t sum = csum_add(0, hdr + 12, 8) + IPPROTO_TCP + 32 + plen;
  sum = csum_add(sum, hdr + 20, 32);
  sum = csum_iov(sum, pay, n);
  put16(hdr + 36, csum_fold(sum));
}

static void dst_addr(struct sockaddr_in *sa, const uint8_t *hdr) { set_sockaddr(sa, get32(hdr + 16), 0); }

/* ------------------------------------------------------------------ */
/* Send                                                                */
/* ------------------------------------------------------------------ */

ssize_t ftcp_send_iov(uint32_t handle, const struct iovec *iov, int n) {
  uint8_t hdr[FT_HDR];
  size_t plen = 0;
  for (int k = 0; k < n; k++) plen += iov[k].iov_len;
  pthread_mutex_lock(&ft_mu);
  ft_flow *f = ft_by_handle(handle);
  if (!f || !f->up || plen + FT_HDR > FT_MAX_SEG || n > 7) {
    errno = !f || !f->up ? ENOTCONN : n > 7 ? EINVAL : EMSGSIZE;
    pthread_mutex_unlock(&ft_mu);
    return -1;
  }
  ft_build_hdr(f, hdr, plen, 0x18);
  int fd = f->fd;
  pthread_mutex_unlock(&ft_mu);
  finish_csum(hdr, iov, n, plen);
  struct iovec v[8];
  v[0].iov_base = hdr;
  v[0].iov_len = FT_HDR;
  for (int k = 0; k < n; k++) v[k + 1] = iov[k];
  struct sockaddr_in sa;
  dst_addr(&sa, hdr);
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_name = &sa;
  m.msg_namelen = sizeof sa;
  m.msg_iov = v;
  m.msg_iovlen = (size_t)n + 1;
  ssize_t r;
  do r = sendmsg(fd, &m, MSG_DONTWAIT); while (r < 0 && errno == EINTR);
  return r < 0 ? -1 : (ssize_t)plen;
}

typedef struct {
  uint8_t hdr[FT_CHUNK][FT_HDR];
  struct iovec iov[FT_CHUNK][2];
  struct mmsghdr msgs[FT_CHUNK];
  struct sockaddr_in sa[FT_CHUNK];
  int fds[FT_CHUNK];
  int32_t cap;                /* entries of rest* */
  int32_t *restOff, *restLen;
  uint32_t *restAddr;
} ft_scratch;

static __thread ft_scratch *tFt;

void ftcp_thread_free(void) {
  if (!tFt) return;
  free(tFt->restOff);
  free(tFt->restLen);
  free(tFt->restAddr);
  free(tFt);
  tFt = NULL;
}

/* Sends the built messages [0, m): runs on one fd per sendmmsg. Returns how many were sent. */
static int64_t send_built(ft_scratch *s, unsigned m) {
  int64_t sent = 0;
  unsigned pos = 0;
  while (pos < m) {
    unsigned end = pos + 1;
    while (end < m && s->fds[end] == s->fds[pos]) end++;
    while (pos < end) {
      int r = sendmmsg(s->fds[pos], s->msgs + pos, end - pos, MSG_DONTWAIT);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) return sent;
        pos++; /* this segment failed (EMSGSIZE, EPERM, ...): skip it */
        continue;
      }
      pos += (unsigned)r;
      sent += r;
    }
  }
  return sent;
}

int ftcp_divert(packet_args *a, int64_t *sent) {
  int64_t n = a->n, i;
  for (i = 0; i < n && !ftcp_is_handle(a->addrs[2 * i]); i++) {}
  if (i == n) return 0;
  if (!tFt) { tFt = calloc(1, sizeof *tFt); if (!tFt) return 0; }
  ft_scratch *s = tFt;
  if (s->cap < n) {
    int32_t c = (int32_t)n;
    int32_t *o = realloc(s->restOff, sizeof(int32_t) * (size_t)c), *l = o ? realloc(s->restLen, sizeof(int32_t) * (size_t)c) : NULL;
    if (o) s->restOff = o;
    if (l) s->restLen = l;
    uint32_t *ad = l ? realloc(s->restAddr, sizeof(uint32_t) * 2 * (size_t)c) : NULL;
    if (!ad) return 0;
    s->restAddr = ad;
    s->cap = c;
  }
  int64_t rest = 0, total = 0;
  unsigned m = 0;
  for (i = 0; i < n; i++) {
    uint32_t ip = a->addrs[2 * i];
    if (!ftcp_is_handle(ip)) {
      s->restOff[rest] = a->offsets[i];
      s->restLen[rest] = a->lens[i];
      s->restAddr[2 * rest] = ip;
      s->restAddr[2 * rest + 1] = a->addrs[2 * i + 1];
      rest++;
      continue;
    }
    size_t plen = (size_t)a->lens[i];
    pthread_mutex_lock(&ft_mu);
    ft_flow *f = ft_by_handle(ip);
    if (!f || !f->up || plen + FT_HDR > FT_MAX_SEG) { pthread_mutex_unlock(&ft_mu); continue; }
    if (f->l2 && f->pfd >= 0 && plen > 0) { /* the next hop is known: a run leaves as one superpacket (faketcp-packet.c) */
      size_t k = ftp_run(a->addrs, a->lens, (size_t)i, (size_t)n, FTP_MAX_PAYLOAD, FTP_MAX_SEGS), run = 0;
      for (size_t j = 0; j < k; j++) run += (size_t)a->lens[i + (int64_t)j];
      uint8_t hdr[FT_HDR], mac[12];
      ft_build_hdr(f, hdr, run, 0x18);
      f->ipId = (uint16_t)(f->ipId + k - 1); /* the kernel gives each segment its own id */
      f->txPackets += (double)(k - 1);
      int pfd = f->pfd, ifi = f->ifindex;
      memcpy(mac, f->mac, 6);
      memcpy(mac + 6, f->smac, 6);
      pthread_mutex_unlock(&ft_mu);
      if (m > 0) { total += send_built(s, m); m = 0; } /* keep the batch's order */
      if (ftp_send(pfd, ifi, mac, hdr, a->mem, a->offsets + i, a->lens + i, k, run)) total += (int64_t)k;
      else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) { /* the next hop is gone (device down, removed): raw until relearned */
        pthread_mutex_lock(&ft_mu);
        if (f->used && f->ifindex == ifi) f->l2 = 0;
        pthread_mutex_unlock(&ft_mu);
      }
      i += (int64_t)k - 1;
      continue;
    }
    ft_build_hdr(f, s->hdr[m], plen, 0x18);
    s->fds[m] = f->fd;
    pthread_mutex_unlock(&ft_mu);
    s->iov[m][0].iov_base = s->hdr[m];
    s->iov[m][0].iov_len = FT_HDR;
    s->iov[m][1].iov_base = a->mem + a->offsets[i];
    s->iov[m][1].iov_len = plen;
    finish_csum(s->hdr[m], &s->iov[m][1], 1, plen);
    dst_addr(&s->sa[m], s->hdr[m]);
    memset(&s->msgs[m], 0, sizeof s->msgs[m]);
    s->msgs[m].msg_hdr.msg_name = &s->sa[m];
    s->msgs[m].msg_hdr.msg_namelen = sizeof s->sa[m];
    s->msgs[m].msg_hdr.msg_iov = s->iov[m];
    s->msgs[m].msg_hdr.msg_iovlen = 2;
    if (++m == FT_CHUNK) { total += send_built(s, m); m = 0; }
  }
  if (m > 0) total += send_built(s, m);
  a->offsets = s->restOff;
  a->lens = s->restLen;
  a->addrs = s->restAddr;
  a->n = rest;
  *sent = total;
  return 1;
}

/* Shared by the raw receive loop below and the packet socket's (faketcp-packet.c); see faketcp-int.h. */
int ft_seg_lens(const uint8_t *p, size_t n, size_t *ihl, size_t *tot, size_t *doff) {
  if (n < 40 || (p[0] >> 4) != 4) return -1;
  *ihl = (size_t)(p[0] & 15) * 4;
  *tot = get16(p + 2);
  if (*tot > n || *ihl < 20 || *tot < *ihl + 20) return -1;
  *doff = (size_t)(p[*ihl + 12] >> 4) * 4;
  return *doff < 20 || *ihl + *doff >= *tot ? -1 : 0;
}

void ft_seg_took(ft_flow *f, const uint8_t *tcp, size_t doff, uint32_t plen, uint32_t segs, int64_t t) {
  uint32_t end = get32(tcp + 4) + plen;
  if ((int32_t)(end - f->ack) > 0) f->ack = end;
  if (doff >= 32 && tcp[20] == 1 && tcp[21] == 1 && tcp[22] == 8 && tcp[23] == 10) f->tsRecent = get32(tcp + 24);
  f->rxPackets += segs;
  f->rxBytes += plen;
  f->lastRxMs = t;
}

/* A pure ACK on flow idx (no payload). Outside ft_mu. */
void ft_send_pure_ack(int32_t idx) {
  uint8_t hdr[FT_HDR];
  pthread_mutex_lock(&ft_mu);
  ft_flow *f = &ft_flows[idx];
  if (!f->used || !f->up) { pthread_mutex_unlock(&ft_mu); return; }
  ft_build_hdr(f, hdr, 0, 0x10);
  f->txPackets--; /* not a datagram */
  int fd = f->fd;
  pthread_mutex_unlock(&ft_mu);
  finish_csum(hdr, NULL, 0, 0);
  struct sockaddr_in sa;
  dst_addr(&sa, hdr);
  sendto(fd, hdr, FT_HDR, MSG_DONTWAIT, (struct sockaddr *)&sa, sizeof sa);
}

/* ------------------------------------------------------------------ */
/* Bindings                                                            */
/* ------------------------------------------------------------------ */

/* Placeholder jump targets, patched by finish_filter. */
#define J_ACCEPT 0xfe
#define J_DROP 0xff

int ft_filter_prog(struct sock_filter *p, int ctl, int client, uint32_t srcIp, uint32_t port, int pkt) {
  int n = 0;
  if (pkt) {
    p[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9);               /* IP protocol */
    p[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_TCP, 0, J_DROP);
  }
  p[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 6);                 /* fragment offset */
  p[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, J_DROP, 0);
  p[n++] = (struct sock_filter)BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 0);                /* X = IP header length */
  if (srcIp) {
    p[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 12);
    p[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, srcIp, 0, J_DROP);
  }
  p[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_IND, client ? 0 : 2);    /* client: source port; server: destination */
  p[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, port, 0, J_DROP);
  p[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_IND, 13);                /* flags */
  p[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x07, ctl ? J_ACCEPT : J_DROP, 0); /* FIN, SYN, RST */
  p[n++] = (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TXA, 0);
  p[n++] = (struct sock_filter)BPF_STMT(BPF_ST, 0);                                   /* M[0] = IP header length */
  p[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_IND, 12);
  p[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 2);
  p[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x3c);             /* TCP header length */
  p[n++] = (struct sock_filter)BPF_STMT(BPF_LDX | BPF_MEM, 0);
  p[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_ADD | BPF_X, 0);
  p[n++] = (struct sock_filter)BPF_STMT(BPF_ST, 1);                                   /* M[1] = both headers */
  p[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 2);                 /* IP total length */
  p[n++] = (struct sock_filter)BPF_STMT(BPF_LDX | BPF_MEM, 1);
  p[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_SUB | BPF_X, 0);                /* payload length */
  p[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 0, ctl ? J_DROP : J_ACCEPT, ctl ? J_ACCEPT : J_DROP);
  int accept = n, drop = n + 1;
  p[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0x40000);
  p[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
  for (int i = 0; pkt && i < accept; i++) { /* a packet socket sees the link header first: load from the network header */
    uint16_t c = p[i].code;
    if ((BPF_CLASS(c) == BPF_LD && (BPF_MODE(c) == BPF_ABS || BPF_MODE(c) == BPF_IND)) || (BPF_CLASS(c) == BPF_LDX && BPF_MODE(c) == BPF_MSH)) p[i].k += (uint32_t)SKF_NET_OFF;
  }
  for (int i = 0; i < accept; i++) {
    if (BPF_CLASS(p[i].code) != BPF_JMP) continue;
    if (p[i].jt == J_ACCEPT) p[i].jt = (uint8_t)(accept - i - 1); else if (p[i].jt == J_DROP) p[i].jt = (uint8_t)(drop - i - 1);
    if (p[i].jf == J_ACCEPT) p[i].jf = (uint8_t)(accept - i - 1); else if (p[i].jf == J_DROP) p[i].jf = (uint8_t)(drop - i - 1);
  }
  return n;
}

static int open_raw(int ctl, int client, uint32_t srcIp, uint32_t port, int bufBytes, const char **what) {
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd < 0) { *what = "socket"; return -1; }
  int one = 1;
  struct sock_filter prog[32];
  struct sock_fprog fp = { .len = (unsigned short)ft_filter_prog(prog, ctl, client, srcIp, port, 0), .filter = prog };
  if (setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof one) < 0) { *what = "setsockopt(IP_HDRINCL)"; goto fail; }
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof fp) < 0) { *what = "setsockopt(SO_ATTACH_FILTER)"; goto fail; }
  /* Segments that arrived before the filter was attached may be queued: drain them. */
  char junk[64];
  while (recv(fd, junk, sizeof junk, MSG_DONTWAIT) >= 0) {}
  if (bufBytes > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufBytes, sizeof bufBytes);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufBytes, sizeof bufBytes);
  }
  return fd;
fail:;
  int e = errno;
  close(fd);
  errno = e;
  return -1;
}

/*
 * ftcpOpen(client, srcIp, port, bufBytes) -> { fd, ctlFd }
 * Server: segments to our TCP port `port`; client: segments from port `port` (and from srcIp unless 0).
 */
napi_value ftcp_open(napi_env env, napi_callback_info info) {
  static const char *fn = "ftcpOpen";
  int64_t srcIp, port, buf;
  bool client;
  if (PARSE_ARGS(env, info, fn, ARG_BOOL("client", &client), ARG_INT("srcIp", 0, UINT32_MAX, &srcIp), ARG_INT("port", 1, 65535, &port),
                 ARG_INT("bufBytes", 0, INT32_MAX, &buf))) return NULL;
  const char *what = "";
  int fd = open_raw(0, client, (uint32_t)srcIp, (uint32_t)port, (int)buf, &what);
  if (fd < 0) { throw_errno(env, errno, fn, what); return NULL; }
  int ctl = open_raw(1, client, (uint32_t)srcIp, (uint32_t)port, 0, &what);
  if (ctl < 0) { int e = errno; close(fd); throw_errno(env, e, fn, what); return NULL; }
  napi_value res;
  if (napi_create_object(env, &res) != napi_ok ||
      napi_set_named_property(env, res, "fd", make_int(env, fd)) != napi_ok ||
      napi_set_named_property(env, res, "ctlFd", make_int(env, ctl)) != napi_ok) {
    close(fd);
    close(ctl);
    throw_internal(env, fn);
    return NULL;
  }
  return res;
}

/*
 * ftcpFlowSet(handle, fd, rip, rport, lip, lport, seq, ack, tsRecent, up) -> handle, or -1 when the table is full.
 * handle 0: the flow of (rip, rport, lport), created when new; else that flow, re-keyed if its key changed.
 */
napi_value ftcp_flow_set(napi_env env, napi_callback_info info) {
  static const char *fn = "ftcpFlowSet";
  int fd;
  int64_t h, rip, rport, lip, lport, seq, ack, ts;
  bool up;
  if (PARSE_ARGS(env, info, fn, ARG_INT("handle", 0, UINT32_MAX, &h), ARG_FD(&fd), ARG_INT("rip", 0, UINT32_MAX, &rip),
                 ARG_INT("rport", 0, 65535, &rport), ARG_INT("lip", 0, UINT32_MAX, &lip), ARG_INT("lport", 0, 65535, &lport),
                 ARG_INT("seq", 0, UINT32_MAX, &seq), ARG_INT("ack", 0, UINT32_MAX, &ack), ARG_INT("tsRecent", 0, UINT32_MAX, &ts),
                 ARG_BOOL("up", &up))) return NULL;
  pthread_mutex_lock(&ft_mu);
  int32_t idx = -1;
  if (h != 0) {
    ft_flow *f = ft_by_handle((uint32_t)h);
    if (f) { idx = (int32_t)(f - ft_flows); hash_remove(idx); }
  }
  if (idx < 0) {
    idx = ft_lookup((uint32_t)rip, (uint16_t)rport, (uint16_t)lport);
    if (idx >= 0) hash_remove(idx);
  }
  if (idx < 0) {
    for (uint32_t k = 0; k < FT_MAX; k++) {
      uint32_t i = (gNext + k) % FT_MAX;
      if (!ft_flows[i].used) { idx = (int32_t)i; gNext = i + 1; break; }
    }
    if (idx < 0) { pthread_mutex_unlock(&ft_mu); return make_int(env, -1); }
    memset(&ft_flows[idx], 0, sizeof ft_flows[idx]);
    ft_flows[idx].ipId = (uint16_t)(seq ^ (seq >> 16));
  }
  ft_flow *f = &ft_flows[idx];
  if (f->rip != (uint32_t)rip || f->rport != (uint16_t)rport || f->lport != (uint16_t)lport) f->l2 = 0; /* a new next hop to learn */
  f->used = 1;
  f->up = up;
  f->fd = fd;
  f->pfd = ftp_pkt_of(fd);
  f->rip = (uint32_t)rip; f->rport = (uint16_t)rport;
  f->lip = (uint32_t)lip; f->lport = (uint16_t)lport;
  f->seq = (uint32_t)seq; f->ack = (uint32_t)ack; f->ackSent = (uint32_t)ack;
  f->tsRecent = (uint32_t)ts;
  hash_insert(idx);
  pthread_mutex_unlock(&ft_mu);
  return make_int(env, (int64_t)(FT_HANDLE_BASE | (uint32_t)idx));
}

/* ftcpFlowDrop(handle): frees the flow (sends to its handle fail with ENOTCONN from then on). */
napi_value ftcp_flow_drop(napi_env env, napi_callback_info info) {
  static const char *fn = "ftcpFlowDrop";
  int64_t h;
  if (PARSE_ARGS(env, info, fn, ARG_INT("handle", 0, UINT32_MAX, &h))) return NULL;
  pthread_mutex_lock(&ft_mu);
  ft_flow *f = ft_by_handle((uint32_t)h);
  if (f) { hash_remove((int32_t)(f - ft_flows)); f->used = 0; f->up = 0; }
  pthread_mutex_unlock(&ft_mu);
  return NULL;
}

/*
 * ftcpFlowInfo(handle, out Float64Array(8 or 9)) -> true when the flow exists.
 * out: up, seq, ack, rxPackets, rxBytes, txPackets, txBytes, ms since the last segment received (-1: none),
 * [8] 1 when its data leaves through the packet socket as superpackets (its next hop is known).
 */
napi_value ftcp_flow_info(napi_env env, napi_callback_info info) {
  static const char *fn = "ftcpFlowInfo";
  int64_t h;
  double *out;
  size_t outLen;
  if (PARSE_ARGS(env, info, fn, ARG_INT("handle", 0, UINT32_MAX, &h), ARG_TA_("out", napi_float64_array, double, &out, &outLen, 8, NULL))) return NULL;
  pthread_mutex_lock(&ft_mu);
  ft_flow *f = ft_by_handle((uint32_t)h);
  if (f && outLen > 8) out[8] = f->l2 && f->pfd >= 0;
  if (f) {
    out[0] = f->up; out[1] = f->seq; out[2] = f->ack;
    out[3] = f->rxPackets; out[4] = f->rxBytes; out[5] = f->txPackets; out[6] = f->txBytes;
    out[7] = f->lastRxMs ? (double)(ft_now_ms() - f->lastRxMs) : -1;
  }
  pthread_mutex_unlock(&ft_mu);
  napi_value res;
  napi_get_boolean(env, f != NULL, &res);
  return res;
}

/*
 * ftcpSendRaw(fd, srcIp, dstIp, segment) -> bytes sent, or -errno.
 * One TCP segment (header with options, maybe payload) built by TypeScript (wire/tcp-segment.ts):
 * its checksum is filled in here, the IPv4 header (DF, TTL 64, a fresh IP id) put in front.
 */
napi_value ftcp_send_raw(napi_env env, napi_callback_info info) {
  static const char *fn = "ftcpSendRaw";
  static uint32_t ipId; /* shared by threads: a race only repeats an id */
  int fd;
  int64_t src, dst;
  uint8_t *seg;
  size_t len;
  if (PARSE_ARGS(env, info, fn, ARG_FD(&fd), ARG_INT("srcIp", 0, UINT32_MAX, &src), ARG_INT("dstIp", 0, UINT32_MAX, &dst),
                 ARG_U8("segment", &seg, &len))) return NULL;
  uint8_t pkt[20 + 1480];
  if (len < 20 || len > sizeof pkt - 20) { throw_range(env, fn, "segment must be 20..1480 bytes"); return NULL; }
  if (ipId == 0) ipId = (uint32_t)ft_now_ms() * 2654435761u;
  memset(pkt, 0, 20);
  pkt[0] = 0x45;
  put16(pkt + 2, (uint16_t)(20 + len));
  put16(pkt + 4, (uint16_t)(ipId++ * 40503u));
  put16(pkt + 6, 0x4000);
  pkt[8] = 64; pkt[9] = IPPROTO_TCP;
  put32(pkt + 12, (uint32_t)src);
  put32(pkt + 16, (uint32_t)dst);
  memcpy(pkt + 20, seg, len);
  l4_fix_csum(pkt, pkt + 20, len, 16, 0);
  struct sockaddr_in sa;
  set_sockaddr(&sa, (uint32_t)dst, 0);
  ssize_t r;
  do r = sendto(fd, pkt, 20 + len, MSG_DONTWAIT, (struct sockaddr *)&sa, sizeof sa); while (r < 0 && errno == EINTR);
  return make_int(env, r < 0 ? -(int64_t)errno : (int64_t)r);
}

/* ftcpRecvCtl(ctlFd, buf) -> bytes of one IPv4 packet (a handshake or other non-data segment), 0 when none is queued. */
napi_value ftcp_recv_ctl(napi_env env, napi_callback_info info) {
  static const char *fn = "ftcpRecvCtl";
  int fd;
  uint8_t *buf;
  size_t len;
  if (PARSE_ARGS(env, info, fn, ARG_FD(&fd), ARG_U8("buf", &buf, &len))) return NULL;
  ssize_t r;
  do r = recv(fd, buf, len, MSG_DONTWAIT); while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return make_int(env, 0);
    throw_errno(env, errno, fn, "recv");
    return NULL;
  }
  return make_int(env, r);
}

/*
 * ftcpRecv(fd, mem, bufOffsets, nBufs, bufCap, offsets, lens, addrs, max, info) -> datagrams
 * The contract of udpRecvGro: one recvmmsg of up to nBufs segments, segment j into mem[bufOffsets[j]..];
 * each payload of a known flow becomes an entry (offsets, lens, addrs = { handle, the peer's port }).
 * info[0] = segments received (nBufs: call again), info[2] += malformed, info[3] += unknown flow.
 */
napi_value ftcp_recv(napi_env env, napi_callback_info info) {
  static const char *fn = "ftcpRecv";
  int fd;
  uint8_t *mem; int32_t *bufOffsets, *offsets, *lens, *gi; uint32_t *addrs;
  size_t memLen;
  int64_t nBufs, cap, max;
  if (PARSE_ARGS(env, info, fn, ARG_FD(&fd), ARG_U8("mem", &mem, &memLen), ARG_I32_N("bufOffsets", &bufOffsets, 1, &nBufs),
                 ARG_INT("nBufs", 0, FT_CHUNK, &nBufs), ARG_INT("bufCap", 1, INT32_MAX, &cap),
                 ARG_I32_N("offsets", &offsets, 1, &max), ARG_I32_N("lens", &lens, 1, &max), ARG_U32_N("addrs", &addrs, 2, &max),
                 ARG_INT("max", 0, INT32_MAX, &max), ARG_I32_W("info", &gi, 4)) ||
      check_slots(env, fn, memLen, bufOffsets, NULL, cap, nBufs)) return NULL;
  gi[FT_INFO_SEGS] = 0;
  if (nBufs == 0 || max == 0) return make_int(env, 0);
  if (ftp_is_pkt(fd)) { /* the link's packet socket: superpackets, split here (faketcp-packet.c) */
    if (bufOffsets[nBufs - 1] != bufOffsets[0] + (nBufs - 1) * cap) { throw_range(env, fn, "a packet socket needs contiguous slots"); return NULL; }
    int64_t r = ftp_recv(fd, mem + bufOffsets[0], (size_t)(nBufs * cap), bufOffsets[0], (int32_t)nBufs, offsets, lens, addrs, max, gi);
    if (r < 0) { throw_errno(env, (int)-r, fn, "recvmmsg"); return NULL; }
    return make_int(env, r);
  }
  if (!tFt) tFt = calloc(1, sizeof *tFt);
  ft_scratch *s = tFt;
  if (!s) { throw_errno(env, ENOMEM, fn, "malloc"); return NULL; }
  for (int64_t j = 0; j < nBufs; j++) {
    s->iov[j][0].iov_base = mem + bufOffsets[j];
    s->iov[j][0].iov_len = (size_t)cap;
    memset(&s->msgs[j], 0, sizeof s->msgs[j]);
    s->msgs[j].msg_hdr.msg_iov = s->iov[j];
    s->msgs[j].msg_hdr.msg_iovlen = 1;
  }
  int r;
  for (;;) {
    r = recvmmsg(fd, s->msgs, (unsigned)nBufs, MSG_DONTWAIT, NULL);
    if (r >= 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return make_int(env, 0);
    throw_errno(env, errno, fn, "recvmmsg");
    return NULL;
  }
  gi[FT_INFO_SEGS] = r;
  int64_t out = 0, t = ft_now_ms();
  int32_t acks[16];
  int nAcks = 0;
  pthread_mutex_lock(&ft_mu);
  for (int j = 0; j < r; j++) {
    uint8_t *p = mem + bufOffsets[j];
    size_t n = s->msgs[j].msg_len;
    size_t ihl, tot, doff;
    if ((s->msgs[j].msg_hdr.msg_flags & MSG_TRUNC) || ft_seg_lens(p, n, &ihl, &tot, &doff) < 0) { gi[FT_INFO_DROPPED]++; continue; }
    uint8_t *tcp = p + ihl;
    int32_t idx = ft_lookup(get32(p + 12), get16(tcp), get16(tcp + 2));
    if (idx < 0 || !ft_flows[idx].up) { gi[FT_INFO_UNKNOWN]++; continue; }
    ft_flow *f = &ft_flows[idx];
    uint32_t plen = (uint32_t)(tot - ihl - doff);
    ft_seg_took(f, tcp, doff, plen, 1, t);
    if (f->ack - f->ackSent > FT_ACK_EVERY && nAcks < 16) { acks[nAcks++] = idx; f->ackSent = f->ack; }
    if (out >= max) { gi[FT_INFO_DROPPED]++; continue; }
    offsets[out] = (int32_t)(bufOffsets[j] + (int32_t)(ihl + doff));
    lens[out] = (int32_t)plen;
    addrs[2 * out] = FT_HANDLE_BASE | (uint32_t)idx;
    addrs[2 * out + 1] = f->rport;
    out++;
  }
  pthread_mutex_unlock(&ft_mu);
  for (int k = 0; k < nAcks; k++) ft_send_pure_ack(acks[k]);
  return make_int(env, out);
}
