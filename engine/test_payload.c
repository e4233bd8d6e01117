/* test_payload.c: the BOLT #4 hop payload.
 *
 * Vectors, parsed at run time: the example final-hop payload, the AMP
 * (type 14) records and the type 14 / type 8 encodings of
 * shared/vectors/amp-derivation.txt; the five hop payloads of
 * shared/vectors/bolt04/onion-test.json. Then every malformed class with the
 * type it must report, the final/forward checks, and a randomized mutation
 * test (seed printed). */
#include <jansson.h>

#include "amp_payload.h"
#include "amp_test.h"
#include "amp_tlv.h"

/* ---- helpers ---- */

/* Value of "key=" in text (up to a space, ':', ')', ',' or end of line),
 * copied into out. Returns 1 if found. key must start a line or follow a
 * space. */
static int kv(char *out, size_t cap, const char *line, const char *key) {
  size_t kl = strlen(key);
  for (const char *p = line; (p = strstr(p, key)); p++) {
    if ((p != line && !strchr(" \n(", p[-1])) || p[kl] != '=') continue;
    p += kl + 1;
    size_t n = 0;
    while (p[n] && p[n] != ' ' && p[n] != '\n' && p[n] != ':' && p[n] != ')' && p[n] != ',') n++;
    if (n >= cap) return 0;
    memcpy(out, p, n);
    out[n] = 0;
    return 1;
  }
  return 0;
}

/* Copies the line starting at p into out (NUL-terminated, cut to cap). */
static void line_at(char *out, size_t cap, const char *p) {
  size_t n = 0;
  while (p[n] && p[n] != '\n' && n + 1 < cap) n++;
  memcpy(out, p, n);
  out[n] = 0;
}

/* Whole-struct comparison of what parse produced (pointer fields by content). */
static int payload_eq(const amp_payload_t *a, const amp_payload_t *b) {
  if (a->present != b->present) return 0;
  uint32_t p = a->present;
  if ((p & AMP_PAYLOAD_AMT) && a->amt_to_forward != b->amt_to_forward) return 0;
  if ((p & AMP_PAYLOAD_CLTV) && a->outgoing_cltv_value != b->outgoing_cltv_value) return 0;
  if ((p & AMP_PAYLOAD_SCID) && a->short_channel_id != b->short_channel_id) return 0;
  if ((p & AMP_PAYLOAD_MPP) &&
      (memcmp(a->payment_addr, b->payment_addr, 32) || a->total_msat != b->total_msat))
    return 0;
  if ((p & AMP_PAYLOAD_ENCDATA) &&
      (a->encrypted_data_len != b->encrypted_data_len ||
       (a->encrypted_data_len && memcmp(a->encrypted_data, b->encrypted_data, a->encrypted_data_len))))
    return 0;
  if ((p & AMP_PAYLOAD_PATHKEY) && memcmp(a->path_key, b->path_key, 33)) return 0;
  if ((p & AMP_PAYLOAD_AMP) &&
      (memcmp(a->amp_share, b->amp_share, 32) || memcmp(a->amp_set_id, b->amp_set_id, 32) ||
       a->amp_child_index != b->amp_child_index))
    return 0;
  if ((p & AMP_PAYLOAD_METADATA) &&
      (a->metadata_len != b->metadata_len ||
       (a->metadata_len && memcmp(a->metadata, b->metadata, a->metadata_len))))
    return 0;
  if ((p & AMP_PAYLOAD_TOTAL_AMT) && a->total_amount_msat != b->total_amount_msat) return 0;
  if ((p & AMP_PAYLOAD_CUSTOM) &&
      (a->custom_len != b->custom_len || memcmp(a->custom, b->custom, a->custom_len)))
    return 0;
  return 1;
}

/* The stream without its unknown odd records below 65536: what encode gives
 * back after parse. Returns the length. */
static size_t strip_skipped(uint8_t *out, const uint8_t *in, size_t len) {
  amp_tlv_reader_t r;
  amp_tlv_rec_t rec;
  size_t n = 0, start = 0;
  amp_tlv_reader_init(&r, in, len);
  while (amp_tlv_next(&r, &rec) == 1) {
    int known = rec.type <= 18 && !(rec.type & 1) && rec.type >= 2;
    if (known || rec.type >= 65536) {
      memcpy(out + n, in + start, r.off - start);
      n += r.off - start;
    }
    start = r.off;
  }
  return n;
}

/* Parses in an exact-size heap copy, so a sanitizer sees any over-read. */
static int parse_exact(amp_payload_t *pl, uint8_t **copy, const uint8_t *p, size_t n,
                       uint64_t *bad_type) {
  *copy = malloc(n ? n : 1);
  AMP_REQUIRE(*copy);
  if (n) memcpy(*copy, p, n);
  return amp_payload_parse(pl, *copy, n, bad_type);
}

/* Expects AMP_ERR_PAYLOAD with bad_type == want for the stream (hex). */
static void expect_bad(const char *hex, uint64_t want, const char *what) {
  uint8_t b[512];
  long n = amp_test_unhex(b, sizeof b, hex);
  AMP_REQUIRE(n >= 0);
  amp_payload_t pl;
  uint8_t *c;
  uint64_t bt = 0x5555;
  int rc = parse_exact(&pl, &c, b, (size_t)n, &bt);
  AMP_CHECK_EQ(rc, AMP_ERR_PAYLOAD);
  AMP_CHECK_EQ(bt, want);
  if (rc != AMP_ERR_PAYLOAD || bt != want) fprintf(stderr, "  malformed class: %s (%s)\n", what, hex);
  /* bad_type may be NULL. */
  AMP_CHECK_EQ(amp_payload_parse(&pl, c, (size_t)n, NULL), AMP_ERR_PAYLOAD);
  free(c);
}

static void expect_ok(amp_payload_t *pl, const char *hex, uint8_t *keep, size_t cap, size_t *n_out) {
  long n = amp_test_unhex(keep, cap, hex);
  AMP_REQUIRE(n >= 0);
  uint64_t bt = 0x5555;
  int rc = amp_payload_parse(pl, keep, (size_t)n, &bt);
  AMP_CHECK_EQ(rc, AMP_OK);
  if (rc) fprintf(stderr, "  should parse: %s (bad_type %" PRIu64 ")\n", hex, bt);
  if (n_out) *n_out = (size_t)n;
}

/* ---- amp-derivation.txt ---- */

static char *deriv;

static void test_example_payload(void) {
  const char *h = strstr(deriv, "## Example final-hop payload");
  AMP_REQUIRE(h);
  char head[512], line[2048], v[512];
  line_at(head, sizeof head, h);

  /* The heading lists the fields: amt=, cltv=, "MPP total N", "share sK",
   * "setid xx..", "index N". */
  AMP_REQUIRE(kv(v, sizeof v, head, "amt"));
  uint64_t amt = strtoull(v, NULL, 10);
  AMP_REQUIRE(kv(v, sizeof v, head, "cltv"));
  uint32_t cltv = (uint32_t)strtoul(v, NULL, 10);
  const char *t = strstr(head, "MPP total ");
  AMP_REQUIRE(t);
  uint64_t total = strtoull(t + 10, NULL, 10);
  t = strstr(head, "AMP share ");
  AMP_REQUIRE(t);
  char sname[16];
  AMP_REQUIRE(sscanf(t + 10, "%15[a-z0-9]", sname) == 1);
  AMP_REQUIRE(kv(v, sizeof v, deriv, sname)); /* "s0=..." earlier in the file */
  uint8_t share[32];
  AMP_REQUIRE(amp_test_unhex(share, 32, v) == 32);
  t = strstr(head, "setid ");
  AMP_REQUIRE(t);
  uint8_t setid[32], byte;
  char two[3] = {t[6], t[7], 0};
  AMP_REQUIRE(amp_test_unhex(&byte, 1, two) == 1 && t[8] == '.' && t[9] == '.');
  memset(setid, byte, 32); /* "aa..": every byte */
  t = strstr(head, "index ");
  AMP_REQUIRE(t);
  uint32_t index = (uint32_t)strtoul(t + 6, NULL, 10);

  const char *s = strstr(h, "payload tlv stream");
  AMP_REQUIRE(s);
  line_at(line, sizeof line, s);
  const char *eq = strstr(line, "= ");
  AMP_REQUIRE(eq);
  uint8_t stream[512];
  long n = amp_test_unhex(stream, sizeof stream, eq + 2);
  AMP_REQUIRE(n > 0);
  size_t said;
  AMP_REQUIRE(sscanf(line, "payload tlv stream (%zu bytes)", &said) == 1);
  AMP_CHECK_EQ(said, n);

  amp_payload_t pl;
  uint64_t bt;
  uint8_t *c;
  AMP_CHECK_EQ(parse_exact(&pl, &c, stream, (size_t)n, &bt), AMP_OK);
  AMP_CHECK_EQ(pl.present, AMP_PAYLOAD_AMT | AMP_PAYLOAD_CLTV | AMP_PAYLOAD_MPP | AMP_PAYLOAD_AMP);
  AMP_CHECK(pl.amt_to_forward == amt);
  AMP_CHECK_EQ(pl.outgoing_cltv_value, cltv);
  AMP_CHECK(pl.total_msat == total);
  AMP_CHECK_MEM(pl.amp_share, share, 32);
  AMP_CHECK_MEM(pl.amp_set_id, setid, 32);
  AMP_CHECK_EQ(pl.amp_child_index, index);
  AMP_CHECK_EQ(amp_payload_check_final(&pl, &bt), AMP_OK);
  AMP_CHECK_EQ(amp_payload_check_forward(&pl, &bt), AMP_ERR_PAYLOAD);

  uint8_t out[512];
  long m = amp_payload_encode(out, sizeof out, &pl);
  AMP_CHECK_EQ(m, n);
  AMP_CHECK_MEM(out, stream, (size_t)n);
  /* Exactly the needed capacity works; one byte less overflows. */
  AMP_CHECK_EQ(amp_payload_encode(out, (size_t)n, &pl), n);
  AMP_CHECK_EQ(amp_payload_encode(out, (size_t)n - 1, &pl), AMP_ERR_OVERFLOW);

  /* The hop_payload line is the same stream behind its BigSize length. */
  s = strstr(h, "hop_payload with bigsize length prefix");
  AMP_REQUIRE(s);
  line_at(line, sizeof line, s);
  eq = strstr(line, "= ");
  AMP_REQUIRE(eq);
  uint8_t hop[600];
  long hn = amp_test_unhex(hop, sizeof hop, eq + 2);
  uint64_t plen;
  int k = amp_bigsize_read(&plen, hop, (size_t)hn);
  AMP_REQUIRE(k > 0);
  AMP_CHECK(plen == (uint64_t)n);
  AMP_CHECK_EQ(hn - k, n);
  AMP_CHECK_MEM(hop + k, stream, (size_t)n);
  free(c);
}

/* Each "AMP TLV (type 14) = ..." line of Vector B is one whole record. */
static void test_amp_records(void) {
  int count = 0;
  for (const char *p = strstr(deriv, "child"); p; p = strstr(p + 1, "\nchild")) {
    if (*p == '\n') p++;
    char line[512], v[512], rec[1024];
    line_at(line, sizeof line, p);
    if (!kv(v, sizeof v, line, "share")) continue;
    uint8_t share[32];
    AMP_REQUIRE(amp_test_unhex(share, 32, v) == 32);
    AMP_REQUIRE(kv(v, sizeof v, line, "index"));
    uint32_t index = (uint32_t)strtoul(v, NULL, 10);
    const char *a = strstr(p, "AMP TLV (type 14) = ");
    AMP_REQUIRE(a);
    line_at(rec, sizeof rec, a + 20);
    uint8_t b[128];
    long n = amp_test_unhex(b, sizeof b, rec);
    AMP_REQUIRE(n > 0);

    amp_payload_t pl;
    uint64_t bt;
    uint8_t *c;
    AMP_CHECK_EQ(parse_exact(&pl, &c, b, (size_t)n, &bt), AMP_OK);
    AMP_CHECK_EQ(pl.present, AMP_PAYLOAD_AMP);
    AMP_CHECK_MEM(pl.amp_share, share, 32);
    AMP_CHECK_EQ(pl.amp_child_index, index);
    /* AMP without MPP is no final payload. */
    AMP_CHECK_EQ(amp_payload_check_final(&pl, &bt), AMP_ERR_PAYLOAD);
    uint8_t out[128];
    AMP_CHECK_EQ(amp_payload_encode(out, sizeof out, &pl), n);
    AMP_CHECK_MEM(out, b, (size_t)n);
    free(c);
    count++;
  }
  fprintf(stderr, "amp records: %d\n", count);
  AMP_CHECK(count > 0);
}

/* "## TLV encodings": the type 14 record for each child_index and the type 8
 * record for each total_msat. */
static void test_encodings(void) {
  const char *sec = strstr(deriv, "## TLV encodings");
  AMP_REQUIRE(sec);
  uint8_t share[32], setid[32], addr[32];
  for (int i = 0; i < 32; i++) share[i] = (uint8_t)(0x11 * (i % 3 + 1)), setid[i] = 0xaa,
                             addr[i] = (uint8_t)(0xb0 + i % 16);
  int namp = 0, nmpp = 0;
  for (const char *p = sec; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
    char line[512], v[128];
    line_at(line, sizeof line, p);
    if (!strncmp(line, "## ", 3) && p != sec) break;
    amp_payload_t pl, back;
    memset(&pl, 0, sizeof pl);
    uint8_t out[128], want_hdr[4], tail[16];
    size_t hdr_n, tail_n;
    size_t want_len;
    uint64_t bt;
    if (!strncmp(line, "child_index=", 12)) {
      AMP_REQUIRE(kv(v, sizeof v, line, "child_index"));
      pl.present = AMP_PAYLOAD_AMP;
      pl.amp_child_index = (uint32_t)strtoul(v, NULL, 16);
      memcpy(pl.amp_share, share, 32);
      memcpy(pl.amp_set_id, setid, 32);
      AMP_REQUIRE(kv(v, sizeof v, line, "length"));
      want_len = strtoul(v, NULL, 10);
      AMP_REQUIRE(kv(v, sizeof v, line, "header"));
      hdr_n = (size_t)amp_test_unhex(want_hdr, sizeof want_hdr, v);
      AMP_REQUIRE(kv(v, sizeof v, line, "index_bytes"));
      tail_n = v[0] == '(' ? 0 : (size_t)amp_test_unhex(tail, sizeof tail, v); /* "(none)" */
      namp++;
    } else if (!strncmp(line, "MPP total_msat=", 15)) {
      AMP_REQUIRE(kv(v, sizeof v, line, "total_msat"));
      pl.present = AMP_PAYLOAD_MPP;
      pl.total_msat = strtoull(v, NULL, 10);
      memcpy(pl.payment_addr, addr, 32);
      AMP_REQUIRE(sscanf(line + 15, "%*[0-9]: %127s", v) == 1); /* "0822" */
      hdr_n = (size_t)amp_test_unhex(want_hdr, sizeof want_hdr, v);
      AMP_REQUIRE(kv(v, sizeof v, line, "tail"));
      tail_n = v[0] == '(' ? 0 : (size_t)amp_test_unhex(tail, sizeof tail, v); /* "(none)" */
      const char *l = strstr(line, "(len=");
      AMP_REQUIRE(l);
      want_len = strtoul(l + 5, NULL, 10);
      nmpp++;
    } else {
      continue;
    }
    AMP_REQUIRE(hdr_n == 2);
    long n = amp_payload_encode(out, sizeof out, &pl);
    AMP_CHECK_EQ(n, 2 + want_len);
    AMP_CHECK_MEM(out, want_hdr, 2);
    AMP_CHECK_EQ(want_len - tail_n, pl.present == AMP_PAYLOAD_AMP ? 64 : 32);
    AMP_CHECK_MEM(out + 2 + want_len - tail_n, tail, tail_n);
    AMP_CHECK_EQ(amp_payload_parse(&back, out, (size_t)n, &bt), AMP_OK);
    AMP_CHECK(payload_eq(&back, &pl));
  }
  fprintf(stderr, "encodings: %d amp, %d mpp\n", namp, nmpp);
  AMP_CHECK(namp > 0 && nmpp > 0);
}

/* ---- onion-test.json hop payloads ---- */

static void test_onion_hops(void) {
  json_error_t err;
  json_t *root = json_load_file(amp_test_vector_path("bolt04/onion-test.json"), 0, &err);
  AMP_REQUIRE(root);
  json_t *hops = json_object_get(json_object_get(root, "generate"), "hops");
  AMP_REQUIRE(json_is_array(hops) && json_array_size(hops) == 5);
  uint64_t prev_amt = UINT64_MAX;
  uint32_t prev_cltv = UINT32_MAX;
  for (size_t i = 0; i < json_array_size(hops); i++) {
    const char *hex = json_string_value(json_object_get(json_array_get(hops, i), "payload"));
    AMP_REQUIRE(hex);
    uint8_t hop[1400];
    long hn = amp_test_unhex(hop, sizeof hop, hex);
    AMP_REQUIRE(hn > 0);
    uint64_t plen;
    int k = amp_bigsize_read(&plen, hop, (size_t)hn);
    AMP_REQUIRE(k > 0);
    AMP_CHECK(plen == (uint64_t)(hn - k));
    const uint8_t *stream = hop + k;
    size_t n = (size_t)(hn - k);

    amp_payload_t pl;
    uint64_t bt = 0;
    uint8_t *c;
    int rc = parse_exact(&pl, &c, stream, n, &bt);
    AMP_CHECK_EQ(rc, AMP_OK);
    if (rc) fprintf(stderr, "  onion hop %zu: bad type %" PRIu64 "\n", i + 1, bt);
    int final = i + 1 == json_array_size(hops);
    AMP_CHECK_EQ(final ? amp_payload_check_final(&pl, &bt) : amp_payload_check_forward(&pl, &bt),
                 AMP_OK);
    AMP_CHECK_EQ(final ? amp_payload_check_forward(&pl, &bt) : amp_payload_check_final(&pl, &bt),
                 AMP_ERR_PAYLOAD);
    /* Along the route amounts and expiries do not grow. */
    AMP_CHECK(pl.amt_to_forward <= prev_amt && pl.outgoing_cltv_value <= prev_cltv);
    prev_amt = pl.amt_to_forward;
    prev_cltv = pl.outgoing_cltv_value;
    if (!final) AMP_CHECK(pl.short_channel_id == i + 1);
    if (final) {
      AMP_CHECK(pl.present & AMP_PAYLOAD_MPP);
      AMP_CHECK(pl.total_msat >= pl.amt_to_forward);
    }
    AMP_CHECK(!(pl.present & AMP_PAYLOAD_CUSTOM));

    /* What the parser skipped: the unknown odd records (hops 2 and 5 carry
     * one each, types 513 and 301). Encode gives back the rest, byte-exact. */
    uint8_t want[1400], out[1400];
    size_t wn = strip_skipped(want, stream, n);
    if (wn != n)
      fprintf(stderr, "onion hop %zu: %zu bytes of unknown odd records skipped\n", i + 1, n - wn);
    long m = amp_payload_encode(out, sizeof out, &pl);
    AMP_CHECK_EQ(m, wn);
    AMP_CHECK_MEM(out, want, wn);
    free(c);
  }
  json_decref(root);
}

/* ---- malformed classes ---- */

#define SHARE "1111111111111111111111111111111111111111111111111111111111111111"
#define SETID "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ADDR "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define PT "02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619"

static void test_malformed(const uint8_t *example, size_t exn) {
  /* Truncated: every cut of the example is either a record boundary (parses)
   * or inside a record (fails with that record's type; all are 1-byte). */
  {
    size_t bounds[16], nb = 0, types[16];
    amp_tlv_reader_t r;
    amp_tlv_rec_t rec;
    amp_tlv_reader_init(&r, example, exn);
    size_t start = 0;
    while (amp_tlv_next(&r, &rec) == 1) {
      types[nb] = rec.type;
      bounds[nb++] = start;
      start = r.off;
    }
    bounds[nb] = exn;
    for (size_t cut = 0; cut < exn; cut++) {
      size_t i = 0;
      while (i + 1 <= nb && bounds[i + 1] <= cut) i++;
      amp_payload_t pl;
      uint8_t *c;
      uint64_t bt = 0x5555;
      int rc = parse_exact(&pl, &c, example, cut, &bt);
      if (cut == bounds[i]) {
        AMP_CHECK_EQ(rc, AMP_OK);
      } else {
        AMP_CHECK_EQ(rc, AMP_ERR_PAYLOAD);
        AMP_CHECK_EQ(bt, types[i]);
      }
      free(c);
    }
  }

  /* Non-minimal and over-long truncated integers. */
  expect_bad("02020001", 2, "tu64 leading zero");
  expect_bad("020100", 2, "tu64 zero as 00");
  expect_bad("0209010000000000000000", 2, "tu64 9 bytes");
  expect_bad("02020168040200ff", 4, "tu32 leading zero");
  expect_bad("0202016804050100000000", 4, "tu32 5 bytes");
  expect_bad("0821" ADDR "00", 8, "total_msat 00");
  expect_bad("0822" ADDR "0001", 8, "total_msat leading zero");
  expect_bad("120200ff", 18, "total_amount_msat leading zero");
  expect_bad("1209010203040506070809", 18, "total_amount_msat 9 bytes");
  /* BigSize type and length. */
  expect_bad("fd000200", 0, "non-minimal type");
  expect_bad("02fd00020101", 2, "non-minimal length");
  expect_bad("fd", 0, "truncated type");
  expect_bad("02", 2, "missing length");
  expect_bad("0203ffff", 2, "value truncated");
  expect_bad("02ff000000000000000101", 2, "length beyond the end (64-bit)");

  /* Wrong lengths of 6, 8, 12, 14. */
  expect_bad("060700000000000001", 6, "scid 7 bytes");
  expect_bad("06090000000000000001ff", 6, "scid 9 bytes");
  expect_bad("0600", 6, "scid empty");
  expect_bad("081f" "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 8, "mpp 31");
  expect_bad("0829" ADDR "010000000000000000", 8, "mpp 41");
  expect_bad("0c20" "02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f2836866", 12,
             "path key 32");
  expect_bad("0c22" PT "00", 12, "path key 34");
  expect_bad("0e3f" SHARE "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 14, "amp 63");
  expect_bad("0e45" SHARE SETID "0100000000", 14, "amp 69");
  expect_bad("0e00", 14, "amp empty");
  /* Non-minimal child index. */
  expect_bad("0e41" SHARE SETID "00", 14, "index 0 as 00");
  expect_bad("0e42" SHARE SETID "0001", 14, "index 1 as 0001");
  expect_bad("0e44" SHARE SETID "00000001", 14, "index 1 as 4 bytes");
  expect_bad("0e44" SHARE SETID "00ffffff", 14, "index 3 bytes with a zero in front");

  /* Unknown even types: below 65536 they are errors. */
  expect_bad("020101" "1400", 20, "unknown even 20");
  expect_bad("0000", 0, "unknown even 0");
  expect_bad("fdfffe00", 65534, "unknown even 65534");
  expect_bad("0201010401011600", 22, "unknown even 22 after known");

  /* Order and duplicates. */
  expect_bad("04010102010a", 2, "4 then 2");
  expect_bad("020101020102", 2, "duplicate 2");
  expect_bad("0e40" SHARE SETID "0e40" SHARE SETID, 14, "duplicate amp");
  expect_bad("fe0001000100" "0201ff", 2, "known after custom");
  expect_bad("fe0001000100" "fe0001000100", 65537, "duplicate custom");
  expect_bad("0500" "0300", 3, "odd unknown out of order");

  /* A bad record after good ones names the bad one. */
  expect_bad("020101" "040101" "060100", 6, "bad third record");

  /* Unknown odd types below 65536 are skipped. */
  uint8_t keep[512];
  amp_payload_t pl;
  size_t n;
  expect_ok(&pl, "0100" "020101" "0300" "040178" "1500" "fdfffd00" "fdffff03abcdef", keep,
            sizeof keep, &n);
  AMP_CHECK_EQ(pl.present, AMP_PAYLOAD_AMT | AMP_PAYLOAD_CLTV);
  AMP_CHECK_EQ(pl.amt_to_forward, 1);
  AMP_CHECK_EQ(pl.outgoing_cltv_value, 0x78);
  AMP_CHECK(pl.custom == NULL && pl.custom_len == 0);

  /* Custom records (>= 65536, either parity) are kept as one slice. */
  expect_ok(&pl,
            "020101" "040178" "0d00" "fe00010000" "03" "010203" "fe00010001" "00"
            "ff0000000100000000" "01" "ff",
            keep, sizeof keep, &n);
  AMP_CHECK_EQ(pl.present, AMP_PAYLOAD_AMT | AMP_PAYLOAD_CLTV | AMP_PAYLOAD_CUSTOM);
  AMP_CHECK(pl.custom == keep + 8);
  AMP_CHECK_EQ(pl.custom_len, n - 8);
  {
    uint8_t out[512];
    long m = amp_payload_encode(out, sizeof out, &pl);
    AMP_CHECK_EQ(m, n - 2); /* the odd type 13 is gone */
    AMP_CHECK_MEM(out, keep, 6);
    AMP_CHECK_MEM(out + 6, keep + 8, n - 8);
    /* A custom slice that is not a valid stream of types >= 65536 is refused. */
    amp_payload_t bad = pl;
    static const uint8_t low[] = {0x01, 0x00};
    bad.custom = low;
    bad.custom_len = sizeof low;
    AMP_CHECK_EQ(amp_payload_encode(out, sizeof out, &bad), AMP_ERR_PAYLOAD);
    bad.custom = keep + 8;
    bad.custom_len = n - 9; /* cut into the last record */
    AMP_CHECK_EQ(amp_payload_encode(out, sizeof out, &bad), AMP_ERR_PAYLOAD);
    bad.custom_len = 0;
    AMP_CHECK_EQ(amp_payload_encode(out, sizeof out, &bad), AMP_ERR_PAYLOAD);
    /* Overflow inside the custom tail. */
    AMP_CHECK_EQ(amp_payload_encode(out, (size_t)m - 1, &pl), AMP_ERR_OVERFLOW);
  }

  /* Every known record at once, including the byte fields, round trips. */
  expect_ok(&pl,
            "0203010000" "0404ffffffff" "06080000010000020003" "0828" ADDR "ffffffffffffffff"
            "0a05" "0102030405" "0c21" PT "0e44" SHARE SETID "ffffffff" "1000" "1201" "07"
            "fe00010000" "00",
            keep, sizeof keep, &n);
  AMP_CHECK_EQ(pl.present, 0x3ffu);
  AMP_CHECK(pl.total_msat == UINT64_MAX);
  AMP_CHECK(pl.amp_child_index == UINT32_MAX);
  AMP_CHECK_EQ(pl.encrypted_data_len, 5);
  AMP_CHECK(pl.metadata != NULL && pl.metadata_len == 0);
  AMP_CHECK_EQ(pl.total_amount_msat, 7);
  AMP_CHECK(pl.short_channel_id == 0x0000010000020003ull);
  {
    uint8_t out[512];
    AMP_CHECK_EQ(amp_payload_encode(out, sizeof out, &pl), n);
    AMP_CHECK_MEM(out, keep, n);
    for (size_t cap = 0; cap < n; cap++) AMP_CHECK_EQ(amp_payload_encode(out, cap, &pl), AMP_ERR_OVERFLOW);
  }
  /* Empty stream: nothing present. */
  AMP_CHECK_EQ(amp_payload_parse(&pl, NULL, 0, NULL), AMP_OK);
  AMP_CHECK_EQ(pl.present, 0);
}

/* ---- final / forward rules ---- */

static void test_checks(void) {
  amp_payload_t base, pl;
  uint64_t bt;
  memset(&base, 0, sizeof base);
  base.present = AMP_PAYLOAD_AMT | AMP_PAYLOAD_CLTV;

  /* Final. */
  pl = base;
  AMP_CHECK_EQ(amp_payload_check_final(&pl, &bt), AMP_OK);
  AMP_CHECK_EQ(amp_payload_check_final(&pl, NULL), AMP_OK);
  pl.present |= AMP_PAYLOAD_MPP;
  AMP_CHECK_EQ(amp_payload_check_final(&pl, &bt), AMP_OK);
  pl.present |= AMP_PAYLOAD_AMP;
  AMP_CHECK_EQ(amp_payload_check_final(&pl, &bt), AMP_OK);
  pl.present &= ~AMP_PAYLOAD_MPP;
  bt = 0;
  AMP_CHECK_EQ(amp_payload_check_final(&pl, &bt), AMP_ERR_PAYLOAD);
  AMP_CHECK_EQ(bt, 8);
  AMP_CHECK_EQ(amp_payload_check_final(&pl, NULL), AMP_ERR_PAYLOAD);
  pl = base;
  pl.present &= ~AMP_PAYLOAD_AMT;
  AMP_CHECK_EQ(amp_payload_check_final(&pl, &bt), AMP_ERR_PAYLOAD);
  AMP_CHECK_EQ(bt, 2);
  pl = base;
  pl.present &= ~AMP_PAYLOAD_CLTV;
  AMP_CHECK_EQ(amp_payload_check_final(&pl, &bt), AMP_ERR_PAYLOAD);
  AMP_CHECK_EQ(bt, 4);
  pl = base;
  pl.present |= AMP_PAYLOAD_SCID | AMP_PAYLOAD_MPP;
  AMP_CHECK_EQ(amp_payload_check_final(&pl, &bt), AMP_ERR_PAYLOAD);
  AMP_CHECK_EQ(bt, 6);
  pl.present = 0;
  AMP_CHECK_EQ(amp_payload_check_final(&pl, &bt), AMP_ERR_PAYLOAD);
  AMP_CHECK_EQ(bt, 2); /* the first rule wins */
  /* Other fields do not matter to the final check. */
  pl = base;
  pl.present |= AMP_PAYLOAD_METADATA | AMP_PAYLOAD_CUSTOM | AMP_PAYLOAD_TOTAL_AMT;
  AMP_CHECK_EQ(amp_payload_check_final(&pl, &bt), AMP_OK);

  /* Forward. */
  pl = base;
  pl.present |= AMP_PAYLOAD_SCID;
  AMP_CHECK_EQ(amp_payload_check_forward(&pl, &bt), AMP_OK);
  AMP_CHECK_EQ(amp_payload_check_forward(&pl, NULL), AMP_OK);
  pl.present &= ~AMP_PAYLOAD_SCID;
  AMP_CHECK_EQ(amp_payload_check_forward(&pl, &bt), AMP_ERR_PAYLOAD);
  AMP_CHECK_EQ(bt, 6);
  pl.present = AMP_PAYLOAD_CLTV | AMP_PAYLOAD_SCID;
  AMP_CHECK_EQ(amp_payload_check_forward(&pl, &bt), AMP_ERR_PAYLOAD);
  AMP_CHECK_EQ(bt, 2);
  pl.present = AMP_PAYLOAD_AMT | AMP_PAYLOAD_SCID;
  AMP_CHECK_EQ(amp_payload_check_forward(&pl, &bt), AMP_ERR_PAYLOAD);
  AMP_CHECK_EQ(bt, 4);
  pl = base;
  pl.present |= AMP_PAYLOAD_SCID | AMP_PAYLOAD_MPP;
  AMP_CHECK_EQ(amp_payload_check_forward(&pl, &bt), AMP_ERR_PAYLOAD);
  AMP_CHECK_EQ(bt, 8);
  pl = base;
  pl.present |= AMP_PAYLOAD_SCID | AMP_PAYLOAD_AMP;
  AMP_CHECK_EQ(amp_payload_check_forward(&pl, &bt), AMP_ERR_PAYLOAD);
  AMP_CHECK_EQ(bt, 14);
  pl.present |= AMP_PAYLOAD_MPP;
  AMP_CHECK_EQ(amp_payload_check_forward(&pl, &bt), AMP_ERR_PAYLOAD);
  AMP_CHECK_EQ(bt, 8);
  AMP_CHECK_EQ(amp_payload_check_forward(&pl, NULL), AMP_ERR_PAYLOAD);
}

/* ---- randomized mutations ---- */

static void test_mutations(uint64_t *rng, const uint8_t *const *seeds, const size_t *seed_len,
                           int nseeds, long iters) {
  long ok = 0, bad = 0;
  uint8_t work[2048];
  for (long it = 0; it < iters; it++) {
    int si = (int)(amp_test_rand(rng) % (uint64_t)nseeds);
    size_t n = seed_len[si];
    memcpy(work, seeds[si], n);
    int muts = 1 + (int)(amp_test_rand(rng) % 4);
    for (int m = 0; m < muts; m++) {
      uint64_t r = amp_test_rand(rng);
      size_t pos = n ? (size_t)(amp_test_rand(rng) % n) : 0;
      switch (r % 7) {
      case 0: /* flip a bit */
        if (n) work[pos] ^= (uint8_t)(1u << (r >> 8) % 8);
        break;
      case 1: /* set a byte, biased to BigSize markers and small values */
        if (n) {
          static const uint8_t pick[] = {0x00, 0x01, 0xfc, 0xfd, 0xfe, 0xff, 0x0e, 0x08, 0x40, 0x44};
          work[pos] = (r >> 8) & 1 ? pick[(r >> 16) % sizeof pick] : (uint8_t)(r >> 24);
        }
        break;
      case 2: /* truncate */
        n = pos;
        break;
      case 3: /* extend with random bytes */
        for (size_t k = (r >> 8) % 8 + 1; k && n < sizeof work; k--) work[n++] = (uint8_t)amp_test_rand(rng);
        break;
      case 4: /* insert a byte */
        if (n < sizeof work) {
          memmove(work + pos + 1, work + pos, n - pos);
          work[pos] = (uint8_t)(r >> 8);
          n++;
        }
        break;
      case 5: /* delete a byte */
        if (n) {
          memmove(work + pos, work + pos + 1, n - pos - 1);
          n--;
        }
        break;
      default: /* add or subtract from a byte (lengths) */
        if (n) work[pos] = (uint8_t)(work[pos] + ((r >> 8) & 1 ? 1 : -1));
        break;
      }
    }
    amp_payload_t pl, back;
    uint8_t *c;
    uint64_t bt = 0x5555;
    int rc = parse_exact(&pl, &c, work, n, &bt);
    if (rc == AMP_OK) {
      ok++;
      /* A parsed payload re-encodes, and that encoding parses to the same. */
      uint8_t out[2048];
      long m = amp_payload_encode(out, sizeof out, &pl);
      AMP_CHECK(m >= 0 && (size_t)m <= n);
      if (m >= 0) {
        AMP_CHECK_EQ(amp_payload_parse(&back, out, (size_t)m, NULL), AMP_OK);
        AMP_CHECK(payload_eq(&back, &pl));
      }
      /* No payload is both a final and a forward one (scid decides). */
      int f = amp_payload_check_final(&pl, NULL), w = amp_payload_check_forward(&pl, NULL);
      AMP_CHECK(f != AMP_OK || w != AMP_OK);
    } else {
      bad++;
      AMP_CHECK_EQ(rc, AMP_ERR_PAYLOAD);
      AMP_CHECK(bt != 0x5555);
    }
    free(c);
  }
  fprintf(stderr, "mutations: %ld runs, %ld parsed, %ld rejected\n", iters, ok, bad);
  AMP_CHECK(ok > 0 && bad > 0);
}

int main(void) {
  deriv = amp_test_read_file(amp_test_vector_path("amp-derivation.txt"), NULL);
  uint64_t s = amp_test_seed();
  uint64_t rng = s ? s : 1;

  test_example_payload();
  test_amp_records();
  test_encodings();
  test_onion_hops();

  /* The example payload is the base for the truncation and mutation tests. */
  const char *e = strstr(deriv, "payload tlv stream");
  AMP_REQUIRE(e && (e = strstr(e, "= ")));
  char line[1024];
  line_at(line, sizeof line, e + 2);
  uint8_t example[512];
  long exn = amp_test_unhex(example, sizeof example, line);
  AMP_REQUIRE(exn > 0);
  test_malformed(example, (size_t)exn);
  test_checks();

  /* Mutation seeds: the example, a forward hop, every record type, custom. */
  uint8_t s2[512], s3[512], s4[512];
  long n2 = amp_test_unhex(s2, sizeof s2, "1202023a98040205dc06080000000000000001");
  long n3 = amp_test_unhex(s3, sizeof s3,
                           "0203010000" "0404ffffffff" "06080000010000020003" "0828" ADDR
                           "ffffffffffffffff" "0a05" "0102030405" "0c21" PT "0e44" SHARE SETID
                           "ffffffff" "1000" "1201" "07" "fe00010000" "00");
  long n4 = amp_test_unhex(s4, sizeof s4,
                           "020101" "040178" "0d00" "fe00010000" "03" "010203" "fe00010001" "00"
                           "ff0000000100000000" "01" "ff");
  AMP_REQUIRE(n2 > 0 && n3 > 0 && n4 > 0);
  /* Strip the forward hop's BigSize length prefix. */
  const uint8_t *seeds[] = {example, s2 + 1, s3, s4};
  const size_t lens[] = {(size_t)exn, (size_t)n2 - 1, (size_t)n3, (size_t)n4};
  test_mutations(&rng, seeds, lens, 4, 300000);

  free(deriv);
  return amp_test_done();
}
