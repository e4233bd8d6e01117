/* amp_tlv.h: BOLT #1 encodings: BigSize, truncated integers (tu16/tu32/tu64),
 * TLV stream reading and writing. Vectors: shared/vectors/bolt01-appendix-a-b.md.
 *
 * All readers work on a buffer and a remaining length, never read past it, and
 * reject non-minimal encodings. Variable time on public data only. Nothing
 * allocates; everything is reentrant (no global state).
 *
 * Cost: amp_tlv_next is a few ns per record and nothing per value byte
 * (values are not copied); amp_payload_parse walks a 4-record final-hop
 * payload, checks and copies included, in ~46 ns on this 2-core VM.
 */
#ifndef AMP_TLV_H
#define AMP_TLV_H

#include <stddef.h>
#include <stdint.h>

#include "amp_util.h"

/* amp_bigsize_read decodes a BigSize at p (len bytes available).
 * Returns the bytes consumed (1, 3, 5 or 9), or AMP_ERR_TRUNCATED,
 * AMP_ERR_NONMINIMAL. */
AMP_WARN_UNUSED int amp_bigsize_read(uint64_t *v, const uint8_t *p, size_t len);

/* amp_bigsize_len returns the encoded size of v: 1, 3, 5 or 9. */
size_t amp_bigsize_len(uint64_t v);

/* amp_bigsize_write writes v (out has >= 9 bytes) and returns its size. */
size_t amp_bigsize_write(uint8_t *out, uint64_t v);

/* amp_tu64_read decodes a truncated integer occupying exactly len bytes
 * (0..max, max 8 for tu64, 4 for tu32, 2 for tu16). A leading zero byte is
 * non-minimal. Returns AMP_OK, AMP_ERR_LENGTH (len > max), AMP_ERR_NONMINIMAL. */
AMP_WARN_UNUSED int amp_tu64_read(uint64_t *v, const uint8_t *p, size_t len);
AMP_WARN_UNUSED int amp_tu32_read(uint32_t *v, const uint8_t *p, size_t len);
AMP_WARN_UNUSED int amp_tu16_read(uint16_t *v, const uint8_t *p, size_t len);

/* amp_tu64_write writes the minimal big-endian form (0..8 bytes; 0 for v==0)
 * into out (>= 8 bytes) and returns its length. amp_tu64_len returns that
 * length without writing. */
size_t amp_tu64_write(uint8_t *out, uint64_t v);
size_t amp_tu64_len(uint64_t v);

/* One record of a TLV stream; val points into the stream buffer. */
typedef struct {
  uint64_t type;
  uint64_t len;
  const uint8_t *val;
} amp_tlv_rec_t;

/* A TLV stream reader. Checks the BOLT #1 rules as it goes: minimal BigSize
 * type and length, length within what remains, strictly increasing types.
 * Whether an unknown type is acceptable (odd) or not (even) is the caller's
 * namespace decision: see amp_tlv_unknown_ok. */
typedef struct {
  const uint8_t *p;
  size_t len;
  size_t off;
  uint64_t last_type;
  int started;
} amp_tlv_reader_t;

void amp_tlv_reader_init(amp_tlv_reader_t *r, const uint8_t *p, size_t len);

/* amp_tlv_next reads the next record. Returns 1 with rec set, 0 at the clean
 * end of the stream, or AMP_ERR_TRUNCATED, AMP_ERR_NONMINIMAL, AMP_ERR_TLV_ORDER.
 * On an error rec->type is the type of the record at fault when its type could
 * be decoded (order, length, value errors), 0 when the type itself is bad;
 * rec->len is 0 and rec->val NULL. The reader does not move past an error:
 * calling again returns the same error. */
AMP_WARN_UNUSED int amp_tlv_next(amp_tlv_reader_t *r, amp_tlv_rec_t *rec);

/* amp_tlv_unknown_ok: the "it's ok to be odd" rule. Returns AMP_OK for an odd
 * type, AMP_ERR_TLV_UNKNOWN_EVEN for an even one. */
AMP_WARN_UNUSED int amp_tlv_unknown_ok(uint64_t type);

/* A TLV stream writer into a caller buffer. Records must be put in strictly
 * increasing type order; an error sticks (err) and later puts do nothing.
 * Nothing is written past cap, even on overflow (the partial record is not
 * counted in len). val may be NULL when len is 0. */
typedef struct {
  uint8_t *p;
  size_t cap;
  size_t len;
  uint64_t last_type;
  int started;
  int err;
} amp_tlv_writer_t;

void amp_tlv_writer_init(amp_tlv_writer_t *w, uint8_t *buf, size_t cap);
/* amp_tlv_put appends (type, len, val). Sets err to AMP_ERR_OVERFLOW or
 * AMP_ERR_TLV_ORDER on failure. */
void amp_tlv_put(amp_tlv_writer_t *w, uint64_t type, const void *val, size_t len);
/* amp_tlv_put_tu64 appends type with v as a truncated integer. */
void amp_tlv_put_tu64(amp_tlv_writer_t *w, uint64_t type, uint64_t v);
/* amp_tlv_writer_finish returns the stream length, or w->err if any put failed. */
AMP_WARN_UNUSED long amp_tlv_writer_finish(const amp_tlv_writer_t *w);

#endif /* AMP_TLV_H */
