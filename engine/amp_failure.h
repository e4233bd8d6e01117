/* amp_failure.h: the answers ampd sends for an HTLC, as wire messages.
 *
 * Failure messages (BOLT #4, the plaintext inside a failure onion):
 *   incorrect_or_unknown_payment_details  PERM|15, data u64 htlc_msat || u32 height
 *   mpp_timeout                           23, no data
 *   invalid_onion_payload                 PERM|22, data BigSize type || u16 offset
 *   unknown_next_peer                     PERM|10, no data
 *   temporary_node_failure                NODE|2, no data
 * and the three BOLT #2 answers: update_fulfill_htlc, update_fail_htlc (the
 * reason is a failure onion made with the hop's shared secret),
 * update_fail_malformed_htlc.
 *
 * Every function writes into a caller buffer and returns the length, or
 * AMP_ERR_OVERFLOW when it does not fit. Nothing allocates. Reentrant.
 * Cost: the failure onion is one HMAC over ~290 bytes plus a ChaCha20 stream
 * (~2 us); the rest are copies.
 */
#ifndef AMP_FAILURE_H
#define AMP_FAILURE_H

#include <stddef.h>
#include <stdint.h>

#include "amp_util.h"

#define AMP_FAIL_UNKNOWN_NEXT_PEER (0x4000 | 10)

/* Largest failure message ampd builds (fits amp_store_intent_t.fail_msg). */
#define AMP_FAILURE_MSG_MAX 64
/* Buffer size that holds any answer message ampd emits. */
#define AMP_ANSWER_MAX 1024

/* amp_failure_msg_details writes incorrect_or_unknown_payment_details with
 * htlc_msat and height (14 bytes). out has >= 14 bytes. Returns 14. */
size_t amp_failure_msg_details(uint8_t *out, uint64_t htlc_msat, uint32_t height);

/* amp_failure_msg_code writes a failure message with no data (2 bytes). */
size_t amp_failure_msg_code(uint8_t *out, uint16_t code);

/* amp_failure_msg_invalid_payload writes invalid_onion_payload with the
 * offending TLV type and byte offset (out has >= 13 bytes). Returns 5..13. */
size_t amp_failure_msg_invalid_payload(uint8_t *out, uint64_t type, uint16_t offset);

/* amp_answer_fail writes update_fail_htlc for (channel_id, htlc_id) whose
 * reason is the failure onion of msg built with shared secret ss. */
AMP_WARN_UNUSED long amp_answer_fail(uint8_t *out, size_t cap, const uint8_t channel_id[32],
                                     uint64_t htlc_id, const uint8_t ss[32],
                                     const uint8_t *msg, size_t msg_len);

/* amp_answer_fulfill writes update_fulfill_htlc. */
AMP_WARN_UNUSED long amp_answer_fulfill(uint8_t *out, size_t cap, const uint8_t channel_id[32],
                                        uint64_t htlc_id, const uint8_t preimage[32]);

/* amp_answer_malformed writes update_fail_malformed_htlc (failure_code must
 * have the BADONION bit). */
AMP_WARN_UNUSED long amp_answer_malformed(uint8_t *out, size_t cap,
                                          const uint8_t channel_id[32], uint64_t htlc_id,
                                          const uint8_t sha256_of_onion[32],
                                          uint16_t failure_code);

#endif /* AMP_FAILURE_H */
