/* amp_sha256.h: SHA-256 (FIPS 180-4).
 *
 * Two implementations behind one API: SHA-NI (x86 SHA extensions) chosen at
 * run time by CPUID, and a portable one. Both give identical output; tests run
 * the same vectors through each (amp_sha256_use).
 *
 * amp_sha256_batch hashes N independent messages. On SHA-NI it interleaves two
 * message streams so the two SHA units' latencies overlap; the portable
 * fallback loops. Used for AMP child derivation (68-byte inputs) and onion
 * hashing over a burst.
 *
 * Thread safety: all functions are reentrant; the implementation choice is a
 * process-wide setting made once at start (amp_sha256_use is for tests and
 * benchmarks, not to be called while other threads hash).
 * Cost (SHA-NI, this machine class): ~ 65 ns per 64-byte block; batch of two
 * streams ~ 0.6x of two single calls.
 */
#ifndef AMP_SHA256_H
#define AMP_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "amp_util.h"

#define AMP_SHA256_LEN 32

typedef struct {
  uint32_t h[8];
  uint64_t bytes;      /* total bytes absorbed */
  uint8_t buf[64];
  uint32_t buf_len;
} amp_sha256_t;

/* amp_sha256_init starts a hash. */
void amp_sha256_init(amp_sha256_t *ctx);
/* amp_sha256_update absorbs len bytes (len may be 0, data then may be NULL). */
void amp_sha256_update(amp_sha256_t *ctx, const void *data, size_t len);
/* amp_sha256_final writes the digest and wipes ctx. */
void amp_sha256_final(amp_sha256_t *ctx, uint8_t out[AMP_SHA256_LEN]);
/* amp_sha256 is init + update + final. */
void amp_sha256(uint8_t out[AMP_SHA256_LEN], const void *data, size_t len);

/* amp_sha256_batch hashes n independent messages: out[i] = SHA256(msg[i],
 * len[i]). Messages may have different lengths. n may be 0. */
void amp_sha256_batch(uint8_t (*out)[AMP_SHA256_LEN], const uint8_t *const *msg,
                      const size_t *len, size_t n);

/* amp_sha256_impl names the implementation in use: "sha-ni" or "portable". */
const char *amp_sha256_impl(void);

/* amp_sha256_use selects an implementation by name ("sha-ni", "portable",
 * "auto"). Returns AMP_OK, or AMP_ERR_STATE if the CPU lacks it or the name is
 * unknown. For tests and benchmarks. */
AMP_WARN_UNUSED int amp_sha256_use(const char *name);

#endif /* AMP_SHA256_H */
