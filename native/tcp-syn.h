/*
 * lwt_is_tcp_syn: is the IP packet at p (len bytes) a TCP SYN or SYN-ACK?
 * The fast path (fastpath.c) asks it with --mss-clamp on and leaves such
 * packets to the JS pipelines, which lower their MSS option
 * (src/dataplane/mss-clamp.ts; its cheap test is the same: IPv4 not a later
 * fragment or IPv6 with next header TCP, then the SYN flag). Bounds-checked;
 * anything short or odd is "no" (the JS path sees it only if it is a SYN).
 */
#ifndef LWT_TCP_SYN_H
#define LWT_TCP_SYN_H

#include <stdint.h>

static inline int lwt_is_tcp_syn(const uint8_t *p, int64_t len) {
  int64_t t;
  if (len >= 40 && (p[0] >> 4) == 4) {
    if (p[9] != 6 || (((p[6] & 0x1f) << 8) | p[7]) != 0) return 0;
    t = (int64_t)(p[0] & 15) * 4;
    if (t < 20 || t + 20 > len) return 0;
  } else if (len >= 60 && (p[0] >> 4) == 6) {
    if (p[6] != 6) return 0;
    t = 40;
  } else return 0;
  return (p[t + 13] & 0x02) != 0;
}

#endif
