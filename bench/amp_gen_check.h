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
 * Not thread-safe; one checker per thread. Memory: ~220 bytes per HTLC
 * (entry, shared secret, hash tables); 10^6 HTLCs fit in ~250 MB.
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

/* amp_check_report finishes and prints the per-class table to out. Returns
 * 0 if every expectation was met and no frame-level error was seen, 1
 * otherwise. */
int amp_check_report(amp_check_t *c, FILE *out);

/* amp_check_report_json writes the same as one JSON object (for scripts).
 * Returns 0 or 1 as amp_check_report. */
int amp_check_report_json(amp_check_t *c, FILE *out);

#endif /* AMP_GEN_CHECK_H */
