/* amp_hmac.h: HMAC-SHA256 (RFC 2104, vectors RFC 4231).
 * Keys of any length; longer than 64 bytes are hashed first. Reentrant; uses
 * the SHA-256 implementation amp_sha256 chose. Nothing allocates.
 * Cost: four SHA-256 compressions for a message up to 55 bytes (two of them
 * for the key pads, cacheable with a kept context: copy an initialized
 * amp_hmac_t to reuse a key) plus one per further 64 bytes. Measured
 * (2-vCPU AMD EPYC VM): 32-byte key and message ~195 ns SHA-NI, ~610 ns
 * portable; 1366-byte message ~900 ns SHA-NI, ~3.5 us portable. */
#ifndef AMP_HMAC_H
#define AMP_HMAC_H

#include "amp_sha256.h"

typedef struct {
  amp_sha256_t inner;
  amp_sha256_t outer;
} amp_hmac_t;

/* amp_hmac_init starts a MAC under key (key_len may be 0, key then may be
 * NULL). ctx holds only the padded-key hash states, not the key; it is a
 * secret all the same: amp_wipe a kept copy when done with it. */
void amp_hmac_init(amp_hmac_t *ctx, const void *key, size_t key_len);
/* amp_hmac_update absorbs len bytes of message (len may be 0, data then may
 * be NULL). */
void amp_hmac_update(amp_hmac_t *ctx, const void *data, size_t len);
/* amp_hmac_update2 is amp_hmac_update(a, da, la) and amp_hmac_update(b, db,
 * lb) through amp_sha256_update2 (two MACs of a burst at ~0.65x the time on
 * SHA-NI). a and b must be distinct. */
void amp_hmac_update2(amp_hmac_t *a, const void *da, size_t la, amp_hmac_t *b, const void *db,
                      size_t lb);
/* amp_hmac_update_n is amp_hmac_update(ctx[i], data[i], len[i]) for i < n
 * through amp_sha256_update_n (sixteen MACs at a time on AVX-512: their
 * common blocks in ~0.6x the time of paired SHA-NI, a 1332-byte MAC in ~0.8x;
 * its pads and finals batch through amp_hmac_init_n and amp_hmac_final_n).
 * The contexts must be distinct. */
void amp_hmac_update_n(amp_hmac_t *const *ctx, const void *const *data, const size_t *len,
                       size_t n);
/* amp_hmac_init_n is amp_hmac_init(ctx[i], key[i], key_len) for i < n: keys
 * of one length key_len <= 64 (0: the key pointers are not read), their pad
 * blocks compressed through amp_sha256_update_n (sixteen at a time on
 * AVX-512). The contexts must be distinct. Cost: two compressions per MAC,
 * batched. */
void amp_hmac_init_n(amp_hmac_t *const *ctx, const uint8_t *const *key, size_t key_len,
                     size_t n);
/* amp_hmac_final_n is amp_hmac_final(ctx[i], out[i]) for i < n, the inner
 * and the outer finals each through amp_sha256_final_n. Wipes the contexts;
 * distinct contexts. */
void amp_hmac_final_n(amp_hmac_t *const *ctx, uint8_t (*out)[AMP_SHA256_LEN], size_t n);
/* amp_hmac_final writes the 32-byte tag and wipes ctx. */
void amp_hmac_final(amp_hmac_t *ctx, uint8_t out[AMP_SHA256_LEN]);
/* amp_hmac_sha256 is init + update + final: out = HMAC-SHA256(key, msg).
 * To truncate a tag, compare a prefix of out (with amp_ct_eq). */
void amp_hmac_sha256(uint8_t out[AMP_SHA256_LEN], const void *key, size_t key_len,
                     const void *msg, size_t msg_len);

#endif /* AMP_HMAC_H */
