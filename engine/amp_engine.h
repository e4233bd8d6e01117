/* amp_engine.h: the heart of ampd: what happens to an HTLC after it arrives,
 * up to the moment its answer (preimage or failure) may leave.
 *
 * The engine knows nothing of DPDK. A daemon gives each worker thread a burst
 * of Lightning messages (amp_worker_process) and calls amp_worker_poll every
 * loop iteration; answers come out through a sink callback.
 *
 * Per update_add_htlc, in order:
 *   1. decode (a bad message is counted and dropped: there is nothing to answer)
 *   2. duplicate of an HTLC in flight (same scid, htlc id)? ignored: it gets its
 *      one answer when that is durable
 *   3. peel the onion (amp_sphinx_peel_burst over the whole burst)
 *   4. already answered and durable? the same answer again, from the store
 *   5. unpeelable onion -> update_fail_malformed_htlc; onion replayed under
 *      another (scid, htlc id) -> incorrect_or_unknown_payment_details;
 *      non-final onion -> unknown_next_peer (PERM|10): forwarding is not in
 *      scope yet (counted as forward_unsupported); unreadable payload ->
 *      invalid_onion_payload (PERM|22, data: type || u16 offset 0)
 *   6. the receive rules of DESIGN.md section 1, in that order; every failure
 *      goes out as incorrect_or_unknown_payment_details (PERM|15, htlc_msat,
 *      height); the detailed reason is a counter
 *   7. hold: one timer per HTLC from its own arrival (hold_timeout_ms); on
 *      expiry the HTLC fails with mpp_timeout (23) and leaves its set
 *   8. the set reaches total_msat: exactly one worker (the one whose HTLC made
 *      the sum reach the total) closes it, reconstructs and verifies the AMP
 *      children and submits the settlement (or a CANCEL_SET on mismatch: every
 *      HTLC of that set fails, the invoice stays open)
 * update_fulfill_htlc / update_fail_htlc / update_fail_malformed_htlc (answers
 * to forwards ampd never makes yet) are counted and ignored. The fabric's tip
 * message raises the block height (amp_engine_set_height).
 *
 * Durability (DESIGN.md invariants 1-3): every answer, fulfill or fail, is
 * released only after the store has committed its resolution, so a
 * redelivered HTLC gets byte-identical answer content across restarts (the
 * failure onion around a failure message is built afresh with the HTLC's
 * shared secret). If the store reports an error for an intent, nothing is
 * released for it; the intent is retried with a doubling back-off
 * (10 ms .. 1.3 s, store_retry_max times, default 8). After the last retry the
 * HTLCs concerned fail with temporary_node_failure WITHOUT a durable record:
 * the one exception to the rule, taken because an HTLC left unanswered costs a
 * channel force-close; a preimage never leaves without its commit.
 *
 * Threads: workers (amp_engine_worker, one thread each, RCU QSBR readers),
 * the store's writer, liburcu's call_rcu thread, and one admin thread at a
 * time for the amp_engine_invoice_* / set / held functions (they serialize on
 * a mutex and wait for their own commits). Workers never block on locks other
 * than a per-set spinlock and the in-flight tables' per-bucket spinlocks
 * (amp_inflight.h), each held for a few dozen instructions.
 *
 * Memory: held HTLCs and live sets come from per-worker pools sized at start
 * (lazily touched); the two in-flight tables are sized at start for every
 * pool entry and touched then (~43 B per HTLC of pool capacity, both);
 * retired entries return to their owner through a lock-free return list
 * after an RCU grace period (handed over in batches, one call_rcu per poll).
 * Placeholder invoices a worker makes or reads back come from its pool too
 * (up to 65,536 each, then jemalloc). Done records, the operator's invoices
 * and settlement arrays come from jemalloc (settlement arrays are cached per
 * worker, so steady state does not allocate).
 *
 * Spontaneous AMP payments (accept_amp): the first HTLC to a payment_addr
 * nobody knows makes a placeholder invoice (committed before any of its
 * sets settles). A placeholder is in memory only while something uses it
 * (its live sets, its commit, an admin cancel): then it is evicted, and the
 * store keeps it. A later HTLC to its addr finds it through the store's
 * addr filter (amp_store_maybe_invoice: a new addr costs no read) and reads
 * it back (one LMDB read: counted as placeholders_loaded; a read error
 * fails the HTLC: invoice_read_errors). So memory per spontaneous payment is
 * the store's index entries (~60 B for the addr, ~57 B for the set), not an
 * invoice kept forever. A placeholder's value_msat is its first payment's
 * total_msat: a later payment to the same addr must reach it (rule 5).
 * Exactly one placeholder is made per addr, whatever the workers' timing: a
 * worker that found none inserts its own only if no placeholder in its
 * addr's slice of the index was evicted since it looked (else it looks
 * again), and a copy it read back goes in under the same condition.
 */
#ifndef AMP_ENGINE_H
#define AMP_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "amp_store.h"
#include "amp_util.h"

typedef struct amp_engine amp_engine_t;
typedef struct amp_worker amp_worker_t;

/* Engine configuration. Zero values take the defaults given. */
typedef struct {
  uint8_t node_key[32];          /* node secret key; copied into the engine
                                    (wiped at amp_engine_delete); the caller
                                    wipes its cfg after amp_engine_new */
  amp_store_t *store;            /* open store with >= workers + 1 producers;
                                    producer i is worker i, producer `workers`
                                    is the admin path */
  unsigned workers;              /* >= 1 */
  int accept_amp;                /* accept spontaneous AMP (placeholder invoices) */
  uint32_t hold_timeout_ms;      /* per-HTLC hold timer; default 120000 */
  uint32_t final_cltv_reject_delta; /* default 19 */
  uint32_t max_htlcs_per_set;    /* default 512 */
  uint64_t max_held_total;       /* default 1 << 20 */
  uint64_t max_held_per_gateway; /* default max_held_total */
  uint32_t pool_htlcs;           /* HTLC entries per worker; default
                                    max_held_total / workers + 4096 */
  uint32_t pool_sets;            /* live set entries per worker; default pool_htlcs */
  uint32_t pool_ops;             /* store intents per worker; default 16384 */
  uint32_t store_retry_max;      /* default 8 */
  uint64_t (*wall_clock)(void);  /* unix seconds; NULL: time(NULL). For tests */
} amp_engine_cfg_t;

/* One incoming message. */
typedef struct {
  uint64_t gateway_id;
  uint64_t scid;
  const uint8_t *msg;            /* u16 type || payload (BOLT #2) */
  size_t len;
  uint64_t rx_ns;                /* receive timestamp (CLOCK_MONOTONIC ns) */
  uint64_t cookie;               /* the caller's, handed back with every answer
                                    to this message (emit); ampd: the rx TSC */
} amp_engine_in_t;

/* Where answers go. emit is called on the worker thread inside
 * amp_worker_poll (or amp_worker_process for answers already durable); msg is
 * valid only during the call; cookie is the answered update_add_htlc's
 * (amp_engine_in_t.cookie), whichever worker answers it (the one that
 * completed its set), so a caller can time each HTLC without a side table.
 * committed (optional, may be NULL): called on the worker thread inside
 * amp_worker_poll once per committed store intent that releases answers (a
 * set's settlement, an HTLC's failure), right before those answers are
 * emitted: wait_ns is the time from the intent's creation to the worker
 * seeing it committed (the queue to the store writer, the group commit and
 * its sync: the store's share of those answers' latency; CLOCK_MONOTONIC,
 * read by the engine), answers how many HTLCs it answers. Cost to the
 * engine: two clock reads per intent. */
typedef struct {
  void (*emit)(void *ctx, uint64_t gateway_id, uint64_t scid, uint64_t cookie,
               const uint8_t *msg, size_t len);
  void *ctx;
  void (*committed)(void *ctx, uint64_t wait_ns, uint32_t answers);
} amp_engine_sink_t;

/* Counters. Every outcome has a name (X-macro: name, description). */
#define AMP_ENGINE_COUNTERS(X)                                                           \
  X(msgs_in, "messages received")                                                        \
  X(htlcs_in, "update_add_htlc received")                                                \
  X(bad_msg, "undecodable messages dropped")                                             \
  X(unknown_msg, "messages of an unknown type dropped")                                  \
  X(fwd_answers_ignored, "fulfill/fail for forwards (not in scope) ignored")             \
  X(tips, "tip messages")                                                                \
  X(overload_dropped, "HTLCs dropped unanswered: no HTLC entry or intent free")          \
  X(redelivery_inflight, "duplicate of an HTLC in flight, ignored")                      \
  X(redelivery_durable, "duplicate of an answered HTLC, answered again from the store")  \
  X(redelivery_read_error, "store read error on a redelivery (dropped)")                 \
  X(malformed_onion, "unpeelable onions (update_fail_malformed_htlc)")                   \
  X(invalid_payload, "unreadable hop payloads (invalid_onion_payload)")                  \
  X(forward_unsupported, "non-final onions (unknown_next_peer)")                         \
  X(replays, "onion replayed under another HTLC")                                        \
  X(fail_amp_without_mpp, "rule 1: AMP record without MPP record")                       \
  X(fail_no_invoice, "rule 2: no invoice")                                               \
  X(fail_type_mismatch, "rule 3: AMP/MPP does not match the invoice type")               \
  X(fail_invoice_not_open, "rule 4: invoice settled or cancelled")                       \
  X(fail_invoice_expired, "rule 4: invoice expired")                                     \
  X(fail_payment_addr, "rule 5: payment_addr mismatch or absent")                        \
  X(fail_total_msat, "rule 5: total_msat zero or below the invoice value")               \
  X(fail_total_mismatch, "rule 6: total_msat differs from the set's")                    \
  X(fail_cltv_reject_delta, "rule 7: cltv_expiry < height + final_cltv_reject_delta")    \
  X(fail_cltv_invoice_delta, "rule 7: cltv_expiry < height + invoice cltv delta")        \
  X(fail_amt_below_forward, "rule 7: HTLC amount < amt_to_forward")                      \
  X(fail_cltv_below_outgoing, "rule 7: cltv_expiry < outgoing_cltv_value")               \
  X(fail_set_id_zero, "rule 8: all-zero set_id")                                         \
  X(fail_set_other_invoice, "rule 8: set_id belongs to another invoice")                 \
  X(fail_set_done, "rule 8: set already settled or cancelled")                           \
  X(fail_set_closing, "rule 8: set is settling")                                         \
  X(limit_set_htlcs, "limit: HTLCs per set")                                             \
  X(limit_held_total, "limit: held HTLCs in total")                                      \
  X(limit_held_gateway, "limit: held HTLCs per gateway")                                 \
  X(limit_set_pool, "limit: no free set entry")                                          \
  X(held, "HTLCs held")                                                                  \
  X(timeouts, "hold timeouts (mpp_timeout)")                                             \
  X(sets_completed, "sets that reached their total")                                     \
  X(child_mismatch, "sets failed: reconstruction mismatch")                              \
  X(sets_settled, "sets settled (durable)")                                              \
  X(htlcs_settled, "HTLCs fulfilled")                                                    \
  X(sets_cancelled, "sets cancelled (durable)")                                          \
  X(invoice_cancel_fails, "held HTLCs failed by an invoice cancel")                      \
  X(placeholder_invoices, "spontaneous AMP placeholder invoices created")                \
  X(placeholders_evicted, "placeholder invoices out of memory (unused; the store keeps them)") \
  X(placeholders_loaded, "placeholder invoices read back from the store")                \
  X(invoice_read_errors, "store read errors on an invoice lookup (HTLC failed)")         \
  X(answers_fulfill, "update_fulfill_htlc emitted")                                      \
  X(answers_fail, "update_fail_htlc emitted")                                            \
  X(answers_malformed, "update_fail_malformed_htlc emitted")                             \
  X(store_ring_full, "store ring full: intent queued for later")                         \
  X(store_errors, "intents the store failed")                                            \
  X(store_retries, "intents resubmitted after a store error")                            \
  X(store_gave_up, "HTLCs failed with temporary_node_failure, not durable")             \
  X(peel_curve_ns, "ns in the peels' pubkey parse and ECDH (the crypto ceiling's work, timed in place)")

typedef struct {
#define AMP_ENGINE_CNT_FIELD_(name, desc) uint64_t name;
  AMP_ENGINE_COUNTERS(AMP_ENGINE_CNT_FIELD_)
#undef AMP_ENGINE_CNT_FIELD_
  /* gauges */
  uint64_t held_now;             /* HTLCs held right now (all workers) */
  uint64_t invoices_now;         /* invoices in memory (placeholders only
                                    while in use) */
  uint64_t height;               /* block height in use */
} amp_engine_stats_t;

/* amp_engine_counter_name returns the name of counter i (0-based, in list
 * order) and its description in *desc (may be NULL), or NULL past the end. */
const char *amp_engine_counter_name(size_t i, const char **desc);

/* amp_engine_new creates the engine: copies cfg (and the node key), checks
 * it, and recovers from the store: every invoice the operator added is
 * loaded into the in-memory indexes; placeholders (spontaneous payments')
 * stay in the store until a payment or the admin uses them. Settled and cancelled sets stay the store's (its set
 * index answers rule 8; the engine's set table holds live sets only). Workers
 * must not run yet. Returns AMP_OK, AMP_ERR_CONFIG (bad cfg: zero workers, no
 * store, bad node key), AMP_ERR_NOMEM, AMP_ERR_IO (store read). Cost:
 * O(invoices). */
AMP_WARN_UNUSED int amp_engine_new(amp_engine_t **e, const amp_engine_cfg_t *cfg);

/* amp_engine_delete frees everything and wipes the node key. Every worker
 * must have detached, and the store must still be open (intents in flight
 * are waited for). */
void amp_engine_delete(amp_engine_t *e);

/* amp_engine_worker returns worker context idx (0 .. workers-1). The calling
 * thread becomes its owner and must call amp_worker_attach before use and
 * amp_worker_detach before exit. */
amp_worker_t *amp_engine_worker(amp_engine_t *e, unsigned idx);

/* amp_worker_attach registers the calling thread with RCU (QSBR) and marks it
 * the owner of w. amp_worker_detach submits nothing more, unregisters. A
 * detached worker's held HTLCs stay held (their timers wait for the next
 * attach). */
void amp_worker_attach(amp_worker_t *w);
void amp_worker_detach(amp_worker_t *w);

/* amp_worker_process handles a burst of n messages (any n; peeled in chunks
 * of 32). Answers that are already durable (redeliveries) are emitted at
 * once; every other answer comes out of a later amp_worker_poll.
 * Precondition: attached owner thread. Cost: ~ one ECDH (~40 us) per
 * update_add_htlc plus ~2 us; nothing allocates. */
void amp_worker_process(amp_worker_t *w, const amp_engine_in_t *in, size_t n,
                        const amp_engine_sink_t *sink);

/* An already peeled final hop, for amp_worker_process_peeled. */
typedef struct {
  uint64_t gateway_id;
  uint64_t scid;
  uint64_t htlc_id;
  uint64_t amount_msat;
  uint32_t cltv_expiry;
  uint8_t payment_hash[32];
  uint8_t channel_id[32];
  uint8_t shared_secret[32];
  const uint8_t *payload;        /* final-hop TLV stream */
  size_t payload_len;
  uint64_t rx_ns;
  uint64_t cookie;               /* as amp_engine_in_t's */
} amp_engine_peeled_t;

/* amp_worker_process_peeled is a TEST-ONLY entry point: the HTLCs enter as if
 * their onion had been peeled to a final hop with the given shared secret
 * (which also makes their replay tag). Everything after the peel is the same
 * code as amp_worker_process. Lets concurrency tests run 10^5 sets without
 * 10^5 ECDHs. Not for production use. */
void amp_worker_process_peeled(amp_worker_t *w, const amp_engine_peeled_t *in, size_t n,
                               const amp_engine_sink_t *sink);

/* amp_worker_poll is called every loop iteration: fires expired hold timers
 * (now_ns on CLOCK_MONOTONIC, the clock of rx_ns), submits queued intents,
 * takes the worker's completed intents from the store and emits their
 * answers, and reports an RCU quiescent state. Worker 0 also submits a store
 * PRUNE when the height has risen (replay entries below it are forgotten). Returns the number of answers
 * emitted. Cost: O(work done); ~50 ns when idle. */
size_t amp_worker_poll(amp_worker_t *w, uint64_t now_ns, const amp_engine_sink_t *sink);

/* amp_worker_idle returns 1 when w has nothing in flight: no intent queued or
 * awaiting its commit. (Held HTLCs do not count.) For tests and shutdown. */
int amp_worker_idle(const amp_worker_t *w);

/* amp_engine_test_fail_commits is a TEST-ONLY hook: the next n intents any
 * worker submits do not reach the store and come back as a failed commit
 * would (AMP_ERR_IO), exercising the retry and give-up paths. */
void amp_engine_test_fail_commits(amp_engine_t *e, unsigned n);

/* amp_engine_test_fail_invoice_reads is a TEST-ONLY hook: the next n reads
 * of an invoice out of memory (a placeholder read back) fail as a store read
 * error would (AMP_ERR_IO). */
void amp_engine_test_fail_invoice_reads(amp_engine_t *e, unsigned n);

/* amp_engine_test_before_placeholder is a TEST-ONLY hook: fn(ctx) runs on
 * the calling thread each time a placeholder invoice is about to enter the
 * addr index after the thread found none in memory: one it made (none in the
 * store either) or one it read back from the store (fn NULL: off). Set it
 * while no worker runs. For tests of what other workers do in that window. */
void amp_engine_test_before_placeholder(amp_engine_t *e, void (*fn)(void *ctx), void *ctx);

/* amp_engine_set_height sets the block height the cltv rules use. Atomic;
 * any thread. amp_engine_height reads it. */
void amp_engine_set_height(amp_engine_t *e, uint32_t height);
uint32_t amp_engine_height(const amp_engine_t *e);

/* amp_engine_stats sums the per-worker counters (racy by a few increments
 * while workers run). Any thread. */
void amp_engine_stats(const amp_engine_t *e, amp_engine_stats_t *out);

/* ---- Admin (control thread). One call at a time (internal mutex). Each
 * call registers the calling thread with RCU for its duration if it is not a
 * worker thread, and waits for its own commits (store producer `workers`). */

/* What amp_engine_invoice_add takes. */
typedef struct {
  int amp;                       /* 1: AMP invoice; 0: MPP invoice */
  uint64_t value_msat;           /* 0: any amount (AMP only; MPP needs > 0) */
  uint64_t expiry_s;             /* default 30 days */
  uint32_t cltv_delta;           /* min final cltv delta; default 80 */
  const uint8_t *preimage;       /* MPP: 32 bytes or NULL for a random one */
  const char *memo;              /* may be NULL; cut at 127 bytes */
  uint64_t created;              /* unix seconds; 0: now (tests set it) */
} amp_invoice_add_t;

/* amp_engine_invoice_add creates an invoice (random payment_addr; MPP:
 * payment_hash = SHA256(preimage)), commits it, then indexes it. out (may be
 * NULL) receives the record. Returns AMP_OK, AMP_ERR_CONFIG (bad request),
 * AMP_ERR_EXISTS (MPP payment_hash already used), AMP_ERR_RANDOM, AMP_ERR_NOMEM,
 * AMP_ERR_IO / AMP_ERR_FULL (store). */
AMP_WARN_UNUSED int amp_engine_invoice_add(amp_engine_t *e, const amp_invoice_add_t *req,
                                           amp_store_invoice_t *out);

/* amp_engine_invoice_lookup_addr / _hash copy an invoice's current state
 * (amounts paid, state) into out. Return AMP_OK or AMP_ERR_NOTFOUND;
 * _addr also AMP_ERR_IO (a placeholder out of memory is read from the
 * store). */
AMP_WARN_UNUSED int amp_engine_invoice_lookup_addr(amp_engine_t *e, const uint8_t addr[32],
                                                   amp_store_invoice_t *out);
AMP_WARN_UNUSED int amp_engine_invoice_lookup_hash(amp_engine_t *e, const uint8_t hash[32],
                                                   amp_store_invoice_t *out);

/* amp_engine_invoice_list writes up to max invoices, in add_index order:
 * those with add_index > offset, the max lowest; with
 * AMP_INVOICE_LIST_REVERSED those with add_index < offset (offset 0: all),
 * the max highest; with AMP_INVOICE_LIST_OPEN only open ones. It lists the
 * store's invoices (every committed one, placeholders out of memory
 * included) and placeholders whose INVOICE_PUT is in flight. Returns the
 * count (0 on a store read error). Cost: one read of the store's invoices,
 * O(invoices log max); allocates nothing. */
#define AMP_INVOICE_LIST_REVERSED 1u
#define AMP_INVOICE_LIST_OPEN 2u
size_t amp_engine_invoice_list(amp_engine_t *e, uint64_t offset, unsigned flags,
                               amp_store_invoice_t *out, size_t max);

/* amp_engine_invoice_cancel cancels an open invoice: no new HTLC is accepted
 * (rule 4), the cancel is committed, and every set of it still collecting is
 * cancelled: its held HTLCs fail (incorrect_or_unknown_payment_details),
 * answered by the worker that owns each set, after their commit. Sets already
 * settling finish. Returns AMP_OK, AMP_ERR_NOTFOUND, AMP_ERR_STATE (not open),
 * AMP_ERR_IO / AMP_ERR_FULL. */
AMP_WARN_UNUSED int amp_engine_invoice_cancel(amp_engine_t *e, const uint8_t addr[32]);

/* A set as the admin sees it. */
#define AMP_SET_COLLECTING 1
#define AMP_SET_SETTLING 2
#define AMP_SET_SETTLED 3
#define AMP_SET_CANCELLED 4
typedef struct {
  uint8_t set_id[32];            /* AMP set_id, or the payment_hash for MPP */
  uint8_t payment_addr[32];
  uint8_t is_amp;
  uint8_t state;                 /* AMP_SET_* */
  uint32_t n_htlcs;              /* live sets only */
  uint64_t amount_msat;          /* live: sum held; done: settled amount (0 if unknown) */
  uint64_t total_msat;           /* live sets only */
  uint64_t settle_index;         /* done sets */
} amp_set_info_t;

/* amp_engine_set_lookup finds a set by set_id (AMP) or payment_hash (MPP):
 * a live one in memory, a settled or cancelled one in the store (its settle
 * log record: one LMDB read). An id that names both an AMP set and an MPP
 * payment gives the AMP set (the MPP one: amp_engine_invoice_sets). Returns
 * AMP_OK, AMP_ERR_NOTFOUND, AMP_ERR_IO. */
AMP_WARN_UNUSED int amp_engine_set_lookup(amp_engine_t *e, const uint8_t id[32],
                                          amp_set_info_t *out);

/* amp_engine_set_list writes up to max sets, skipping the first `skip`: the
 * live ones (and the few done ones the store did not record) in table
 * order, then the settled and cancelled ones in settle-index order from the
 * store's log. Returns the count. Cost: O(skip + max) (LMDB reads for the
 * log part). */
size_t amp_engine_set_list(amp_engine_t *e, size_t skip, amp_set_info_t *out, size_t max);

/* One held HTLC as the admin sees it. */
typedef struct {
  uint64_t gateway_id;
  uint64_t scid;
  uint64_t htlc_id;
  uint64_t amount_msat;
  uint32_t cltv_expiry;
  uint8_t set_id[32];
  uint64_t deadline_ms;          /* CLOCK_MONOTONIC ms of its hold timeout */
  uint32_t child_index;          /* AMP child index (0 for MPP) */
} amp_held_info_t;

/* amp_engine_held_list writes up to max held HTLCs (skipping `skip`).
 * Returns the count. */
size_t amp_engine_held_list(amp_engine_t *e, size_t skip, amp_held_info_t *out, size_t max);

/* amp_engine_set_table_size counts the sets the engine holds in memory: the
 * live ones, plus a done record for each outcome the store did not record.
 * A durable outcome leaves nothing here. Admin thread; cost O(table). */
size_t amp_engine_set_table_size(amp_engine_t *e);

/* amp_engine_invoice_sets writes up to max sets of the invoice with that
 * payment_addr: live ones (table order), then settled and cancelled ones in
 * settle-index order, the newest ones when there are more. Returns the count
 * (the total may be larger). Cost: O(live sets) plus O(its sets) store
 * reads (amp_store_invoice_sets); for an invoice of a store written before
 * that chain, a walk of the whole settle log (its oldest ones then). */
size_t amp_engine_invoice_sets(amp_engine_t *e, const uint8_t addr[32], amp_set_info_t *out,
                               size_t max);

/* amp_engine_worker_stats copies the counters of worker idx (0 .. workers-1),
 * or with idx == workers those of the admin path, into out (gauges: the
 * engine's). AMP_ERR_RANGE past that. Racy like amp_engine_stats. Any thread. */
AMP_WARN_UNUSED int amp_engine_worker_stats(const amp_engine_t *e, unsigned idx,
                                            amp_engine_stats_t *out);

#endif /* AMP_ENGINE_H */
