/*
 * Lone-packet fast path: one packet handled entirely in C, inside the poll
 * callback, without entering JavaScript.
 *
 * Why: an idle tunnel carries one packet per wake-up (a ping, an SSH
 * keystroke, a DNS query). The batch pipelines (src/dataplane/outbound.ts,
 * inbound.ts) spend most of such a wake-up entering JS, running baseline
 * code on cold caches and crossing N-API four times; the kernel's own work
 * is a fraction of it (docs/PERFORMANCE.md, "Idle latency").
 *
 * What: attached to a pipeline's poll (fastPathOut on the TUN poll,
 * fastPathIn on the main UDP socket's poll), it runs before the JS callback:
 *
 *   outbound  read one packet from the TUN fd into the pipeline's superpacket
 *             buffer. A plain IPv4 or IPv6 packet to a peer's own address
 *             (its tunnel address, its IPv6 /128) with a session is framed,
 *             sealed and sent here (sendmsg of header, ciphertext in place and
 *             tag). Anything else (a superpacket, no route, a routed prefix,
 *             no session, neither IPv4 nor IPv6) is left in the buffer as the split state's pending packet,
 *             and the JS callback runs: tunReadSplit continues with it first,
 *             so nothing is read twice and order holds.
 *   inbound   MSG_PEEK one datagram. A data message of a known session (direct,
 *             or on a client relayed by the server from that session's peer),
 *             authentic, not replayed, from the peer's current endpoint (the
 *             server roams peers in JS), whose inner packet comes from the
 *             peer's own address to ours (IPv4 or IPv6; routed prefixes are
 *             left to the JS path's longest match), is consumed and written
 *             to the TUN fd here. On a server, a relay envelope from a
 *             registered client to another is forwarded unopened, its peer id
 *             rewritten to the source's. Anything else stays queued for the JS
 *             callback, which reads and judges it as always (and counts why).
 *
 * Bursts: a wake-up that comes within FAST_BURST_GAP_NS of the last packet
 * the fast path carried in that direction (the loop found the fd readable
 * again at once: more was queued), or that brings a superpacket or a
 * GRO-coalesced datagram, goes to the JS batch path, which keeps GSO/GRO
 * batching, and the fast path stands aside for FAST_HOLD_NS: during a bulk
 * transfer or a flood every wake-up goes straight to the batch path (about
 * one packet a millisecond takes the single-packet route). So bulk transfers
 * keep their batching, and a lone packet costs no syscall beyond its own
 * (no read-until-EAGAIN, no second peek).
 *
 * Shared state: the tables below live in typed arrays owned by the JS
 * pipeline (src/dataplane/fast-path.ts writes them; both paths read them):
 * peer records (plus, at index maxPeers, our own: its IPv6 address), the
 * route and session hashes, send counters, replay windows,
 * keys and stats. The poll callback and the pipeline run on one thread, so
 * no atomics are needed. Every index read from a table is bounds-checked
 * before use: a bad table makes the fast path decline, never touch memory
 * outside its arrays.
 *
 * Uses: aead.h (aead_seal_one/aead_open_one, inline), offload.h
 * (checksums, vnet header, split state words), addr6.h (endpoints of both families), udp.h (
 * UDP_GRO), poll.h (the poll it is attached to; poll_on_event for a linked
 * pair), napi_util.h (argument checks). Entry points: fastpath.h.
 */
#include "fastpath.h"
#include "faketcp.h"
#include "tcp-syn.h"
#include "aead.h"
#include "napi_util.h"
#include "offload.h"
#include "poll.h"
#include "udp.h"
#include "addr6.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* cfg (Float64Array) word indices; the names (fastLayout().cfg) must match FAST_CFG in src/dataplane/fast-path.ts. */
#define FAST_CFG_LIST(X) \
  X(TUN_FD, "tunFd") X(UDP_FD, "udpFd") X(CAP, "cap") X(OWN_IP, "ownIp") X(IS_SERVER, "isServer") \
  X(MAX_PEERS, "maxPeers") X(ROUTE_BITS, "routeBits") X(SESS_BITS, "sessBits") X(MAX_SESSIONS, "maxSessions") \
  X(REPLAY_WINDOW, "replayWindow") X(REJECT_AFTER, "rejectAfter") X(MAX_COUNTER_HIGH, "maxCounterHigh") \
  X(MSG_DATA, "msgData") X(MSG_RELAY, "msgRelay") \
  X(PEER_BASE, "peerBase") X(PEER_FIELDS, "peerFields") X(P_TX_PACKETS, "pTxPackets") X(P_TX_BYTES, "pTxBytes") \
  X(P_RX_PACKETS, "pRxPackets") X(P_RX_BYTES, "pRxBytes") X(P_LAST_RX, "pLastRx") \
  X(TUN_RX_PACKETS, "tunRxPackets") X(TUN_RX_BYTES, "tunRxBytes") X(TUN_TX_PACKETS, "tunTxPackets") \
  X(TUN_TX_BYTES, "tunTxBytes") X(UDP_RX_PACKETS, "udpRxPackets") X(UDP_RX_BYTES, "udpRxBytes") \
  X(UDP_TX_PACKETS, "udpTxPackets") X(UDP_TX_BYTES, "udpTxBytes") X(DROP_TUN_WRITE, "dropTunWrite") \
  X(DROP_UDP_SEND, "dropUdpSend") X(FAST_PACKETS, "fastPackets") X(RELAYED_PACKETS, "relayedPackets") \
  X(RELAYED_BYTES, "relayedBytes") X(REKEY_AFTER, "rekeyAfter") X(SYN_TO_JS, "synToJs")
#define FAST_CFG_ENUM(id, name) FC_##id,
enum { FAST_CFG_LIST(FAST_CFG_ENUM) FC_WORDS };

/* Peer record: FP_WORDS int32 per slot. */
#define FP_FLAGS 0
#define FP_TUNNEL_IP 1
#define FP_EP_IP 2
#define FP_EP_PORT 3
#define FP_REMOTE_INDEX 4
#define FP_PEER_ID 5
#define FP_FD 6
#define FP_IP6 8    /* 4 words: the peer's IPv6 tunnel address (big-endian words), valid with FPF_V6 */
#define FP_WORDS 12
#define FPF_USED 1  /* the slot holds a peer */
#define FPF_READY 2 /* outbound: a send key is installed */
#define FPF_RELAY 4 /* packets to it go in a relay envelope via the server */
#define FPF_V6 8    /* FP_IP6 holds an IPv6 address (a peer's /128; in the record at index maxPeers: our own) */
/* Session record (inbound): FS_WORDS int32 per session number (its key offset / 32). */
#define FS_SLOT 0
#define FS_LOCAL_INDEX 1
#define FS_WORDS 2
/* Replay window: FR_WORDS uint32 ring words per session (crypto/replay.ts). */
#define FR_WORDS 64
/* Inbound peek buffer: data messages of up to this many bytes are eligible. */
#define FAST_IN_CAP 4096

/* After a burst, wake-ups go straight to the batch path for this long. */
#define FAST_HOLD_NS 1000000ULL
/* A wake-up this soon after the last fast packet (same direction) is a burst. */
#define FAST_BURST_GAP_NS 50000ULL

#define FAST_OUT 1
#define FAST_IN 2
#define FAST_MAX_REFS 12

struct lwt_fast {
  int kind;
  napi_ref refs[FAST_MAX_REFS];
  int nrefs;
  uint64_t holdUntil; /* CLOCK_MONOTONIC ns: until then, leave wake-ups to the batch path */
  uint64_t lastNs;    /* when the fast path last carried a packet (0: not recently) */
  int tunFd, udpFd, isServer, routeBits, sessBits;
  int64_t cap, maxPeers, maxSessions;
  uint32_t ownIp, msgData, msgRelay;
  double replayWindow, rejectAfter, maxCounterHigh;
  double rekeyAfter; /* outbound: a send counter at or above it goes to the JS path (which asks for a rekey or retires the key) */
  int synToJs;       /* --mss-clamp: TCP SYNs go to the JS path (native/tcp-syn.h) */
  int64_t peerBase, peerFields, pTxPackets, pTxBytes, pRxPackets, pRxBytes, pLastRx;
  int64_t tunRxPackets, tunRxBytes, tunTxPackets, tunTxBytes, udpRxPackets, udpRxBytes, udpTxPackets, udpTxBytes,
          dropTunWrite, dropUdpSend, fastPackets, relayedPackets, relayedBytes;
  int32_t *peers;
  double *stats;
  int32_t *hash; /* routes (out) or sessions (in): 2 << bits int32, [key, value + 1] pairs, 0 = empty */
  uint8_t *keys;
  size_t keysLen;
  /* outbound */
  uint8_t *sbuf;
  size_t sbufLen;
  int32_t *split;
  double *counters;
  /* inbound */
  lwt_poll *next;  /* fused/inline: the same thread's TUN poll, serviced right after a delivery (fastPathLink) */
  int32_t *epHash; /* server: endpoint key (fast_ep_key) → slot of a direct peer */
  int32_t *idHash; /* server: peer id → slot */
  int32_t *sess;
  uint32_t *rings;
  double *lasts;
  uint8_t ibuf[FAST_IN_CAP];
};

void fast_free(napi_env env, lwt_fast *f) {
  if (!f) return;
  for (int i = 0; i < f->nrefs; i++) napi_delete_reference(env, f->refs[i]);
  free(f);
}

/*
 * The 32-bit key of an IPv6 address in the routes hash (fast-path.ts
 * ip6HashKey). It shares the hash with IPv4 tunnel addresses, so every hit
 * is checked against the peer record: a collision only sends the packet to
 * the JS path.
 */
static uint32_t fast_ip6_key(const uint8_t *a) {
  return get32(a) * 0x85EBCA77u ^ get32(a + 4) * 0xC2B2AE3Du ^ get32(a + 8) * 0x27D4EB2Fu ^ get32(a + 12) * 0x165667B1u;
}

/* Is the IPv6 address at a the one in record r (FPF_V6 set)? */
static int fast_ip6_is(const int32_t *r, const uint8_t *a) {
  return (r[FP_FLAGS] & FPF_V6) && (uint32_t)r[FP_IP6] == get32(a) && (uint32_t)r[FP_IP6 + 1] == get32(a + 4) &&
         (uint32_t)r[FP_IP6 + 2] == get32(a + 8) && (uint32_t)r[FP_IP6 + 3] == get32(a + 12);
}

/* The hash lookup both tables share (src/dataplane/fast-path.ts IntHash): linear probing from Fibonacci hashing. */
static int64_t fast_lookup(const int32_t *hash, int bits, uint32_t key) {
  uint32_t mask = (1u << bits) - 1;
  uint32_t i = (uint32_t)(key * 0x9E3779B1u) >> (32 - bits);
  for (uint32_t n = 0; n <= mask; n++, i = (i + 1) & mask) {
    int32_t v = hash[2 * i + 1];
    if (v == 0) return -1;
    if ((uint32_t)hash[2 * i] == key) return (int64_t)v - 1;
  }
  return -1;
}

static uint64_t fast_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* A burst was seen: the batch path takes the wake-ups for a while. Returns 0 (run the JS callback). */
static int fast_hold(lwt_fast *f) {
  f->holdUntil = fast_mono_ns() + FAST_HOLD_NS;
  f->lastNs = 0;
  return 0;
}


static double fast_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* Leave the packet just read (r bytes in sbuf) for the JS pipeline: tunReadSplit continues with it. */
static int fast_out_pend(lwt_fast *f, ssize_t r) {
  f->split[SPLIT_PENDING] = (int32_t)r;
  f->split[SPLIT_NEXT] = 0;
  if ((f->sbuf[1] & (uint8_t)~VNET_GSO_ECN) != VNET_GSO_NONE) f->split[SPLIT_SUPER]++;
  return 0;
}

/* Reads one TUN packet; 1 = read (length in *r), 0 = nothing waiting, -1 = error (the JS read reports it). */
static int fast_out_read(lwt_fast *f, ssize_t *r) {
  do *r = read(f->tunFd, f->sbuf, f->sbufLen); while (*r < 0 && errno == EINTR);
  if (*r >= 0) return 1;
  return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
}

/*
 * TUN readable. Returns 1 when done (the JS callback need not run), 0 to run
 * it (a packet may be pending in sbuf).
 */
static int fast_out(lwt_fast *f) {
  if (f->split[SPLIT_PENDING] != 0) return 0;
  ssize_t r;
  int got = fast_out_read(f, &r);
  if (got <= 0) return got == 0;
  if (r < VNET_HDR_LEN) { f->split[SPLIT_DROPPED]++; return 0; }
  uint8_t *h = f->sbuf, *pkt = f->sbuf + VNET_HDR_LEN;
  int64_t plen = r - VNET_HDR_LEN;
  if ((h[1] & (uint8_t)~VNET_GSO_ECN) != VNET_GSO_NONE) { fast_hold(f); return fast_out_pend(f, r); } /* a superpacket: bulk */
  if (plen > f->cap) return fast_out_pend(f, r);
  /* To a peer's own address only (IPv4 tunnel address, IPv6 /128): prefixes (routes) are the JS path's longest match. */
  int v6 = plen >= 40 && (pkt[0] >> 4) == 6;
  if (!v6) {
    if (plen < 20 || (pkt[0] >> 4) != 4) return fast_out_pend(f, r);
    size_t ihl = (size_t)(pkt[0] & 15) * 4;
    if (ihl < 20 || (int64_t)ihl > plen) return fast_out_pend(f, r);
  }
  int64_t slot = fast_lookup(f->hash, f->routeBits, v6 ? fast_ip6_key(pkt + 24) : get32(pkt + 16));
  if (slot < 0 || slot >= f->maxPeers) return fast_out_pend(f, r);
  const int32_t *p = f->peers + slot * FP_WORDS;
  /* The hash holds keys, not proofs (IPv6 keys are hashes, sharing the table with IPv4 addresses): the record must agree. */
  if (v6 ? !fast_ip6_is(p, pkt + 24) : (uint32_t)p[FP_TUNNEL_IP] != get32(pkt + 16)) return fast_out_pend(f, r);
  int32_t flags = p[FP_FLAGS];
  if ((flags & (FPF_USED | FPF_READY)) != (FPF_USED | FPF_READY)) return fast_out_pend(f, r);
  if ((int64_t)slot * AEAD_KEY_LEN + AEAD_KEY_LEN > (int64_t)f->keysLen) return fast_out_pend(f, r);
  /* Message-count limits (outbound.ts #frame): past REKEY_AFTER_MESSAGES every packet is the JS path's. */
  if (!(f->counters[slot] < f->rekeyAfter)) return fast_out_pend(f, r);
  if (f->synToJs && lwt_is_tcp_syn(pkt, plen)) return fast_out_pend(f, r); /* --mss-clamp: outbound.ts clamps it */
  /* Complete a partial checksum in place: this packet is ours from here on. */
  if ((h[0] & VNET_F_NEEDS_CSUM) && !vnet_complete_csum(h, pkt, plen)) return fast_out_pend(f, r);

  /* Frame: [relay envelope 8][transport header 16] + ciphertext + tag, as outbound.ts #frameFor. */
  uint8_t head[24], tag[AEAD_TAG_LEN];
  int relay = (flags & FPF_RELAY) != 0;
  uint8_t *th = head + (relay ? 8 : 0);
  if (relay) { cp_put32(head, f->msgRelay); cp_put32(head + 4, (uint32_t)p[FP_PEER_ID]); }
  double c = f->counters[slot];
  f->counters[slot] = c + 1;
  uint64_t ctr = (uint64_t)c;
  cp_put32(th, f->msgData);
  cp_put32(th + 4, (uint32_t)p[FP_REMOTE_INDEX]);
  cp_put64(th + 8, ctr);
  if (!aead_seal_one(f->keys + slot * AEAD_KEY_LEN, th, 16, pkt, (size_t)plen, tag)) {
    f->stats[f->dropUdpSend]++;
    return 1;
  }
  struct iovec iov[3] = {
    { .iov_base = head, .iov_len = relay ? 24 : 16 },
    { .iov_base = pkt, .iov_len = (size_t)plen },
    { .iov_base = tag, .iov_len = AEAD_TAG_LEN },
  };
  int fd = p[FP_FD] >= 0 ? p[FP_FD] : f->udpFd;
  lwt_sockaddr sa;
  struct msghdr m;
  memset(&m, 0, sizeof m);
  m.msg_name = &sa;
  m.msg_namelen = lwt_ep_sockaddr(lwt_sock_get(fd), (uint32_t)p[FP_EP_IP], (uint32_t)p[FP_EP_PORT], &sa);
  m.msg_iov = iov;
  m.msg_iovlen = 3;
  ssize_t s;
  if (ftcp_is_handle((uint32_t)p[FP_EP_IP])) s = ftcp_send_iov((uint32_t)p[FP_EP_IP], iov, 3); /* a fake-TCP flow */
  else do s = sendmsg(fd, &m, MSG_DONTWAIT); while (s < 0 && errno == EINTR);
  double *st = f->stats;
  st[f->tunRxPackets]++;
  st[f->tunRxBytes] += (double)plen;
  if (s >= 0) {
    double len = (double)(iov[0].iov_len + (size_t)plen + AEAD_TAG_LEN);
    double *ps = st + f->peerBase + slot * f->peerFields;
    st[f->udpTxPackets]++;
    st[f->udpTxBytes] += len;
    ps[f->pTxPackets]++;
    ps[f->pTxBytes] += len;
    st[f->fastPackets]++;
  } else {
    st[f->dropUdpSend]++;
  }
  f->lastNs = fast_mono_ns();
  return 1;
}

/* Would the replay window (crypto/replay.ts) accept counter c? Does not change it. */
static int fast_replay_ok(const lwt_fast *f, const uint32_t *ring, double last, double c) {
  if (!(c >= 0 && c < f->rejectAfter)) return 0;
  if (c <= last && last - c > f->replayWindow) return 0;
  uint64_t u = (uint64_t)c;
  if (c > last && (uint64_t)(u / 32) != (uint64_t)last / 32) return 1; /* its word is cleared on the way */
  return (ring[(u / 32) % FR_WORDS] & (1u << (u % 32))) == 0;
}

/* Record counter c (fast_replay_ok said yes), exactly as ReplayWindow.accept does. */
static void fast_replay_set(uint32_t *ring, double *last, double c) {
  uint64_t u = (uint64_t)c, word = u / 32;
  if (c > *last) {
    uint64_t cur = (uint64_t)*last / 32;
    uint64_t diff = word - cur < FR_WORDS ? word - cur : FR_WORDS;
    for (uint64_t i = 1; i <= diff; i++) ring[(cur + i) % FR_WORDS] = 0;
    *last = c;
  }
  ring[word % FR_WORDS] |= 1u << (u % 32);
}

/* The 32-bit key of an endpoint in epHash (fast-path.ts endpointHashKey); a lookup verifies the peer's endpoint. */
static uint32_t fast_ep_key(uint32_t ip, uint32_t port) {
  return ip ^ (port * 0x9E3779B1u);
}

/* Consume the datagram just peeked (r bytes). 0 if what came was not it (cannot happen with one reader). */
static int fast_consume(lwt_fast *f, ssize_t r) {
  ssize_t d;
  do d = recv(f->udpFd, NULL, 0, MSG_DONTWAIT | MSG_TRUNC); while (d < 0 && errno == EINTR);
  return d == r;
}

/*
 * Server: a relay envelope [type 5, peer id of the destination][sealed data]
 * from a registered client, forwarded unopened with the envelope's peer id
 * rewritten to the source's (inbound.ts #relay). Unknown source or
 * destination, or an inner type other than 1-4 and 8: the JS path judges and counts.
 */
static int fast_relay(lwt_fast *f, uint8_t *m, ssize_t r, uint32_t ip, uint32_t port) {
  if (r < 8 + 8) return 0;
  /* PROTOCOL §4.4: the inner message is of type 1..4 (data = 4 is the highest) or 8 (FEC parity); a Relay or Reject inside is the JS path's drop. */
  if ((m[8] < 1 || m[8] > f->msgData) && m[8] != 8 /* FEC parity (wire/fec.ts) */) return 0;
  int64_t src = fast_lookup(f->epHash, f->sessBits, fast_ep_key(ip, port));
  int64_t dst = fast_lookup(f->idHash, f->sessBits, cp_le32(m + 4));
  if (src < 0 || dst < 0 || src >= f->maxPeers || dst >= f->maxPeers || src == dst) return 0;
  const int32_t *ps = f->peers + src * FP_WORDS, *pd = f->peers + dst * FP_WORDS;
  /* The hashes hold keys, not proofs: the records must agree (an endpoint key may collide). */
  if (!(ps[FP_FLAGS] & FPF_USED) || (ps[FP_FLAGS] & FPF_RELAY) || (uint32_t)ps[FP_EP_IP] != ip || (uint32_t)ps[FP_EP_PORT] != port) return 0;
  if (!(pd[FP_FLAGS] & FPF_USED) || (uint32_t)pd[FP_PEER_ID] != cp_le32(m + 4)) return 0;
  if (ftcp_is_handle((uint32_t)pd[FP_EP_IP])) return 0; /* to a fake-TCP flow: the JS path's send diverts it */
  if (!fast_consume(f, r)) return 0;
  cp_put32(m + 4, (uint32_t)ps[FP_PEER_ID]);
  lwt_sockaddr to;
  socklen_t tl = lwt_ep_sockaddr(lwt_sock_get(f->udpFd), (uint32_t)pd[FP_EP_IP], (uint32_t)pd[FP_EP_PORT], &to);
  double *st = f->stats;
  st[f->udpRxPackets]++;
  st[f->udpRxBytes] += (double)r;
  ssize_t s;
  do s = sendto(f->udpFd, m, (size_t)r, MSG_DONTWAIT, &to.sa, tl); while (s < 0 && errno == EINTR);
  if (s >= 0) {
    st[f->relayedPackets]++;
    st[f->relayedBytes] += (double)r;
    st[f->udpTxPackets]++;
    st[f->udpTxBytes] += (double)r;
    st[f->fastPackets]++;
  } else {
    st[f->dropUdpSend]++;
  }
  f->lastNs = fast_mono_ns();
  return 1;
}

/*
 * UDP readable (main socket). Returns 1 when done, 0 to run the JS
 * callback (the datagram, if any, is still queued).
 */
static int fast_in(lwt_fast *f) {
  uint8_t *m = f->ibuf;
  lwt_sockaddr sa;
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctrl;
  struct iovec iov = { .iov_base = m, .iov_len = sizeof f->ibuf };
  struct msghdr h;
  memset(&h, 0, sizeof h);
  h.msg_name = &sa;
  h.msg_namelen = sizeof sa;
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = ctrl.buf;
  h.msg_controllen = sizeof ctrl.buf;
  ssize_t r = recvmsg(f->udpFd, &h, MSG_PEEK | MSG_DONTWAIT);
  if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
  /* Too big for the peek buffer, or coalesced by GRO: a bulk transfer, the batch path's job. */
  if (h.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) return fast_hold(f);
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int g;
      memcpy(&g, CMSG_DATA(c), sizeof g);
      if (g > 0 && g < r) return fast_hold(f);
    }
  }
  uint32_t ip, port;
  lwt_ep_from(lwt_sock_get(f->udpFd), &sa, h.msg_namelen, &ip, &port);
  if (m[0] == f->msgRelay && f->isServer) return fast_relay(f, m, r, ip, port);
  /* A client: a relay envelope from the server carries a data message of another client (via = its peer id). */
  int64_t via = -1;
  uint8_t *dm = m;
  ssize_t dlen = r;
  if (m[0] == f->msgRelay) {
    if (r < 8) return 0;
    via = cp_le32(m + 4);
    dm = m + 8;
    dlen = r - 8;
  }
  /* Smallest data message: header + tag + a 20-byte IPv4 header (inbound.ts MIN_DATA); keepalives go to JS. IPv6: 40, below. */
  if (dlen < 16 + AEAD_TAG_LEN + 20 || dm[0] != f->msgData) return 0;
  int64_t sn = fast_lookup(f->hash, f->sessBits, cp_le32(dm + 4));
  if (sn < 0 || sn >= f->maxSessions || (sn + 1) * AEAD_KEY_LEN > (int64_t)f->keysLen) return 0;
  uint32_t hi = cp_le32(dm + 12);
  if ((double)hi > f->maxCounterHigh) return 0;
  double counter = (double)hi * 4294967296.0 + (double)cp_le32(dm + 8);
  int64_t slot = f->sess[sn * FS_WORDS + FS_SLOT];
  if (slot < 0 || slot >= f->maxPeers) return 0;
  const int32_t *p = f->peers + slot * FP_WORDS;
  if (!(p[FP_FLAGS] & FPF_USED)) return 0;
  if (via >= 0 && (uint32_t)via != (uint32_t)p[FP_PEER_ID]) return 0; /* relayed, but not from this session's peer */
  /* The server moves a peer that roamed: that is the JS path's job. */
  if (f->isServer && ((uint32_t)p[FP_EP_IP] != ip || (uint32_t)p[FP_EP_PORT] != port)) return 0;
  uint32_t *ring = f->rings + sn * FR_WORDS;
  if (!fast_replay_ok(f, ring, f->lasts[sn], counter)) return 0;
  size_t ilen = (size_t)dlen - 16 - AEAD_TAG_LEN;
  uint8_t *inner = dm + 16;
  /* Open a copy (the peeked bytes): if anything is wrong the datagram is still queued for the JS path to count. */
  if (!aead_open_one(f->keys + sn * AEAD_KEY_LEN, dm, 16, inner, ilen, inner + ilen)) return 0;
  /* The JS path's checks, for the addresses the fast path knows: the peer's own (not its routes) to ours (not LOCAL routes). */
  if ((inner[0] >> 4) == 6) {
    if (ilen < 40 || !fast_ip6_is(p, inner + 8) || !fast_ip6_is(f->peers + f->maxPeers * FP_WORDS, inner + 24)) return 0;
  } else if ((inner[0] >> 4) != 4 || get32(inner + 12) != (uint32_t)p[FP_TUNNEL_IP] || get32(inner + 16) != f->ownIp) return 0;
  if (f->synToJs && lwt_is_tcp_syn(inner, (int64_t)ilen)) return 0; /* --mss-clamp: still queued; inbound.ts clamps it */

  /* Ours: consume the datagram, record its counter, deliver. */
  if (!fast_consume(f, r)) return 0;
  fast_replay_set(ring, &f->lasts[sn], counter);
  double *st = f->stats, *ps = st + f->peerBase + slot * f->peerFields;
  st[f->udpRxPackets]++;
  st[f->udpRxBytes] += (double)r;
  ps[f->pLastRx] = fast_now_ms();
  ps[f->pRxPackets]++;
  ps[f->pRxBytes] += (double)ilen;
  uint8_t *vh = inner - VNET_HDR_LEN;
  memset(vh, 0, VNET_HDR_LEN);
  ssize_t w;
  do w = write(f->tunFd, vh, ilen + VNET_HDR_LEN); while (w < 0 && errno == EINTR);
  if (w >= 0) {
    st[f->tunTxPackets]++;
    st[f->tunTxBytes] += (double)ilen;
    st[f->fastPackets]++;
  } else {
    st[f->dropTunWrite]++;
  }
  f->lastNs = fast_mono_ns();
  /*
   * A delivery often makes the kernel answer at once (an echo reply, a TCP
   * ACK), queued on the TUN fd by the write itself. When this thread also
   * owns the TUN poll, service it now instead of after a whole loop turn
   * (~12 us on this machine, on a ping's critical path at the server).
   */
  if (w >= 0 && f->next && !f->next->stopping) poll_on_event(&f->next->h, 0, UV_READABLE);
  return 1;
}

int fast_run(lwt_fast *f) {
  uint64_t now = fast_mono_ns();
  if (now < f->holdUntil) return 0;
  if (f->lastNs != 0 && now - f->lastNs < FAST_BURST_GAP_NS) {
    f->lastNs = 0;
    return fast_hold(f); /* the fd was readable again at once: a burst */
  }
  return f->kind == FAST_OUT ? fast_out(f) : fast_in(f);
}

/* ---- attaching (JS API) ---- */

/* Keeps the JS array alive for as long as the fast path holds its pointer. */
static int fast_keep(napi_env env, lwt_fast *f, napi_value v, const char *fn) {
  if (f->nrefs >= FAST_MAX_REFS || napi_create_reference(env, v, 1, &f->refs[f->nrefs]) != napi_ok) { throw_internal(env, fn); return -1; }
  f->nrefs++;
  return 0;
}

/* A typed array of `type` holding at least `need` elements; its data pointer into *data (length into *len if asked). */
static int fast_array(napi_env env, const char *fn, napi_value v, napi_typedarray_type type, const char *name, void **data, size_t *len, int64_t need) {
  size_t n;
  if (get_ta(env, v, type, fn, name, data, &n) || check_count(env, fn, name, n, need)) return -1;
  if (len) *len = n;
  return 0;
}

/* Reads cfg into f and validates it against the stats length. */
static int fast_cfg(napi_env env, const char *fn, lwt_fast *f, napi_value v, napi_value statsV) {
  double *cfg;
  if (fast_array(env, fn, v, napi_float64_array, "cfg", (void **)&cfg, NULL, FC_WORDS)) return -1;
  for (int i = 0; i < FC_WORDS; i++) {
    double x = cfg[i];
    if (!(x >= 0 && x <= 9007199254740991.0) || x != (double)(int64_t)x) { throw_range(env, fn, "cfg holds a value that is not a non-negative integer"); return -1; }
  }
  f->tunFd = (int)cfg[FC_TUN_FD];
  f->udpFd = (int)cfg[FC_UDP_FD];
  f->cap = (int64_t)cfg[FC_CAP];
  f->ownIp = (uint32_t)cfg[FC_OWN_IP];
  f->isServer = cfg[FC_IS_SERVER] != 0;
  f->maxPeers = (int64_t)cfg[FC_MAX_PEERS];
  f->routeBits = (int)cfg[FC_ROUTE_BITS];
  f->sessBits = (int)cfg[FC_SESS_BITS];
  f->maxSessions = (int64_t)cfg[FC_MAX_SESSIONS];
  f->replayWindow = cfg[FC_REPLAY_WINDOW];
  f->rejectAfter = cfg[FC_REJECT_AFTER];
  f->rekeyAfter = cfg[FC_REKEY_AFTER];
  f->synToJs = cfg[FC_SYN_TO_JS] != 0;
  f->maxCounterHigh = cfg[FC_MAX_COUNTER_HIGH];
  f->msgData = (uint32_t)cfg[FC_MSG_DATA];
  f->msgRelay = (uint32_t)cfg[FC_MSG_RELAY];
  f->peerBase = (int64_t)cfg[FC_PEER_BASE];
  f->peerFields = (int64_t)cfg[FC_PEER_FIELDS];
  f->pTxPackets = (int64_t)cfg[FC_P_TX_PACKETS];
  f->pTxBytes = (int64_t)cfg[FC_P_TX_BYTES];
  f->pRxPackets = (int64_t)cfg[FC_P_RX_PACKETS];
  f->pRxBytes = (int64_t)cfg[FC_P_RX_BYTES];
  f->pLastRx = (int64_t)cfg[FC_P_LAST_RX];
  int64_t *glob[] = { &f->tunRxPackets, &f->tunRxBytes, &f->tunTxPackets, &f->tunTxBytes, &f->udpRxPackets, &f->udpRxBytes,
                      &f->udpTxPackets, &f->udpTxBytes, &f->dropTunWrite, &f->dropUdpSend, &f->fastPackets,
                      &f->relayedPackets, &f->relayedBytes };
  for (int i = 0; i < (int)(sizeof glob / sizeof glob[0]); i++) *glob[i] = (int64_t)cfg[FC_TUN_RX_PACKETS + i];
  if (f->tunFd > INT32_MAX || f->udpFd > INT32_MAX || f->maxPeers < 1 || f->maxPeers > (1 << 20) ||
      f->routeBits < 1 || f->routeBits > 24 || f->sessBits < 1 || f->sessBits > 24 || f->maxSessions > (1 << 22) ||
      f->msgData > 255 || f->msgRelay > 255 || f->cap > 65535) {
    throw_range(env, fn, "cfg holds an fd, table size or message type out of range");
    return -1;
  }
  int64_t pf[] = { f->pTxPackets, f->pTxBytes, f->pRxPackets, f->pRxBytes, f->pLastRx };
  for (int i = 0; i < 5; i++) if (pf[i] >= f->peerFields) { throw_range(env, fn, "cfg: a per-peer counter index is not below peerFields"); return -1; }
  for (int i = 0; i < (int)(sizeof glob / sizeof glob[0]); i++) if (*glob[i] >= f->peerBase) { throw_range(env, fn, "cfg: a counter index is not below peerBase"); return -1; }
  return fast_array(env, fn, statsV, napi_float64_array, "stats", (void **)&f->stats, NULL, f->peerBase + f->maxPeers * f->peerFields);
}

/*
 * The common start of fastPathOut/In: nargs arguments, a pollStart handle
 * first, cfg second, stats ninth. Returns the new fast path (its poll in
 * *pl), or NULL with an exception pending.
 */
static lwt_fast *fast_begin(napi_env env, napi_callback_info info, const char *fn, int kind, size_t nargs, napi_value *argv, lwt_poll **pl) {
  if (get_args(env, info, nargs, argv, fn)) return NULL;
  *pl = poll_from(env, argv[0], fn);
  if (!*pl) return NULL;
  lwt_fast *f = calloc(1, sizeof *f);
  if (!f) { throw_errno(env, ENOMEM, fn, "malloc"); return NULL; }
  f->kind = kind;
  if (fast_cfg(env, fn, f, argv[1], argv[8])) { fast_free(env, f); return NULL; }
  return f;
}

/* The common end: hold arrays argv[2..nargs) for as long as f points into them, and attach f (replacing any). */
static void fast_install(napi_env env, const char *fn, lwt_poll *pl, lwt_fast *f, size_t nargs, napi_value *argv) {
  for (size_t i = 2; i < nargs; i++) {
    if (fast_keep(env, f, argv[i], fn)) { fast_free(env, f); return; }
  }
  if (pl->fast) fast_free(env, pl->fast);
  pl->fast = f;
}

/*
 * fastPathOut(poll, cfg, sbuf, split, peers, counters, keys, routes, stats)
 * Attaches the outbound fast path to a pollStart handle watching a TUN fd
 * opened with tunOpenVnet. See the top of this file for the tables.
 */
napi_value fast_path_out(napi_env env, napi_callback_info info) {
  static const char *fn = "fastPathOut";
  napi_value argv[9];
  lwt_poll *pl;
  lwt_fast *f = fast_begin(env, info, fn, FAST_OUT, 9, argv, &pl);
  if (!f) return NULL;
  if (get_ta(env, argv[2], napi_uint8_array, fn, "sbuf", (void **)&f->sbuf, &f->sbufLen)) goto fail;
  if (f->sbufLen < 65536 + VNET_HDR_LEN) { throw_range(env, fn, "sbuf must hold at least 65546 bytes"); goto fail; }
  if (fast_array(env, fn, argv[3], napi_int32_array, "split", (void **)&f->split, NULL, SPLIT_WORDS) ||
      fast_array(env, fn, argv[4], napi_int32_array, "peers", (void **)&f->peers, NULL, (f->maxPeers + 1) * FP_WORDS) ||
      fast_array(env, fn, argv[5], napi_float64_array, "counters", (void **)&f->counters, NULL, f->maxPeers) ||
      fast_array(env, fn, argv[6], napi_uint8_array, "keys", (void **)&f->keys, &f->keysLen, 0) ||
      fast_array(env, fn, argv[7], napi_int32_array, "routes", (void **)&f->hash, NULL, (int64_t)2 << f->routeBits)) goto fail;
  fast_install(env, fn, pl, f, 9, argv);
  return NULL;
fail:
  fast_free(env, f);
  return NULL;
}

/*
 * fastPathIn(poll, cfg, peers, sessions, sess, rings, lasts, keys, stats, endpoints, peerIds)
 * Attaches the inbound fast path to a pollStart handle watching the main UDP
 * socket (tunFd in cfg must be a tunOpenVnet fd). endpoints and peerIds (the
 * server's relay lookups) are hashes of the sessions' size (sessBits).
 */
napi_value fast_path_in(napi_env env, napi_callback_info info) {
  static const char *fn = "fastPathIn";
  napi_value argv[11];
  lwt_poll *pl;
  lwt_fast *f = fast_begin(env, info, fn, FAST_IN, 11, argv, &pl);
  if (!f) return NULL;
  int64_t hashLen = (int64_t)2 << f->sessBits;
  if (fast_array(env, fn, argv[2], napi_int32_array, "peers", (void **)&f->peers, NULL, (f->maxPeers + 1) * FP_WORDS) ||
      fast_array(env, fn, argv[3], napi_int32_array, "sessions", (void **)&f->hash, NULL, hashLen) ||
      fast_array(env, fn, argv[4], napi_int32_array, "sess", (void **)&f->sess, NULL, f->maxSessions * FS_WORDS) ||
      fast_array(env, fn, argv[5], napi_uint32_array, "rings", (void **)&f->rings, NULL, f->maxSessions * FR_WORDS) ||
      fast_array(env, fn, argv[6], napi_float64_array, "lasts", (void **)&f->lasts, NULL, f->maxSessions) ||
      fast_array(env, fn, argv[7], napi_uint8_array, "keys", (void **)&f->keys, &f->keysLen, 0) ||
      fast_array(env, fn, argv[9], napi_int32_array, "endpoints", (void **)&f->epHash, NULL, hashLen) ||
      fast_array(env, fn, argv[10], napi_int32_array, "peerIds", (void **)&f->idHash, NULL, hashLen)) {
    fast_free(env, f);
    return NULL;
  }
  fast_install(env, fn, pl, f, 11, argv);
  return NULL;
}

/*
 * fastPathLink(inPoll, outPoll): both polls run on this thread (placements
 * fused and inline) and carry fast paths: after the inbound fast path writes a
 * packet to the TUN fd, it services outPoll at once (fast path, else its JS
 * callback), as the loop would on its next turn. Holds outPoll's handle.
 */
napi_value fast_path_link(napi_env env, napi_callback_info info) {
  static const char *fn = "fastPathLink";
  napi_value argv[2];
  if (get_args(env, info, 2, argv, fn)) return NULL;
  lwt_poll *in = poll_from(env, argv[0], fn);
  if (!in) return NULL;
  lwt_poll *out = poll_from(env, argv[1], fn);
  if (!out) return NULL;
  if (!in->fast || in->fast->kind != FAST_IN || !out->fast || out->fast->kind != FAST_OUT) {
    throw_type(env, fn, "inPoll needs fastPathIn and outPoll fastPathOut attached first");
    return NULL;
  }
  if (in->fast->next) { throw_range(env, fn, "inPoll is linked already"); return NULL; }
  if (fast_keep(env, in->fast, argv[1], fn)) return NULL;
  in->fast->next = out;
  return NULL;
}

/* fastLayout() -> { cfg: string[], peerWords, sessWords, ringWords, inCap }: the C side of the shared layout, for a test to compare. */
napi_value fast_layout(napi_env env, napi_callback_info info) {
  (void)info;
  static const char *names[] = {
#define FAST_CFG_NAME(id, name) name,
    FAST_CFG_LIST(FAST_CFG_NAME)
  };
  napi_value out, arr, v;
  if (napi_create_object(env, &out) != napi_ok || napi_create_array_with_length(env, FC_WORDS, &arr) != napi_ok) return NULL;
  for (uint32_t i = 0; i < FC_WORDS; i++) {
    if (napi_create_string_utf8(env, names[i], NAPI_AUTO_LENGTH, &v) != napi_ok || napi_set_element(env, arr, i, v) != napi_ok) return NULL;
  }
  napi_set_named_property(env, out, "cfg", arr);
  napi_set_named_property(env, out, "peerWords", make_int(env, FP_WORDS));
  napi_set_named_property(env, out, "sessWords", make_int(env, FS_WORDS));
  napi_set_named_property(env, out, "ringWords", make_int(env, FR_WORDS));
  napi_set_named_property(env, out, "inCap", make_int(env, FAST_IN_CAP));
  return out;
}
