/*
 * fec: GF(2^8) matrix times shards, the byte work of the FEC code
 * (dataplane/reed-solomon.ts holds the matrices; this file only multiplies).
 */
#ifndef LWT_FEC_H
#define LWT_FEC_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

/* gfMatMul(coefs, rows, k, src, srcOffsets, srcLens, dst, dstOffsets, len): see fec.c. */
napi_value gf_mat_mul(napi_env env, napi_callback_info info);

/* The same on C arrays (no checks): dst[j][0..len) = sum over c of coefs[j*k + c] * src[c] (src[c] zero past srcLens[c]). */
void fec_mat_mul(const uint8_t *coefs, int rows, int k, const uint8_t *const *src, const int32_t *srcLens,
                 uint8_t *const *dst, size_t len);

#endif
