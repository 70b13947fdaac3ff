/*
 * fastpath: the lone-packet fast path (fastpath.c), one packet handled in C
 * inside the poll callback without entering JavaScript. What it does, when
 * it stands aside and which tables it shares with src/dataplane/fast-path.ts
 * is written at the top of fastpath.c.
 *
 * poll.c calls fast_run on every wake-up of a poll that has one attached and
 * fast_free when the poll closes; the bindings attach it (fastPathOut,
 * fastPathIn), link an inbound and an outbound one (fastPathLink) and
 * report the C side of the shared layout (fastLayout).
 */
#ifndef LWT_FASTPATH_H
#define LWT_FASTPATH_H

#include <node_api.h>

typedef struct lwt_fast lwt_fast;

/* The fd is readable: 1 when the fast path handled it (skip the JS callback), 0 to run the JS callback. */
int fast_run(lwt_fast *f);
/* Releases f and the JS arrays it holds (NULL is fine). */
void fast_free(napi_env env, lwt_fast *f);

/* Bindings. */
napi_value fast_path_out(napi_env env, napi_callback_info info);
napi_value fast_path_in(napi_env env, napi_callback_info info);
napi_value fast_path_link(napi_env env, napi_callback_info info);
napi_value fast_layout(napi_env env, napi_callback_info info);

#endif
