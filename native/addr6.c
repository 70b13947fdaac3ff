/*
 * addr6: the socket registry, endpoint <-> sockaddr for both families, and
 * the IPv6 address table's readers (and its receive-side writer).
 *
 * Table layout (bytes; src/dataplane/v6-table.ts holds the same constants):
 *   header, 16 int32 words: [0] writer lock (0 free, 1 held: CAS), [1]
 *     capacity, [2] bucket count (power of two), [3] hash seed, [4] misses
 *     (a source that could not be added: table full), [5] recycled entries,
 *     [6] allocation cursor, [7] entries added by the receive path
 *   entries at 64, capacity x 32 bytes: address (16), seq (u32, odd while
 *     being written: a seqlock), flags (USED 1, PINNED 2, FREED 4), stamp
 *     (monotonic seconds when made, unpinned or freed), spare
 *   index at 64 + capacity*32: buckets x 4 uint32, entry index + 1 (0 empty)
 *
 * Writers (the control plane on the main thread, the inbound pipeline here
 * on a miss) take the lock; readers on any thread never lock: they read an
 * entry's seq, its bytes, then seq again, and treat any change as a miss, so
 * a half-written entry is never seen. An unpinned entry is recycled only
 * when older than REUSE_GUARD_S, so a handle a worker still holds keeps
 * naming the same address for that long.
 */
#include "addr6.h"
#include "napi_util.h"

#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <stdio.h>

#define V6_HDR 64
#define V6_ENTRY 32
#define V6_WAYS 4
#define W_LOCK 0
#define W_CAP 1
#define W_BUCKETS 2
#define W_SEED 3
#define W_MISS 4
#define W_RECYCLED 5
#define W_CURSOR 6
#define W_ADDED 7
#define F_USED 1u
#define F_PINNED 2u
#define F_FREED 4u
#define E_SEQ 16
#define E_FLAGS 20
#define E_STAMP 24
/* Seconds before an unpinned or freed entry may name another address. */
#define REUSE_GUARD_S 10u
/* Entries examined per allocation before giving up (bounded work under a flood of new sources). */
#define ALLOC_SCAN 64
#define HANDLE_V6 0xFE000000u

/* Sockets registered by udpOpen (AF_INET6) or udpAttachV6Table. Written on the main thread at open/close only. */
#define MAX_SOCKS 32
static lwt_sock gSocks[MAX_SOCKS];
static int gSockCount;

const lwt_sock *lwt_sock_get(int fd) {
  int n = __atomic_load_n(&gSockCount, __ATOMIC_ACQUIRE);
  for (int i = 0; i < n; i++) {
    if (__atomic_load_n(&gSocks[i].fd, __ATOMIC_ACQUIRE) == fd) return &gSocks[i];
  }
  return NULL;
}

static lwt_sock *sock_slot(int fd) {
  lwt_sock *s = (lwt_sock *)lwt_sock_get(fd);
  if (s) return s;
  for (int i = 0; i < gSockCount; i++) {
    if (gSocks[i].fd == -1) { gSocks[i].is6 = 0; gSocks[i].table = NULL; __atomic_store_n(&gSocks[i].fd, fd, __ATOMIC_RELEASE); return &gSocks[i]; }
  }
  if (gSockCount == MAX_SOCKS) return NULL;
  s = &gSocks[gSockCount];
  s->fd = fd; s->is6 = 0; s->table = NULL;
  __atomic_store_n(&gSockCount, gSockCount + 1, __ATOMIC_RELEASE);
  return s;
}

void lwt_sock_register(int fd, int is6) {
  lwt_sock *s = sock_slot(fd);
  if (s) s->is6 = is6;
}

void lwt_sock_forget(int fd) {
  lwt_sock *s = (lwt_sock *)lwt_sock_get(fd);
  if (s) { s->table = NULL; s->is6 = 0; __atomic_store_n(&s->fd, -1, __ATOMIC_RELEASE); }
}

/* ------------------------------------------------------------------ */
/* The table                                                           */
/* ------------------------------------------------------------------ */

static inline int32_t *words(uint8_t *t) { return (int32_t *)t; }
static inline uint8_t *entry(uint8_t *t, uint32_t i) { return t + V6_HDR + (size_t)i * V6_ENTRY; }
static inline uint32_t *eword(uint8_t *t, uint32_t i, int off) { return (uint32_t *)(entry(t, i) + off); }
static inline uint32_t *bucket(uint8_t *t, uint32_t b) {
  return (uint32_t *)(t + V6_HDR + (size_t)words(t)[W_CAP] * V6_ENTRY) + (size_t)b * V6_WAYS;
}

static uint32_t v6_hash(uint32_t seed, const uint8_t a[16]) {
  uint32_t h = seed;
  for (int k = 0; k < 16; k += 4) {
    uint32_t w;
    memcpy(&w, a + k, 4);
    h ^= w;
    h *= 0x9E3779B1u;
    h ^= h >> 15;
  }
  /* murmur3's finaliser: every input bit reaches the low bits that pick the bucket. */
  h ^= h >> 16;
  h *= 0x85EBCA6Bu;
  h ^= h >> 13;
  h *= 0xC2B2AE35u;
  h ^= h >> 16;
  return h;
}

static uint32_t mono_sec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint32_t)ts.tv_sec;
}

/* Copies entry i's address if it is in use and was not rewritten meanwhile. */
static int read_entry(uint8_t *t, uint32_t i, uint8_t out[16]) {
  uint32_t s1 = __atomic_load_n(eword(t, i, E_SEQ), __ATOMIC_ACQUIRE);
  if (s1 & 1) return 0;
  uint32_t fl = __atomic_load_n(eword(t, i, E_FLAGS), __ATOMIC_RELAXED);
  memcpy(out, entry(t, i), 16);
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  uint32_t s2 = __atomic_load_n(eword(t, i, E_SEQ), __ATOMIC_RELAXED);
  return s1 == s2 && (fl & F_USED);
}

int64_t lwt_v6_lookup(uint8_t *t, const uint8_t addr[16]) {
  uint32_t cap = (uint32_t)words(t)[W_CAP], nb = (uint32_t)words(t)[W_BUCKETS];
  uint32_t *b = bucket(t, v6_hash((uint32_t)words(t)[W_SEED], addr) & (nb - 1));
  for (int k = 0; k < V6_WAYS; k++) {
    uint32_t v = __atomic_load_n(&b[k], __ATOMIC_ACQUIRE);
    if (v == 0 || v > cap) continue;
    uint8_t got[16];
    if (read_entry(t, v - 1, got) && memcmp(got, addr, 16) == 0) return v - 1;
  }
  return -1;
}

int lwt_v6_resolve(uint8_t *t, uint32_t index, uint8_t addr[16]) {
  if (index >= (uint32_t)words(t)[W_CAP]) return 0;
  return read_entry(t, index, addr);
}

static void lock(uint8_t *t) {
  int32_t zero = 0;
  while (!__atomic_compare_exchange_n(&words(t)[W_LOCK], &zero, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) zero = 0;
}
static void unlock(uint8_t *t) { __atomic_store_n(&words(t)[W_LOCK], 0, __ATOMIC_RELEASE); }

/* Adds addr as an unpinned entry (the receive path). Index, or -1 when no entry or bucket way is free. */
int64_t lwt_v6_intern(uint8_t *t, const uint8_t addr[16]) {
  lock(t);
  int64_t found = lwt_v6_lookup(t, addr);
  if (found >= 0) { unlock(t); return found; }
  uint32_t cap = (uint32_t)words(t)[W_CAP], nb = (uint32_t)words(t)[W_BUCKETS], now = mono_sec();
  uint32_t *b = bucket(t, v6_hash((uint32_t)words(t)[W_SEED], addr) & (nb - 1));
  int way = -1;
  for (int k = 0; k < V6_WAYS && way < 0; k++) if (b[k] == 0) way = k;
  int64_t victim = -1;
  uint32_t cur = (uint32_t)words(t)[W_CURSOR];
  for (int n = 0; way >= 0 && n < ALLOC_SCAN && n < (int)cap; n++) {
    uint32_t i = (cur + (uint32_t)n) % cap;
    uint32_t fl = *eword(t, i, E_FLAGS), st = *eword(t, i, E_STAMP);
    if (fl == 0 || (!(fl & F_PINNED) && now - st >= REUSE_GUARD_S)) { victim = i; cur = i + 1; break; }
  }
  if (victim < 0) { __atomic_fetch_add(&words(t)[W_MISS], 1, __ATOMIC_RELAXED); unlock(t); return -1; }
  uint32_t i = (uint32_t)victim;
  uint32_t fl = *eword(t, i, E_FLAGS);
  if (fl & F_USED) {
    /* Unhook the old address from its bucket first: readers then miss it instead of seeing the new bytes under it. */
    uint32_t *ob = bucket(t, v6_hash((uint32_t)words(t)[W_SEED], entry(t, i)) & (nb - 1));
    for (int k = 0; k < V6_WAYS; k++) if (ob[k] == i + 1) __atomic_store_n(&ob[k], 0, __ATOMIC_RELEASE);
    __atomic_fetch_add(&words(t)[W_RECYCLED], 1, __ATOMIC_RELAXED);
    way = -1;
    for (int k = 0; k < V6_WAYS && way < 0; k++) if (b[k] == 0) way = k;
  }
  uint32_t *seq = eword(t, i, E_SEQ);
  __atomic_store_n(seq, *seq + 1, __ATOMIC_RELEASE);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  memcpy(entry(t, i), addr, 16);
  *eword(t, i, E_FLAGS) = F_USED;
  *eword(t, i, E_STAMP) = now;
  __atomic_store_n(seq, *seq + 1, __ATOMIC_RELEASE);
  __atomic_store_n(&b[way], i + 1, __ATOMIC_RELEASE);
  words(t)[W_CURSOR] = (int32_t)(cur % cap);
  __atomic_fetch_add(&words(t)[W_ADDED], 1, __ATOMIC_RELAXED);
  unlock(t);
  return i;
}

/* ------------------------------------------------------------------ */
/* Endpoints                                                           */
/* ------------------------------------------------------------------ */

socklen_t lwt_ep_sockaddr(const lwt_sock *s, uint32_t ip, uint32_t port, lwt_sockaddr *out) {
  memset(out, 0, sizeof out->v6);
  if (!s || !s->is6) {
    if ((ip >> 28) == 0xF) return 0; /* a handle: no IPv4 address */
    out->v4.sin_family = AF_INET;
    out->v4.sin_addr.s_addr = htonl(ip);
    out->v4.sin_port = htons((uint16_t)port);
    return sizeof out->v4;
  }
  out->v6.sin6_family = AF_INET6;
  out->v6.sin6_port = htons((uint16_t)port);
  if ((ip & 0xFF000000u) == HANDLE_V6) {
    if (!s->table || !lwt_v6_resolve(s->table, ip & 0x00FFFFFFu, out->v6.sin6_addr.s6_addr)) return 0;
  } else if ((ip >> 28) == 0xF) {
    return 0;
  } else {
    uint8_t *a = out->v6.sin6_addr.s6_addr;
    a[10] = 0xff; a[11] = 0xff;
    uint32_t n = htonl(ip);
    memcpy(a + 12, &n, 4);
  }
  return sizeof out->v6;
}

void lwt_ep_from(const lwt_sock *s, const lwt_sockaddr *sa, socklen_t len, uint32_t *ip, uint32_t *port) {
  *ip = 0;
  *port = 0;
  if (len >= sizeof sa->v4 && sa->sa.sa_family == AF_INET) {
    *ip = ntohl(sa->v4.sin_addr.s_addr);
    *port = ntohs(sa->v4.sin_port);
    return;
  }
  if (len < sizeof sa->v6 || sa->sa.sa_family != AF_INET6) return;
  const uint8_t *a = sa->v6.sin6_addr.s6_addr;
  if (IN6_IS_ADDR_V4MAPPED(&sa->v6.sin6_addr)) {
    uint32_t n;
    memcpy(&n, a + 12, 4);
    *ip = ntohl(n);
    *port = ntohs(sa->v6.sin6_port);
    return;
  }
  if (!s || !s->table) return;
  int64_t i = lwt_v6_lookup(s->table, a);
  if (i < 0) i = lwt_v6_intern(s->table, a);
  if (i < 0) return;
  *ip = HANDLE_V6 | (uint32_t)i;
  *port = ntohs(sa->v6.sin6_port);
}

/* udpAttachV6Table(fd, mem). mem must stay alive as long as the socket is open (the daemon owns both). */
napi_value udp_attach_v6_table(napi_env env, napi_callback_info info) {
  static const char *fn = "udpAttachV6Table";
  int fd;
  uint8_t *mem;
  size_t len;
  if (PARSE_ARGS(env, info, fn, ARG_FD(&fd), ARG_U8("mem", &mem, &len))) return NULL;
  int32_t cap = len >= V6_HDR ? ((int32_t *)mem)[W_CAP] : 0, nb = len >= V6_HDR ? ((int32_t *)mem)[W_BUCKETS] : 0;
  if (cap <= 0 || nb <= 0 || (nb & (nb - 1)) != 0 ||
      len < V6_HDR + (size_t)cap * V6_ENTRY + (size_t)nb * V6_WAYS * 4 || ((uintptr_t)mem & 3) != 0) {
    throw_range(env, fn, "mem is not an IPv6 address table (v6-table.ts layout)");
    return NULL;
  }
  lwt_sock *s = (lwt_sock *)lwt_sock_get(fd);
  if (!s) { lwt_sock_register(fd, 0); s = (lwt_sock *)lwt_sock_get(fd); }
  if (!s) { throw_range(env, fn, "too many registered sockets"); return NULL; }
  s->table = mem;
  s->tableLen = len;
  return NULL;
}

int lwt_bind_sockaddr(napi_env env, const char *fn, const char *host, int64_t port, lwt_sockaddr *sa, socklen_t *len, int *is6) {
  memset(sa, 0, sizeof *sa);
  *is6 = 0;
  if (inet_pton(AF_INET, host, &sa->v4.sin_addr) == 1) {
    sa->v4.sin_family = AF_INET;
    sa->v4.sin_port = htons((uint16_t)port);
    *len = sizeof sa->v4;
    return 0;
  }
  if (inet_pton(AF_INET6, host, &sa->v6.sin6_addr) == 1) {
    sa->v6.sin6_family = AF_INET6;
    sa->v6.sin6_port = htons((uint16_t)port);
    *len = sizeof sa->v6;
    *is6 = 1;
    return 0;
  }
  char what[128];
  snprintf(what, sizeof what, "host \"%s\" is not an IPv4 or IPv6 address", host);
  throw_range(env, fn, what);
  return -1;
}
