/* amp_chacha20.h: ChaCha20 (RFC 8439: 256-bit key, 96-bit nonce, 32-bit block
 * counter). BOLT #4 uses it with a zero nonce as a stream generator (rho, mu,
 * um, ammag, pad keys). Reentrant; constant-time. Cost: ~1.5 ns/byte portable. */
#ifndef AMP_CHACHA20_H
#define AMP_CHACHA20_H

#include <stddef.h>
#include <stdint.h>

/* amp_chacha20_block writes the 64-byte block for (key, counter, nonce). */
void amp_chacha20_block(uint8_t out[64], const uint8_t key[32], uint32_t counter,
                        const uint8_t nonce[12]);

/* amp_chacha20_xor: out[i] = in[i] ^ keystream[i], keystream starting at block
 * counter. out may equal in. len may be 0. */
void amp_chacha20_xor(uint8_t *out, const uint8_t *in, size_t len, const uint8_t key[32],
                      const uint8_t nonce[12], uint32_t counter);

/* amp_chacha20_stream writes len bytes of keystream (counter 0, zero nonce):
 * BOLT #4's generateCipherStream. */
void amp_chacha20_stream(uint8_t *out, size_t len, const uint8_t key[32]);

#endif /* AMP_CHACHA20_H */
