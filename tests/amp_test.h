/* amp_test.h: the tiny test harness every ampd test uses.
 *
 * A test program is a main() that calls AMP_CHECK* as it goes and returns
 * amp_test_done() at the end: 0 when every check held, 1 otherwise. Every
 * failed check prints file:line and the expression, and the run goes on so
 * one run shows every failure. Randomized tests call amp_test_seed() which
 * prints the seed (AMP_TEST_SEED in the environment replays a run).
 *
 * Vectors: amp_test_vector_path("bolt04/onion-test.json") is the path below
 * $AMP_VECTORS (set by meson to ../shared/vectors of the source tree).
 * Header-only; not for production code. */
#ifndef AMP_TEST_H
#define AMP_TEST_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long amp_test_checks_;
static unsigned long amp_test_failures_;

#define AMP_CHECK(cond)                                                        \
  do {                                                                         \
    amp_test_checks_++;                                                        \
    if (!(cond)) {                                                             \
      amp_test_failures_++;                                                    \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
    }                                                                          \
  } while (0)

#define AMP_CHECK_EQ(a, b)                                                     \
  do {                                                                         \
    long long amp_a_ = (long long)(a), amp_b_ = (long long)(b);                \
    amp_test_checks_++;                                                        \
    if (amp_a_ != amp_b_) {                                                    \
      amp_test_failures_++;                                                    \
      fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__,      \
              __LINE__, #a, #b, amp_a_, amp_b_);                               \
    }                                                                          \
  } while (0)

#define AMP_CHECK_MEM(a, b, n)                                                 \
  do {                                                                         \
    amp_test_checks_++;                                                        \
    if (memcmp((a), (b), (n)) != 0) {                                          \
      amp_test_failures_++;                                                    \
      fprintf(stderr, "FAIL %s:%d: %s == %s (%zu bytes)\n", __FILE__,         \
              __LINE__, #a, #b, (size_t)(n));                                  \
      amp_test_dump_("  got ", (const uint8_t *)(a), (n));                     \
      amp_test_dump_("  want", (const uint8_t *)(b), (n));                     \
    }                                                                          \
  } while (0)

/* Aborts the test program at once: for preconditions the rest depends on.
 * The condition is evaluated exactly once (it may have side effects). */
#define AMP_REQUIRE(cond)                                                      \
  do {                                                                         \
    int amp_ok_ = !!(cond);                                                    \
    amp_test_checks_++;                                                        \
    if (!amp_ok_) {                                                            \
      amp_test_failures_++;                                                    \
      fprintf(stderr, "FAIL %s:%d: %s\ncannot go on\n", __FILE__, __LINE__,   \
              #cond);                                                          \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

static inline void amp_test_dump_(const char *tag, const uint8_t *p, size_t n) {
  fprintf(stderr, "%s ", tag);
  for (size_t i = 0; i < n && i < 64; i++) fprintf(stderr, "%02x", p[i]);
  fprintf(stderr, "%s\n", n > 64 ? "..." : "");
}

static inline int amp_test_done(void) {
  fprintf(stderr, "%lu checks, %lu failed\n", amp_test_checks_, amp_test_failures_);
  return amp_test_failures_ ? 1 : 0;
}

/* amp_test_unhex decodes hex into out (capacity cap). Returns the byte count,
 * or -1 on odd length, a bad digit or an overflow. */
static inline long amp_test_unhex(uint8_t *out, size_t cap, const char *hex) {
  size_t n = strlen(hex);
  if (n % 2 || n / 2 > cap) return -1;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v = 0;
    for (int k = 0; k < 2; k++) {
      char c = hex[2 * i + k];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
      else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
      else return -1;
    }
    out[i] = (uint8_t)v;
  }
  return (long)(n / 2);
}

/* amp_test_vector_path returns a static buffer holding $AMP_VECTORS/rel. */
static inline const char *amp_test_vector_path(const char *rel) {
  static char path[4096];
  const char *dir = getenv("AMP_VECTORS");
  snprintf(path, sizeof path, "%s/%s", dir ? dir : "../shared/vectors", rel);
  return path;
}

/* amp_test_read_file reads a whole file into a malloc'd NUL-terminated buffer
 * (caller frees). Exits the test on error: a missing vector is a failure. */
static inline char *amp_test_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) { fprintf(stderr, "FAIL cannot open %s\n", path); exit(1); }
  fseek(f, 0, SEEK_END);
  long sz = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)sz + 1);
  if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) { fprintf(stderr, "FAIL read %s\n", path); exit(1); }
  buf[sz] = 0;
  fclose(f);
  if (len) *len = (size_t)sz;
  return buf;
}

/* amp_test_seed returns the seed for randomized tests and prints it. */
static inline uint64_t amp_test_seed(void) {
  const char *e = getenv("AMP_TEST_SEED");
  uint64_t s = e ? strtoull(e, NULL, 0) : ((uint64_t)time(NULL) ^ ((uint64_t)clock() << 32));
  fprintf(stderr, "seed: AMP_TEST_SEED=%" PRIu64 "\n", s);
  return s;
}

/* For the table tests (engine/amp_inflight, engine/amp_itab): an object
 * with a key and its hash, and the tables' match callback on the key. */
typedef struct {
  uint64_t key;
  uint64_t hash;
} amp_test_obj_t;

static inline int amp_test_obj_match(const void *obj, const void *key) {
  return ((const amp_test_obj_t *)obj)->key == *(const uint64_t *)key;
}

/* splitmix64's finalizer: well-mixed 64-bit hashes from a counter or from
 * amp_test_rand (whose low bits alone are weak). */
static inline uint64_t amp_test_mix64(uint64_t x) {
  x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27; x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/* xorshift64*: a small deterministic PRNG for tests (not for secrets). */
static inline uint64_t amp_test_rand(uint64_t *s) {
  *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1DULL;
}

#endif /* AMP_TEST_H */
