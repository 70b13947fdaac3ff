/*
 * lwt_native: the dataplane's syscalls and bulk crypto. No policy lives here.
 *
 * Owns: opening TUN devices and UDP sockets, watching fds on the calling
 * thread's libuv loop, batched TUN read/write, recvmmsg/sendmmsg, and
 * ChaCha20-Poly1305 seal/open in place (Node's own OpenSSL; the symbols
 * resolve against the node binary).
 *
 * Memory: every `mem` argument is a Uint8Array (normally over a
 * SharedArrayBuffer); offsets are byte offsets relative to the view's start.
 * All offsets and lengths of a batch are validated before any byte is touched:
 * misuse throws TypeError/RangeError instead of corrupting memory.
 *
 * Threads: the module is context-aware (NAPI_MODULE_INIT), so every
 * worker_thread loads its own instance. Cipher contexts and mmsg scratch are
 * per thread (__thread) and freed when the last env of that thread goes away.
 * A poll handle belongs to the loop of the thread that created it.
 *
 * Addresses: IPv4 only, as a host-order uint32 plus a port.
 */
#include <node_api.h>
#include <uv.h>
#include <openssl/evp.h>
#include "chacha20poly1305.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#define AEAD_KEY_LEN 32
#define AEAD_TAG_LEN 16
#define AEAD_NONCE_LEN 12
/* The 8-byte little-endian counter that forms the nonce sits at off+8..off+16. */
#define NONCE_CTR_OFF 8
#define MIN_AAD_LEN 16
/* recvmmsg/sendmmsg are called with at most this many messages (the kernel's UIO_MAXIOV). */
#define MMSG_CHUNK 1024

/* ------------------------------------------------------------------ */
/* Errors                                                              */
/* ------------------------------------------------------------------ */

static const char *errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case EBADF: return "EBADF";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENOTTY: return "ENOTTY";
    case ENOSPC: return "ENOSPC";
    case EPIPE: return "EPIPE";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOSYS: return "ENOSYS";
    case EBADFD: return "EBADFD";
    case ENOTSOCK: return "ENOTSOCK";
    case EDESTADDRREQ: return "EDESTADDRREQ";
    case EMSGSIZE: return "EMSGSIZE";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EADDRINUSE: return "EADDRINUSE";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENETDOWN: return "ENETDOWN";
    case ENETUNREACH: return "ENETUNREACH";
    case ECONNRESET: return "ECONNRESET";
    case ENOBUFS: return "ENOBUFS";
    case ENOTCONN: return "ENOTCONN";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EHOSTDOWN: return "EHOSTDOWN";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    default: return "EUNKNOWN";
  }
}

/* Throws Error{ code: 'E…', syscall, errno: -e } with message "<fn>: <syscall> failed: <strerror> (<CODE>)". */
static void throw_errno(napi_env env, int e, const char *fn, const char *syscall) {
  char msg[256];
  const char *code = errno_name(e);
  snprintf(msg, sizeof msg, "%s: %s failed: %s (%s)", fn, syscall, strerror(e), code);
  napi_value vcode, vmsg, err, vsys, verrno;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &vcode) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &vmsg) != napi_ok ||
      napi_create_error(env, vcode, vmsg, &err) != napi_ok) {
    napi_throw_error(env, code, msg);
    return;
  }
  if (napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &vsys) == napi_ok)
    napi_set_named_property(env, err, "syscall", vsys);
  if (napi_create_int32(env, -e, &verrno) == napi_ok)
    napi_set_named_property(env, err, "errno", verrno);
  napi_throw(env, err);
}

static void throw_type(napi_env env, const char *fn, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", fn, what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

static void throw_range(napi_env env, const char *fn, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", fn, what);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
}

/* Any napi failure that is not the caller's fault: keep a pending exception, else throw a generic one. */
static void throw_internal(napi_env env, const char *fn) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s: internal N-API failure", fn);
    napi_throw_error(env, "ERR_NATIVE_INTERNAL", msg);
  }
}

/* ------------------------------------------------------------------ */
/* Argument helpers: each returns 0 on success, -1 with an exception set */
/* ------------------------------------------------------------------ */

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, const char *fn) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) { throw_internal(env, fn); return -1; }
  /* Missing arguments read as undefined and fail their type check. */
  return 0;
}

/* An integral Number in [min, max]. */
static int get_int(napi_env env, napi_value v, const char *fn, const char *name, int64_t min, int64_t max, int64_t *out) {
  napi_valuetype t;
  char what[160];
  if (napi_typeof(env, v, &t) != napi_ok) { throw_internal(env, fn); return -1; }
  if (t != napi_number) {
    snprintf(what, sizeof what, "%s must be a number", name);
    throw_type(env, fn, what);
    return -1;
  }
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) { throw_internal(env, fn); return -1; }
  if (!(d >= (double)min && d <= (double)max) || d != (double)(int64_t)d) {
    snprintf(what, sizeof what, "%s must be an integer in [%lld, %lld]", name, (long long)min, (long long)max);
    throw_range(env, fn, what);
    return -1;
  }
  *out = (int64_t)d;
  return 0;
}

static int get_fd(napi_env env, napi_value v, const char *fn, int *fd) {
  int64_t x;
  if (get_int(env, v, fn, "fd", 0, INT32_MAX, &x)) return -1;
  *fd = (int)x;
  return 0;
}

static int get_bool(napi_env env, napi_value v, const char *fn, const char *name, bool *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) { throw_internal(env, fn); return -1; }
  if (t != napi_boolean) {
    char what[128];
    snprintf(what, sizeof what, "%s must be a boolean", name);
    throw_type(env, fn, what);
    return -1;
  }
  if (napi_get_value_bool(env, v, out) != napi_ok) { throw_internal(env, fn); return -1; }
  return 0;
}

/* A string of at most maxLen UTF-8 bytes without NUL, copied into buf (size > maxLen). */
static int get_string(napi_env env, napi_value v, const char *fn, const char *name, char *buf, size_t maxLen, size_t *lenOut) {
  napi_valuetype t;
  char what[160];
  if (napi_typeof(env, v, &t) != napi_ok) { throw_internal(env, fn); return -1; }
  if (t != napi_string) {
    snprintf(what, sizeof what, "%s must be a string", name);
    throw_type(env, fn, what);
    return -1;
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) { throw_internal(env, fn); return -1; }
  if (len > maxLen) {
    snprintf(what, sizeof what, "%s is %zu bytes long; at most %zu are allowed", name, len, maxLen);
    throw_range(env, fn, what);
    return -1;
  }
  if (napi_get_value_string_utf8(env, v, buf, maxLen + 1, &len) != napi_ok) { throw_internal(env, fn); return -1; }
  if (strlen(buf) != len) {
    snprintf(what, sizeof what, "%s must not contain a NUL character", name);
    throw_range(env, fn, what);
    return -1;
  }
  if (lenOut) *lenOut = len;
  return 0;
}

/* A typed array of the wanted kind; data points at the view's first element. */
static int get_ta(napi_env env, napi_value v, napi_typedarray_type want, const char *fn, const char *name, void **data, size_t *len) {
  static const char *kind[] = {
    [napi_int8_array] = "Int8Array", [napi_uint8_array] = "Uint8Array",
    [napi_uint8_clamped_array] = "Uint8ClampedArray", [napi_int16_array] = "Int16Array",
    [napi_uint16_array] = "Uint16Array", [napi_int32_array] = "Int32Array",
    [napi_uint32_array] = "Uint32Array", [napi_float32_array] = "Float32Array",
    [napi_float64_array] = "Float64Array", [napi_bigint64_array] = "BigInt64Array",
    [napi_biguint64_array] = "BigUint64Array",
  };
  bool is = false;
  char what[160];
  if (napi_is_typedarray(env, v, &is) != napi_ok) { throw_internal(env, fn); return -1; }
  napi_typedarray_type type = napi_int8_array;
  void *p = NULL;
  size_t n = 0;
  if (is && napi_get_typedarray_info(env, v, &type, &n, &p, NULL, NULL) != napi_ok) { throw_internal(env, fn); return -1; }
  if (!is || type != want) {
    snprintf(what, sizeof what, "%s must be a %s", name, kind[want]);
    throw_type(env, fn, what);
    return -1;
  }
  *data = p;
  *len = n;
  return 0;
}

static napi_value make_int(napi_env env, int64_t x) {
  napi_value v = NULL;
  napi_create_int64(env, x, &v);
  return v;
}

/*
 * Checks a batch of slots: for i < n, offsets[i] >= 0, lens (or cap) >= 0 and
 * offsets[i] + len <= memLen. lens == NULL means every slot has length cap.
 */
static int check_slots(napi_env env, const char *fn, size_t memLen, const int32_t *offsets, const int32_t *lens, int64_t cap, int64_t n) {
  char what[200];
  for (int64_t i = 0; i < n; i++) {
    int64_t off = offsets[i];
    int64_t len = lens ? lens[i] : cap;
    if (off < 0 || len < 0 || off + len > (int64_t)memLen) {
      snprintf(what, sizeof what, "slot %lld (offset %lld, length %lld) is outside mem (%zu bytes)",
               (long long)i, (long long)off, (long long)len, memLen);
      throw_range(env, fn, what);
      return -1;
    }
  }
  return 0;
}

static int check_count(napi_env env, const char *fn, const char *arr, size_t have, int64_t need) {
  if ((int64_t)have < need) {
    char what[160];
    snprintf(what, sizeof what, "%s holds %zu entries but %lld are needed", arr, have, (long long)need);
    throw_range(env, fn, what);
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Per-thread state                                                    */
/* ------------------------------------------------------------------ */

typedef struct {
  EVP_CIPHER_CTX *ctx;
  unsigned char key[AEAD_KEY_LEN]; /* the key currently loaded in ctx */
  int haveKey;
} aead_state;

typedef struct {
  struct mmsghdr msgs[MMSG_CHUNK];
  struct iovec iov[MMSG_CHUNK];
  struct sockaddr_in sa[MMSG_CHUNK];
} mmsg_scratch;

static __thread aead_state tSeal, tOpen;
static __thread mmsg_scratch *tScratch;
static __thread int tEnvs; /* envs alive on this thread that loaded the module */
typedef struct gso_scratch_s gso_scratch; /* UDP GSO send scratch, defined with udpSendBatchGso */
static __thread gso_scratch *tGso;
typedef struct gro_rx_scratch_s gro_rx_scratch; /* UDP GRO receive scratch, defined with udpRecvGro */
static __thread gro_rx_scratch *tGroRx;

static void aead_state_free(aead_state *s) {
  if (s->ctx) EVP_CIPHER_CTX_free(s->ctx);
  memset(s, 0, sizeof *s);
}

static void thread_env_gone(napi_env env, void *data, void *hint) {
  (void)env; (void)data; (void)hint;
  if (--tEnvs > 0) return;
  aead_state_free(&tSeal);
  aead_state_free(&tOpen);
  free(tScratch);
  tScratch = NULL;
  free(tGso);
  tGso = NULL;
  free(tGroRx);
  tGroRx = NULL;
}

static mmsg_scratch *scratch(void) {
  if (!tScratch) tScratch = malloc(sizeof *tScratch);
  return tScratch;
}

/* ------------------------------------------------------------------ */
/* TUN                                                                 */
/* ------------------------------------------------------------------ */

/* tunOpen(name, multiQueue, exclusive) -> { fd, name } */
static napi_value tun_open(napi_env env, napi_callback_info info) {
  static const char *fn = "tunOpen";
  napi_value argv[3];
  char name[IFNAMSIZ];
  bool mq, excl;
  if (get_args(env, info, 3, argv, fn)) return NULL;
  if (get_string(env, argv[0], fn, "the TUN device name", name, IFNAMSIZ - 1, NULL)) return NULL;
  if (get_bool(env, argv[1], fn, "multiQueue", &mq)) return NULL;
  if (get_bool(env, argv[2], fn, "exclusive", &excl)) return NULL;

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) { throw_errno(env, errno, fn, "open"); return NULL; }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strlen(name));
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (mq ? IFF_MULTI_QUEUE : 0) | (excl ? IFF_TUN_EXCL : 0);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    throw_errno(env, e, fn, "ioctl(TUNSETIFF)");
    return NULL;
  }
  ifr.ifr_name[IFNAMSIZ - 1] = 0;
  napi_value res, vname;
  if (napi_create_object(env, &res) != napi_ok ||
      napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &vname) != napi_ok ||
      napi_set_named_property(env, res, "fd", make_int(env, fd)) != napi_ok ||
      napi_set_named_property(env, res, "name", vname) != napi_ok) {
    close(fd);
    throw_internal(env, fn);
    return NULL;
  }
  return res;
}

/* ifIndex(name) -> if_nametoindex(name), 0 when there is no such device. */
static napi_value if_index(napi_env env, napi_callback_info info) {
  static const char *fn = "ifIndex";
  napi_value argv[1];
  char name[64];
  if (get_args(env, info, 1, argv, fn)) return NULL;
  napi_valuetype t;
  if (napi_typeof(env, argv[0], &t) != napi_ok) { throw_internal(env, fn); return NULL; }
  if (t != napi_string) { throw_type(env, fn, "the device name must be a string"); return NULL; }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok) { throw_internal(env, fn); return NULL; }
  if (len == 0 || len >= IFNAMSIZ) return make_int(env, 0);
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok) { throw_internal(env, fn); return NULL; }
  if (strlen(name) != len) return make_int(env, 0);
  return make_int(env, if_nametoindex(name));
}

/*
 * tunReadBatch(fd, mem, offsets, lens, max, cap) -> n
 * read() one packet per slot until EAGAIN or max. Errors are thrown only when
 * nothing was read; otherwise the packets read so far are returned and the
 * error shows up on the next call.
 */
static napi_value tun_read_batch(napi_env env, napi_callback_info info) {
  static const char *fn = "tunReadBatch";
  napi_value argv[6];
  int fd;
  uint8_t *mem; int32_t *offsets, *lens;
  size_t memLen, nOff, nLens;
  int64_t max, cap;
  if (get_args(env, info, 6, argv, fn)) return NULL;
  if (get_fd(env, argv[0], fn, &fd)) return NULL;
  if (get_ta(env, argv[1], napi_uint8_array, fn, "mem", (void **)&mem, &memLen)) return NULL;
  if (get_ta(env, argv[2], napi_int32_array, fn, "offsets", (void **)&offsets, &nOff)) return NULL;
  if (get_ta(env, argv[3], napi_int32_array, fn, "lens", (void **)&lens, &nLens)) return NULL;
  if (get_int(env, argv[4], fn, "max", 0, INT32_MAX, &max)) return NULL;
  if (get_int(env, argv[5], fn, "cap", 0, INT32_MAX, &cap)) return NULL;
  if (check_count(env, fn, "offsets", nOff, max) || check_count(env, fn, "lens", nLens, max)) return NULL;
  if (check_slots(env, fn, memLen, offsets, NULL, cap, max)) return NULL;

  int64_t n = 0;
  while (n < max) {
    ssize_t r = read(fd, mem + offsets[n], (size_t)cap);
    if (r < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (e == EAGAIN || e == EWOULDBLOCK) break;
      if (n > 0) break;
      throw_errno(env, e, fn, "read");
      return NULL;
    }
    if (r == 0) break; /* not a TUN fd at EOF: nothing more will come */
    lens[n++] = (int32_t)r;
  }
  return make_int(env, n);
}

static int check_addrs(napi_env env, const char *fn, const uint32_t *addrs, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    if (addrs[2 * i + 1] > 65535) {
      char what[128];
      snprintf(what, sizeof what, "addrs[%lld] (port of datagram %lld) is %u, above 65535",
               (long long)(2 * i + 1), (long long)i, addrs[2 * i + 1]);
      throw_range(env, fn, what);
      return -1;
    }
  }
  return 0;
}

/*
 * The arguments every batch writer shares, after the fd:
 * (mem, offsets, lens[, addrs], n), type- and bounds-checked: each
 * [offsets[i], offsets[i] + lens[i]) lies inside mem, and addrs (when asked
 * for) holds n valid ip/port pairs. Returns nonzero with a JS exception set.
 */
typedef struct { uint8_t *mem; size_t memLen; int32_t *offsets, *lens; uint32_t *addrs; int64_t n; } packet_args;

static int get_packets(napi_env env, napi_value *argv, const char *fn, int withAddrs, packet_args *a) {
  size_t nOff, nLens, nAddrs = 0;
  a->addrs = NULL;
  if (get_ta(env, argv[0], napi_uint8_array, fn, "mem", (void **)&a->mem, &a->memLen)) return 1;
  if (get_ta(env, argv[1], napi_int32_array, fn, "offsets", (void **)&a->offsets, &nOff)) return 1;
  if (get_ta(env, argv[2], napi_int32_array, fn, "lens", (void **)&a->lens, &nLens)) return 1;
  if (withAddrs && get_ta(env, argv[3], napi_uint32_array, fn, "addrs", (void **)&a->addrs, &nAddrs)) return 1;
  if (get_int(env, argv[withAddrs ? 4 : 3], fn, "n", 0, INT32_MAX, &a->n)) return 1;
  if (check_count(env, fn, "offsets", nOff, a->n) || check_count(env, fn, "lens", nLens, a->n)) return 1;
  if (withAddrs && check_count(env, fn, "addrs", nAddrs, 2 * a->n)) return 1;
  if (check_slots(env, fn, a->memLen, a->offsets, a->lens, 0, a->n)) return 1;
  if (withAddrs && check_addrs(env, fn, a->addrs, a->n)) return 1;
  return 0;
}

/*
 * tunWriteBatch(fd, mem, offsets, lens, n) -> number written
 * A failed write (EAGAIN, EINVAL for a bad packet, EIO while the device is
 * down, ...) is skipped. Only EBADF (not an open fd) throws.
 */
static napi_value tun_write_batch(napi_env env, napi_callback_info info) {
  static const char *fn = "tunWriteBatch";
  napi_value argv[5];
  int fd;
  packet_args a;
  if (get_args(env, info, 5, argv, fn)) return NULL;
  if (get_fd(env, argv[0], fn, &fd)) return NULL;
  if (get_packets(env, argv + 1, fn, 0, &a)) return NULL;
  uint8_t *mem = a.mem; int32_t *offsets = a.offsets, *lens = a.lens; int64_t n = a.n;

  int64_t ok = 0;
  for (int64_t i = 0; i < n; i++) {
    ssize_t r;
    do r = write(fd, mem + offsets[i], (size_t)lens[i]); while (r < 0 && errno == EINTR);
    if (r >= 0) { ok++; continue; }
    if (errno == EBADF) { throw_errno(env, EBADF, fn, "write"); return NULL; }
  }
  return make_int(env, ok);
}

/* ------------------------------------------------------------------ */
/* UDP                                                                 */
/* ------------------------------------------------------------------ */

/* udpOpen(host, port, bufBytes) -> { fd, port } */
static napi_value udp_open(napi_env env, napi_callback_info info) {
  static const char *fn = "udpOpen";
  napi_value argv[3];
  char host[64];
  int64_t port, buf;
  if (get_args(env, info, 3, argv, fn)) return NULL;
  if (get_string(env, argv[0], fn, "host", host, sizeof host - 1, NULL)) return NULL;
  if (get_int(env, argv[1], fn, "port", 0, 65535, &port)) return NULL;
  if (get_int(env, argv[2], fn, "bufBytes", 0, INT32_MAX, &buf)) return NULL;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    char what[128];
    snprintf(what, sizeof what, "host \"%s\" is not a dotted-quad IPv4 address", host);
    throw_range(env, fn, what);
    return NULL;
  }

  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { throw_errno(env, errno, fn, "socket"); return NULL; }
  if (buf > 0) {
    int b = (int)buf;
    /* FORCE ignores net.core.[rw]mem_max but needs CAP_NET_ADMIN; the plain option is clamped. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &b, sizeof b) < 0)
      (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &b, sizeof b);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &b, sizeof b) < 0)
      (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &b, sizeof b);
  }
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    int e = errno;
    close(fd);
    throw_errno(env, e, fn, "bind");
    return NULL;
  }
  socklen_t sl = sizeof sa;
  if (getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
    int e = errno;
    close(fd);
    throw_errno(env, e, fn, "getsockname");
    return NULL;
  }
  napi_value res;
  if (napi_create_object(env, &res) != napi_ok ||
      napi_set_named_property(env, res, "fd", make_int(env, fd)) != napi_ok ||
      napi_set_named_property(env, res, "port", make_int(env, ntohs(sa.sin_port))) != napi_ok) {
    close(fd);
    throw_internal(env, fn);
    return NULL;
  }
  return res;
}

/* close(fd). EINTR counts as closed (Linux always releases the fd). */
static napi_value fd_close(napi_env env, napi_callback_info info) {
  static const char *fn = "close";
  napi_value argv[1];
  int fd;
  if (get_args(env, info, 1, argv, fn)) return NULL;
  if (get_fd(env, argv[0], fn, &fd)) return NULL;
  if (close(fd) < 0 && errno != EINTR) { throw_errno(env, errno, fn, "close"); return NULL; }
  return NULL;
}

/* The IPv4 source of a received datagram (host order), or 0:0 when it has none. */
/* An IPv4 socket address from a host-order address and port. */
static void set_sockaddr(struct sockaddr_in *sa, uint32_t ip, uint32_t port) {
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_addr.s_addr = htonl(ip);
  sa->sin_port = htons((uint16_t)port);
}

static void recv_source(const struct msghdr *h, const struct sockaddr_in *sa, uint32_t *ip, uint32_t *port) {
  int v4 = h->msg_namelen >= sizeof(struct sockaddr_in) && sa->sin_family == AF_INET;
  *ip = v4 ? ntohl(sa->sin_addr.s_addr) : 0;
  *port = v4 ? ntohs(sa->sin_port) : 0;
}

/* Errors a recv can report for an earlier ICMP error; the call consumed it, so retry. */
static int transient_recv_error(int e) {
  return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH || e == EHOSTDOWN || e == ENETDOWN;
}

/*
 * udpRecvBatch(fd, mem, offsets, lens, addrs, max, cap) -> n
 * lens[i] = bytes, or -1 for a datagram truncated to cap (MSG_TRUNC).
 * addrs[2i] = source IPv4 (host order), addrs[2i+1] = source port.
 * Errors are thrown only when nothing was received.
 */
static napi_value udp_recv_batch(napi_env env, napi_callback_info info) {
  static const char *fn = "udpRecvBatch";
  napi_value argv[7];
  int fd;
  uint8_t *mem; int32_t *offsets, *lens; uint32_t *addrs;
  size_t memLen, nOff, nLens, nAddrs;
  int64_t max, cap;
  if (get_args(env, info, 7, argv, fn)) return NULL;
  if (get_fd(env, argv[0], fn, &fd)) return NULL;
  if (get_ta(env, argv[1], napi_uint8_array, fn, "mem", (void **)&mem, &memLen)) return NULL;
  if (get_ta(env, argv[2], napi_int32_array, fn, "offsets", (void **)&offsets, &nOff)) return NULL;
  if (get_ta(env, argv[3], napi_int32_array, fn, "lens", (void **)&lens, &nLens)) return NULL;
  if (get_ta(env, argv[4], napi_uint32_array, fn, "addrs", (void **)&addrs, &nAddrs)) return NULL;
  if (get_int(env, argv[5], fn, "max", 0, INT32_MAX, &max)) return NULL;
  if (get_int(env, argv[6], fn, "cap", 0, INT32_MAX, &cap)) return NULL;
  if (check_count(env, fn, "offsets", nOff, max) || check_count(env, fn, "lens", nLens, max) ||
      check_count(env, fn, "addrs", nAddrs, 2 * max)) return NULL;
  if (check_slots(env, fn, memLen, offsets, NULL, cap, max)) return NULL;
  mmsg_scratch *s = max > 0 ? scratch() : NULL;
  if (max > 0 && !s) { throw_errno(env, ENOMEM, fn, "malloc"); return NULL; }

  int64_t got = 0;
  int retries = 0;
  while (got < max) {
    unsigned chunk = (unsigned)(max - got < MMSG_CHUNK ? max - got : MMSG_CHUNK);
    for (unsigned j = 0; j < chunk; j++) {
      s->iov[j].iov_base = mem + offsets[got + j];
      s->iov[j].iov_len = (size_t)cap;
      memset(&s->msgs[j], 0, sizeof s->msgs[j]);
      s->msgs[j].msg_hdr.msg_iov = &s->iov[j];
      s->msgs[j].msg_hdr.msg_iovlen = 1;
      s->msgs[j].msg_hdr.msg_name = &s->sa[j];
      s->msgs[j].msg_hdr.msg_namelen = sizeof s->sa[j];
    }
    int r = recvmmsg(fd, s->msgs, chunk, MSG_DONTWAIT, NULL);
    if (r < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (e == EAGAIN || e == EWOULDBLOCK) break;
      if (transient_recv_error(e) && ++retries < 8) continue;
      if (got > 0) break;
      throw_errno(env, e, fn, "recvmmsg");
      return NULL;
    }
    for (int j = 0; j < r; j++) {
      int64_t i = got + j;
      struct msghdr *h = &s->msgs[j].msg_hdr;
      lens[i] = (h->msg_flags & MSG_TRUNC) ? -1 : (int32_t)s->msgs[j].msg_len;
      recv_source(h, &s->sa[j], &addrs[2 * i], &addrs[2 * i + 1]);
    }
    got += r;
    if ((unsigned)r < chunk) break;
  }
  return make_int(env, got);
}

/*
 * udpSendBatch(fd, mem, offsets, lens, addrs, n) -> number sent
 * sendmmsg, looping over partial results. EAGAIN/ENOBUFS stop the batch;
 * any other per-datagram error skips that datagram. EBADF/ENOTSOCK throw.
 */
static napi_value udp_send_batch(napi_env env, napi_callback_info info) {
  static const char *fn = "udpSendBatch";
  napi_value argv[6];
  int fd;
  packet_args a;
  if (get_args(env, info, 6, argv, fn)) return NULL;
  if (get_fd(env, argv[0], fn, &fd)) return NULL;
  if (get_packets(env, argv + 1, fn, 1, &a)) return NULL;
  uint8_t *mem = a.mem; int32_t *offsets = a.offsets, *lens = a.lens; uint32_t *addrs = a.addrs; int64_t n = a.n;
  mmsg_scratch *s = n > 0 ? scratch() : NULL;
  if (n > 0 && !s) { throw_errno(env, ENOMEM, fn, "malloc"); return NULL; }

  int64_t sent = 0, base = 0;
  while (base < n) {
    unsigned chunk = (unsigned)(n - base < MMSG_CHUNK ? n - base : MMSG_CHUNK);
    for (unsigned j = 0; j < chunk; j++) {
      int64_t i = base + j;
      s->iov[j].iov_base = mem + offsets[i];
      s->iov[j].iov_len = (size_t)lens[i];
      memset(&s->sa[j], 0, sizeof s->sa[j]);
      s->sa[j].sin_family = AF_INET;
      s->sa[j].sin_addr.s_addr = htonl(addrs[2 * i]);
      s->sa[j].sin_port = htons((uint16_t)addrs[2 * i + 1]);
      memset(&s->msgs[j], 0, sizeof s->msgs[j]);
      s->msgs[j].msg_hdr.msg_iov = &s->iov[j];
      s->msgs[j].msg_hdr.msg_iovlen = 1;
      s->msgs[j].msg_hdr.msg_name = &s->sa[j];
      s->msgs[j].msg_hdr.msg_namelen = sizeof s->sa[j];
    }
    unsigned pos = 0;
    while (pos < chunk) {
      int r = sendmmsg(fd, s->msgs + pos, chunk - pos, MSG_DONTWAIT);
      if (r < 0) {
        int e = errno;
        if (e == EINTR) continue;
        if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) return make_int(env, sent);
        if (e == EBADF || e == ENOTSOCK || e == EFAULT) { throw_errno(env, e, fn, "sendmmsg"); return NULL; }
        pos++; /* this datagram failed (EPERM, ENETUNREACH, EMSGSIZE, ...): skip it */
        continue;
      }
      pos += (unsigned)r;
      sent += r;
    }
    base += chunk;
  }
  return make_int(env, sent);
}

/* udpSendTo(fd, buf, ip, port) -> bytes sent, or -errno. Throws only for bad arguments. */
static napi_value udp_send_to(napi_env env, napi_callback_info info) {
  static const char *fn = "udpSendTo";
  napi_value argv[4];
  int fd;
  uint8_t *buf;
  size_t len;
  int64_t ip, port;
  if (get_args(env, info, 4, argv, fn)) return NULL;
  if (get_fd(env, argv[0], fn, &fd)) return NULL;
  if (get_ta(env, argv[1], napi_uint8_array, fn, "buf", (void **)&buf, &len)) return NULL;
  if (get_int(env, argv[2], fn, "ip", 0, UINT32_MAX, &ip)) return NULL;
  if (get_int(env, argv[3], fn, "port", 0, 65535, &port)) return NULL;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl((uint32_t)ip);
  sa.sin_port = htons((uint16_t)port);
  ssize_t r;
  const void *data = len ? (const void *)buf : (const void *)"";
  do r = sendto(fd, data, len, MSG_DONTWAIT, (struct sockaddr *)&sa, sizeof sa);
  while (r < 0 && errno == EINTR);
  return make_int(env, r < 0 ? -(int64_t)errno : (int64_t)r);
}

/* ------------------------------------------------------------------ */
/* Poll: readability of an fd on the calling thread's libuv loop       */
/* ------------------------------------------------------------------ */

/*
 * Lifetime: the struct is freed when both the uv handle has closed (closed)
 * and the JS handle has been finalized (jsGone), whichever comes last. The
 * uv handle closes on pollStop or, if never stopped, at env teardown through
 * an async cleanup hook (so a worker can exit with a poll still active).
 */
/* A lone-packet fast path attached to a poll (native/fastpath.h); runs before the JS callback. */
typedef struct lwt_fast lwt_fast;
static int fast_run(lwt_fast *f);
static void fast_free(napi_env env, lwt_fast *f);

typedef struct {
  uv_poll_t h;
  napi_env env;
  napi_ref cb;
  lwt_fast *fast;
  napi_async_context actx;
  napi_async_cleanup_hook_handle hook;
  int stopping;
  int closed;
  int jsGone;
} lwt_poll;

static const napi_type_tag POLL_TAG = { 0x6c77745f706f6c6cULL, 0x9a1c5e0b7d3f2a61ULL };

static void poll_free_if_done(lwt_poll *p) {
  if (p->closed && p->jsGone) free(p);
}

static void poll_on_closed(uv_handle_t *h) {
  lwt_poll *p = (lwt_poll *)h->data;
  napi_env env = p->env;
  if (p->cb) napi_delete_reference(env, p->cb);
  fast_free(env, p->fast);
  p->fast = NULL;
  if (p->actx) napi_async_destroy(env, p->actx);
  p->cb = NULL;
  p->actx = NULL;
  if (p->hook) napi_remove_async_cleanup_hook(p->hook);
  p->hook = NULL;
  p->closed = 1;
  poll_free_if_done(p);
}

static void poll_close(lwt_poll *p) {
  if (p->stopping) return;
  p->stopping = 1;
  uv_close((uv_handle_t *)&p->h, poll_on_closed);
}

static void poll_on_teardown(napi_async_cleanup_hook_handle handle, void *arg) {
  (void)handle;
  poll_close((lwt_poll *)arg);
}

static void poll_on_finalize(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  lwt_poll *p = (lwt_poll *)data;
  p->jsGone = 1;
  poll_free_if_done(p);
}

static void poll_on_event(uv_poll_t *h, int status, int events) {
  (void)events;
  lwt_poll *p = (lwt_poll *)h->data;
  if (p->stopping) return;
  if (status >= 0 && p->fast && fast_run(p->fast)) return;
  napi_env env = p->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, result;
  if (napi_get_reference_value(env, p->cb, &cb) == napi_ok && cb != NULL && napi_get_global(env, &recv) == napi_ok) {
    napi_make_callback(env, p->actx, recv, cb, 0, NULL, &result);
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_value exc;
      if (napi_get_and_clear_last_exception(env, &exc) == napi_ok) napi_fatal_exception(env, exc);
    }
  }
  napi_close_handle_scope(env, scope);
  /*
   * On POLLERR libuv reports status < 0 and stops watching. The callback has
   * run (its read surfaces the error); watch again unless it stopped us, so a
   * transient socket error cannot stall the fd.
   */
  if (status < 0 && !p->stopping) uv_poll_start(&p->h, UV_READABLE, poll_on_event);
}

/* pollStart(fd, cb) -> opaque handle */
static napi_value poll_start(napi_env env, napi_callback_info info) {
  static const char *fn = "pollStart";
  napi_value argv[2];
  int fd;
  if (get_args(env, info, 2, argv, fn)) return NULL;
  if (get_fd(env, argv[0], fn, &fd)) return NULL;
  napi_valuetype t;
  if (napi_typeof(env, argv[1], &t) != napi_ok) { throw_internal(env, fn); return NULL; }
  if (t != napi_function) { throw_type(env, fn, "cb must be a function"); return NULL; }
  struct uv_loop_s *loop = NULL;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || !loop) { throw_internal(env, fn); return NULL; }

  lwt_poll *p = calloc(1, sizeof *p);
  if (!p) { throw_errno(env, ENOMEM, fn, "malloc"); return NULL; }
  p->env = env;
  int r = uv_poll_init(loop, &p->h, fd);
  if (r < 0) {
    free(p);
    throw_errno(env, -r, fn, "uv_poll_init");
    return NULL;
  }
  p->h.data = p;
  p->jsGone = 1; /* until the external exists, nothing else owns p */

  napi_value name, handle;
  if (napi_create_reference(env, argv[1], 1, &p->cb) != napi_ok ||
      napi_create_string_utf8(env, "lwt_native:poll", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &p->actx) != napi_ok ||
      napi_create_external(env, p, poll_on_finalize, NULL, &handle) != napi_ok) {
    throw_internal(env, fn);
    poll_close(p);
    return NULL;
  }
  p->jsGone = 0;
  if (napi_type_tag_object(env, handle, &POLL_TAG) != napi_ok ||
      napi_add_async_cleanup_hook(env, poll_on_teardown, p, &p->hook) != napi_ok) {
    throw_internal(env, fn);
    poll_close(p);
    return NULL;
  }
  r = uv_poll_start(&p->h, UV_READABLE, poll_on_event);
  if (r < 0) {
    poll_close(p);
    throw_errno(env, -r, fn, "uv_poll_start");
    return NULL;
  }
  return handle;
}

/* The poll behind a pollStart handle, or NULL with a TypeError thrown. */
static lwt_poll *poll_from(napi_env env, napi_value v, const char *fn) {
  napi_valuetype t;
  bool tagged = false;
  if (napi_typeof(env, v, &t) != napi_ok) { throw_internal(env, fn); return NULL; }
  if (t == napi_external && napi_check_object_type_tag(env, v, &POLL_TAG, &tagged) != napi_ok) {
    throw_internal(env, fn);
    return NULL;
  }
  if (!tagged) { throw_type(env, fn, "handle must be a handle returned by pollStart"); return NULL; }
  lwt_poll *p = NULL;
  if (napi_get_value_external(env, v, (void **)&p) != napi_ok || !p) { throw_internal(env, fn); return NULL; }
  return p;
}

/* pollStop(handle): stop watching and close. Idempotent. */
static napi_value poll_stop(napi_env env, napi_callback_info info) {
  static const char *fn = "pollStop";
  napi_value argv[1];
  if (get_args(env, info, 1, argv, fn)) return NULL;
  lwt_poll *p = poll_from(env, argv[0], fn);
  if (p) poll_close(p);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* AEAD: ChaCha20-Poly1305 (RFC 8439), in place                        */
/* ------------------------------------------------------------------ */

/* This thread's context for one direction, with `key` loaded. Returns NULL on an OpenSSL failure. */
static EVP_CIPHER_CTX *aead_ctx(aead_state *s, int enc, const unsigned char *key, const unsigned char *nonce) {
  if (!s->ctx) {
    s->ctx = EVP_CIPHER_CTX_new();
    if (!s->ctx) return NULL;
    if (EVP_CipherInit_ex(s->ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL, enc) != 1) {
      aead_state_free(s);
      return NULL;
    }
    s->haveKey = 0;
  }
  const unsigned char *k = NULL;
  if (!s->haveKey || memcmp(s->key, key, AEAD_KEY_LEN) != 0) k = key;
  if (EVP_CipherInit_ex(s->ctx, NULL, NULL, k, nonce, enc) != 1) {
    s->haveKey = 0;
    return NULL;
  }
  if (k) {
    memcpy(s->key, key, AEAD_KEY_LEN);
    s->haveKey = 1;
  }
  return s->ctx;
}

/*
 * Validates n descriptors [off, aadLen, len, keyOff]: aadLen >= 16 (the nonce
 * counter lives at off+8..off+16, inside the AAD), the whole region
 * off..off+aadLen+len(+16 for seal) inside mem, keyOff+32 <= keys length.
 */
static int check_desc(napi_env env, const char *fn, const int32_t *desc, int64_t n, size_t memLen, size_t keysLen, int sealing) {
  char what[220];
  for (int64_t i = 0; i < n; i++) {
    int64_t off = desc[4 * i], aad = desc[4 * i + 1], len = desc[4 * i + 2], keyOff = desc[4 * i + 3];
    int64_t end = off + aad + len + (sealing ? AEAD_TAG_LEN : 0);
    if (off < 0 || aad < MIN_AAD_LEN || len < 0 || end > (int64_t)memLen) {
      snprintf(what, sizeof what,
               "packet %lld [off %lld, aadLen %lld, %s %lld] is invalid: need aadLen >= %d and the packet%s inside mem (%zu bytes)",
               (long long)i, (long long)off, (long long)aad, sealing ? "ptLen" : "ctLen", (long long)len,
               MIN_AAD_LEN, sealing ? " plus its 16-byte tag" : "", memLen);
      throw_range(env, fn, what);
      return -1;
    }
    if (keyOff < 0 || keyOff + AEAD_KEY_LEN > (int64_t)keysLen) {
      snprintf(what, sizeof what, "packet %lld: keyOff %lld + 32 is outside keys (%zu bytes)",
               (long long)i, (long long)keyOff, keysLen);
      throw_range(env, fn, what);
      return -1;
    }
  }
  return 0;
}

/*
 * Packets up to this many bytes (plaintext) are sealed and opened by the
 * compact implementation in chacha20poly1305.h, larger ones by OpenSSL
 * (bench/micro aead rows: the crossover measured on this machine).
 */
#define AEAD_SMALL_MAX 192

static void make_nonce(unsigned char nonce[AEAD_NONCE_LEN], const uint8_t *pkt) {
  memset(nonce, 0, 4);
  memcpy(nonce + 4, pkt + NONCE_CTR_OFF, 8);
}

/*
 * Seal one packet: pt[0..len) encrypted in place, tag written at `tag`; the
 * AAD (transport header, nonce counter at aad+8) may live elsewhere than the
 * plaintext. Returns 0 only when OpenSSL fails.
 */
static int aead_seal_one(const uint8_t *key, const uint8_t *aad, size_t aadLen, uint8_t *pt, size_t len, uint8_t *tag) {
  unsigned char nonce[AEAD_NONCE_LEN];
  int outl = 0;
  make_nonce(nonce, aad);
  if (len <= AEAD_SMALL_MAX) {
    cp_seal(key, nonce, aad, aadLen, pt, len, tag);
    return 1;
  }
  EVP_CIPHER_CTX *ctx = aead_ctx(&tSeal, 1, key, nonce);
  if (!ctx ||
      EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int)aadLen) != 1 ||
      (len > 0 && EVP_EncryptUpdate(ctx, pt, &outl, pt, (int)len) != 1) ||
      EVP_EncryptFinal_ex(ctx, pt + len, &outl) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_LEN, tag) != 1) {
    tSeal.haveKey = 0;
    return 0;
  }
  return 1;
}

/* Open one packet: verify the tag over ct[0..len), decrypt in place. Returns 1 when authentic. */
static int aead_open_one(const uint8_t *key, const uint8_t *aad, size_t aadLen, uint8_t *ct, size_t len, const uint8_t *tagIn) {
  unsigned char nonce[AEAD_NONCE_LEN], tag[AEAD_TAG_LEN];
  int outl = 0;
  make_nonce(nonce, aad);
  if (len <= AEAD_SMALL_MAX) return cp_open(key, nonce, aad, aadLen, ct, len, tagIn);
  memcpy(tag, tagIn, AEAD_TAG_LEN);
  EVP_CIPHER_CTX *ctx = aead_ctx(&tOpen, 0, key, nonce);
  if (!ctx ||
      EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int)aadLen) != 1 ||
      (len > 0 && EVP_DecryptUpdate(ctx, ct, &outl, ct, (int)len) != 1) ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_LEN, tag) != 1) {
    tOpen.haveKey = 0;
    return 0;
  }
  return EVP_DecryptFinal_ex(ctx, ct + len, &outl) == 1;
}

/* aeadSealBatch(mem, desc, n, keys): desc [off, aadLen, ptLen, keyOff]; tag written after the ciphertext. */
static napi_value aead_seal_batch(napi_env env, napi_callback_info info) {
  static const char *fn = "aeadSealBatch";
  napi_value argv[4];
  uint8_t *mem, *keys; int32_t *desc;
  size_t memLen, nDesc, keysLen;
  int64_t n;
  if (get_args(env, info, 4, argv, fn)) return NULL;
  if (get_ta(env, argv[0], napi_uint8_array, fn, "mem", (void **)&mem, &memLen)) return NULL;
  if (get_ta(env, argv[1], napi_int32_array, fn, "desc", (void **)&desc, &nDesc)) return NULL;
  if (get_int(env, argv[2], fn, "n", 0, INT32_MAX / 4, &n)) return NULL;
  if (get_ta(env, argv[3], napi_uint8_array, fn, "keys", (void **)&keys, &keysLen)) return NULL;
  if (check_count(env, fn, "desc", nDesc, 4 * n)) return NULL;
  if (check_desc(env, fn, desc, n, memLen, keysLen, 1)) return NULL;

  for (int64_t i = 0; i < n; i++) {
    int32_t off = desc[4 * i], aadLen = desc[4 * i + 1], ptLen = desc[4 * i + 2], keyOff = desc[4 * i + 3];
    uint8_t *pkt = mem + off, *pt = pkt + aadLen;
    if (!aead_seal_one(keys + keyOff, pkt, (size_t)aadLen, pt, (size_t)ptLen, pt + ptLen)) {
      napi_throw_error(env, "ERR_NATIVE_CRYPTO", "aeadSealBatch: OpenSSL failed to seal a packet");
      return NULL;
    }
  }
  return NULL;
}

/* poly1305Blocks(key, msg) -> tag: Poly1305 of msg (a multiple of 16 bytes) with the compact implementation; for tests. */
static napi_value poly1305_blocks_js(napi_env env, napi_callback_info info) {
  static const char *fn = "poly1305Blocks";
  napi_value argv[2];
  uint8_t *key, *msg;
  size_t keyLen, msgLen;
  if (get_args(env, info, 2, argv, fn)) return NULL;
  if (get_ta(env, argv[0], napi_uint8_array, fn, "key", (void **)&key, &keyLen)) return NULL;
  if (get_ta(env, argv[1], napi_uint8_array, fn, "msg", (void **)&msg, &msgLen)) return NULL;
  if (keyLen != 32 || msgLen % 16 != 0) { throw_range(env, fn, "key must be 32 bytes and msg a multiple of 16"); return NULL; }
  cp_poly p;
  cp_poly_init(&p, key);
  cp_poly_blocks(&p, msg, msgLen / 16);
  void *out;
  napi_value ab, res;
  if (napi_create_arraybuffer(env, 16, &out, &ab) != napi_ok || napi_create_typedarray(env, napi_uint8_array, 16, ab, 0, &res) != napi_ok) {
    throw_internal(env, fn);
    return NULL;
  }
  cp_poly_finish(&p, out);
  return res;
}

/*
 * aeadOpenBatch(mem, desc, n, keys, results) -> number verified
 * desc [off, aadLen, ctLen incl. tag, keyOff]; results[i] = 1 when the tag
 * verified (plaintext in place), else 0 (also for ctLen < 16).
 */
static napi_value aead_open_batch(napi_env env, napi_callback_info info) {
  static const char *fn = "aeadOpenBatch";
  napi_value argv[5];
  uint8_t *mem, *keys; int32_t *desc, *results;
  size_t memLen, nDesc, keysLen, nRes;
  int64_t n;
  if (get_args(env, info, 5, argv, fn)) return NULL;
  if (get_ta(env, argv[0], napi_uint8_array, fn, "mem", (void **)&mem, &memLen)) return NULL;
  if (get_ta(env, argv[1], napi_int32_array, fn, "desc", (void **)&desc, &nDesc)) return NULL;
  if (get_int(env, argv[2], fn, "n", 0, INT32_MAX / 4, &n)) return NULL;
  if (get_ta(env, argv[3], napi_uint8_array, fn, "keys", (void **)&keys, &keysLen)) return NULL;
  if (get_ta(env, argv[4], napi_int32_array, fn, "results", (void **)&results, &nRes)) return NULL;
  if (check_count(env, fn, "desc", nDesc, 4 * n) || check_count(env, fn, "results", nRes, n)) return NULL;
  if (check_desc(env, fn, desc, n, memLen, keysLen, 0)) return NULL;

  int64_t ok = 0;
  for (int64_t i = 0; i < n; i++) {
    int32_t off = desc[4 * i], aadLen = desc[4 * i + 1], ctLen = desc[4 * i + 2], keyOff = desc[4 * i + 3];
    results[i] = 0;
    if (ctLen < AEAD_TAG_LEN) continue;
    size_t len = (size_t)ctLen - AEAD_TAG_LEN;
    uint8_t *pkt = mem + off, *ct = pkt + aadLen;
    if (aead_open_one(keys + keyOff, pkt, (size_t)aadLen, ct, len, ct + len)) { results[i] = 1; ok++; }
  }
  return make_int(env, ok);
}

/* ------------------------------------------------------------------ */
/* P2P: one datagram with a per-packet IP TTL (hole punching)          */
/* ------------------------------------------------------------------ */

/*
 * udpSendToTtl(fd, buf, ip, port, ttl) -> bytes sent, or -errno. The TTL
 * travels as IP_TTL ancillary data (ip(7)), so it applies to this datagram
 * only and never races with the workers' sends on the same socket. A
 * low-TTL first probe opens our own NAT's mapping without reaching (and
 * confusing) the peer's NAT: the conntrack-race guard of docs/NAT-TRAVERSAL.md.
 */
static napi_value udp_send_to_ttl(napi_env env, napi_callback_info info) {
  static const char *fn = "udpSendToTtl";
  napi_value argv[5];
  int fd;
  uint8_t *buf;
  size_t len;
  int64_t ip, port, ttl;
  if (get_args(env, info, 5, argv, fn)) return NULL;
  if (get_fd(env, argv[0], fn, &fd)) return NULL;
  if (get_ta(env, argv[1], napi_uint8_array, fn, "buf", (void **)&buf, &len)) return NULL;
  if (get_int(env, argv[2], fn, "ip", 0, UINT32_MAX, &ip)) return NULL;
  if (get_int(env, argv[3], fn, "port", 0, 65535, &port)) return NULL;
  if (get_int(env, argv[4], fn, "ttl", 1, 255, &ttl)) return NULL;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl((uint32_t)ip);
  sa.sin_port = htons((uint16_t)port);
  struct iovec iov;
  iov.iov_base = len ? (void *)buf : (void *)"";
  iov.iov_len = len;
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_name = &sa;
  msg.msg_namelen = sizeof sa;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_TTL;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  int t = (int)ttl;
  memcpy(CMSG_DATA(c), &t, sizeof t);
  ssize_t r;
  do r = sendmsg(fd, &msg, MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  return make_int(env, r < 0 ? -(int64_t)errno : (int64_t)r);
}

/* ------------------------------------------------------------------ */
/* UDP GSO send (UDP_SEGMENT)                                          */
/* ------------------------------------------------------------------ */

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
/* Segments per GSO send: the kernel's UDP_MAX_SEGMENTS is 64 on older kernels (128 since 6.x). */
#define GSO_MAX_SEGS 64
/* UDP payload bytes per GSO send (one skb: 64 KiB minus the IPv4 and UDP headers, with slack). */
#define GSO_MAX_BYTES 65000

struct gso_scratch_s {
  struct mmsghdr msgs[MMSG_CHUNK];
  struct iovec iov[MMSG_CHUNK];
  struct sockaddr_in sa[MMSG_CHUNK];
  /* per message: first datagram index and datagram count */
  int32_t first[MMSG_CHUNK];
  int32_t count[MMSG_CHUNK];
  union { char buf[CMSG_SPACE(sizeof(uint16_t))]; struct cmsghdr align; } ctrl[MMSG_CHUNK];
};
/* Set after the kernel refused UDP_SEGMENT with EIO (egress device without checksum offload): plain sendmmsg from then on. */
static __thread int tGsoOff;

static void gso_set_addr(struct sockaddr_in *sa, const uint32_t *addrs, int64_t i) {
  set_sockaddr(sa, addrs[2 * i], addrs[2 * i + 1]);
}

/*
 * Sends datagrams [from, to) one message each (no GSO). Returns how many were
 * sent; *stop = 1 on EAGAIN/ENOBUFS (the rest of the batch is not sent),
 * *fatal = errno for EBADF/ENOTSOCK/EFAULT.
 */
static int64_t gso_send_plain(gso_scratch *s, int fd, uint8_t *mem, const int32_t *offsets, const int32_t *lens,
                              const uint32_t *addrs, int64_t from, int64_t to, int *stop, int *fatal) {
  int64_t sent = 0;
  while (from < to) {
    unsigned chunk = (unsigned)(to - from < MMSG_CHUNK ? to - from : MMSG_CHUNK);
    for (unsigned j = 0; j < chunk; j++) {
      int64_t i = from + j;
      s->iov[j].iov_base = mem + offsets[i];
      s->iov[j].iov_len = (size_t)lens[i];
      gso_set_addr(&s->sa[j], addrs, i);
      memset(&s->msgs[j], 0, sizeof s->msgs[j]);
      s->msgs[j].msg_hdr.msg_iov = &s->iov[j];
      s->msgs[j].msg_hdr.msg_iovlen = 1;
      s->msgs[j].msg_hdr.msg_name = &s->sa[j];
      s->msgs[j].msg_hdr.msg_namelen = sizeof s->sa[j];
    }
    unsigned pos = 0;
    while (pos < chunk) {
      int r = sendmmsg(fd, s->msgs + pos, chunk - pos, MSG_DONTWAIT);
      if (r < 0) {
        int e = errno;
        if (e == EINTR) continue;
        if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) { *stop = 1; return sent; }
        if (e == EBADF || e == ENOTSOCK || e == EFAULT) { *fatal = e; return sent; }
        pos++;
        continue;
      }
      pos += (unsigned)r;
      sent += r;
    }
    from += chunk;
  }
  return sent;
}

/*
 * udpSendBatchGso(fd, mem, offsets, lens, addrs, n) -> number of datagrams sent
 * Same contract as udpSendBatch (same datagrams, same order, EAGAIN/ENOBUFS
 * stop the batch, other per-datagram errors skip, EBADF/ENOTSOCK throw), but
 * runs of consecutive datagrams to the same address with the same length
 * (the last of a run may be shorter) go out as ONE message with UDP_SEGMENT:
 * the kernel carries them as one skb and splits them into the same
 * datagrams. The datagrams need not be adjacent in mem (one iovec each).
 * A run the kernel refuses (EINVAL, EMSGSIZE: e.g. a segment above the path
 * MTU) is resent one datagram per message; EIO (no checksum offload on the
 * egress device) turns GSO off for this thread, as wireguard-go does.
 */
static napi_value udp_send_batch_gso(napi_env env, napi_callback_info info) {
  static const char *fn = "udpSendBatchGso";
  napi_value argv[6];
  int fd;
  packet_args a;
  if (get_args(env, info, 6, argv, fn)) return NULL;
  if (get_fd(env, argv[0], fn, &fd)) return NULL;
  if (get_packets(env, argv + 1, fn, 1, &a)) return NULL;
  uint8_t *mem = a.mem; int32_t *offsets = a.offsets, *lens = a.lens; uint32_t *addrs = a.addrs; int64_t n = a.n;
  if (n == 0) return make_int(env, 0);
  if (!tGso) tGso = malloc(sizeof *tGso);
  gso_scratch *s = tGso;
  if (!s) { throw_errno(env, ENOMEM, fn, "malloc"); return NULL; }

  int64_t sent = 0, i = 0;
  int stop = 0, fatal = 0;
  if (tGsoOff) {
    sent = gso_send_plain(s, fd, mem, offsets, lens, addrs, 0, n, &stop, &fatal);
    if (fatal) { throw_errno(env, fatal, fn, "sendmmsg"); return NULL; }
    return make_int(env, sent);
  }
  while (i < n && !stop) {
    /* Build up to MMSG_CHUNK messages, each a run of datagrams. */
    unsigned m = 0, iv = 0;
    while (i < n && m < MMSG_CHUNK && iv < MMSG_CHUNK) {
      int64_t first = i;
      int32_t seg = lens[i];
      int64_t bytes = seg;
      i++;
      while (i < n && iv + (i - first) < MMSG_CHUNK && i - first < GSO_MAX_SEGS && seg > 0 &&
             addrs[2 * i] == addrs[2 * first] && addrs[2 * i + 1] == addrs[2 * first + 1] &&
             lens[i] > 0 && lens[i] <= seg && bytes + lens[i] <= GSO_MAX_BYTES) {
        bytes += lens[i];
        i++;
        if (lens[i - 1] < seg) break; /* a shorter datagram ends the run */
      }
      int32_t cnt = (int32_t)(i - first);
      struct msghdr *h = &s->msgs[m].msg_hdr;
      memset(&s->msgs[m], 0, sizeof s->msgs[m]);
      for (int32_t k = 0; k < cnt; k++) {
        s->iov[iv + k].iov_base = mem + offsets[first + k];
        s->iov[iv + k].iov_len = (size_t)lens[first + k];
      }
      gso_set_addr(&s->sa[m], addrs, first);
      h->msg_iov = &s->iov[iv];
      h->msg_iovlen = (size_t)cnt;
      h->msg_name = &s->sa[m];
      h->msg_namelen = sizeof s->sa[m];
      if (cnt > 1) {
        h->msg_control = s->ctrl[m].buf;
        h->msg_controllen = sizeof s->ctrl[m].buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(h);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t gso = (uint16_t)seg;
        memcpy(CMSG_DATA(c), &gso, sizeof gso);
      }
      s->first[m] = (int32_t)first;
      s->count[m] = cnt;
      iv += (unsigned)cnt;
      m++;
    }
    unsigned pos = 0;
    while (pos < m && !stop) {
      int r = sendmmsg(fd, s->msgs + pos, m - pos, MSG_DONTWAIT);
      if (r < 0) {
        int e = errno;
        if (e == EINTR) continue;
        if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) { stop = 1; break; }
        if (e == EBADF || e == ENOTSOCK || e == EFAULT) { throw_errno(env, e, fn, "sendmmsg"); return NULL; }
        int32_t f = s->first[pos], cnt = s->count[pos];
        if (cnt > 1 && (e == EIO || e == EINVAL || e == EMSGSIZE)) {
          if (e == EIO) tGsoOff = 1;
          /* Resend this run one datagram per message. The scratch is shared, so rebuild the rest afterwards. */
          int64_t rest = (int64_t)f + cnt;
          sent += gso_send_plain(s, fd, mem, offsets, lens, addrs, f, rest, &stop, &fatal);
          if (fatal) { throw_errno(env, fatal, fn, "sendmmsg"); return NULL; }
          i = rest; /* continue building from the datagram after this run */
          pos = m;  /* abandon the remaining built messages: they are rebuilt from i */
          if (tGsoOff && !stop) {
            sent += gso_send_plain(s, fd, mem, offsets, lens, addrs, i, n, &stop, &fatal);
            if (fatal) { throw_errno(env, fatal, fn, "sendmmsg"); return NULL; }
            return make_int(env, sent);
          }
          break;
        }
        pos++; /* this message failed (EPERM, ENETUNREACH, ...): skip its datagrams */
        continue;
      }
      for (int k = 0; k < r; k++) sent += s->count[pos + (unsigned)k];
      pos += (unsigned)r;
    }
  }
  return make_int(env, sent);
}

/* ------------------------------------------------------------------ */
/* TUN offloads: IFF_VNET_HDR, TSO/USO split on read                   */
/* ------------------------------------------------------------------ */

#define VNET_HDR_LEN 10 /* struct virtio_net_hdr, no num_buffers */
#define VNET_F_NEEDS_CSUM 1
#define VNET_GSO_NONE 0
#define VNET_GSO_TCPV4 1
#define VNET_GSO_UDP_L4 5
#define VNET_GSO_ECN 0x80
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif
/* split state words (Int32Array shared with JS): */
#define SPLIT_PENDING 0   /* bytes of the superpacket held in sbuf (vnet header included), 0 = none */
#define SPLIT_NEXT 1      /* next segment index to emit */
#define SPLIT_DROPPED 2   /* cumulative: superpackets/packets dropped as malformed or too big */
#define SPLIT_SUPER 3     /* cumulative: superpackets (gso) read */
#define SPLIT_WORDS 4

/* tunOpenVnet(name, multiQueue, exclusive) -> { fd, name, offload }: tunOpen plus IFF_VNET_HDR and TUNSETOFFLOAD(CSUM|TSO4[|USO4]). offload: 0 none, 1 csum+tso4, 2 csum+tso4+uso4. */
static napi_value tun_open_vnet(napi_env env, napi_callback_info info) {
  static const char *fn = "tunOpenVnet";
  napi_value argv[3];
  char name[IFNAMSIZ];
  bool mq, excl;
  if (get_args(env, info, 3, argv, fn)) return NULL;
  if (get_string(env, argv[0], fn, "the TUN device name", name, IFNAMSIZ - 1, NULL)) return NULL;
  if (get_bool(env, argv[1], fn, "multiQueue", &mq)) return NULL;
  if (get_bool(env, argv[2], fn, "exclusive", &excl)) return NULL;
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) { throw_errno(env, errno, fn, "open"); return NULL; }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, strlen(name));
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR | (mq ? IFF_MULTI_QUEUE : 0) | (excl ? IFF_TUN_EXCL : 0);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    throw_errno(env, e, fn, "ioctl(TUNSETIFF)");
    return NULL;
  }
  int hsz = VNET_HDR_LEN;
  if (ioctl(fd, TUNSETVNETHDRSZ, &hsz) < 0) {
    int e = errno;
    close(fd);
    throw_errno(env, e, fn, "ioctl(TUNSETVNETHDRSZ)");
    return NULL;
  }
  int offload = 0;
  /*
   * The kernel takes USO only as USO4|USO6 together (tun.c set_offload: any
   * other leftover bit is EINVAL). IPv6 superpackets cannot reach an IPv4
   * tunnel's peers anyway: the split drops and counts them.
   */
  if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_USO4 | TUN_F_USO6)) == 0) offload = 2;
  else if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4)) == 0) offload = 1;
  ifr.ifr_name[IFNAMSIZ - 1] = 0;
  napi_value res, vname;
  if (napi_create_object(env, &res) != napi_ok ||
      napi_create_string_utf8(env, ifr.ifr_name, NAPI_AUTO_LENGTH, &vname) != napi_ok ||
      napi_set_named_property(env, res, "fd", make_int(env, fd)) != napi_ok ||
      napi_set_named_property(env, res, "name", vname) != napi_ok ||
      napi_set_named_property(env, res, "offload", make_int(env, offload)) != napi_ok) {
    close(fd);
    throw_internal(env, fn);
    return NULL;
  }
  return res;
}

/* One's-complement sum of len bytes (big-endian 16-bit words), folded later. */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t len) {
  while (len >= 2) { sum += (uint32_t)((p[0] << 8) | p[1]); p += 2; len -= 2; }
  if (len) sum += (uint32_t)(p[0] << 8);
  return sum;
}
static uint16_t csum_fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t get32(const uint8_t *p) { return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]; }
static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

static void ipv4_fix_csum(uint8_t *ip, size_t ihl) {
  put16(ip + 10, 0);
  put16(ip + 10, csum_fold(csum_add(0, ip, ihl)));
}

/* Full L4 checksum (TCP or UDP over IPv4) of l4len bytes at l4, written at l4 + csumOff. */
static void l4_fix_csum(const uint8_t *ip, uint8_t *l4, size_t l4len, size_t csumOff, int udp) {
  put16(l4 + csumOff, 0);
  uint64_t sum = csum_add(0, ip + 12, 8); /* source and destination addresses */
  sum += ip[9];
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
static int vnet_complete_csum(const uint8_t *h, uint8_t *pkt, int64_t plen) {
  uint16_t csumStart = (uint16_t)(h[6] | (h[7] << 8)), csumOff = (uint16_t)(h[8] | (h[9] << 8)); /* little-endian */
  if ((int64_t)csumStart + csumOff + 2 > plen) return 0;
  uint16_t c = csum_fold(csum_add(0, pkt + csumStart, (size_t)(plen - csumStart)));
  if (pkt[9] == IPPROTO_UDP && c == 0) c = 0xffff;
  put16(pkt + csumStart + csumOff, c);
  return 1;
}

/*
 * Splits (or passes) the packet in sbuf[0..total) (vnet header first) into
 * slots, from segment state[SPLIT_NEXT] on, until the packet is done or the
 * slots run out. Returns the number of slots filled; updates state.
 * Malformed or oversized input: dropped whole, counted in state[SPLIT_DROPPED].
 * A plain (not GSO) packet that is not IPv4 is passed on unchanged for the
 * pipeline to count by its own reason.
 */
static int64_t vnet_split(const uint8_t *sbuf, int64_t total, uint8_t *mem, const int32_t *offsets, int32_t *lens,
                          int64_t max, int64_t cap, int32_t *state) {
  const uint8_t *h = sbuf;
  const uint8_t *pkt = sbuf + VNET_HDR_LEN;
  int64_t plen = total - VNET_HDR_LEN;
  uint8_t flags = h[0], gsoType = h[1] & (uint8_t)~VNET_GSO_ECN;
  uint16_t gsoSize = (uint16_t)(h[4] | (h[5] << 8)); /* virtio fields are little-endian */
  /* Not IPv4 (an IPv6 neighbour solicitation, say): a plain packet is passed on as is, for the pipeline to count as dropNotIpv4. */
  int v4 = plen >= 20 && (pkt[0] >> 4) == 4;
  if (!v4 && (gsoType != VNET_GSO_NONE || plen < 1)) goto drop;
  size_t ihl = v4 ? (size_t)(pkt[0] & 15) * 4 : 0;
  if (v4 && (ihl < 20 || (int64_t)ihl > plen)) goto drop;

  if (gsoType == VNET_GSO_NONE) {
    if (max < 1) return 0;
    if (plen > cap) goto drop;
    uint8_t *out = mem + offsets[0];
    memcpy(out, pkt, (size_t)plen);
    if (v4 && (flags & VNET_F_NEEDS_CSUM) && !vnet_complete_csum(h, out, plen)) goto drop;
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

/* Validates the common arguments of tunReadSplit/vnetSplit. */
static int split_args(napi_env env, napi_value *argv, const char *fn, uint8_t **sbuf, size_t *sbufLen, uint8_t **mem,
                      int32_t **offsets, int32_t **lens, int64_t *max, int64_t *cap, int32_t **state) {
  size_t memLen, nOff, nLens, nState;
  if (get_ta(env, argv[0], napi_uint8_array, fn, "sbuf", (void **)sbuf, sbufLen)) return -1;
  if (get_ta(env, argv[1], napi_uint8_array, fn, "mem", (void **)mem, &memLen)) return -1;
  if (get_ta(env, argv[2], napi_int32_array, fn, "offsets", (void **)offsets, &nOff)) return -1;
  if (get_ta(env, argv[3], napi_int32_array, fn, "lens", (void **)lens, &nLens)) return -1;
  if (get_int(env, argv[4], fn, "max", 0, INT32_MAX, max)) return -1;
  if (get_int(env, argv[5], fn, "cap", 0, INT32_MAX, cap)) return -1;
  if (get_ta(env, argv[6], napi_int32_array, fn, "state", (void **)state, &nState)) return -1;
  if (check_count(env, fn, "offsets", nOff, *max) || check_count(env, fn, "lens", nLens, *max) ||
      check_count(env, fn, "state", nState, SPLIT_WORDS)) return -1;
  if (check_slots(env, fn, memLen, *offsets, NULL, *cap, *max)) return -1;
  int64_t pend = (*state)[SPLIT_PENDING];
  if (pend < 0 || pend > (int64_t)*sbufLen || (*state)[SPLIT_NEXT] < 0) {
    throw_range(env, fn, "state is corrupt (pending bytes outside sbuf or a negative segment index)");
    return -1;
  }
  return 0;
}

/*
 * vnetSplit(sbuf, mem, offsets, lens, max, cap, state) -> n
 * The split step of tunReadSplit on a packet already in sbuf (length in
 * state[PENDING], vnet header first); for tests and benchmarks.
 */
static napi_value vnet_split_js(napi_env env, napi_callback_info info) {
  static const char *fn = "vnetSplit";
  napi_value argv[7];
  uint8_t *sbuf, *mem; int32_t *offsets, *lens, *state;
  size_t sbufLen;
  int64_t max, cap;
  if (get_args(env, info, 7, argv, fn)) return NULL;
  if (split_args(env, argv, fn, &sbuf, &sbufLen, &mem, &offsets, &lens, &max, &cap, &state)) return NULL;
  int64_t pend = state[SPLIT_PENDING];
  if (pend == 0) return make_int(env, 0);
  if (pend < VNET_HDR_LEN) { state[SPLIT_PENDING] = 0; state[SPLIT_NEXT] = 0; state[SPLIT_DROPPED]++; return make_int(env, 0); }
  return make_int(env, vnet_split(sbuf, pend, mem, offsets, lens, max, cap, state));
}

/*
 * tunReadSplit(fd, sbuf, mem, offsets, lens, max, cap, state) -> n
 * For a TUN fd opened with tunOpenVnet: read() packets (vnet header +
 * packet, superpackets up to 64 KiB) into sbuf and split each into slots:
 * TSO (TCPv4) and USO (UDPv4) superpackets into MSS-sized packets with their
 * own IPv4 length, id and checksum and TCP sequence number / UDP length and a
 * full L4 checksum; a packet with only a partial checksum (NEEDS_CSUM) gets
 * its checksum completed. A superpacket that does not fit the remaining
 * slots stays in sbuf (state) and continues on the next call, so order holds.
 * Returns the number of slots filled (0: nothing to read).
 */
static napi_value tun_read_split(napi_env env, napi_callback_info info) {
  static const char *fn = "tunReadSplit";
  napi_value argv[8];
  int fd;
  uint8_t *sbuf, *mem; int32_t *offsets, *lens, *state;
  size_t sbufLen;
  int64_t max, cap;
  if (get_args(env, info, 8, argv, fn)) return NULL;
  if (get_fd(env, argv[0], fn, &fd)) return NULL;
  if (split_args(env, argv + 1, fn, &sbuf, &sbufLen, &mem, &offsets, &lens, &max, &cap, &state)) return NULL;
  if (sbufLen < 65536 + VNET_HDR_LEN) { throw_range(env, fn, "sbuf must hold at least 65546 bytes"); return NULL; }
  int64_t n = 0;
  while (n < max) {
    if (state[SPLIT_PENDING] == 0) {
      ssize_t r = read(fd, sbuf, sbufLen);
      if (r < 0) {
        int e = errno;
        if (e == EINTR) continue;
        if (e == EAGAIN || e == EWOULDBLOCK) break;
        if (n > 0) break;
        throw_errno(env, e, fn, "read");
        return NULL;
      }
      if (r == 0) break;
      if (r < VNET_HDR_LEN) { state[SPLIT_DROPPED]++; continue; }
      state[SPLIT_PENDING] = (int32_t)r;
      state[SPLIT_NEXT] = 0;
      if ((sbuf[1] & (uint8_t)~VNET_GSO_ECN) != VNET_GSO_NONE) state[SPLIT_SUPER]++;
    }
    n += vnet_split(sbuf, state[SPLIT_PENDING], mem, offsets + n, lens + n, max - n, cap, state);
  }
  return make_int(env, n);
}

/*
 * tunWriteBatchVnet(fd, mem, offsets, lens, n) -> number written
 * tunWriteBatch for a TUN fd opened with tunOpenVnet: writes a zero
 * virtio_net_hdr (no offload) into the 10 bytes in front of each packet
 * (offsets[i] >= 10; those bytes are overwritten) and writes header+packet.
 */
static napi_value tun_write_batch_vnet(napi_env env, napi_callback_info info) {
  static const char *fn = "tunWriteBatchVnet";
  napi_value argv[5];
  int fd;
  packet_args a;
  if (get_args(env, info, 5, argv, fn)) return NULL;
  if (get_fd(env, argv[0], fn, &fd)) return NULL;
  if (get_packets(env, argv + 1, fn, 0, &a)) return NULL;
  uint8_t *mem = a.mem; int32_t *offsets = a.offsets, *lens = a.lens; int64_t n = a.n;
  for (int64_t i = 0; i < n; i++) {
    if (offsets[i] < VNET_HDR_LEN) { throw_range(env, fn, "every offset must leave 10 bytes for the vnet header"); return NULL; }
  }
  int64_t ok = 0;
  for (int64_t i = 0; i < n; i++) {
    uint8_t *p = mem + offsets[i] - VNET_HDR_LEN;
    memset(p, 0, VNET_HDR_LEN);
    ssize_t r;
    do r = write(fd, p, (size_t)lens[i] + VNET_HDR_LEN); while (r < 0 && errno == EINTR);
    if (r >= 0) { ok++; continue; }
    if (errno == EBADF) { throw_errno(env, EBADF, fn, "write"); return NULL; }
  }
  return make_int(env, ok);
}

/* ------------------------------------------------------------------ */
/* TUN offloads: TCP coalescing (GRO) on write                         */
/* ------------------------------------------------------------------ */

#define GRO_MAX_SEGS 64
#define GRO_MAX_LEN 65535
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

/*
 * Plans the group starting at packet i: returns how many packets (>= 1)
 * form it. A group of more than one is consecutive in-sequence segments of
 * one TCP flow with equal payloads (the last may be shorter or carry PSH).
 */
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

static int64_t gro_plan(const uint8_t *mem, const int32_t *offsets, const int32_t *lens, int64_t n, int64_t i) {
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

/*
 * Turns the group's first packet into the head of a superpacket of `total`
 * bytes: IPv4 total length and checksum, TCP checksum = pseudo-header sum
 * (NEEDS_CSUM: the kernel treats the payload as verified), PSH taken from
 * the last segment, and the virtio_net_hdr in the 10 bytes before it.
 */
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
static void gro_prepare(struct iovec *iov, uint8_t *mem, const int32_t *offsets, const int32_t *lens, int64_t i, int64_t cnt) {
  uint8_t *p = mem + offsets[i];
  int hl = gro_hlen(p);
  int64_t total = lens[i];
  for (int64_t k = 1; k < cnt; k++) total += lens[i + k] - hl;
  gro_make_head(p, mem + offsets[i + cnt - 1], total, lens[i] - hl);
  gro_iov(iov, mem, offsets, lens, i, cnt);
}

static int gro_args(napi_env env, napi_value *argv, const char *fn, uint8_t **mem, int32_t **offsets, int32_t **lens, int64_t *n) {
  size_t memLen, nOff, nLens;
  if (get_ta(env, argv[0], napi_uint8_array, fn, "mem", (void **)mem, &memLen)) return -1;
  if (get_ta(env, argv[1], napi_int32_array, fn, "offsets", (void **)offsets, &nOff)) return -1;
  if (get_ta(env, argv[2], napi_int32_array, fn, "lens", (void **)lens, &nLens)) return -1;
  if (get_int(env, argv[3], fn, "n", 0, INT32_MAX, n)) return -1;
  if (check_count(env, fn, "offsets", nOff, *n) || check_count(env, fn, "lens", nLens, *n)) return -1;
  if (check_slots(env, fn, memLen, *offsets, *lens, 0, *n)) return -1;
  for (int64_t i = 0; i < *n; i++) {
    if ((*offsets)[i] < VNET_HDR_LEN) { throw_range(env, fn, "every offset must leave 10 bytes for the vnet header"); return -1; }
  }
  return 0;
}

/*
 * tunWriteBatchGro(fd, mem, offsets, lens, n) -> packets written
 * tunWriteBatchVnet with TCP coalescing: each run of consecutive in-sequence
 * TCP segments of one flow (equal payloads, only ACK/PSH, same options; at
 * most 64 and 64 KiB) is written as ONE TSO superpacket (writev: the first
 * packet's headers, rewritten, then every payload, no copy), and each run of
 * equal-size DF datagrams of one UDP flow as ONE USO superpacket; anything else
 * goes out as before with a zero vnet header. If the kernel refuses a
 * superpacket, its segments are written one by one (the head restored).
 * Packet order is kept. Packets' bytes in mem are clobbered.
 */
static napi_value tun_write_batch_gro(napi_env env, napi_callback_info info) {
  static const char *fn = "tunWriteBatchGro";
  napi_value argv[5];
  int fd;
  uint8_t *mem; int32_t *offsets, *lens;
  int64_t n;
  if (get_args(env, info, 5, argv, fn)) return NULL;
  if (get_fd(env, argv[0], fn, &fd)) return NULL;
  if (gro_args(env, argv + 1, fn, &mem, &offsets, &lens, &n)) return NULL;
  struct iovec iov[GRO_MAX_SEGS];
  int64_t ok = 0, i = 0;
  while (i < n) {
    int64_t cnt = gro_plan(mem, offsets, lens, n, i);
    uint8_t *p = mem + offsets[i];
    ssize_t r;
    if (cnt > 1) {
      uint8_t saved[60 + VNET_HDR_LEN];
      memcpy(saved, p - VNET_HDR_LEN, sizeof saved < (size_t)lens[i] + VNET_HDR_LEN ? sizeof saved : (size_t)lens[i] + VNET_HDR_LEN);
      gro_prepare(iov, mem, offsets, lens, i, cnt);
      do r = writev(fd, iov, (int)cnt); while (r < 0 && errno == EINTR);
      if (r >= 0) { ok += cnt; i += cnt; continue; }
      if (errno == EBADF) { throw_errno(env, EBADF, fn, "writev"); return NULL; }
      /* Refused: undo the head and write the segments one by one. */
      memcpy(p - VNET_HDR_LEN, saved, sizeof saved < (size_t)lens[i] + VNET_HDR_LEN ? sizeof saved : (size_t)lens[i] + VNET_HDR_LEN);
    }
    for (int64_t k = i; k < i + cnt; k++) {
      uint8_t *q = mem + offsets[k] - VNET_HDR_LEN;
      memset(q, 0, VNET_HDR_LEN);
      do r = write(fd, q, (size_t)lens[k] + VNET_HDR_LEN); while (r < 0 && errno == EINTR);
      if (r >= 0) { ok++; continue; }
      if (errno == EBADF) { throw_errno(env, EBADF, fn, "write"); return NULL; }
    }
    i += cnt;
  }
  return make_int(env, ok);
}

/*
 * vnetCoalesce(mem, offsets, lens, n, out, outLens) -> writes
 * What tunWriteBatchGro would write, gathered into out (each write: vnet
 * header + packet, back to back; outLens[w] = its length); for tests.
 */
static napi_value vnet_coalesce_js(napi_env env, napi_callback_info info) {
  static const char *fn = "vnetCoalesce";
  napi_value argv[6];
  uint8_t *mem, *out; int32_t *offsets, *lens, *outLens;
  size_t outLen, nOutLens;
  int64_t n;
  if (get_args(env, info, 6, argv, fn)) return NULL;
  if (gro_args(env, argv, fn, &mem, &offsets, &lens, &n)) return NULL;
  if (get_ta(env, argv[4], napi_uint8_array, fn, "out", (void **)&out, &outLen)) return NULL;
  if (get_ta(env, argv[5], napi_int32_array, fn, "outLens", (void **)&outLens, &nOutLens)) return NULL;
  if (check_count(env, fn, "outLens", nOutLens, n)) return NULL;
  int64_t need = 0;
  for (int64_t i = 0; i < n; i++) need += lens[i] + VNET_HDR_LEN;
  if ((int64_t)outLen < need) { throw_range(env, fn, "out is too small for the batch"); return NULL; }
  struct iovec iov[GRO_MAX_SEGS];
  int64_t w = 0, i = 0, pos = 0;
  while (i < n) {
    int64_t cnt = gro_plan(mem, offsets, lens, n, i);
    uint8_t *p = mem + offsets[i];
    if (cnt > 1) {
      gro_prepare(iov, mem, offsets, lens, i, cnt);
    } else {
      memset(p - VNET_HDR_LEN, 0, VNET_HDR_LEN);
      iov[0].iov_base = p - VNET_HDR_LEN;
      iov[0].iov_len = (size_t)lens[i] + VNET_HDR_LEN;
    }
    int64_t start = pos;
    for (int64_t k = 0; k < cnt; k++) { memcpy(out + pos, iov[k].iov_base, iov[k].iov_len); pos += (int64_t)iov[k].iov_len; }
    outLens[w++] = (int32_t)(pos - start);
    i += cnt;
  }
  return make_int(env, w);
}

/* ------------------------------------------------------------------ */
/* UDP GRO receive                                                     */
/* ------------------------------------------------------------------ */

#ifndef UDP_GRO
#define UDP_GRO 104
#endif
/* Datagrams per recvmmsg in udpRecvGro (each needs a 64 KiB buffer). */
#define GRO_RX_MAX_BUFS 64
/* gro info words (Int32Array shared with JS): */
#define GRO_INFO_DGRAMS 0     /* datagrams the last call received */
#define GRO_INFO_COALESCED 1  /* cumulative: datagrams that carried more than one packet */
#define GRO_INFO_DROPPED 2    /* cumulative: packets dropped for want of room in offsets/lens */
#define GRO_INFO_WORDS 4

/* udpSetGro(fd, on) -> true when the kernel took UDP_GRO (Linux 5.0+). */
static napi_value udp_set_gro(napi_env env, napi_callback_info info) {
  static const char *fn = "udpSetGro";
  napi_value argv[2];
  int fd;
  bool on;
  if (get_args(env, info, 2, argv, fn)) return NULL;
  if (get_fd(env, argv[0], fn, &fd)) return NULL;
  if (get_bool(env, argv[1], fn, "on", &on)) return NULL;
  int v = on ? 1 : 0;
  int ok = setsockopt(fd, SOL_UDP, UDP_GRO, &v, sizeof v) == 0;
  if (!ok && (errno == EBADF || errno == ENOTSOCK)) { throw_errno(env, errno, fn, "setsockopt"); return NULL; }
  napi_value res;
  if (napi_get_boolean(env, ok, &res) != napi_ok) { throw_internal(env, fn); return NULL; }
  return res;
}

struct gro_rx_scratch_s {
  struct mmsghdr msgs[GRO_RX_MAX_BUFS];
  struct iovec iov[GRO_RX_MAX_BUFS];
  struct sockaddr_in sa[GRO_RX_MAX_BUFS];
  union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctrl[GRO_RX_MAX_BUFS];
};

/*
 * udpRecvGro(fd, mem, bufOffsets, nBufs, bufCap, offsets, lens, addrs, max, info) -> packets
 * One recvmmsg of up to nBufs datagrams, datagram j into mem[bufOffsets[j] ..
 * + bufCap). A datagram the kernel coalesced (UDP_GRO on the socket: the
 * sender's GSO batch, or GRO on the way in) carries its segment size in a
 * cmsg and is split, in place, into its packets: packet k of it is at
 * bufOffsets[j] + k*size. Every packet gets an entry: offsets[i], lens[i]
 * (-1: datagram truncated to bufCap), addrs[2i] = source IPv4 (host order),
 * addrs[2i+1] = source port. At most `max` entries; packets beyond are
 * dropped and counted (info[2]; never with max >= nBufs * 128, the kernel's
 * segment limit). info[0] = datagrams received (nBufs: call again),
 * info[1] += coalesced datagrams. Errors are thrown only when nothing was
 * received; EAGAIN is 0.
 */
static napi_value udp_recv_gro(napi_env env, napi_callback_info info) {
  static const char *fn = "udpRecvGro";
  napi_value argv[10];
  int fd;
  uint8_t *mem; int32_t *bufOffsets, *offsets, *lens, *gi; uint32_t *addrs;
  size_t memLen, nBufOff, nOff, nLens, nAddrs, nInfo;
  int64_t nBufs, cap, max;
  if (get_args(env, info, 10, argv, fn)) return NULL;
  if (get_fd(env, argv[0], fn, &fd)) return NULL;
  if (get_ta(env, argv[1], napi_uint8_array, fn, "mem", (void **)&mem, &memLen)) return NULL;
  if (get_ta(env, argv[2], napi_int32_array, fn, "bufOffsets", (void **)&bufOffsets, &nBufOff)) return NULL;
  if (get_int(env, argv[3], fn, "nBufs", 0, GRO_RX_MAX_BUFS, &nBufs)) return NULL;
  if (get_int(env, argv[4], fn, "bufCap", 1, INT32_MAX, &cap)) return NULL;
  if (get_ta(env, argv[5], napi_int32_array, fn, "offsets", (void **)&offsets, &nOff)) return NULL;
  if (get_ta(env, argv[6], napi_int32_array, fn, "lens", (void **)&lens, &nLens)) return NULL;
  if (get_ta(env, argv[7], napi_uint32_array, fn, "addrs", (void **)&addrs, &nAddrs)) return NULL;
  if (get_int(env, argv[8], fn, "max", 0, INT32_MAX, &max)) return NULL;
  if (get_ta(env, argv[9], napi_int32_array, fn, "info", (void **)&gi, &nInfo)) return NULL;
  if (check_count(env, fn, "bufOffsets", nBufOff, nBufs) || check_count(env, fn, "offsets", nOff, max) ||
      check_count(env, fn, "lens", nLens, max) || check_count(env, fn, "addrs", nAddrs, 2 * max) ||
      check_count(env, fn, "info", nInfo, GRO_INFO_WORDS)) return NULL;
  if (check_slots(env, fn, memLen, bufOffsets, NULL, cap, nBufs)) return NULL;
  gi[GRO_INFO_DGRAMS] = 0;
  if (nBufs == 0 || max == 0) return make_int(env, 0);
  if (!tGroRx) tGroRx = malloc(sizeof *tGroRx);
  gro_rx_scratch *s = tGroRx;
  if (!s) { throw_errno(env, ENOMEM, fn, "malloc"); return NULL; }

  for (int64_t j = 0; j < nBufs; j++) {
    s->iov[j].iov_base = mem + bufOffsets[j];
    s->iov[j].iov_len = (size_t)cap;
    memset(&s->msgs[j], 0, sizeof s->msgs[j]);
    struct msghdr *h = &s->msgs[j].msg_hdr;
    h->msg_iov = &s->iov[j];
    h->msg_iovlen = 1;
    h->msg_name = &s->sa[j];
    h->msg_namelen = sizeof s->sa[j];
    h->msg_control = s->ctrl[j].buf;
    h->msg_controllen = sizeof s->ctrl[j].buf;
  }
  int r, retries = 0;
  for (;;) {
    r = recvmmsg(fd, s->msgs, (unsigned)nBufs, MSG_DONTWAIT, NULL);
    if (r >= 0) break;
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN || e == EWOULDBLOCK) return make_int(env, 0);
    if (transient_recv_error(e) && ++retries < 8) continue;
    throw_errno(env, e, fn, "recvmmsg");
    return NULL;
  }
  gi[GRO_INFO_DGRAMS] = r;
  int64_t out = 0;
  for (int j = 0; j < r; j++) {
    struct msghdr *h = &s->msgs[j].msg_hdr;
    uint32_t ip, port;
    recv_source(h, &s->sa[j], &ip, &port);
    int64_t len = (int64_t)s->msgs[j].msg_len;
    int64_t seg = len;
    if (!(h->msg_flags & MSG_TRUNC)) {
      for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
          int g;
          memcpy(&g, CMSG_DATA(c), sizeof g);
          if (g > 0 && g < seg) seg = g;
        }
      }
    }
    if (h->msg_flags & MSG_TRUNC) {
      if (out < max) { offsets[out] = bufOffsets[j]; lens[out] = -1; addrs[2 * out] = ip; addrs[2 * out + 1] = port; out++; }
      else gi[GRO_INFO_DROPPED]++;
      continue;
    }
    if (seg < len) gi[GRO_INFO_COALESCED]++;
    int64_t pos = 0;
    do {
      int64_t l = len - pos < seg ? len - pos : seg;
      if (out < max) {
        offsets[out] = (int32_t)(bufOffsets[j] + pos);
        lens[out] = (int32_t)l;
        addrs[2 * out] = ip;
        addrs[2 * out + 1] = port;
        out++;
      } else {
        gi[GRO_INFO_DROPPED]++;
      }
      pos += l;
    } while (pos < len);
  }
  return make_int(env, out);
}

#include "fastpath.h"

/* socketPairDgram() -> [fd, fd]: an AF_UNIX datagram pair (non-blocking); a stand-in TUN fd for tests (one read = one packet). */
static napi_value socket_pair_dgram(napi_env env, napi_callback_info info) {
  (void)info;
  static const char *fn = "socketPairDgram";
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) { throw_errno(env, errno, fn, "socketpair"); return NULL; }
  napi_value arr;
  if (napi_create_array_with_length(env, 2, &arr) != napi_ok ||
      napi_set_element(env, arr, 0, make_int(env, sv[0])) != napi_ok ||
      napi_set_element(env, arr, 1, make_int(env, sv[1])) != napi_ok) {
    close(sv[0]);
    close(sv[1]);
    throw_internal(env, fn);
    return NULL;
  }
  return arr;
}

/* ------------------------------------------------------------------ */
/* Module                                                              */
/* ------------------------------------------------------------------ */

NAPI_MODULE_INIT() {
  static const struct { const char *name; napi_callback cb; } fns[] = {
    { "tunOpen", tun_open },
    { "ifIndex", if_index },
    { "udpOpen", udp_open },
    { "close", fd_close },
    { "pollStart", poll_start },
    { "pollStop", poll_stop },
    { "tunReadBatch", tun_read_batch },
    { "tunWriteBatch", tun_write_batch },
    { "udpRecvBatch", udp_recv_batch },
    { "udpSendBatch", udp_send_batch },
    { "udpSendBatchGso", udp_send_batch_gso },
    { "tunOpenVnet", tun_open_vnet },
    { "tunReadSplit", tun_read_split },
    { "vnetSplit", vnet_split_js },
    { "tunWriteBatchVnet", tun_write_batch_vnet },
    { "tunWriteBatchGro", tun_write_batch_gro },
    { "vnetCoalesce", vnet_coalesce_js },
    { "udpSendTo", udp_send_to },
    { "aeadSealBatch", aead_seal_batch },
    { "aeadOpenBatch", aead_open_batch },
    { "udpSendToTtl", udp_send_to_ttl },
    { "udpSetGro", udp_set_gro },
    { "poly1305Blocks", poly1305_blocks_js },
    { "udpRecvGro", udp_recv_gro },
    { "fastPathOut", fast_path_out },
    { "fastPathIn", fast_path_in },
    { "fastLayout", fast_layout },
    { "fastPathLink", fast_path_link },
    { "socketPairDgram", socket_pair_dgram },
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &f) != napi_ok ||
        napi_set_named_property(env, exports, fns[i].name, f) != napi_ok) return NULL;
  }
  /* Per-thread state is freed when the last env of this thread is torn down. */
  static int marker;
  tEnvs++;
  if (napi_set_instance_data(env, &marker, thread_env_gone, NULL) != napi_ok) { tEnvs--; return NULL; }
  return exports;
}
