/*
 * ChaCha20-Poly1305 (RFC 8439) for small packets: the cipher behind
 * chacha20poly1305.h (why it exists beside OpenSSL, and how it is checked,
 * is said there).
 *
 * Flow: cp_seal = cp_init (key, nonce) -> cp_xor (keystream from block 1)
 * -> cp_tag (one-time key from block 0, Poly1305 over pad16(aad) ||
 * pad16(ct) || lengths). cp_open computes the tag first, compares it in
 * constant time, and only then decrypts.
 */
#include "chacha20poly1305.h"

/* ---- ChaCha20 (RFC 8439 §2.3) ---- */

#define CP_ROTL(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define CP_QR(a, b, c, d)                      \
  a += b; d ^= a; d = CP_ROTL(d, 16);          \
  c += d; b ^= c; b = CP_ROTL(b, 12);          \
  a += b; d ^= a; d = CP_ROTL(d, 8);           \
  c += d; b ^= c; b = CP_ROTL(b, 7);

/* One 64-byte keystream block for (state with counter) into out. */
static inline void cp_block(const uint32_t in[16], uint8_t out[64]) {
  uint32_t x0 = in[0], x1 = in[1], x2 = in[2], x3 = in[3], x4 = in[4], x5 = in[5], x6 = in[6], x7 = in[7];
  uint32_t x8 = in[8], x9 = in[9], x10 = in[10], x11 = in[11], x12 = in[12], x13 = in[13], x14 = in[14], x15 = in[15];
  for (int i = 0; i < 10; i++) {
    CP_QR(x0, x4, x8, x12) CP_QR(x1, x5, x9, x13) CP_QR(x2, x6, x10, x14) CP_QR(x3, x7, x11, x15)
    CP_QR(x0, x5, x10, x15) CP_QR(x1, x6, x11, x12) CP_QR(x2, x7, x8, x13) CP_QR(x3, x4, x9, x14)
  }
  cp_put32(out + 0, x0 + in[0]); cp_put32(out + 4, x1 + in[1]); cp_put32(out + 8, x2 + in[2]); cp_put32(out + 12, x3 + in[3]);
  cp_put32(out + 16, x4 + in[4]); cp_put32(out + 20, x5 + in[5]); cp_put32(out + 24, x6 + in[6]); cp_put32(out + 28, x7 + in[7]);
  cp_put32(out + 32, x8 + in[8]); cp_put32(out + 36, x9 + in[9]); cp_put32(out + 40, x10 + in[10]); cp_put32(out + 44, x11 + in[11]);
  cp_put32(out + 48, x12 + in[12]); cp_put32(out + 52, x13 + in[13]); cp_put32(out + 56, x14 + in[14]); cp_put32(out + 60, x15 + in[15]);
}

static inline void cp_init(uint32_t st[16], const uint8_t key[32], const uint8_t nonce[12]) {
  st[0] = 0x61707865; st[1] = 0x3320646e; st[2] = 0x79622d32; st[3] = 0x6b206574;
  for (int i = 0; i < 8; i++) st[4 + i] = cp_le32(key + 4 * i);
  st[12] = 0;
  st[13] = cp_le32(nonce); st[14] = cp_le32(nonce + 4); st[15] = cp_le32(nonce + 8);
}

/* XOR len bytes of data in place with the keystream starting at block counter 1. */
static inline void cp_xor(uint32_t st[16], uint8_t *data, size_t len) {
  uint8_t ks[64];
  st[12] = 1;
  while (len > 0) {
    cp_block(st, ks);
    size_t n = len < 64 ? len : 64;
    for (size_t i = 0; i < n; i++) data[i] ^= ks[i];
    data += n;
    len -= n;
    st[12]++;
  }
  memset(ks, 0, sizeof ks);
}

/* ---- Poly1305 (RFC 8439 §2.5), 44/44/42-bit limbs ---- */

typedef unsigned __int128 cp_u128;
#define CP_M44 0xfffffffffffULL
#define CP_M42 0x3ffffffffffULL

static inline void poly_init(cp_poly *p, const uint8_t key[32]) {
  uint64_t t0 = cp_le64(key), t1 = cp_le64(key + 8);
  p->r0 = t0 & 0xffc0fffffffULL;
  p->r1 = ((t0 >> 44) | (t1 << 20)) & 0xfffffc0ffffULL;
  p->r2 = (t1 >> 24) & 0x00ffffffc0fULL;
  p->s1 = p->r1 * (5 << 2);
  p->s2 = p->r2 * (5 << 2);
  p->h0 = p->h1 = p->h2 = 0;
  p->pad0 = cp_le64(key + 16);
  p->pad1 = cp_le64(key + 24);
}

/* Absorb whole 16-byte blocks (each with the 2^128 bit). */
static inline void poly_blocks(cp_poly *p, const uint8_t *m, size_t nblocks) {
  uint64_t h0 = p->h0, h1 = p->h1, h2 = p->h2;
  const uint64_t r0 = p->r0, r1 = p->r1, r2 = p->r2, s1 = p->s1, s2 = p->s2;
  while (nblocks-- > 0) {
    uint64_t t0 = cp_le64(m), t1 = cp_le64(m + 8);
    h0 += t0 & CP_M44;
    h1 += ((t0 >> 44) | (t1 << 20)) & CP_M44;
    h2 += ((t1 >> 24) & CP_M42) | (1ULL << 40);
    cp_u128 d0 = (cp_u128)h0 * r0 + (cp_u128)h1 * s2 + (cp_u128)h2 * s1;
    cp_u128 d1 = (cp_u128)h0 * r1 + (cp_u128)h1 * r0 + (cp_u128)h2 * s2;
    cp_u128 d2 = (cp_u128)h0 * r2 + (cp_u128)h1 * r1 + (cp_u128)h2 * r0;
    uint64_t c = (uint64_t)(d0 >> 44); h0 = (uint64_t)d0 & CP_M44;
    d1 += c; c = (uint64_t)(d1 >> 44); h1 = (uint64_t)d1 & CP_M44;
    d2 += c; c = (uint64_t)(d2 >> 42); h2 = (uint64_t)d2 & CP_M42;
    h0 += c * 5; c = h0 >> 44; h0 &= CP_M44;
    h1 += c;
    m += 16;
  }
  p->h0 = h0; p->h1 = h1; p->h2 = h2;
}

/* Absorb len bytes zero-padded to a multiple of 16 (the AEAD's pad16). */
static inline void poly_padded(cp_poly *p, const uint8_t *m, size_t len) {
  poly_blocks(p, m, len / 16);
  size_t rest = len % 16;
  if (rest) {
    uint8_t b[16] = { 0 };
    memcpy(b, m + len - rest, rest);
    poly_blocks(p, b, 1);
  }
}

static inline void poly_finish(cp_poly *p, uint8_t mac[16]) {
  uint64_t h0 = p->h0, h1 = p->h1, h2 = p->h2, c;
  c = h1 >> 44; h1 &= CP_M44;
  h2 += c; c = h2 >> 42; h2 &= CP_M42;
  h0 += c * 5; c = h0 >> 44; h0 &= CP_M44;
  h1 += c; c = h1 >> 44; h1 &= CP_M44;
  h2 += c; c = h2 >> 42; h2 &= CP_M42;
  h0 += c * 5; c = h0 >> 44; h0 &= CP_M44;
  h1 += c;
  /* g = h + 5 - 2^130; use it when h >= p (no borrow), in constant time */
  uint64_t g0 = h0 + 5; c = g0 >> 44; g0 &= CP_M44;
  uint64_t g1 = h1 + c; c = g1 >> 44; g1 &= CP_M44;
  uint64_t g2 = h2 + c - (1ULL << 42);
  c = (g2 >> 63) - 1; /* all ones when g2 did not borrow */
  g0 &= c; g1 &= c; g2 &= c;
  c = ~c;
  h0 = (h0 & c) | g0; h1 = (h1 & c) | g1; h2 = (h2 & c) | g2;
  /* h + pad mod 2^128 */
  uint64_t t0 = p->pad0, t1 = p->pad1;
  h0 += t0 & CP_M44; c = h0 >> 44; h0 &= CP_M44;
  h1 += (((t0 >> 44) | (t1 << 20)) & CP_M44) + c; c = h1 >> 44; h1 &= CP_M44;
  h2 += ((t1 >> 24) & CP_M42) + c; h2 &= CP_M42;
  cp_put64(mac, h0 | (h1 << 44));
  cp_put64(mac + 8, (h1 >> 20) | (h2 << 24));
  memset(p, 0, sizeof *p);
}

/* Tag over aad and ciphertext with the one-time key from keystream block 0. */
static inline void cp_tag(uint32_t st[16], const uint8_t *aad, size_t aadLen, const uint8_t *ct, size_t len, uint8_t tag[16]) {
  uint8_t otk[64];
  st[12] = 0;
  cp_block(st, otk);
  cp_poly p;
  poly_init(&p, otk);
  memset(otk, 0, sizeof otk);
  poly_padded(&p, aad, aadLen);
  poly_padded(&p, ct, len);
  uint8_t lens[16];
  cp_put64(lens, (uint64_t)aadLen);
  cp_put64(lens + 8, (uint64_t)len);
  poly_blocks(&p, lens, 1);
  poly_finish(&p, tag);
}

/* Encrypt data[0..len) in place and write the 16-byte tag. */
void cp_seal(const uint8_t key[32], const uint8_t nonce[12], const uint8_t *aad, size_t aadLen,
             uint8_t *data, size_t len, uint8_t tag[16]) {
  uint32_t st[16];
  cp_init(st, key, nonce);
  cp_xor(st, data, len);
  cp_tag(st, aad, aadLen, data, len, tag);
  memset(st, 0, sizeof st);
}

/* Verify the tag over ciphertext data[0..len), then decrypt in place. Returns 1 when authentic, else 0 (data untouched). */
int cp_open(const uint8_t key[32], const uint8_t nonce[12], const uint8_t *aad, size_t aadLen,
            uint8_t *data, size_t len, const uint8_t tag[16]) {
  uint32_t st[16];
  uint8_t want[16];
  cp_init(st, key, nonce);
  cp_tag(st, aad, aadLen, data, len, want);
  uint8_t diff = 0;
  for (int i = 0; i < 16; i++) diff |= (uint8_t)(want[i] ^ tag[i]);
  if (diff != 0) { memset(st, 0, sizeof st); return 0; }
  cp_xor(st, data, len);
  memset(st, 0, sizeof st);
  return 1;
}

/* Poly1305 alone, for tests (test/native/native.test.ts via poly1305Blocks): the same steps the AEAD inlines. */
void cp_poly_init(cp_poly *p, const uint8_t key[32]) { poly_init(p, key); }
void cp_poly_blocks(cp_poly *p, const uint8_t *m, size_t nblocks) { poly_blocks(p, m, nblocks); }
void cp_poly_finish(cp_poly *p, uint8_t mac[16]) { poly_finish(p, mac); }
