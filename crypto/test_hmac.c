/* test_hmac.c: RFC 4231 test cases 1..7 through each SHA-256 implementation,
 * plus key-length edges and a copied (kept) context. Vectors checked against
 * Python's hmac module. */
#include "amp_hmac.h"

#include "amp_test.h"

typedef struct {
  uint8_t key[131];
  size_t key_len;
  const char *data; /* NULL: data_byte repeated data_len times */
  uint8_t data_byte;
  size_t data_len;
  const char *mac;  /* hex; case 5 gives only the first 128 bits */
} vec_t;

static vec_t vecs[7];

static void fill(uint8_t *p, uint8_t b, size_t n) { memset(p, b, n); }

static void setup(void) {
  /* 1 */
  fill(vecs[0].key, 0x0b, 20); vecs[0].key_len = 20;
  vecs[0].data = "Hi There";
  vecs[0].mac = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
  /* 2: key shorter than the output */
  memcpy(vecs[1].key, "Jefe", 4); vecs[1].key_len = 4;
  vecs[1].data = "what do ya want for nothing?";
  vecs[1].mac = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  /* 3 */
  fill(vecs[2].key, 0xaa, 20); vecs[2].key_len = 20;
  vecs[2].data_byte = 0xdd; vecs[2].data_len = 50;
  vecs[2].mac = "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe";
  /* 4 */
  for (int i = 0; i < 25; i++) vecs[3].key[i] = (uint8_t)(i + 1);
  vecs[3].key_len = 25;
  vecs[3].data_byte = 0xcd; vecs[3].data_len = 50;
  vecs[3].mac = "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b";
  /* 5: truncated to 128 bits */
  fill(vecs[4].key, 0x0c, 20); vecs[4].key_len = 20;
  vecs[4].data = "Test With Truncation";
  vecs[4].mac = "a3b6167473100ee06e0c796c2955552b";
  /* 6: key longer than a block */
  fill(vecs[5].key, 0xaa, 131); vecs[5].key_len = 131;
  vecs[5].data = "Test Using Larger Than Block-Size Key - Hash Key First";
  vecs[5].mac = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
  /* 7: key and data longer than a block */
  fill(vecs[6].key, 0xaa, 131); vecs[6].key_len = 131;
  vecs[6].data = "This is a test using a larger than block-size key and a larger "
                 "than block-size data. The key needs to be hashed before being "
                 "used by the HMAC algorithm.";
  vecs[6].mac = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2";
}

static void check_rfc4231(void) {
  uint8_t data[256], want[32], got[32];
  for (int i = 0; i < 7; i++) {
    const vec_t *v = &vecs[i];
    size_t len;
    if (v->data) {
      len = strlen(v->data);
      memcpy(data, v->data, len);
    } else {
      len = v->data_len;
      memset(data, v->data_byte, len);
    }
    long wl = amp_test_unhex(want, sizeof want, v->mac);
    AMP_REQUIRE(wl == 32 || wl == 16);
    amp_hmac_sha256(got, v->key, v->key_len, data, len);
    AMP_CHECK_MEM(got, want, (size_t)wl);
    /* Streaming, one byte at a time. */
    amp_hmac_t ctx;
    amp_hmac_init(&ctx, v->key, v->key_len);
    for (size_t k = 0; k < len; k++) amp_hmac_update(&ctx, data + k, 1);
    amp_hmac_final(&ctx, got);
    AMP_CHECK_MEM(got, want, (size_t)wl);
  }
}

/* Every pair of the RFC 4231 cases through amp_hmac_update2, in two pieces
 * split at different places on each side: both tags as published. */
static void check_pairs(void) {
  uint8_t data[7][256], want[7][32], ga[32], gb[32];
  size_t len[7], wl[7];
  for (int i = 0; i < 7; i++) {
    const vec_t *v = &vecs[i];
    if (v->data) {
      len[i] = strlen(v->data);
      memcpy(data[i], v->data, len[i]);
    } else {
      len[i] = v->data_len;
      memset(data[i], v->data_byte, len[i]);
    }
    long l = amp_test_unhex(want[i], sizeof want[i], v->mac);
    AMP_REQUIRE(l == 32 || l == 16);
    wl[i] = (size_t)l;
  }
  for (int i = 0; i < 7; i++)
    for (int j = 0; j < 7; j++) {
      if (i == j) continue;
      size_t ca = len[i] / 3, cb = len[j] / 2;
      amp_hmac_t a, b;
      amp_hmac_init(&a, vecs[i].key, vecs[i].key_len);
      amp_hmac_init(&b, vecs[j].key, vecs[j].key_len);
      amp_hmac_update2(&a, data[i], ca, &b, data[j], cb);
      amp_hmac_update2(&a, data[i] + ca, len[i] - ca, &b, data[j] + cb, len[j] - cb);
      amp_hmac_final(&a, ga);
      amp_hmac_final(&b, gb);
      AMP_CHECK_MEM(ga, want[i], wl[i]);
      AMP_CHECK_MEM(gb, want[j], wl[j]);
    }
}

/* The RFC 4231 cases through amp_hmac_update_n in two pieces: sixteen of
 * case 7 (152 bytes: the sixteen-lane path on AVX-512) followed by all seven
 * (pairs), and the seven mixed into the first sixteen (no common block: pairs
 * only); every tag as published. */
static void check_n(void) {
  enum { N = 23 };
  uint8_t data[7][256], want[7][32], got[32];
  size_t len[7], wl[7];
  for (int i = 0; i < 7; i++) {
    const vec_t *v = &vecs[i];
    len[i] = v->data ? strlen(v->data) : v->data_len;
    if (v->data) memcpy(data[i], v->data, len[i]);
    else memset(data[i], v->data_byte, len[i]);
    long l = amp_test_unhex(want[i], sizeof want[i], v->mac);
    AMP_REQUIRE(l == 32 || l == 16);
    wl[i] = (size_t)l;
  }
  for (int layout = 0; layout < 2; layout++) {
    amp_hmac_t c[N], *cp[N];
    const void *d[N];
    size_t l[N];
    int vi[N];
    for (int i = 0; i < N; i++) {
      vi[i] = layout == 0 ? (i < 16 ? 6 : i - 16) : (i % 3 == 0 && i / 3 < 7 ? i / 3 : 6);
      amp_hmac_init(&c[i], vecs[vi[i]].key, vecs[vi[i]].key_len);
      cp[i] = &c[i];
      d[i] = data[vi[i]];
      l[i] = len[vi[i]] / 5;
    }
    amp_hmac_update_n(cp, d, l, N);
    for (int i = 0; i < N; i++) {
      d[i] = data[vi[i]] + l[i];
      l[i] = len[vi[i]] - l[i];
    }
    amp_hmac_update_n(cp, d, l, N);
    for (int i = 0; i < N; i++) {
      amp_hmac_final(&c[i], got);
      AMP_CHECK_MEM(got, want[vi[i]], wl[vi[i]]);
    }
  }
}

/* amp_hmac_init_n / amp_hmac_final_n: the RFC 4231 cases whose keys fit a
 * block (1-5), n = 1..40 MACs cycling through them, all under one key
 * length (the call takes one): every tag as published; a zero-length key
 * against amp_hmac_init; the contexts wiped. */
static void check_init_final_n(void) {
  enum { N = 40 };
  static amp_hmac_t c[N], zero;
  amp_hmac_t *cp[N];
  const uint8_t *kp[N];
  uint8_t got[N][32], want[5][32], data[5][64];
  size_t dl[5], wl[5];
  for (int v = 0; v < 5; v++) {
    dl[v] = vecs[v].data ? strlen(vecs[v].data) : vecs[v].data_len;
    if (vecs[v].data) memcpy(data[v], vecs[v].data, dl[v]);
    else memset(data[v], vecs[v].data_byte, dl[v]);
    long l = amp_test_unhex(want[v], 32, vecs[v].mac);
    AMP_REQUIRE(l == 32 || l == 16);
    wl[v] = (size_t)l;
  }
  for (size_t n = 1; n <= N; n++) {
    for (int v = 0; v < 5; v++) { /* one key length per call: one case at a time */
      for (size_t i = 0; i < n; i++) {
        cp[i] = &c[i];
        kp[i] = vecs[v].key;
      }
      amp_hmac_init_n(cp, kp, vecs[v].key_len, n);
      for (size_t i = 0; i < n; i++) amp_hmac_update(&c[i], data[v], dl[v]);
      amp_hmac_final_n(cp, got, n);
      for (size_t i = 0; i < n; i++) {
        AMP_CHECK_MEM(got[i], want[v], wl[v]);
        AMP_CHECK_MEM(&c[i], &zero, sizeof zero);
      }
    }
  }
  /* an empty key; the key pointers are not read */
  uint8_t ref[32];
  amp_hmac_sha256(ref, NULL, 0, "abc", 3);
  for (size_t i = 0; i < 12; i++) {
    cp[i] = &c[i];
    kp[i] = NULL;
  }
  amp_hmac_init_n(cp, kp, 0, 12);
  for (size_t i = 0; i < 12; i++) amp_hmac_update(&c[i], "abc", 3);
  amp_hmac_final_n(cp, got, 12);
  for (size_t i = 0; i < 12; i++) AMP_CHECK_MEM(got[i], ref, 32);
  amp_hmac_init_n(NULL, NULL, 0, 0);
  amp_hmac_final_n(NULL, NULL, 0);
}

static void check_edges(void) {
  uint8_t want[32], got[32], k[65], m[200];
  /* Empty key and message (NULL allowed with length 0). */
  AMP_REQUIRE(amp_test_unhex(want, 32, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad") == 32);
  amp_hmac_sha256(got, NULL, 0, NULL, 0);
  AMP_CHECK_MEM(got, want, 32);
  memset(k, 'k', sizeof k);
  memset(m, 'm', sizeof m);
  /* Key of exactly one block (used as is) and one byte over (hashed). */
  AMP_REQUIRE(amp_test_unhex(want, 32, "cbe7a7476313c59aa81a2a0a723c9f793d20d82b544e788bf308f39922b3d12c") == 32);
  amp_hmac_sha256(got, k, 64, m, 200);
  AMP_CHECK_MEM(got, want, 32);
  uint8_t want65[32];
  AMP_REQUIRE(amp_test_unhex(want65, 32, "0b3b137eed503976900d7b998231a31d97787372473959713709033da0f2480e") == 32);
  amp_hmac_sha256(got, k, 65, m, 200);
  AMP_CHECK_MEM(got, want65, 32);

  /* A kept context copied per message gives the same tags. */
  amp_hmac_t keyed, c;
  amp_hmac_init(&keyed, k, 64);
  for (int rep = 0; rep < 3; rep++) {
    c = keyed;
    amp_hmac_update(&c, m, 100);
    amp_hmac_update(&c, m + 100, 100);
    amp_hmac_final(&c, got);
    AMP_CHECK_MEM(got, want, 32);
  }
  /* final wipes the context. */
  static const amp_hmac_t zero;
  AMP_CHECK(memcmp(&c, &zero, sizeof c) == 0);
}

int main(void) {
  setup();
  static const char *impls[] = {"portable", "sha-ni", "sha-ni+avx512"};
  for (int i = 0; i < 3; i++) {
    if (amp_sha256_use(impls[i]) != AMP_OK) {
      fprintf(stderr, "SKIPPED: %s not available on this CPU\n", impls[i]);
      continue;
    }
    fprintf(stderr, "implementation %s\n", amp_sha256_impl());
    check_rfc4231();
    check_pairs();
    check_n();
    check_init_final_n();
    check_edges();
  }
  AMP_CHECK(amp_sha256_use("auto") == AMP_OK);
  return amp_test_done();
}
