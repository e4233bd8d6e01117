/* amp_sha256_shani.c: SHA-256 compression with the x86 SHA extensions, one
 * stream and two interleaved streams.
 *
 * State layout. sha256rnds2 wants the eight working variables in two vectors,
 * lanes written high to low: ABEF = {A, B, E, F} and CDGH = {C, D, G, H}.
 * One call does two rounds with the two round inputs (W + K) in lanes 0 and 1,
 * and returns the new ABEF; the old ABEF is then the new CDGH, so four rounds
 * are two calls with the roles swapped.
 *
 * Schedule. For a quad X_j = W[4j .. 4j+3] (j >= 4):
 *   X_j = msg2(msg1(X_{j-4}, X_{j-3}) + alignr(X_{j-1}, X_{j-2}, 4), X_{j-1})
 * msg1 adds sigma0 of the next word, alignr picks W[t-7], msg2 adds sigma1.
 *
 * The functions carry target("sha,sse4.1,ssse3"), so the file needs no flags;
 * callers check CPUID first (amp_sha256.c). On other ISAs this file is empty. */
#include "amp_sha256.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <string.h>

#define AMP_SHANI_TARGET __attribute__((target("sha,sse4.1,ssse3")))
#define AMP_SHANI_INLINE static inline __attribute__((always_inline, target("sha,sse4.1,ssse3")))

/* Fully unrolled, the constant loads fold into the adds (measured: batch of
 * 64-byte messages 10-20% faster than the rolled loop). */
#define AMP_UNROLL3 _Pragma("GCC unroll 3")

/* Byte shuffle that turns each big-endian 32-bit word into a native one. */
#define BSWAP32_MASK _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL)

#define KQ(j) _mm_load_si128((const __m128i *)(amp_sha256_k_ + 4 * (j)))

/* Four rounds on (s0 = ABEF, s1 = CDGH) with schedule quad x and constants j. */
#define QROUND(s0, s1, x, j)                                                   \
  do {                                                                         \
    __m128i wk_ = _mm_add_epi32((x), KQ(j));                                   \
    s1 = _mm_sha256rnds2_epu32(s1, s0, wk_);                                   \
    wk_ = _mm_shuffle_epi32(wk_, 0x0e);                                        \
    s0 = _mm_sha256rnds2_epu32(s0, s1, wk_);                                   \
  } while (0)

/* x0 <- next quad from the four previous ones (x0 oldest, x3 newest). */
#define QSCHED(x0, x1, x2, x3)                                                 \
  x0 = _mm_sha256msg2_epu32(                                                   \
      _mm_add_epi32(_mm_sha256msg1_epu32(x0, x1), _mm_alignr_epi8(x3, x2, 4)), x3)

/* load_state: h[0..7] = A..H  ->  ABEF, CDGH. */
AMP_SHANI_INLINE void load_state(__m128i *abef, __m128i *cdgh, const uint32_t h[8]) {
  __m128i abcd = _mm_loadu_si128((const __m128i *)h);       /* lanes A B C D */
  __m128i efgh = _mm_loadu_si128((const __m128i *)(h + 4)); /* lanes E F G H */
  __m128i badc = _mm_shuffle_epi32(abcd, 0xb1);             /* lanes B A D C */
  __m128i hgfe = _mm_shuffle_epi32(efgh, 0x1b);             /* lanes H G F E */
  *abef = _mm_alignr_epi8(badc, hgfe, 8);                   /* lanes F E B A */
  *cdgh = _mm_blend_epi16(hgfe, badc, 0xf0);                /* lanes H G D C */
}

/* unpack_state: ABEF, CDGH  ->  vectors with lanes A B C D and E F G H. */
AMP_SHANI_INLINE void unpack_state(__m128i *abcd, __m128i *efgh, __m128i abef, __m128i cdgh) {
  __m128i a_b_e_f = _mm_shuffle_epi32(abef, 0x1b); /* lanes A B E F */
  __m128i g_h_c_d = _mm_shuffle_epi32(cdgh, 0xb1); /* lanes G H C D */
  *abcd = _mm_blend_epi16(a_b_e_f, g_h_c_d, 0xf0);
  *efgh = _mm_alignr_epi8(g_h_c_d, a_b_e_f, 8);
}

/* One block of 64 bytes at p through (s0, s1). */
AMP_SHANI_INLINE void block1(__m128i *s0p, __m128i *s1p, const uint8_t *p) {
  const __m128i mask = BSWAP32_MASK;
  __m128i s0 = *s0p, s1 = *s1p, save0 = s0, save1 = s1;
  __m128i x0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 0)), mask);
  __m128i x1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16)), mask);
  __m128i x2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 32)), mask);
  __m128i x3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 48)), mask);
  QROUND(s0, s1, x0, 0);
  QROUND(s0, s1, x1, 1);
  QROUND(s0, s1, x2, 2);
  QROUND(s0, s1, x3, 3);
  AMP_UNROLL3 for (int j = 4; j < 16; j += 4) {
    QSCHED(x0, x1, x2, x3); QROUND(s0, s1, x0, j + 0);
    QSCHED(x1, x2, x3, x0); QROUND(s0, s1, x1, j + 1);
    QSCHED(x2, x3, x0, x1); QROUND(s0, s1, x2, j + 2);
    QSCHED(x3, x0, x1, x2); QROUND(s0, s1, x3, j + 3);
  }
  *s0p = _mm_add_epi32(s0, save0);
  *s1p = _mm_add_epi32(s1, save1);
}

/* One block from each of two streams, statement by statement interleaved so
 * the two dependency chains through sha256rnds2 overlap. */
AMP_SHANI_INLINE void block2(__m128i *a0p, __m128i *a1p, const uint8_t *pa,
                             __m128i *b0p, __m128i *b1p, const uint8_t *pb) {
  const __m128i mask = BSWAP32_MASK;
  __m128i a0 = *a0p, a1 = *a1p, b0 = *b0p, b1 = *b1p;
  __m128i ax0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pa + 0)), mask);
  __m128i bx0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pb + 0)), mask);
  __m128i ax1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pa + 16)), mask);
  __m128i bx1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pb + 16)), mask);
  __m128i ax2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pa + 32)), mask);
  __m128i bx2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pb + 32)), mask);
  __m128i ax3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pa + 48)), mask);
  __m128i bx3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(pb + 48)), mask);
  QROUND(a0, a1, ax0, 0); QROUND(b0, b1, bx0, 0);
  QROUND(a0, a1, ax1, 1); QROUND(b0, b1, bx1, 1);
  QROUND(a0, a1, ax2, 2); QROUND(b0, b1, bx2, 2);
  QROUND(a0, a1, ax3, 3); QROUND(b0, b1, bx3, 3);
  AMP_UNROLL3 for (int j = 4; j < 16; j += 4) {
    QSCHED(ax0, ax1, ax2, ax3); QSCHED(bx0, bx1, bx2, bx3);
    QROUND(a0, a1, ax0, j + 0); QROUND(b0, b1, bx0, j + 0);
    QSCHED(ax1, ax2, ax3, ax0); QSCHED(bx1, bx2, bx3, bx0);
    QROUND(a0, a1, ax1, j + 1); QROUND(b0, b1, bx1, j + 1);
    QSCHED(ax2, ax3, ax0, ax1); QSCHED(bx2, bx3, bx0, bx1);
    QROUND(a0, a1, ax2, j + 2); QROUND(b0, b1, bx2, j + 2);
    QSCHED(ax3, ax0, ax1, ax2); QSCHED(bx3, bx0, bx1, bx2);
    QROUND(a0, a1, ax3, j + 3); QROUND(b0, b1, bx3, j + 3);
  }
  *a0p = _mm_add_epi32(a0, *a0p);
  *a1p = _mm_add_epi32(a1, *a1p);
  *b0p = _mm_add_epi32(b0, *b0p);
  *b1p = _mm_add_epi32(b1, *b1p);
}

AMP_SHANI_TARGET
void amp_sha256_compress_shani_(uint32_t h[8], const uint8_t *blocks, size_t nblocks) {
  __m128i s0, s1, abcd, efgh;
  load_state(&s0, &s1, h);
  for (; nblocks > 0; nblocks--, blocks += 64) block1(&s0, &s1, blocks);
  unpack_state(&abcd, &efgh, s0, s1);
  _mm_storeu_si128((__m128i *)h, abcd);
  _mm_storeu_si128((__m128i *)(h + 4), efgh);
}

AMP_SHANI_TARGET
void amp_sha256_compress2_shani_(uint32_t ha[8], const uint8_t *ba, uint32_t hb[8],
                                 const uint8_t *bb, size_t nblocks) {
  __m128i a0, a1, b0, b1, abcd, efgh;
  load_state(&a0, &a1, ha);
  load_state(&b0, &b1, hb);
  for (; nblocks > 0; nblocks--, ba += 64, bb += 64) block2(&a0, &a1, ba, &b0, &b1, bb);
  unpack_state(&abcd, &efgh, a0, a1);
  _mm_storeu_si128((__m128i *)ha, abcd);
  _mm_storeu_si128((__m128i *)(ha + 4), efgh);
  unpack_state(&abcd, &efgh, b0, b1);
  _mm_storeu_si128((__m128i *)hb, abcd);
  _mm_storeu_si128((__m128i *)(hb + 4), efgh);
}

/* A message seen as a sequence of blocks: its whole 64-byte blocks in place,
 * then one or two padded blocks in tail. */
typedef struct {
  const uint8_t *msg;
  size_t nfull;      /* whole blocks read from msg */
  size_t nblocks;    /* nfull + 1 or 2 padding blocks */
  uint8_t tail[128];
} stream_t;

static void stream_init(stream_t *s, const uint8_t *msg, size_t len) {
  size_t rem = len & 63;
  s->msg = msg;
  s->nfull = len / 64;
  size_t ntail = rem < 56 ? 1 : 2;
  s->nblocks = s->nfull + ntail;
  if (rem) memcpy(s->tail, msg + 64 * s->nfull, rem);
  s->tail[rem] = 0x80;
  memset(s->tail + rem + 1, 0, 64 * ntail - 8 - rem - 1);
  amp_put_be64(s->tail + 64 * ntail - 8, (uint64_t)len << 3);
}

static inline const uint8_t *stream_block(const stream_t *s, size_t i) {
  return i < s->nfull ? s->msg + 64 * i : s->tail + 64 * (i - s->nfull);
}

AMP_SHANI_INLINE void store_digest(uint8_t out[AMP_SHA256_LEN], __m128i s0, __m128i s1) {
  const __m128i mask = BSWAP32_MASK;
  __m128i abcd, efgh;
  unpack_state(&abcd, &efgh, s0, s1);
  _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(abcd, mask));
  _mm_storeu_si128((__m128i *)(out + 16), _mm_shuffle_epi8(efgh, mask));
}

AMP_SHANI_TARGET
void amp_sha256_x2_shani_(uint8_t out0[AMP_SHA256_LEN], const uint8_t *m0, size_t len0,
                          uint8_t out1[AMP_SHA256_LEN], const uint8_t *m1, size_t len1) {
  static const uint32_t iv[8] = {
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
    0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
  };
  stream_t sa, sb;
  stream_init(&sa, m0, len0);
  stream_init(&sb, m1, len1);
  __m128i a0, a1, b0, b1;
  load_state(&a0, &a1, iv);
  b0 = a0;
  b1 = a1;
  size_t both = sa.nblocks < sb.nblocks ? sa.nblocks : sb.nblocks;
  size_t i = 0;
  for (; i < both; i++)
    block2(&a0, &a1, stream_block(&sa, i), &b0, &b1, stream_block(&sb, i));
  for (size_t k = i; k < sa.nblocks; k++) block1(&a0, &a1, stream_block(&sa, k));
  for (size_t k = i; k < sb.nblocks; k++) block1(&b0, &b1, stream_block(&sb, k));
  store_digest(out0, a0, a1);
  store_digest(out1, b0, b1);
  /* The tails hold message bytes, which may be secret (preimages). */
  amp_wipe(sa.tail, sizeof sa.tail);
  amp_wipe(sb.tail, sizeof sb.tail);
}

#else
/* Not x86-64: amp_sha256.c uses the portable compression only. */
typedef int amp_sha256_shani_unused_t;
#endif
