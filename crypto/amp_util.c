/* amp_util.c: error strings, constant-time helpers, wipe, randomness, hex. */
#include "amp_util.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <sys/random.h>

const char *amp_strerror(int err) {
  switch (err) {
#define AMP_ERR_CASE_(name, val, str) case val: return str;
    AMP_ERR_LIST(AMP_ERR_CASE_)
#undef AMP_ERR_CASE_
  default:
    return "unknown error";
  }
}

/* The volatile reads keep the compiler from turning the loops into an early
 * exit: every byte is read and folded into acc whatever came before. */
int amp_ct_eq(const void *a, const void *b, size_t n) {
  const volatile uint8_t *x = a, *y = b;
  uint32_t acc = 0;
  for (size_t i = 0; i < n; i++) acc |= (uint32_t)(x[i] ^ y[i]);
  /* acc is 0..255: (acc - 1) >> 8 has bit 0 set only when acc == 0. */
  return (int)(1u & ((acc - 1u) >> 8));
}

int amp_ct_is_zero(const void *p, size_t n) {
  const volatile uint8_t *x = p;
  uint32_t acc = 0;
  for (size_t i = 0; i < n; i++) acc |= x[i];
  return (int)(1u & ((acc - 1u) >> 8));
}

void amp_wipe(void *p, size_t n) {
  /* glibc's explicit_bzero is a compiler barrier on the buffer. */
  if (n) explicit_bzero(p, n);
}

int amp_random(void *out, size_t n) {
  uint8_t *p = out;
  while (n > 0) {
    ssize_t r = getrandom(p, n, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      return AMP_ERR_RANDOM;
    }
    if (r == 0) return AMP_ERR_RANDOM; /* cannot happen; do not spin */
    p += (size_t)r;
    n -= (size_t)r;
  }
  return AMP_OK;
}

char *amp_hex_encode(char *out, const void *in, size_t n) {
  static const char digits[] = "0123456789abcdef";
  const uint8_t *p = in;
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * n] = '\0';
  return out;
}

/* hex_val returns 0..15 for a hex digit (either case), -1 otherwise. */
static int hex_val(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

long amp_hex_decode_var(uint8_t *out, size_t cap, const char *hex) {
  size_t len = strlen(hex);
  if (len % 2) return AMP_ERR_LENGTH;
  /* Check every digit before writing, so out is untouched on error. */
  for (size_t i = 0; i < len; i++)
    if (hex_val(hex[i]) < 0) return AMP_ERR_LENGTH;
  if (len / 2 > cap) return AMP_ERR_OVERFLOW;
  for (size_t i = 0; i < len / 2; i++)
    out[i] = (uint8_t)((hex_val(hex[2 * i]) << 4) | hex_val(hex[2 * i + 1]));
  return (long)(len / 2);
}

uint64_t amp_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- big zeroed memory ---------------------------------------------------- */

/* Fault the pages in now (at open, or while a table grows under a lock held
 * anyway) rather than one by one on a hot path later. */
static void big_populate(void *p, size_t n) {
#ifdef MADV_POPULATE_WRITE
  if (madvise(p, n, MADV_POPULATE_WRITE) == 0) return;
#endif
  for (size_t i = 0; i < n; i += 4096) ((volatile uint8_t *)p)[i] = 0;
}

/* The mapped length of an n-byte block: from 2 MiB up, a whole number of
 * huge pages, which is also what makes the kernel place the mapping on a
 * 2 MiB boundary (a 4.1 MB table at an unaligned address got 2 of its 3
 * possible huge pages). */
#define BIG_HUGE_ ((size_t)2 << 20)
static size_t big_len(size_t n) {
  if (!n) return 1;
  return n < BIG_HUGE_ ? n : (n + BIG_HUGE_ - 1) & ~(BIG_HUGE_ - 1);
}

void *amp_big_alloc(size_t n) {
  n = big_len(n);
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  if (n >= BIG_HUGE_) (void)madvise(p, n, MADV_HUGEPAGE);
  big_populate(p, n);
  return p;
}

void amp_big_free(void *p, size_t n) {
  if (p) munmap(p, big_len(n));
}

void *amp_big_grow(void *p, size_t n, size_t nn) {
  if (!p) return amp_big_alloc(nn);
  nn = big_len(nn);
  void *q = mremap(p, big_len(n), nn, MREMAP_MAYMOVE);
  if (q == MAP_FAILED) return NULL;
  if (nn >= BIG_HUGE_) (void)madvise(q, nn, MADV_HUGEPAGE);
  return q;
}
