/* amp_sha256_x16.c: SHA-256 compression of sixteen independent streams at
 * once with AVX-512 (F for the 32-bit lanes, rotates and ternary logic; BW
 * for the byte swap).
 *
 * Layout. Vector j holds word j of all sixteen streams (lane i = stream i):
 * the state is eight vectors A..H, the schedule a ring of sixteen vectors
 * W[t mod 16]. Each round is the FIPS 180-4 round written once for all lanes:
 * the three-way XORs of Sigma0/Sigma1/sigma0/sigma1 and Ch and Maj are one
 * vpternlogd each (truth tables 0x96, 0xca, 0xe8). A block is sixteen 64-byte
 * loads, one per stream, turned into word vectors by a 16x16 transpose of
 * 32-bit elements (unpack 32, unpack 64, two 128-bit shuffles: 64 shuffles
 * per block of sixteen streams); the states are transposed the same way on
 * entry and exit.
 *
 * Cost, measured on the 2-vCPU AMD EPYC (Zen 5) VM (bench_crypto prints
 * both): 14.3 ns per block per stream with all sixteen lanes busy, against
 * 31.3 for one SHA-NI stream; sixteen HMACs over 1332 B 436-450 ns each
 * against 557-570 in SHA-NI pairs (the pads and finals stay on SHA-NI). It
 * pays with ten or more streams of several blocks (amp_sha256_update_n
 * decides).
 *
 * The function carries target("avx512f,avx512bw"), so the file needs no
 * flags; the caller checks CPUID and XCR0 first (amp_sha256.c). On other ISAs
 * this file is empty. */
#include "amp_sha256.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define AMP_X16_TARGET __attribute__((target("avx512f,avx512bw")))
#define AMP_X16_INLINE static inline __attribute__((always_inline, target("avx512f,avx512bw")))

/* r[i] = row i (sixteen 32-bit elements)  ->  r[j] = column j. */
AMP_X16_INLINE void transpose16(__m512i r[16]) {
  __m512i a[16], b[16];
  for (int i = 0; i < 16; i += 2) {
    a[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    a[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    b[i] = _mm512_unpacklo_epi64(a[i], a[i + 2]);
    b[i + 1] = _mm512_unpackhi_epi64(a[i], a[i + 2]);
    b[i + 2] = _mm512_unpacklo_epi64(a[i + 1], a[i + 3]);
    b[i + 3] = _mm512_unpackhi_epi64(a[i + 1], a[i + 3]);
  }
  /* b[4g + k], 128-bit lane L: rows 4g .. 4g+3 of column 4L + k */
  for (int i = 0; i < 4; i++) {
    a[i] = _mm512_shuffle_i32x4(b[i], b[4 + i], 0x88);
    a[4 + i] = _mm512_shuffle_i32x4(b[i], b[4 + i], 0xdd);
    a[8 + i] = _mm512_shuffle_i32x4(b[8 + i], b[12 + i], 0x88);
    a[12 + i] = _mm512_shuffle_i32x4(b[8 + i], b[12 + i], 0xdd);
  }
  for (int i = 0; i < 4; i++) {
    r[i] = _mm512_shuffle_i32x4(a[i], a[8 + i], 0x88);
    r[8 + i] = _mm512_shuffle_i32x4(a[i], a[8 + i], 0xdd);
    r[4 + i] = _mm512_shuffle_i32x4(a[4 + i], a[12 + i], 0x88);
    r[12 + i] = _mm512_shuffle_i32x4(a[4 + i], a[12 + i], 0xdd);
  }
}

#define ROR(x, n) _mm512_ror_epi32((x), (n))
#define XOR3(x, y, z) _mm512_ternarylogic_epi32((x), (y), (z), 0x96)
#define ADD(x, y) _mm512_add_epi32((x), (y))

AMP_X16_TARGET void amp_sha256_compress16_avx512_(uint32_t *const h[16],
                                                  const uint8_t *const blocks[16],
                                                  size_t nblocks) {
  const __m512i bswap = _mm512_broadcast_i32x4(
      _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL));
  __m512i s[16];
  for (int i = 0; i < 16; i++)
    s[i] = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)h[i]));
  transpose16(s);
  __m512i A = s[0], B = s[1], C = s[2], D = s[3], E = s[4], F = s[5], G = s[6], H = s[7];
  for (size_t k = 0; k < nblocks; k++) {
    __m512i w[16];
    for (int i = 0; i < 16; i++)
      w[i] = _mm512_shuffle_epi8(_mm512_loadu_si512(blocks[i] + 64 * k), bswap);
    transpose16(w);
    __m512i a = A, b = B, c = C, d = D, e = E, f = F, g = G, hh = H;
    _Pragma("GCC unroll 64") for (int t = 0; t < 64; t++) {
      if (t >= 16) {
        __m512i w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
        __m512i s0 = XOR3(ROR(w15, 7), ROR(w15, 18), _mm512_srli_epi32(w15, 3));
        __m512i s1 = XOR3(ROR(w2, 17), ROR(w2, 19), _mm512_srli_epi32(w2, 10));
        w[t & 15] = ADD(ADD(w[t & 15], s0), ADD(w[(t - 7) & 15], s1));
      }
      __m512i t1 = ADD(ADD(hh, _mm512_set1_epi32((int)amp_sha256_k_[t])), w[t & 15]);
      t1 = ADD(t1, XOR3(ROR(e, 6), ROR(e, 11), ROR(e, 25)));
      t1 = ADD(t1, _mm512_ternarylogic_epi32(e, f, g, 0xca)); /* Ch */
      __m512i t2 = ADD(XOR3(ROR(a, 2), ROR(a, 13), ROR(a, 22)),
                       _mm512_ternarylogic_epi32(a, b, c, 0xe8)); /* Maj */
      hh = g;
      g = f;
      f = e;
      e = ADD(d, t1);
      d = c;
      c = b;
      b = a;
      a = ADD(t1, t2);
    }
    A = ADD(A, a);
    B = ADD(B, b);
    C = ADD(C, c);
    D = ADD(D, d);
    E = ADD(E, e);
    F = ADD(F, f);
    G = ADD(G, g);
    H = ADD(H, hh);
  }
  s[0] = A;
  s[1] = B;
  s[2] = C;
  s[3] = D;
  s[4] = E;
  s[5] = F;
  s[6] = G;
  s[7] = H;
  for (int i = 8; i < 16; i++) s[i] = _mm512_setzero_si512();
  transpose16(s);
  for (int i = 0; i < 16; i++) _mm256_storeu_si256((__m256i *)h[i], _mm512_castsi512_si256(s[i]));
}

#endif
