/* amp_child.h: AMP child derivation, set reconstruction, root splitting
 * (the formulas of LND's amp/ package; vectors: shared/vectors/amp-derivation.txt).
 *
 *   root            = share_1 ^ ... ^ share_n
 *   child_preimage  = SHA256(root || share || be32(child_index))   (68 bytes)
 *   child_hash      = SHA256(child_preimage)
 *
 * Shares, roots and preimages are secrets: this module compares them in
 * constant time and wipes its temporaries.
 */
#ifndef AMP_CHILD_H
#define AMP_CHILD_H

#include <stddef.h>
#include <stdint.h>

#include "amp_util.h"

typedef struct {
  uint8_t preimage[32];
  uint8_t hash[32];
} amp_child_t;

/* amp_child_derive derives one child. Cost: three SHA-256 compressions (68
 * bytes = 2 blocks, then 32 bytes = 1 block): ~150 ns measured (SHA-NI). */
void amp_child_derive(amp_child_t *out, const uint8_t root[32], const uint8_t share[32],
                      uint32_t index);

/* amp_child_root XORs n shares into root. n >= 1. */
void amp_child_root(uint8_t root[32], const uint8_t (*share)[32], size_t n);

/* amp_child_verify reconstructs a set: root = XOR of the n shares, then for
 * each i derives preimage[i] from (root, share[i], index[i]) with batched
 * SHA-256 and checks SHA256(preimage[i]) == hash[i] in constant time.
 * Returns AMP_OK if every hash matches (preimage[] then holds the n
 * preimages), AMP_ERR_MISMATCH otherwise (preimage[] is wiped). n >= 1.
 * Runs in chunks of 32 children on the stack (no allocation): one batch for
 * the preimages, one for the hashes. The comparisons are all made (no early
 * exit), so the time does not say which child failed.
 * Cost: 3 compressions per child, batched (sixteen lanes on AVX-512 from ten
 * children, else SHA-NI pairs); measured ~110 ns per child for n = 16 on
 * SHA-NI pairs (vs ~150 ns for amp_child_derive one by one). */
AMP_WARN_UNUSED int amp_child_verify(uint8_t (*preimage)[32], const uint8_t (*share)[32],
                                     const uint32_t *index, const uint8_t (*hash)[32],
                                     size_t n);

/* amp_child_verify_sets is amp_child_verify for nsets sets at once: set j
 * has len[j] >= 1 children, laid out one set after the other in share,
 * index, hash and preimage. Every set's children go through the same
 * SHA-256 batches (amp_sha256_batch: sixteen lanes on AVX-512 from ten
 * children), so the sets a burst completes cost what one set of as many
 * children would (1-shard sets: ~150 ns each alone). ok[j] is 1 if every
 * hash of set j matches (its preimages written), else 0 (its preimages
 * wiped); every comparison is made. Returns the number of sets that
 * matched. nsets may be 0. amp_child_verify is this with one set. */
size_t amp_child_verify_sets(uint8_t (*preimage)[32], const uint8_t (*share)[32],
                             const uint32_t *index, const uint8_t (*hash)[32],
                             const size_t *len, size_t nsets, int *ok);

/* amp_child_split is the sender side: writes n shares whose XOR is root, the
 * first n-1 random (amp_random). Returns AMP_OK or AMP_ERR_RANDOM. n >= 1. */
AMP_WARN_UNUSED int amp_child_split(uint8_t (*share)[32], size_t n, const uint8_t root[32]);

#endif /* AMP_CHILD_H */
