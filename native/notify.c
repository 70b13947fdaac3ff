/*
 * notify: sdNotify(socketPath, message) sends `message` as ONE datagram to
 * the unix socket `socketPath` (the value of $NOTIFY_SOCKET: a filesystem
 * path starting with '/', or an abstract name starting with '@', which is
 * sent as a leading NUL byte). The protocol is sd_notify(3): newline
 * separated KEY=VALUE assignments such as "READY=1", "STOPPING=1",
 * "STATUS=...".
 *
 * Returns the bytes sent. Throws RangeError for a path that is neither
 * absolute nor abstract or does not fit sun_path (108 bytes), and an errno
 * Error (code ENOENT, ECONNREFUSED, EACCES, ...) when the send fails. A
 * fresh socket per call: readiness is sent a handful of times per daemon
 * life, never per packet.
 */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "napi_util.h"

/* The longest message: sd_notify's STATUS= lines are short; 4 KiB is far above any we send. */
#define NOTIFY_MAX_MESSAGE 4096

napi_value sd_notify_js(napi_env env, napi_callback_info info) {
  static const char *fn = "sdNotify";
  char msg[NOTIFY_MAX_MESSAGE + 1];
  char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  if (PARSE_ARGS(env, info, fn,
                 ARG_STRING("socketPath", path, sizeof path - 1),
                 ARG_STRING("message", msg, NOTIFY_MAX_MESSAGE))) return NULL;
  size_t plen = strlen(path);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (plen < 2 || (path[0] != '/' && path[0] != '@') || plen > sizeof sa.sun_path) {
    throw_range(env, fn, "socketPath must be an absolute path or an abstract name starting with '@', of at most 108 bytes");
    return NULL;
  }
  memcpy(sa.sun_path, path, plen);
  if (path[0] == '@') sa.sun_path[0] = '\0';
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) { throw_errno(env, errno, fn, "socket"); return NULL; }
  ssize_t n;
  do {
    n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
  } while (n < 0 && errno == EINTR);
  int e = errno;
  close(fd);
  if (n < 0) { throw_errno(env, e, fn, "sendto"); return NULL; }
  return make_int(env, n);
}
