/* amp_sha256.h: SHA-256 (FIPS 180-4).
 *
 * Two implementations behind one API: SHA-NI (x86 SHA extensions) chosen at
 * run time by CPUID, and a portable one. Both give identical output; tests run
 * the same vectors through each (amp_sha256_use).
 *
 * amp_sha256_batch hashes N independent messages. From ten messages on
 * "sha-ni+avx512" they go sixteen lanes at a time (amp_sha256_update_n and
 * _final_n); otherwise on SHA-NI it interleaves two message streams so the
 * latency of one stream's chain of sha256rnds2 is filled with the other's
 * rounds; the portable fallback loops. Used for AMP child derivation (68-byte inputs) and onion
 * hashing over a burst.
 *
 * Thread safety: all functions are reentrant; the implementation choice is a
 * process-wide setting made once at first use (amp_sha256_use is for tests
 * and benchmarks, not to be called while other threads hash).
 * Nothing allocates. final and the batch wipe what they buffered (messages
 * may be preimages).
 *
 * Cost, measured (2-vCPU AMD EPYC VM, gcc 12 -O2, best of many runs; ns per
 * message):
 *                     <= 55 B   64 B   68 B (AMP child)   1366 B   per block
 *   portable             155    280    280                2900     ~133
 *   SHA-NI                57     81     81                 830      ~37
 *   SHA-NI batch          34     50     52                 530
 *   batch / one-shot    0.58   0.62   0.64                0.65
 * The portable batch is a loop of one-shot calls (no gain).
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

/* amp_sha256_init starts a hash. ctx needs no prior initialization. */
void amp_sha256_init(amp_sha256_t *ctx);
/* amp_sha256_update absorbs len bytes (len may be 0, data then may be NULL).
 * Any split of a message over calls gives the same digest. */
void amp_sha256_update(amp_sha256_t *ctx, const void *data, size_t len);
/* amp_sha256_final writes the digest and wipes ctx (init it again to reuse).
 * out may not overlap ctx. */
void amp_sha256_final(amp_sha256_t *ctx, uint8_t out[AMP_SHA256_LEN]);
/* amp_sha256 is init + update + final. */
void amp_sha256(uint8_t out[AMP_SHA256_LEN], const void *data, size_t len);

/* amp_sha256_batch hashes n independent messages: out[i] = SHA256(msg[i],
 * len[i]). Messages may have different lengths (a pair is interleaved while
 * both have blocks; the longer finishes alone) and may overlap each other;
 * out may not overlap the messages. n may be 0 (the arrays may then be NULL);
 * msg[i] may be NULL when len[i] is 0. Same output as n amp_sha256 calls. */
void amp_sha256_batch(uint8_t (*out)[AMP_SHA256_LEN], const uint8_t *const *msg,
                      const size_t *len, size_t n);

/* amp_sha256_update2 is amp_sha256_update(a, da, la) and amp_sha256_update(b,
 * db, lb), with the whole blocks the two have in common compressed two at a
 * time on SHA-NI (interleaved as in the batch: ~0.65x the time of the two
 * updates for long inputs). a and b must be distinct contexts; da may be NULL
 * when la is 0, db when lb is 0. Same result as the two updates, on either
 * implementation. Used for the HMACs of a burst (two onions, two frames). */
void amp_sha256_update2(amp_sha256_t *a, const void *da, size_t la, amp_sha256_t *b,
                        const void *db, size_t lb);

/* amp_sha256_update_n is amp_sha256_update(ctx[i], data[i], len[i]) for i <
 * n, with the whole blocks the contexts have in common compressed sixteen
 * streams at a time with AVX-512 when the implementation is "sha-ni+avx512"
 * and ten or more contexts are given (14.3 ns per block and stream on the Zen
 * 5 VM, against 31.3 for one SHA-NI stream: bench_crypto), else two at a
 * time as amp_sha256_update2. The contexts must
 * be distinct; data[i] may be NULL when len[i] is 0; n may be 0. Same result
 * as the n updates on every implementation. Used for the HMACs of a burst
 * (the onions of a peel chunk, the frames of an rx burst). */
void amp_sha256_update_n(amp_sha256_t *const *ctx, const void *const *data, const size_t *len,
                         size_t n);

/* amp_sha256_final_n is amp_sha256_final(ctx[i], out[i]) for i < n, with
 * the final blocks (one each, two for a context holding more than 55
 * buffered bytes) compressed through amp_sha256_update_n: sixteen at a time
 * on AVX-512 from ten contexts, else in SHA-NI pairs. For the many short
 * HMAC steps of a burst (key derivations, pads, finals), one SHA-NI
 * compression each otherwise. Contexts must be distinct; each is wiped; n
 * may be 0. Same digests as the n finals on every implementation. */
void amp_sha256_final_n(amp_sha256_t *const *ctx, uint8_t (*out)[AMP_SHA256_LEN], size_t n);
/* amp_sha256_impl names the implementation in use: "sha-ni+avx512" (SHA-NI
 * for one and two streams, AVX-512 for amp_sha256_update_n's sixteen),
 * "sha-ni" or "portable". Returns a static string. The first call (of any
 * function here) takes the environment variable AMP_SHA256 when it names one
 * of these (or "auto") that the CPU has; else it picks SHA-NI when CPUID
 * reports SHA, SSSE3 and SSE4.1, and adds AVX-512 when CPUID reports AVX512F
 * and AVX512BW and the OS saves the 512-bit registers (XCR0). */
const char *amp_sha256_impl(void);

/* amp_sha256_use selects an implementation by name ("sha-ni+avx512",
 * "sha-ni", "portable", "auto"). Returns AMP_OK, or AMP_ERR_STATE if the CPU lacks it or the name is
 * unknown. For tests and benchmarks. */
AMP_WARN_UNUSED int amp_sha256_use(const char *name);

/* Internal: shared by amp_sha256.c and amp_sha256_shani.c. Not for callers.
 *
 * amp_sha256_k_ is the 64 round constants (FIPS 180-4 4.2.2), 16-aligned.
 * amp_sha256_compress_shani_ runs nblocks 64-byte blocks through h with the
 * SHA extensions (the CPU must have SHA, SSSE3 and SSE4.1).
 * amp_sha256_x2_shani_ hashes two whole messages at once, their blocks
 * interleaved; amp_sha256_compress2_shani_ runs nblocks blocks of ba through
 * ha and of bb through hb, interleaved; same CPU requirement. */
extern const uint32_t amp_sha256_k_[64];
#if defined(__x86_64__)
void amp_sha256_compress_shani_(uint32_t h[8], const uint8_t *blocks, size_t nblocks);
void amp_sha256_x2_shani_(uint8_t out0[AMP_SHA256_LEN], const uint8_t *m0, size_t len0,
                          uint8_t out1[AMP_SHA256_LEN], const uint8_t *m1, size_t len1);
void amp_sha256_compress2_shani_(uint32_t ha[8], const uint8_t *ba, uint32_t hb[8],
                                 const uint8_t *bb, size_t nblocks);
void amp_sha256_compress16_avx512_(uint32_t *const h[16], const uint8_t *const blocks[16],
                                   size_t nblocks);
#endif

#endif /* AMP_SHA256_H */
