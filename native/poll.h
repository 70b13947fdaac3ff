/*
 * poll: readability of an fd on the calling thread's libuv loop (poll.c):
 * pollStart/pollStop, and the poll record the fast path (fastpath.c)
 * attaches to and, for a linked pair, services directly.
 */
#ifndef LWT_POLL_H
#define LWT_POLL_H

#include <node_api.h>
#include <uv.h>

typedef struct lwt_fast lwt_fast; /* fastpath.h */

/*
 * One pollStart handle. Lifetime: the struct is freed when both the uv
 * handle has closed (closed) and the JS handle has been finalized (jsGone),
 * whichever comes last. The uv handle closes on pollStop or, if never
 * stopped, at env teardown through an async cleanup hook (so a worker can
 * exit with a poll still active). All fields: the owning thread only.
 */
typedef struct {
  uv_poll_t h;
  napi_env env;
  napi_ref cb;
  lwt_fast *fast; /* the lone-packet fast path run before cb (fastPathOut/In), or NULL; freed with the poll */
  napi_async_context actx;
  napi_async_cleanup_hook_handle hook;
  int stopping;
  int closed;
  int jsGone;
} lwt_poll;

/* The uv callback: the fast path first (if attached), else (or if it declines) the JS callback. */
void poll_on_event(uv_poll_t *h, int status, int events);
/* The poll behind a pollStart handle, or NULL with a TypeError thrown. */
lwt_poll *poll_from(napi_env env, napi_value v, const char *fn);

/* Bindings. */
napi_value poll_start(napi_env env, napi_callback_info info);
napi_value poll_stop(napi_env env, napi_callback_info info);

#endif
