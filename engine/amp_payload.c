/* amp_payload.c: the BOLT #4 hop payload, parse, checks and encode.
 *
 * One pass of amp_tlv_next over the stream; each known record is checked for
 * its exact shape as it goes by. Nothing allocates. */
#include "amp_payload.h"

#include <string.h>

#include "amp_tlv.h"

#define CUSTOM_MIN 65536u

/* Fails the parse: records the type at fault. */
static int bad(uint64_t *bad_type, uint64_t type) {
  if (bad_type) *bad_type = type;
  return AMP_ERR_PAYLOAD;
}

/* Decodes one known record into pl. Returns AMP_OK or an error (the caller
 * turns it into AMP_ERR_PAYLOAD for this record's type). */
static int parse_known(amp_payload_t *pl, const amp_tlv_rec_t *rec) {
  const uint8_t *v = rec->val;
  size_t n = (size_t)rec->len;
  switch (rec->type) {
  case 2:
    pl->present |= AMP_PAYLOAD_AMT;
    return amp_tu64_read(&pl->amt_to_forward, v, n);
  case 4:
    pl->present |= AMP_PAYLOAD_CLTV;
    return amp_tu32_read(&pl->outgoing_cltv_value, v, n);
  case 6:
    if (n != 8) return AMP_ERR_LENGTH;
    pl->present |= AMP_PAYLOAD_SCID;
    pl->short_channel_id = amp_be64(v);
    return AMP_OK;
  case 8:
    if (n < 32 || n > 40) return AMP_ERR_LENGTH;
    pl->present |= AMP_PAYLOAD_MPP;
    memcpy(pl->payment_addr, v, 32);
    return amp_tu64_read(&pl->total_msat, v + 32, n - 32);
  case 10:
    pl->present |= AMP_PAYLOAD_ENCDATA;
    pl->encrypted_data = v;
    pl->encrypted_data_len = n;
    return AMP_OK;
  case 12:
    if (n != 33) return AMP_ERR_LENGTH;
    pl->present |= AMP_PAYLOAD_PATHKEY;
    memcpy(pl->path_key, v, 33);
    return AMP_OK;
  case 14:
    if (n < 64 || n > 68) return AMP_ERR_LENGTH;
    pl->present |= AMP_PAYLOAD_AMP;
    memcpy(pl->amp_share, v, 32);
    memcpy(pl->amp_set_id, v + 32, 32);
    return amp_tu32_read(&pl->amp_child_index, v + 64, n - 64);
  case 16:
    pl->present |= AMP_PAYLOAD_METADATA;
    pl->metadata = v;
    pl->metadata_len = n;
    return AMP_OK;
  case 18:
    pl->present |= AMP_PAYLOAD_TOTAL_AMT;
    return amp_tu64_read(&pl->total_amount_msat, v, n);
  default:
    /* Not a known type: the "it's ok to be odd" rule decides. */
    return amp_tlv_unknown_ok(rec->type);
  }
}

int amp_payload_parse(amp_payload_t *pl, const uint8_t *tlv, size_t len, uint64_t *bad_type) {
  memset(pl, 0, sizeof *pl);
  amp_tlv_reader_t r;
  amp_tlv_reader_init(&r, tlv, len);
  for (;;) {
    size_t start = r.off;
    amp_tlv_rec_t rec;
    int rc = amp_tlv_next(&r, &rec);
    if (rc == 0) break;
    if (rc < 0) return bad(bad_type, rec.type);
    if (rec.type >= CUSTOM_MIN) {
      /* Types increase, so every record from here on is custom too. */
      if (!pl->custom) pl->custom = tlv + start;
      continue;
    }
    if (parse_known(pl, &rec) != AMP_OK) return bad(bad_type, rec.type);
  }
  if (pl->custom) {
    pl->present |= AMP_PAYLOAD_CUSTOM;
    pl->custom_len = (size_t)(tlv + len - pl->custom);
  }
  return AMP_OK;
}

int amp_payload_check_final(const amp_payload_t *pl, uint64_t *bad_type) {
  uint32_t p = pl->present;
  if (!(p & AMP_PAYLOAD_AMT)) return bad(bad_type, 2);
  if (!(p & AMP_PAYLOAD_CLTV)) return bad(bad_type, 4);
  if (p & AMP_PAYLOAD_SCID) return bad(bad_type, 6);
  if ((p & AMP_PAYLOAD_AMP) && !(p & AMP_PAYLOAD_MPP)) return bad(bad_type, 8);
  return AMP_OK;
}

int amp_payload_check_forward(const amp_payload_t *pl, uint64_t *bad_type) {
  uint32_t p = pl->present;
  if (!(p & AMP_PAYLOAD_AMT)) return bad(bad_type, 2);
  if (!(p & AMP_PAYLOAD_CLTV)) return bad(bad_type, 4);
  if (!(p & AMP_PAYLOAD_SCID)) return bad(bad_type, 6);
  if (p & AMP_PAYLOAD_MPP) return bad(bad_type, 8);
  if (p & AMP_PAYLOAD_AMP) return bad(bad_type, 14);
  return AMP_OK;
}

/* Zeroes a stack copy of a secret; the volatile stores cannot be elided.
 * (Local so this library needs only amp_util.h's inline helpers.) */
static void wipe(void *p, size_t n) {
  volatile uint8_t *q = p;
  while (n--) *q++ = 0;
}

/* custom_ok: a non-empty, valid TLV stream whose types are all >= 65536. */
static int custom_ok(const uint8_t *p, size_t len) {
  if (!p || len == 0) return 0;
  amp_tlv_reader_t r;
  amp_tlv_reader_init(&r, p, len);
  amp_tlv_rec_t rec;
  int rc;
  while ((rc = amp_tlv_next(&r, &rec)) == 1)
    if (rec.type < CUSTOM_MIN) return 0;
  return rc == 0;
}

long amp_payload_encode(uint8_t *out, size_t cap, const amp_payload_t *pl) {
  uint32_t p = pl->present;
  uint8_t buf[68];
  size_t n;
  amp_tlv_writer_t w;
  amp_tlv_writer_init(&w, out, cap);

  if (p & AMP_PAYLOAD_AMT) amp_tlv_put_tu64(&w, 2, pl->amt_to_forward);
  if (p & AMP_PAYLOAD_CLTV) amp_tlv_put_tu64(&w, 4, pl->outgoing_cltv_value);
  if (p & AMP_PAYLOAD_SCID) {
    amp_put_be64(buf, pl->short_channel_id);
    amp_tlv_put(&w, 6, buf, 8);
  }
  if (p & AMP_PAYLOAD_MPP) {
    memcpy(buf, pl->payment_addr, 32);
    n = 32 + amp_tu64_write(buf + 32, pl->total_msat);
    amp_tlv_put(&w, 8, buf, n);
  }
  if (p & AMP_PAYLOAD_ENCDATA) amp_tlv_put(&w, 10, pl->encrypted_data, pl->encrypted_data_len);
  if (p & AMP_PAYLOAD_PATHKEY) amp_tlv_put(&w, 12, pl->path_key, 33);
  if (p & AMP_PAYLOAD_AMP) {
    memcpy(buf, pl->amp_share, 32);
    memcpy(buf + 32, pl->amp_set_id, 32);
    n = 64 + amp_tu64_write(buf + 64, pl->amp_child_index);
    amp_tlv_put(&w, 14, buf, n);
    wipe(buf, 32);
  }
  if (p & AMP_PAYLOAD_METADATA) amp_tlv_put(&w, 16, pl->metadata, pl->metadata_len);
  if (p & AMP_PAYLOAD_TOTAL_AMT) amp_tlv_put_tu64(&w, 18, pl->total_amount_msat);

  long len = amp_tlv_writer_finish(&w);
  if (len < 0) return len;
  if (p & AMP_PAYLOAD_CUSTOM) {
    if (!custom_ok(pl->custom, pl->custom_len)) return AMP_ERR_PAYLOAD;
    if (pl->custom_len > cap - (size_t)len) return AMP_ERR_OVERFLOW;
    memcpy(out + len, pl->custom, pl->custom_len);
    len += (long)pl->custom_len;
  }
  return len;
}
