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

/* Children hashed per amp_sha256_batch call: 32, a peel burst's worth of
 * 1-shard sets, two passes of the sixteen AVX-512 lanes; ~7 KiB of stack. */
#define AMP_CHILD_CHUNK_ 32
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

/* One chunk of children (k <= AMP_CHILD_CHUNK_, each with its message built
 * and its set's index in set_of): preimages, their hashes, the compares
 * ANDed into their sets' ok (no early exit). */
static void verify_chunk_(uint8_t (*preimage)[32], const uint8_t (*hash)[32],
                          uint8_t (*msg)[AMP_CHILD_MSG_LEN_], const size_t *child,
                          const size_t *set_of, size_t k, int *ok) {
  uint8_t pre[AMP_CHILD_CHUNK_][32], got[AMP_CHILD_CHUNK_][32];
  const uint8_t *ptr[AMP_CHILD_CHUNK_] = {0};
  size_t len[AMP_CHILD_CHUNK_] = {0};
  for (size_t i = 0; i < k; i++) {
    ptr[i] = msg[i];
    len[i] = AMP_CHILD_MSG_LEN_;
  }
  amp_sha256_batch(pre, ptr, len, k);
  for (size_t i = 0; i < k; i++) {
    ptr[i] = pre[i];
    len[i] = 32;
  }
  amp_sha256_batch(got, ptr, len, k);
  for (size_t i = 0; i < k; i++) {
    ok[set_of[i]] &= amp_ct_eq(got[i], hash[child[i]], 32);
    memcpy(preimage[child[i]], pre[i], 32);
  }
  amp_wipe(pre, k * sizeof pre[0]);
  amp_wipe(got, k * sizeof got[0]);
}

size_t amp_child_verify_sets(uint8_t (*preimage)[32], const uint8_t (*share)[32],
                             const uint32_t *index, const uint8_t (*hash)[32],
                             const size_t *len, size_t nsets, int *ok) {
  uint8_t root[32], msg[AMP_CHILD_CHUNK_][AMP_CHILD_MSG_LEN_];
  size_t child[AMP_CHILD_CHUNK_], set_of[AMP_CHILD_CHUNK_], k = 0, ci = 0, good = 0;
  for (size_t j = 0; j < nsets; j++) {
    ok[j] = 1;
    amp_child_root(root, share + ci, len[j]);
    for (size_t t = 0; t < len[j]; t++, ci++) {
      amp_child_msg_(msg[k], root, share[ci], index[ci]);
      child[k] = ci;
      set_of[k++] = j;
      if (k == AMP_CHILD_CHUNK_) {
        verify_chunk_(preimage, hash, msg, child, set_of, k, ok);
        k = 0;
      }
    }
  }
  if (k) verify_chunk_(preimage, hash, msg, child, set_of, k, ok);
  amp_wipe(root, sizeof root);
  amp_wipe(msg, sizeof msg);
  ci = 0;
  for (size_t j = 0; j < nsets; j++) {
    if (ok[j]) good++;
    else amp_wipe(preimage + ci, len[j] * sizeof preimage[0]);
    ci += len[j];
  }
  return good;
}

int amp_child_verify(uint8_t (*preimage)[32], const uint8_t (*share)[32],
                     const uint32_t *index, const uint8_t (*hash)[32], size_t n) {
  int ok;
  return amp_child_verify_sets(preimage, share, index, hash, &n, 1, &ok) ? AMP_OK
                                                                          : AMP_ERR_MISMATCH;
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
