/*
 * addr6: endpoints of either family on the UDP socket, and the IPv6 address
 * table (docs/ARCHITECTURE.md "IPv6 outside"; layout shared with
 * src/dataplane/v6-table.ts, which is the table's other writer).
 *
 * Endpoints stay a host-order uint32 plus a port everywhere above this file.
 * A socket opened AF_INET6 (udpOpen with an IPv6 or "::" host) is registered
 * here; for it an IPv4 endpoint travels as ::ffff:a.b.c.d, and a u32 of the
 * form 0xFE000000|i (src/wire/endpoint-handle.ts) names entry i of the table
 * attached to the socket (udpAttachV6Table). On receive, a v4-mapped source
 * becomes the plain u32 at once; another IPv6 source is looked up in the
 * table (hash index, no allocation) and, if absent, added as an unpinned
 * entry (recycled later); a full table gives 0:0 and counts a miss.
 */
#ifndef LWT_ADDR6_H
#define LWT_ADDR6_H

#include <node_api.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* A registered socket: its family and its table (NULL: none attached). */
typedef struct lwt_sock { int fd; int is6; uint8_t *table; size_t tableLen; } lwt_sock;

/* Socket address storage big enough for either family (the mmsg scratch holds these). */
typedef union { struct sockaddr sa; struct sockaddr_in v4; struct sockaddr_in6 v6; } lwt_sockaddr;

/*
 * A numeric bind address: host (IPv4 or IPv6 text) and port into *sa, its length in *len, and *is6.
 * Returns 0; -1 after throwing a RangeError from fn naming the host (not an address of either family).
 */
int lwt_bind_sockaddr(napi_env env, const char *fn, const char *host, int64_t port, lwt_sockaddr *sa, socklen_t *len, int *is6);

/* The registration of fd, or NULL for a plain AF_INET socket (the common, unchanged case). */
const lwt_sock *lwt_sock_get(int fd);
void lwt_sock_register(int fd, int is6);
void lwt_sock_forget(int fd);

/* Fills *out for endpoint ip:port on socket s (NULL: AF_INET). Returns the address length, 0 when ip is a handle that does not resolve. */
socklen_t lwt_ep_sockaddr(const lwt_sock *s, uint32_t ip, uint32_t port, lwt_sockaddr *out);
/* The endpoint of a received source address; 0:0 when it has none (or the table is full). */
void lwt_ep_from(const lwt_sock *s, const lwt_sockaddr *sa, socklen_t len, uint32_t *ip, uint32_t *port);

/* Table primitives (also used by testing.c): lookup without adding (-1: absent), resolve a handle's 16 bytes. */
int64_t lwt_v6_lookup(uint8_t *table, const uint8_t addr[16]);
int lwt_v6_resolve(uint8_t *table, uint32_t index, uint8_t addr[16]);
int64_t lwt_v6_intern(uint8_t *table, const uint8_t addr[16]);

/* udpAttachV6Table(fd, mem): the socket resolves handles through mem (a v6-table.ts SharedArrayBuffer view). */
napi_value udp_attach_v6_table(napi_env env, napi_callback_info info);

#endif
