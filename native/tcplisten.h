/*
 * tcplisten: a listening TCP socket and accept4 for the TCP transport's
 * server (src/transport/tcp-server.ts). Node's net.Server hands accepted
 * sockets over as streams that allocate a buffer per read; a socket built
 * from an fd (new net.Socket({ fd, onread })) reads into one reused buffer.
 */
#ifndef LWT_TCPLISTEN_H
#define LWT_TCPLISTEN_H

#include <node_api.h>

/* tcpListen(host, port, backlog) -> { fd, port }: see tcplisten.c. */
napi_value tcp_listen(napi_env env, napi_callback_info info);
/* tcpAccept(fd) -> fd of a new connection, or -errno (-EAGAIN: none waiting). */
napi_value tcp_accept(napi_env env, napi_callback_info info);

#endif
