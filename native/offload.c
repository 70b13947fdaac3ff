/*
 * offload: the TSO/USO split of superpackets read from TUN and the TCP/UDP
 * coalescing (GRO) of packets written to TUN, as byte work on caller-owned
 * memory: no syscall, no N-API (contracts in offload.h; the reads and
 * writes around them are tun.c's, the test-only entry points testing.c's).
 *
 * Split (read side): vnet_split turns one superpacket from sbuf into
 * MSS-sized packets in the caller's slots, each with its own IPv4 length, id
 * and checksum and TCP sequence number / UDP length and full L4 checksum; it
 * resumes from state[SPLIT_NEXT] when the slots run out.
 *
 * Coalescing (write side): gro_plan groups a run of packets, gro_prepare
 * rewrites the run's first packet into a superpacket head (vnet header in
 * the 10 bytes before it) and points iovecs at the other packets' payloads,
 * so one writev carries the run without a copy.
 */
#include "offload.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* Split (TUN read): TSO/USO superpackets into packets                 */
/* ------------------------------------------------------------------ */

int64_t vnet_split(const uint8_t *sbuf, int64_t total, uint8_t *mem, const int32_t *offsets, int32_t *lens,
                   int64_t max, int64_t cap, int32_t *state) {
  const uint8_t *h = sbuf;
  const uint8_t *pkt = sbuf + VNET_HDR_LEN;
  int64_t plen = total - VNET_HDR_LEN;
  uint8_t flags = h[0], gsoType = h[1] & (uint8_t)~VNET_GSO_ECN;
  uint16_t gsoSize = (uint16_t)(h[4] | (h[5] << 8)); /* virtio fields are little-endian */
  /* Neither IPv4 nor IPv6: a plain packet is passed on as is, for the pipeline to count as dropNotIp. */
  int v4 = plen >= 20 && (pkt[0] >> 4) == 4;
  int v6 = plen >= 40 && (pkt[0] >> 4) == 6;
  if (!v4 && (gsoType != VNET_GSO_NONE || plen < 1)) goto drop;
  size_t ihl = v4 ? (size_t)(pkt[0] & 15) * 4 : 0;
  if (v4 && (ihl < 20 || (int64_t)ihl > plen)) goto drop;

  if (gsoType == VNET_GSO_NONE) {
    if (max < 1) return 0;
    if (plen > cap) goto drop;
    uint8_t *out = mem + offsets[0];
    memcpy(out, pkt, (size_t)plen);
    if ((v4 || v6) && (flags & VNET_F_NEEDS_CSUM) && !vnet_complete_csum(h, out, plen)) goto drop;
    lens[0] = (int32_t)plen;
    state[SPLIT_PENDING] = 0;
    state[SPLIT_NEXT] = 0;
    return 1;
  }

  int udp;
  size_t l4hdr;
  if (gsoType == VNET_GSO_TCPV4 && pkt[9] == IPPROTO_TCP) {
    if ((int64_t)ihl + 20 > plen) goto drop;
    l4hdr = (size_t)(pkt[ihl + 12] >> 4) * 4;
    if (l4hdr < 20) goto drop;
    udp = 0;
  } else if (gsoType == VNET_GSO_UDP_L4 && pkt[9] == IPPROTO_UDP) {
    l4hdr = 8;
    udp = 1;
  } else goto drop;
  size_t hlen = ihl + l4hdr;
  if ((int64_t)hlen > plen || gsoSize == 0 || (int64_t)(hlen + gsoSize) > cap) goto drop;
  if ((get16(pkt + 6) & 0x3fff) != 0) goto drop; /* a fragment cannot be a superpacket */
  int64_t payload = plen - (int64_t)hlen;
  int64_t nseg = payload == 0 ? 1 : (payload + gsoSize - 1) / gsoSize;
  int64_t k = state[SPLIT_NEXT], n = 0;
  uint16_t id = get16(pkt + 4);
  uint32_t seq = udp ? 0 : get32(pkt + ihl + 4);
  uint8_t tcpFlags = udp ? 0 : pkt[ihl + 13];
  while (k < nseg && n < max) {
    int64_t off = k * gsoSize;
    int64_t seg = payload - off < gsoSize ? payload - off : gsoSize;
    uint8_t *out = mem + offsets[n];
    memcpy(out, pkt, hlen);
    memcpy(out + hlen, pkt + hlen + off, (size_t)seg);
    size_t len = hlen + (size_t)seg;
    put16(out + 2, (uint16_t)len);
    put16(out + 4, (uint16_t)(id + k));
    ipv4_fix_csum(out, ihl);
    uint8_t *l4 = out + ihl;
    if (udp) {
      put16(l4 + 4, (uint16_t)(8 + seg));
      l4_fix_csum(out, l4, 8 + (size_t)seg, 6, 1);
    } else {
      put32(l4 + 4, seq + (uint32_t)off);
      uint8_t f = tcpFlags;
      if (k != nseg - 1) f &= (uint8_t)~(0x01 | 0x08); /* FIN, PSH: last segment only */
      if (k != 0) f &= (uint8_t)~0x80;                 /* CWR: first segment only */
      l4[13] = f;
      l4_fix_csum(out, l4, l4hdr + (size_t)seg, 16, 0);
    }
    lens[n] = (int32_t)len;
    n++;
    k++;
  }
  if (k >= nseg) { state[SPLIT_PENDING] = 0; state[SPLIT_NEXT] = 0; }
  else state[SPLIT_NEXT] = (int32_t)k;
  return n;

drop:
  state[SPLIT_DROPPED]++;
  state[SPLIT_PENDING] = 0;
  state[SPLIT_NEXT] = 0;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Coalescing (TUN write): TCP and UDP runs into superpackets          */
/* ------------------------------------------------------------------ */

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10

/* The TCP payload length of an IPv4 packet that may be coalesced (ihl 20, TCP, not a fragment, only ACK[|PSH]), else -1. */
static int gro_tcp_payload(const uint8_t *p, int32_t len) {
  if (len < 40 || p[0] != 0x45 || p[9] != IPPROTO_TCP) return -1;
  if ((int32_t)get16(p + 2) != len || (get16(p + 6) & 0x3fff) != 0) return -1;
  int thl = (p[32] >> 4) * 4;
  if (thl < 20 || 20 + thl > len) return -1;
  uint8_t f = p[33];
  if ((f & (uint8_t)~(TCP_ACK | TCP_PSH)) != 0 || !(f & TCP_ACK)) return -1;
  return len - 20 - thl;
}

/* Can packet q (payload ql) follow the group led by p (payload size seg) whose payload so far is `have` bytes? */
static int gro_can_append(const uint8_t *p, int seg, int64_t have, const uint8_t *q, int ql) {
  if (ql <= 0 || ql > seg) return 0;
  if (p[1] != q[1] || p[8] != q[8] || (p[6] & 0x40) != (q[6] & 0x40)) return 0;    /* TOS, TTL, DF */
  if (memcmp(p + 12, q + 12, 8) != 0 || memcmp(p + 20, q + 20, 4) != 0) return 0;  /* addresses, ports */
  int thl = (p[32] >> 4) * 4;
  if ((q[32] >> 4) * 4 != thl) return 0;
  if (memcmp(p + 28, q + 28, 4) != 0) return 0;                                    /* ACK number */
  if (thl > 20 && memcmp(p + 40, q + 40, (size_t)thl - 20) != 0) return 0;          /* options (timestamps) */
  if (get32(q + 24) != get32(p + 24) + (uint32_t)have) return 0;                   /* in sequence */
  return 1;
}

/* The UDP payload length of an IPv4 datagram that may be coalesced (ihl 20, UDP, DF, not a fragment, lengths consistent), else -1. */
static int gro_udp_payload(const uint8_t *p, int32_t len) {
  if (len <= 28 || p[0] != 0x45 || p[9] != IPPROTO_UDP) return -1;
  if ((int32_t)get16(p + 2) != len || (get16(p + 6) & 0x3fff) != 0 || !(p[6] & 0x40)) return -1;
  if ((int32_t)get16(p + 24) != len - 20) return -1;
  return len - 28;
}

/* Header bytes (IPv4 + TCP/UDP) of a packet gro_plan may coalesce. */
static int gro_hlen(const uint8_t *p) {
  return p[9] == IPPROTO_UDP ? 28 : 20 + (p[32] >> 4) * 4;
}

/*
 * UDP: a group is consecutive datagrams of one flow (addresses, ports, TOS,
 * TTL) with equal payloads, the last may be shorter. Written as one USO
 * superpacket, the kernel hands the receiving socket the same datagrams (or
 * the whole batch at once to a socket with UDP_GRO). Only DF datagrams: the
 * kernel renumbers the IP IDs of the segments, which RFC 6864 allows for
 * atomic datagrams only.
 */
static int64_t gro_plan_udp(const uint8_t *mem, const int32_t *offsets, const int32_t *lens, int64_t n, int64_t i, int seg) {
  const uint8_t *p = mem + offsets[i];
  int64_t total = lens[i], k = i + 1;
  while (k < n && k - i < GRO_MAX_SEGS) {
    const uint8_t *q = mem + offsets[k];
    int ql = gro_udp_payload(q, lens[k]);
    if (ql <= 0 || ql > seg || total + ql > GRO_MAX_LEN) break;
    if (p[1] != q[1] || p[8] != q[8] || memcmp(p + 12, q + 12, 12) != 0) break; /* TOS, TTL, addresses, ports */
    total += ql;
    k++;
    if (ql < seg) break;
  }
  return k - i;
}

/* The group starting at packet i (offload.h): UDP by gro_plan_udp, else TCP segments that gro_can_append. */
int64_t gro_plan(const uint8_t *mem, const int32_t *offsets, const int32_t *lens, int64_t n, int64_t i) {
  const uint8_t *p = mem + offsets[i];
  int useg = gro_udp_payload(p, lens[i]);
  if (useg > 0) return gro_plan_udp(mem, offsets, lens, n, i, useg);
  int seg = gro_tcp_payload(p, lens[i]);
  if (seg <= 0 || (p[33] & TCP_PSH)) return 1;
  int64_t have = seg, total = lens[i], k = i + 1;
  while (k < n && k - i < GRO_MAX_SEGS) {
    const uint8_t *q = mem + offsets[k];
    int ql = gro_tcp_payload(q, lens[k]);
    if (ql < 0 || total + ql > GRO_MAX_LEN || !gro_can_append(p, seg, have, q, ql)) break;
    have += ql;
    total += ql;
    k++;
    if (ql < seg || (q[33] & TCP_PSH)) break;
  }
  return k - i;
}

/* The virtio_net_hdr of a superpacket, in the 10 bytes before its head p: NEEDS_CSUM from the L4 header, GSO type and size. */
static void gro_vnet(uint8_t *p, uint8_t type, uint16_t hl, int seg, uint16_t co) {
  uint8_t *h = p - VNET_HDR_LEN;
  uint16_t cs = 20;
  memset(h, 0, VNET_HDR_LEN);
  h[0] = VNET_F_NEEDS_CSUM;
  h[1] = type;
  h[2] = (uint8_t)hl; h[3] = (uint8_t)(hl >> 8);
  h[4] = (uint8_t)seg; h[5] = (uint8_t)(seg >> 8);
  h[6] = (uint8_t)cs; h[7] = (uint8_t)(cs >> 8);
  h[8] = (uint8_t)co; h[9] = (uint8_t)(co >> 8);
}

/* The UDP twin of gro_make_head: UDP length and pseudo-header checksum for `total` bytes, vnet header GSO_UDP_L4. */
static void gro_make_head_udp(uint8_t *p, int64_t total, int seg) {
  put16(p + 2, (uint16_t)total);
  ipv4_fix_csum(p, 20);
  put16(p + 24, (uint16_t)(total - 20));
  uint64_t ps = csum_add(0, p + 12, 8) + IPPROTO_UDP + (uint64_t)(total - 20);
  while (ps >> 16) ps = (ps & 0xffff) + (ps >> 16);
  put16(p + 26, (uint16_t)ps);
  gro_vnet(p, VNET_GSO_UDP_L4, 28, seg, 6);
}

/*
 * Turns the group's first packet into the head of a superpacket of `total`
 * bytes: IPv4 total length and checksum, TCP checksum = pseudo-header sum
 * (NEEDS_CSUM: the kernel treats the payload as verified), PSH taken from
 * the last segment, and the virtio_net_hdr in the 10 bytes before it.
 */
static void gro_make_head(uint8_t *p, const uint8_t *last, int64_t total, int seg) {
  if (p[9] == IPPROTO_UDP) { gro_make_head_udp(p, total, seg); return; }
  int thl = (p[32] >> 4) * 4;
  put16(p + 2, (uint16_t)total);
  ipv4_fix_csum(p, 20);
  p[33] |= (uint8_t)(last[33] & TCP_PSH);
  uint64_t ps = csum_add(0, p + 12, 8) + IPPROTO_TCP + (uint64_t)(total - 20);
  while (ps >> 16) ps = (ps & 0xffff) + (ps >> 16);
  put16(p + 36, (uint16_t)ps);
  gro_vnet(p, VNET_GSO_TCPV4, (uint16_t)(20 + thl), seg, 16);
}

/* Builds the iovecs of group [i, i+cnt) in iov (cnt entries); the head must already be made. */
static void gro_iov(struct iovec *iov, uint8_t *mem, const int32_t *offsets, const int32_t *lens, int64_t i, int64_t cnt) {
  uint8_t *p = mem + offsets[i];
  int hl = gro_hlen(p);
  iov[0].iov_base = p - VNET_HDR_LEN;
  iov[0].iov_len = (size_t)lens[i] + VNET_HDR_LEN;
  for (int64_t k = 1; k < cnt; k++) {
    iov[k].iov_base = mem + offsets[i + k] + hl;
    iov[k].iov_len = (size_t)(lens[i + k] - hl);
  }
}

/* Makes the head of group [i, i+cnt) and its iovecs: one superpacket, ready for writev. */
void gro_prepare(struct iovec *iov, uint8_t *mem, const int32_t *offsets, const int32_t *lens, int64_t i, int64_t cnt) {
  uint8_t *p = mem + offsets[i];
  int hl = gro_hlen(p);
  int64_t total = lens[i];
  for (int64_t k = 1; k < cnt; k++) total += lens[i + k] - hl;
  gro_make_head(p, mem + offsets[i + cnt - 1], total, lens[i] - hl);
  gro_iov(iov, mem, offsets, lens, i, cnt);
}
