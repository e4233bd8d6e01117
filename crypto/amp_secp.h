/* amp_secp.h: the secp256k1 glue (over libsecp256k1).
 *
 * One context for the process, created and randomized (blinding) by
 * amp_secp_init from system randomness, then shared read-only by all threads.
 * Secret keys passed in are never copied except into stack temporaries that
 * are wiped before return.
 *
 * Cost, measured on this machine class (2-core AMD EPYC VM, libsecp256k1
 * 0.2.0, quiet machine; busy runs are up to 1.5x slower): pubkey parse ~4.8 us
 * (a square root), ECDH ~39 us (constant-time multiply + SHA-256), pubkey
 * tweak_mul ~32 us (libsecp's variable-time multiply: the tweak is treated as
 * public), pubkey_create ~21 us (precomputed base-point table), seckey
 * tweak_mul ~0.08 us. These dominate a peel: see amp_sphinx.h and
 * bench_crypto.
 *
 * Failure modes: a function that fails leaves its in/out argument unchanged
 * (tweaks) or zeroed (parse, create, ecdh outputs). libsecp256k1's default
 * illegal-argument callback aborts the process: it fires only on a broken
 * precondition (a NULL pointer, or an amp_pubkey_t not made by parse or
 * create), never on bad input bytes.
 * Thread safety: every function is reentrant once amp_secp_init succeeded.
 */
#ifndef AMP_SECP_H
#define AMP_SECP_H

#include <stdint.h>

#include "amp_util.h"

#define AMP_PUBKEY_LEN 33

/* A parsed public key (libsecp256k1's internal form, 64 bytes, opaque). */
typedef struct {
  uint8_t data[64];
} amp_pubkey_t;

/* amp_secp_init creates the shared context once. Idempotent, thread-safe
 * (pthread_once). Returns AMP_OK, AMP_ERR_RANDOM or AMP_ERR_NOMEM. Every other
 * function requires it to have succeeded. */
AMP_WARN_UNUSED int amp_secp_init(void);

/* amp_secp_pubkey_parse parses a 33-byte compressed key.
 * Returns AMP_OK or AMP_ERR_BAD_KEY (bad prefix, x not on the curve). */
AMP_WARN_UNUSED int amp_secp_pubkey_parse(amp_pubkey_t *pk, const uint8_t in[AMP_PUBKEY_LEN]);

/* amp_secp_pubkey_serialize writes the 33-byte compressed form. pk must come
 * from a successful parse, create or tweak (an all-zero pk aborts). */
void amp_secp_pubkey_serialize(uint8_t out[AMP_PUBKEY_LEN], const amp_pubkey_t *pk);

/* amp_secp_pubkey_create: pk = seckey * G. Returns AMP_OK or AMP_ERR_BAD_KEY
 * (zero or >= group order). */
AMP_WARN_UNUSED int amp_secp_pubkey_create(amp_pubkey_t *pk, const uint8_t seckey[32]);

/* amp_secp_seckey_verify returns AMP_OK if seckey is a valid secret key. */
AMP_WARN_UNUSED int amp_secp_seckey_verify(const uint8_t seckey[32]);

/* amp_secp_ecdh writes the BOLT #4 shared secret: SHA256 of the compressed
 * point seckey * pk (hashed with amp_sha256, not libsecp's portable SHA-256).
 * Returns AMP_OK or AMP_ERR_BAD_KEY (secret zeroed). Constant-time in seckey. */
AMP_WARN_UNUSED int amp_secp_ecdh(uint8_t secret[32], const amp_pubkey_t *pk,
                                  const uint8_t seckey[32]);

/* amp_secp_ecdh_point writes the compressed point seckey * pk (33 bytes: a
 * secret: wipe it) whose SHA-256 is amp_secp_ecdh's result, for callers that
 * hash many in one batch (amp_sha256_batch). Returns AMP_OK or
 * AMP_ERR_BAD_KEY (point zeroed). Constant-time in seckey. */
AMP_WARN_UNUSED int amp_secp_ecdh_point(uint8_t point[33], const amp_pubkey_t *pk,
                                        const uint8_t seckey[32]);

/* amp_secp_pubkey_tweak_mul: pk = tweak * pk (next ephemeral key of a forward).
 * Returns AMP_OK or AMP_ERR_BAD_KEY (tweak zero or >= order; pk unchanged).
 * Variable time in tweak (libsecp treats tweaks as public). */
AMP_WARN_UNUSED int amp_secp_pubkey_tweak_mul(amp_pubkey_t *pk, const uint8_t tweak[32]);

/* amp_secp_seckey_tweak_mul: seckey = tweak * seckey mod n (the sender's
 * ephemeral key chain). Returns AMP_OK or AMP_ERR_BAD_KEY (seckey invalid, or
 * tweak zero or >= order; seckey unchanged). */
AMP_WARN_UNUSED int amp_secp_seckey_tweak_mul(uint8_t seckey[32], const uint8_t tweak[32]);

#endif /* AMP_SECP_H */
