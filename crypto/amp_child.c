/* amp_child.c: AMP child derivation (LND amp/child.go formulas), set
 * reconstruction with batched SHA-256, and the sender's XOR split.
 *
 * Everything here is a secret (root, shares, preimages): no branch or index
 * depends on their bytes, comparisons are constant-time, and every stack
 * temporary is wiped before return. Nothing allocates: amp_child_verify walks
 * the set in chunks of AMP_CHILD_CHUNK_ so its buffers live on the stack.
 */
#include "amp_child.h"

#include <string.h>

#include "amp_sha256.h"

/* Children hashed per amp_sha256_batch call. 16 keeps the stack use near
 * 2 KiB and is well past the 2 streams SHA-NI interleaves. */
#define AMP_CHILD_CHUNK_ 16
#define AMP_CHILD_MSG_LEN_ 68

static inline void amp_child_msg_(uint8_t msg[AMP_CHILD_MSG_LEN_], const uint8_t root[32],
                                  const uint8_t share[32], uint32_t index) {
  memcpy(msg, root, 32);
  memcpy(msg + 32, share, 32);
  amp_put_be32(msg + 64, index);
}

void amp_child_derive(amp_child_t *out, const uint8_t root[32], const uint8_t share[32],
                      uint32_t index) {
  uint8_t msg[AMP_CHILD_MSG_LEN_];
  amp_child_msg_(msg, root, share, index);
  amp_sha256(out->preimage, msg, sizeof msg);
  amp_sha256(out->hash, out->preimage, 32);
  amp_wipe(msg, sizeof msg);
}

void amp_child_root(uint8_t root[32], const uint8_t (*share)[32], size_t n) {
  uint8_t acc[32];
  memcpy(acc, share[0], 32);
  for (size_t i = 1; i < n; i++)
    for (size_t k = 0; k < 32; k++) acc[k] ^= share[i][k];
  memcpy(root, acc, 32);
  amp_wipe(acc, sizeof acc);
}

int amp_child_verify(uint8_t (*preimage)[32], const uint8_t (*share)[32],
                     const uint32_t *index, const uint8_t (*hash)[32], size_t n) {
  uint8_t root[32];
  uint8_t msg[AMP_CHILD_CHUNK_][AMP_CHILD_MSG_LEN_];
  uint8_t got[AMP_CHILD_CHUNK_][32];
  const uint8_t *ptr[AMP_CHILD_CHUNK_];
  size_t len[AMP_CHILD_CHUNK_];
  int ok = 1;

  amp_child_root(root, share, n);
  for (size_t base = 0; base < n; base += AMP_CHILD_CHUNK_) {
    size_t k = n - base < AMP_CHILD_CHUNK_ ? n - base : AMP_CHILD_CHUNK_;
    /* Stage 1: all preimages of the chunk, one batch. */
    for (size_t i = 0; i < k; i++) {
      amp_child_msg_(msg[i], root, share[base + i], index[base + i]);
      ptr[i] = msg[i];
      len[i] = AMP_CHILD_MSG_LEN_;
    }
    amp_sha256_batch(preimage + base, ptr, len, k);
    /* Stage 2: all hashes of those preimages, one batch. */
    for (size_t i = 0; i < k; i++) {
      ptr[i] = preimage[base + i];
      len[i] = 32;
    }
    amp_sha256_batch(got, ptr, len, k);
    /* Stage 3: compare every one; no early exit, so the time does not say
     * which child (if any) was wrong. */
    for (size_t i = 0; i < k; i++) ok &= amp_ct_eq(got[i], hash[base + i], 32);
  }
  amp_wipe(root, sizeof root);
  amp_wipe(msg, sizeof msg);
  amp_wipe(got, sizeof got);
  if (!ok) {
    amp_wipe(preimage, n * sizeof preimage[0]);
    return AMP_ERR_MISMATCH;
  }
  return AMP_OK;
}

int amp_child_split(uint8_t (*share)[32], size_t n, const uint8_t root[32]) {
  uint8_t acc[32];
  memcpy(acc, root, 32);
  if (n > 1) {
    if (amp_random(share, (n - 1) * sizeof share[0]) != AMP_OK) {
      amp_wipe(share, (n - 1) * sizeof share[0]);
      amp_wipe(acc, sizeof acc);
      return AMP_ERR_RANDOM;
    }
    for (size_t i = 0; i + 1 < n; i++)
      for (size_t k = 0; k < 32; k++) acc[k] ^= share[i][k];
  }
  memcpy(share[n - 1], acc, 32);
  amp_wipe(acc, sizeof acc);
  return AMP_OK;
}
