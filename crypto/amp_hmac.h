/* amp_hmac.h: HMAC-SHA256 (RFC 2104, vectors RFC 4231).
 * Keys of any length; longer than 64 bytes are hashed first. Reentrant.
 * Cost: two SHA-256 compressions for the key pads (cacheable with a kept
 * context: copy an initialized amp_hmac_t to reuse a key) plus the message. */
#ifndef AMP_HMAC_H
#define AMP_HMAC_H

#include "amp_sha256.h"

typedef struct {
  amp_sha256_t inner;
  amp_sha256_t outer;
} amp_hmac_t;

void amp_hmac_init(amp_hmac_t *ctx, const void *key, size_t key_len);
void amp_hmac_update(amp_hmac_t *ctx, const void *data, size_t len);
/* amp_hmac_final writes the 32-byte tag and wipes ctx. */
void amp_hmac_final(amp_hmac_t *ctx, uint8_t out[AMP_SHA256_LEN]);
void amp_hmac_sha256(uint8_t out[AMP_SHA256_LEN], const void *key, size_t key_len,
                     const void *msg, size_t msg_len);

#endif /* AMP_HMAC_H */
