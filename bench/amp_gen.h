/* amp_gen.h: AMP traffic generation for ampd (the library behind ampd-pktgen,
 * reusable in-process by benchmarks and tests).
 *
 * A generator makes N AMP payments for one node public key and turns them
 * into fabric frames (DESIGN.md section 2), one frame at a time:
 *
 *   amp_gen_cfg_t cfg; amp_gen_cfg_default(&cfg); ...fill in node and gateways...
 *   amp_gen_t *g; amp_gen_new(&g, &cfg);
 *   amp_gen_frame_t f;
 *   while (amp_gen_next(g, &f) == 1) { send f.pkt / f.len; record f.htlc[0..n_htlc) }
 *   amp_gen_delete(g);
 *
 * Per payment, as LND's sender does (DESIGN.md section 1): a random 32-byte
 * root seed and set_id, n shares by XOR split (n-1 random, the last makes the
 * XOR equal the root), child indexes 0..n-1, child_preimage_i =
 * SHA256(root || share_i || be32(i)), payment_hash_i = SHA256(child_preimage_i),
 * a final-hop payload (amt_to_forward, outgoing_cltv_value, payment_data with
 * payment_addr and total_msat, amp with share, set_id, child_index), one
 * Sphinx onion per shard with a fresh session key, and one update_add_htlc per
 * shard on a channel drawn at random among all gateways' channels. The first
 * frame is a `tip` (block height) from the first gateway. Every random value
 * comes from a ChaCha20 stream keyed by the seed: the same configuration and
 * seed give the same bytes. The traffic's secrets are therefore only as
 * secret as the seed: this is test traffic.
 *
 * Bad traffic: each payment gets at most one class, drawn with the rates in
 * cfg.rate[] (fractions of payments, summing to at most 1). What each class
 * does and what ampd must answer (receive rules of DESIGN.md section 1; codes
 * are BOLT #4: PERM|15 = incorrect_or_unknown_payment_details, 23 =
 * mpp_timeout, BADONION|PERM|5 = invalid_onion_hmac, PERM|22 =
 * invalid_onion_payload):
 *
 *   missing_shard     one shard of the payment (n >= 2) is never sent. The
 *                     others are held and reach no total: each fails on its
 *                     own hold timer with mpp_timeout (rule 9).
 *   wrong_share       one shard's onion carries a random share instead of its
 *                     own. The set reaches its total, reconstruction does not
 *                     match: every HTLC of the set fails with PERM|15 (rule 10).
 *   underpaid_total   the shards' amounts sum to less than total_msat: all are
 *                     held, none settles, each fails with mpp_timeout (rule 9).
 *   replayed_onion    a copy of one shard's update_add_htlc (same onion, same
 *                     payment_hash) under the next htlc id of a random channel,
 *                     sent right after the original (so usually while the
 *                     original is still held): the copy fails with PERM|15
 *                     (DESIGN does not pin the code; engine/amp_engine.h step
 *                     5 does); the payment itself settles.
 *   The remaining classes add ONE extra shard to an otherwise complete
 *   payment (a valid child of the same root with child index n, so it is bad
 *   only in the stated way); the payment's own shards settle normally, the
 *   extra one gets:
 *   flipped_onion_bit one bit of hop_payloads flipped: the HMAC check fails:
 *                     update_fail_malformed_htlc, invalid_onion_hmac, with
 *                     sha256_of_onion of the onion as sent.
 *   bad_frame_tag     sent alone in a frame whose tag has one bit flipped:
 *                     dropped, no answer.
 *   unknown_gateway   sent alone in a frame from a gateway id that is not
 *                     configured (tag made with a random key): dropped, no answer.
 *   mismatched_total  total_msat larger than its siblings', sent after the
 *                     first and before the last sibling (n >= 2): rule 6,
 *                     PERM|15.
 *   expired_cltv      cltv_expiry = height + 2 (< height + 19): rule 7, PERM|15.
 *   malformed_tlv     a final-hop payload that breaks BOLT #1/#4 (unknown even
 *                     type, non-minimal integer, types out of order, a record
 *                     of the wrong length) inside a good onion: PERM|22
 *                     invalid_onion_payload in a failure onion.
 *
 * Routes: route_len 1 (default) makes one-hop onions to the node. route_len
 * K > 1 makes the node the first of K hops (the K-1 others random keys): the
 * node must forward each HTLC (expectation "forward": an update_add_htlc out
 * with the same payment_hash, on the scid, amount and cltv its payload names).
 * Only good, replayed_onion, flipped_onion_bit, bad_frame_tag and
 * unknown_gateway make sense then; other rates are refused.
 *
 * Thread safety: a generator is used by one thread (with cfg.threads > 0 it
 * runs that many helper threads of its own, joined by amp_gen_delete);
 * several generators may run in parallel (amp_secp_init first). Each payment
 * draws from its own random stream (seed, payment index), so the output does
 * not depend on the number of threads. Cost: dominated by the onion build
 * (one pubkey_create + one ECDH per hop, ~70 us per one-hop HTLC on this
 * machine class: ~14k HTLCs/s per thread).
 */
#ifndef AMP_GEN_H
#define AMP_GEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "amp_frame.h"
#include "amp_secp.h"
#include "amp_util.h"

#define AMP_GEN_MAX_GATEWAYS 64
#define AMP_GEN_MAX_SHARDS 128    /* per payment */
#define AMP_GEN_MAX_HOPS 20
#define AMP_GEN_MAX_DIST 64       /* entries of the shard distribution */
#define AMP_GEN_EXPIRED_DELTA 2   /* expired_cltv: cltv_expiry = height + this */

/* The classes: enum name, name in files and reports, pktgen flag. */
#define AMP_GEN_CLASS_LIST(X)                                                  \
  X(GOOD, "good", NULL)                                                        \
  X(MISSING, "missing_shard", "missing-shard")                                 \
  X(WRONG_SHARE, "wrong_share", "wrong-share")                                 \
  X(REPLAY, "replayed_onion", "replayed-onion")                                \
  X(FLIPPED, "flipped_onion_bit", "flipped-bit")                               \
  X(BAD_TAG, "bad_frame_tag", "bad-tag")                                       \
  X(UNKNOWN_GW, "unknown_gateway", "unknown-gateway")                          \
  X(UNDERPAID, "underpaid_total", "underpaid")                                 \
  X(MISMATCHED, "mismatched_total", "mismatched-total")                        \
  X(EXPIRED, "expired_cltv", "expired-cltv")                                   \
  X(MALFORMED_TLV, "malformed_tlv", "malformed-tlv")

typedef enum {
#define AMP_GEN_CLASS_ENUM_(n, s, f) AMP_GEN_##n,
  AMP_GEN_CLASS_LIST(AMP_GEN_CLASS_ENUM_)
#undef AMP_GEN_CLASS_ENUM_
  AMP_GEN_CLASS_COUNT
} amp_gen_class_t;

/* amp_gen_class_name returns the class's name ("good", "missing_shard"...),
 * or "?" out of range. amp_gen_class_flag returns its pktgen flag (NULL for
 * good). amp_gen_class_parse returns the class of a name or flag, or -1. */
const char *amp_gen_class_name(int cls);
const char *amp_gen_class_flag(int cls);
int amp_gen_class_parse(const char *s);

/* What ampd must answer to one HTLC. */
typedef enum {
  AMP_GEN_X_FULFILL = 1,   /* update_fulfill_htlc with preimage */
  AMP_GEN_X_FAIL = 2,      /* update_fail_htlc whose failure onion decodes to code */
  AMP_GEN_X_FAIL_ANY = 3,  /* any update_fail_htlc or update_fail_malformed_htlc
                              (for hand-written expectations; the generator pins
                              every code) */
  AMP_GEN_X_MALFORMED = 4, /* update_fail_malformed_htlc, code, sha256_of_onion */
  AMP_GEN_X_NONE = 5,      /* nothing: the frame is dropped */
  AMP_GEN_X_FORWARD = 6,   /* update_add_htlc out: fwd_scid, fwd_amount, fwd_cltv */
} amp_gen_expect_t;

/* amp_gen_expect_name: "fulfill", "fail", "fail_any", "malformed", "none",
 * "forward" ("?" otherwise); amp_gen_expect_parse: the reverse, or -1. */
const char *amp_gen_expect_name(int x);
int amp_gen_expect_parse(const char *s);

/* One HTLC as sent, with the answer it must get. One line of the
 * expectations file. */
typedef struct {
  uint64_t payment;              /* index of its payment, from 0 */
  uint64_t gateway_id;           /* the frame's gateway (unknown_gateway: the bogus id) */
  uint64_t scid;
  uint64_t htlc_id;
  uint8_t cls;                   /* amp_gen_class_t of this HTLC */
  uint8_t expect;                /* amp_gen_expect_t */
  uint16_t code;                 /* FAIL, MALFORMED: the BOLT #4 failure code */
  uint32_t child_index;
  uint32_t n_shards;             /* shards of the payment (not counting extras) */
  uint64_t amount_msat;          /* the HTLC's amount */
  uint64_t total_msat;           /* total_msat in its payload */
  uint32_t cltv_expiry;
  uint8_t payment_hash[32];
  uint8_t preimage[32];          /* FULFILL; the child preimage (all HTLCs) */
  uint8_t set_id[32];
  uint8_t onion_sha256[32];      /* SHA256 of the onion as sent */
  uint8_t n_hops;
  uint8_t ss[AMP_GEN_MAX_HOPS][32]; /* shared secret of each hop: decodes failures */
  uint64_t fwd_scid;             /* FORWARD */
  uint64_t fwd_amount_msat;
  uint32_t fwd_cltv;
} amp_gen_htlc_t;

typedef struct {
  uint64_t id;
  uint8_t key[32];
  uint8_t mac[6];
  uint8_t ip[4];
} amp_gen_gateway_t;

typedef struct {
  uint8_t node_pubkey[AMP_PUBKEY_LEN];
  amp_gen_gateway_t gw[AMP_GEN_MAX_GATEWAYS];
  size_t n_gw;
  uint8_t ampd_mac[6];           /* default 02:a0:00:00:00:01 */
  uint8_t ampd_ip[4];            /* default 198.19.0.1 */
  uint32_t channels_per_gw;      /* default 8 */
  uint32_t scid_block;           /* scid = (scid_block + gw index) << 40 | channel << 16 */
  uint64_t htlc_id_base;         /* first htlc id of every channel, default 0 */
  uint64_t seq_base;             /* first seq of every gateway, default 1 */
  uint64_t payments;             /* default 1000 */
  uint32_t shard_val[AMP_GEN_MAX_DIST];   /* shards per payment: values... */
  uint32_t shard_weight[AMP_GEN_MAX_DIST];/* ...and their weights */
  size_t n_shard_dist;           /* default: {3: 1} */
  uint64_t amt_min, amt_max;     /* total_msat per payment, uniform; default 10000..10000000 */
  int fixed_addr;                /* 1: every payment pays payment_addr (one AMP invoice) */
  uint8_t payment_addr[32];
  uint32_t height;               /* the tip frame's height, default 800000 */
  uint32_t cltv_delta;           /* final cltv_expiry = height + this, default 144 */
  uint64_t seed;
  uint32_t records_per_frame;    /* default 1, at most AMP_FRAME_MAX_RECORDS */
  uint32_t route_len;            /* default 1 */
  uint64_t fwd_fee_msat;         /* route_len > 1: fee per forwarding hop, default 1000 */
  uint32_t fwd_cltv_delta;       /* route_len > 1: cltv delta per hop, default 40 */
  uint32_t interleave;           /* payments in flight whose HTLCs interleave, default 1 */
  uint64_t t0_usec;              /* timestamp of the first frame (pcap), 0: now */
  uint32_t threads;              /* threads that make payments ahead (onions are
                                    the cost); 0: amp_gen_next makes them. The
                                    bytes do not depend on it. Default 0 */
  double rate[AMP_GEN_CLASS_COUNT]; /* rate[AMP_GEN_GOOD] is ignored */
} amp_gen_cfg_t;

/* amp_gen_cfg_default fills the defaults above (no gateways, zero node key). */
void amp_gen_cfg_default(amp_gen_cfg_t *cfg);

/* amp_gen_parse_shards parses "N" or "A-B" (uniform) into the distribution;
 * amp_gen_parse_shards_dist parses "N:W,N:W,..." (weights are relative).
 * amp_gen_parse_range parses "N" or "A-B" into [lo, hi].
 * amp_gen_parse_gateway parses "ID:KEYHEX[:MAC[:IPV4]]" (ID decimal or 0x hex),
 * MAC and IP default from index idx (02:00:00:00:00:idx+1, 198.18.0.idx+1).
 * Each returns AMP_OK or AMP_ERR_CONFIG (with a message in err, capacity
 * errlen, when err is not NULL). */
AMP_WARN_UNUSED int amp_gen_parse_shards(amp_gen_cfg_t *cfg, const char *s, char *err,
                                         size_t errlen);
AMP_WARN_UNUSED int amp_gen_parse_shards_dist(amp_gen_cfg_t *cfg, const char *s, char *err,
                                              size_t errlen);
AMP_WARN_UNUSED int amp_gen_parse_range(uint64_t *lo, uint64_t *hi, const char *s);
AMP_WARN_UNUSED int amp_gen_parse_gateway(amp_gen_gateway_t *gw, size_t idx, const char *s,
                                          char *err, size_t errlen);
AMP_WARN_UNUSED int amp_gen_parse_mac(uint8_t mac[6], const char *s);
AMP_WARN_UNUSED int amp_gen_parse_ipv4(uint8_t ip[4], const char *s);

/* amp_gen_channel_id writes the 32-byte channel_id the generator uses for a
 * scid (SHA256("ampd-pktgen channel" || be64 scid)); ampd echoes it. */
void amp_gen_channel_id(uint8_t out[32], uint64_t scid);

/* One frame out of the generator. pkt and htlc live until the next
 * amp_gen_next or amp_gen_delete. htlc lists the HTLCs the frame carries
 * (the tip frame carries none). */
typedef struct {
  const uint8_t *pkt;
  size_t len;
  uint64_t usec;                 /* timestamp to record it with */
  uint64_t gateway_id;
  uint64_t seq;
  const amp_gen_htlc_t *htlc;
  size_t n_htlc;
} amp_gen_frame_t;

typedef struct amp_gen amp_gen_t;

/* amp_gen_new checks cfg and makes a generator (allocates everything it
 * will need, a few MB at most). Returns AMP_OK, AMP_ERR_CONFIG (message in
 * err when err != NULL), AMP_ERR_BAD_KEY (node pubkey), AMP_ERR_NOMEM. */
AMP_WARN_UNUSED int amp_gen_new(amp_gen_t **g, const amp_gen_cfg_t *cfg, char *err,
                                size_t errlen);

/* amp_gen_next makes the next frame. Returns 1 with f filled, 0 when every
 * payment has been sent (f untouched), or a negative amp_err_t (an internal
 * failure such as a payload that does not fit). */
AMP_WARN_UNUSED int amp_gen_next(amp_gen_t *g, amp_gen_frame_t *f);

typedef struct {
  uint64_t payments_done;        /* payments whose every HTLC has been framed */
  uint64_t payments_class[AMP_GEN_CLASS_COUNT];
  uint64_t htlcs;                /* update_add_htlc records sent */
  uint64_t htlcs_class[AMP_GEN_CLASS_COUNT];
  uint64_t htlcs_expect[7];      /* by amp_gen_expect_t */
  uint64_t shards_missing;       /* shards never sent (missing_shard) */
  uint64_t frames;
  uint64_t bytes;
} amp_gen_stats_t;
void amp_gen_stats(const amp_gen_t *g, amp_gen_stats_t *out);

void amp_gen_delete(amp_gen_t *g);

/* Expectations file: JSON lines. The first line is the meta record
 * {"meta":"ampd-pktgen", "version":1, "node":hex, "height":H, "seed":S,
 *  "payments":N, "gateways":[{"id":"ID","key":hex}, ...]}; every other line is
 * one HTLC (amp_gen_htlc_t): {"payment":P, "gw":"ID", "scid":"SCID",
 * "id":"HTLC_ID", "class":name, "expect":name, "code":C, ...}. 64-bit ids are
 * decimal strings (JSON numbers lose them); hashes and secrets are hex. */
void amp_gen_expect_write_meta(FILE *f, const amp_gen_cfg_t *cfg);
void amp_gen_expect_write(FILE *f, const amp_gen_htlc_t *x);

/* amp_gen_expect_parse_line parses one line. Returns 1 for an HTLC (x
 * filled), 2 for the meta line (gateways appended to gw/n_gw up to
 * AMP_GEN_MAX_GATEWAYS; height set), 0 for a blank line, AMP_ERR_CONFIG for
 * anything else (message in err). gw, n_gw and height may be NULL. */
AMP_WARN_UNUSED int amp_gen_expect_parse_line(amp_gen_htlc_t *x, amp_gen_gateway_t *gw,
                                              size_t *n_gw, uint32_t *height, const char *line,
                                              char *err, size_t errlen);

#endif /* AMP_GEN_H */
