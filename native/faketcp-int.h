/*
 * faketcp-int: what faketcp.c (the flow table, raw sockets, the handshake's numbers) and
 * faketcp-packet.c (the AF_PACKET superpacket path) share: the flow record, the table and its
 * lock, the header builder. Not part of the addon's interface (faketcp.h is).
 */
#ifndef LWT_FAKETCP_INT_H
#define LWT_FAKETCP_INT_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/filter.h>

#define FT_MAX 4096           /* flows in the table (a server's clients on fake TCP, plus slack for re-SYNs) */
#define FT_HASH 8192          /* hash slots: a power of two, twice FT_MAX */
#define FT_CHUNK 256          /* segments per sendmmsg / recvmmsg */
#define FT_HDR 52             /* IPv4 (20) + TCP (20) + NOP NOP TS (12) */
#define FT_WINDOW 0xffff      /* the window field; with window scale 9 (faketcp-flow.ts) 32 MiB */
#define FT_ACK_EVERY (4u << 20) /* bytes received without sending before a pure ACK (well inside the window) */
#define FT_MAX_SEG 65535
#define FT_INFO_SEGS 0        /* info words of ftcpRecv (as udpRecvGro's): segments received by the last call */
#define FT_INFO_DROPPED 2     /* cumulative: malformed segments and packets beyond `max` */
#define FT_INFO_UNKNOWN 3     /* cumulative: segments of no known flow */

typedef struct {
  uint32_t rip, lip;          /* remote and local IPv4 (host order) */
  uint32_t seq;               /* next sequence number we send */
  uint32_t ack;               /* highest sequence end received (our ack) */
  uint32_t ackSent;           /* the ack our last segment carried */
  uint32_t tsRecent;          /* the peer's last TSval (our TSecr) */
  uint16_t rport, lport, ipId;
  int fd;                     /* the raw socket sending for this flow */
  int pfd;                    /* the link's packet socket (faketcp-packet.c), -1: none */
  int ifindex;                /* the next hop, learned from received frames (l2): device ... */
  uint8_t mac[6];             /* ... its MAC ... */
  uint8_t smac[6];            /* ... and ours on that device */
  uint8_t l2;                 /* ifindex and mac known: data leaves through pfd */
  uint8_t used, up;           /* allocated; handshake done (data may flow) */
  double rxPackets, rxBytes, txPackets, txBytes;
  int64_t lastRxMs;           /* monotonic ms of the last segment received (0: never) */
} ft_flow;

extern ft_flow ft_flows[FT_MAX];
extern pthread_mutex_t ft_mu;

int64_t ft_now_ms(void);
/* The flow index of a key, or -1. Under ft_mu. */
int32_t ft_lookup(uint32_t rip, uint16_t rport, uint16_t lport);
/* The flow of a handle, or NULL. Under ft_mu. */
ft_flow *ft_by_handle(uint32_t h);
/* Builds the segment header (FT_HDR bytes) for `plen` payload bytes and advances the flow by one segment. Under ft_mu. */
void ft_build_hdr(ft_flow *f, uint8_t *hdr, size_t plen, int flags);
/* A received IPv4 data segment of n bytes at p: 0 and its IP header, total and TCP header lengths, or -1 (malformed: too short, not IPv4, lengths that do not add up, no payload). */
int ft_seg_lens(const uint8_t *p, size_t n, size_t *ihl, size_t *tot, size_t *doff);
/* Flow f received `segs` segments carrying plen bytes from the one whose TCP header is tcp (doff bytes) at t: the ack, the peer's TSval, the counters. Under ft_mu. */
void ft_seg_took(ft_flow *f, const uint8_t *tcp, size_t doff, uint32_t plen, uint32_t segs, int64_t t);
/* A pure ACK on flow idx. Outside ft_mu. */
void ft_send_pure_ack(int32_t idx);
/* The classic BPF program of a link's socket (data or control); `pkt`: a packet socket's (the IP protocol checked, loads relative to the network header). */
int ft_filter_prog(struct sock_filter *p, int ctl, int client, uint32_t srcIp, uint32_t port, int proto);

/* ---- faketcp-packet.c ---- */

#define FTP_MAX_SEGS 64       /* segments per superpacket, at most */
#define FTP_MAX_PAYLOAD (65535 - 14 - FT_HDR) /* a superpacket's payload: its frame fits 64 KiB */

/* The packet socket paired with the link's raw socket `fd` (either of the two), -1: none. */
int ftp_pkt_of(int fd);
/* 1 when fd is a link's packet socket. */
int ftp_is_pkt(int fd);
/* Entries [i, i + k) that leave as one superpacket: the same endpoint, lens[i] each (the last may be shorter). */
size_t ftp_run(const uint32_t *addrs, const int32_t *lens, size_t i, size_t n, size_t maxLen, size_t maxSegs);
/*
 * ftcpRecv on a packet socket: the slots [base, base + total) of mem (from JS's layout) regrouped into 64 KiB
 * buffers, one recvmmsg, each packet's payload split by its gso_size into datagrams. Returns entries, or -errno.
 */
int64_t ftp_recv(int fd, uint8_t *mem, size_t total, int32_t base, int32_t nBufs, int32_t *offsets, int32_t *lens, uint32_t *addrs, int64_t max, int32_t *gi);
/* Sends the run's header (built for the whole payload) and payloads as one Ethernet frame (mac: destination, source); 1 when sent, 0 when not (counted; errno says why). */
int ftp_send(int pfd, int ifindex, const uint8_t mac[12], uint8_t *hdr, uint8_t *mem, const int32_t *offs, const int32_t *lens, size_t k, size_t plen);

#endif
