/*
 * ChaCha20-Poly1305 AEAD (RFC 8439), portable C, for SMALL packets only.
 *
 * Why beside OpenSSL: for a 64-byte packet OpenSSL 3's EVP spends more time
 * in its provider dispatch (re-initialising the context per nonce, building
 * OSSL_PARAM arrays for the tag) than in the cipher, and that code path is
 * large: on an idle tunnel every packet runs it with cold caches. This is a
 * straight 32-bit ChaCha20 and a 64-bit-limb Poly1305 (the "donna" layout),
 * a few hundred instructions per packet. Large packets stay on OpenSSL,
 * whose AVX-512 code wins from a few hundred bytes up.
 *
 * Checked byte for byte against @noble/ciphers and the RFC 8439 vectors
 * (test/native/native.test.ts, every size 0..1500 both ways). open verifies the
 * tag (constant time) BEFORE decrypting: a forged packet is left untouched.
 *
 * This header: the little-endian byte helpers (inline; the fast path frames
 * with them too), the Poly1305 state and the entry points. The cipher itself
 * is chacha20poly1305.c: one translation unit, so its block function and
 * Poly1305 steps inline into cp_seal/cp_open; aead.h calls those once per
 * small packet.
 */
#ifndef LWT_CHACHA20POLY1305_H
#define LWT_CHACHA20POLY1305_H

#include <stdint.h>
#include <string.h>

static inline uint32_t cp_le32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t cp_le64(const uint8_t *p) {
  return (uint64_t)cp_le32(p) | ((uint64_t)cp_le32(p + 4) << 32);
}
static inline void cp_put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void cp_put64(uint8_t *p, uint64_t v) {
  cp_put32(p, (uint32_t)v);
  cp_put32(p + 4, (uint32_t)(v >> 32));
}

/* ---- AEAD (RFC 8439 §2.8) ---- */

/* Encrypt data[0..len) in place and write the 16-byte tag. */
void cp_seal(const uint8_t key[32], const uint8_t nonce[12], const uint8_t *aad, size_t aadLen,
             uint8_t *data, size_t len, uint8_t tag[16]);
/* Verify the tag over ciphertext data[0..len), then decrypt in place. Returns 1 when authentic, else 0 (data untouched). */
int cp_open(const uint8_t key[32], const uint8_t nonce[12], const uint8_t *aad, size_t aadLen,
            uint8_t *data, size_t len, const uint8_t tag[16]);

/* ---- Poly1305 alone (RFC 8439 §2.5), for the AEAD and for tests ---- */

/* 44/44/42-bit limbs of r and h, r's precomputed 5*4 multiples, the pad s. */
typedef struct { uint64_t r0, r1, r2, s1, s2, h0, h1, h2, pad0, pad1; } cp_poly;

void cp_poly_init(cp_poly *p, const uint8_t key[32]);
/* Absorb whole 16-byte blocks (each with the 2^128 bit). */
void cp_poly_blocks(cp_poly *p, const uint8_t *m, size_t nblocks);
/* The 16-byte tag; wipes the state. */
void cp_poly_finish(cp_poly *p, uint8_t mac[16]);

#endif
