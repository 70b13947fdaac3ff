/*
 * notify: the service manager's readiness protocol (sd_notify(3)) without
 * libsystemd: one datagram "READY=1", "STOPPING=1", "STATUS=..." to the unix
 * socket systemd names in $NOTIFY_SOCKET (Type=notify units). Node's dgram
 * has no unix datagram sockets, hence this binding.
 */
#ifndef LWT_NOTIFY_H
#define LWT_NOTIFY_H

#include <node_api.h>

/* sdNotify(socketPath, message): see notify.c. */
napi_value sd_notify_js(napi_env env, napi_callback_info info);

#endif
