/*
 * offload: the byte work of the TUN offloads, with no syscall and no N-API:
 * IPv4 and TCP/UDP (over IPv4 or IPv6) checksums, the virtio_net_hdr a tunOpenVnet fd carries, the
 * TSO/USO split of a superpacket read from TUN (vnet_split) and the TCP/UDP
 * coalescing (GRO) of packets written to TUN (gro_plan, gro_prepare).
 * offload.c holds those; the syscalls around them are tun.c's.
 *
 * Inline here: the big-endian byte helpers and the checksum arithmetic, run
 * per packet by the split, the coalescing and the fast path (fastpath.c),
 * so that splitting the addon into files adds no call on that path.
 */
#ifndef LWT_OFFLOAD_H
#define LWT_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/uio.h>

#define VNET_HDR_LEN 10 /* struct virtio_net_hdr, no num_buffers */
#define VNET_F_NEEDS_CSUM 1
#define VNET_GSO_NONE 0
#define VNET_GSO_TCPV4 1
#define VNET_GSO_TCPV6 4
#define VNET_GSO_UDP_L4 5
#define VNET_GSO_ECN 0x80

/* split state words (Int32Array shared with JS): */
#define SPLIT_PENDING 0   /* bytes of the superpacket held in sbuf (vnet header included), 0 = none */
#define SPLIT_NEXT 1      /* next segment index to emit */
#define SPLIT_DROPPED 2   /* cumulative: superpackets/packets dropped as malformed or too big */
#define SPLIT_SUPER 3     /* cumulative: superpackets (gso) read */
#define SPLIT_WORDS 4

/* Coalescing limits: packets per superpacket, and its length (IPv4 total length; IPv6 header + payload). */
#define GRO_MAX_SEGS 64
#define GRO_MAX_LEN 65535

/* ---- byte order (network, big-endian) ---- */

static inline void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t get32(const uint8_t *p) { return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]; }
static inline void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

/* ---- checksums (RFC 1071) ---- */

/* One's-complement sum of len bytes (big-endian 16-bit words), folded later. */
static inline uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t len) {
  while (len >= 2) { sum += (uint32_t)((p[0] << 8) | p[1]); p += 2; len -= 2; }
  if (len) sum += (uint32_t)(p[0] << 8);
  return sum;
}
static inline uint16_t csum_fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static inline void ipv4_fix_csum(uint8_t *ip, size_t ihl) {
  put16(ip + 10, 0);
  put16(ip + 10, csum_fold(csum_add(0, ip, ihl)));
}

/*
 * Full L4 checksum (TCP or UDP, over IPv4 or IPv6 by the version nibble of
 * ip) of l4len bytes at l4, written at l4 + csumOff. The pseudo-header:
 * addresses, protocol and L4 length (RFC 793 for IPv4, RFC 8200 §8.1 for
 * IPv6: the same sum, with 16-byte addresses and a 32-bit length).
 */
static inline void l4_fix_csum(const uint8_t *ip, uint8_t *l4, size_t l4len, size_t csumOff, int udp) {
  put16(l4 + csumOff, 0);
  uint64_t sum;
  if ((ip[0] >> 4) == 6) sum = csum_add(0, ip + 8, 32) + (udp ? IPPROTO_UDP : IPPROTO_TCP);
  else sum = csum_add(0, ip + 12, 8) + ip[9]; /* source and destination addresses, protocol */
  sum += (uint32_t)l4len;
  sum = csum_add(sum, l4, l4len);
  uint16_t c = csum_fold(sum);
  if (udp && c == 0) c = 0xffff;
  put16(l4 + csumOff, c);
}

/*
 * A plain packet whose vnet header h says NEEDS_CSUM: the field at
 * csum_start + csum_offset holds the pseudo-header sum; complete it over
 * [csum_start, plen) in pkt. Returns 0 (nothing written) when the offsets
 * fall outside the packet.
 */
static inline int vnet_complete_csum(const uint8_t *h, uint8_t *pkt, int64_t plen) {
  uint16_t csumStart = (uint16_t)(h[6] | (h[7] << 8)), csumOff = (uint16_t)(h[8] | (h[9] << 8)); /* little-endian */
  if ((int64_t)csumStart + csumOff + 2 > plen) return 0;
  uint16_t c = csum_fold(csum_add(0, pkt + csumStart, (size_t)(plen - csumStart)));
  /* UDP (its checksum sits at offset 6, TCP's at 16, over IPv4 or IPv6 alike) sends a zero sum as 0xffff. */
  if (csumOff == 6 && c == 0) c = 0xffff;
  put16(pkt + csumStart + csumOff, c);
  return 1;
}

/* ---- split (TUN read) ---- */

/*
 * Splits (or passes) the packet in sbuf[0..total) (vnet header first) into
 * slots, from segment state[SPLIT_NEXT] on, until the packet is done or the
 * slots run out. Returns the number of slots filled; updates state.
 * Malformed or oversized input: dropped whole, counted in state[SPLIT_DROPPED].
 * A plain (not GSO) packet that is neither IPv4 nor IPv6 is passed on
 * unchanged for the pipeline to count by its own reason.
 */
int64_t vnet_split(const uint8_t *sbuf, int64_t total, uint8_t *mem, const int32_t *offsets, int32_t *lens,
                   int64_t max, int64_t cap, int32_t *state);

/* ---- coalescing (TUN write) ---- */

/*
 * Plans the group starting at packet i of n: returns how many packets (>= 1)
 * form it. A group of more than one is consecutive in-sequence segments of
 * one TCP flow with equal payloads (the last may be shorter or carry PSH),
 * or consecutive equal-size DF datagrams of one UDP flow.
 */
int64_t gro_plan(const uint8_t *mem, const int32_t *offsets, const int32_t *lens, int64_t n, int64_t i);
/*
 * Makes the head of group [i, i+cnt) (cnt > 1) and its cnt iovecs: one
 * superpacket with its virtio_net_hdr in the 10 bytes before packet i,
 * ready for writev. Rewrites packet i's headers.
 */
void gro_prepare(struct iovec *iov, uint8_t *mem, const int32_t *offsets, const int32_t *lens, int64_t i, int64_t cnt);

#endif
