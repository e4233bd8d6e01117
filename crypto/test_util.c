/* test_util.c: error strings, constant-time compare, wipe, randomness, hex. */
#include "amp_util.h"

#include "amp_test.h"

static void check_strerror(void) {
  static const int codes[] = {
#define AMP_ERR_CODE_(name, val, str) val,
    AMP_ERR_LIST(AMP_ERR_CODE_)
#undef AMP_ERR_CODE_
  };
  static const char *const want[] = {
#define AMP_ERR_STR_(name, val, str) str,
    AMP_ERR_LIST(AMP_ERR_STR_)
#undef AMP_ERR_STR_
  };
  size_t n = sizeof codes / sizeof codes[0];
  AMP_CHECK_EQ(n, 24);
  for (size_t i = 0; i < n; i++) {
    const char *s = amp_strerror(codes[i]);
    AMP_CHECK(s != NULL && s[0] != '\0');
    AMP_CHECK(strcmp(s, "unknown error") != 0);
    AMP_CHECK(strcmp(s, want[i]) == 0);
    for (size_t j = 0; j < i; j++) AMP_CHECK(strcmp(s, amp_strerror(codes[j])) != 0);
  }
  AMP_CHECK(strcmp(amp_strerror(AMP_OK), "success") == 0);
  AMP_CHECK(strcmp(amp_strerror(-24), "unknown error") == 0);
  AMP_CHECK(strcmp(amp_strerror(1), "unknown error") == 0);
  AMP_CHECK(strcmp(amp_strerror(-1000000), "unknown error") == 0);
  AMP_CHECK(strcmp(amp_strerror(2147483647), "unknown error") == 0);
}

static void check_ct(uint64_t *rng) {
  uint8_t a[100] = {0}, b[100] = {0};
  AMP_CHECK(amp_ct_eq(a, b, 0) == 1);
  AMP_CHECK(amp_ct_is_zero(a, 0) == 1);
  for (size_t n = 1; n <= sizeof a; n++) {
    for (size_t i = 0; i < n; i++) a[i] = b[i] = (uint8_t)amp_test_rand(rng);
    AMP_CHECK(amp_ct_eq(a, b, n) == 1);
    AMP_CHECK(amp_ct_eq(a, a, n) == 1);
    /* A difference of any bit at any position is seen. */
    for (size_t i = 0; i < n; i += (n > 40 ? 7 : 1)) {
      for (int bit = 0; bit < 8; bit++) {
        b[i] ^= (uint8_t)(1u << bit);
        AMP_CHECK(amp_ct_eq(a, b, n) == 0);
        AMP_CHECK(amp_ct_eq(b, a, n) == 0);
        b[i] ^= (uint8_t)(1u << bit);
      }
    }
    /* Only n bytes are compared. */
    b[n - 1] ^= 0xff;
    AMP_CHECK(amp_ct_eq(a, b, n - 1) == 1);
    b[n - 1] ^= 0xff;

    memset(a, 0, n);
    AMP_CHECK(amp_ct_is_zero(a, n) == 1);
    for (size_t i = 0; i < n; i++) {
      a[i] = 0x80;
      AMP_CHECK(amp_ct_is_zero(a, n) == 0);
      a[i] = 0x01;
      AMP_CHECK(amp_ct_is_zero(a, n) == 0);
      a[i] = 0;
    }
  }
  /* All-ones vs all-zeros (the largest XOR). */
  memset(a, 0xff, sizeof a);
  memset(b, 0, sizeof b);
  AMP_CHECK(amp_ct_eq(a, b, sizeof a) == 0);
  AMP_CHECK(amp_ct_is_zero(a, sizeof a) == 0);
}

static void check_wipe(void) {
  uint8_t buf[77];
  memset(buf, 0xab, sizeof buf);
  amp_wipe(buf + 1, 75);
  AMP_CHECK(buf[0] == 0xab && buf[76] == 0xab);
  AMP_CHECK(amp_ct_is_zero(buf + 1, 75));
  amp_wipe(buf, 0);
  AMP_CHECK(buf[0] == 0xab);
}

static void check_random(void) {
  uint8_t a[64], b[64];
  memset(a, 0, sizeof a);
  memset(b, 0, sizeof b);
  AMP_CHECK(amp_random(a, sizeof a) == AMP_OK);
  AMP_CHECK(amp_random(b, sizeof b) == AMP_OK);
  /* 2^-512 odds of a false failure. */
  AMP_CHECK(!amp_ct_is_zero(a, sizeof a));
  AMP_CHECK(!amp_ct_eq(a, b, sizeof a));
  AMP_CHECK(amp_random(a, 0) == AMP_OK);
  /* A large request (above getrandom's 32 MiB - 1 cap per call would be too
   * slow for a unit test; 1 MiB still spans many internal chunks). */
  static uint8_t big[1 << 20];
  AMP_CHECK(amp_random(big, sizeof big) == AMP_OK);
  size_t zeros = 0;
  for (size_t i = 0; i < sizeof big; i++) zeros += big[i] == 0;
  AMP_CHECK(zeros > 3000 && zeros < 5200); /* mean 4096, sd ~64 */
}

static void check_hex(uint64_t *rng) {
  char hex[2 * 70 + 1];
  uint8_t in[70], out[70];
  /* Known. */
  static const uint8_t k[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff};
  AMP_CHECK(amp_hex_encode(hex, k, sizeof k) == hex);
  AMP_CHECK(strcmp(hex, "00017f80abcdefff") == 0);
  AMP_CHECK_EQ(amp_hex_decode_var(out, sizeof out, "00017F80ABcdEFff"), 8);
  AMP_CHECK_MEM(out, k, 8);
  /* Empty. */
  hex[0] = 'x';
  amp_hex_encode(hex, k, 0);
  AMP_CHECK(hex[0] == '\0');
  AMP_CHECK_EQ(amp_hex_decode_var(out, 0, ""), 0);
  /* Round trips of random bytes, every length. */
  for (size_t n = 0; n <= sizeof in; n++) {
    for (size_t i = 0; i < n; i++) in[i] = (uint8_t)amp_test_rand(rng);
    amp_hex_encode(hex, in, n);
    AMP_CHECK_EQ(strlen(hex), 2 * n);
    AMP_CHECK_EQ(amp_hex_decode_var(out, n, hex), n); /* exact capacity */
    AMP_CHECK_MEM(out, in, n);
    if (n > 0) AMP_CHECK_EQ(amp_hex_decode_var(out, n - 1, hex), AMP_ERR_OVERFLOW);
  }
  /* Every error. Odd lengths: */
  AMP_CHECK_EQ(amp_hex_decode_var(out, sizeof out, "0"), AMP_ERR_LENGTH);
  AMP_CHECK_EQ(amp_hex_decode_var(out, sizeof out, "abc"), AMP_ERR_LENGTH);
  AMP_CHECK_EQ(amp_hex_decode_var(out, 0, "abc"), AMP_ERR_LENGTH);
  /* Bad digits, in either position of a byte, and out untouched: */
  static const char *bad[] = {"0g", "g0", "zz", "0x12", "12 3", " 123", "1-",
                              "ab\xff" "0", "/0", ":0", "@0", "G0", "`0", "0\t"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(out, 0x5a, sizeof out);
    AMP_CHECK_EQ(amp_hex_decode_var(out, sizeof out, bad[i]), AMP_ERR_LENGTH);
    AMP_CHECK(out[0] == 0x5a && out[1] == 0x5a);
  }
  /* Too long for the buffer: */
  memset(out, 0x5a, sizeof out);
  AMP_CHECK_EQ(amp_hex_decode_var(out, 3, "00112233"), AMP_ERR_OVERFLOW);
  AMP_CHECK(out[0] == 0x5a);
  AMP_CHECK_EQ(amp_hex_decode_var(out, 4, "00112233"), 4);
  /* Every byte value decodes from both cases. */
  for (int v = 0; v < 256; v++) {
    char h[3], u[3];
    uint8_t b = (uint8_t)v;
    amp_hex_encode(h, &b, 1);
    for (int i = 0; i < 3; i++) u[i] = (h[i] >= 'a' && h[i] <= 'f') ? (char)(h[i] - 32) : h[i];
    uint8_t o = 0;
    AMP_CHECK_EQ(amp_hex_decode_var(&o, 1, h), 1);
    AMP_CHECK_EQ(o, v);
    o = 0;
    AMP_CHECK_EQ(amp_hex_decode_var(&o, 1, u), 1);
    AMP_CHECK_EQ(o, v);
  }
}

static void check_be(void) {
  uint8_t b[8];
  amp_put_be16(b, 0x1234);
  AMP_CHECK(b[0] == 0x12 && b[1] == 0x34 && amp_be16(b) == 0x1234);
  amp_put_be32(b, 0x89abcdefu);
  AMP_CHECK(b[0] == 0x89 && b[3] == 0xef && amp_be32(b) == 0x89abcdefu);
  amp_put_be64(b, 0x0123456789abcdefULL);
  AMP_CHECK(b[0] == 0x01 && b[7] == 0xef && amp_be64(b) == 0x0123456789abcdefULL);
}

/* amp_big_alloc: zeroed, page aligned, every byte writable, for sizes on
 * both sides of the huge-page threshold; amp_big_grow keeps the contents and
 * zeroes the tail, across that threshold too; frees take the allocated n. */
static void check_big(void) {
  const size_t sizes[] = {0, 1, 4095, 4097, (2u << 20) - 1, 2u << 20, (2u << 20) + 1, 5u << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i] ? sizes[i] : 1;
    uint8_t *p = amp_big_alloc(sizes[i]);
    AMP_CHECK(p != NULL);
    if (!p) continue;
    AMP_CHECK(((uintptr_t)p & 4095) == 0);
    AMP_CHECK(amp_ct_is_zero(p, n));
    memset(p, 0xa5, n);
    AMP_CHECK(p[0] == 0xa5 && p[n - 1] == 0xa5);
    amp_big_free(p, sizes[i]);
  }
  amp_big_free(NULL, 12345);
  /* grow 1 MiB -> 3 MiB -> 9 MiB + 1 */
  size_t n = 1u << 20;
  uint8_t *p = amp_big_grow(NULL, 0, n);
  AMP_CHECK(p != NULL);
  if (!p) return;
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(i * 7 + 1);
  const size_t next[] = {3u << 20, (9u << 20) + 1};
  for (size_t k = 0; k < 2; k++) {
    uint8_t *q = amp_big_grow(p, n, next[k]);
    AMP_CHECK(q != NULL);
    if (!q) {
      amp_big_free(p, n);
      return;
    }
    size_t bad = 0;
    for (size_t i = 0; i < (1u << 20); i++) bad += q[i] != (uint8_t)(i * 7 + 1);
    AMP_CHECK_EQ(bad, 0);
    if (k == 1) AMP_CHECK(q[1u << 20] == 0x5a && q[n - 1] == 0x5a); /* the first tail's */
    AMP_CHECK(amp_ct_is_zero(q + n, next[k] - n));
    memset(q + n, 0x5a, next[k] - n);
    p = q;
    n = next[k];
  }
  AMP_CHECK(p[n - 1] == 0x5a);
  amp_big_free(p, n);
}

int main(void) {
  uint64_t seed = amp_test_seed(), rng = seed ? seed : 1;
  check_big();
  check_strerror();
  check_ct(&rng);
  check_wipe();
  check_random();
  check_hex(&rng);
  check_be();
  return amp_test_done();
}
