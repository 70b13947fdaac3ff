/*
 * faketcp-packet: fake TCP's superpacket path. A raw IPv4 socket moves one segment per skb through
 * the kernel (no GSO, no GRO), so a bulk stream cost ~30 times UDP's skbs per MB; this file moves
 * runs of segments as one skb each way, and what travels on the wire does not change (one sealed
 * message per TCP segment; PROTOCOL §14a).
 *
 * Owns: one AF_PACKET socket per link (SOCK_RAW: the kernel takes PACKET_VNET_HDR on no other
 * type; ETH_P_IP, PACKET_IGNORE_OUTGOING, PACKET_AUXDATA for the network header's offset, the data
 * socket's BPF filter loading from the network header plus an IP protocol check), paired with the
 * link's raw data socket (gLinks, whose own filter then drops everything: it only sends); the
 * offload counters.
 *
 * Out (ftp_run, ftp_send; called by faketcp.c's ftcp_divert under its flow lookup): consecutive
 * datagrams of a batch to one flow with the same length L (the last may be shorter) leave as ONE
 * packet: the first segment's IPv4+TCP header, built for the whole payload (seq advances by all of
 * it, the IP id by the segment count), then the payloads, with a virtio_net_hdr asking for TCPV4
 * segmentation at gso_size L and a partial checksum (the pseudo-header sum seeded in the TCP
 * checksum field; no software checksum). The kernel (or the NIC) cuts it into L-byte segments, each
 * with its own seq, IP id, checksums; veth and a forwarding router pass it whole. It leaves as an
 * Ethernet frame (the header built here) to the flow's next hop: the device, source and destination
 * MAC of the frames the flow last received (learned in ftp_recv, Ethernet devices only, and only
 * from frames addressed to the flow's own local address, so a NAT on this host keeps the raw path).
 * Until that is known the raw socket sends (faketcp.c), one segment per datagram.
 *
 * In (ftp_recv; ftcpRecv on the packet socket): frames are tapped before IP (an nftables rule at
 * prerouting priority raw drops the flows' data segments right after, faketcp-nft.ts, so the
 * kernel's TCP never sees them: no conntrack entry, no RST); a GSO/GRO skb arrives whole with its
 * gso_size in the vnet header and its payload is split into gso_size datagrams, each one message.
 * The flow's ack advances by the whole payload.
 */
#include "faketcp.h"
#include "faketcp-int.h"
#include "offload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define FTP_BUF (65536 + 256) /* a receive buffer: the largest IPv4 packet and its link header */
#define FTP_BUFS 16           /* packets per recvmmsg (the caller's memory allows at most this many buffers) */
#define FTP_LINKS 16
#define ETH_HLEN_ 14

static struct { int raw, pkt; } gLinks[FTP_LINKS]; /* under ft_mu; raw 0 with pkt 0: free */
static int gNLinks;

/* Counters (relaxed atomics): superpackets and their segments each way, sends that failed. */
static uint64_t gTxSuper, gTxSegs, gTxFailed, gRxSuper, gRxSegs;
#define CNT(x, v) __atomic_fetch_add(&(x), (v), __ATOMIC_RELAXED)

int ftp_pkt_of(int fd) {
  for (int i = 0; i < gNLinks; i++) if (gLinks[i].raw == fd || gLinks[i].pkt == fd) return gLinks[i].pkt;
  return -1;
}

int ftp_is_pkt(int fd) {
  pthread_mutex_lock(&ft_mu);
  int r = 0;
  for (int i = 0; i < gNLinks && !r; i++) r = gLinks[i].pkt == fd;
  pthread_mutex_unlock(&ft_mu);
  return r;
}

size_t ftp_run(const uint32_t *addrs, const int32_t *lens, size_t i, size_t n, size_t maxLen, size_t maxSegs) {
  size_t L = (size_t)lens[i], total = L, k = 1;
  if (L == 0) return 1;
  while (i + k < n && k < maxSegs && addrs[2 * (i + k)] == addrs[2 * i] && addrs[2 * (i + k) + 1] == addrs[2 * i + 1]) {
    size_t l = (size_t)lens[i + k];
    if (l == 0 || l > L || total + l > maxLen) break;
    total += l;
    k++;
    if (l < L) break; /* a shorter one ends the run: segmentation cuts every segment but the last at L */
  }
  return k;
}

static inline void put16le(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline uint16_t get16le(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

int ftp_send(int pfd, int ifindex, const uint8_t mac[12], uint8_t *hdr, uint8_t *mem, const int32_t *offs, const int32_t *lens, size_t k, size_t plen) {
  uint8_t vnet[VNET_HDR_LEN], eth[ETH_HLEN_];
  vnet[0] = VNET_F_NEEDS_CSUM;
  vnet[1] = k > 1 ? VNET_GSO_TCPV4 : VNET_GSO_NONE;
  put16le(vnet + 2, ETH_HLEN_ + FT_HDR);              /* hdr_len */
  put16le(vnet + 4, k > 1 ? (uint16_t)lens[0] : 0);   /* gso_size */
  put16le(vnet + 6, ETH_HLEN_ + 20);                  /* csum_start: from the frame's start */
  put16le(vnet + 8, 16);                              /* csum_offset: the TCP checksum */
  memcpy(eth, mac, 12);                               /* destination (the next hop), source (our device) */
  put16(eth + 12, ETH_P_IP);
  ipv4_fix_csum(hdr, 20);                             /* segmentation redoes it per segment */
  uint64_t sum = csum_add(0, hdr + 12, 8) + IPPROTO_TCP + FT_HDR - 20 + plen;
  put16(hdr + 36, (uint16_t)~csum_fold(sum));         /* the pseudo-header sum: the rest is the kernel's */
  struct iovec iov[FTP_MAX_SEGS + 3];
  iov[0].iov_base = vnet;
  iov[0].iov_len = sizeof vnet;
  iov[1].iov_base = eth;
  iov[1].iov_len = sizeof eth;
  iov[2].iov_base = hdr;
  iov[2].iov_len = FT_HDR;
  for (size_t j = 0; j < k; j++) {
    iov[j + 3].iov_base = mem + offs[j];
    iov[j + 3].iov_len = (size_t)lens[j];
  }
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_IP);
  sll.sll_ifindex = ifindex;
  sll.sll_halen = 6;
  memcpy(sll.sll_addr, mac, 6);
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_name = &sll;
  m.msg_namelen = sizeof sll;
  m.msg_iov = iov;
  m.msg_iovlen = k + 3;
  ssize_t r;
  do r = sendmsg(pfd, &m, MSG_DONTWAIT); while (r < 0 && errno == EINTR);
  if (r < 0) { int e = errno; CNT(gTxFailed, 1); errno = e; return 0; }
  if (k > 1) CNT(gTxSuper, 1);
  CNT(gTxSegs, k);
  return 1;
}

typedef struct {
  uint8_t vnet[FTP_BUFS][VNET_HDR_LEN];
  struct iovec iov[FTP_BUFS][2];
  struct mmsghdr msgs[FTP_BUFS];
  struct sockaddr_ll sll[FTP_BUFS];
  union { struct cmsghdr h; uint8_t b[CMSG_SPACE(sizeof(struct tpacket_auxdata))]; } aux[FTP_BUFS];
} ftp_scratch;

/* The network header's offset in a received frame (PACKET_AUXDATA), or -1. */
static long net_offset(struct msghdr *h) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
    if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA || c->cmsg_len < CMSG_LEN(sizeof(struct tpacket_auxdata))) continue;
    struct tpacket_auxdata a;
    memcpy(&a, CMSG_DATA(c), sizeof a);
    return a.tp_net;
  }
  return -1;
}

static __thread ftp_scratch *tFtp;

int64_t ftp_recv(int fd, uint8_t *mem, size_t total, int32_t base, int32_t nBufs, int32_t *offsets, int32_t *lens, uint32_t *addrs, int64_t max, int32_t *gi) {
  if (!tFtp) tFtp = calloc(1, sizeof *tFtp);
  ftp_scratch *s = tFtp;
  if (!s) return -ENOMEM;
  size_t cap = total < FTP_BUF ? total : FTP_BUF;
  unsigned nb = (unsigned)(total / cap);
  if (nb > FTP_BUFS) nb = FTP_BUFS;
  for (unsigned j = 0; j < nb; j++) {
    s->iov[j][0].iov_base = s->vnet[j];
    s->iov[j][0].iov_len = VNET_HDR_LEN;
    s->iov[j][1].iov_base = mem + j * cap;
    s->iov[j][1].iov_len = cap;
    memset(&s->msgs[j], 0, sizeof s->msgs[j]);
    s->msgs[j].msg_hdr.msg_iov = s->iov[j];
    s->msgs[j].msg_hdr.msg_iovlen = 2;
    s->msgs[j].msg_hdr.msg_name = &s->sll[j];
    s->msgs[j].msg_hdr.msg_namelen = sizeof s->sll[j];
    s->msgs[j].msg_hdr.msg_control = s->aux[j].b;
    s->msgs[j].msg_hdr.msg_controllen = sizeof s->aux[j].b;
  }
  int r;
  for (;;) {
    r = recvmmsg(fd, s->msgs, nb, MSG_DONTWAIT, NULL);
    if (r >= 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -errno;
  }
  gi[FT_INFO_SEGS] = (unsigned)r == nb ? nBufs : r; /* the caller calls again while the call filled every buffer */
  int64_t out = 0, t = ft_now_ms();
  int32_t acks[16];
  int nAcks = 0;
  pthread_mutex_lock(&ft_mu);
  for (int j = 0; j < r; j++) {
    const struct sockaddr_ll *sll = &s->sll[j];
    if (sll->sll_pkttype == PACKET_OTHERHOST) continue; /* not for this host: IP drops it too */
    uint8_t *frame = mem + (size_t)j * cap;
    long nh = net_offset(&s->msgs[j].msg_hdr);
    size_t n = s->msgs[j].msg_len >= VNET_HDR_LEN ? s->msgs[j].msg_len - VNET_HDR_LEN : 0;
    if (nh < 0 || (size_t)nh > n) { gi[FT_INFO_DROPPED]++; continue; }
    uint8_t *p = frame + nh;
    n -= (size_t)nh;
    size_t ihl, tot, doff;
    if ((s->msgs[j].msg_hdr.msg_flags & MSG_TRUNC) || ft_seg_lens(p, n, &ihl, &tot, &doff) < 0) { gi[FT_INFO_DROPPED]++; continue; }
    uint8_t *tcp = p + ihl;
    int32_t idx = ft_lookup(get32(p + 12), get16(tcp), get16(tcp + 2));
    if (idx < 0 || !ft_flows[idx].up) { gi[FT_INFO_UNKNOWN]++; continue; }
    ft_flow *f = &ft_flows[idx];
    uint32_t plen = (uint32_t)(tot - ihl - doff);
    uint32_t gso = s->vnet[j][1] != VNET_GSO_NONE ? get16le(s->vnet[j] + 4) : 0;
    if (gso == 0 || gso > plen) gso = plen;
    uint32_t segs = (plen + gso - 1) / gso;
    if (segs > 1) { CNT(gRxSuper, 1); CNT(gRxSegs, segs); }
    ft_seg_took(f, tcp, doff, plen, segs, t);
    if (sll->sll_hatype == ARPHRD_ETHER && nh == ETH_HLEN_ && sll->sll_pkttype == PACKET_HOST && get32(p + 16) == f->lip &&
        (!f->l2 || f->ifindex != sll->sll_ifindex || memcmp(f->mac, frame + 6, 6) != 0 || memcmp(f->smac, frame, 6) != 0)) {
      f->ifindex = sll->sll_ifindex; /* the frame's source is our next hop towards the peer, its destination our device */
      memcpy(f->mac, frame + 6, 6);
      memcpy(f->smac, frame, 6);
      f->l2 = 1;
    }
    if (f->ack - f->ackSent > FT_ACK_EVERY && nAcks < 16) { acks[nAcks++] = idx; f->ackSent = f->ack; }
    int32_t at = base + (int32_t)((size_t)j * cap + (size_t)nh + ihl + doff);
    for (uint32_t o = 0; o < plen; o += gso) {
      if (out >= max) { gi[FT_INFO_DROPPED]++; continue; }
      offsets[out] = at + (int32_t)o;
      lens[out] = (int32_t)(plen - o < gso ? plen - o : gso);
      addrs[2 * out] = FT_HANDLE_BASE | (uint32_t)idx;
      addrs[2 * out + 1] = f->rport;
      out++;
    }
  }
  pthread_mutex_unlock(&ft_mu);
  for (int k = 0; k < nAcks; k++) ft_send_pure_ack(acks[k]);
  return out;
}

/* ------------------------------------------------------------------ */
/* Bindings                                                            */
/* ------------------------------------------------------------------ */

/*
 * ftcpOpenPacket(client, srcIp, port, bufBytes, rawFd) -> the packet socket's fd
 * Pairs it with the link's raw data socket rawFd (ftcpOpen's fd): flows set on either send their
 * superpackets through it, and ftcpRecv on it splits what it receives. rawFd's own filter then drops
 * everything (it only sends). Throws (errno) when the kernel refuses the socket or an option.
 */
napi_value ftcp_open_packet(napi_env env, napi_callback_info info) {
  static const char *fn = "ftcpOpenPacket";
  int64_t srcIp, port, buf, raw;
  bool client;
  if (PARSE_ARGS(env, info, fn, ARG_BOOL("client", &client), ARG_INT("srcIp", 0, UINT32_MAX, &srcIp), ARG_INT("port", 1, 65535, &port),
                 ARG_INT("bufBytes", 0, INT32_MAX, &buf), ARG_INT("rawFd", 0, INT32_MAX, &raw))) return NULL;
  const char *what = "socket";
  int one = 1, fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); /* protocol 0: nothing arrives before bind */
  if (fd < 0) goto fail;
  struct sock_filter prog[40];
  struct sock_fprog fp = { .len = (unsigned short)ft_filter_prog(prog, 0, client, (uint32_t)srcIp, (uint32_t)port, 1), .filter = prog };
  what = "setsockopt(PACKET_VNET_HDR)";
  if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) < 0) goto fail;
  what = "setsockopt(PACKET_IGNORE_OUTGOING)";
  if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0) goto fail;
  what = "setsockopt(PACKET_AUXDATA)";
  if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) < 0) goto fail;
  what = "setsockopt(SO_ATTACH_FILTER)";
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof fp) < 0) goto fail;
  if (buf > 0) {
    int b = (int)buf;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &b, sizeof b);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &b, sizeof b);
  }
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_IP);
  what = "bind";
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) goto fail;
  pthread_mutex_lock(&ft_mu);
  int slot = -1;
  for (int i = 0; i < gNLinks && slot < 0; i++) if (gLinks[i].raw == (int)raw || gLinks[i].pkt == (int)raw || gLinks[i].pkt == fd) slot = i;
  if (slot < 0 && gNLinks < FTP_LINKS) slot = gNLinks++;
  if (slot >= 0) { gLinks[slot].raw = (int)raw; gLinks[slot].pkt = fd; }
  pthread_mutex_unlock(&ft_mu);
  what = "links";
  errno = EMFILE;
  if (slot < 0) goto fail;
  struct sock_filter none = BPF_STMT(BPF_RET | BPF_K, 0);
  struct sock_fprog drop = { .len = 1, .filter = &none };
  setsockopt((int)raw, SOL_SOCKET, SO_ATTACH_FILTER, &drop, sizeof drop);
  return make_int(env, fd);
fail:;
  int e = errno;
  if (fd >= 0) close(fd);
  throw_errno(env, e, fn, what);
  return NULL;
}

/* ftcpUnpair(fd): forgets the pairing of a link's sockets (either fd), before the link closes them. */
napi_value ftcp_unpair(napi_env env, napi_callback_info info) {
  static const char *fn = "ftcpUnpair";
  int64_t fd;
  if (PARSE_ARGS(env, info, fn, ARG_INT("fd", 0, INT32_MAX, &fd))) return NULL;
  pthread_mutex_lock(&ft_mu);
  for (int i = 0; i < gNLinks; i++) {
    if (gLinks[i].raw != (int)fd && gLinks[i].pkt != (int)fd) continue;
    for (uint32_t k = 0; k < FT_MAX; k++) if (ft_flows[k].pfd == gLinks[i].pkt) { ft_flows[k].pfd = -1; ft_flows[k].l2 = 0; }
    gLinks[i] = gLinks[--gNLinks];
    break;
  }
  pthread_mutex_unlock(&ft_mu);
  return NULL;
}

/*
 * ftcpOffloadStats(out Float64Array(6)): superpackets sent, segments sent through packet sockets (in
 * superpackets or alone), packet-socket sends that failed, superpackets received, their segments,
 * flows whose data leaves through a packet socket now.
 */
napi_value ftcp_offload_stats(napi_env env, napi_callback_info info) {
  static const char *fn = "ftcpOffloadStats";
  double *out;
  if (PARSE_ARGS(env, info, fn, ARG_TA_("out", napi_float64_array, double, &out, NULL, 6, NULL))) return NULL;
  out[0] = (double)__atomic_load_n(&gTxSuper, __ATOMIC_RELAXED);
  out[1] = (double)__atomic_load_n(&gTxSegs, __ATOMIC_RELAXED);
  out[2] = (double)__atomic_load_n(&gTxFailed, __ATOMIC_RELAXED);
  out[3] = (double)__atomic_load_n(&gRxSuper, __ATOMIC_RELAXED);
  out[4] = (double)__atomic_load_n(&gRxSegs, __ATOMIC_RELAXED);
  int flows = 0;
  pthread_mutex_lock(&ft_mu);
  for (uint32_t k = 0; k < FT_MAX; k++) flows += ft_flows[k].used && ft_flows[k].l2 && ft_flows[k].pfd >= 0;
  pthread_mutex_unlock(&ft_mu);
  out[5] = flows;
  return NULL;
}
