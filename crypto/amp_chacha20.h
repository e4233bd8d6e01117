/* amp_chacha20.h: ChaCha20 (RFC 8439: 256-bit key, 96-bit nonce, 32-bit block
 * counter). BOLT #4 uses it with a zero nonce as a stream generator (rho, mu,
 * um, ammag, pad keys). Reentrant; constant-time; nothing allocates; key
 * material left on the stack is wiped.
 * The block counter wraps from 2^32-1 to 0 with the nonce unchanged (RFC 8439
 * leaves this to the implementation): do not ask for more than 256 GiB of
 * keystream under one key and nonce.
 * Cost, measured (2-vCPU AMD EPYC VM, gcc 12 -O2): portable ~1.25 ns/byte
 * (~85 ns per 64-byte block); AVX2 ~0.45 ns/byte from 512 bytes up (1366-byte
 * onion stream ~660 ns vs ~1.7 us portable; 2600 bytes ~1.15 us). Runs of up
 * to 128 bytes take the portable blocks either way. */
#ifndef AMP_CHACHA20_H
#define AMP_CHACHA20_H

#include <stddef.h>
#include <stdint.h>

#include "amp_util.h"

/* amp_chacha20_block writes the 64-byte keystream block for (key, counter,
 * nonce) (RFC 8439 2.3). */
void amp_chacha20_block(uint8_t out[64], const uint8_t key[32], uint32_t counter,
                        const uint8_t nonce[12]);

/* amp_chacha20_xor: out[i] = in[i] ^ keystream[i], keystream starting at block
 * counter. out may equal in. len may be 0. */
void amp_chacha20_xor(uint8_t *out, const uint8_t *in, size_t len, const uint8_t key[32],
                      const uint8_t nonce[12], uint32_t counter);

/* amp_chacha20_stream writes len bytes of keystream (counter 0, zero nonce):
 * BOLT #4's generateCipherStream. */
void amp_chacha20_stream(uint8_t *out, size_t len, const uint8_t key[32]);

/* amp_chacha20_impl names the implementation amp_chacha20_xor and
 * amp_chacha20_stream use: "avx2" (eight blocks per step, chosen by CPUID when
 * present) or "portable". amp_chacha20_block is always portable. */
const char *amp_chacha20_impl(void);

/* amp_chacha20_wide_len returns how many bytes one amp_chacha20_xor call
 * makes for about the price of two blocks: 512 on "avx2" (one eight-block
 * pass, ~2 single blocks' time), 64 on "portable" (a block). For callers
 * that need a short prefix now and maybe more later (a final hop's payload):
 * one wide call instead of a block and then two or three more. */
size_t amp_chacha20_wide_len(void);

/* amp_chacha20_use selects an implementation by name ("avx2", "portable",
 * "auto"). Returns AMP_OK, or AMP_ERR_STATE if the CPU lacks it or the name
 * is unknown. Process-wide, for tests and benchmarks: not to be called while
 * other threads encrypt. */
AMP_WARN_UNUSED int amp_chacha20_use(const char *name);

#endif /* AMP_CHACHA20_H */
