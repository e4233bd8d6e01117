/* amp_chacha20.c: ChaCha20 (RFC 8439), portable C plus an AVX2 path that
 * computes eight blocks at once, chosen at run time. */
#include "amp_chacha20.h"

#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* This module links nothing else (not amp_util), so it has its own loads,
 * stores and wipe. */
static inline uint32_t ld32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
         ((uint32_t)p[3] << 24);
}

static inline void st32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static void wipe(void *p, size_t n) { explicit_bzero(p, n); }

#define ROTL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define QR(a, b, c, d)                                                         \
  do {                                                                         \
    a += b; d ^= a; d = ROTL(d, 16);                                           \
    c += d; b ^= c; b = ROTL(b, 12);                                           \
    a += b; d ^= a; d = ROTL(d, 8);                                            \
    c += d; b ^= c; b = ROTL(b, 7);                                            \
  } while (0)

/* init_state lays out the 16 input words: constants, key, counter, nonce. */
static void init_state(uint32_t s[16], const uint8_t key[32], uint32_t counter,
                       const uint8_t nonce[12]) {
  s[0] = 0x61707865u; /* "expand 32-byte k" */
  s[1] = 0x3320646eu;
  s[2] = 0x79622d32u;
  s[3] = 0x6b206574u;
  for (int i = 0; i < 8; i++) s[4 + i] = ld32(key + 4 * i);
  s[12] = counter;
  for (int i = 0; i < 3; i++) s[13 + i] = ld32(nonce + 4 * i);
}

/* core writes the block for state s (s[12] is the counter). */
static void core(uint8_t out[64], const uint32_t s[16]) {
  uint32_t x0 = s[0], x1 = s[1], x2 = s[2], x3 = s[3];
  uint32_t x4 = s[4], x5 = s[5], x6 = s[6], x7 = s[7];
  uint32_t x8 = s[8], x9 = s[9], x10 = s[10], x11 = s[11];
  uint32_t x12 = s[12], x13 = s[13], x14 = s[14], x15 = s[15];
  for (int i = 0; i < 10; i++) {
    QR(x0, x4, x8, x12);
    QR(x1, x5, x9, x13);
    QR(x2, x6, x10, x14);
    QR(x3, x7, x11, x15);
    QR(x0, x5, x10, x15);
    QR(x1, x6, x11, x12);
    QR(x2, x7, x8, x13);
    QR(x3, x4, x9, x14);
  }
  st32(out + 0, x0 + s[0]);    st32(out + 4, x1 + s[1]);
  st32(out + 8, x2 + s[2]);    st32(out + 12, x3 + s[3]);
  st32(out + 16, x4 + s[4]);   st32(out + 20, x5 + s[5]);
  st32(out + 24, x6 + s[6]);   st32(out + 28, x7 + s[7]);
  st32(out + 32, x8 + s[8]);   st32(out + 36, x9 + s[9]);
  st32(out + 40, x10 + s[10]); st32(out + 44, x11 + s[11]);
  st32(out + 48, x12 + s[12]); st32(out + 52, x13 + s[13]);
  st32(out + 56, x14 + s[14]); st32(out + 60, x15 + s[15]);
}

void amp_chacha20_block(uint8_t out[64], const uint8_t key[32], uint32_t counter,
                        const uint8_t nonce[12]) {
  uint32_t s[16];
  init_state(s, key, counter, nonce);
  core(out, s);
  wipe(s, sizeof s);
}

/* xor_portable: one block at a time; advances s[12]. in NULL: write the
 * keystream itself. */
static void xor_portable(uint8_t *out, const uint8_t *in, size_t len, uint32_t s[16]) {
  uint8_t ks[64];
  while (len > 0) {
    core(ks, s);
    s[12]++;
    size_t n = len < 64 ? len : 64;
    if (in) {
      for (size_t i = 0; i < n; i++) out[i] = in[i] ^ ks[i];
      in += n;
    } else {
      memcpy(out, ks, n);
    }
    out += n;
    len -= n;
  }
  wipe(ks, sizeof ks);
}

/* ---- AVX2: eight blocks at once -----------------------------------------
 * Word j of the eight blocks sits in one 256-bit vector (block b in lane b),
 * so a quarter round is the scalar one on vectors and the counters are
 * s[12] + 0..7 (wrapping like the scalar counter). After the rounds an 8x8
 * transpose of 32-bit words turns eight word vectors into eight 32-byte
 * halves of blocks. */
#if defined(__x86_64__)
#define AVX2_FN static __attribute__((target("avx2")))
#define AVX2_INLINE static inline __attribute__((always_inline, target("avx2")))

#define V_ROTL(x, n) _mm256_or_si256(_mm256_slli_epi32(x, n), _mm256_srli_epi32(x, 32 - (n)))
#define V_QR(a, b, c, d)                                                       \
  do {                                                                         \
    a = _mm256_add_epi32(a, b); d = _mm256_xor_si256(d, a);                    \
    d = _mm256_shuffle_epi8(d, rot16);                                         \
    c = _mm256_add_epi32(c, d); b = _mm256_xor_si256(b, c); b = V_ROTL(b, 12); \
    a = _mm256_add_epi32(a, b); d = _mm256_xor_si256(d, a);                    \
    d = _mm256_shuffle_epi8(d, rot8);                                          \
    c = _mm256_add_epi32(c, d); b = _mm256_xor_si256(b, c); b = V_ROTL(b, 7);  \
  } while (0)

/* transpose8 turns v[0..7] (word k of blocks 0..7) into r[b] = words 0..7 of
 * block b. */
AVX2_INLINE void transpose8(__m256i r[8], const __m256i v[8]) {
  __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]), t1 = _mm256_unpackhi_epi32(v[0], v[1]);
  __m256i t2 = _mm256_unpacklo_epi32(v[2], v[3]), t3 = _mm256_unpackhi_epi32(v[2], v[3]);
  __m256i t4 = _mm256_unpacklo_epi32(v[4], v[5]), t5 = _mm256_unpackhi_epi32(v[4], v[5]);
  __m256i t6 = _mm256_unpacklo_epi32(v[6], v[7]), t7 = _mm256_unpackhi_epi32(v[6], v[7]);
  /* u0: words 0-3 of blocks 0 | 4, u1: of 1 | 5, u2: 2 | 6, u3: 3 | 7;
   * u4..u7 the same for words 4-7. */
  __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
  __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
  __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
  __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
  r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
  r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
  r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
  r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
  r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
  r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
  r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
  r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

/* x8 writes 512 bytes to out: eight keystream blocks from counter s[12],
 * xored with in unless in is NULL. */
AVX2_FN void x8(uint8_t *out, const uint8_t *in, const uint32_t s[16]) {
  const __m256i rot16 = _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
                                         2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
  const __m256i rot8 = _mm256_setr_epi8(3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14,
                                        3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14);
  __m256i ctr = _mm256_add_epi32(_mm256_set1_epi32((int)s[12]),
                                 _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  __m256i x0 = _mm256_set1_epi32((int)s[0]), x1 = _mm256_set1_epi32((int)s[1]);
  __m256i x2 = _mm256_set1_epi32((int)s[2]), x3 = _mm256_set1_epi32((int)s[3]);
  __m256i x4 = _mm256_set1_epi32((int)s[4]), x5 = _mm256_set1_epi32((int)s[5]);
  __m256i x6 = _mm256_set1_epi32((int)s[6]), x7 = _mm256_set1_epi32((int)s[7]);
  __m256i x8_ = _mm256_set1_epi32((int)s[8]), x9 = _mm256_set1_epi32((int)s[9]);
  __m256i x10 = _mm256_set1_epi32((int)s[10]), x11 = _mm256_set1_epi32((int)s[11]);
  __m256i x12 = ctr, x13 = _mm256_set1_epi32((int)s[13]);
  __m256i x14 = _mm256_set1_epi32((int)s[14]), x15 = _mm256_set1_epi32((int)s[15]);
  for (int i = 0; i < 10; i++) {
    V_QR(x0, x4, x8_, x12);
    V_QR(x1, x5, x9, x13);
    V_QR(x2, x6, x10, x14);
    V_QR(x3, x7, x11, x15);
    V_QR(x0, x5, x10, x15);
    V_QR(x1, x6, x11, x12);
    V_QR(x2, x7, x8_, x13);
    V_QR(x3, x4, x9, x14);
  }
  __m256i v[8], r[8];
  v[0] = _mm256_add_epi32(x0, _mm256_set1_epi32((int)s[0]));
  v[1] = _mm256_add_epi32(x1, _mm256_set1_epi32((int)s[1]));
  v[2] = _mm256_add_epi32(x2, _mm256_set1_epi32((int)s[2]));
  v[3] = _mm256_add_epi32(x3, _mm256_set1_epi32((int)s[3]));
  v[4] = _mm256_add_epi32(x4, _mm256_set1_epi32((int)s[4]));
  v[5] = _mm256_add_epi32(x5, _mm256_set1_epi32((int)s[5]));
  v[6] = _mm256_add_epi32(x6, _mm256_set1_epi32((int)s[6]));
  v[7] = _mm256_add_epi32(x7, _mm256_set1_epi32((int)s[7]));
  transpose8(r, v);
  for (int b = 0; b < 8; b++) {
    __m256i k = r[b];
    if (in) k = _mm256_xor_si256(k, _mm256_loadu_si256((const __m256i *)(in + 64 * b)));
    _mm256_storeu_si256((__m256i *)(out + 64 * b), k);
  }
  v[0] = _mm256_add_epi32(x8_, _mm256_set1_epi32((int)s[8]));
  v[1] = _mm256_add_epi32(x9, _mm256_set1_epi32((int)s[9]));
  v[2] = _mm256_add_epi32(x10, _mm256_set1_epi32((int)s[10]));
  v[3] = _mm256_add_epi32(x11, _mm256_set1_epi32((int)s[11]));
  v[4] = _mm256_add_epi32(x12, ctr);
  v[5] = _mm256_add_epi32(x13, _mm256_set1_epi32((int)s[13]));
  v[6] = _mm256_add_epi32(x14, _mm256_set1_epi32((int)s[14]));
  v[7] = _mm256_add_epi32(x15, _mm256_set1_epi32((int)s[15]));
  transpose8(r, v);
  for (int b = 0; b < 8; b++) {
    __m256i k = r[b];
    if (in) k = _mm256_xor_si256(k, _mm256_loadu_si256((const __m256i *)(in + 64 * b + 32)));
    _mm256_storeu_si256((__m256i *)(out + 64 * b + 32), k);
  }
  /* The key is in the vector registers and in v, r on the stack. */
  wipe(v, sizeof v);
  wipe(r, sizeof r);
  _mm256_zeroall();
}

/* Below this many trailing bytes the scalar blocks beat one x8 call plus a
 * 512-byte buffer (measured: x8 costs about two scalar blocks). */
#define AVX2_TAIL_MIN 128

static void xor_avx2(uint8_t *out, const uint8_t *in, size_t len, uint32_t s[16]) {
  while (len >= 512) {
    x8(out, in, s);
    s[12] += 8;
    out += 512;
    if (in) in += 512;
    len -= 512;
  }
  if (len > AVX2_TAIL_MIN) {
    uint8_t ks[512];
    x8(ks, NULL, s);
    s[12] += (uint32_t)((len + 63) / 64);
    if (in) {
      for (size_t i = 0; i < len; i++) out[i] = in[i] ^ ks[i];
    } else {
      memcpy(out, ks, len);
    }
    wipe(ks, sizeof ks);
  } else if (len > 0) {
    xor_portable(out, in, len, s);
  }
}

static int cpu_has_avx2(void) { return __builtin_cpu_supports("avx2"); }
#else
static int cpu_has_avx2(void) { return 0; }
#endif

/* ---- implementation choice --------------------------------------------- */

enum { IMPL_UNSET = 0, IMPL_PORTABLE = 1, IMPL_AVX2 = 2 };
static _Atomic int impl_choice = IMPL_UNSET;

static int impl_get(void) {
  int v = atomic_load_explicit(&impl_choice, memory_order_relaxed);
  if (v == IMPL_UNSET) {
    v = cpu_has_avx2() ? IMPL_AVX2 : IMPL_PORTABLE;
    atomic_store_explicit(&impl_choice, v, memory_order_relaxed);
  }
  return v;
}

const char *amp_chacha20_impl(void) { return impl_get() == IMPL_AVX2 ? "avx2" : "portable"; }

size_t amp_chacha20_wide_len(void) { return impl_get() == IMPL_AVX2 ? 512 : 64; }

int amp_chacha20_use(const char *name) {
  int v;
  if (strcmp(name, "auto") == 0) {
    v = cpu_has_avx2() ? IMPL_AVX2 : IMPL_PORTABLE;
  } else if (strcmp(name, "portable") == 0) {
    v = IMPL_PORTABLE;
  } else if (strcmp(name, "avx2") == 0) {
    if (!cpu_has_avx2()) return AMP_ERR_STATE;
    v = IMPL_AVX2;
  } else {
    return AMP_ERR_STATE;
  }
  atomic_store_explicit(&impl_choice, v, memory_order_relaxed);
  return AMP_OK;
}

static void xor_any(uint8_t *out, const uint8_t *in, size_t len, uint32_t s[16]) {
#if defined(__x86_64__)
  if (impl_get() == IMPL_AVX2) {
    xor_avx2(out, in, len, s);
    return;
  }
#endif
  xor_portable(out, in, len, s);
}

void amp_chacha20_xor(uint8_t *out, const uint8_t *in, size_t len, const uint8_t key[32],
                      const uint8_t nonce[12], uint32_t counter) {
  uint32_t s[16];
  if (len == 0) return;
  init_state(s, key, counter, nonce);
  xor_any(out, in, len, s);
  wipe(s, sizeof s);
}

void amp_chacha20_stream(uint8_t *out, size_t len, const uint8_t key[32]) {
  static const uint8_t zero_nonce[12];
  uint32_t s[16];
  if (len == 0) return;
  init_state(s, key, 0, zero_nonce);
  xor_any(out, NULL, len, s);
  wipe(s, sizeof s);
}
