/* test_sha256.c: FIPS 180 examples through each implementation, portable vs
 * SHA-NI over every length to a few blocks, incremental vs one-shot, batch vs
 * one-shot. Vectors checked against Python's hashlib. */
#include "amp_sha256.h"

#include "amp_test.h"

static const struct {
  const char *msg;
  const char *hex;
} fips[] = {
  {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
  {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
  {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
   "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
  {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
   "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
};

static const char *million_a_hex =
    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

/* SHA256 of the concatenated digests of pattern(n) for n = 0..200 and then
 * the lengths in long_lens (hashlib). */
static const char *sweep_hex =
    "a40cb4dba56ecceba9db29392e7408995ed8a59d063aca20f7e90c7ca988b575";
static const size_t long_lens[] = {255, 256, 257, 1000, 1366, 4095, 4096, 4097};

static uint8_t big[1000000];
static uint8_t pat[4200];

static void use(const char *name) { AMP_REQUIRE(amp_sha256_use(name) == AMP_OK); }

/* Known answers through whatever implementation is selected. */
static void check_known(void) {
  uint8_t want[32], got[32];
  for (size_t i = 0; i < sizeof fips / sizeof fips[0]; i++) {
    AMP_REQUIRE(amp_test_unhex(want, sizeof want, fips[i].hex) == 32);
    amp_sha256(got, fips[i].msg, strlen(fips[i].msg));
    AMP_CHECK_MEM(got, want, 32);
    /* The same through the batch API, alone and paired with itself. */
    const uint8_t *m[2] = {(const uint8_t *)fips[i].msg, (const uint8_t *)fips[i].msg};
    size_t l[2] = {strlen(fips[i].msg), strlen(fips[i].msg)};
    uint8_t out[2][32];
    amp_sha256_batch(out, m, l, 2);
    AMP_CHECK_MEM(out[0], want, 32);
    AMP_CHECK_MEM(out[1], want, 32);
  }
  AMP_REQUIRE(amp_test_unhex(want, sizeof want, million_a_hex) == 32);
  memset(big, 'a', sizeof big);
  amp_sha256(got, big, sizeof big);
  AMP_CHECK_MEM(got, want, 32);
  /* And fed in 1000-byte pieces, as FIPS 180-2's example describes. */
  amp_sha256_t ctx;
  amp_sha256_init(&ctx);
  for (int i = 0; i < 1000; i++) amp_sha256_update(&ctx, big, 1000);
  amp_sha256_final(&ctx, got);
  AMP_CHECK_MEM(got, want, 32);

  AMP_REQUIRE(amp_test_unhex(want, sizeof want, sweep_hex) == 32);
  amp_sha256_t acc;
  amp_sha256_init(&acc);
  for (size_t n = 0; n <= 200; n++) {
    amp_sha256(got, pat, n);
    amp_sha256_update(&acc, got, 32);
  }
  for (size_t i = 0; i < sizeof long_lens / sizeof long_lens[0]; i++) {
    amp_sha256(got, pat, long_lens[i]);
    amp_sha256_update(&acc, got, 32);
  }
  amp_sha256_final(&acc, got);
  AMP_CHECK_MEM(got, want, 32);

  /* update(NULL, 0) is allowed. */
  amp_sha256_init(&ctx);
  amp_sha256_update(&ctx, NULL, 0);
  amp_sha256_final(&ctx, got);
  AMP_REQUIRE(amp_test_unhex(want, sizeof want, fips[0].hex) == 32);
  AMP_CHECK_MEM(got, want, 32);
}

/* Random chunking of one message through update == one-shot. */
static void check_incremental(uint64_t *rng) {
  uint8_t want[32], got[32];
  for (int iter = 0; iter < 200; iter++) {
    size_t len = (size_t)(amp_test_rand(rng) % sizeof pat);
    amp_sha256(want, pat, len);
    amp_sha256_t ctx;
    amp_sha256_init(&ctx);
    size_t off = 0;
    while (off < len) {
      uint64_t r = amp_test_rand(rng);
      /* Mostly small pieces, sometimes whole blocks and more. */
      size_t piece = (r & 3) ? (size_t)(r >> 8) % 70 : (size_t)(r >> 8) % 300;
      if (piece > len - off) piece = len - off;
      amp_sha256_update(&ctx, pat + off, piece);
      off += piece;
    }
    amp_sha256_final(&ctx, got);
    AMP_CHECK_MEM(got, want, 32);
  }
}

/* amp_sha256_update2 == two amp_sha256_update calls: contexts at every
 * buffer offset (a prefix absorbed first), lengths on both sides of a block,
 * equal and unequal, one side empty; then more input after it. */
static void check_update2(uint64_t *rng) {
  static const size_t edge[] = {0, 1, 55, 63, 64, 65, 127, 128, 129, 1300, 1332};
  uint8_t wa[32], wb[32], ga[32], gb[32];
  for (int iter = 0; iter < 600; iter++) {
    uint64_t r = amp_test_rand(rng);
    size_t pa = (size_t)(r % 130), pb = (size_t)((r >> 8) % 130);
    size_t la, lb;
    if (iter < 121) { /* every pair of edge lengths */
      la = edge[iter % 11];
      lb = edge[iter / 11];
    } else {
      la = (size_t)((r >> 16) % 1500);
      lb = (r >> 32) & 1 ? la : (size_t)((r >> 40) % 1500);
    }
    size_t oa = (size_t)((r >> 48) % 64), ob = 200 + (size_t)((r >> 56) % 64), tail = iter % 70;
    /* a's message: pat[oa .. oa + pa + la + tail), b's likewise at ob */
    amp_sha256(wa, pat + oa, pa + la + tail);
    amp_sha256(wb, pat + ob, pb + lb + tail);
    amp_sha256_t a, b;
    amp_sha256_init(&a);
    amp_sha256_init(&b);
    amp_sha256_update(&a, pat + oa, pa);
    amp_sha256_update(&b, pat + ob, pb);
    amp_sha256_update2(&a, pat + oa + pa, la, &b, pat + ob + pb, lb);
    amp_sha256_update2(&a, pat + oa + pa + la, tail, &b, pat + ob + pb + lb, tail);
    amp_sha256_final(&a, ga);
    amp_sha256_final(&b, gb);
    AMP_CHECK_MEM(ga, wa, 32);
    AMP_CHECK_MEM(gb, wb, 32);
  }
  /* empty sides may be NULL */
  amp_sha256_t a, b;
  amp_sha256_init(&a);
  amp_sha256_init(&b);
  amp_sha256_update2(&a, NULL, 0, &b, pat, 200);
  amp_sha256_update2(&a, pat, 200, &b, NULL, 0);
  amp_sha256_final(&a, ga);
  amp_sha256_final(&b, gb);
  amp_sha256(wa, pat, 200);
  AMP_CHECK_MEM(ga, wa, 32);
  AMP_CHECK_MEM(gb, wa, 32);
}

/* amp_sha256_update_n == n amp_sha256_update calls, for n = 0..40 (below,
 * at and above the ten lanes that take the sixteen-lane path, and more than
 * one group): contexts at random buffer offsets, lengths equal (the peel's
 * onions) or not (frames), some empty or under a block, then a second call
 * with more input. */
static void check_update_n(uint64_t *rng) {
  enum { MAXN = 40 };
  amp_sha256_t c[MAXN], *cp[MAXN];
  const void *d[MAXN];
  size_t len[MAXN], pre[MAXN], off[MAXN], tail[MAXN];
  uint8_t got[32], want[32];
  for (int iter = 0; iter < 300; iter++) {
    size_t n = iter <= MAXN ? (size_t)iter : (size_t)(amp_test_rand(rng) % (MAXN + 1));
    uint64_t mode = amp_test_rand(rng) % 3; /* 0 all 1332 B, 1 mixed, 2 a few empty */
    for (size_t i = 0; i < n; i++) {
      uint64_t r = amp_test_rand(rng);
      pre[i] = mode == 0 ? 0 : (size_t)(r % 130);
      len[i] = mode == 0 ? 1332 : (size_t)((r >> 8) % 1600);
      if (mode == 2 && (r >> 40) % 4 == 0) len[i] = 0;
      tail[i] = (size_t)((r >> 24) % 70);
      off[i] = (size_t)((r >> 48) % 200);
      amp_sha256_init(&c[i]);
      amp_sha256_update(&c[i], pat + off[i], pre[i]);
      cp[i] = &c[i];
      d[i] = len[i] ? pat + off[i] + pre[i] : NULL;
    }
    amp_sha256_update_n(cp, d, len, n);
    for (size_t i = 0; i < n; i++) d[i] = pat + off[i] + pre[i] + len[i];
    amp_sha256_update_n(cp, d, tail, n);
    for (size_t i = 0; i < n; i++) {
      amp_sha256_final(&c[i], got);
      amp_sha256(want, pat + off[i], pre[i] + len[i] + tail[i]);
      AMP_CHECK_MEM(got, want, 32);
    }
  }
  amp_sha256_update_n(NULL, NULL, NULL, 0);
}

/* amp_sha256_final_n == n amp_sha256_final calls, for n = 0..70 (below, at
 * and above the ten lanes of the sixteen-lane path, and past one group of
 * 32): every buffered length 0..63 (one padded block up to 55, two above),
 * after 0..3 whole blocks; each context wiped. */
static void check_final_n(uint64_t *rng) {
  enum { MAXN = 70 };
  static amp_sha256_t c[MAXN], zero;
  amp_sha256_t *cp[MAXN];
  uint8_t got[MAXN][32], want[32];
  size_t len[MAXN], off[MAXN];
  for (int iter = 0; iter < 200; iter++) {
    size_t n = iter <= MAXN ? (size_t)iter : (size_t)(amp_test_rand(rng) % (MAXN + 1));
    for (size_t i = 0; i < n; i++) {
      uint64_t r = amp_test_rand(rng);
      len[i] = 64 * (size_t)(r % 4) + (size_t)((iter + i) % 64);
      off[i] = (size_t)((r >> 8) % 200);
      amp_sha256_init(&c[i]);
      amp_sha256_update(&c[i], pat + off[i], len[i]);
      cp[i] = &c[i];
    }
    amp_sha256_final_n(cp, got, n);
    for (size_t i = 0; i < n; i++) {
      amp_sha256(want, pat + off[i], len[i]);
      AMP_CHECK_MEM(got[i], want, 32);
      AMP_CHECK_MEM(&c[i], &zero, sizeof zero);
    }
  }
  amp_sha256_final_n(NULL, NULL, 0);
}

/* Batches of n = 0..70 messages of mixed lengths == one-shot each (from ten
 * the sixteen-lane path on AVX-512, past 32 more than one group). */
static void check_batch(uint64_t *rng) {
  enum { MAXB = 70 };
  uint8_t out[MAXB + 1][32], want[32];
  const uint8_t *msg[MAXB];
  size_t len[MAXB];
  for (size_t n = 0; n <= MAXB; n++) {
    for (int iter = 0; iter < (n < 20 ? 20 : 4); iter++) {
      for (size_t i = 0; i < n; i++) {
        uint64_t r = amp_test_rand(rng);
        /* Lengths around the padding edges and a few blocks long; some
         * messages overlap or are empty. */
        switch (r & 3) {
        case 0: len[i] = (size_t)(r >> 8) % 130; break;
        case 1: len[i] = 64 * ((r >> 8) % 5) + 55 + ((r >> 16) % 3); break;
        case 2: len[i] = 68; break;
        default: len[i] = (size_t)(r >> 8) % 1400; break;
        }
        size_t off = (size_t)(r >> 32) % (sizeof pat - len[i]);
        msg[i] = pat + off;
      }
      memset(out, 0xee, sizeof out);
      amp_sha256_batch(out, msg, len, n);
      for (size_t i = 0; i < n; i++) {
        amp_sha256(want, msg[i], len[i]);
        AMP_CHECK_MEM(out[i], want, 32);
      }
      /* Nothing written beyond n. */
      for (size_t i = n; i <= MAXB; i++) AMP_CHECK(out[i][0] == 0xee && out[i][31] == 0xee);
    }
  }
  /* n = 0 with NULL arrays is allowed. */
  amp_sha256_batch(NULL, NULL, NULL, 0);
  /* Zero-length messages may be NULL. */
  const uint8_t *nul[3] = {NULL, NULL, NULL};
  size_t zl[3] = {0, 0, 0};
  uint8_t e[3][32];
  amp_sha256_batch(e, nul, zl, 3);
  AMP_REQUIRE(amp_test_unhex(want, sizeof want, fips[0].hex) == 32);
  for (int i = 0; i < 3; i++) AMP_CHECK_MEM(e[i], want, 32);
}

/* Portable == SHA-NI for every length 0..600 and some long ones, at every
 * alignment 0..3 for the short ones. */
static void check_cross(void) {
  uint8_t a[32], b[32];
  for (size_t n = 0; n <= 600; n++) {
    size_t align = n <= 200 ? 4 : 1;
    for (size_t off = 0; off < align; off++) {
      use("portable");
      amp_sha256(a, pat + off, n);
      use("sha-ni");
      amp_sha256(b, pat + off, n);
      AMP_CHECK_MEM(a, b, 32);
    }
  }
  for (size_t i = 0; i < sizeof long_lens / sizeof long_lens[0]; i++) {
    use("portable");
    amp_sha256(a, pat, long_lens[i]);
    use("sha-ni");
    amp_sha256(b, pat, long_lens[i]);
    AMP_CHECK_MEM(a, b, 32);
  }
}

static void run_impl(const char *name, uint64_t *rng) {
  use(name);
  AMP_CHECK(strcmp(amp_sha256_impl(), name) == 0);
  fprintf(stderr, "implementation %s\n", amp_sha256_impl());
  check_known();
  check_incremental(rng);
  check_update2(rng);
  check_update_n(rng);
  check_final_n(rng);
  check_batch(rng);
}

/* --env-expect NAME: run with AMP_SHA256 set; the first use must pick NAME
 * ("auto": what amp_sha256_use("auto") picks, for an unknown value). */
static int env_expect(const char *name) {
  char got[32];
  snprintf(got, sizeof got, "%s", amp_sha256_impl()); /* the first use */
  fprintf(stderr, "AMP_SHA256=%s -> %s\n", getenv("AMP_SHA256") ? getenv("AMP_SHA256") : "(unset)", got);
  if (strcmp(name, "auto") == 0) {
    AMP_CHECK(amp_sha256_use("auto") == AMP_OK);
    AMP_CHECK(strcmp(got, amp_sha256_impl()) == 0);
  } else {
    AMP_CHECK(strcmp(got, name) == 0);
  }
  uint8_t a[32], b[32];
  AMP_REQUIRE(amp_test_unhex(b, 32, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 32);
  amp_sha256(a, "abc", 3);
  AMP_CHECK_MEM(a, b, 32);
  return amp_test_done();
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--env-expect") == 0) return env_expect(argv[2]);
  uint64_t seed = amp_test_seed(), rng = seed ? seed : 1;
  for (size_t i = 0; i < sizeof pat; i++) pat[i] = (uint8_t)(i * 7 + 3);

  AMP_CHECK(amp_sha256_use("nonsense") == AMP_ERR_STATE);
  AMP_CHECK(amp_sha256_use("auto") == AMP_OK);
  const char *def = amp_sha256_impl();
  AMP_CHECK(strcmp(def, "sha-ni+avx512") == 0 || strcmp(def, "sha-ni") == 0 ||
            strcmp(def, "portable") == 0);

  run_impl("portable", &rng);
  if (amp_sha256_use("sha-ni") == AMP_OK) {
    AMP_CHECK(strcmp(def, "portable") != 0); /* auto picks it when present */
    run_impl("sha-ni", &rng);
    check_cross();
    if (amp_sha256_use("sha-ni+avx512") == AMP_OK) {
      AMP_CHECK(strcmp(def, "sha-ni+avx512") == 0);
      run_impl("sha-ni+avx512", &rng);
    } else {
      AMP_CHECK(strcmp(def, "sha-ni") == 0);
      fprintf(stderr, "SKIPPED: CPU lacks AVX-512; sixteen-lane half not tested\n");
    }
  } else {
    AMP_CHECK(strcmp(def, "portable") == 0);
    fprintf(stderr, "SKIPPED: CPU lacks SHA-NI; SHA-NI half not tested\n");
  }
  AMP_CHECK(amp_sha256_use("auto") == AMP_OK);
  return amp_test_done();
}
