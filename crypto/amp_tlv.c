/* amp_tlv.c: BOLT #1 BigSize, truncated integers and TLV streams.
 *
 * Every reader takes (pointer, bytes available) and checks the length before
 * each load; no function here reads past what it was given. */
#include "amp_tlv.h"

#include <string.h>

int amp_bigsize_read(uint64_t *v, const uint8_t *p, size_t len) {
  if (len < 1) return AMP_ERR_TRUNCATED;
  uint8_t b = p[0];
  if (b < 0xfd) {
    *v = b;
    return 1;
  }
  if (b == 0xfd) {
    if (len < 3) return AMP_ERR_TRUNCATED;
    uint64_t x = amp_be16(p + 1);
    if (x < 0xfd) return AMP_ERR_NONMINIMAL;
    *v = x;
    return 3;
  }
  if (b == 0xfe) {
    if (len < 5) return AMP_ERR_TRUNCATED;
    uint64_t x = amp_be32(p + 1);
    if (x < 0x10000) return AMP_ERR_NONMINIMAL;
    *v = x;
    return 5;
  }
  if (len < 9) return AMP_ERR_TRUNCATED;
  uint64_t x = amp_be64(p + 1);
  if (x < 0x100000000ull) return AMP_ERR_NONMINIMAL;
  *v = x;
  return 9;
}

size_t amp_bigsize_len(uint64_t v) {
  if (v < 0xfd) return 1;
  if (v < 0x10000) return 3;
  if (v < 0x100000000ull) return 5;
  return 9;
}

size_t amp_bigsize_write(uint8_t *out, uint64_t v) {
  if (v < 0xfd) {
    out[0] = (uint8_t)v;
    return 1;
  }
  if (v < 0x10000) {
    out[0] = 0xfd;
    amp_put_be16(out + 1, (uint16_t)v);
    return 3;
  }
  if (v < 0x100000000ull) {
    out[0] = 0xfe;
    amp_put_be32(out + 1, (uint32_t)v);
    return 5;
  }
  out[0] = 0xff;
  amp_put_be64(out + 1, v);
  return 9;
}

/* Shared body of the tu* readers: max is the type's width in bytes. */
static int tu_read(uint64_t *v, const uint8_t *p, size_t len, size_t max) {
  if (len > max) return AMP_ERR_LENGTH;
  if (len > 0 && p[0] == 0) return AMP_ERR_NONMINIMAL;
  uint64_t x = 0;
  for (size_t i = 0; i < len; i++) x = (x << 8) | p[i];
  *v = x;
  return AMP_OK;
}

int amp_tu64_read(uint64_t *v, const uint8_t *p, size_t len) { return tu_read(v, p, len, 8); }

int amp_tu32_read(uint32_t *v, const uint8_t *p, size_t len) {
  uint64_t x;
  int rc = tu_read(&x, p, len, 4);
  if (rc == AMP_OK) *v = (uint32_t)x;
  return rc;
}

int amp_tu16_read(uint16_t *v, const uint8_t *p, size_t len) {
  uint64_t x;
  int rc = tu_read(&x, p, len, 2);
  if (rc == AMP_OK) *v = (uint16_t)x;
  return rc;
}

size_t amp_tu64_len(uint64_t v) {
  size_t n = 0;
  while (v) {
    n++;
    v >>= 8;
  }
  return n;
}

size_t amp_tu64_write(uint8_t *out, uint64_t v) {
  size_t n = amp_tu64_len(v);
  for (size_t i = 0; i < n; i++) out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
  return n;
}

void amp_tlv_reader_init(amp_tlv_reader_t *r, const uint8_t *p, size_t len) {
  r->p = p;
  r->len = len;
  r->off = 0;
  r->last_type = 0;
  r->started = 0;
}

int amp_tlv_next(amp_tlv_reader_t *r, amp_tlv_rec_t *rec) {
  rec->type = 0;
  rec->len = 0;
  rec->val = NULL;
  if (r->off >= r->len) return 0;

  const uint8_t *p = r->p + r->off;
  size_t left = r->len - r->off;
  uint64_t type, len;
  int n = amp_bigsize_read(&type, p, left);
  if (n < 0) return n;
  rec->type = type;
  if (r->started && type <= r->last_type) return AMP_ERR_TLV_ORDER;
  p += n;
  left -= (size_t)n;

  n = amp_bigsize_read(&len, p, left);
  if (n < 0) return n;
  p += n;
  left -= (size_t)n;
  if (len > left) return AMP_ERR_TRUNCATED;

  rec->len = len;
  rec->val = p;
  r->off = (size_t)(p - r->p) + (size_t)len;
  r->last_type = type;
  r->started = 1;
  return 1;
}

int amp_tlv_unknown_ok(uint64_t type) {
  return (type & 1) ? AMP_OK : AMP_ERR_TLV_UNKNOWN_EVEN;
}

void amp_tlv_writer_init(amp_tlv_writer_t *w, uint8_t *buf, size_t cap) {
  w->p = buf;
  w->cap = cap;
  w->len = 0;
  w->last_type = 0;
  w->started = 0;
  w->err = AMP_OK;
}

/* Reserves room for a record's header and value; returns where the value
 * goes, or NULL with w->err set. */
static uint8_t *tlv_begin(amp_tlv_writer_t *w, uint64_t type, size_t len) {
  if (w->err) return NULL;
  if (w->started && type <= w->last_type) {
    w->err = AMP_ERR_TLV_ORDER;
    return NULL;
  }
  size_t hdr = amp_bigsize_len(type) + amp_bigsize_len(len);
  size_t room = w->cap - w->len;
  if (hdr > room || len > room - hdr) {
    w->err = AMP_ERR_OVERFLOW;
    return NULL;
  }
  uint8_t *q = w->p + w->len;
  q += amp_bigsize_write(q, type);
  q += amp_bigsize_write(q, len);
  w->len += hdr + len;
  w->last_type = type;
  w->started = 1;
  return q;
}

void amp_tlv_put(amp_tlv_writer_t *w, uint64_t type, const void *val, size_t len) {
  uint8_t *q = tlv_begin(w, type, len);
  if (q && len) memcpy(q, val, len);
}

void amp_tlv_put_tu64(amp_tlv_writer_t *w, uint64_t type, uint64_t v) {
  uint8_t *q = tlv_begin(w, type, amp_tu64_len(v));
  if (q) amp_tu64_write(q, v);
}

long amp_tlv_writer_finish(const amp_tlv_writer_t *w) {
  if (w->err) return w->err;
  return (long)w->len;
}
