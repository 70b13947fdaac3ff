/*
 * fec: the FEC code's byte work, GF(2^8) matrix times shards
 * (dataplane/reed-solomon.ts builds the matrices, fec.ts groups the
 * messages; this file only multiplies, for encoding and for rebuilding).
 *
 *   gfMatMul(coefs, rows, k, src, srcOffsets, srcLens, dst, dstOffsets, len)
 *     for j < rows, i < len:
 *       dst[dstOffsets[j] + i] = XOR over c < k of coefs[j*k + c] · src[srcOffsets[c] + i]
 *     where a source is zero past its srcLens[c] bytes (shorter messages of a
 *     group count as zero-padded). src and dst may be one buffer; the regions
 *     of dst must not overlap the sources.
 *
 * Field: x^8+x^4+x^3+x^2+1 (0x11d), generator 2: the same tables as
 * reed-solomon.ts (test/dataplane/fec-native.test.ts checks both against each
 * other and against klauspost/reedsolomon's vectors).
 *
 * Speed: multiplying a region by a constant c is, per byte, c·b = c·(b & 15)
 * XOR c·(b & 0xf0): two 16-entry tables per coefficient, so with AVX2 32
 * bytes take two PSHUFB (the split-table method of Plank et al., "Screaming
 * fast Galois field arithmetic", as in klauspost/reedsolomon and ISA-L);
 * without AVX2, one lookup in the coefficient's 256-byte row per byte. The
 * loop runs source by source over every output row, so a source shard is
 * read from L1. All offsets and lengths are checked before any byte is
 * touched. LWT_FEC_SCALAR=1 in the environment forces the portable loop.
 */
#include "fec.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "napi_util.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static uint8_t gfMul[256][256];  /* gfMul[a][b] = a·b */
static uint8_t gfLo[256][16];    /* gfLo[c][x] = c·x */
static uint8_t gfHi[256][16];    /* gfHi[c][x] = c·(x << 4) */
static pthread_once_t tablesOnce = PTHREAD_ONCE_INIT;
static int haveAvx2;

static void init_tables(void) {
  uint8_t exp[510], lg[256];
  unsigned x = 1;
  memset(lg, 0, sizeof lg);
  for (int i = 0; i < 255; i++) {
    exp[i] = (uint8_t)x;
    lg[x] = (uint8_t)i;
    x <<= 1;
    if (x & 0x100) x ^= 0x11d;
  }
  for (int i = 255; i < 510; i++) exp[i] = exp[i - 255];
  memset(gfMul, 0, sizeof gfMul);
  for (int a = 1; a < 256; a++)
    for (int b = 1; b < 256; b++) gfMul[a][b] = exp[lg[a] + lg[b]];
  for (int c = 0; c < 256; c++)
    for (int i = 0; i < 16; i++) { gfLo[c][i] = gfMul[c][i]; gfHi[c][i] = gfMul[c][i << 4]; }
#if defined(__x86_64__)
  __builtin_cpu_init();
  /* LWT_FEC_SCALAR=1: the portable loop even where AVX2 is there (its test compares both). */
  const char *scalar = getenv("LWT_FEC_SCALAR");
  haveAvx2 = __builtin_cpu_supports("avx2") && !(scalar && scalar[0] == '1');
#endif
}

/* dst[0..n) ^= c · src[0..n), one table lookup per byte. */
static void mul_add_scalar(uint8_t c, const uint8_t *src, uint8_t *dst, size_t n) {
  const uint8_t *t = gfMul[c];
  for (size_t i = 0; i < n; i++) dst[i] ^= t[src[i]];
}

#if defined(__x86_64__)
__attribute__((target("avx2")))
static void mul_add_avx2(uint8_t c, const uint8_t *src, uint8_t *dst, size_t n) {
  const __m256i lo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)gfLo[c]));
  const __m256i hi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)gfHi[c]));
  const __m256i mask = _mm256_set1_epi8(0x0f);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i s = _mm256_loadu_si256((const __m256i *)(src + i));
    __m256i p = _mm256_xor_si256(_mm256_shuffle_epi8(lo, _mm256_and_si256(s, mask)),
                                 _mm256_shuffle_epi8(hi, _mm256_and_si256(_mm256_srli_epi64(s, 4), mask)));
    _mm256_storeu_si256((__m256i *)(dst + i), _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(dst + i)), p));
  }
  if (i < n) mul_add_scalar(c, src + i, dst + i, n - i);
}
#endif

static void mul_add(uint8_t c, const uint8_t *src, uint8_t *dst, size_t n) {
  if (c == 0 || n == 0) return;
#if defined(__x86_64__)
  if (haveAvx2) { mul_add_avx2(c, src, dst, n); return; }
#endif
  if (c == 1) { for (size_t i = 0; i < n; i++) dst[i] ^= src[i]; return; }
  mul_add_scalar(c, src, dst, n);
}

void fec_mat_mul(const uint8_t *coefs, int rows, int k, const uint8_t *const *src, const int32_t *srcLens,
                 uint8_t *const *dst, size_t len) {
  pthread_once(&tablesOnce, init_tables);
  for (int j = 0; j < rows; j++) memset(dst[j], 0, len);
  for (int c = 0; c < k; c++) {
    size_t n = srcLens[c] < 0 ? 0 : (size_t)srcLens[c];
    if (n > len) n = len;
    for (int j = 0; j < rows; j++) mul_add(coefs[(size_t)j * (size_t)k + (size_t)c], src[c], dst[j], n);
  }
}

#define FEC_MAX_ROWS 256

napi_value gf_mat_mul(napi_env env, napi_callback_info info) {
  static const char *fn = "gfMatMul";
  uint8_t *coefs, *src, *dst;
  size_t coefsLen, srcLen, dstLen;
  int64_t rows, k, len;
  int32_t *srcOffsets, *srcLens, *dstOffsets;
  if (PARSE_ARGS(env, info, fn, ARG_U8("coefs", &coefs, &coefsLen), ARG_INT("rows", 0, FEC_MAX_ROWS, &rows),
                 ARG_INT("k", 0, FEC_MAX_ROWS, &k), ARG_U8("src", &src, &srcLen),
                 ARG_I32_N("srcOffsets", &srcOffsets, 1, &k), ARG_I32_N("srcLens", &srcLens, 1, &k),
                 ARG_U8("dst", &dst, &dstLen), ARG_I32_N("dstOffsets", &dstOffsets, 1, &rows),
                 ARG_INT("len", 0, 65535, &len))) return NULL;
  if (check_count(env, fn, "coefs", coefsLen, rows * k)) return NULL;
  const uint8_t *s[FEC_MAX_ROWS];
  uint8_t *d[FEC_MAX_ROWS];
  int32_t n[FEC_MAX_ROWS];
  for (int64_t c = 0; c < k; c++) {
    /* Only min(len, srcLens[c]) bytes of a source are read. */
    n[c] = srcLens[c] > len ? (int32_t)len : srcLens[c];
    if (srcOffsets[c] < 0 || n[c] < 0 || (size_t)srcOffsets[c] + (size_t)n[c] > srcLen) {
      throw_range(env, fn, "a source shard lies outside src");
      return NULL;
    }
    s[c] = src + srcOffsets[c];
  }
  for (int64_t j = 0; j < rows; j++) {
    if (dstOffsets[j] < 0 || (size_t)dstOffsets[j] + (size_t)len > dstLen) {
      throw_range(env, fn, "an output shard lies outside dst");
      return NULL;
    }
    d[j] = dst + dstOffsets[j];
  }
  fec_mat_mul(coefs, (int)rows, (int)k, s, n, d, (size_t)len);
  return NULL;
}
