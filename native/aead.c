/*
 * aead: the batch AEAD bindings and the OpenSSL path for large packets
 * (contracts in aead.h). No policy: the caller lays packets out and picks keys.
 *
 * Flow: aeadSealBatch/aeadOpenBatch parse (mem, desc, n, keys[, results]),
 * check every descriptor (check_desc) before touching a byte, then run
 * aead_seal_one/aead_open_one (aead.h) per packet, in place. OpenSSL is Node's
 * own (the EVP symbols resolve against the node binary); each thread keeps
 * one context per direction (tSeal, tOpen) with the key last loaded, so a
 * batch under one key initialises the key schedule once.
 */
#include "aead.h"
#include "napi_util.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>

/* ------------------------------------------------------------------ */
/* Per-thread OpenSSL contexts                                         */
/* ------------------------------------------------------------------ */

typedef struct {
  EVP_CIPHER_CTX *ctx;
  unsigned char key[AEAD_KEY_LEN]; /* the key currently loaded in ctx */
  int haveKey;
} aead_state;

/* This thread's contexts; freed by aead_thread_free when its last env goes. */
static __thread aead_state tSeal, tOpen;

/* Frees the context (OpenSSL clears its key schedule) and wipes our copy of the key. */
static void aead_state_free(aead_state *s) {
  if (s->ctx) EVP_CIPHER_CTX_free(s->ctx);
  OPENSSL_cleanse(s, sizeof *s);
}

void aead_thread_free(void) {
  aead_state_free(&tSeal);
  aead_state_free(&tOpen);
}

/*
 * aeadForget(): a key left the pipeline's tables (its slot is zeroed by the
 * caller); wipe this thread's cached copy of the last keys and their
 * contexts too. The next packet sets them up again (keys change rarely).
 */
napi_value aead_forget(napi_env env, napi_callback_info info) {
  (void)info;
  aead_thread_free();
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

/* Test seam (exported to JS by the test build only): this thread's cached seal and open keys (zeros when none or wiped). */
void aead_cached_keys(uint8_t out[2 * AEAD_KEY_LEN]) {
  memcpy(out, tSeal.key, AEAD_KEY_LEN);
  memcpy(out + AEAD_KEY_LEN, tOpen.key, AEAD_KEY_LEN);
}

/* This thread's context for one direction, with `key` loaded. Returns NULL on an OpenSSL failure. */
static EVP_CIPHER_CTX *aead_ctx(aead_state *s, int enc, const unsigned char *key, const unsigned char *nonce) {
  if (!s->ctx) {
    s->ctx = EVP_CIPHER_CTX_new();
    if (!s->ctx) return NULL;
    if (EVP_CipherInit_ex(s->ctx, EVP_chacha20_poly1305(), NULL, NULL, NULL, enc) != 1) {
      aead_state_free(s);
      return NULL;
    }
    s->haveKey = 0;
  }
  const unsigned char *k = NULL;
  if (!s->haveKey || memcmp(s->key, key, AEAD_KEY_LEN) != 0) k = key;
  if (EVP_CipherInit_ex(s->ctx, NULL, NULL, k, nonce, enc) != 1) {
    s->haveKey = 0;
    return NULL;
  }
  if (k) {
    memcpy(s->key, key, AEAD_KEY_LEN);
    s->haveKey = 1;
  }
  return s->ctx;
}

int aead_seal_evp(const uint8_t *key, const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *aad, size_t aadLen,
                  uint8_t *pt, size_t len, uint8_t *tag) {
  int outl = 0;
  EVP_CIPHER_CTX *ctx = aead_ctx(&tSeal, 1, key, nonce);
  if (!ctx ||
      EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int)aadLen) != 1 ||
      (len > 0 && EVP_EncryptUpdate(ctx, pt, &outl, pt, (int)len) != 1) ||
      EVP_EncryptFinal_ex(ctx, pt + len, &outl) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_LEN, tag) != 1) {
    tSeal.haveKey = 0;
    return 0;
  }
  return 1;
}

int aead_open_evp(const uint8_t *key, const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *aad, size_t aadLen,
                  uint8_t *ct, size_t len, const uint8_t *tagIn) {
  unsigned char tag[AEAD_TAG_LEN];
  int outl = 0;
  memcpy(tag, tagIn, AEAD_TAG_LEN);
  EVP_CIPHER_CTX *ctx = aead_ctx(&tOpen, 0, key, nonce);
  if (!ctx ||
      EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int)aadLen) != 1 ||
      (len > 0 && EVP_DecryptUpdate(ctx, ct, &outl, ct, (int)len) != 1) ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_LEN, tag) != 1) {
    tOpen.haveKey = 0;
    return 0;
  }
  return EVP_DecryptFinal_ex(ctx, ct + len, &outl) == 1;
}

/* ------------------------------------------------------------------ */
/* Batch bindings                                                      */
/* ------------------------------------------------------------------ */

/*
 * Validates n descriptors [off, aadLen, len, keyOff]: aadLen >= 16 (the nonce
 * counter lives at off+8..off+16, inside the AAD), the whole region
 * off..off+aadLen+len(+16 for seal) inside mem, keyOff+32 <= keys length.
 */
static int check_desc(napi_env env, const char *fn, const int32_t *desc, int64_t n, size_t memLen, size_t keysLen, int sealing) {
  char what[220];
  for (int64_t i = 0; i < n; i++) {
    int64_t off = desc[4 * i], aad = desc[4 * i + 1], len = desc[4 * i + 2], keyOff = desc[4 * i + 3];
    int64_t end = off + aad + len + (sealing ? AEAD_TAG_LEN : 0);
    if (off < 0 || aad < MIN_AAD_LEN || len < 0 || end > (int64_t)memLen) {
      snprintf(what, sizeof what,
               "packet %lld [off %lld, aadLen %lld, %s %lld] is invalid: need aadLen >= %d and the packet%s inside mem (%zu bytes)",
               (long long)i, (long long)off, (long long)aad, sealing ? "ptLen" : "ctLen", (long long)len,
               MIN_AAD_LEN, sealing ? " plus its 16-byte tag" : "", memLen);
      throw_range(env, fn, what);
      return -1;
    }
    if (keyOff < 0 || keyOff + AEAD_KEY_LEN > (int64_t)keysLen) {
      snprintf(what, sizeof what, "packet %lld: keyOff %lld + 32 is outside keys (%zu bytes)",
               (long long)i, (long long)keyOff, keysLen);
      throw_range(env, fn, what);
      return -1;
    }
  }
  return 0;
}

/* aeadSealBatch(mem, desc, n, keys): desc [off, aadLen, ptLen, keyOff]; tag written after the ciphertext. */
napi_value aead_seal_batch(napi_env env, napi_callback_info info) {
  static const char *fn = "aeadSealBatch";
  uint8_t *mem, *keys; int32_t *desc;
  size_t memLen, keysLen;
  int64_t n;
  if (PARSE_ARGS(env, info, fn, ARG_U8("mem", &mem, &memLen), ARG_I32_N("desc", &desc, 4, &n),
                 ARG_INT("n", 0, INT32_MAX / 4, &n), ARG_U8("keys", &keys, &keysLen)) ||
      check_desc(env, fn, desc, n, memLen, keysLen, 1)) return NULL;

  for (int64_t i = 0; i < n; i++) {
    int32_t off = desc[4 * i], aadLen = desc[4 * i + 1], ptLen = desc[4 * i + 2], keyOff = desc[4 * i + 3];
    uint8_t *pkt = mem + off, *pt = pkt + aadLen;
    if (!aead_seal_one(keys + keyOff, pkt, (size_t)aadLen, pt, (size_t)ptLen, pt + ptLen)) {
      napi_throw_error(env, "ERR_NATIVE_CRYPTO", "aeadSealBatch: OpenSSL failed to seal a packet");
      return NULL;
    }
  }
  return NULL;
}

/*
 * aeadOpenBatch(mem, desc, n, keys, results) -> number verified
 * desc [off, aadLen, ctLen incl. tag, keyOff]; results[i] = 1 when the tag
 * verified (plaintext in place), else 0 (also for ctLen < 16).
 */
napi_value aead_open_batch(napi_env env, napi_callback_info info) {
  static const char *fn = "aeadOpenBatch";
  uint8_t *mem, *keys; int32_t *desc, *results;
  size_t memLen, keysLen;
  int64_t n;
  if (PARSE_ARGS(env, info, fn, ARG_U8("mem", &mem, &memLen), ARG_I32_N("desc", &desc, 4, &n),
                 ARG_INT("n", 0, INT32_MAX / 4, &n), ARG_U8("keys", &keys, &keysLen), ARG_I32_N("results", &results, 1, &n)) ||
      check_desc(env, fn, desc, n, memLen, keysLen, 0)) return NULL;

  int64_t ok = 0;
  for (int64_t i = 0; i < n; i++) {
    int32_t off = desc[4 * i], aadLen = desc[4 * i + 1], ctLen = desc[4 * i + 2], keyOff = desc[4 * i + 3];
    results[i] = 0;
    if (ctLen < AEAD_TAG_LEN) continue;
    size_t len = (size_t)ctLen - AEAD_TAG_LEN;
    uint8_t *pkt = mem + off, *ct = pkt + aadLen;
    if (aead_open_one(keys + keyOff, pkt, (size_t)aadLen, ct, len, ct + len)) { results[i] = 1; ok++; }
  }
  return make_int(env, ok);
}
