/* amp_sha256.c: SHA-256 (FIPS 180-4), portable compression and the run-time
 * choice between it and SHA-NI (amp_sha256_shani.c). */
#include "amp_sha256.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

_Alignas(16) const uint32_t amp_sha256_k_[64] = {
  0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u,
  0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
  0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u,
  0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
  0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu,
  0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
  0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
  0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
  0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u,
  0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
  0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u,
  0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
  0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u,
  0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
  0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u,
  0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

static const uint32_t sha256_iv[8] = {
  0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
  0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
};

/* ---- portable compression ---------------------------------------------- */

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define BSIG0(x) (ROTR(x, 2) ^ ROTR(x, 13) ^ ROTR(x, 22))
#define BSIG1(x) (ROTR(x, 6) ^ ROTR(x, 11) ^ ROTR(x, 25))
#define SSIG0(x) (ROTR(x, 7) ^ ROTR(x, 18) ^ ((x) >> 3))
#define SSIG1(x) (ROTR(x, 17) ^ ROTR(x, 19) ^ ((x) >> 10))
#define CH(x, y, z) (((x) & ((y) ^ (z))) ^ (z))
#define MAJ(x, y, z) (((x) & (y)) | ((z) & ((x) | (y))))

/* W(i) is the schedule word of round i, kept in a 16-word ring. */
#define W(i)                                                                   \
  ((i) < 16 ? w[(i)]                                                           \
            : (w[(i) & 15] += SSIG1(w[((i) - 2) & 15]) + w[((i) - 7) & 15] +   \
                              SSIG0(w[((i) - 15) & 15])))

/* One round; the caller rotates the names instead of moving the values. */
#define RND(a, b, c, d, e, f, g, h, i)                                         \
  do {                                                                         \
    uint32_t t1_ = h + BSIG1(e) + CH(e, f, g) + amp_sha256_k_[i] + W(i);       \
    uint32_t t2_ = BSIG0(a) + MAJ(a, b, c);                                    \
    d += t1_;                                                                  \
    h = t1_ + t2_;                                                             \
  } while (0)

#define RND8(i)                                                                \
  do {                                                                         \
    RND(a, b, c, d, e, f, g, h, (i) + 0);                                      \
    RND(h, a, b, c, d, e, f, g, (i) + 1);                                      \
    RND(g, h, a, b, c, d, e, f, (i) + 2);                                      \
    RND(f, g, h, a, b, c, d, e, (i) + 3);                                      \
    RND(e, f, g, h, a, b, c, d, (i) + 4);                                      \
    RND(d, e, f, g, h, a, b, c, (i) + 5);                                      \
    RND(c, d, e, f, g, h, a, b, (i) + 6);                                      \
    RND(b, c, d, e, f, g, h, a, (i) + 7);                                      \
  } while (0)

static void compress_portable(uint32_t st[8], const uint8_t *p, size_t nblocks) {
  for (; nblocks > 0; nblocks--, p += 64) {
    uint32_t w[16];
    for (int i = 0; i < 16; i++) w[i] = amp_be32(p + 4 * i);
    uint32_t a = st[0], b = st[1], c = st[2], d = st[3];
    uint32_t e = st[4], f = st[5], g = st[6], h = st[7];
    RND8(0);  RND8(8);  RND8(16); RND8(24);
    RND8(32); RND8(40); RND8(48); RND8(56);
    st[0] += a; st[1] += b; st[2] += c; st[3] += d;
    st[4] += e; st[5] += f; st[6] += g; st[7] += h;
  }
}

/* ---- implementation choice --------------------------------------------- */

typedef void (*compress_fn)(uint32_t st[8], const uint8_t *p, size_t nblocks);

enum { IMPL_UNSET = 0, IMPL_PORTABLE = 1, IMPL_SHANI = 2, IMPL_SHANI_X16 = 3 };

/* Written once at first use (or by amp_sha256_use); relaxed atomics make the
 * racing first calls of several threads well defined, at no cost on x86. */
static _Atomic int impl_choice = IMPL_UNSET;

static int cpu_has_shani(void) {
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  int sha = (b >> 29) & 1;
  return ssse3 && sse41 && sha;
#else
  return 0;
#endif
}

/* AVX-512 F and BW, and the OS saving the opmask and all 512 bits of the 32
 * vector registers (XCR0 bits 1, 2, 5, 6, 7). */
static int cpu_has_avx512(void) {
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return 0; /* OSXSAVE */
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  if (!((b >> 16) & 1) || !((b >> 30) & 1)) return 0; /* AVX512F, AVX512BW */
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 0xe6) == 0xe6;
#else
  return 0;
#endif
}

static int impl_auto(void) {
  if (!cpu_has_shani()) return IMPL_PORTABLE;
  return cpu_has_avx512() ? IMPL_SHANI_X16 : IMPL_SHANI;
}

static int impl_named(const char *name) {
  if (strcmp(name, "auto") == 0) return impl_auto();
  if (strcmp(name, "portable") == 0) return IMPL_PORTABLE;
  if (strcmp(name, "sha-ni") == 0) return cpu_has_shani() ? IMPL_SHANI : IMPL_UNSET;
  if (strcmp(name, "sha-ni+avx512") == 0)
    return cpu_has_shani() && cpu_has_avx512() ? IMPL_SHANI_X16 : IMPL_UNSET;
  return IMPL_UNSET;
}

/* First use: AMP_SHA256 in the environment, when it names an implementation
 * this CPU has, else the best one (an operator who would rather keep AVX-512
 * off, on CPUs that lower their clock for it, sets AMP_SHA256=sha-ni). */
static int impl_get(void) {
  int v = atomic_load_explicit(&impl_choice, memory_order_relaxed);
  if (v == IMPL_UNSET) {
    const char *env = getenv("AMP_SHA256");
    if (!env || (v = impl_named(env)) == IMPL_UNSET) v = impl_auto();
    atomic_store_explicit(&impl_choice, v, memory_order_relaxed);
  }
  return v;
}

static inline compress_fn compress_get(void) {
#if defined(__x86_64__)
  if (impl_get() >= IMPL_SHANI) return amp_sha256_compress_shani_;
#endif
  return compress_portable;
}

const char *amp_sha256_impl(void) {
  switch (impl_get()) {
  case IMPL_SHANI_X16: return "sha-ni+avx512";
  case IMPL_SHANI: return "sha-ni";
  default: return "portable";
  }
}

int amp_sha256_use(const char *name) {
  int v = impl_named(name);
  if (v == IMPL_UNSET) return AMP_ERR_STATE;
  atomic_store_explicit(&impl_choice, v, memory_order_relaxed);
  return AMP_OK;
}

/* ---- streaming API ------------------------------------------------------ */

void amp_sha256_init(amp_sha256_t *ctx) {
  memcpy(ctx->h, sha256_iv, sizeof ctx->h);
  ctx->bytes = 0;
  ctx->buf_len = 0;
}

void amp_sha256_update(amp_sha256_t *ctx, const void *data, size_t len) {
  if (len == 0) return;
  const uint8_t *p = data;
  compress_fn compress = compress_get();
  ctx->bytes += len;
  if (ctx->buf_len) {
    size_t take = 64 - ctx->buf_len;
    if (take > len) take = len;
    memcpy(ctx->buf + ctx->buf_len, p, take);
    ctx->buf_len += (uint32_t)take;
    p += take;
    len -= take;
    if (ctx->buf_len < 64) return;
    compress(ctx->h, ctx->buf, 1);
    ctx->buf_len = 0;
  }
  if (len >= 64) {
    compress(ctx->h, p, len / 64);
    p += len & ~(size_t)63;
    len &= 63;
  }
  if (len) {
    memcpy(ctx->buf, p, len);
    ctx->buf_len = (uint32_t)len;
  }
}

void amp_sha256_update2(amp_sha256_t *a, const void *da, size_t la, amp_sha256_t *b,
                        const void *db, size_t lb) {
#if defined(__x86_64__)
  if (impl_get() >= IMPL_SHANI && la >= 64 && lb >= 64) {
    const uint8_t *pa = da, *pb = db;
    /* each to its next block boundary alone (one block at most) */
    size_t ta = a->buf_len ? 64 - a->buf_len : 0, tb = b->buf_len ? 64 - b->buf_len : 0;
    amp_sha256_update(a, pa, ta);
    amp_sha256_update(b, pb, tb);
    pa += ta;
    la -= ta;
    pb += tb;
    lb -= tb;
    size_t n = (la < lb ? la : lb) / 64;
    if (n) {
      amp_sha256_compress2_shani_(a->h, pa, b->h, pb, n);
      a->bytes += 64 * n;
      b->bytes += 64 * n;
      pa += 64 * n;
      la -= 64 * n;
      pb += 64 * n;
      lb -= 64 * n;
    }
    amp_sha256_update(a, pa, la);
    amp_sha256_update(b, pb, lb);
    return;
  }
#endif
  amp_sha256_update(a, da, la);
  amp_sha256_update(b, db, lb);
}

/* Lanes below this many go through pairs: a sixteen-lane block step costs
 * 16 x 14.3 = 229 ns, a paired SHA-NI stream-block ~22 ns (bench_crypto's
 * hmac_1332B_pair over its ~25 blocks), so ten busy lanes already gain. */
#define X16_MIN_LANES 10

void amp_sha256_update_n(amp_sha256_t *const *ctx, const void *const *data, const size_t *len,
                         size_t n) {
  size_t i = 0;
#if defined(__x86_64__)
  if (impl_get() == IMPL_SHANI_X16) {
    while (n - i >= X16_MIN_LANES) {
      size_t k = n - i < 16 ? n - i : 16;
      const uint8_t *p[16];
      size_t rem[16];
      uint32_t *st[16];
      uint32_t spare[16][8];
      size_t m = SIZE_MAX;
      for (size_t j = 0; j < k; j++) {
        amp_sha256_t *c = ctx[i + j];
        size_t l = len[i + j], t = c->buf_len ? 64 - c->buf_len : 0;
        if (t > l) t = l;
        amp_sha256_update(c, data[i + j], t); /* to its block boundary */
        p[j] = data[i + j];
        if (t) p[j] += t;
        rem[j] = l - t;
        st[j] = c->h;
        size_t b = c->buf_len ? 0 : rem[j] / 64;
        if (b < m) m = b;
      }
      if (m) {
        /* idle lanes hash the first lane's blocks into scratch */
        for (size_t j = k; j < 16; j++) {
          p[j] = p[0];
          st[j] = spare[j];
          memset(spare[j], 0, sizeof spare[j]);
        }
        amp_sha256_compress16_avx512_(st, p, m);
        for (size_t j = 0; j < k; j++) {
          ctx[i + j]->bytes += 64 * m;
          p[j] += 64 * m;
          rem[j] -= 64 * m;
        }
        amp_wipe(spare, sizeof spare);
      }
      size_t j = 0;
      for (; j + 1 < k; j += 2)
        amp_sha256_update2(ctx[i + j], p[j], rem[j], ctx[i + j + 1], p[j + 1], rem[j + 1]);
      if (j < k) amp_sha256_update(ctx[i + j], p[j], rem[j]);
      i += k;
    }
  }
#endif
  for (; i + 1 < n; i += 2) amp_sha256_update2(ctx[i], data[i], len[i], ctx[i + 1], data[i + 1], len[i + 1]);
  if (i < n) amp_sha256_update(ctx[i], data[i], len[i]);
}

void amp_sha256_final(amp_sha256_t *ctx, uint8_t out[AMP_SHA256_LEN]) {
  compress_fn compress = compress_get();
  uint64_t bits = ctx->bytes << 3;
  size_t n = ctx->buf_len;
  ctx->buf[n++] = 0x80;
  if (n > 56) {
    memset(ctx->buf + n, 0, 64 - n);
    compress(ctx->h, ctx->buf, 1);
    n = 0;
  }
  memset(ctx->buf + n, 0, 56 - n);
  amp_put_be64(ctx->buf + 56, bits);
  compress(ctx->h, ctx->buf, 1);
  for (int i = 0; i < 8; i++) amp_put_be32(out + 4 * i, ctx->h[i]);
  amp_wipe(ctx, sizeof *ctx);
}

void amp_sha256_final_n(amp_sha256_t *const *ctx, uint8_t (*out)[AMP_SHA256_LEN], size_t n) {
  uint8_t tail[32][128];
  const void *tp[32];
  size_t tl[32];
  for (size_t base = 0; base < n; base += 32) {
    size_t k = n - base < 32 ? n - base : 32;
    for (size_t j = 0; j < k; j++) {
      amp_sha256_t *c = ctx[base + j];
      size_t b = c->buf_len, len = b + 1 + 8 > 64 ? 128 : 64;
      memcpy(tail[j], c->buf, b);
      tail[j][b] = 0x80;
      memset(tail[j] + b + 1, 0, len - 8 - (b + 1));
      amp_put_be64(tail[j] + len - 8, c->bytes << 3);
      c->buf_len = 0; /* the padded tail is whole blocks: compressed below */
      tp[j] = tail[j];
      tl[j] = len;
    }
    amp_sha256_update_n(ctx + base, tp, tl, k);
    for (size_t j = 0; j < k; j++) {
      for (int i = 0; i < 8; i++) amp_put_be32(out[base + j] + 4 * i, ctx[base + j]->h[i]);
      amp_wipe(ctx[base + j], sizeof *ctx[base + j]);
    }
    amp_wipe(tail, k * sizeof tail[0]);
  }
}

void amp_sha256(uint8_t out[AMP_SHA256_LEN], const void *data, size_t len) {
  amp_sha256_t ctx;
  amp_sha256_init(&ctx);
  amp_sha256_update(&ctx, data, len);
  amp_sha256_final(&ctx, out);
}

void amp_sha256_batch(uint8_t (*out)[AMP_SHA256_LEN], const uint8_t *const *msg,
                      const size_t *len, size_t n) {
  size_t i = 0;
#if defined(__x86_64__)
  /* sixteen lanes: the messages as contexts, their blocks and finals through
   * update_n and final_n (pairs below ten lanes, as those do) */
  if (impl_get() == IMPL_SHANI_X16 && n >= X16_MIN_LANES) {
    amp_sha256_t c[32], *cp[32];
    for (size_t base = 0; base < n; base += 32) {
      size_t k = n - base < 32 ? n - base : 32;
      for (size_t j = 0; j < k; j++) {
        amp_sha256_init(&c[j]);
        cp[j] = &c[j];
      }
      amp_sha256_update_n(cp, (const void *const *)(msg + base), len + base, k);
      amp_sha256_final_n(cp, out + base, k); /* wipes c */
    }
    return;
  }
  if (impl_get() >= IMPL_SHANI) {
    for (; i + 1 < n; i += 2)
      amp_sha256_x2_shani_(out[i], msg[i], len[i], out[i + 1], msg[i + 1], len[i + 1]);
  }
#endif
  for (; i < n; i++) amp_sha256(out[i], msg[i], len[i]);
}
