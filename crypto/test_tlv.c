/* test_tlv.c: BigSize, tu*, TLV reader and writer.
 *
 * The BOLT #1 vectors (Appendix A: BigSize, Appendix B: TLV streams in the
 * n1/n2 namespaces) are parsed from shared/vectors/bolt01-appendix-a-b.md at
 * run time; the n1/n2 decoders are fixtures of this test. Then writer round
 * trips, order and overflow errors, tu* edge cases, and randomized round
 * trips with a printed seed. */
#include <secp256k1.h>

#include "amp_test.h"
#include "amp_tlv.h"

/* ---- small text helpers for the vector file ---- */

/* Copies the hex digits of s (stopping at the end of the line, skipping
 * spaces) into a NUL-terminated string, then decodes it. Returns the byte
 * count or -1. */
static long hex_of_line(uint8_t *out, size_t cap, const char *s) {
  char hex[4096];
  size_t n = 0;
  for (; *s && *s != '\n'; s++) {
    if (*s == ' ' || *s == '\r') continue;
    if (n + 1 >= sizeof hex) return -1;
    hex[n++] = *s;
  }
  hex[n] = 0;
  return amp_test_unhex(out, cap, hex);
}

/* Finds the json block after heading h in text: returns a malloc'd copy of it
 * (caller frees), or NULL. */
static char *json_block_after(const char *text, const char *h) {
  const char *p = strstr(text, h);
  if (!p) return NULL;
  p = strstr(p, "```json");
  if (!p) return NULL;
  p += 7;
  const char *e = strstr(p, "```");
  if (!e) return NULL;
  size_t n = (size_t)(e - p);
  char *b = malloc(n + 1);
  if (!b) return NULL;
  memcpy(b, p, n);
  b[n] = 0;
  return b;
}

/* Within [obj, end), the string value of "key": copied into out (cap). Returns
 * 1 if found. */
static int json_str(char *out, size_t cap, const char *obj, const char *end, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\"", key);
  const char *p = strstr(obj, pat);
  if (!p || p >= end) return 0;
  p = strchr(p + strlen(pat), '"');
  if (!p || p >= end) return 0;
  p++;
  const char *q = strchr(p, '"');
  if (!q || q >= end || (size_t)(q - p) >= cap) return 0;
  memcpy(out, p, (size_t)(q - p));
  out[q - p] = 0;
  return 1;
}

/* Within [obj, end), the unsigned number value of "key" (full 64-bit range:
 * a JSON library would round 2^64-1). */
static int json_u64(uint64_t *v, const char *obj, const char *end, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\"", key);
  const char *p = strstr(obj, pat);
  if (!p || p >= end) return 0;
  p = strchr(p + strlen(pat), ':');
  if (!p || p >= end) return 0;
  char *e;
  *v = strtoull(p + 1, &e, 10);
  return e != p + 1;
}

/* ---- Appendix A: BigSize ---- */

static void test_bigsize_vectors(const char *text) {
  char *dec = json_block_after(text, "### BigSize Decoding Tests");
  char *enc = json_block_after(text, "### BigSize Encoding Tests");
  AMP_REQUIRE(dec && enc);

  int ndec = 0, nfail = 0;
  for (const char *o = strchr(dec, '{'); o; o = strchr(o + 1, '{')) {
    const char *end = strchr(o, '}');
    AMP_REQUIRE(end);
    char name[128], hex[64], experr[128];
    uint64_t want;
    uint8_t b[32];
    AMP_REQUIRE(json_str(name, sizeof name, o, end, "name"));
    AMP_REQUIRE(json_str(hex, sizeof hex, o, end, "bytes"));
    AMP_REQUIRE(json_u64(&want, o, end, "value"));
    long n = amp_test_unhex(b, sizeof b, hex);
    AMP_REQUIRE(n >= 0);
    uint64_t v = 0xdeadbeef;
    int rc = amp_bigsize_read(&v, b, (size_t)n);
    if (json_str(experr, sizeof experr, o, end, "exp_error")) {
      /* The failure classes of the vectors: non-canonical, or EOF. */
      int want_rc = strstr(experr, "canonical") ? AMP_ERR_NONMINIMAL
                    : strstr(experr, "EOF")     ? AMP_ERR_TRUNCATED
                                                : 1;
      AMP_CHECK(want_rc < 0); /* an error class this test knows */
      AMP_CHECK_EQ(rc, want_rc);
      if (rc != want_rc) fprintf(stderr, "  bigsize decode \"%s\"\n", name);
      nfail++;
    } else {
      AMP_CHECK_EQ(rc, n);
      AMP_CHECK(v == want);
      if (rc != n || v != want) fprintf(stderr, "  bigsize decode \"%s\"\n", name);
      /* Every proper prefix of a valid encoding is truncated. */
      for (long k = 0; k < n; k++) AMP_CHECK_EQ(amp_bigsize_read(&v, b, (size_t)k), AMP_ERR_TRUNCATED);
    }
    ndec++;
    o = end;
  }

  int nenc = 0;
  for (const char *o = strchr(enc, '{'); o; o = strchr(o + 1, '{')) {
    const char *end = strchr(o, '}');
    AMP_REQUIRE(end);
    char hex[64];
    uint64_t v;
    uint8_t want[32], got[16];
    AMP_REQUIRE(json_str(hex, sizeof hex, o, end, "bytes"));
    AMP_REQUIRE(json_u64(&v, o, end, "value"));
    long n = amp_test_unhex(want, sizeof want, hex);
    AMP_REQUIRE(n > 0);
    size_t k = amp_bigsize_write(got, v);
    AMP_CHECK_EQ(k, n);
    AMP_CHECK_EQ(amp_bigsize_len(v), n);
    AMP_CHECK_MEM(got, want, (size_t)n);
    nenc++;
    o = end;
  }
  fprintf(stderr, "bigsize: %d decoding vectors (%d failures), %d encoding vectors\n", ndec, nfail,
          nenc);
  AMP_CHECK(ndec > 0 && nfail > 0 && nenc > 0);
  free(dec);
  free(enc);
}

/* ---- Appendix B: the n1 and n2 namespaces (test fixtures) ---- */

typedef struct {
  int has1, has2, has3, has4;
  uint64_t amount_msat;      /* tlv1 */
  uint64_t scid;             /* tlv2 */
  uint8_t node_id[33];       /* tlv3 */
  uint64_t amount_msat_1, amount_msat_2;
  uint16_t cltv_delta;       /* tlv4 */
} n1_t;

typedef struct {
  int has1, has2;
  uint64_t amount_msat;      /* tlv1, type 0 */
  uint32_t cltv_expiry;      /* tlv2, type 11 */
} n2_t;

static int n1_decode(n1_t *o, const uint8_t *p, size_t len) {
  memset(o, 0, sizeof *o);
  amp_tlv_reader_t r;
  amp_tlv_rec_t rec;
  int rc;
  amp_tlv_reader_init(&r, p, len);
  while ((rc = amp_tlv_next(&r, &rec)) == 1) {
    switch (rec.type) {
    case 1:
      if ((rc = amp_tu64_read(&o->amount_msat, rec.val, rec.len))) return rc;
      o->has1 = 1;
      break;
    case 2:
      if (rec.len != 8) return AMP_ERR_LENGTH;
      o->scid = amp_be64(rec.val);
      o->has2 = 1;
      break;
    case 3: {
      secp256k1_pubkey pk;
      if (rec.len != 33 + 8 + 8) return AMP_ERR_LENGTH;
      if (!secp256k1_ec_pubkey_parse(secp256k1_context_static, &pk, rec.val, 33))
        return AMP_ERR_BAD_KEY;
      memcpy(o->node_id, rec.val, 33);
      o->amount_msat_1 = amp_be64(rec.val + 33);
      o->amount_msat_2 = amp_be64(rec.val + 41);
      o->has3 = 1;
      break;
    }
    case 254:
      if (rec.len != 2) return AMP_ERR_LENGTH;
      o->cltv_delta = amp_be16(rec.val);
      o->has4 = 1;
      break;
    default:
      if ((rc = amp_tlv_unknown_ok(rec.type))) return rc;
    }
  }
  return rc;
}

static int n2_decode(n2_t *o, const uint8_t *p, size_t len) {
  memset(o, 0, sizeof *o);
  amp_tlv_reader_t r;
  amp_tlv_rec_t rec;
  int rc;
  amp_tlv_reader_init(&r, p, len);
  while ((rc = amp_tlv_next(&r, &rec)) == 1) {
    switch (rec.type) {
    case 0:
      if ((rc = amp_tu64_read(&o->amount_msat, rec.val, rec.len))) return rc;
      o->has1 = 1;
      break;
    case 11:
      if ((rc = amp_tu32_read(&o->cltv_expiry, rec.val, rec.len))) return rc;
      o->has2 = 1;
      break;
    default:
      if ((rc = amp_tlv_unknown_ok(rec.type))) return rc;
    }
  }
  return rc;
}

#define NS_N1 1
#define NS_N2 2
#define MAX_CASES 128

typedef struct {
  int ns;             /* NS_N1 | NS_N2: where this case applies */
  int ok;             /* 1: must decode, 0: must fail */
  uint8_t b[512];
  size_t n;
  int has_values;     /* n1 values were listed */
  n1_t want;
  int line;
} tlv_case_t;

static tlv_case_t cases[MAX_CASES];
static int ncases;

/* "0x0x550": block x tx x output. */
static uint64_t parse_scid(const char *s) {
  char *e;
  uint64_t blk = strtoull(s, &e, 10);
  uint64_t tx = strtoull(e + 1, &e, 10);
  uint64_t out = strtoull(e + 1, &e, 10);
  return (blk << 40) | (tx << 16) | out;
}

/* Parses a "2. Values:" line of the n1 namespace into c->want. */
static void parse_values(tlv_case_t *c, const char *s) {
  int cur = 0;
  c->has_values = 1;
  for (const char *p = strchr(s, '`'); p && *p != '\n'; p = strchr(p + 1, '`')) {
    const char *q = strchr(p + 1, '`');
    AMP_REQUIRE(q);
    char name[64];
    size_t k = (size_t)(q - p - 1);
    AMP_REQUIRE(k < sizeof name);
    memcpy(name, p + 1, k);
    name[k] = 0;
    if (q[1] != '=') {
      AMP_REQUIRE(sscanf(name, "tlv%d", &cur) == 1);
      if (cur == 1) c->want.has1 = 1;
      if (cur == 2) c->want.has2 = 1;
      if (cur == 3) c->want.has3 = 1;
      if (cur == 4) c->want.has4 = 1;
      p = q;
      continue;
    }
    const char *v = q + 2;
    if (!strcmp(name, "amount_msat") && cur == 1) c->want.amount_msat = strtoull(v, NULL, 10);
    else if (!strcmp(name, "scid")) c->want.scid = parse_scid(v);
    else if (!strcmp(name, "node_id")) {
      char hex[67];
      memcpy(hex, v, 66);
      hex[66] = 0;
      AMP_REQUIRE(amp_test_unhex(c->want.node_id, 33, hex) == 33);
    } else if (!strcmp(name, "amount_msat_1")) c->want.amount_msat_1 = strtoull(v, NULL, 10);
    else if (!strcmp(name, "amount_msat_2")) c->want.amount_msat_2 = strtoull(v, NULL, 10);
    else if (!strcmp(name, "cltv_delta")) c->want.cltv_delta = (uint16_t)strtoul(v, NULL, 10);
    else {
      fprintf(stderr, "FAIL unknown field %s in vector values\n", name);
      AMP_CHECK(0);
    }
    p = q;
  }
}

static void load_tlv_cases(const char *text) {
  const char *p = strstr(text, "## Appendix B");
  AMP_REQUIRE(p);
  int ns = 0, ok = -1, line = 0;
  for (; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    line++;
    const char *eol = strchr(p, '\n');
    size_t ll = eol ? (size_t)(eol - p) : strlen(p);
    char l[8192];
    AMP_REQUIRE(ll < sizeof l);
    memcpy(l, p, ll);
    l[ll] = 0;
    if (!strncmp(l, "## ", 3) && strncmp(l, "## Appendix B", 13)) break;
    if (strstr(l, "the following TLV stream") || strstr(l, "The following TLV stream")) {
      /* The sentence may wrap: take the paragraph, up to the blank line. */
      const char *e = strstr(p, "\n\n");
      size_t pl = e ? (size_t)(e - p) : strlen(p);
      char para[1024];
      AMP_REQUIRE(pl < sizeof para);
      memcpy(para, p, pl);
      para[pl] = 0;
      for (char *q = para; *q; q++)
        if (*q == '\n') *q = ' ';
      ok = strstr(para, "correctly decode") ? 1 : strstr(para, "decoding failure") ? 0 : -1;
      if (strstr(para, "any namespace") || strstr(para, "either namespace")) ns = NS_N1 | NS_N2;
      else if (strstr(para, "`n1`")) ns = NS_N1;
      else if (strstr(para, "`n2`")) ns = NS_N2;
      else ns = 0;
      AMP_REQUIRE(ok >= 0 && ns);
      continue;
    }
    const char *s;
    if ((s = strstr(l, "1. Invalid stream: 0x")) || (s = strstr(l, "1. Valid stream: 0x"))) {
      int valid = strstr(l, "1. Valid") != NULL;
      AMP_REQUIRE(ok >= 0 && valid == ok); /* the heading and the case agree */
      AMP_REQUIRE(ncases < MAX_CASES);
      tlv_case_t *c = &cases[ncases++];
      memset(c, 0, sizeof *c);
      c->ns = ns;
      c->ok = ok;
      c->line = line;
      long n = hex_of_line(c->b, sizeof c->b, strstr(s, "0x") + 2);
      AMP_REQUIRE(n >= 0);
      c->n = (size_t)n;
      continue;
    }
    if ((s = strstr(l, "2. Values:"))) {
      AMP_REQUIRE(ncases > 0 && cases[ncases - 1].ns == NS_N1);
      parse_values(&cases[ncases - 1], s);
    }
  }
}

static int n1_eq(const n1_t *a, const n1_t *b) {
  return a->has1 == b->has1 && a->has2 == b->has2 && a->has3 == b->has3 && a->has4 == b->has4 &&
         (!a->has1 || a->amount_msat == b->amount_msat) && (!a->has2 || a->scid == b->scid) &&
         (!a->has3 || (!memcmp(a->node_id, b->node_id, 33) && a->amount_msat_1 == b->amount_msat_1 &&
                       a->amount_msat_2 == b->amount_msat_2)) &&
         (!a->has4 || a->cltv_delta == b->cltv_delta);
}

/* Merges the listed values of two n1 cases (disjoint types). */
static n1_t n1_merge(const n1_t *a, const n1_t *b) {
  n1_t m = *a;
  if (b->has1) m.has1 = 1, m.amount_msat = b->amount_msat;
  if (b->has2) m.has2 = 1, m.scid = b->scid;
  if (b->has3) {
    m.has3 = 1;
    memcpy(m.node_id, b->node_id, 33);
    m.amount_msat_1 = b->amount_msat_1;
    m.amount_msat_2 = b->amount_msat_2;
  }
  if (b->has4) m.has4 = 1, m.cltv_delta = b->cltv_delta;
  return m;
}

/* First and last type of a valid stream (raw reader); returns 0 if empty. */
static int type_span(uint64_t *first, uint64_t *last, const uint8_t *p, size_t n) {
  amp_tlv_reader_t r;
  amp_tlv_rec_t rec;
  int got = 0;
  amp_tlv_reader_init(&r, p, n);
  while (amp_tlv_next(&r, &rec) == 1) {
    if (!got) *first = rec.type;
    *last = rec.type;
    got = 1;
  }
  return got;
}

static void test_tlv_vectors(const char *text) {
  load_tlv_cases(text);
  int nfail = 0, nok = 0, nvals = 0;
  for (int i = 0; i < ncases; i++) {
    tlv_case_t *c = &cases[i];
    if (c->ns & NS_N1) {
      n1_t o;
      int rc = n1_decode(&o, c->b, c->n);
      if (c->ok) {
        AMP_CHECK_EQ(rc, 0);
        if (c->has_values) {
          AMP_CHECK(n1_eq(&o, &c->want));
          nvals++;
        } else {
          n1_t none;
          memset(&none, 0, sizeof none);
          AMP_CHECK(n1_eq(&o, &none)); /* ignored: no record decoded */
        }
      } else {
        AMP_CHECK(rc < 0);
      }
      if ((rc == 0) != c->ok) fprintf(stderr, "  n1 case at line %d of Appendix B\n", c->line);
    }
    if (c->ns & NS_N2) {
      n2_t o;
      int rc = n2_decode(&o, c->b, c->n);
      if (c->ok) {
        AMP_CHECK_EQ(rc, 0);
        AMP_CHECK(!o.has1 && !o.has2);
      } else {
        AMP_CHECK(rc < 0);
      }
      if ((rc == 0) != c->ok) fprintf(stderr, "  n2 case at line %d of Appendix B\n", c->line);
    }
    if (c->ok) nok++;
    else nfail++;
  }
  fprintf(stderr, "tlv: %d vectors (%d must fail, %d must decode, %d with values)\n", ncases, nfail,
          nok, nvals);
  AMP_CHECK(nfail > 0 && nok > 0 && nvals > 0);

  /* "Any appending of an invalid stream to a valid stream should trigger a
   * decoding failure. Any appending of a higher-numbered valid stream to a
   * lower-numbered valid stream should not." For each namespace. */
  int ncomb = 0;
  for (int ns = NS_N1; ns <= NS_N2; ns++) {
    for (int i = 0; i < ncases; i++) {
      tlv_case_t *a = &cases[i];
      if (!(a->ns & ns) || !a->ok) continue;
      for (int j = 0; j < ncases; j++) {
        tlv_case_t *b = &cases[j];
        if (!(b->ns & ns)) continue;
        uint8_t buf[1024];
        memcpy(buf, a->b, a->n);
        memcpy(buf + a->n, b->b, b->n);
        size_t n = a->n + b->n;
        uint64_t af = 0, al = 0, bf = 0, bl = 0;
        int expect_ok;
        if (!b->ok) {
          expect_ok = 0;
        } else {
          int ha = type_span(&af, &al, a->b, a->n), hb = type_span(&bf, &bl, b->b, b->n);
          if (ha && hb && bf <= al) continue; /* not higher-numbered */
          expect_ok = 1;
        }
        if (ns == NS_N1) {
          n1_t o;
          int rc = n1_decode(&o, buf, n);
          AMP_CHECK_EQ(rc == 0, expect_ok);
          if (expect_ok && rc == 0) {
            n1_t m = n1_merge(&a->want, &b->want);
            AMP_CHECK(n1_eq(&o, &m));
          }
        } else {
          n2_t o;
          AMP_CHECK_EQ(n2_decode(&o, buf, n) == 0, expect_ok);
        }
        ncomb++;
      }
    }
  }
  fprintf(stderr, "tlv: %d concatenations\n", ncomb);
}

/* ---- reader details ---- */

static void test_reader(void) {
  amp_tlv_reader_t r;
  amp_tlv_rec_t rec;

  /* A good record, then one whose length runs past the end: the error names
   * its type and the reader stays put. */
  static const uint8_t s1[] = {0x01, 0x01, 0x2a, 0x05, 0x03, 0xaa};
  amp_tlv_reader_init(&r, s1, sizeof s1);
  AMP_CHECK_EQ(amp_tlv_next(&r, &rec), 1);
  AMP_CHECK_EQ(rec.type, 1);
  AMP_CHECK_EQ(rec.len, 1);
  AMP_CHECK(rec.val == s1 + 2);
  AMP_CHECK_EQ(amp_tlv_next(&r, &rec), AMP_ERR_TRUNCATED);
  AMP_CHECK_EQ(rec.type, 5);
  AMP_CHECK(rec.val == NULL);
  AMP_CHECK_EQ(amp_tlv_next(&r, &rec), AMP_ERR_TRUNCATED);

  /* Order: equal and lower types. Type 0 first is fine. */
  static const uint8_t s2[] = {0x00, 0x00, 0x03, 0x00, 0x03, 0x00};
  amp_tlv_reader_init(&r, s2, sizeof s2);
  AMP_CHECK_EQ(amp_tlv_next(&r, &rec), 1);
  AMP_CHECK_EQ(rec.type, 0);
  AMP_CHECK_EQ(rec.len, 0);
  AMP_CHECK_EQ(amp_tlv_next(&r, &rec), 1);
  AMP_CHECK_EQ(amp_tlv_next(&r, &rec), AMP_ERR_TLV_ORDER);
  AMP_CHECK_EQ(rec.type, 3);
  static const uint8_t s3[] = {0x07, 0x00, 0x06, 0x00};
  amp_tlv_reader_init(&r, s3, sizeof s3);
  AMP_CHECK_EQ(amp_tlv_next(&r, &rec), 1);
  AMP_CHECK_EQ(amp_tlv_next(&r, &rec), AMP_ERR_TLV_ORDER);
  AMP_CHECK_EQ(rec.type, 6);

  /* A bad type: rec.type is 0. */
  static const uint8_t s4[] = {0x01, 0x00, 0xfd, 0x00, 0x10, 0x00};
  amp_tlv_reader_init(&r, s4, sizeof s4);
  AMP_CHECK_EQ(amp_tlv_next(&r, &rec), 1);
  AMP_CHECK_EQ(amp_tlv_next(&r, &rec), AMP_ERR_NONMINIMAL);
  AMP_CHECK_EQ(rec.type, 0);

  /* Non-minimal length. */
  static const uint8_t s5[] = {0x01, 0xfd, 0x00, 0x01, 0x00};
  amp_tlv_reader_init(&r, s5, sizeof s5);
  AMP_CHECK_EQ(amp_tlv_next(&r, &rec), AMP_ERR_NONMINIMAL);
  AMP_CHECK_EQ(rec.type, 1);

  /* Empty stream; zero-length buffer with a NULL pointer. */
  amp_tlv_reader_init(&r, NULL, 0);
  AMP_CHECK_EQ(amp_tlv_next(&r, &rec), 0);
  AMP_CHECK_EQ(amp_tlv_next(&r, &rec), 0);

  /* A length near 2^64 must not wrap the bounds check. */
  static const uint8_t s6[] = {0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
  amp_tlv_reader_init(&r, s6, sizeof s6);
  AMP_CHECK_EQ(amp_tlv_next(&r, &rec), AMP_ERR_TRUNCATED);

  AMP_CHECK_EQ(amp_tlv_unknown_ok(1), AMP_OK);
  AMP_CHECK_EQ(amp_tlv_unknown_ok(0), AMP_ERR_TLV_UNKNOWN_EVEN);
  AMP_CHECK_EQ(amp_tlv_unknown_ok(UINT64_MAX), AMP_OK);
  AMP_CHECK_EQ(amp_tlv_unknown_ok(UINT64_MAX - 1), AMP_ERR_TLV_UNKNOWN_EVEN);
}

/* ---- tu16 / tu32 / tu64 ---- */

static void test_tu(uint64_t *seed) {
  uint8_t b[16];
  uint64_t v64;
  uint32_t v32;
  uint16_t v16;

  /* Zero is the empty encoding. */
  AMP_CHECK_EQ(amp_tu64_write(b, 0), 0);
  AMP_CHECK_EQ(amp_tu64_read(&v64, b, 0), AMP_OK);
  AMP_CHECK(v64 == 0);
  AMP_CHECK_EQ(amp_tu32_read(&v32, b, 0), AMP_OK);
  AMP_CHECK_EQ(v32, 0);
  AMP_CHECK_EQ(amp_tu16_read(&v16, b, 0), AMP_OK);
  AMP_CHECK_EQ(v16, 0);

  /* Every byte length, at its edges and random values in between. */
  for (int k = 1; k <= 8; k++) {
    uint64_t lo = 1ull << (8 * (k - 1));
    uint64_t hi = k == 8 ? UINT64_MAX : (1ull << (8 * k)) - 1;
    for (int t = 0; t < 1000; t++) {
      uint64_t v = t == 0 ? lo : t == 1 ? hi : lo + amp_test_rand(seed) % (hi - lo + (k < 8));
      if (v < lo || v > hi) v = lo;
      size_t n = amp_tu64_write(b, v);
      AMP_CHECK_EQ(n, k);
      AMP_CHECK_EQ(amp_tu64_len(v), k);
      AMP_CHECK(b[0] != 0);
      AMP_CHECK_EQ(amp_tu64_read(&v64, b, n), AMP_OK);
      AMP_CHECK(v64 == v);
      int rc32 = amp_tu32_read(&v32, b, n);
      AMP_CHECK_EQ(rc32, k <= 4 ? AMP_OK : AMP_ERR_LENGTH);
      if (k <= 4) AMP_CHECK(v32 == v);
      int rc16 = amp_tu16_read(&v16, b, n);
      AMP_CHECK_EQ(rc16, k <= 2 ? AMP_OK : AMP_ERR_LENGTH);
      if (k <= 2) AMP_CHECK(v16 == v);
      /* A leading zero byte is non-minimal wherever it still fits. */
      uint8_t z[16] = {0};
      memcpy(z + 1, b, n);
      AMP_CHECK_EQ(amp_tu64_read(&v64, z, n + 1), n + 1 <= 8 ? AMP_ERR_NONMINIMAL : AMP_ERR_LENGTH);
      if (n + 1 <= 4) AMP_CHECK_EQ(amp_tu32_read(&v32, z, n + 1), AMP_ERR_NONMINIMAL);
      if (n + 1 <= 2) AMP_CHECK_EQ(amp_tu16_read(&v16, z, n + 1), AMP_ERR_NONMINIMAL);
    }
  }
  /* A single zero byte, and zeros of any length, are non-minimal zero. */
  memset(b, 0, sizeof b);
  for (size_t n = 1; n <= 8; n++) AMP_CHECK_EQ(amp_tu64_read(&v64, b, n), AMP_ERR_NONMINIMAL);
  /* Over-long: the maximum length is checked first. */
  memset(b, 0xff, sizeof b);
  AMP_CHECK_EQ(amp_tu64_read(&v64, b, 9), AMP_ERR_LENGTH);
  AMP_CHECK_EQ(amp_tu32_read(&v32, b, 5), AMP_ERR_LENGTH);
  AMP_CHECK_EQ(amp_tu16_read(&v16, b, 3), AMP_ERR_LENGTH);
  AMP_CHECK_EQ(amp_tu64_read(&v64, b, 8), AMP_OK);
  AMP_CHECK(v64 == UINT64_MAX);
  AMP_CHECK_EQ(amp_tu32_read(&v32, b, 4), AMP_OK);
  AMP_CHECK(v32 == UINT32_MAX);
  AMP_CHECK_EQ(amp_tu16_read(&v16, b, 2), AMP_OK);
  AMP_CHECK(v16 == UINT16_MAX);
}

/* ---- BigSize beyond the vectors ---- */

static void test_bigsize_random(uint64_t *seed) {
  static const uint64_t edges[] = {0, 1, 0xfc, 0xfd, 0xfe, 0xff, 0x100, 0xffff, 0x10000,
                                   0xffffffffull, 0x100000000ull, UINT64_MAX};
  for (int t = 0; t < 200000; t++) {
    uint64_t v;
    if (t < (int)(sizeof edges / sizeof edges[0])) v = edges[t];
    else v = amp_test_rand(seed) >> (amp_test_rand(seed) % 64);
    uint8_t b[16], nm[16];
    size_t n = amp_bigsize_write(b, v);
    AMP_CHECK_EQ(n, amp_bigsize_len(v));
    uint64_t got = ~v;
    AMP_CHECK_EQ(amp_bigsize_read(&got, b, n), n);
    AMP_CHECK(got == v);
    /* Extra bytes after it are not consumed. */
    b[n] = 0x55;
    AMP_CHECK_EQ(amp_bigsize_read(&got, b, n + 1), n);
    AMP_CHECK_EQ(amp_bigsize_read(&got, b, (size_t)(amp_test_rand(seed) % n)), AMP_ERR_TRUNCATED);
    /* Every longer encoding of v is non-minimal. */
    if (v < 0x10000) {
      nm[0] = 0xfe;
      amp_put_be32(nm + 1, (uint32_t)v);
      AMP_CHECK_EQ(amp_bigsize_read(&got, nm, 5), AMP_ERR_NONMINIMAL);
    }
    if (v < 0xfd) {
      nm[0] = 0xfd;
      amp_put_be16(nm + 1, (uint16_t)v);
      AMP_CHECK_EQ(amp_bigsize_read(&got, nm, 3), AMP_ERR_NONMINIMAL);
    }
    if (v < 0x100000000ull) {
      nm[0] = 0xff;
      amp_put_be64(nm + 1, v);
      AMP_CHECK_EQ(amp_bigsize_read(&got, nm, 9), AMP_ERR_NONMINIMAL);
    }
  }
}

/* ---- writer ---- */

static void test_writer(uint64_t *seed) {
  uint8_t buf[4096], val[600];
  for (size_t i = 0; i < sizeof val; i++) val[i] = (uint8_t)(i * 7 + 1);
  amp_tlv_writer_t w;

  /* Round trip: types across every BigSize width, lengths across 1/3 bytes. */
  static const uint64_t types[] = {0, 1, 2, 252, 253, 254, 65535, 65536, 0xfffffffeull,
                                   0x100000000ull, UINT64_MAX - 1, UINT64_MAX};
  static const size_t lens[] = {0, 1, 8, 252, 253, 300, 0, 33, 5, 2, 9, 1};
  amp_tlv_writer_init(&w, buf, sizeof buf);
  for (int i = 0; i < 12; i++) amp_tlv_put(&w, types[i], i == 0 ? NULL : val, lens[i]);
  long n = amp_tlv_writer_finish(&w);
  AMP_REQUIRE(n > 0);
  amp_tlv_reader_t r;
  amp_tlv_rec_t rec;
  amp_tlv_reader_init(&r, buf, (size_t)n);
  for (int i = 0; i < 12; i++) {
    AMP_CHECK_EQ(amp_tlv_next(&r, &rec), 1);
    AMP_CHECK(rec.type == types[i]);
    AMP_CHECK_EQ(rec.len, lens[i]);
    if (rec.len) AMP_CHECK_MEM(rec.val, val, lens[i]);
  }
  AMP_CHECK_EQ(amp_tlv_next(&r, &rec), 0);

  /* put_tu64 writes the minimal form and reads back. */
  amp_tlv_writer_init(&w, buf, sizeof buf);
  amp_tlv_put_tu64(&w, 2, 0);
  amp_tlv_put_tu64(&w, 4, 360);
  amp_tlv_put_tu64(&w, 6, UINT64_MAX);
  n = amp_tlv_writer_finish(&w);
  static const uint8_t want_tu[] = {0x02, 0x00, 0x04, 0x02, 0x01, 0x68, 0x06, 0x08,
                                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  AMP_CHECK_EQ(n, sizeof want_tu);
  AMP_CHECK_MEM(buf, want_tu, sizeof want_tu);

  /* Order errors stick and stop later puts. */
  amp_tlv_writer_init(&w, buf, sizeof buf);
  amp_tlv_put(&w, 5, val, 1);
  amp_tlv_put(&w, 5, val, 1);
  AMP_CHECK_EQ(w.err, AMP_ERR_TLV_ORDER);
  AMP_CHECK_EQ(w.len, 3);
  amp_tlv_put(&w, 7, val, 1);
  AMP_CHECK_EQ(w.len, 3);
  AMP_CHECK_EQ(amp_tlv_writer_finish(&w), AMP_ERR_TLV_ORDER);
  amp_tlv_writer_init(&w, buf, sizeof buf);
  amp_tlv_put(&w, 9, val, 1);
  amp_tlv_put_tu64(&w, 3, 1);
  AMP_CHECK_EQ(amp_tlv_writer_finish(&w), AMP_ERR_TLV_ORDER);
  amp_tlv_writer_init(&w, buf, sizeof buf);
  amp_tlv_put(&w, UINT64_MAX, NULL, 0);
  amp_tlv_put(&w, 0, NULL, 0);
  AMP_CHECK_EQ(amp_tlv_writer_finish(&w), AMP_ERR_TLV_ORDER);

  /* Overflow: exactly fitting is fine, one byte less fails, and nothing is
   * written past cap. */
  for (size_t vl = 0; vl < 300; vl += 37) {
    size_t need = 1 + amp_bigsize_len(vl) + vl;
    for (size_t cap = 0; cap <= need; cap++) {
      memset(buf, 0xcc, sizeof buf);
      amp_tlv_writer_init(&w, buf, cap);
      amp_tlv_put(&w, 1, val, vl);
      long got = amp_tlv_writer_finish(&w);
      AMP_CHECK_EQ(got, cap == need ? (long)need : AMP_ERR_OVERFLOW);
      AMP_CHECK_EQ(buf[cap], 0xcc);
      if (cap < need) {
        /* Nothing at all is written on overflow. */
        for (size_t i = 0; i < cap; i++) AMP_CHECK_EQ(buf[i], 0xcc);
        amp_tlv_put(&w, 3, NULL, 0); /* sticky */
        AMP_CHECK_EQ(amp_tlv_writer_finish(&w), AMP_ERR_OVERFLOW);
      }
    }
  }
  /* tu64 overflow too. */
  amp_tlv_writer_init(&w, buf, 3);
  amp_tlv_put_tu64(&w, 1, 0x100);
  AMP_CHECK_EQ(amp_tlv_writer_finish(&w), AMP_ERR_OVERFLOW);

  /* Random streams: write, read back, byte-compare a re-write. */
  for (int t = 0; t < 20000; t++) {
    uint64_t typ[16];
    size_t ln[16];
    int k = (int)(amp_test_rand(seed) % 16);
    uint64_t ty = amp_test_rand(seed) % 300;
    for (int i = 0; i < k; i++) {
      typ[i] = ty;
      ln[i] = (size_t)(amp_test_rand(seed) % 260);
      uint64_t step = 1 + (amp_test_rand(seed) >> (amp_test_rand(seed) % 63 + 1));
      if (ty > UINT64_MAX - step) {
        k = i + 1;
        break;
      }
      ty += step;
    }
    amp_tlv_writer_init(&w, buf, sizeof buf);
    for (int i = 0; i < k; i++) amp_tlv_put(&w, typ[i], val, ln[i]);
    long len = amp_tlv_writer_finish(&w);
    AMP_REQUIRE(len >= 0);
    uint8_t buf2[4096];
    amp_tlv_writer_t w2;
    amp_tlv_writer_init(&w2, buf2, sizeof buf2);
    amp_tlv_reader_init(&r, buf, (size_t)len);
    int i = 0, rc;
    while ((rc = amp_tlv_next(&r, &rec)) == 1) {
      AMP_CHECK(i < k && rec.type == typ[i] && rec.len == ln[i]);
      amp_tlv_put(&w2, rec.type, rec.val, rec.len);
      i++;
    }
    AMP_CHECK_EQ(rc, 0);
    AMP_CHECK_EQ(i, k);
    AMP_CHECK_EQ(amp_tlv_writer_finish(&w2), len);
    AMP_CHECK_MEM(buf2, buf, (size_t)len);
  }
}

int main(void) {
  char *text = amp_test_read_file(amp_test_vector_path("bolt01-appendix-a-b.md"), NULL);
  uint64_t s = amp_test_seed();
  uint64_t seed = s ? s : 1; /* xorshift needs a non-zero state */

  test_bigsize_vectors(text);
  test_tlv_vectors(text);
  test_reader();
  test_tu(&seed);
  test_bigsize_random(&seed);
  test_writer(&seed);

  free(text);
  return amp_test_done();
}
