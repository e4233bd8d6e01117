/* amp_sphinx.h: BOLT #4 onion routing (Sphinx): peel, build, failure onions.
 *
 * Onion packet (1366 bytes): version(1)=0 || ephemeral pubkey(33) ||
 * hop_payloads(1300) || hmac(32). Each hop payload is BigSize(len) || TLV
 * stream || hmac(32) of the next hop (all zero at the final hop).
 *
 * Keys of a hop with shared secret ss: rho, mu, um, ammag, pad =
 * HMAC-SHA256(key=ascii name, msg=ss). Streams are ChaCha20 with a zero nonce.
 *
 * Peel (receiver): ss = ECDH(node key, ephemeral); check HMAC-SHA256(mu,
 * hop_payloads || associated_data) == hmac (constant time); decrypt
 * hop_payloads || 1300 zeros with the rho stream (2600 bytes); read the
 * payload; for a forward, next ephemeral = ephemeral * SHA256(ephemeral || ss).
 * A peel that fails reports the BOLT #4 failure code to send back in
 * update_fail_malformed_htlc with sha256_of_onion.
 *
 * Payload format: TLV only. The BigSize length must be minimal and at least
 * 2; length 0 (the legacy fixed 65-byte "realm 0" payload) is NOT supported
 * and, like the reserved length 1, is AMP_ERR_PAYLOAD. The TLV stream itself
 * is not parsed here (that is the caller's, with amp_tlv.h).
 *
 * Cost per HTLC, measured (2-core AMD EPYC VM, SHA-NI, quiet machine; a busy
 * machine is up to 1.5x slower): final peel ~46 us = parse 4.8 + ECDH 39 +
 * ~2.5 us of HMAC, ChaCha20 (1300 bytes: a final hop skips the second half)
 * and SHA-256; forward peel ~78 us (adds tweak_mul 32 us, the other 1300
 * stream bytes, the blinding hash); a failed peel ~46 us (sha256_of_onion
 * instead of the decrypt). peel_burst costs the same per onion today (the
 * curve work is one onion at a time in libsecp); its stages keep the code and
 * data of each stage hot. next_onion ~20 ns. build of 2 hops ~135 us.
 * fail_create ~1.2 us, fail_wrap ~0.6 us (292-byte packet). Nothing allocates.
 * Thread safety: reentrant; amp_secp_init must have succeeded.
 */
#ifndef AMP_SPHINX_H
#define AMP_SPHINX_H

#include <stddef.h>
#include <stdint.h>

#include "amp_secp.h"
#include "amp_util.h"

#define AMP_ONION_LEN 1366
#define AMP_ONION_PAYLOADS_LEN 1300
#define AMP_ONION_HMAC_LEN 32

/* BOLT #4 failure codes a peel can produce (for update_fail_malformed_htlc). */
#define AMP_FAIL_BADONION 0x8000
#define AMP_FAIL_PERM 0x4000
#define AMP_FAIL_NODE 0x2000
#define AMP_FAIL_UPDATE 0x1000
#define AMP_FAIL_INVALID_ONION_VERSION (AMP_FAIL_BADONION | AMP_FAIL_PERM | 4)
#define AMP_FAIL_INVALID_ONION_HMAC (AMP_FAIL_BADONION | AMP_FAIL_PERM | 5)
#define AMP_FAIL_INVALID_ONION_KEY (AMP_FAIL_BADONION | AMP_FAIL_PERM | 6)
/* Failures sent inside a failure onion (update_fail_htlc). */
#define AMP_FAIL_INVALID_ONION_PAYLOAD (AMP_FAIL_PERM | 22)
#define AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS (AMP_FAIL_PERM | 15)
#define AMP_FAIL_MPP_TIMEOUT 23
#define AMP_FAIL_TEMPORARY_NODE_FAILURE (AMP_FAIL_NODE | 2)

/* The result of peeling one onion. Large (the 2600-byte decrypted stream):
 * workers keep an array of these per burst, allocated at start. */
typedef struct {
  int err;                       /* AMP_OK or the amp_err_t of the failure */
  uint16_t failure_code;         /* 0, or AMP_FAIL_INVALID_ONION_* on failure */
  uint8_t is_final;              /* next hmac is all zero */
  uint16_t dec_len;              /* bytes of dec decrypted: a final hop stops
                                    after its payload and next hmac */
  uint16_t shift;                /* BigSize len + payload + hmac: the next
                                    hop_payloads are dec[shift .. shift+1300] */
  uint8_t sha256_of_onion[32];   /* set on failure, for update_fail_malformed */
  uint8_t shared_secret[32];     /* valid when err == AMP_OK or AMP_ERR_PAYLOAD
                                    (zero otherwise); a secret: wipe it when the
                                    HTLC is resolved */
  uint8_t next_hmac[32];
  const uint8_t *payload;        /* TLV stream (no length prefix), points into
                                    this struct's dec: re-point it after
                                    copying the struct (dec + shift - 32 -
                                    payload_len) */
  size_t payload_len;
  uint8_t next_ephemeral[AMP_PUBKEY_LEN]; /* forwards only (is_final == 0) */
  uint8_t dec[2 * AMP_ONION_PAYLOADS_LEN]; /* decrypted hop_payloads || zeros;
                                    the second half is filled for forwards only */
} amp_sphinx_hop_t;

/* amp_sphinx_derive_key writes HMAC-SHA256(key = name, msg = ss): the BOLT #4
 * key of type name ("rho", "mu", "um", "ammag", "pad"; no NUL in the key). */
void amp_sphinx_derive_key(uint8_t out[32], const char *name, const uint8_t ss[32]);

/* amp_sphinx_peel peels one onion with the node's secret key.
 * assoc is the associated data (the HTLC's payment_hash, 32 bytes in
 * Lightning; any length accepted; NULL if assoc_len is 0). On success returns
 * AMP_OK and fills out. On failure returns, in the order checked:
 *   AMP_ERR_ONION_VERSION  version != 0       failure_code invalid_onion_version
 *   AMP_ERR_ONION_KEY      key not parseable  failure_code invalid_onion_key
 *   AMP_ERR_BAD_KEY        node_key invalid   failure_code 0 (a configuration
 *                          error: check the key once with amp_secp_seckey_verify)
 *   AMP_ERR_ONION_HMAC     HMAC mismatch      failure_code invalid_onion_hmac
 *   AMP_ERR_PAYLOAD        after a good HMAC, the BigSize length is
 *                          non-minimal, 0, 1, or payload + hmac run past the
 *                          1300 bytes: failure_code 0; shared_secret is kept so
 *                          the caller answers invalid_onion_payload (PERM|22)
 *                          in a failure onion
 * and every failure sets sha256_of_onion = SHA256(the 1366 bytes) and leaves
 * payload NULL. For a forward (is_final == 0) it computes next_ephemeral (one
 * tweak_mul; the ~2^-128 chance of an invalid blinding factor is reported as
 * AMP_ERR_ONION_KEY). out is ~2.8 KB: keep it in memory set aside at start.
 * Constant-time in node_key and shared_secret (ECDH, HMAC compare); variable
 * time on public data. The blinding factor (a hash of shared_secret) goes
 * through libsecp's variable-time tweak_mul, as in other implementations. */
AMP_WARN_UNUSED int amp_sphinx_peel(amp_sphinx_hop_t *out, const uint8_t node_key[32],
                                    const uint8_t *assoc, size_t assoc_len,
                                    const uint8_t onion[AMP_ONION_LEN]);

/* amp_sphinx_peel_burst peels n onions stage by stage (all parses, all ECDHs,
 * all HMACs, all ChaCha20s, all payload reads, then for the forwards one
 * batched SHA-256 of the blinding factors and the tweak_muls) with the same
 * results as n calls of amp_sphinx_peel. assoc[i] is 32 bytes. Each out[i].err
 * says how it went. Any n (0 does nothing): it works in chunks of 32 with its
 * temporaries (~6 KB) on the stack.
 * Returns the nanoseconds (CLOCK_MONOTONIC) the parse and ECDH stages took:
 * the crypto ceiling's own work (1 / (pubkey parse + ECDH)), timed in place,
 * so a caller can set it against its own busy time measured over the same
 * seconds (the share is immune to the machine's speed drifting between a
 * separate ceiling run and the real one). Two clock reads per chunk of 32
 * (~50 ns); 0 for n == 0. */
uint64_t amp_sphinx_peel_burst(amp_sphinx_hop_t *out, size_t n, const uint8_t node_key[32],
                               const uint8_t *const *assoc, const uint8_t *const *onion);

/* amp_sphinx_next_onion writes the onion to forward after a successful peel
 * of a non-final hop: version 0 || next_ephemeral || dec[shift .. shift+1300]
 * || next_hmac. Precondition (not checked): hop->err == AMP_OK and
 * hop->is_final == 0. */
void amp_sphinx_next_onion(uint8_t out[AMP_ONION_LEN], const amp_sphinx_hop_t *hop);

/* amp_sphinx_build is the sender side: builds the onion for n_hops hops
 * (1..27 fitting in 1300 bytes) from session_key, the hops' compressed
 * pubkeys and their TLV payloads (without the BigSize length, which this adds),
 * with filler generation. The initial hop_payloads are the ChaCha20 stream of
 * the key "pad" of session_key (as in the spec and its vector).
 * shared_secrets, if non-NULL, receives each hop's shared secret (for decoding
 * failures). Returns AMP_OK, AMP_ERR_RANGE (n_hops 0 or > 27),
 * AMP_ERR_LENGTH (a payload shorter than 2 bytes: lengths 0 and 1 are
 * reserved), AMP_ERR_OVERFLOW (payloads do not fit), AMP_ERR_BAD_KEY
 * (session key or a hop key invalid). On failure onion is not written. */
AMP_WARN_UNUSED int amp_sphinx_build(uint8_t onion[AMP_ONION_LEN], const uint8_t session_key[32],
                                     const uint8_t (*pubkeys)[AMP_PUBKEY_LEN],
                                     const uint8_t *const *payloads, const size_t *payload_lens,
                                     size_t n_hops, const uint8_t *assoc, size_t assoc_len,
                                     uint8_t (*shared_secrets)[32]);

/* Failure onions (BOLT #4 "Returning Errors").
 * Packet: hmac(32) || failure_len(u16) || failuremsg || pad_len(u16) || pad,
 * then XOR with the ammag stream. The failing hop creates it; every earlier hop
 * wraps it (XOR with its own ammag stream). */

/* Minimum total of failuremsg + pad the creator pads to (spec: 256). */
#define AMP_FAIL_MIN_PAD 256
/* The largest packet this module makes or decodes. */
#define AMP_FAIL_MAX_LEN 2048

/* amp_sphinx_fail_create builds the packet at the failing hop. msg is the
 * failure message (u16 code || data). Pads failuremsg + pad to
 * AMP_FAIL_MIN_PAD (no pad for a longer message). Writes into out (capacity
 * cap) and returns the packet length (292 for a message of <= 256 bytes), or
 * AMP_ERR_OVERFLOW (cap too small, or the packet over AMP_FAIL_MAX_LEN). */
AMP_WARN_UNUSED long amp_sphinx_fail_create(uint8_t *out, size_t cap, const uint8_t ss[32],
                                            const uint8_t *msg, size_t msg_len);

/* amp_sphinx_fail_wrap applies one hop's obfuscation in place (XOR with the
 * ammag stream of ss; applying it twice undoes it). */
void amp_sphinx_fail_wrap(uint8_t *pkt, size_t len, const uint8_t ss[32]);

/* amp_sphinx_fail_decode_var is the sender side: unwraps with each hop's
 * shared secret in order until a hop's HMAC matches. On success returns AMP_OK,
 * sets *hop_index and points *msg, *msg_len at the failure message inside pkt
 * (which is unwrapped in place). Accepts any consistent layout: packets
 * padded past 256 (the BOLT #4 markdown vector pads to 1060) and unpadded.
 * Returns AMP_ERR_FAIL_HMAC if no hop matches (pkt is then unwrapped by every
 * hop), AMP_ERR_LENGTH if len < 36 or > AMP_FAIL_MAX_LEN or the matched
 * packet's lengths are inconsistent (32 + 2 + failure_len + 2 + pad_len must
 * be len). Variable time: it stops at the matching hop (the spec's "SHOULD
 * continue decrypting until 20 times" is not done). */
AMP_WARN_UNUSED int amp_sphinx_fail_decode_var(size_t *hop_index, const uint8_t **msg,
                                               size_t *msg_len, uint8_t *pkt, size_t len,
                                               const uint8_t (*shared_secrets)[32],
                                               size_t n_hops);

#endif /* AMP_SPHINX_H */
