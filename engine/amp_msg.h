/* amp_msg.h: the BOLT #2 HTLC messages ampd reads and writes.
 *
 * Each message is u16 type || payload, big-endian. A TLV extension stream
 * after the fixed fields is checked (TLV rules, unknown even types rejected)
 * and kept as a slice; encode writes it back unchanged.
 * Decoded messages point into the input buffer (onion, reason, tlv).
 * Cost: fixed-field copies, no allocation; the extension stream is walked
 * once (usually empty). update_add_htlc decode ~7 ns measured (the onion is
 * not copied). Thread-safe (no global state).
 *
 * Extension streams, per message (BOLT #2):
 *   update_add_htlc_tlvs: type 0 blinded_path (path_key, a 33-byte point)
 *     is known and must be exactly 33 bytes;
 *   update_fulfill_htlc_tlvs, update_fail_htlc_tlvs: type 1 attribution_data
 *     (odd: kept, not interpreted);
 *   update_fail_malformed_htlc: none defined; a stream is still accepted.
 * Every other even type is rejected, every other odd type kept in the slice.
 * tip has no extension: exactly 6 bytes.
 */
#ifndef AMP_MSG_H
#define AMP_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "amp_util.h"

#define AMP_MSG_UPDATE_ADD_HTLC 128
#define AMP_MSG_UPDATE_FULFILL_HTLC 130
#define AMP_MSG_UPDATE_FAIL_HTLC 131
#define AMP_MSG_UPDATE_FAIL_MALFORMED_HTLC 135
#define AMP_MSG_TIP 33001            /* ampd fabric control: u32 block height */

#define AMP_MSG_ONION_LEN 1366
#define AMP_MSG_MAX_LEN 65535        /* BOLT #1: a message fits a u16 length */
#define AMP_MSG_BADONION 0x8000      /* BOLT #4 failure code bit */

/* Sizes of the fixed parts, type included (the extension stream follows). */
#define AMP_MSG_ADD_LEN (2 + 32 + 8 + 8 + 32 + 4 + AMP_MSG_ONION_LEN) /* 1452 */
#define AMP_MSG_FULFILL_LEN (2 + 32 + 8 + 32)                          /* 74 */
#define AMP_MSG_FAIL_LEN (2 + 32 + 8 + 2)                              /* 44 + reason */
#define AMP_MSG_FAIL_MALFORMED_LEN (2 + 32 + 8 + 32 + 2)               /* 76 */
#define AMP_MSG_TIP_LEN (2 + 4)                                        /* 6 */

typedef struct {
  uint8_t channel_id[32];
  uint64_t id;
  uint64_t amount_msat;
  uint8_t payment_hash[32];
  uint32_t cltv_expiry;
  const uint8_t *onion;          /* 1366 bytes inside the input */
  const uint8_t *tlv;            /* update_add_htlc_tlvs (type 0: path key) */
  size_t tlv_len;
} amp_msg_add_t;

typedef struct {
  uint8_t channel_id[32];
  uint64_t id;
  uint8_t payment_preimage[32];
  const uint8_t *tlv;
  size_t tlv_len;
} amp_msg_fulfill_t;

typedef struct {
  uint8_t channel_id[32];
  uint64_t id;
  const uint8_t *reason;         /* the failure onion */
  uint16_t reason_len;
  const uint8_t *tlv;
  size_t tlv_len;
} amp_msg_fail_t;

typedef struct {
  uint8_t channel_id[32];
  uint64_t id;
  uint8_t sha256_of_onion[32];
  uint16_t failure_code;
  const uint8_t *tlv;            /* extension stream; set NULL/0 when none */
  size_t tlv_len;
} amp_msg_fail_malformed_t;

/* amp_msg_type returns the u16 type of msg, or AMP_ERR_TRUNCATED (len < 2). */
AMP_WARN_UNUSED int amp_msg_type(const uint8_t *msg, size_t len);

/* Decoders take the whole message including its type. They return AMP_OK,
 * or AMP_ERR_MSG (wrong type, truncated, longer than AMP_MSG_MAX_LEN, bad
 * TLV extension; the failure_code of fail_malformed must have the BADONION
 * bit). Bytes after the fixed fields are the extension stream: tlv points to
 * them (NULL when there are none). On error m is undefined. */
AMP_WARN_UNUSED int amp_msg_add_decode(amp_msg_add_t *m, const uint8_t *msg, size_t len);
AMP_WARN_UNUSED int amp_msg_fulfill_decode(amp_msg_fulfill_t *m, const uint8_t *msg, size_t len);
AMP_WARN_UNUSED int amp_msg_fail_decode(amp_msg_fail_t *m, const uint8_t *msg, size_t len);
AMP_WARN_UNUSED int amp_msg_fail_malformed_decode(amp_msg_fail_malformed_t *m,
                                                  const uint8_t *msg, size_t len);
/* amp_msg_tip_decode reads the fabric's tip control message (exactly
 * u16 33001 || u32 height). Returns AMP_OK or AMP_ERR_MSG. */
AMP_WARN_UNUSED int amp_msg_tip_decode(uint32_t *height, const uint8_t *msg, size_t len);

/* amp_msg_add_path_key finds type 0 (path_key) in a decoded update_add_htlc's
 * extension stream (as amp_msg_add_decode left it). Returns 1 and copies the
 * 33 bytes into out when present, 0 when absent. Does not check the point. */
int amp_msg_add_path_key(uint8_t out[33], const amp_msg_add_t *m);

/* Encoders write into out (capacity cap) and return the length, or
 * AMP_ERR_OVERFLOW, or AMP_ERR_MSG when m cannot make a valid message: a tlv
 * slice that the decoder would reject, a fail_malformed code without the
 * BADONION bit, or a message longer than AMP_MSG_MAX_LEN. tlv (and reason)
 * may be NULL when their length is 0. Encoding what a decoder produced gives
 * back the input byte for byte. */
AMP_WARN_UNUSED long amp_msg_add_encode(uint8_t *out, size_t cap, const amp_msg_add_t *m);
AMP_WARN_UNUSED long amp_msg_fulfill_encode(uint8_t *out, size_t cap, const amp_msg_fulfill_t *m);
AMP_WARN_UNUSED long amp_msg_fail_encode(uint8_t *out, size_t cap, const amp_msg_fail_t *m);
AMP_WARN_UNUSED long amp_msg_fail_malformed_encode(uint8_t *out, size_t cap,
                                                   const amp_msg_fail_malformed_t *m);
AMP_WARN_UNUSED long amp_msg_tip_encode(uint8_t *out, size_t cap, uint32_t height);

#endif /* AMP_MSG_H */
