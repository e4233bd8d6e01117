/* amp_gen_check.h: checks ampd's replies against the generator's
 * expectations (the library behind ampd-check).
 *
 *   amp_check_t *c = amp_check_new(&opts);
 *   amp_check_load(c, "run.expect");         (or amp_check_expect per HTLC)
 *   amp_check_pcap(c, "tx.pcap");            (or amp_check_frame per frame)
 *   int rc = amp_check_report(c, stdout);    (0: every expectation met)
 *   amp_check_free(c);
 *
 * Every reply frame is parsed (amp_frame_parse) and its tag verified with
 * the key of its gateway (from the expectations' meta line, or
 * amp_check_gateway). Each record is matched to its HTLC by (frame
 * gateway_id, record scid, message id) for update_fulfill_htlc,
 * update_fail_htlc and update_fail_malformed_htlc, and by payment_hash for a
 * forwarded update_add_htlc. An HTLC's outcome is one of:
 *   ok        exactly one answer, the expected one: fulfill with the right
 *             preimage; fail whose failure onion (decoded with the HTLC's
 *             shared secrets) carries the expected code, and for
 *             incorrect_or_unknown_payment_details the HTLC's amount as
 *             htlc_msat; fail_malformed with the expected code and
 *             sha256_of_onion; a forward with the expected scid, amount,
 *             cltv; nothing for an HTLC whose frame must be dropped.
 *   none      no answer where one was expected.
 *   wrong     an answer of the wrong kind or content (or any answer to a
 *             dropped frame's HTLC).
 *   dup       more than one answer (with repeats_ok: another answer that
 *             differs from the first; identical ones are counted as repeats).
 *   waited    (only with timeouts_ok) an HTLC expecting mpp_timeout got no
 *             answer: the run ended before its hold timer could fire. Not
 *             an error then. Better: run ampd with a short --hold-timeout-ms
 *             and let it idle past it before exiting.
 * Frame-level errors: unparseable reply frames, unknown gateways, bad tags,
 * repeated seq per gateway, replies matching no HTLC, message types ampd
 * must not send. Any of them, or any none/wrong/dup, fails the check.
 *
 * Wire latency (optional): given the frames as they were sent towards ampd
 * with their capture times (amp_check_sent_pcap or amp_check_sent_frame) and
 * the replies with theirs (amp_check_pcap, amp_check_frame_at), each HTLC's
 * request (the frame that carried its update_add_htlc, matched by gateway,
 * scid and htlc id as answers are) is paired with the frame that carried its
 * first answer; amp_check_latency gives the percentiles of answer time minus
 * request time, by the answer's kind. Both captures must share a clock (one
 * recorder on the interface: tests/capture_replies.py --sent). It measures,
 * it does not judge: latency never changes the check's result.
 *

 * Not thread-safe; one checker per thread. Memory: ~240 bytes per HTLC
 * (entry, shared secret, hash tables); 10^6 HTLCs fit in ~270 MB.
 */
#ifndef AMP_GEN_CHECK_H
#define AMP_GEN_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "amp_gen.h"

typedef struct {
  int timeouts_ok;               /* unanswered mpp_timeout HTLCs are not errors */
  int verbose;                   /* print every mismatch, not just the first 20 */
  int repeats_ok;                /* an answer identical to the HTLC's first one
                                    is a redelivery's, not a dup (restart tests:
                                    several captures of one run); seq repeats
                                    are then checked within each capture */
  FILE *log;                     /* mismatch details go here (NULL: stderr) */
} amp_check_opts_t;

typedef struct amp_check amp_check_t;

/* Outcomes per HTLC, as counted per class. */
enum { AMP_CHECK_OK, AMP_CHECK_NONE, AMP_CHECK_WRONG, AMP_CHECK_DUP, AMP_CHECK_WAITED,
       AMP_CHECK_OUTCOMES };

typedef struct {
  uint64_t htlcs[AMP_GEN_CLASS_COUNT];
  uint64_t outcome[AMP_GEN_CLASS_COUNT][AMP_CHECK_OUTCOMES];
  uint64_t fulfilled, failed, malformed, forwarded;  /* answers seen, by kind */
  uint64_t fail_code_count[4];   /* fails decoded to: 15|PERM, 23, 22|PERM, other */
  uint64_t frames, records;
  uint64_t bad_frames;           /* unparseable */
  uint64_t unknown_gateway_frames;
  uint64_t bad_tag_frames;
  uint64_t dup_seq_frames;
  uint64_t reordered_seq_frames; /* seq lower than an earlier one: a warning */
  uint64_t unmatched;            /* replies to no known HTLC */
  uint64_t bad_msgs;             /* undecodable or unexpected message types */
  uint64_t tips;                 /* tip records (ignored) */
  uint64_t repeats;              /* identical repeated answers (repeats_ok) */
} amp_check_stats_t;

/* amp_check_new returns a checker or NULL (out of memory). */
amp_check_t *amp_check_new(const amp_check_opts_t *opts);
void amp_check_free(amp_check_t *c);

/* amp_check_gateway adds (or replaces the key of) a gateway. Returns AMP_OK
 * or AMP_ERR_FULL. */
AMP_WARN_UNUSED int amp_check_gateway(amp_check_t *c, uint64_t id, const uint8_t key[32]);

/* amp_check_expect adds one HTLC's expectation (copied). Returns AMP_OK,
 * AMP_ERR_EXISTS (same gateway, scid and id twice), AMP_ERR_NOMEM. */
AMP_WARN_UNUSED int amp_check_expect(amp_check_t *c, const amp_gen_htlc_t *x);

/* amp_check_load reads an expectations file (amp_gen_expect_write format):
 * gateways from its meta line, then every HTLC. Returns AMP_OK, AMP_ERR_IO,
 * AMP_ERR_CONFIG (a bad line: message on stderr with its line number). */
AMP_WARN_UNUSED int amp_check_load(amp_check_t *c, const char *path);

/* amp_check_frame checks one reply frame (Ethernet and up). */
void amp_check_frame(amp_check_t *c, const uint8_t *pkt, size_t len);

/* AMP_CHECK_NO_TIME: a frame without a capture time. */
#define AMP_CHECK_NO_TIME INT64_MIN

/* amp_check_frame_at is amp_check_frame for a reply captured at t_us
 * (microseconds on the clock of the sent frames' capture, or
 * AMP_CHECK_NO_TIME): the first answer to each HTLC keeps that time for
 * amp_check_latency. amp_check_frame(c, p, l) is
 * amp_check_frame_at(c, p, l, AMP_CHECK_NO_TIME). */
void amp_check_frame_at(amp_check_t *c, const uint8_t *pkt, size_t len, int64_t t_us);

/* amp_check_sent_frame takes one frame as it was sent towards ampd,
 * captured at t_us. Each update_add_htlc record in it is matched to its HTLC
 * by (frame gateway_id, record scid, htlc id); an HTLC keeps the first time
 * its request was seen (a frame sent again counts as a repeat). The tag is
 * not verified (bad_frame_tag HTLCs are sent with a bad one on purpose).
 * Frames that do not parse as fabric frames and records of no known HTLC
 * are counted in amp_check_lat_t, never errors: the sent capture may hold
 * other traffic. Call after the expectations are loaded; before or after the
 * replies. */
void amp_check_sent_frame(amp_check_t *c, const uint8_t *pkt, size_t len, int64_t t_us);

/* amp_check_sent_pcap feeds every frame of a pcap of sent frames (their
 * pcap timestamps are the capture times). Returns AMP_OK or AMP_ERR_IO
 * (message on stderr). */
AMP_WARN_UNUSED int amp_check_sent_pcap(amp_check_t *c, const char *path);

/* amp_check_new_capture forgets the reply seqs seen so far: the frames that
 * follow come from another capture (a restarted ampd). */
void amp_check_new_capture(amp_check_t *c);

/* amp_check_pcap feeds every frame of a pcap file (any format libpcap reads);
 * with repeats_ok it starts with amp_check_new_capture.
 * Returns AMP_OK or AMP_ERR_IO (message on stderr). */
AMP_WARN_UNUSED int amp_check_pcap(amp_check_t *c, const char *path);

/* amp_check_finish settles the outcomes (none, waited) and fills st. Call
 * after the last frame; idempotent. */
void amp_check_finish(amp_check_t *c, amp_check_stats_t *st);

/* amp_check_result finishes and returns 0 if every expectation was met and
 * no frame-level error was seen, 1 otherwise (prints nothing but the
 * mismatch log). */
int amp_check_result(amp_check_t *c);

/* amp_check_report finishes and prints the per-class table to out, and the
 * wire latency when sent frames were given. Returns
 * 0 if every expectation was met and no frame-level error was seen, 1
 * otherwise. */
int amp_check_report(amp_check_t *c, FILE *out);

/* Wire latency by the kind of an HTLC's first answer. ALL holds every
 * sample; FAIL is update_fail_htlc and update_fail_malformed_htlc except
 * mpp_timeout, which is apart in TIMEOUT (HTLCs held until their hold timer
 * fired: their latency is the hold timeout, not ampd's speed; they are in
 * ALL too). */
enum { AMP_CHECK_LAT_ALL, AMP_CHECK_LAT_FULFILL, AMP_CHECK_LAT_FAIL, AMP_CHECK_LAT_TIMEOUT,
       AMP_CHECK_LAT_FORWARD, AMP_CHECK_LAT_KINDS };

/* Percentiles (nearest rank) of n samples, in microseconds; 0 when n is 0. */
typedef struct {
  uint64_t n;
  int64_t min, p50, p99, p999, max;
  double mean;
} amp_check_pct_t;

typedef struct {
  uint64_t sent_frames;          /* frames given as sent */
  uint64_t sent_not_fabric;      /* of them, not fabric frames (left out) */
  uint64_t sent_requests;        /* update_add_htlc records matched to an HTLC */
  uint64_t sent_unknown;         /* update_add_htlc records of no known HTLC */
  uint64_t sent_repeats;         /* requests seen again (the first time is kept) */
  uint64_t answered;             /* HTLCs whose first answer has a capture time */
  uint64_t matched;              /* of them, with their request seen: the samples */
  uint64_t answered_unsent;      /* answered with a time, request not seen */
  uint64_t negative;             /* samples < 0 (answer stamped before its request:
                                    the captures do not share a clock) */
  amp_check_pct_t lat[AMP_CHECK_LAT_KINDS];
} amp_check_lat_t;

/* amp_check_lat_kind_name: "all", "fulfill", "fail", "mpp_timeout",
 * "forward" ("?" otherwise). */
const char *amp_check_lat_kind_name(int kind);

/* amp_check_latency finishes (amp_check_finish) and computes the wire
 * latency of every HTLC that has both a request and an answer time. Cost:
 * one pass over the HTLCs and a sort of the samples. Returns AMP_OK or
 * AMP_ERR_NOMEM (out then holds the counts but no percentiles). */
AMP_WARN_UNUSED int amp_check_latency(amp_check_t *c, amp_check_lat_t *out);

/* amp_check_report_json writes the same as one JSON object (for scripts),
 * with "wire_latency_us" when sent frames were given (amp_check_lat_t, its
 * percentiles by kind name). Returns 0 or 1 as amp_check_report. */
int amp_check_report_json(amp_check_t *c, FILE *out);

#endif /* AMP_GEN_CHECK_H */
