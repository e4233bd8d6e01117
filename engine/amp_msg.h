/* amp_msg.h: the BOLT #2 HTLC messages ampd reads and writes.
 *
 * Each message is u16 type || payload, big-endian. A TLV extension stream
 * after the fixed fields is checked (TLV rules, unknown even types rejected)
 * and kept as a slice; encode writes it back unchanged.
 * Decoded messages point into the input buffer (onion, reason, tlv).
 * Cost: fixed-field copies, no allocation.
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
} amp_msg_fail_malformed_t;

/* amp_msg_type returns the u16 type of msg, or AMP_ERR_TRUNCATED (len < 2). */
AMP_WARN_UNUSED int amp_msg_type(const uint8_t *msg, size_t len);

/* Decoders take the whole message including its type. They return AMP_OK,
 * or AMP_ERR_MSG (wrong type, truncated, bad TLV extension; the failure_code
 * of fail_malformed must have the BADONION bit). */
AMP_WARN_UNUSED int amp_msg_add_decode(amp_msg_add_t *m, const uint8_t *msg, size_t len);
AMP_WARN_UNUSED int amp_msg_fulfill_decode(amp_msg_fulfill_t *m, const uint8_t *msg, size_t len);
AMP_WARN_UNUSED int amp_msg_fail_decode(amp_msg_fail_t *m, const uint8_t *msg, size_t len);
AMP_WARN_UNUSED int amp_msg_fail_malformed_decode(amp_msg_fail_malformed_t *m,
                                                  const uint8_t *msg, size_t len);
/* amp_msg_tip_decode reads the fabric's tip control message. */
AMP_WARN_UNUSED int amp_msg_tip_decode(uint32_t *height, const uint8_t *msg, size_t len);

/* Encoders write into out (capacity cap) and return the length, or
 * AMP_ERR_OVERFLOW. */
AMP_WARN_UNUSED long amp_msg_add_encode(uint8_t *out, size_t cap, const amp_msg_add_t *m);
AMP_WARN_UNUSED long amp_msg_fulfill_encode(uint8_t *out, size_t cap, const amp_msg_fulfill_t *m);
AMP_WARN_UNUSED long amp_msg_fail_encode(uint8_t *out, size_t cap, const amp_msg_fail_t *m);
AMP_WARN_UNUSED long amp_msg_fail_malformed_encode(uint8_t *out, size_t cap,
                                                   const amp_msg_fail_malformed_t *m);
AMP_WARN_UNUSED long amp_msg_tip_encode(uint8_t *out, size_t cap, uint32_t height);

#endif /* AMP_MSG_H */
