/*
 * udp: the UDP socket bindings (udp.c): open, close, batched recvmmsg and
 * sendmmsg, GSO send (UDP_SEGMENT), GRO receive (UDP_GRO), one datagram
 * with or without a per-packet TTL (or IPv6 hop limit). Addresses are a
 * host-order uint32 plus a port; an AF_INET6 socket maps them through
 * addr6.c (v4-mapped IPv4, 0xFE000000|i handles into the IPv6 table).
 */
#ifndef LWT_UDP_H
#define LWT_UDP_H

#include <node_api.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/* An IPv4 socket address from a host-order address and port (AF_INET only; addr6.c's lwt_ep_sockaddr serves both families). */
static inline void set_sockaddr(struct sockaddr_in *sa, uint32_t ip, uint32_t port) {
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_addr.s_addr = htonl(ip);
  sa->sin_port = htons((uint16_t)port);
}

/* Frees this thread's mmsg scratch (module.c, when the thread's last env goes). */
void udp_thread_free(void);

/* Bindings. */
napi_value udp_open(napi_env env, napi_callback_info info);
napi_value fd_close(napi_env env, napi_callback_info info);
napi_value udp_recv_batch(napi_env env, napi_callback_info info);
napi_value udp_send_batch(napi_env env, napi_callback_info info);
napi_value udp_send_batch_gso(napi_env env, napi_callback_info info);
napi_value udp_send_to(napi_env env, napi_callback_info info);
napi_value udp_send_to_ttl(napi_env env, napi_callback_info info);
napi_value udp_set_gro(napi_env env, napi_callback_info info);
napi_value udp_recv_gro(napi_env env, napi_callback_info info);

#endif
