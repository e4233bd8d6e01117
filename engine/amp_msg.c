/* amp_msg.c: BOLT #2 HTLC messages and the fabric's tip message.
 *
 * Decoders check the exact layout (type, fixed fields, then an extension TLV
 * stream that runs to the end); encoders write the same bytes back. */
#include "amp_msg.h"

#include <string.h>

#include "amp_tlv.h"

/* ext_check validates an extension stream under the message's namespace:
 * the TLV rules, and no unknown even type. The only known even type is
 * update_add_htlc's 0 (path key, exactly 33 bytes): is_add selects it.
 * Returns AMP_OK or AMP_ERR_MSG. */
static int ext_check(const uint8_t *p, size_t len, int is_add) {
  if (len == 0) return AMP_OK;
  if (!p) return AMP_ERR_MSG;
  amp_tlv_reader_t r;
  amp_tlv_reader_init(&r, p, len);
  amp_tlv_rec_t rec;
  int rc;
  while ((rc = amp_tlv_next(&r, &rec)) == 1) {
    if (is_add && rec.type == 0) {
      if (rec.len != 33) return AMP_ERR_MSG;
      continue;
    }
    if (amp_tlv_unknown_ok(rec.type) != AMP_OK) return AMP_ERR_MSG;
  }
  return rc == 0 ? AMP_OK : AMP_ERR_MSG;
}

/* Common head of every decoder: type and length bounds. */
static int decode_head(const uint8_t *msg, size_t len, uint16_t type, size_t fixed) {
  if (len < fixed || len > AMP_MSG_MAX_LEN) return AMP_ERR_MSG;
  if (amp_be16(msg) != type) return AMP_ERR_MSG;
  return AMP_OK;
}

/* The extension (everything after fixed bytes), checked and returned as a
 * slice. */
static int decode_ext(const uint8_t **tlv, size_t *tlv_len, const uint8_t *msg, size_t len,
                      size_t fixed, int is_add) {
  size_t n = len - fixed;
  if (ext_check(msg + fixed, n, is_add) != AMP_OK) return AMP_ERR_MSG;
  *tlv = n ? msg + fixed : NULL;
  *tlv_len = n;
  return AMP_OK;
}

/* Common checks of every encoder. fixed is the size before the extension. */
static long encode_room(size_t cap, size_t fixed, const uint8_t *tlv, size_t tlv_len, int is_add) {
  if (ext_check(tlv, tlv_len, is_add) != AMP_OK) return AMP_ERR_MSG;
  if (tlv_len > AMP_MSG_MAX_LEN || fixed + tlv_len > AMP_MSG_MAX_LEN) return AMP_ERR_MSG;
  if (fixed + tlv_len > cap) return AMP_ERR_OVERFLOW;
  return (long)(fixed + tlv_len);
}

int amp_msg_type(const uint8_t *msg, size_t len) {
  if (len < 2) return AMP_ERR_TRUNCATED;
  return amp_be16(msg);
}

int amp_msg_add_decode(amp_msg_add_t *m, const uint8_t *msg, size_t len) {
  if (decode_head(msg, len, AMP_MSG_UPDATE_ADD_HTLC, AMP_MSG_ADD_LEN)) return AMP_ERR_MSG;
  const uint8_t *p = msg + 2;
  memcpy(m->channel_id, p, 32);
  m->id = amp_be64(p + 32);
  m->amount_msat = amp_be64(p + 40);
  memcpy(m->payment_hash, p + 48, 32);
  m->cltv_expiry = amp_be32(p + 80);
  m->onion = p + 84;
  return decode_ext(&m->tlv, &m->tlv_len, msg, len, AMP_MSG_ADD_LEN, 1);
}

int amp_msg_fulfill_decode(amp_msg_fulfill_t *m, const uint8_t *msg, size_t len) {
  if (decode_head(msg, len, AMP_MSG_UPDATE_FULFILL_HTLC, AMP_MSG_FULFILL_LEN)) return AMP_ERR_MSG;
  const uint8_t *p = msg + 2;
  memcpy(m->channel_id, p, 32);
  m->id = amp_be64(p + 32);
  memcpy(m->payment_preimage, p + 40, 32);
  return decode_ext(&m->tlv, &m->tlv_len, msg, len, AMP_MSG_FULFILL_LEN, 0);
}

int amp_msg_fail_decode(amp_msg_fail_t *m, const uint8_t *msg, size_t len) {
  if (decode_head(msg, len, AMP_MSG_UPDATE_FAIL_HTLC, AMP_MSG_FAIL_LEN)) return AMP_ERR_MSG;
  const uint8_t *p = msg + 2;
  memcpy(m->channel_id, p, 32);
  m->id = amp_be64(p + 32);
  uint16_t rlen = amp_be16(p + 40);
  if (rlen > len - AMP_MSG_FAIL_LEN) return AMP_ERR_MSG;
  m->reason_len = rlen;
  m->reason = p + 42;
  return decode_ext(&m->tlv, &m->tlv_len, msg, len, AMP_MSG_FAIL_LEN + rlen, 0);
}

int amp_msg_fail_malformed_decode(amp_msg_fail_malformed_t *m, const uint8_t *msg, size_t len) {
  if (decode_head(msg, len, AMP_MSG_UPDATE_FAIL_MALFORMED_HTLC, AMP_MSG_FAIL_MALFORMED_LEN))
    return AMP_ERR_MSG;
  const uint8_t *p = msg + 2;
  memcpy(m->channel_id, p, 32);
  m->id = amp_be64(p + 32);
  memcpy(m->sha256_of_onion, p + 40, 32);
  m->failure_code = amp_be16(p + 72);
  if (!(m->failure_code & AMP_MSG_BADONION)) return AMP_ERR_MSG;
  return decode_ext(&m->tlv, &m->tlv_len, msg, len, AMP_MSG_FAIL_MALFORMED_LEN, 0);
}

int amp_msg_tip_decode(uint32_t *height, const uint8_t *msg, size_t len) {
  if (len != AMP_MSG_TIP_LEN || amp_be16(msg) != AMP_MSG_TIP) return AMP_ERR_MSG;
  *height = amp_be32(msg + 2);
  return AMP_OK;
}

int amp_msg_add_path_key(uint8_t out[33], const amp_msg_add_t *m) {
  amp_tlv_reader_t r;
  amp_tlv_rec_t rec;
  if (!m->tlv) return 0;
  amp_tlv_reader_init(&r, m->tlv, m->tlv_len);
  /* Type 0 can only be the first record. */
  if (amp_tlv_next(&r, &rec) != 1 || rec.type != 0 || rec.len != 33) return 0;
  memcpy(out, rec.val, 33);
  return 1;
}

static void put_tlv(uint8_t *out, const uint8_t *tlv, size_t tlv_len) {
  if (tlv_len) memcpy(out, tlv, tlv_len);
}

long amp_msg_add_encode(uint8_t *out, size_t cap, const amp_msg_add_t *m) {
  long n = encode_room(cap, AMP_MSG_ADD_LEN, m->tlv, m->tlv_len, 1);
  if (n < 0) return n;
  amp_put_be16(out, AMP_MSG_UPDATE_ADD_HTLC);
  uint8_t *p = out + 2;
  memcpy(p, m->channel_id, 32);
  amp_put_be64(p + 32, m->id);
  amp_put_be64(p + 40, m->amount_msat);
  memcpy(p + 48, m->payment_hash, 32);
  amp_put_be32(p + 80, m->cltv_expiry);
  memcpy(p + 84, m->onion, AMP_MSG_ONION_LEN);
  put_tlv(out + AMP_MSG_ADD_LEN, m->tlv, m->tlv_len);
  return n;
}

long amp_msg_fulfill_encode(uint8_t *out, size_t cap, const amp_msg_fulfill_t *m) {
  long n = encode_room(cap, AMP_MSG_FULFILL_LEN, m->tlv, m->tlv_len, 0);
  if (n < 0) return n;
  amp_put_be16(out, AMP_MSG_UPDATE_FULFILL_HTLC);
  uint8_t *p = out + 2;
  memcpy(p, m->channel_id, 32);
  amp_put_be64(p + 32, m->id);
  memcpy(p + 40, m->payment_preimage, 32);
  put_tlv(out + AMP_MSG_FULFILL_LEN, m->tlv, m->tlv_len);
  return n;
}

long amp_msg_fail_encode(uint8_t *out, size_t cap, const amp_msg_fail_t *m) {
  if (m->reason_len && !m->reason) return AMP_ERR_MSG;
  size_t fixed = AMP_MSG_FAIL_LEN + (size_t)m->reason_len;
  long n = encode_room(cap, fixed, m->tlv, m->tlv_len, 0);
  if (n < 0) return n;
  amp_put_be16(out, AMP_MSG_UPDATE_FAIL_HTLC);
  uint8_t *p = out + 2;
  memcpy(p, m->channel_id, 32);
  amp_put_be64(p + 32, m->id);
  amp_put_be16(p + 40, m->reason_len);
  if (m->reason_len) memcpy(p + 42, m->reason, m->reason_len);
  put_tlv(out + fixed, m->tlv, m->tlv_len);
  return n;
}

long amp_msg_fail_malformed_encode(uint8_t *out, size_t cap, const amp_msg_fail_malformed_t *m) {
  if (!(m->failure_code & AMP_MSG_BADONION)) return AMP_ERR_MSG;
  long n = encode_room(cap, AMP_MSG_FAIL_MALFORMED_LEN, m->tlv, m->tlv_len, 0);
  if (n < 0) return n;
  amp_put_be16(out, AMP_MSG_UPDATE_FAIL_MALFORMED_HTLC);
  uint8_t *p = out + 2;
  memcpy(p, m->channel_id, 32);
  amp_put_be64(p + 32, m->id);
  memcpy(p + 40, m->sha256_of_onion, 32);
  amp_put_be16(p + 72, m->failure_code);
  put_tlv(out + AMP_MSG_FAIL_MALFORMED_LEN, m->tlv, m->tlv_len);
  return n;
}

long amp_msg_tip_encode(uint8_t *out, size_t cap, uint32_t height) {
  if (cap < AMP_MSG_TIP_LEN) return AMP_ERR_OVERFLOW;
  amp_put_be16(out, AMP_MSG_TIP);
  amp_put_be32(out + 2, height);
  return AMP_MSG_TIP_LEN;
}
