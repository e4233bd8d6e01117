/* amp_failure.c: failure messages and answer encoding (see amp_failure.h). */
#include "amp_failure.h"

#include <string.h>

#include "amp_msg.h"
#include "amp_sphinx.h"
#include "amp_tlv.h"

size_t amp_failure_msg_details(uint8_t *out, uint64_t htlc_msat, uint32_t height) {
  amp_put_be16(out, AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS);
  amp_put_be64(out + 2, htlc_msat);
  amp_put_be32(out + 10, height);
  return 14;
}

size_t amp_failure_msg_code(uint8_t *out, uint16_t code) {
  amp_put_be16(out, code);
  return 2;
}

size_t amp_failure_msg_invalid_payload(uint8_t *out, uint64_t type, uint16_t offset) {
  amp_put_be16(out, AMP_FAIL_INVALID_ONION_PAYLOAD);
  size_t n = 2 + amp_bigsize_write(out + 2, type);
  amp_put_be16(out + n, offset);
  return n + 2;
}

long amp_answer_fail(uint8_t *out, size_t cap, const uint8_t channel_id[32], uint64_t htlc_id,
                     const uint8_t ss[32], const uint8_t *msg, size_t msg_len) {
  uint8_t reason[AMP_FAIL_MAX_LEN];
  long rl = amp_sphinx_fail_create(reason, sizeof reason, ss, msg, msg_len);
  if (rl < 0) return rl;
  amp_msg_fail_t m;
  memset(&m, 0, sizeof m);
  memcpy(m.channel_id, channel_id, 32);
  m.id = htlc_id;
  m.reason = reason;
  m.reason_len = (uint16_t)rl;
  return amp_msg_fail_encode(out, cap, &m);
}

long amp_answer_fulfill(uint8_t *out, size_t cap, const uint8_t channel_id[32], uint64_t htlc_id,
                        const uint8_t preimage[32]) {
  amp_msg_fulfill_t m;
  memset(&m, 0, sizeof m);
  memcpy(m.channel_id, channel_id, 32);
  m.id = htlc_id;
  memcpy(m.payment_preimage, preimage, 32);
  long n = amp_msg_fulfill_encode(out, cap, &m);
  amp_wipe(&m, sizeof m);
  return n;
}

long amp_answer_malformed(uint8_t *out, size_t cap, const uint8_t channel_id[32],
                          uint64_t htlc_id, const uint8_t sha256_of_onion[32],
                          uint16_t failure_code) {
  amp_msg_fail_malformed_t m;
  memset(&m, 0, sizeof m);
  memcpy(m.channel_id, channel_id, 32);
  m.id = htlc_id;
  memcpy(m.sha256_of_onion, sha256_of_onion, 32);
  m.failure_code = failure_code;
  return amp_msg_fail_malformed_encode(out, cap, &m);
}
