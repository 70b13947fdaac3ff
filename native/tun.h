/*
 * tun: the TUN device bindings (tun.c): open (plain or with IFF_VNET_HDR and
 * offloads), batched read and write, the split read and the coalescing write
 * of a vnet fd (their byte work is offload.c's).
 */
#ifndef LWT_TUN_H
#define LWT_TUN_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include "napi_util.h"

/*
 * The arguments of tunReadSplit after its fd, and of vnetSplit (testing.c):
 * (sbuf, mem, offsets, lens, max, cap, state), checked: every slot inside
 * mem, state holds SPLIT_WORDS words and is not corrupt. 0, or -1 with an
 * exception pending.
 */
typedef struct { uint8_t *sbuf, *mem; size_t sbufLen; int32_t *offsets, *lens, *state; int64_t max, cap; } split_args;
int get_split_args(napi_env env, napi_value *argv, const char *fn, split_args *a);

/* get_packets (no addrs) for a vnet fd: every offset also leaves VNET_HDR_LEN bytes in front for the vnet header. */
int get_vnet_packets(napi_env env, napi_value *argv, const char *fn, packet_args *a);

/* Bindings. */
napi_value tun_open(napi_env env, napi_callback_info info);
napi_value tun_open_vnet(napi_env env, napi_callback_info info);
napi_value if_index(napi_env env, napi_callback_info info);
napi_value tun_read_batch(napi_env env, napi_callback_info info);
napi_value tun_write_batch(napi_env env, napi_callback_info info);
napi_value tun_read_split(napi_env env, napi_callback_info info);
napi_value tun_write_batch_vnet(napi_env env, napi_callback_info info);
napi_value tun_write_batch_gro(napi_env env, napi_callback_info info);

#endif
