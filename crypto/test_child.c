/* test_child.c: AMP child derivation against shared/vectors/amp-derivation.txt
 * (parsed, not hard-coded), set verification and its failures, and the
 * split / reconstruct round trip (seed printed). */
#include <ctype.h>
#include <string.h>

#include "amp_child.h"
#include "amp_sha256.h"
#include "amp_test.h"

#define MAX_SET 64

typedef struct {
  uint8_t root[32], share[32], pre[32];
  uint32_t index;
  int have_root, have_share, have_index, have_pre;
  /* shares listed as s0=, s1=, ... and the children of the section */
  uint8_t s[MAX_SET][32];
  size_t ns;
  uint8_t cshare[MAX_SET][32], chash[MAX_SET][32], cpre[MAX_SET][32];
  uint32_t cindex[MAX_SET];
  size_t nc;
  int in_child;
  int xor_checked;
} parse_t;

static unsigned long n_derivations, n_sets, n_xor, n_inputs;

static void hex32(uint8_t out[32], const char *hex) {
  char buf[65];
  size_t n = 0;
  while (hex[n] && !isspace((unsigned char)hex[n]) && n < 64) { buf[n] = hex[n]; n++; }
  buf[n] = 0;
  AMP_REQUIRE(amp_test_unhex(out, 32, buf) == 32);
}

static void check_set(uint8_t (*share)[32], const uint32_t *index, uint8_t (*hash)[32],
                      uint8_t (*want_pre)[32], size_t n) {
  uint8_t pre[MAX_SET][32];
  AMP_CHECK_EQ(amp_child_verify(pre, (const uint8_t(*)[32])share, index,
                                (const uint8_t(*)[32])hash, n), AMP_OK);
  AMP_CHECK_MEM(pre, want_pre, n * 32);
  /* One share altered: mismatch, preimages wiped. */
  for (size_t i = 0; i < n; i++) {
    share[i][i % 32] ^= 0x01;
    memset(pre, 0x5a, sizeof pre);
    AMP_CHECK_EQ(amp_child_verify(pre, (const uint8_t(*)[32])share, index,
                                  (const uint8_t(*)[32])hash, n), AMP_ERR_MISMATCH);
    AMP_CHECK(amp_ct_is_zero(pre, n * 32));
    share[i][i % 32] ^= 0x01;
  }
  /* One hash altered: mismatch. */
  for (size_t i = 0; i < n; i++) {
    hash[i][31 - i % 32] ^= 0x80;
    AMP_CHECK_EQ(amp_child_verify(pre, (const uint8_t(*)[32])share, index,
                                  (const uint8_t(*)[32])hash, n), AMP_ERR_MISMATCH);
    AMP_CHECK(amp_ct_is_zero(pre, n * 32));
    hash[i][31 - i % 32] ^= 0x80;
  }
  /* A wrong index: mismatch. */
  uint32_t idx[MAX_SET];
  memcpy(idx, index, n * sizeof idx[0]);
  idx[n - 1] ^= 1;
  AMP_CHECK_EQ(amp_child_verify(pre, (const uint8_t(*)[32])share, idx,
                                (const uint8_t(*)[32])hash, n), AMP_ERR_MISMATCH);
  n_sets++;
}

static void end_section(parse_t *p) {
  if (p->nc > 0) {
    /* The children's shares must reconstruct the section's root. */
    uint8_t r[32];
    amp_child_root(r, (const uint8_t(*)[32])p->cshare, p->nc);
    AMP_CHECK_MEM(r, p->root, 32);
    check_set(p->cshare, p->cindex, p->chash, p->cpre, p->nc);
  }
  p->ns = p->nc = 0;
  p->in_child = 0;
}

static void on_hash(parse_t *p, const uint8_t hash[32]) {
  AMP_REQUIRE(p->have_root && p->have_share && p->have_index && p->have_pre);
  amp_child_t c;
  amp_child_derive(&c, p->root, p->share, p->index);
  AMP_CHECK_MEM(c.preimage, p->pre, 32);
  AMP_CHECK_MEM(c.hash, hash, 32);
  n_derivations++;
  if (p->in_child) {
    AMP_REQUIRE(p->nc < MAX_SET);
    memcpy(p->cshare[p->nc], p->share, 32);
    memcpy(p->chash[p->nc], hash, 32);
    memcpy(p->cpre[p->nc], p->pre, 32);
    p->cindex[p->nc] = p->index;
    p->nc++;
  } else if (memcmp(p->root, p->share, 32) == 0) {
    /* A single-share set: share == root. */
    uint8_t sh[1][32], hh[1][32], pp[1][32];
    uint32_t ix[1] = {p->index};
    memcpy(sh[0], p->share, 32);
    memcpy(hh[0], hash, 32);
    memcpy(pp[0], p->pre, 32);
    check_set(sh, ix, hh, pp, 1);
  }
  p->have_pre = 0;
}

static void test_vectors(void) {
  char *txt = amp_test_read_file(amp_test_vector_path("amp-derivation.txt"), NULL);
  parse_t *p = calloc(1, sizeof *p);
  AMP_REQUIRE(p != NULL);
  for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
    char *l = line;
    while (*l == ' ' || *l == '\t') l++;
    char *q;
    if (l[0] == '#') {
      end_section(p);
    } else if (!strncmp(l, "root=", 5)) {
      hex32(p->root, l + 5);
      p->have_root = 1;
    } else if (!strncmp(l, "share=", 6)) {
      hex32(p->share, l + 6);
      p->have_share = 1;
      p->in_child = 0;
    } else if (!strncmp(l, "index=", 6)) {
      p->index = (uint32_t)strtoul(l + 6, &q, 10);
      p->have_index = 1;
      if ((q = strstr(l, "be32="))) {
        uint8_t be[4];
        char digits[9] = {0};
        strncpy(digits, q + 5, 8);
        AMP_CHECK_EQ(amp_test_unhex(be, 4, digits), 4);
        AMP_CHECK_EQ(amp_be32(be), p->index);
      }
    } else if (l[0] == 's' && isdigit((unsigned char)l[1]) && (q = strchr(l, '='))) {
      AMP_REQUIRE(p->ns < MAX_SET);
      hex32(p->s[p->ns++], q + 1);
    } else if (!strncmp(l, "xor(", 4) && (q = strstr(l, ")="))) {
      uint8_t want[32], got[32];
      hex32(want, q + 2);
      AMP_REQUIRE(p->ns > 0);
      amp_child_root(got, (const uint8_t(*)[32])p->s, p->ns);
      AMP_CHECK_MEM(got, want, 32);
      AMP_CHECK_MEM(got, p->root, 32);
      n_xor++;
    } else if (!strncmp(l, "child", 5) && (q = strstr(l, "share="))) {
      hex32(p->share, q + 6);
      p->have_share = 1;
      AMP_REQUIRE((q = strstr(l, "index=")) != NULL);
      p->index = (uint32_t)strtoul(q + 6, NULL, 10);
      p->have_index = 1;
      p->in_child = 1;
    } else if (!strncmp(l, "SHA256 input", 12) && (q = strstr(l, ")="))) {
      uint8_t want[68], got[68];
      AMP_CHECK_EQ(amp_test_unhex(want, 68, q + 2), 68);
      memcpy(got, p->root, 32);
      memcpy(got + 32, p->share, 32);
      amp_put_be32(got + 64, p->index);
      AMP_CHECK_MEM(got, want, 68);
      n_inputs++;
    } else if (!strncmp(l, "preimage=", 9)) {
      hex32(p->pre, l + 9);
      p->have_pre = 1;
    } else if (!strncmp(l, "hash=", 5)) {
      uint8_t h[32];
      hex32(h, l + 5);
      on_hash(p, h);
    }
  }
  end_section(p);
  fprintf(stderr, "amp-derivation.txt: %lu derivations, %lu sets, %lu xor, %lu inputs\n",
          n_derivations, n_sets, n_xor, n_inputs);
  AMP_CHECK(n_derivations >= 6);
  AMP_CHECK(n_sets >= 4);
  AMP_CHECK(n_xor >= 1);
  AMP_CHECK(n_inputs >= 3);
  free(p);
  free(txt);
}

static void test_split(void) {
  uint64_t s = amp_test_seed();
  if (!s) s = 1;
  static const size_t sizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                 17, 18, 19, 20, 33, 64};
  for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
    size_t n = sizes[t];
    uint8_t root[32], got[32];
    uint8_t share[MAX_SET][32], hash[MAX_SET][32], pre[MAX_SET][32], want[MAX_SET][32];
    uint32_t index[MAX_SET];
    for (int k = 0; k < 32; k++) root[k] = (uint8_t)amp_test_rand(&s);
    AMP_REQUIRE(amp_child_split(share, n, root) == AMP_OK);
    amp_child_root(got, (const uint8_t(*)[32])share, n);
    AMP_CHECK_MEM(got, root, 32);
    for (size_t i = 0; i < n; i++) {
      amp_child_t c;
      index[i] = (uint32_t)amp_test_rand(&s);
      amp_child_derive(&c, root, share[i], index[i]);
      memcpy(hash[i], c.hash, 32);
      memcpy(want[i], c.preimage, 32);
    }
    AMP_CHECK_EQ(amp_child_verify(pre, (const uint8_t(*)[32])share, index,
                                  (const uint8_t(*)[32])hash, n), AMP_OK);
    AMP_CHECK_MEM(pre, want, n * 32);
    /* The last child of the set altered (past the batch chunk for n > 16). */
    hash[n - 1][0] ^= 1;
    AMP_CHECK_EQ(amp_child_verify(pre, (const uint8_t(*)[32])share, index,
                                  (const uint8_t(*)[32])hash, n), AMP_ERR_MISMATCH);
    AMP_CHECK(amp_ct_is_zero(pre, n * 32));
    if (n > 1) {
      /* Shares are not all equal (n-1 are random). */
      AMP_CHECK(memcmp(share[0], share[1], 32) != 0);
    }
  }
}

/* amp_child_verify_sets: sets of 1..16 children laid out one after another
 * (71 children: past two chunks of 32, a chunk boundary inside a set), each
 * set's result its own: a wrong hash in set j fails set j only, wipes its
 * preimages only, and leaves the others' written and right. */
static void test_verify_sets(void) {
  uint64_t s = amp_test_seed() ^ 0x5e75;
  static const size_t sizes[] = {1, 1, 3, 1, 16, 2, 1, 1, 5, 1, 1, 1, 4, 1, 9, 1, 1, 7, 1, 1, 12};
  enum { NS = sizeof sizes / sizeof sizes[0], NC = 71 };
  static uint8_t share[NC][32], hash[NC][32], want[NC][32], pre[NC][32];
  uint32_t index[NC];
  size_t len[NS], at[NS], ci = 0;
  int ok[NS];
  for (size_t j = 0; j < NS; j++) {
    uint8_t root[32];
    for (int k = 0; k < 32; k++) root[k] = (uint8_t)amp_test_rand(&s);
    len[j] = sizes[j];
    at[j] = ci;
    AMP_REQUIRE(amp_child_split(share + ci, len[j], root) == AMP_OK);
    for (size_t t = 0; t < len[j]; t++, ci++) {
      amp_child_t c;
      index[ci] = (uint32_t)amp_test_rand(&s);
      amp_child_derive(&c, root, share[ci], index[ci]);
      memcpy(hash[ci], c.hash, 32);
      memcpy(want[ci], c.preimage, 32);
    }
  }
  AMP_REQUIRE(ci == NC);
  AMP_CHECK_EQ(amp_child_verify_sets(pre, (const uint8_t(*)[32])share, index,
                                     (const uint8_t(*)[32])hash, len, NS, ok), NS);
  AMP_CHECK_MEM(pre, want, sizeof want);
  for (size_t j = 0; j < NS; j++) AMP_CHECK_EQ(ok[j], 1);
  for (size_t bad = 0; bad < NS; bad += 3) {
    size_t victim = at[bad] + len[bad] - 1; /* its last child */
    hash[victim][5] ^= 0x20;
    memset(pre, 0x5a, sizeof pre);
    AMP_CHECK_EQ(amp_child_verify_sets(pre, (const uint8_t(*)[32])share, index,
                                       (const uint8_t(*)[32])hash, len, NS, ok), NS - 1);
    for (size_t j = 0; j < NS; j++) {
      AMP_CHECK_EQ(ok[j], j != bad);
      if (j == bad) AMP_CHECK(amp_ct_is_zero(pre[at[j]], len[j] * 32));
      else AMP_CHECK_MEM(pre[at[j]], want[at[j]], len[j] * 32);
    }
    hash[victim][5] ^= 0x20;
  }
  AMP_CHECK_EQ(amp_child_verify_sets(pre, NULL, NULL, NULL, NULL, 0, ok), 0);
}

int main(void) {
  test_vectors();
  test_split();
  test_verify_sets();
  /* Both SHA-256 implementations give the same answers. */
  if (amp_sha256_use("portable") == AMP_OK) {
    test_vectors();
    test_verify_sets();
    AMP_CHECK_EQ(amp_sha256_use("auto"), AMP_OK);
  }
  if (amp_sha256_use("sha-ni") == AMP_OK) { /* pairs, without AVX-512's lanes */
    test_verify_sets();
    AMP_CHECK_EQ(amp_sha256_use("auto"), AMP_OK);
  }
  return amp_test_done();
}
