/*
 * poll: readability of an fd on the calling thread's libuv loop. No policy.
 *
 * Flow: pollStart(fd, cb) makes a uv_poll_t on this thread's loop and a JS
 * external (type-tagged) as its handle. Each loop turn the fd is readable,
 * poll_on_event runs the attached fast path (fastpath.c) first; when that
 * declines, or none is attached, it calls cb through napi_make_callback (a
 * throw there is an uncaught exception). Lifetime rules are on lwt_poll
 * (poll.h): the record outlives whichever of the uv handle and the JS
 * handle goes last.
 */
#include "poll.h"
#include "fastpath.h"
#include "napi_util.h"

#include <errno.h>
#include <stdlib.h>

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

void poll_on_event(uv_poll_t *h, int status, int events) {
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
napi_value poll_start(napi_env env, napi_callback_info info) {
  static const char *fn = "pollStart";
  int fd;
  napi_value cb;
  if (PARSE_ARGS(env, info, fn, ARG_FD(&fd), ARG_FUNCTION("cb", &cb))) return NULL;
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
  if (napi_create_reference(env, cb, 1, &p->cb) != napi_ok ||
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

lwt_poll *poll_from(napi_env env, napi_value v, const char *fn) {
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
napi_value poll_stop(napi_env env, napi_callback_info info) {
  static const char *fn = "pollStop";
  napi_value handle;
  if (PARSE_ARGS(env, info, fn, ARG_VALUE(&handle))) return NULL;
  lwt_poll *p = poll_from(env, handle, fn);
  if (p) poll_close(p);
  return NULL;
}
