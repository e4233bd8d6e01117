/* test_frame.c: the fabric frame codec: round trips, tags, every malformed
 * class, the anti-replay window, and randomized mutations. */
#include <stdlib.h>
#include <string.h>

#include "amp_frame.h"
#include "amp_hmac.h"
#include "amp_test.h"

static const amp_frame_addr_t ADDR = {
  .dst_mac = {0x02, 0, 0, 0, 0, 0x01}, .src_mac = {0x02, 0, 0, 0, 0, 0x02},
  .src_ip = {10, 0, 0, 2}, .dst_ip = {10, 0, 0, 1},
  .src_port = 40000, .dst_port = AMP_FRAME_UDP_PORT,
};
static uint8_t KEY[32];

/* Rewrites the IP total length, UDP length and IP checksum of a hand-made
 * frame of len bytes so that only the fabric part is wrong. */
static void fix_l3l4(uint8_t *p, size_t len) {
  uint8_t *ip = p + AMP_FRAME_ETH_LEN;
  amp_put_be16(ip + 2, (uint16_t)(len - AMP_FRAME_ETH_LEN));
  amp_put_be16(p + AMP_FRAME_ETH_LEN + AMP_FRAME_IP_LEN + 4,
               (uint16_t)(len - AMP_FRAME_ETH_LEN - AMP_FRAME_IP_LEN));
  amp_put_be16(ip + 10, 0);
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += amp_be16(ip + i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  amp_put_be16(ip + 10, (uint16_t)~sum);
}

/* Recomputes the tag of a frame whose records region was edited by hand. */
static void retag(uint8_t *p, size_t len) {
  uint8_t mac[32];
  amp_hmac_sha256(mac, KEY, 32, p + AMP_FRAME_L2L4_LEN, len - AMP_FRAME_L2L4_LEN - 16);
  memcpy(p + len - 16, mac, 16);
}

/* A frame with n records of the given sizes; returns its length. */
static size_t build(uint8_t *buf, size_t cap, int n, const uint16_t *sizes, uint64_t seq) {
  amp_frame_builder_t b;
  uint8_t msg[9000];
  amp_frame_begin(&b, buf, cap, &ADDR, 0x1122334455667788ULL, seq);
  for (int i = 0; i < n; i++) {
    for (int k = 0; k < sizes[i]; k++) msg[k] = (uint8_t)(i * 31 + k);
    if (amp_frame_add(&b, 1000 + (uint64_t)i, msg, sizes[i]) != AMP_OK) return 0;
  }
  return amp_frame_finish(&b, KEY);
}

static void test_round_trip(uint64_t *rs) {
  static uint8_t buf[AMP_FRAME_MAX_LEN];
  amp_frame_t f;
  for (int iter = 0; iter < 200; iter++) {
    int n = (int)(amp_test_rand(rs) % 6);
    uint16_t sizes[8];
    for (int i = 0; i < n; i++) sizes[i] = (uint16_t)(2 + amp_test_rand(rs) % 1500);
    uint64_t seq = amp_test_rand(rs) | 1;
    size_t len = build(buf, sizeof buf, n, sizes, seq);
    AMP_REQUIRE(len > 0);
    AMP_CHECK_EQ(amp_frame_parse(&f, buf, len), AMP_FRAME_OK);
    AMP_CHECK_EQ(f.count, n);
    AMP_CHECK(f.gateway_id == 0x1122334455667788ULL);
    AMP_CHECK(f.seq == seq);
    AMP_CHECK_MEM(&f.addr.src_ip, ADDR.src_ip, 4);
    AMP_CHECK_MEM(&f.addr.dst_ip, ADDR.dst_ip, 4);
    AMP_CHECK_MEM(&f.addr.src_mac, ADDR.src_mac, 6);
    AMP_CHECK_MEM(&f.addr.dst_mac, ADDR.dst_mac, 6);
    AMP_CHECK_EQ(f.addr.src_port, ADDR.src_port);
    AMP_CHECK_EQ(f.addr.dst_port, ADDR.dst_port);
    for (int i = 0; i < n && i < f.count; i++) {
      AMP_CHECK(f.rec[i].scid == 1000 + (uint64_t)i);
      AMP_CHECK_EQ(f.rec[i].len, sizes[i]);
      int same = 1;
      for (int k = 0; k < sizes[i]; k++) same &= f.rec[i].msg[k] == (uint8_t)(i * 31 + k);
      AMP_CHECK(same);
    }
    AMP_CHECK_EQ(amp_frame_verify(&f, KEY), 1);
    amp_hmac_t kc;
    amp_hmac_init(&kc, KEY, 32);
    AMP_CHECK_EQ(amp_frame_verify_hmac(&f, &kc), 1);
    AMP_CHECK_EQ(amp_frame_verify_hmac(&f, &kc), 1);   /* kc not consumed */
    uint8_t other[32];
    memcpy(other, KEY, 32);
    other[iter % 32] ^= 1;
    AMP_CHECK_EQ(amp_frame_verify(&f, other), 0);
    /* The tag is the first 16 bytes of HMAC-SHA256(key, header || records). */
    uint8_t mac[32];
    amp_hmac_sha256(mac, KEY, 32, buf + AMP_FRAME_L2L4_LEN, len - AMP_FRAME_L2L4_LEN - 16);
    AMP_CHECK_MEM(buf + len - 16, mac, 16);
    AMP_CHECK_EQ(amp_frame_parse_port(&f, buf, len, 0), AMP_FRAME_OK);
    AMP_CHECK_EQ(amp_frame_parse_port(&f, buf, len, 9999), AMP_FRAME_DROP_NOT_IPV4_UDP);
  }
  /* Reply addresses are the swap of the request's. */
  amp_frame_addr_t r;
  amp_frame_addr_reply(&r, &ADDR);
  AMP_CHECK_MEM(r.dst_mac, ADDR.src_mac, 6);
  AMP_CHECK_MEM(r.src_mac, ADDR.dst_mac, 6);
  AMP_CHECK_MEM(r.src_ip, ADDR.dst_ip, 4);
  AMP_CHECK_MEM(r.dst_ip, ADDR.src_ip, 4);
  AMP_CHECK_EQ(r.src_port, ADDR.dst_port);
  AMP_CHECK_EQ(r.dst_port, ADDR.src_port);
  amp_frame_addr_t same = ADDR;
  amp_frame_addr_reply(&same, &same);
  AMP_CHECK(memcmp(&same, &r, sizeof r) == 0);
}

static void test_builder_limits(void) {
  static uint8_t buf[AMP_FRAME_MAX_LEN + 100];
  static uint8_t msg[AMP_FRAME_MTU];
  amp_frame_builder_t b;
  amp_frame_t f;
  memset(msg, 0xab, sizeof msg);
  /* Fill with 1500-byte records until it refuses: stays within the MTU. */
  amp_frame_begin(&b, buf, sizeof buf, &ADDR, 7, 1);
  int n = 0;
  while (amp_frame_add(&b, 1, msg, 1500) == AMP_OK) n++;
  AMP_CHECK_EQ(n, 5);
  size_t before = b.len;
  AMP_CHECK_EQ(amp_frame_add(&b, 1, msg, 1500), AMP_ERR_OVERFLOW);
  AMP_CHECK_EQ(b.len, before);   /* a refused add leaves the frame as it was */
  size_t room = amp_frame_room(&b);
  AMP_CHECK(room > 0 && room < 1500);
  AMP_CHECK_EQ(amp_frame_add(&b, 2, msg, (uint16_t)room), AMP_OK);
  AMP_CHECK_EQ(amp_frame_room(&b), 0);
  size_t len = amp_frame_finish(&b, KEY);
  AMP_CHECK_EQ(len, AMP_FRAME_MAX_LEN);
  AMP_CHECK_EQ(amp_frame_parse(&f, buf, len), AMP_FRAME_OK);
  AMP_CHECK_EQ(f.count, 6);
  AMP_CHECK_EQ(amp_frame_verify(&f, KEY), 1);
  /* At most AMP_FRAME_MAX_RECORDS records. */
  amp_frame_begin(&b, buf, sizeof buf, &ADDR, 7, 2);
  n = 0;
  while (amp_frame_add(&b, 1, msg, 2) == AMP_OK) n++;
  AMP_CHECK_EQ(n, AMP_FRAME_MAX_RECORDS);
  len = amp_frame_finish(&b, KEY);
  AMP_CHECK_EQ(amp_frame_parse(&f, buf, len), AMP_FRAME_OK);
  AMP_CHECK_EQ(f.count, AMP_FRAME_MAX_RECORDS);
  /* A message without room for its type is refused. */
  amp_frame_begin(&b, buf, sizeof buf, &ADDR, 7, 3);
  AMP_CHECK_EQ(amp_frame_add(&b, 1, msg, 1), AMP_ERR_LENGTH);
  /* A buffer too small for an empty frame: the builder fails cleanly. */
  amp_frame_begin(&b, buf, 40, &ADDR, 7, 4);
  AMP_CHECK(b.err != AMP_OK);
  AMP_CHECK_EQ(amp_frame_room(&b), 0);
  AMP_CHECK(amp_frame_add(&b, 1, msg, 2) != AMP_OK);
  AMP_CHECK_EQ(amp_frame_finish(&b, KEY), 0);
  /* A small buffer bounds room. */
  amp_frame_begin(&b, buf, 200, &ADDR, 7, 5);
  AMP_CHECK_EQ(amp_frame_room(&b), 200 - 42 - 24 - 10 - 16);
  /* An empty frame (no records) is valid. */
  amp_frame_begin(&b, buf, sizeof buf, &ADDR, 7, 6);
  len = amp_frame_finish(&b, KEY);
  AMP_CHECK_EQ(len, 42 + 24 + 16);
  AMP_CHECK_EQ(amp_frame_parse(&f, buf, len), AMP_FRAME_OK);
  AMP_CHECK_EQ(f.count, 0);
  AMP_CHECK_EQ(amp_frame_verify(&f, KEY), 1);
}

static void test_malformed(void) {
  static uint8_t good[4096], p[4096];
  uint16_t sizes[3] = {100, 2, 300};
  amp_frame_t f;
  size_t len = build(good, sizeof good, 3, sizes, 5);
  AMP_REQUIRE(len == 42 + 24 + 3 * 10 + 402 + 16);
  AMP_REQUIRE(amp_frame_parse(&f, good, len) == AMP_FRAME_OK);

  /* Truncated at every length: never OK. */
  int all_bad = 1;
  for (size_t l = 0; l < len; l++) {
    memcpy(p, good, l);
    all_bad &= amp_frame_parse(&f, p, l) != AMP_FRAME_OK;
  }
  AMP_CHECK(all_bad);
  /* Truncated with lengths fixed up: the fabric layout itself is wrong. */
  all_bad = 1;
  for (size_t l = 42; l < len; l++) {
    memcpy(p, good, l);
    fix_l3l4(p, l);
    all_bad &= amp_frame_parse(&f, p, l) == AMP_FRAME_DROP_MALFORMED;
  }
  AMP_CHECK(all_bad);

#define MUTATE(stmt, want)                                                     \
  do {                                                                         \
    size_t l_ = len;                                                           \
    memcpy(p, good, len);                                                      \
    stmt;                                                                      \
    AMP_CHECK_EQ(amp_frame_parse(&f, p, l_), want);                            \
  } while (0)
  uint8_t *ip = p + 14, *udp = p + 34, *h = p + 42;
  /* L2-L4 classes. */
  MUTATE(amp_put_be16(p + 12, 0x86dd), AMP_FRAME_DROP_NOT_IPV4_UDP);   /* IPv6 */
  MUTATE(amp_put_be16(p + 12, 0x0806), AMP_FRAME_DROP_NOT_IPV4_UDP);   /* ARP */
  MUTATE((ip[0] = 0x65, fix_l3l4(p, l_)), AMP_FRAME_DROP_NOT_IPV4_UDP);
  MUTATE((ip[9] = 6, fix_l3l4(p, l_)), AMP_FRAME_DROP_NOT_IPV4_UDP);   /* TCP */
  MUTATE(amp_put_be16(udp + 2, 9737), AMP_FRAME_DROP_NOT_IPV4_UDP);
  MUTATE((ip[0] = 0x46, fix_l3l4(p, l_)), AMP_FRAME_DROP_MALFORMED);   /* IP options */
  MUTATE((amp_put_be16(ip + 6, 0x2000), fix_l3l4(p, l_)), AMP_FRAME_DROP_MALFORMED);  /* MF */
  MUTATE((amp_put_be16(ip + 6, 0x0001), fix_l3l4(p, l_)), AMP_FRAME_DROP_MALFORMED);  /* offset */
  MUTATE(ip[10] ^= 1, AMP_FRAME_DROP_MALFORMED);                       /* IP checksum */
  MUTATE(fix_l3l4(p, l_ - 1), AMP_FRAME_DROP_MALFORMED);   /* both lengths 1 short */
  MUTATE((amp_put_be16(ip + 2, (uint16_t)(l_ - 13))), AMP_FRAME_DROP_MALFORMED);
  MUTATE((amp_put_be16(udp + 4, (uint16_t)(l_ - 33))), AMP_FRAME_DROP_MALFORMED);
  MUTATE((amp_put_be16(udp + 4, (uint16_t)(l_ - 35))), AMP_FRAME_DROP_MALFORMED);
  /* An IP length saying less than the frame (Ethernet padding, trailing junk). */
  MUTATE((p[l_] = 0, l_++), AMP_FRAME_DROP_MALFORMED);
  /* Fabric header classes. */
  MUTATE(h[0] = 'X', AMP_FRAME_DROP_MALFORMED);
  MUTATE(h[3] = 'G', AMP_FRAME_DROP_MALFORMED);
  MUTATE(h[4] = 2, AMP_FRAME_DROP_MALFORMED);
  MUTATE(h[4] = 0, AMP_FRAME_DROP_MALFORMED);
  MUTATE(h[5] = 1, AMP_FRAME_DROP_MALFORMED);
  MUTATE(h[5] = 0x80, AMP_FRAME_DROP_MALFORMED);
  MUTATE(amp_put_be16(h + 6, AMP_FRAME_MAX_RECORDS + 1), AMP_FRAME_DROP_MALFORMED);
  MUTATE(amp_put_be16(h + 6, 0xffff), AMP_FRAME_DROP_MALFORMED);
  MUTATE(amp_put_be16(h + 6, 4), AMP_FRAME_DROP_MALFORMED);      /* count too big */
  MUTATE(amp_put_be16(h + 6, 2), AMP_FRAME_DROP_MALFORMED);      /* trailing record */
  MUTATE(amp_put_be16(h + 6, 0), AMP_FRAME_DROP_MALFORMED);
  /* Record classes: first record's len at h+24+8. */
  MUTATE(amp_put_be16(h + 24 + 8, 101), AMP_FRAME_DROP_MALFORMED);   /* overrun */
  MUTATE(amp_put_be16(h + 24 + 8, 99), AMP_FRAME_DROP_MALFORMED);    /* shifts the rest */
  MUTATE(amp_put_be16(h + 24 + 8, 0xffff), AMP_FRAME_DROP_MALFORMED);
  MUTATE(amp_put_be16(h + 24 + 8, 1), AMP_FRAME_DROP_MALFORMED);     /* no type */
  MUTATE(amp_put_be16(h + 24 + 8, 0), AMP_FRAME_DROP_MALFORMED);
  /* Last record's len: overrun into the tag, or stop short of it. */
  size_t last = 24 + 10 + 100 + 10 + 2;
  MUTATE(amp_put_be16(h + last + 8, 301), AMP_FRAME_DROP_MALFORMED);
  MUTATE(amp_put_be16(h + last + 8, 299), AMP_FRAME_DROP_MALFORMED);
  MUTATE(amp_put_be16(h + last + 8, 316), AMP_FRAME_DROP_MALFORMED);
  /* Trailing bytes after the tag with every length fixed: malformed. */
  for (int extra = 1; extra <= 20; extra++) {
    MUTATE((memset(p + l_, 0, (size_t)extra), l_ += (size_t)extra, fix_l3l4(p, l_)),
           AMP_FRAME_DROP_MALFORMED);
  }
  /* Too long for the fabric's MTU. */
  {
    static uint8_t big[AMP_FRAME_MAX_LEN + 64];
    uint16_t s1[1] = {2};
    size_t bl = build(big, sizeof big, 1, s1, 1);
    /* Grow the only record to overflow the MTU by one byte and retag. */
    size_t want = AMP_FRAME_MAX_LEN + 1;
    amp_put_be16(big + 42 + 24 + 8, (uint16_t)(want - bl + 2));
    fix_l3l4(big, want);
    retag(big, want);
    AMP_CHECK_EQ(amp_frame_parse(&f, big, want), AMP_FRAME_DROP_MALFORMED);
    want = AMP_FRAME_MAX_LEN;
    amp_put_be16(big + 42 + 24 + 8, (uint16_t)(want - bl + 2));
    fix_l3l4(big, want);
    retag(big, want);
    AMP_CHECK_EQ(amp_frame_parse(&f, big, want), AMP_FRAME_OK);
    AMP_CHECK_EQ(amp_frame_verify(&f, KEY), 1);
  }
  /* A good frame with a bad tag: parses, fails verify, for every bit of the
   * authenticated region and the tag. */
  int all_rejected = 1;
  for (size_t i = 42; i < len; i++) {
    for (int bit = 0; bit < 8; bit++) {
      memcpy(p, good, len);
      p[i] ^= (uint8_t)(1 << bit);
      int r = amp_frame_parse(&f, p, len);
      if (r == AMP_FRAME_OK && amp_frame_verify(&f, KEY)) all_rejected = 0;
    }
  }
  AMP_CHECK(all_rejected);
  /* The addresses are not authenticated (they are rewritten by the fabric). */
  MUTATE(p[0] ^= 0xff, AMP_FRAME_OK);
  AMP_CHECK_EQ(amp_frame_verify(&f, KEY), 1);
#undef MUTATE
  AMP_CHECK(strcmp(amp_frame_drop_str(AMP_FRAME_DROP_BAD_TAG), "bad frame tag") == 0);
  AMP_CHECK(strcmp(amp_frame_drop_str(AMP_FRAME_OK), "ok") == 0);
  AMP_CHECK(strcmp(amp_frame_drop_str(99), "unknown drop reason") == 0);
}

/* A naive model of the window: a set of seen seqs and the top. */
typedef struct {
  uint64_t top;
  uint8_t *seen;    /* indexed by seq, for seqs < cap */
} model_t;

static int model_accept(model_t *m, uint64_t seq) {
  if (seq == 0) return 0;
  if (seq + AMP_FRAME_WINDOW <= m->top) return 0;
  if (m->seen[seq]) return 0;
  m->seen[seq] = 1;
  if (seq > m->top) m->top = seq;
  return 1;
}

static void test_window(uint64_t *rs) {
  amp_frame_window_t w;
  memset(&w, 0, sizeof w);
  /* In order. */
  int ok = 1;
  for (uint64_t s = 1; s <= 5000; s++) ok &= amp_frame_window_accept(&w, s);
  AMP_CHECK(ok);
  AMP_CHECK(w.top == 5000);
  /* Duplicates and the too-old. */
  AMP_CHECK_EQ(amp_frame_window_check(&w, 5000), 0);
  AMP_CHECK_EQ(amp_frame_window_check(&w, 4000), 0);
  AMP_CHECK_EQ(amp_frame_window_check(&w, 3976), 0);
  AMP_CHECK_EQ(amp_frame_window_check(&w, 1), 0);
  AMP_CHECK_EQ(amp_frame_window_check(&w, 0), 0);
  AMP_CHECK_EQ(amp_frame_window_check(&w, 5001), 1);
  /* check does not change state. */
  AMP_CHECK_EQ(amp_frame_window_check(&w, 5001), 1);
  /* Reorder within the window: a gap left open is accepted later, once. */
  memset(&w, 0, sizeof w);
  AMP_CHECK_EQ(amp_frame_window_accept(&w, 10), 1);
  AMP_CHECK_EQ(amp_frame_window_accept(&w, 8), 1);
  AMP_CHECK_EQ(amp_frame_window_accept(&w, 9), 1);
  AMP_CHECK_EQ(amp_frame_window_accept(&w, 9), 0);
  AMP_CHECK_EQ(amp_frame_window_accept(&w, 1), 1);
  AMP_CHECK_EQ(amp_frame_window_accept(&w, 1), 0);
  AMP_CHECK_EQ(amp_frame_window_accept(&w, 10 + AMP_FRAME_WINDOW - 1), 1);
  AMP_CHECK_EQ(amp_frame_window_accept(&w, 11), 1);    /* bottom edge: still in */
  AMP_CHECK_EQ(amp_frame_window_accept(&w, 10), 0);    /* just below the bottom */
  AMP_CHECK_EQ(amp_frame_window_accept(&w, 12), 1);
  /* A big jump forgets everything below the new bottom, and the slots reused
   * by the new window are clear. */
  AMP_CHECK_EQ(amp_frame_window_accept(&w, 1000000), 1);
  AMP_CHECK_EQ(amp_frame_window_accept(&w, 1000000 - AMP_FRAME_WINDOW + 1), 1);
  AMP_CHECK_EQ(amp_frame_window_accept(&w, 1000000 - AMP_FRAME_WINDOW), 0);
  AMP_CHECK_EQ(amp_frame_window_accept(&w, 999999), 1);
  AMP_CHECK_EQ(amp_frame_window_accept(&w, UINT64_MAX), 1);
  AMP_CHECK_EQ(amp_frame_window_accept(&w, UINT64_MAX), 0);
  AMP_CHECK_EQ(amp_frame_window_accept(&w, UINT64_MAX - 1), 1);
  AMP_CHECK_EQ(amp_frame_window_accept(&w, 1000000), 0);
  /* update without check on an old seq does nothing harmful. */
  amp_frame_window_update(&w, 5);
  AMP_CHECK(w.top == UINT64_MAX);
  /* Jumps of every size below the window keep the right seqs. */
  for (uint64_t jump = 1; jump < 2 * AMP_FRAME_WINDOW; jump += 37) {
    memset(&w, 0, sizeof w);
    for (uint64_t s = 1; s <= 100; s++) (void)amp_frame_window_accept(&w, s);
    uint64_t t = 100 + jump;
    AMP_CHECK_EQ(amp_frame_window_accept(&w, t), 1);
    int good = 1;
    for (uint64_t s = 1; s < t; s++) {
      int want = s > 100 && s + AMP_FRAME_WINDOW > t;
      good &= amp_frame_window_check(&w, s) == want;
    }
    AMP_CHECK(good);
  }
  /* Randomized against the model: sequences that go forward with jitter,
   * duplicates and jumps. */
  size_t cap = 1u << 20;
  model_t m = {0, calloc(cap, 1)};
  AMP_REQUIRE(m.seen != NULL);
  memset(&w, 0, sizeof w);
  uint64_t base = 1;
  int agree = 1;
  for (int i = 0; i < 200000; i++) {
    uint64_t r = amp_test_rand(rs);
    uint64_t seq;
    switch (r % 8) {
    case 0: seq = base > 2000 ? base - 2000 + (r >> 8) % 2000 : 1 + (r >> 8) % base; break;
    case 1: seq = base + (r >> 8) % 3000; break;      /* jump */
    default: seq = base > 40 ? base - 40 + (r >> 8) % 50 : 1 + (r >> 8) % 50; break;
    }
    if (seq >= cap) break;
    if (seq > base) base = seq;
    else base++;
    if (base >= cap - 4000) break;
    int a = amp_frame_window_check(&w, seq);
    if (a) amp_frame_window_update(&w, seq);
    int b = model_accept(&m, seq);
    if (a != b) {
      agree = 0;
      fprintf(stderr, "window disagrees at step %d seq %" PRIu64 ": %d vs model %d\n", i, seq, a, b);
      break;
    }
  }
  AMP_CHECK(agree);
  free(m.seen);
}

/* amp_frame_verify_hmac2 == two amp_frame_verify_hmac calls: random frame
 * pairs of different sizes, each side intact or with one bit of its records
 * or tag flipped, each under the right or a wrong key. */
/* amp_frame_verify_hmac_n == amp_frame_verify_hmac frame by frame, for
 * bursts of 0..40 frames (below, at and above the sixteen lanes and the 32 of
 * a call's chunk), of 1-5 records each, each intact, with a record bit or a
 * tag bit flipped, or under another gateway's key. */
static void test_verify_n(uint64_t *rs) {
  enum { MAXN = 40 };
  static uint8_t buf[MAXN][AMP_FRAME_MAX_LEN];
  static amp_frame_t f[MAXN];
  const amp_frame_t *fp[MAXN];
  const amp_hmac_t *kp[MAXN];
  int ok[MAXN + 1], want[MAXN];
  amp_hmac_t kc, kbad;
  uint8_t other[32];
  memcpy(other, KEY, 32);
  other[5] ^= 0x20;
  amp_hmac_init(&kc, KEY, 32);
  amp_hmac_init(&kbad, other, 32);
  for (int iter = 0; iter < 120; iter++) {
    size_t n = iter < 41 ? (size_t)iter : (size_t)(amp_test_rand(rs) % (MAXN + 1));
    for (size_t j = 0; j < n; j++) {
      int nr = 1 + (int)(amp_test_rand(rs) % 5);
      uint16_t sizes[8];
      for (int i = 0; i < nr; i++) sizes[i] = (uint16_t)(2 + amp_test_rand(rs) % 1600);
      size_t len = build(buf[j], sizeof buf[j], nr, sizes, (uint64_t)iter * 64 + j + 1);
      AMP_REQUIRE(len > 0);
      int how = (int)(amp_test_rand(rs) % 4); /* 0 intact, 1 record bit, 2 tag bit, 3 wrong key */
      if (how == 1) buf[j][AMP_FRAME_L2L4_LEN + 24 + amp_test_rand(rs) % 8] ^= 4; /* a scid */
      if (how == 2) buf[j][len - 1 - amp_test_rand(rs) % 16] ^= 1;
      AMP_REQUIRE(amp_frame_parse(&f[j], buf[j], len) == AMP_FRAME_OK);
      fp[j] = &f[j];
      kp[j] = how == 3 ? &kbad : &kc;
      want[j] = how == 0;
    }
    for (size_t j = 0; j <= MAXN; j++) ok[j] = -1;
    amp_frame_verify_hmac_n(fp, kp, n, ok);
    for (size_t j = 0; j < n; j++) {
      AMP_CHECK_EQ(ok[j], want[j]);
      AMP_CHECK_EQ(ok[j], amp_frame_verify_hmac(&f[j], kp[j]));
    }
    AMP_CHECK_EQ(ok[n], -1); /* nothing written past n */
  }
}

static void test_mutations(uint64_t *rs) {
  static uint8_t good[4096];
  uint16_t sizes[4] = {40, 2, 700, 9};
  size_t len = build(good, sizeof good, 4, sizes, 77);
  AMP_REQUIRE(len > 0);
  amp_frame_t f;
  int sound = 1;
  for (int iter = 0; iter < 20000; iter++) {
    size_t l = len;
    if (amp_test_rand(rs) % 4 == 0) l = amp_test_rand(rs) % (len + 32);
    /* An exact-size heap copy: ASan sees any read past the end. */
    uint8_t *p = malloc(l ? l : 1);
    AMP_REQUIRE(p != NULL);
    for (size_t i = 0; i < l; i++) p[i] = i < len ? good[i] : (uint8_t)amp_test_rand(rs);
    int flips = (int)(amp_test_rand(rs) % 4);
    for (int k = 0; k < flips && l; k++) {
      size_t at = amp_test_rand(rs) % l;
      switch (amp_test_rand(rs) % 3) {
      case 0: p[at] ^= (uint8_t)(1u << (amp_test_rand(rs) % 8)); break;
      case 1: p[at] = (uint8_t)amp_test_rand(rs); break;
      default: p[at] = 0xff; break;
      }
    }
    if (amp_test_rand(rs) % 3 == 0 && l >= 42) fix_l3l4(p, l);
    int r = amp_frame_parse(&f, p, l);
    if (r < 0 || r >= AMP_FRAME_DROP_COUNT_) sound = 0;
    if (r == AMP_FRAME_OK) {
      size_t used = 0;
      for (int i = 0; i < f.count; i++) {
        if (f.rec[i].msg < p || f.rec[i].msg + f.rec[i].len > p + l) sound = 0;
        used += 10 + f.rec[i].len;
      }
      if (42 + 24 + used + 16 != l) sound = 0;
      if (f.tag + 16 != p + l) sound = 0;
      /* Only an unchanged authenticated region verifies. */
      if (amp_frame_verify(&f, KEY) &&
          (l != len || memcmp(p + 42, good + 42, len - 42) != 0))
        sound = 0;
    }
    free(p);
  }
  AMP_CHECK(sound);
}

int main(void) {
  uint64_t seed = amp_test_seed();
  uint64_t rs = seed ? seed : 1;
  for (int i = 0; i < 32; i++) KEY[i] = (uint8_t)(0x40 + i);
  test_round_trip(&rs);
  test_builder_limits();
  test_malformed();
  test_window(&rs);
  test_verify_n(&rs);
  test_mutations(&rs);
  return amp_test_done();
}
