/* amp_frame.h: the fabric frame (DESIGN.md section 2), as bytes.
 *
 * Ethernet II / IPv4 (IHL 5, no options) / UDP to port 9736, then:
 *   header  magic "AMPF" | version 1 | flags 0 | be16 count | be64 gateway_id | be64 seq
 *   record  (count times) be64 scid | be16 len | msg[len] (u16 type || payload)
 *   tag     first 16 bytes of HMAC-SHA256(gateway_key, header || records)
 * Both directions use the same format and the gateway's key.
 *
 * This module knows nothing of DPDK: it works on a byte buffer, so the daemon,
 * the packet generator, the checker and the tests share it.
 *
 * Validation (amp_frame_parse) is the edge: after it, records are trusted to
 * be inside the buffer. Authentication is separate (amp_frame_verify) because
 * it needs the gateway's key, looked up from the header's gateway_id.
 * Cost: parse ~50 ns for a frame of a few records; verify = one HMAC over the
 * frame (~1.5 us for a 1.5 kB update_add_htlc).
 */
#ifndef AMP_FRAME_H
#define AMP_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "amp_hmac.h"
#include "amp_util.h"

#define AMP_FRAME_UDP_PORT 9736
#define AMP_FRAME_MAGIC "AMPF"
#define AMP_FRAME_VERSION 1
#define AMP_FRAME_ETH_LEN 14
#define AMP_FRAME_IP_LEN 20
#define AMP_FRAME_UDP_LEN 8
#define AMP_FRAME_L2L4_LEN (AMP_FRAME_ETH_LEN + AMP_FRAME_IP_LEN + AMP_FRAME_UDP_LEN)
#define AMP_FRAME_HDR_LEN 24
#define AMP_FRAME_REC_HDR_LEN 10
#define AMP_FRAME_TAG_LEN 16
#define AMP_FRAME_MTU 9000       /* IP packet size on the fabric */
#define AMP_FRAME_MAX_LEN (AMP_FRAME_ETH_LEN + AMP_FRAME_MTU)
#define AMP_FRAME_MAX_RECORDS 64

/* Why a frame was dropped: each has a counter in the daemon. */
#define AMP_FRAME_DROP_LIST(X)                                                 \
  X(NOT_IPV4_UDP, "not IPv4/UDP to the fabric port")                           \
  X(MALFORMED, "malformed frame")                                              \
  X(UNKNOWN_GATEWAY, "unknown gateway")                                        \
  X(BAD_TAG, "bad frame tag")                                                  \
  X(REPLAYED_SEQ, "sequence outside the anti-replay window")

typedef enum {
  AMP_FRAME_OK = 0,
#define AMP_FRAME_DROP_ENUM_(n, s) AMP_FRAME_DROP_##n,
  AMP_FRAME_DROP_LIST(AMP_FRAME_DROP_ENUM_)
#undef AMP_FRAME_DROP_ENUM_
  AMP_FRAME_DROP_COUNT_
} amp_frame_drop_t;

const char *amp_frame_drop_str(int reason);

/* Addresses of a frame (network byte order kept as bytes). */
typedef struct {
  uint8_t dst_mac[6], src_mac[6];
  uint8_t src_ip[4], dst_ip[4];
  uint16_t src_port, dst_port;
} amp_frame_addr_t;

typedef struct {
  uint64_t scid;
  const uint8_t *msg;
  uint16_t len;
} amp_frame_rec_t;

typedef struct {
  amp_frame_addr_t addr;
  uint64_t gateway_id;
  uint64_t seq;
  uint16_t count;
  const uint8_t *auth;         /* header || records: what the tag covers */
  size_t auth_len;
  const uint8_t *tag;          /* 16 bytes */
  amp_frame_rec_t rec[AMP_FRAME_MAX_RECORDS];
} amp_frame_t;

/* amp_frame_parse checks L2-L4 (EtherType IPv4, IHL 5, protocol UDP, dst port
 * 9736, IP total length and UDP length consistent with len, no fragments) and
 * the fabric layout (magic, version, flags 0, count <= AMP_FRAME_MAX_RECORDS,
 * every record inside, tag exactly at the end). Returns AMP_FRAME_OK or a
 * drop reason. Does not authenticate. Variable time on public data. */
int amp_frame_parse(amp_frame_t *f, const uint8_t *pkt, size_t len);

/* amp_frame_verify checks the tag with the gateway key in constant time.
 * Returns 1 if it matches, 0 otherwise. */
int amp_frame_verify(const amp_frame_t *f, const uint8_t key[32]);

/* A frame builder over a caller buffer of capacity cap (>= AMP_FRAME_MAX_LEN
 * recommended). Usage: begin, add records, finish. */
typedef struct {
  uint8_t *buf;
  size_t cap;
  size_t len;                  /* bytes written so far */
  uint16_t count;
  int err;
} amp_frame_builder_t;

/* amp_frame_begin writes L2-L4 (lengths fixed at finish) and the header. */
void amp_frame_begin(amp_frame_builder_t *b, uint8_t *buf, size_t cap,
                     const amp_frame_addr_t *addr, uint64_t gateway_id, uint64_t seq);
/* amp_frame_room returns how many msg bytes one more record could carry
 * (0 if none), keeping room for the tag and the MTU. */
size_t amp_frame_room(const amp_frame_builder_t *b);
/* amp_frame_add appends a record; AMP_ERR_OVERFLOW if it does not fit (the
 * frame is left as it was: the caller finishes it and starts another). */
AMP_WARN_UNUSED int amp_frame_add(amp_frame_builder_t *b, uint64_t scid, const uint8_t *msg,
                                  uint16_t len);
/* amp_frame_finish fixes the count, IP and UDP lengths and IP checksum (UDP
 * checksum 0), appends the tag, and returns the frame length. */
size_t amp_frame_finish(amp_frame_builder_t *b, const uint8_t key[32]);

/* Anti-replay window per gateway (like IPsec's, 1024 sequence numbers): a seq
 * is accepted once if it is above the window's bottom. check does not change
 * state; update marks it seen (call only after the tag verified). */
#define AMP_FRAME_WINDOW 1024
typedef struct {
  uint64_t top;                /* highest seq accepted so far (0: none) */
  uint64_t bits[AMP_FRAME_WINDOW / 64];
} amp_frame_window_t;
int amp_frame_window_check(const amp_frame_window_t *w, uint64_t seq);  /* 1 ok */
void amp_frame_window_update(amp_frame_window_t *w, uint64_t seq);

/* --- Extensions (dataplane owner) ------------------------------------------
 * amp_frame_parse_port is amp_frame_parse with the UDP destination port given:
 * dst_port 0 accepts any port. The gateway side (checker, generator) parses
 * ampd's replies with the gateway's own port, which need not be 9736. */
int amp_frame_parse_port(amp_frame_t *f, const uint8_t *pkt, size_t len, uint16_t dst_port);

/* amp_frame_verify_hmac is amp_frame_verify with the key's pads precomputed:
 * kctx is amp_hmac_init(key, 32), kept by the caller and never modified
 * (copied per call). Saves two SHA-256 compressions per frame. Constant time
 * in the key and the tag. Returns 1 if the tag matches, 0 otherwise. */
int amp_frame_verify_hmac(const amp_frame_t *f, const amp_hmac_t *kctx);

/* amp_frame_verify_hmac_n is ok[i] = amp_frame_verify_hmac(f[i], kctx[i]) for
 * i < n, the HMACs' blocks through amp_hmac_update_n and their finals
 * through amp_hmac_final_n (sixteen frames at a time on AVX-512, else two
 * interleaved on SHA-NI). For the frames of an rx burst. n may be 0. */
void amp_frame_verify_hmac_n(const amp_frame_t *const *f, const amp_hmac_t *const *kctx,
                             size_t n, int *ok);

/* amp_frame_finish_hmac is amp_frame_finish with a precomputed key context
 * (see amp_frame_verify_hmac). Returns the frame length, 0 if the builder
 * failed (b->err set). */
size_t amp_frame_finish_hmac(amp_frame_builder_t *b, const amp_hmac_t *kctx);

/* amp_frame_addr_reply writes into out the addresses of a reply to a frame
 * with addresses in: MACs, IPs and ports swapped. out may equal in. */
void amp_frame_addr_reply(amp_frame_addr_t *out, const amp_frame_addr_t *in);

/* amp_frame_window_accept is check then update in one call, for a caller who
 * already verified the tag. Returns 1 if seq was accepted (and marked), 0 if
 * it was a replay or too old. Not thread-safe: one writer per window. */
int amp_frame_window_accept(amp_frame_window_t *w, uint64_t seq);

#endif /* AMP_FRAME_H */
