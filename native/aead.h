/*
 * aead: ChaCha20-Poly1305 (RFC 8439) of one packet, in place, and the batch
 * bindings aeadSealBatch/aeadOpenBatch (aead.c).
 *
 * One packet: nonce = 4 zero bytes || the 8-byte counter at aad+8 (the
 * transport header is the AAD). Up to AEAD_SMALL_MAX plaintext bytes go
 * through the compact cipher (chacha20poly1305.c), larger ones through
 * Node's OpenSSL with this thread's cached context (aead_seal_evp /
 * aead_open_evp). aead_seal_one/aead_open_one are inline here because both
 * the batch bindings and the fast path (fastpath.c) call them per packet.
 */
#ifndef LWT_AEAD_H
#define LWT_AEAD_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "chacha20poly1305.h"

#define AEAD_KEY_LEN 32
#define AEAD_TAG_LEN 16
#define AEAD_NONCE_LEN 12
/* The 8-byte little-endian counter that forms the nonce sits at off+8..off+16. */
#define NONCE_CTR_OFF 8
#define MIN_AAD_LEN 16
/*
 * Packets up to this many bytes (plaintext) are sealed and opened by the
 * compact implementation in chacha20poly1305.c, larger ones by OpenSSL
 * (bench/micro aead rows: the crossover measured on this machine).
 */
#define AEAD_SMALL_MAX 192

/* The OpenSSL path for one packet (aead.c): seal returns 0 only when OpenSSL fails; open returns 1 when authentic. */
int aead_seal_evp(const uint8_t *key, const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *aad, size_t aadLen,
                  uint8_t *pt, size_t len, uint8_t *tag);
int aead_open_evp(const uint8_t *key, const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *aad, size_t aadLen,
                  uint8_t *ct, size_t len, const uint8_t *tagIn);

static inline void make_nonce(unsigned char nonce[AEAD_NONCE_LEN], const uint8_t *pkt) {
  memset(nonce, 0, 4);
  memcpy(nonce + 4, pkt + NONCE_CTR_OFF, 8);
}

/*
 * Seal one packet: pt[0..len) encrypted in place, tag written at `tag`; the
 * AAD (transport header, nonce counter at aad+8) may live elsewhere than the
 * plaintext. Returns 0 only when OpenSSL fails.
 */
static inline int aead_seal_one(const uint8_t *key, const uint8_t *aad, size_t aadLen, uint8_t *pt, size_t len, uint8_t *tag) {
  unsigned char nonce[AEAD_NONCE_LEN];
  make_nonce(nonce, aad);
  if (len <= AEAD_SMALL_MAX) {
    cp_seal(key, nonce, aad, aadLen, pt, len, tag);
    return 1;
  }
  return aead_seal_evp(key, nonce, aad, aadLen, pt, len, tag);
}

/* Open one packet: verify the tag over ct[0..len), decrypt in place. Returns 1 when authentic. */
static inline int aead_open_one(const uint8_t *key, const uint8_t *aad, size_t aadLen, uint8_t *ct, size_t len, const uint8_t *tagIn) {
  unsigned char nonce[AEAD_NONCE_LEN];
  make_nonce(nonce, aad);
  if (len <= AEAD_SMALL_MAX) return cp_open(key, nonce, aad, aadLen, ct, len, tagIn);
  return aead_open_evp(key, nonce, aad, aadLen, ct, len, tagIn);
}

/* Frees this thread's OpenSSL contexts (module.c, when the thread's last env goes). */
void aead_thread_free(void);
/* aeadForget(): wipe this thread's cached keys and contexts (a key was removed). */
napi_value aead_forget(napi_env env, napi_callback_info info);
/* Test seam (testing.c aeadCachedKeys): this thread's cached seal and open keys. */
void aead_cached_keys(uint8_t out[2 * AEAD_KEY_LEN]);

/* Bindings (aead.c). */
napi_value aead_seal_batch(napi_env env, napi_callback_info info);
napi_value aead_open_batch(napi_env env, napi_callback_info info);

#endif
