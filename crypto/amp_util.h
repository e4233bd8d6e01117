/* amp_util.h: error codes, constant-time helpers, secure wipe, randomness, hex.
 *
 * Global rules for every ampd header (libsecp256k1 style):
 * - Argument order: outputs first, then inputs; an array's length follows it.
 * - Pointers are non-NULL unless a comment says otherwise.
 * - Functions that can fail return an int: 0 (AMP_OK) on success, a negative
 *   amp_err_t otherwise, and are marked AMP_WARN_UNUSED: ignoring an error does
 *   not compile.
 * - Functions that take variable time on their inputs end in _var; everything
 *   else that touches a secret is constant-time in the secret.
 */
#ifndef AMP_UTIL_H
#define AMP_UTIL_H

#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define AMP_WARN_UNUSED __attribute__((warn_unused_result))

/* Every error ampd can report, with its string (LMDB style). Negative values. */
#define AMP_ERR_LIST(X)                                                        \
  X(AMP_OK, 0, "success")                                                      \
  X(AMP_ERR_TRUNCATED, -1, "input ends before the field does")                 \
  X(AMP_ERR_NONMINIMAL, -2, "integer is not minimally encoded")                \
  X(AMP_ERR_TLV_ORDER, -3, "TLV types are not strictly increasing")            \
  X(AMP_ERR_TLV_UNKNOWN_EVEN, -4, "unknown even TLV type")                     \
  X(AMP_ERR_LENGTH, -5, "field has a wrong length")                            \
  X(AMP_ERR_OVERFLOW, -6, "output buffer too small")                           \
  X(AMP_ERR_BAD_KEY, -7, "invalid public or secret key")                       \
  X(AMP_ERR_ONION_VERSION, -8, "unknown onion version")                        \
  X(AMP_ERR_ONION_HMAC, -9, "onion HMAC mismatch")                             \
  X(AMP_ERR_ONION_KEY, -10, "onion ephemeral key invalid")                     \
  X(AMP_ERR_PAYLOAD, -11, "invalid hop payload")                               \
  X(AMP_ERR_MISMATCH, -12, "derived hash does not match")                      \
  X(AMP_ERR_RANGE, -13, "value out of range")                                  \
  X(AMP_ERR_RANDOM, -14, "system randomness unavailable")                      \
  X(AMP_ERR_FAIL_HMAC, -15, "failure onion HMAC matches no hop")               \
  X(AMP_ERR_MSG, -16, "malformed Lightning message")                           \
  X(AMP_ERR_NOMEM, -17, "out of memory or pool exhausted")                     \
  X(AMP_ERR_IO, -18, "I/O or store error")                                     \
  X(AMP_ERR_EXISTS, -19, "already exists")                                     \
  X(AMP_ERR_NOTFOUND, -20, "not found")                                        \
  X(AMP_ERR_STATE, -21, "invalid state for this operation")                    \
  X(AMP_ERR_CONFIG, -22, "invalid configuration")                              \
  X(AMP_ERR_FULL, -23, "limit reached")

typedef enum {
#define AMP_ERR_ENUM_(name, val, str) name = val,
  AMP_ERR_LIST(AMP_ERR_ENUM_)
#undef AMP_ERR_ENUM_
} amp_err_t;

/* amp_strerror returns a static string for err (any int; unknown codes give
 * "unknown error"). Thread-safe. */
const char *amp_strerror(int err);

/* amp_ct_eq compares n bytes of a and b in time independent of their content.
 * Returns 1 if equal, 0 otherwise. */
int amp_ct_eq(const void *a, const void *b, size_t n);

/* amp_ct_is_zero returns 1 if all n bytes are zero, in constant time. */
int amp_ct_is_zero(const void *p, size_t n);

/* amp_wipe zeroes n bytes in a way the compiler cannot elide (explicit_bzero).
 * For secrets. n may be 0. */
void amp_wipe(void *p, size_t n);

/* amp_random fills out with n bytes from the kernel CSPRNG (getrandom),
 * retrying on EINTR and short reads. Returns AMP_OK or AMP_ERR_RANDOM (out
 * then partly filled). Blocks only before the pool is seeded. Thread-safe. */
AMP_WARN_UNUSED int amp_random(void *out, size_t n);

/* amp_hex_encode writes 2n lowercase hex digits and a NUL into out
 * (capacity >= 2n+1). Returns out. */
char *amp_hex_encode(char *out, const void *in, size_t n);

/* amp_hex_decode_var decodes the whole NUL-terminated hex string into out of
 * capacity cap. Returns the byte count (>= 0), or AMP_ERR_LENGTH for an odd
 * length or a bad digit, AMP_ERR_OVERFLOW if it does not fit. Variable time.
 * Digits may be upper or lower case. A string that is both malformed and too
 * long gives AMP_ERR_LENGTH. On error out is left untouched. */
AMP_WARN_UNUSED long amp_hex_decode_var(uint8_t *out, size_t cap, const char *hex);

/* amp_mono_ns returns CLOCK_MONOTONIC in nanoseconds (vDSO: ~20-30 ns, no
 * syscall). The clock of the engine's timers, rx stamps and stage timings.
 * Thread-safe. */
uint64_t amp_mono_ns(void);

/* amp_big_alloc returns n bytes (n >= 1 taken for 0) of zeroed, page-aligned
 * memory of its own anonymous mapping, faulted in now (resident from here,
 * no page faults later on a hot path), with transparent huge pages asked for
 * when n >= 2 MiB (madvise: where the kernel allows them, one TLB entry per
 * 2 MiB instead of per 4 KiB; for tables probed at random). NULL when the
 * mapping fails. Cost: the page faults of n bytes. Thread-safe.
 * amp_big_free releases it (n as allocated; p may be NULL).
 * amp_big_grow grows such a block from n to nn bytes by mremap, contents
 * kept and the tail zero, not faulted in; the block may move. NULL on
 * failure (the old block stays valid). */
void *amp_big_alloc(size_t n);
void amp_big_free(void *p, size_t n);
void *amp_big_grow(void *p, size_t n, size_t nn);

/* Big-endian loads and stores. */
/* amp_spin_lock / amp_spin_unlock: a one-byte spin lock for critical
 * sections of a few memory accesses (the engine's tables): the CPU's pause
 * while it spins, then sched_yield after 64 spins, so a holder preempted on
 * an oversubscribed machine does not cost each waiter a whole time slice. */
static inline void amp_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#endif
}

static inline void amp_spin_lock(_Atomic uint8_t *l) {
  unsigned spins = 0;
  while (atomic_exchange_explicit(l, 1, memory_order_acquire)) {
    do {
      if (++spins < 64) amp_cpu_relax();
      else sched_yield();
    } while (atomic_load_explicit(l, memory_order_relaxed));
  }
}

static inline void amp_spin_unlock(_Atomic uint8_t *l) {
  atomic_store_explicit(l, 0, memory_order_release);
}

static inline uint16_t amp_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t amp_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t amp_be64(const uint8_t *p) {
  return ((uint64_t)amp_be32(p) << 32) | amp_be32(p + 4);
}
static inline void amp_put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void amp_put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline void amp_put_be64(uint8_t *p, uint64_t v) {
  amp_put_be32(p, (uint32_t)(v >> 32)); amp_put_be32(p + 4, (uint32_t)v);
}

#endif /* AMP_UTIL_H */
