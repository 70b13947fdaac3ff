/*
 * offload: the TSO/USO split of superpackets read from TUN and the TCP/UDP
 * coalescing (GRO) of packets written to TUN, as byte work on caller-owned
 * memory: no syscall, no N-API (contracts in offload.h; the reads and
 * writes around them are tun.c's, the test-only entry points testing.c's).
 *
 * Split (read side): vnet_split turns one superpacket from sbuf (TSO over
 * IPv4 or IPv6, USO over either) into MSS-sized packets in the caller's
 * slots, each with its own IP length (IPv4: also id and header checksum),
 * TCP sequence number / UDP length and full L4 checksum; it resumes from
 * state[SPLIT_NEXT] when the slots run out. IPv6 superpackets with
 * extension headers are dropped and counted, never guessed at.
 *
 * Coalescing (write side), both families alike (IPv6 only without
 * extension headers): gro_plan groups a run of packets, gro_prepare
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
  if (!v4 && !v6 && (gsoType != VNET_GSO_NONE || plen < 1)) goto drop;
  /* IPv6: the fixed 40-byte header; a superpacket must have TCP or UDP right behind it (see below). */
  size_t ihl = v4 ? (size_t)(pkt[0] & 15) * 4 : v6 ? 40 : 0;
  if (v4 && (ihl < 20 || (int64_t)ihl > plen)) goto drop;

  if (gsoType == VNET_GSO_NONE) {
    if (max < 1) return 0;
    if (plen > cap) goto drop;
    uint8_t *out = mem + offsets[0];
    memcpy(out, pkt, (size_t)plen);
    /* csum_start comes from the kernel, so IPv6 extension headers in front of the L4 header are fine here. */
    if ((v4 || v6) && (flags & VNET_F_NEEDS_CSUM) && !vnet_complete_csum(h, out, plen)) goto drop;
    lens[0] = (int32_t)plen;
    state[SPLIT_PENDING] = 0;
    state[SPLIT_NEXT] = 0;
    return 1;
  }

  /*
   * IPv6 next header must be TCP or UDP itself: a superpacket with extension
   * headers (hop-by-hop, routing, destination options; a fragment header
   * cannot come with GSO) is dropped and counted rather than mis-split.
   */
  uint8_t proto = v4 ? pkt[9] : pkt[6];
  int udp;
  size_t l4hdr;
  if (((gsoType == VNET_GSO_TCPV4 && v4) || (gsoType == VNET_GSO_TCPV6 && v6)) && proto == IPPROTO_TCP) {
    if ((int64_t)ihl + 20 > plen) goto drop;
    l4hdr = (size_t)(pkt[ihl + 12] >> 4) * 4;
    if (l4hdr < 20) goto drop;
    udp = 0;
  } else if (gsoType == VNET_GSO_UDP_L4 && proto == IPPROTO_UDP) {
    l4hdr = 8;
    udp = 1;
  } else goto drop;
  size_t hlen = ihl + l4hdr;
  if ((int64_t)hlen > plen || gsoSize == 0 || (int64_t)(hlen + gsoSize) > cap) goto drop;
  if (v4 && (get16(pkt + 6) & 0x3fff) != 0) goto drop; /* a fragment cannot be a superpacket */
  int64_t payload = plen - (int64_t)hlen;
  int64_t nseg = payload == 0 ? 1 : (payload + gsoSize - 1) / gsoSize;
  int64_t k = state[SPLIT_NEXT], n = 0;
  uint16_t id = v4 ? get16(pkt + 4) : 0;
  uint32_t seq = udp ? 0 : get32(pkt + ihl + 4);
  uint8_t tcpFlags = udp ? 0 : pkt[ihl + 13];
  while (k < nseg && n < max) {
    int64_t off = k * gsoSize;
    int64_t seg = payload - off < gsoSize ? payload - off : gsoSize;
    uint8_t *out = mem + offsets[n];
    memcpy(out, pkt, hlen);
    memcpy(out + hlen, pkt + hlen + off, (size_t)seg);
    size_t len = hlen + (size_t)seg;
    if (v4) {
      put16(out + 2, (uint16_t)len);
      put16(out + 4, (uint16_t)(id + k));
      ipv4_fix_csum(out, ihl);
    } else {
      put16(out + 4, (uint16_t)(len - 40)); /* payload length; IPv6 has no header checksum and no id */
    }
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

/*
 * The IP header length of a packet the coalescing may take: 20 for IPv4
 * without options (0x45), 40 for IPv6 whose next header is TCP or UDP
 * itself (no extension headers), else 0. Its L4 protocol in *proto.
 */
static int gro_l3(const uint8_t *p, int32_t len, uint8_t *proto) {
  if (len >= 20 && p[0] == 0x45) { *proto = p[9]; return 20; }
  if (len >= 40 && (p[0] >> 4) == 6) { *proto = p[6]; return 40; }
  return 0;
}

/* Does the IP length field of p (l3 header bytes) say len, and (IPv4) is it not a fragment? */
static int gro_ip_len_ok(const uint8_t *p, int l3, int32_t len) {
  if (l3 == 20) return (int32_t)get16(p + 2) == len && (get16(p + 6) & 0x3fff) == 0;
  return (int32_t)get16(p + 4) + 40 == len;
}

/* Same IP header fields that must match within a run: IPv4 TOS, TTL, DF; IPv6 traffic class, flow label, hop limit. Both of p's family. */
static int gro_same_ip(const uint8_t *p, const uint8_t *q, int l3) {
  if (l3 == 20) return p[1] == q[1] && p[8] == q[8] && (p[6] & 0x40) == (q[6] & 0x40);
  return memcmp(p, q, 4) == 0 && p[7] == q[7];
}

/* The TCP payload length of a packet that may be coalesced (IPv4 ihl 20 or IPv6 without extension headers, TCP, not a fragment, only ACK[|PSH]), else -1. */
static int gro_tcp_payload(const uint8_t *p, int32_t len) {
  uint8_t proto;
  int l3 = gro_l3(p, len, &proto);
  if (l3 == 0 || proto != IPPROTO_TCP || len < l3 + 20 || !gro_ip_len_ok(p, l3, len)) return -1;
  int thl = (p[l3 + 12] >> 4) * 4;
  if (thl < 20 || l3 + thl > len) return -1;
  uint8_t f = p[l3 + 13];
  if ((f & (uint8_t)~(TCP_ACK | TCP_PSH)) != 0 || !(f & TCP_ACK)) return -1;
  return len - l3 - thl;
}

/* The IP + TCP/UDP header bytes of a packet gro_plan may coalesce. */
static int gro_hlen(const uint8_t *p) {
  int l3 = p[0] == 0x45 ? 20 : 40;
  uint8_t proto = l3 == 20 ? p[9] : p[6];
  return proto == IPPROTO_UDP ? l3 + 8 : l3 + (p[l3 + 12] >> 4) * 4;
}

/* Can packet q (payload ql) follow the group led by p (payload size seg) whose payload so far is `have` bytes? */
static int gro_can_append(const uint8_t *p, int seg, int64_t have, const uint8_t *q, int ql) {
  if (ql <= 0 || ql > seg) return 0;
  if ((p[0] >> 4) != (q[0] >> 4)) return 0;                                         /* family */
  int l3 = p[0] == 0x45 ? 20 : 40, alen = l3 == 20 ? 4 : 16, a = l3 == 20 ? 12 : 8;
  if (!gro_same_ip(p, q, l3)) return 0;
  if (memcmp(p + a, q + a, (size_t)alen * 2) != 0 || memcmp(p + l3, q + l3, 4) != 0) return 0; /* addresses, ports */
  int thl = (p[l3 + 12] >> 4) * 4;
  if ((q[l3 + 12] >> 4) * 4 != thl) return 0;
  if (memcmp(p + l3 + 8, q + l3 + 8, 4) != 0) return 0;                             /* ACK number */
  if (thl > 20 && memcmp(p + l3 + 20, q + l3 + 20, (size_t)thl - 20) != 0) return 0; /* options (timestamps) */
  if (get32(q + l3 + 4) != get32(p + l3 + 4) + (uint32_t)have) return 0;           /* in sequence */
  return 1;
}

/*
 * The UDP payload length of a datagram that may be coalesced, else -1:
 * IPv4 (ihl 20, DF, not a fragment) or IPv6 (no extension headers), lengths
 * consistent.
 */
static int gro_udp_payload(const uint8_t *p, int32_t len) {
  uint8_t proto;
  int l3 = gro_l3(p, len, &proto);
  if (l3 == 0 || proto != IPPROTO_UDP || len <= l3 + 8 || !gro_ip_len_ok(p, l3, len)) return -1;
  if (l3 == 20 && !(p[6] & 0x40)) return -1;
  if ((int32_t)get16(p + l3 + 4) != len - l3) return -1;
  return len - l3 - 8;
}

/*
 * UDP: a group is consecutive datagrams of one flow (addresses, ports, TOS /
 * traffic class and flow label, TTL / hop limit) with equal payloads, the
 * last may be shorter. Written as one USO superpacket, the kernel hands the
 * receiving socket the same datagrams (or the whole batch at once to a
 * socket with UDP_GRO). IPv4: only DF datagrams, as the kernel renumbers the
 * IP IDs of the segments, which RFC 6864 allows for atomic datagrams only
 * (IPv6 has no id in its header).
 */
static int64_t gro_plan_udp(const uint8_t *mem, const int32_t *offsets, const int32_t *lens, int64_t n, int64_t i, int seg) {
  const uint8_t *p = mem + offsets[i];
  int l3 = p[0] == 0x45 ? 20 : 40, a = l3 == 20 ? 12 : 8, alen = l3 == 20 ? 8 : 32;
  int64_t total = lens[i], k = i + 1;
  while (k < n && k - i < GRO_MAX_SEGS) {
    const uint8_t *q = mem + offsets[k];
    int ql = gro_udp_payload(q, lens[k]);
    if (ql <= 0 || ql > seg || total + ql > GRO_MAX_LEN) break;
    if ((p[0] >> 4) != (q[0] >> 4) || !gro_same_ip(p, q, l3)) break;
    if (memcmp(p + a, q + a, (size_t)alen) != 0 || memcmp(p + l3, q + l3, 4) != 0) break; /* addresses, ports */
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
  if (seg <= 0) return 1;
  int l3 = p[0] == 0x45 ? 20 : 40;
  if (p[l3 + 13] & TCP_PSH) return 1;
  int64_t have = seg, total = lens[i], k = i + 1;
  while (k < n && k - i < GRO_MAX_SEGS) {
    const uint8_t *q = mem + offsets[k];
    int ql = gro_tcp_payload(q, lens[k]);
    if (ql < 0 || total + ql > GRO_MAX_LEN || !gro_can_append(p, seg, have, q, ql)) break;
    have += ql;
    total += ql;
    k++;
    if (ql < seg || (q[l3 + 13] & TCP_PSH)) break;
  }
  return k - i;
}

/* The virtio_net_hdr of a superpacket, in the 10 bytes before its head p: NEEDS_CSUM from the L4 header at cs, GSO type and size. */
static void gro_vnet(uint8_t *p, uint8_t type, uint16_t hl, int seg, uint16_t cs, uint16_t co) {
  uint8_t *h = p - VNET_HDR_LEN;
  memset(h, 0, VNET_HDR_LEN);
  h[0] = VNET_F_NEEDS_CSUM;
  h[1] = type;
  h[2] = (uint8_t)hl; h[3] = (uint8_t)(hl >> 8);
  h[4] = (uint8_t)seg; h[5] = (uint8_t)(seg >> 8);
  h[6] = (uint8_t)cs; h[7] = (uint8_t)(cs >> 8);
  h[8] = (uint8_t)co; h[9] = (uint8_t)(co >> 8);
}

/* The IP length fields of a superpacket of `total` bytes (IPv4: total length and header checksum; IPv6: payload length). */
static void gro_set_ip_len(uint8_t *p, int l3, int64_t total) {
  if (l3 == 20) { put16(p + 2, (uint16_t)total); ipv4_fix_csum(p, 20); } else put16(p + 4, (uint16_t)(total - 40));
}

/* The pseudo-header sum (folded, not complemented: NEEDS_CSUM) of an L4 segment of l4len bytes. */
static uint16_t gro_pseudo(const uint8_t *p, int l3, uint8_t proto, int64_t l4len) {
  uint64_t ps = (l3 == 20 ? csum_add(0, p + 12, 8) : csum_add(0, p + 8, 32)) + proto + (uint64_t)l4len;
  while (ps >> 16) ps = (ps & 0xffff) + (ps >> 16);
  return (uint16_t)ps;
}

/*
 * Turns the group's first packet into the head of a superpacket of `total`
 * bytes: IP length (and IPv4 header checksum), UDP length or TCP PSH taken
 * from the last segment, L4 checksum = pseudo-header sum (NEEDS_CSUM: the
 * kernel treats the payload as verified), and the virtio_net_hdr in the 10
 * bytes before it (GSO TCPV4, TCPV6 or UDP_L4).
 */
static void gro_make_head(uint8_t *p, const uint8_t *last, int64_t total, int seg) {
  int l3 = p[0] == 0x45 ? 20 : 40;
  uint8_t proto = l3 == 20 ? p[9] : p[6];
  gro_set_ip_len(p, l3, total);
  if (proto == IPPROTO_UDP) {
    put16(p + l3 + 4, (uint16_t)(total - l3));
    put16(p + l3 + 6, gro_pseudo(p, l3, IPPROTO_UDP, total - l3));
    gro_vnet(p, VNET_GSO_UDP_L4, (uint16_t)(l3 + 8), seg, (uint16_t)l3, 6);
    return;
  }
  int thl = (p[l3 + 12] >> 4) * 4;
  p[l3 + 13] |= (uint8_t)(last[l3 + 13] & TCP_PSH);
  put16(p + l3 + 16, gro_pseudo(p, l3, IPPROTO_TCP, total - l3));
  gro_vnet(p, l3 == 20 ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6, (uint16_t)(l3 + thl), seg, (uint16_t)l3, 16);
}

/* Builds the iovecs of group [i, i+cnt) in iov (cnt entries); the head must already be made. */
static void gro_iov(struct iovec *iov, uint8_t *mem, const int32_t *offsets, const int32_t *lens, int64_t i, int64_t cnt, int hl) {
  uint8_t *p = mem + offsets[i];
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
  gro_iov(iov, mem, offsets, lens, i, cnt, hl);
}
