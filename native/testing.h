/*
 * testing: test-only exports (testing.c), compiled only into the test build
 * build/Release/lwt_native_testing.node (binding.gyp target
 * lwt_native_testing, LWT_TESTING). The production addon never has them;
 * TypeScript reaches them through test/helpers/native-testing.ts.
 */
#ifndef LWT_TESTING_H
#define LWT_TESTING_H

#include <node_api.h>

napi_value socket_pair_dgram(napi_env env, napi_callback_info info);
napi_value aead_cached_keys_js(napi_env env, napi_callback_info info);
napi_value vnet_split_js(napi_env env, napi_callback_info info);
napi_value vnet_coalesce_js(napi_env env, napi_callback_info info);
napi_value poly1305_blocks_js(napi_env env, napi_callback_info info);
napi_value ftcp_run_plan_js(napi_env env, napi_callback_info info);

#endif
