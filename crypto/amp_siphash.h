/* amp_siphash.h: the keyed hash of ampd's in-memory tables (header-only).
 *
 * SipHash-1-3 rounds over n 64-bit words: one compression round per word,
 * the word count as the last block, three finalization rounds. Keys of the
 * tables are fixed-size, so there is no byte tail. Keyed with a random secret
 * per process (amp_random): set_ids, onion tags and channel ids come from
 * senders and could otherwise be chosen to collide in one bucket.
 *
 * Not a MAC and not for anything that leaves the process: words are loaded in
 * host order (amp_siphash_load64).
 * Cost: ~14 instructions per round; 2 words ~ 90, 5 words ~ 130 instructions.
 * Inline so that constant word counts unroll. Reentrant.
 */
#ifndef AMP_SIPHASH_H
#define AMP_SIPHASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
  uint64_t k0, k1;
} amp_sipkey_t;

static inline uint64_t amp_siphash_rotl_(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

#define AMP_SIPROUND_(v0, v1, v2, v3)                                          \
  do {                                                                         \
    v0 += v1; v1 = amp_siphash_rotl_(v1, 13); v1 ^= v0; v0 = amp_siphash_rotl_(v0, 32); \
    v2 += v3; v3 = amp_siphash_rotl_(v3, 16); v3 ^= v2;                        \
    v0 += v3; v3 = amp_siphash_rotl_(v3, 21); v3 ^= v0;                        \
    v2 += v1; v1 = amp_siphash_rotl_(v1, 17); v1 ^= v2; v2 = amp_siphash_rotl_(v2, 32); \
  } while (0)

/* amp_siphash_words hashes n 64-bit words w[0..n) under key k. n may be 0. */
static inline uint64_t amp_siphash_words(const amp_sipkey_t *k, const uint64_t *w, size_t n) {
  uint64_t v0 = k->k0 ^ 0x736f6d6570736575ull, v1 = k->k1 ^ 0x646f72616e646f6dull;
  uint64_t v2 = k->k0 ^ 0x6c7967656e657261ull, v3 = k->k1 ^ 0x7465646279746573ull;
  for (size_t i = 0; i < n; i++) {
    v3 ^= w[i];
    AMP_SIPROUND_(v0, v1, v2, v3);
    v0 ^= w[i];
  }
  uint64_t b = (uint64_t)(8 * n) << 56;
  v3 ^= b;
  AMP_SIPROUND_(v0, v1, v2, v3);
  v0 ^= b;
  v2 ^= 0xff;
  AMP_SIPROUND_(v0, v1, v2, v3);
  AMP_SIPROUND_(v0, v1, v2, v3);
  AMP_SIPROUND_(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

/* amp_siphash_load64 reads 8 bytes in host order (hashes never leave the
 * process). */
static inline uint64_t amp_siphash_load64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

#endif /* AMP_SIPHASH_H */
