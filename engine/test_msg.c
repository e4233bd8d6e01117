/* test_msg.c: BOLT #2 HTLC messages and the fabric's tip message.
 *
 * Every message is built byte by byte here (independently of the encoders),
 * decoded, compared field by field and re-encoded byte-exact. Then every
 * truncation, the extension stream rules, BADONION, tip, overflow, and a
 * randomized mutation test (seed printed): whatever a decoder accepts, its
 * encoder gives back byte for byte. The update_add_htlc onion is the real
 * 1366-byte onion of shared/vectors/bolt04/onion-test.json. */
#include <jansson.h>

#include "amp_msg.h"
#include "amp_test.h"
#include "amp_tlv.h"

static uint8_t onion[AMP_MSG_ONION_LEN];
static uint64_t rng;

static void rand_bytes(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)amp_test_rand(&rng);
}

/* A byte appender for building expected messages by hand. */
typedef struct {
  uint8_t b[70000];
  size_t n;
} buf_t;

static void app(buf_t *b, const void *p, size_t n) {
  memcpy(b->b + b->n, p, n);
  b->n += n;
}
static void app16(buf_t *b, uint16_t v) {
  uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  app(b, x, 2);
}
static void app32(buf_t *b, uint32_t v) {
  app16(b, (uint16_t)(v >> 16));
  app16(b, (uint16_t)v);
}
static void app64(buf_t *b, uint64_t v) {
  app32(b, (uint32_t)(v >> 32));
  app32(b, (uint32_t)v);
}

/* Decodes an exact-size heap copy (a sanitizer sees any over-read) with the
 * decoder for type t; on success re-encodes and returns the encoder's
 * result in *enc_len and bytes in enc. Returns the decoder's result. */
static int decode_any(uint16_t t, const uint8_t *msg, size_t len, uint8_t *enc, long *enc_len) {
  uint8_t *c = malloc(len ? len : 1);
  AMP_REQUIRE(c);
  if (len) memcpy(c, msg, len);
  int rc;
  *enc_len = -1;
  switch (t) {
  case AMP_MSG_UPDATE_ADD_HTLC: {
    amp_msg_add_t m;
    rc = amp_msg_add_decode(&m, c, len);
    if (!rc) *enc_len = amp_msg_add_encode(enc, 70000, &m);
    break;
  }
  case AMP_MSG_UPDATE_FULFILL_HTLC: {
    amp_msg_fulfill_t m;
    rc = amp_msg_fulfill_decode(&m, c, len);
    if (!rc) *enc_len = amp_msg_fulfill_encode(enc, 70000, &m);
    break;
  }
  case AMP_MSG_UPDATE_FAIL_HTLC: {
    amp_msg_fail_t m;
    rc = amp_msg_fail_decode(&m, c, len);
    if (!rc) *enc_len = amp_msg_fail_encode(enc, 70000, &m);
    break;
  }
  case AMP_MSG_UPDATE_FAIL_MALFORMED_HTLC: {
    amp_msg_fail_malformed_t m;
    rc = amp_msg_fail_malformed_decode(&m, c, len);
    if (!rc) *enc_len = amp_msg_fail_malformed_encode(enc, 70000, &m);
    break;
  }
  default: {
    uint32_t h;
    rc = amp_msg_tip_decode(&h, c, len);
    if (!rc) *enc_len = amp_msg_tip_encode(enc, 70000, h);
  }
  }
  free(c);
  return rc;
}

static const uint16_t all_types[] = {AMP_MSG_UPDATE_ADD_HTLC, AMP_MSG_UPDATE_FULFILL_HTLC,
                                     AMP_MSG_UPDATE_FAIL_HTLC, AMP_MSG_UPDATE_FAIL_MALFORMED_HTLC,
                                     AMP_MSG_TIP};

/* Checks a valid message: its decoder accepts and round-trips it, every other
 * decoder refuses it, and every truncation fails except at a record boundary
 * of its extension stream (which starts at fixed). */
static void check_valid(uint16_t t, const uint8_t *msg, size_t len, size_t fixed) {
  static uint8_t enc[70000];
  long el;
  AMP_CHECK_EQ(amp_msg_type(msg, len), t);
  AMP_CHECK_EQ(decode_any(t, msg, len, enc, &el), AMP_OK);
  AMP_CHECK_EQ(el, len);
  if (el == (long)len) AMP_CHECK_MEM(enc, msg, len);
  for (size_t i = 0; i < sizeof all_types / sizeof all_types[0]; i++)
    if (all_types[i] != t) AMP_CHECK_EQ(decode_any(all_types[i], msg, len, enc, &el), AMP_ERR_MSG);

  /* Record boundaries of the extension. */
  static uint8_t boundary[70000];
  memset(boundary, 0, len - fixed + 1);
  amp_tlv_reader_t r;
  amp_tlv_rec_t rec;
  amp_tlv_reader_init(&r, msg + fixed, len - fixed);
  boundary[0] = 1;
  while (amp_tlv_next(&r, &rec) == 1) boundary[r.off] = 1;
  for (size_t cut = 0; cut < len; cut++) {
    int rc = decode_any(t, msg, cut, enc, &el);
    int want_ok = cut >= fixed && boundary[cut - fixed];
    AMP_CHECK_EQ(rc, want_ok ? AMP_OK : AMP_ERR_MSG);
    if (want_ok && rc == AMP_OK) {
      AMP_CHECK_EQ(el, cut);
      AMP_CHECK_MEM(enc, msg, cut);
    }
  }
}

/* ---- update_add_htlc ---- */

static size_t build_add(buf_t *b, amp_msg_add_t *f, const uint8_t *tlv, size_t tlv_len) {
  rand_bytes(f->channel_id, 32);
  f->id = amp_test_rand(&rng);
  f->amount_msat = amp_test_rand(&rng);
  rand_bytes(f->payment_hash, 32);
  f->cltv_expiry = (uint32_t)amp_test_rand(&rng);
  f->onion = onion;
  f->tlv = tlv_len ? tlv : NULL;
  f->tlv_len = tlv_len;
  b->n = 0;
  app16(b, 128);
  app(b, f->channel_id, 32);
  app64(b, f->id);
  app64(b, f->amount_msat);
  app(b, f->payment_hash, 32);
  app32(b, f->cltv_expiry);
  app(b, onion, sizeof onion);
  size_t fixed = b->n;
  if (tlv_len) app(b, tlv, tlv_len);
  return fixed;
}

static void test_add(void) {
  /* path key (type 0), an odd attribution-like record, a custom odd one. */
  uint8_t tlv[200];
  amp_tlv_writer_t w;
  uint8_t pk[33], junk[40];
  rand_bytes(pk, 33);
  pk[0] = 0x02;
  rand_bytes(junk, sizeof junk);
  amp_tlv_writer_init(&w, tlv, sizeof tlv);
  amp_tlv_put(&w, 0, pk, 33);
  amp_tlv_put(&w, 1, junk, 7);
  amp_tlv_put(&w, 65537, junk, 40);
  long tn = amp_tlv_writer_finish(&w);
  AMP_REQUIRE(tn > 0);

  for (int with = 0; with < 2; with++) {
    buf_t *b = malloc(sizeof *b);
    AMP_REQUIRE(b);
    amp_msg_add_t f, m;
    size_t fixed = build_add(b, &f, tlv, with ? (size_t)tn : 0);
    AMP_CHECK_EQ(fixed, AMP_MSG_ADD_LEN);
    AMP_CHECK_EQ(fixed, 1452);
    AMP_CHECK_EQ(amp_msg_add_decode(&m, b->b, b->n), AMP_OK);
    AMP_CHECK_MEM(m.channel_id, f.channel_id, 32);
    AMP_CHECK(m.id == f.id && m.amount_msat == f.amount_msat && m.cltv_expiry == f.cltv_expiry);
    AMP_CHECK_MEM(m.payment_hash, f.payment_hash, 32);
    AMP_CHECK(m.onion == b->b + 86); /* 2 + 32 + 8 + 8 + 32 + 4 */
    AMP_CHECK_MEM(m.onion, onion, sizeof onion);
    AMP_CHECK_EQ(m.tlv_len, with ? tn : 0);
    AMP_CHECK(with ? m.tlv == b->b + fixed : m.tlv == NULL);
    uint8_t key[33];
    AMP_CHECK_EQ(amp_msg_add_path_key(key, &m), with);
    if (with) AMP_CHECK_MEM(key, pk, 33);
    /* Encoding the hand-filled struct gives the hand-built bytes. */
    uint8_t out[2000];
    AMP_CHECK_EQ(amp_msg_add_encode(out, sizeof out, &f), b->n);
    AMP_CHECK_MEM(out, b->b, b->n);
    check_valid(128, b->b, b->n, fixed);
    /* Overflow: one byte short, and nothing written past cap. */
    memset(out, 0xcc, sizeof out);
    AMP_CHECK_EQ(amp_msg_add_encode(out, b->n - 1, &f), AMP_ERR_OVERFLOW);
    AMP_CHECK_EQ(out[b->n - 1], 0xcc);
    free(b);
  }

  /* Extension rules for update_add_htlc. */
  struct {
    const char *hex;
    int ok;
    const char *what;
  } ext[] = {
      {"0021" "02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619", 1, "path key"},
      {"0020" "02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f2836866", 0, "path key 32"},
      {"0022" "02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f28368661900", 0, "path key 34"},
      {"0000", 0, "path key empty"},
      {"0100", 1, "odd 1"},
      {"0200", 0, "unknown even 2"},
      {"fe0001000000", 0, "unknown even 65536"},
      {"fe0001000100", 1, "odd 65537"},
      {"03000100", 0, "out of order"},
      {"01000100", 0, "duplicate"},
      {"fd000100", 0, "non-minimal type"},
      {"01fd000100", 0, "non-minimal length"},
      {"0105aabb", 0, "value truncated"},
      {"fd", 0, "type truncated"},
      {"01", 0, "length missing"},
  };
  for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
    uint8_t t[100];
    long tl = amp_test_unhex(t, sizeof t, ext[i].hex);
    AMP_REQUIRE(tl > 0);
    buf_t *b = malloc(sizeof *b);
    AMP_REQUIRE(b);
    amp_msg_add_t f, m;
    build_add(b, &f, t, (size_t)tl);
    int rc = amp_msg_add_decode(&m, b->b, b->n);
    AMP_CHECK_EQ(rc, ext[i].ok ? AMP_OK : AMP_ERR_MSG);
    if (rc != (ext[i].ok ? AMP_OK : AMP_ERR_MSG)) fprintf(stderr, "  add extension: %s\n", ext[i].what);
    /* The encoder refuses what the decoder refuses. */
    uint8_t out[2000];
    long el = amp_msg_add_encode(out, sizeof out, &f);
    AMP_CHECK_EQ(el, ext[i].ok ? (long)b->n : AMP_ERR_MSG);
    free(b);
  }
}

/* ---- update_fulfill_htlc ---- */

static void test_fulfill(void) {
  /* attribution_data (type 1): 20*u32 hold times || 210*4 truncated hmacs. */
  uint8_t attr[920], tlv[1000];
  rand_bytes(attr, sizeof attr);
  amp_tlv_writer_t w;
  amp_tlv_writer_init(&w, tlv, sizeof tlv);
  amp_tlv_put(&w, 1, attr, sizeof attr);
  long tn = amp_tlv_writer_finish(&w);
  AMP_REQUIRE(tn > 0);
  for (int with = 0; with < 2; with++) {
    amp_msg_fulfill_t f, m;
    buf_t *b = malloc(sizeof *b);
    AMP_REQUIRE(b);
    rand_bytes(f.channel_id, 32);
    f.id = amp_test_rand(&rng);
    rand_bytes(f.payment_preimage, 32);
    f.tlv = with ? tlv : NULL;
    f.tlv_len = with ? (size_t)tn : 0;
    b->n = 0;
    app16(b, 130);
    app(b, f.channel_id, 32);
    app64(b, f.id);
    app(b, f.payment_preimage, 32);
    AMP_CHECK_EQ(b->n, AMP_MSG_FULFILL_LEN);
    if (with) app(b, tlv, (size_t)tn);
    AMP_CHECK_EQ(amp_msg_fulfill_decode(&m, b->b, b->n), AMP_OK);
    AMP_CHECK_MEM(m.channel_id, f.channel_id, 32);
    AMP_CHECK(m.id == f.id);
    AMP_CHECK_MEM(m.payment_preimage, f.payment_preimage, 32);
    AMP_CHECK_EQ(m.tlv_len, f.tlv_len);
    uint8_t out[2000];
    AMP_CHECK_EQ(amp_msg_fulfill_encode(out, sizeof out, &f), b->n);
    AMP_CHECK_MEM(out, b->b, b->n);
    AMP_CHECK_EQ(amp_msg_fulfill_encode(out, b->n - 1, &f), AMP_ERR_OVERFLOW);
    check_valid(130, b->b, b->n, AMP_MSG_FULFILL_LEN);
    /* Type 0 is not known here: even, so refused. */
    b->n = AMP_MSG_FULFILL_LEN;
    app(b, "\x00\x00", 2);
    AMP_CHECK_EQ(amp_msg_fulfill_decode(&m, b->b, b->n), AMP_ERR_MSG);
    static const uint8_t zero[2] = {0, 0};
    f.tlv = zero;
    f.tlv_len = 2;
    AMP_CHECK_EQ(amp_msg_fulfill_encode(out, sizeof out, &f), AMP_ERR_MSG);
    free(b);
  }
}

/* ---- update_fail_htlc ---- */

static void test_fail(void) {
  static uint8_t reason[65535];
  rand_bytes(reason, sizeof reason);
  uint8_t tlv[16];
  amp_tlv_writer_t w;
  amp_tlv_writer_init(&w, tlv, sizeof tlv);
  amp_tlv_put(&w, 1, reason, 4);
  amp_tlv_put(&w, 3, NULL, 0);
  long tn = amp_tlv_writer_finish(&w);
  AMP_REQUIRE(tn > 0);
  static const size_t rlens[] = {0, 1, 292, 1000};
  for (size_t ri = 0; ri < sizeof rlens / sizeof rlens[0]; ri++) {
    for (int with = 0; with < 2; with++) {
      amp_msg_fail_t f, m;
      buf_t *b = malloc(sizeof *b);
      AMP_REQUIRE(b);
      rand_bytes(f.channel_id, 32);
      f.id = amp_test_rand(&rng);
      f.reason = rlens[ri] ? reason : NULL;
      f.reason_len = (uint16_t)rlens[ri];
      f.tlv = with ? tlv : NULL;
      f.tlv_len = with ? (size_t)tn : 0;
      b->n = 0;
      app16(b, 131);
      app(b, f.channel_id, 32);
      app64(b, f.id);
      app16(b, f.reason_len);
      app(b, reason, f.reason_len);
      size_t fixed = b->n;
      AMP_CHECK_EQ(fixed, AMP_MSG_FAIL_LEN + f.reason_len);
      if (with) app(b, tlv, (size_t)tn);
      AMP_CHECK_EQ(amp_msg_fail_decode(&m, b->b, b->n), AMP_OK);
      AMP_CHECK_MEM(m.channel_id, f.channel_id, 32);
      AMP_CHECK(m.id == f.id);
      AMP_CHECK_EQ(m.reason_len, f.reason_len);
      AMP_CHECK(m.reason == b->b + 44);
      AMP_CHECK_EQ(m.tlv_len, f.tlv_len);
      uint8_t out[2000];
      AMP_CHECK_EQ(amp_msg_fail_encode(out, sizeof out, &f), b->n);
      AMP_CHECK_MEM(out, b->b, b->n);
      AMP_CHECK_EQ(amp_msg_fail_encode(out, b->n - 1, &f), AMP_ERR_OVERFLOW);
      check_valid(131, b->b, b->n, fixed);
      /* A reason length one more than what is there. */
      amp_put_be16(b->b + 42, (uint16_t)(f.reason_len + 1 + (with ? tn : 0)));
      AMP_CHECK_EQ(amp_msg_fail_decode(&m, b->b, b->n), AMP_ERR_MSG);
      free(b);
    }
  }

  /* The longest reason that fits a message, and one byte more. */
  amp_msg_fail_t f;
  memset(&f, 0, sizeof f);
  f.reason = reason;
  f.reason_len = AMP_MSG_MAX_LEN - AMP_MSG_FAIL_LEN;
  static uint8_t big[70000];
  long n = amp_msg_fail_encode(big, sizeof big, &f);
  AMP_CHECK_EQ(n, AMP_MSG_MAX_LEN);
  amp_msg_fail_t m;
  AMP_CHECK_EQ(amp_msg_fail_decode(&m, big, (size_t)n), AMP_OK);
  f.reason_len++;
  AMP_CHECK_EQ(amp_msg_fail_encode(big, sizeof big, &f), AMP_ERR_MSG);
  f.reason_len--;
  static const uint8_t one[2] = {0x01, 0x00};
  f.tlv = one;
  f.tlv_len = 2;
  AMP_CHECK_EQ(amp_msg_fail_encode(big, sizeof big, &f), AMP_ERR_MSG);
  /* A message longer than 65535 bytes is refused by the decoder. */
  memcpy(big + n, one, 2);
  AMP_CHECK_EQ(amp_msg_fail_decode(&m, big, (size_t)n + 2), AMP_ERR_MSG);
  /* reason NULL with a length. */
  f.tlv = NULL;
  f.tlv_len = 0;
  f.reason = NULL;
  f.reason_len = 3;
  AMP_CHECK_EQ(amp_msg_fail_encode(big, sizeof big, &f), AMP_ERR_MSG);
}

/* ---- update_fail_malformed_htlc ---- */

static void test_fail_malformed(void) {
  amp_msg_fail_malformed_t f, m;
  buf_t *b = malloc(sizeof *b);
  AMP_REQUIRE(b);
  rand_bytes(f.channel_id, 32);
  f.id = amp_test_rand(&rng);
  rand_bytes(f.sha256_of_onion, 32);
  f.failure_code = 0x8000 | 0x4000 | 5; /* invalid_onion_hmac */
  f.tlv = NULL;
  f.tlv_len = 0;
  b->n = 0;
  app16(b, 135);
  app(b, f.channel_id, 32);
  app64(b, f.id);
  app(b, f.sha256_of_onion, 32);
  app16(b, f.failure_code);
  AMP_CHECK_EQ(b->n, AMP_MSG_FAIL_MALFORMED_LEN);
  AMP_CHECK_EQ(amp_msg_fail_malformed_decode(&m, b->b, b->n), AMP_OK);
  AMP_CHECK_MEM(m.channel_id, f.channel_id, 32);
  AMP_CHECK(m.id == f.id);
  AMP_CHECK_MEM(m.sha256_of_onion, f.sha256_of_onion, 32);
  AMP_CHECK_EQ(m.failure_code, f.failure_code);
  AMP_CHECK(m.tlv == NULL && m.tlv_len == 0);
  uint8_t out[200];
  AMP_CHECK_EQ(amp_msg_fail_malformed_encode(out, sizeof out, &f), b->n);
  AMP_CHECK_MEM(out, b->b, b->n);
  AMP_CHECK_EQ(amp_msg_fail_malformed_encode(out, b->n - 1, &f), AMP_ERR_OVERFLOW);
  check_valid(135, b->b, b->n, AMP_MSG_FAIL_MALFORMED_LEN);

  /* Every failure code: accepted exactly when BADONION is set, both ways. */
  long acc = 0;
  for (uint32_t code = 0; code <= 0xffff; code++) {
    amp_put_be16(b->b + 74, (uint16_t)code);
    int rc = amp_msg_fail_malformed_decode(&m, b->b, b->n);
    int want = (code & 0x8000) ? AMP_OK : AMP_ERR_MSG;
    if (rc != want) AMP_CHECK_EQ(rc, want);
    f.failure_code = (uint16_t)code;
    long el = amp_msg_fail_malformed_encode(out, sizeof out, &f);
    if (el != (want ? AMP_ERR_MSG : (long)b->n)) AMP_CHECK_EQ(el, want ? AMP_ERR_MSG : (long)b->n);
    acc += rc == AMP_OK;
  }
  AMP_CHECK_EQ(acc, 0x8000);

  /* An extension stream is accepted and kept (odd), even types refused. */
  f.failure_code = 0xc005;
  amp_put_be16(b->b + 74, f.failure_code);
  static const uint8_t odd[] = {0x05, 0x02, 0xab, 0xcd};
  app(b, odd, sizeof odd);
  AMP_CHECK_EQ(amp_msg_fail_malformed_decode(&m, b->b, b->n), AMP_OK);
  AMP_CHECK(m.tlv == b->b + AMP_MSG_FAIL_MALFORMED_LEN && m.tlv_len == sizeof odd);
  AMP_CHECK_EQ(amp_msg_fail_malformed_encode(out, sizeof out, &m), b->n);
  AMP_CHECK_MEM(out, b->b, b->n);
  check_valid(135, b->b, b->n, AMP_MSG_FAIL_MALFORMED_LEN);
  b->b[AMP_MSG_FAIL_MALFORMED_LEN] = 0x04;
  AMP_CHECK_EQ(amp_msg_fail_malformed_decode(&m, b->b, b->n), AMP_ERR_MSG);
  free(b);
}

/* ---- tip ---- */

static void test_tip(void) {
  static const uint32_t hs[] = {0, 1, 840000, 0x7fffffff, 0xffffffff};
  for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
    uint8_t out[16], want[6] = {0x80, 0xe9};
    amp_put_be32(want + 2, hs[i]);
    AMP_CHECK_EQ(amp_msg_tip_encode(out, sizeof out, hs[i]), 6);
    AMP_CHECK_MEM(out, want, 6);
    AMP_CHECK_EQ(amp_msg_type(out, 6), 33001);
    uint32_t h = ~hs[i];
    AMP_CHECK_EQ(amp_msg_tip_decode(&h, out, 6), AMP_OK);
    AMP_CHECK(h == hs[i]);
    check_valid(AMP_MSG_TIP, out, 6, 6);
    /* No extension: exactly 6 bytes. */
    out[6] = 0x01;
    out[7] = 0x00;
    AMP_CHECK_EQ(amp_msg_tip_decode(&h, out, 8), AMP_ERR_MSG);
    AMP_CHECK_EQ(amp_msg_tip_decode(&h, out, 7), AMP_ERR_MSG);
    AMP_CHECK_EQ(amp_msg_tip_encode(out, 5, hs[i]), AMP_ERR_OVERFLOW);
    out[1] ^= 1;
    AMP_CHECK_EQ(amp_msg_tip_decode(&h, out, 6), AMP_ERR_MSG);
  }
  AMP_CHECK_EQ(amp_msg_type(NULL, 0), AMP_ERR_TRUNCATED);
  static const uint8_t one = 0x80;
  AMP_CHECK_EQ(amp_msg_type(&one, 1), AMP_ERR_TRUNCATED);
}

/* ---- randomized mutations ---- */

static void test_mutations(long iters) {
  /* Seeds: one valid message of each type, with extensions. */
  static buf_t seeds[5];
  uint8_t tlv[64];
  amp_tlv_writer_t w;
  amp_tlv_writer_init(&w, tlv, sizeof tlv);
  uint8_t pk[33] = {0x03};
  amp_tlv_put(&w, 0, pk, 33);
  amp_tlv_put(&w, 5, pk, 3);
  long tn = amp_tlv_writer_finish(&w);
  AMP_REQUIRE(tn > 0);
  amp_msg_add_t fa;
  build_add(&seeds[0], &fa, tlv, (size_t)tn);
  amp_msg_fulfill_t ff = {.id = 7, .tlv = tlv + 35, .tlv_len = (size_t)tn - 35};
  long n = amp_msg_fulfill_encode(seeds[1].b, sizeof seeds[1].b, &ff);
  AMP_REQUIRE(n > 0);
  seeds[1].n = (size_t)n;
  uint8_t reason[300];
  rand_bytes(reason, sizeof reason);
  amp_msg_fail_t fl = {.id = 9, .reason = reason, .reason_len = 292};
  n = amp_msg_fail_encode(seeds[2].b, sizeof seeds[2].b, &fl);
  AMP_REQUIRE(n > 0);
  seeds[2].n = (size_t)n;
  amp_msg_fail_malformed_t fm = {.id = 1, .failure_code = 0xc006};
  n = amp_msg_fail_malformed_encode(seeds[3].b, sizeof seeds[3].b, &fm);
  AMP_REQUIRE(n > 0);
  seeds[3].n = (size_t)n;
  n = amp_msg_tip_encode(seeds[4].b, sizeof seeds[4].b, 840000);
  AMP_REQUIRE(n > 0);
  seeds[4].n = (size_t)n;

  static uint8_t work[4096], enc[70000];
  long ok = 0, bad = 0;
  for (long it = 0; it < iters; it++) {
    buf_t *s = &seeds[amp_test_rand(&rng) % 5];
    size_t len = s->n;
    memcpy(work, s->b, len);
    int muts = 1 + (int)(amp_test_rand(&rng) % 3);
    for (int k = 0; k < muts; k++) {
      uint64_t r = amp_test_rand(&rng);
      /* Mutations aim at the ends (type, tail, extension) as often as not. */
      size_t pos = len ? (size_t)(amp_test_rand(&rng) % len) : 0;
      if ((r >> 40) & 1 && len > 80) pos = len - 1 - (size_t)((r >> 41) % 80);
      switch (r % 6) {
      case 0:
        if (len) work[pos] ^= (uint8_t)(1u << ((r >> 8) % 8));
        break;
      case 1:
        if (len) work[pos] = (uint8_t)(r >> 16);
        break;
      case 2:
        len = pos;
        break;
      case 3:
        for (size_t e = (r >> 8) % 6 + 1; e && len < sizeof work; e--) work[len++] = (uint8_t)amp_test_rand(&rng);
        break;
      case 4:
        if (len) {
          memmove(work + pos, work + pos + 1, len - pos - 1);
          len--;
        }
        break;
      default:
        if (len < sizeof work) {
          memmove(work + pos + 1, work + pos, len - pos);
          work[pos] = (uint8_t)(r >> 8);
          len++;
        }
      }
    }
    /* Every decoder on every mutant: accept means byte-exact re-encoding. */
    int accepted = 0;
    for (size_t i = 0; i < sizeof all_types / sizeof all_types[0]; i++) {
      long el;
      int rc = decode_any(all_types[i], work, len, enc, &el);
      if (rc == AMP_OK) {
        accepted++;
        AMP_CHECK_EQ(el, len);
        if (el == (long)len) AMP_CHECK_MEM(enc, work, len);
      } else {
        AMP_CHECK_EQ(rc, AMP_ERR_MSG);
      }
    }
    AMP_CHECK(accepted <= 1);
    if (accepted) ok++;
    else bad++;
  }
  fprintf(stderr, "mutations: %ld runs, %ld accepted, %ld rejected\n", iters, ok, bad);
  AMP_CHECK(ok > 0 && bad > 0);
}

int main(void) {
  uint64_t s = amp_test_seed();
  rng = s ? s : 1;

  json_error_t err;
  json_t *root = json_load_file(amp_test_vector_path("bolt04/onion-test.json"), 0, &err);
  AMP_REQUIRE(root);
  const char *hex = json_string_value(json_object_get(root, "onion"));
  AMP_REQUIRE(hex && amp_test_unhex(onion, sizeof onion, hex) == AMP_MSG_ONION_LEN);
  json_decref(root);

  test_add();
  test_fulfill();
  test_fail();
  test_fail_malformed();
  test_tip();
  test_mutations(200000);
  return amp_test_done();
}
