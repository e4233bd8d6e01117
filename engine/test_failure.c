/* test_failure.c: failure messages and answer encoding, decoded back with
 * the sender-side failure onion decoder. */
#include "amp_failure.h"
#include "amp_msg.h"
#include "amp_sphinx.h"
#include "amp_test.h"

int main(void) {
  uint8_t m[AMP_FAILURE_MSG_MAX];
  static const uint8_t details[14] = {0x40, 0x0f, 0, 0, 0, 0, 0, 0, 0x30, 0x39, 0, 0, 0x03, 0xe8};
  AMP_CHECK_EQ(amp_failure_msg_details(m, 12345, 1000), 14);
  AMP_CHECK_MEM(m, details, 14);
  AMP_CHECK_EQ(amp_failure_msg_code(m, AMP_FAIL_MPP_TIMEOUT), 2);
  AMP_CHECK(m[0] == 0 && m[1] == 23);
  static const uint8_t inv1[] = {0x40, 0x16, 0x0e, 0x00, 0x00};
  AMP_CHECK_EQ(amp_failure_msg_invalid_payload(m, 14, 0), sizeof inv1);
  AMP_CHECK_MEM(m, inv1, sizeof inv1);
  static const uint8_t inv2[] = {0x40, 0x16, 0xfe, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07};
  AMP_CHECK_EQ(amp_failure_msg_invalid_payload(m, 65536, 7), sizeof inv2);
  AMP_CHECK_MEM(m, inv2, sizeof inv2);

  uint8_t chan[32], ss[32], pre[32], out[AMP_ANSWER_MAX];
  memset(chan, 0xcc, 32);
  memset(ss, 0x5a, 32);
  memset(pre, 0x11, 32);
  size_t ml = amp_failure_msg_details(m, 777, 800001);
  long n = amp_answer_fail(out, sizeof out, chan, 42, ss, m, ml);
  AMP_REQUIRE(n > 0);
  amp_msg_fail_t f;
  AMP_REQUIRE(amp_msg_fail_decode(&f, out, (size_t)n) == AMP_OK);
  AMP_CHECK_EQ(f.id, 42);
  AMP_CHECK_MEM(f.channel_id, chan, 32);
  AMP_CHECK(f.reason_len >= 32 + 2 + AMP_FAIL_MIN_PAD + 2);
  uint8_t pkt[AMP_FAIL_MAX_LEN];
  memcpy(pkt, f.reason, f.reason_len);
  size_t hop = 9, dl = 0;
  const uint8_t *d = NULL;
  AMP_CHECK(amp_sphinx_fail_decode_var(&hop, &d, &dl, pkt, f.reason_len,
                                       (const uint8_t(*)[32])ss, 1) == AMP_OK);
  AMP_CHECK_EQ(hop, 0);
  AMP_CHECK_EQ(dl, 14);
  if (d && dl == 14) AMP_CHECK_MEM(d, m, 14);
  /* a wrong secret does not decode */
  uint8_t other[32];
  memset(other, 1, 32);
  memcpy(pkt, f.reason, f.reason_len);
  AMP_CHECK(amp_sphinx_fail_decode_var(&hop, &d, &dl, pkt, f.reason_len,
                                       (const uint8_t(*)[32])other, 1) == AMP_ERR_FAIL_HMAC);

  n = amp_answer_fulfill(out, sizeof out, chan, 43, pre);
  AMP_REQUIRE(n > 0);
  amp_msg_fulfill_t ff;
  AMP_REQUIRE(amp_msg_fulfill_decode(&ff, out, (size_t)n) == AMP_OK);
  AMP_CHECK_EQ(ff.id, 43);
  AMP_CHECK_MEM(ff.payment_preimage, pre, 32);

  uint8_t sha[32];
  memset(sha, 0x77, 32);
  n = amp_answer_malformed(out, sizeof out, chan, 44, sha, AMP_FAIL_INVALID_ONION_HMAC);
  AMP_REQUIRE(n > 0);
  amp_msg_fail_malformed_t fm;
  AMP_REQUIRE(amp_msg_fail_malformed_decode(&fm, out, (size_t)n) == AMP_OK);
  AMP_CHECK_EQ(fm.id, 44);
  AMP_CHECK_EQ(fm.failure_code, AMP_FAIL_INVALID_ONION_HMAC);
  AMP_CHECK_MEM(fm.sha256_of_onion, sha, 32);

  AMP_CHECK(amp_answer_fulfill(out, 10, chan, 1, pre) == AMP_ERR_OVERFLOW);
  AMP_CHECK(amp_answer_fail(out, 100, chan, 1, ss, m, ml) == AMP_ERR_OVERFLOW);
  return amp_test_done();
}
