/*
 * tcplisten: the TCP transport's listening socket (tcplisten.h).
 *
 *   tcpListen(host, port, backlog) -> { fd, port }
 *     socket(SOCK_STREAM, non-blocking, close-on-exec), SO_REUSEADDR (as
 *     libuv does for a listener), dual-stack for an IPv6 host (IPV6_V6ONLY
 *     off, as Node's net.Server on "::"), bind, listen. RangeError for a host
 *     that is not an IPv4/IPv6 literal; an errno Error (code EADDRINUSE,
 *     EACCES, EADDRNOTAVAIL, ...) when a syscall fails; no fd leaks.
 *   tcpAccept(fd) -> connection fd (non-blocking, close-on-exec), or -errno:
 *     -EAGAIN when none is waiting; ECONNABORTED and EINTR are retried;
 *     EMFILE/ENFILE/ENOBUFS/ENOMEM come back for the caller to count. The
 *     caller polls the listener (poll.c) and accepts until -EAGAIN.
 *
 * Never on a packet path: a few calls per connection.
 */
#include "tcplisten.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr6.h"
#include "napi_util.h"

napi_value tcp_listen(napi_env env, napi_callback_info info) {
  static const char *fn = "tcpListen";
  char host[64];
  int64_t port, backlog;
  if (PARSE_ARGS(env, info, fn, ARG_STRING("host", host, sizeof host - 1), ARG_INT("port", 0, 65535, &port),
                 ARG_INT("backlog", 1, 65535, &backlog))) return NULL;
  lwt_sockaddr sa;
  socklen_t salen;
  int is6;
  if (lwt_bind_sockaddr(env, fn, host, port, &sa, &salen, &is6) < 0) return NULL;
  int fd = socket(is6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) { throw_errno(env, errno, fn, "socket"); return NULL; }
  int on = 1, off = 0;
  const char *step = NULL;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0) step = "setsockopt(SO_REUSEADDR)";
  else if (is6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) < 0) step = "setsockopt(IPV6_V6ONLY)";
  else if (bind(fd, &sa.sa, salen) < 0) step = "bind";
  else if (listen(fd, (int)backlog) < 0) step = "listen";
  else {
    socklen_t sl = sizeof sa;
    if (getsockname(fd, &sa.sa, &sl) < 0) step = "getsockname";
  }
  if (step != NULL) {
    int e = errno;
    close(fd);
    throw_errno(env, e, fn, step);
    return NULL;
  }
  napi_value res;
  if (napi_create_object(env, &res) != napi_ok ||
      napi_set_named_property(env, res, "fd", make_int(env, fd)) != napi_ok ||
      napi_set_named_property(env, res, "port", make_int(env, ntohs(is6 ? sa.v6.sin6_port : sa.v4.sin_port))) != napi_ok) {
    close(fd);
    throw_internal(env, fn);
    return NULL;
  }
  return res;
}

napi_value tcp_accept(napi_env env, napi_callback_info info) {
  static const char *fn = "tcpAccept";
  int fd;
  if (PARSE_ARGS(env, info, fn, ARG_FD(&fd))) return NULL;
  for (;;) {
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) return make_int(env, c);
    int e = errno;
    if (e == EINTR || e == ECONNABORTED) continue;
    if (e == EWOULDBLOCK) e = EAGAIN;
    if (e == EBADF || e == ENOTSOCK || e == EINVAL) { throw_errno(env, e, fn, "accept4"); return NULL; }
    return make_int(env, -e);
  }
}
