/* amp_store.h: ampd's durable store on LMDB.
 *
 * One LMDB environment in the data directory (created 0700 if missing), with
 * named databases (schema version AMP_STORE_SCHEMA_VERSION):
 *   meta      "schema" -> be32 version; "prune_height" -> be32;
 *             "add_index" -> be64; other keys (node id...) via amp_store_meta_*
 *   invoices  payment_addr[32] -> invoice record (amp_store_invoice_t, encoded)
 *   settles   be64 settle_index -> one settled or cancelled set with all its
 *             HTLCs (scid, htlc_id, amount, cltv, child index, preimage, onion
 *             tag). Appended with MDB_APPEND: the index only grows. This record
 *             IS the resolution of each of its HTLCs (fulfill + preimage +
 *             settle_index, or for a cancelled set the fail answer) and holds
 *             their onion replay entries. It links to the settle index of
 *             its invoice's set before it, and the invoice record to its
 *             newest set: an invoice's sets are a chain (no extra put per
 *             settle: the invoice is updated anyway; a cancel updates it
 *             too), so listing them reads only them.
 *   fails     be64 fail_seq -> one failed HTLC (scid, htlc_id, cltv, onion tag,
 *             failure code and message). Appended with MDB_APPEND. Its
 *             resolution and replay entry.
 *   circuits  reserved for forwards
 *
 * Schema decision (measured by bench/bench_store.c, figures in
 * bench/results/store.json; 2-core VM, full sync, groups of 512): LMDB costs
 * about one 4 KiB page written per random-keyed put (512 random puts dirty
 * ~512 leaf pages) but ~1/25 page per appended record. The first schema
 * (random-keyed "resolutions" by (scid, htlc_id) and "replay" by (cltv, tag),
 * one put each per HTLC) made a 1-HTLC settlement 4 puts, 2-3 of them
 * random: 42k sets/s on an empty database, 15k sets/s once it holds 1M
 * entries, against a 50k target. Now a settlement is 2 puts, one append to
 * settles and one invoice update (hot invoices share pages), whatever the
 * number of HTLCs; a failed HTLC is one append. Measured: 180-190k durable
 * 1-HTLC sets/s (commit p50 1.9 ms, p99 3 ms), 140k 3-HTLC, 52k 16-HTLC
 * (850k HTLCs/s), 150k with 1M sets already stored; the writer is then
 * ~70% in commits and spends ~3 us of CPU per 1-HTLC set.
 * The lookups by key, (scid, htlc_id) -> answer, (cltv, tag) -> HTLC and
 * set_id -> settle_index, are in-memory indexes (amp_index.h) rebuilt at
 * open by walking the two logs: memory ~105 B per live HTLC (entry and two
 * table slots) and ~57 B per set ever settled or cancelled; opening a store
 * of 1M sets takes ~1.3 s. The same kind of index holds every invoice's
 * payment_addr (amp_store_maybe_invoice; ~60 B per invoice, built at open
 * from the invoices database).
 *
 * Retention: PRUNE(height) forgets replay entries with cltv_expiry < height
 * (such an HTLC fails rule 7 anyway) and resolutions with cltv_expiry <
 * height - AMP_STORE_RESOLUTION_KEEP (an HTLC that far past its expiry is
 * resolved on chain; a redelivery of it is no longer answered from the
 * store); a cltv_expiry further than AMP_STORE_CLTV_MAX_AHEAD blocks past the
 * prune height counts as that height. The filters are counting Bloom filters:
 * what is forgotten leaves them too, they never go stale. The settle log is
 * history and is never deleted; the fail log loses its expired prefix by a
 * cursor range delete from its start; prune_height is durable so a reopened
 * store forgets the same entries.
 *
 * Writes: one writer thread owns every write transaction. Producers (the
 * engine's workers, the admin thread) hand it intents through one lock-free
 * single-producer ring each; the writer commits them in groups (up to
 * group_max intents or group_usec microseconds after the first, whichever
 * comes first: one transaction, one sync) and then hands each intent back on
 * its producer's completion ring with its status. A producer releases a
 * settlement's preimages only after polling its intent back with status
 * AMP_OK: that is invariant 1 of DESIGN.md. If the commit of a group fails
 * (map full, I/O error) every intent of the group comes back with AMP_ERR_FULL
 * or AMP_ERR_IO, nothing of the group is in the store or in memory, earlier
 * commits are intact and later groups are tried afresh. An intent the store
 * refuses (see amp_intent_kind_t) comes back with that refusal and changes
 * nothing, while the rest of its group commits.
 *
 * Reads: workers never open LMDB on the common path. In-memory filters
 * (amp_store_maybe_resolved, amp_store_maybe_replayed) say "definitely not
 * there" without a lock or a syscall; only a hit takes the index's read lock
 * (and, for a resolution or an invoice, a read through the worker's own
 * kept read txn: no lock, and it never waits for the writer).
 *
 * Durability (sync modes):
 *   AMP_STORE_SYNC_FULL   default. fsync at every commit: a committed group
 *                         survives power loss.
 *   AMP_STORE_SYNC_META   MDB_NOMETASYNC: data synced, meta page not; a crash
 *                         of the OS or power may undo the LAST commit(s), never
 *                         corrupt the store. Preimages already released for an
 *                         undone commit are then not in the store: risk of
 *                         settling twice on redelivery.
 *   AMP_STORE_SYNC_NONE   MDB_NOSYNC: the OS writes when it likes. A process
 *                         crash loses nothing (the page cache survives), an OS
 *                         crash or power loss loses recent commits. For tests
 *                         and benchmarks.
 *
 * Threads: amp_store_submit/poll: one thread per producer index. Everything
 * else: any thread, except open/stop/close (one thread, no concurrent use).
 */
#ifndef AMP_STORE_H
#define AMP_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "amp_util.h"

#define AMP_STORE_SCHEMA_VERSION 1

/* Resolutions are kept this many blocks past their HTLC's cltv_expiry. */
#define AMP_STORE_RESOLUTION_KEEP 2016
/* An HTLC whose cltv_expiry lies more than this many blocks past the prune
 * height when it is resolved is kept as if it expired there (a peer chooses
 * cltv_expiry; an absurd one must not pin memory or the fail log forever). */
#define AMP_STORE_CLTV_MAX_AHEAD 4032
/* Most HTLCs in one settled or cancelled set. */
#define AMP_STORE_MAX_HTLCS 4096
/* Most producers. */
#define AMP_STORE_MAX_PRODUCERS 256

typedef struct amp_store amp_store_t;

typedef enum {
  AMP_STORE_SYNC_FULL = 0,
  AMP_STORE_SYNC_META = 1,
  AMP_STORE_SYNC_NONE = 2,
} amp_store_sync_t;

typedef struct {
  const char *dir;          /* data directory; created (0700) if absent */
  size_t map_size;          /* LMDB map size in bytes; default 1 GiB when 0 */
  unsigned group_max;       /* intents per commit; default 512 when 0 */
  unsigned group_usec;      /* max wait after the first intent; default 200 */
  amp_store_sync_t sync;
  unsigned producers;       /* number of producer rings (workers + admin); >= 1 */
  unsigned ring_size;       /* slots per ring, a power of two; default 8192 */
  uint64_t filter_entries;  /* live HTLCs each in-memory filter is sized for
                               (~1% false positives at that load, ~6 B each);
                               default 1 << 20. Past 1.5x that, a filter is
                               rebuilt 4x larger (a pause of ~50 ns per live
                               HTLC in the writer); the index tables start
                               sized for it too, past 1x they double (a
                               rehash, same order of pause). Tables and
                               filters are resident from open: ~90 MiB at
                               the default. */
} amp_store_cfg_t;

/* Invoice as stored. AMP invoices have no preimage and stay open after a
 * settled set; MPP invoices carry the preimage and settle once. */
#define AMP_INVOICE_AMP 1
#define AMP_INVOICE_MPP 2
#define AMP_INVOICE_OPEN 0
#define AMP_INVOICE_SETTLED 1
#define AMP_INVOICE_CANCELED 2

typedef struct {
  uint8_t payment_addr[32];
  uint8_t payment_hash[32];    /* MPP only */
  uint8_t preimage[32];        /* MPP only; a secret */
  uint8_t type;                /* AMP_INVOICE_AMP / _MPP */
  uint8_t state;               /* AMP_INVOICE_OPEN / _SETTLED / _CANCELED */
  uint8_t placeholder;         /* created by a spontaneous AMP payment */
  uint64_t value_msat;         /* 0: any amount (AMP only) */
  uint64_t amt_paid_msat;      /* accumulates over settled sets */
  uint64_t created;            /* unix seconds */
  uint64_t expiry;             /* seconds after created */
  uint32_t cltv_delta;         /* min final cltv delta */
  uint32_t sets_settled;
  uint64_t add_index;          /* order of creation, from 1 */
  char memo[128];              /* NUL-terminated */
  /* The store's own (INVOICE_PUT ignores what it is given): its newest
   * set's settle index, and whether every set of it is on the chain that
   * amp_store_invoice_sets walks (0 for invoices of a store written before
   * the chain). */
  uint64_t last_set;
  uint8_t chained;
} amp_store_invoice_t;

/* One HTLC of a settled or cancelled set. An all-zero onion_tag means "no
 * replay entry". */
typedef struct {
  uint64_t scid;
  uint64_t htlc_id;
  uint64_t amount_msat;
  uint32_t cltv_expiry;
  uint32_t child_index;
  uint8_t preimage[32];        /* zero for a cancelled set; a secret */
  uint8_t onion_tag[16];       /* replay-log tag of the HTLC's onion */
} amp_store_htlc_t;

/* Intent kinds, with what the writer checks before writing anything. A check
 * that fails gives the intent that status and leaves the store unchanged.
 *   SETTLE      set_id, payment_addr, amount_msat, htlcs[n_htlcs] (1 ..
 *               AMP_STORE_MAX_HTLCS). Appends the set (settle_index = last + 1)
 *               and updates the invoice: amt_paid_msat += amount_msat,
 *               sets_settled++, an MPP invoice becomes SETTLED. Each HTLC is
 *               resolved (fulfill with its preimage) and its onion tag enters
 *               the replay log. Refused: AMP_ERR_EXISTS (set_id already
 *               settled or cancelled, or an HTLC already resolved or twice in
 *               the set), AMP_ERR_NOTFOUND (no invoice), AMP_ERR_STATE
 *               (invoice cancelled, or an MPP invoice already settled),
 *               AMP_ERR_RANGE (bad n_htlcs).
 *   CANCEL_SET  set_id, payment_addr, amount_msat, htlcs[n_htlcs] (0 ..
 *               MAX), fail_code, fail_malformed, fail_msg: appends a cancelled
 *               set (the set_id can never settle later) whose HTLCs are
 *               resolved as failed, each with this same failure (for per-HTLC
 *               messages, submit n_htlcs = 0 and one FAIL per HTLC).
 *               settle_index is given. Refused: AMP_ERR_EXISTS, AMP_ERR_RANGE.
 *   FAIL        scid, htlc_id, cltv_expiry, fail_*, onion_tag if
 *               has_onion_tag: appends one failed HTLC (resolution + replay
 *               entry). Refused: AMP_ERR_EXISTS (already resolved),
 *               AMP_ERR_RANGE (fail_msg_len > 64).
 *   INVOICE_PUT invoice: adds it (add_index given by the store) or updates
 *               it; an update keeps the store's amt_paid_msat, sets_settled,
 *               add_index and a SETTLED state. The record as stored is copied
 *               back into invoice. Refused: AMP_ERR_RANGE (bad type/state).
 *   PRUNE       height: forgets replay entries with cltv_expiry < height and
 *               resolutions with cltv_expiry < height - RESOLUTION_KEEP (see
 *               the top of this file). A lower height than before is a no-op.
 * A kind not listed: AMP_ERR_RANGE. */
typedef enum {
  AMP_INTENT_SETTLE = 1,
  AMP_INTENT_CANCEL_SET = 2,
  AMP_INTENT_FAIL = 3,
  AMP_INTENT_INVOICE_PUT = 4,
  AMP_INTENT_PRUNE = 5,
} amp_intent_kind_t;

/* An intent. Owned by the producer from submit until it polls it back: the
 * writer reads it (and the arrays it points to) in between and fills in the
 * result fields. */
typedef struct amp_store_intent {
  uint8_t kind;                /* amp_intent_kind_t */
  void *cookie;                /* the producer's, untouched */
  /* results, set by the writer before the intent is handed back */
  int status;                  /* AMP_OK or the error (AMP_ERR_IO, _FULL...) */
  uint64_t settle_index;       /* SETTLE / CANCEL_SET: the log index given */
  uint64_t commit_ns;          /* CLOCK_MONOTONIC ns when its commit returned */
  /* SETTLE, CANCEL_SET */
  uint8_t set_id[32];          /* the set's key: AMP set_id; for MPP the engine's key derived from
                                * the preimage (amp_engine.c store_set_id_), so the two never meet */
  uint8_t payment_addr[32];    /* the invoice */
  uint64_t amount_msat;        /* sum of the HTLCs */
  uint32_t n_htlcs;
  const amp_store_htlc_t *htlcs;
  /* FAIL: one HTLC (htlcs[0] when n_htlcs == 1 also works for the tag) */
  uint64_t scid;
  uint64_t htlc_id;
  uint32_t cltv_expiry;
  uint8_t onion_tag[16];
  uint8_t has_onion_tag;
  uint16_t fail_code;          /* BOLT #4 failure code, or the fail_malformed code */
  uint8_t fail_malformed;      /* 1: answered with update_fail_malformed_htlc */
  uint16_t fail_msg_len;
  uint8_t fail_msg[64];        /* the failure message (code || data) */
  /* INVOICE_PUT */
  amp_store_invoice_t invoice;
  /* PRUNE */
  uint32_t height;
} amp_store_intent_t;

/* A resolution as read back for a redelivered HTLC. */
typedef struct {
  uint8_t settled;             /* 1: fulfilled with preimage; 0: failed */
  uint8_t preimage[32];
  uint64_t settle_index;
  uint16_t fail_code;
  uint8_t fail_malformed;
  uint16_t fail_msg_len;
  uint8_t fail_msg[64];
} amp_store_resolution_t;

/* amp_store_open opens (or creates) the store in cfg->dir, checks the schema
 * version (AMP_ERR_STATE with a log line naming both versions on mismatch),
 * rebuilds the in-memory filters, and starts the writer thread.
 * Returns AMP_OK, AMP_ERR_IO (with errno-style detail in the log),
 * AMP_ERR_STATE, AMP_ERR_CONFIG (bad cfg), AMP_ERR_NOMEM. */
AMP_WARN_UNUSED int amp_store_open(amp_store_t **st, const amp_store_cfg_t *cfg);

/* amp_store_stop stops accepting intents (submit then returns
 * AMP_ERR_STATE), commits everything already submitted, hands it back and
 * joins the writer. Reads keep working. Idempotent: a second call returns at
 * once. Completions that cannot be handed back because a producer stopped
 * polling with a full completion ring are dropped after 100 ms (counted;
 * their status is in the intent all the same). */
void amp_store_stop(amp_store_t *st);

/* amp_store_close stops (amp_store_stop) and closes LMDB, frees st. st may
 * be NULL (no-op). Producers must have stopped submitting. Intents still on
 * completion rings are lost to the producers (they were committed). */
void amp_store_close(amp_store_t *st);

/* amp_store_submit queues an intent on producer's ring. Never blocks.
 * Returns AMP_OK, AMP_ERR_FULL (ring full: the caller answers the HTLC with
 * a temporary failure or retries later), AMP_ERR_RANGE (no such producer) or
 * AMP_ERR_STATE (store stopping). Thread safety: one thread per producer
 * index. Cost: ~20 ns (one seq_cst fence; a futex wake only when the writer
 * sleeps, which it does only after ~1.3 ms idle: it naps 10, 20 .. 640 us
 * first, so a producer that submits at least that often makes no syscall;
 * the price is up to one nap's wait for an intent that comes during one:
 * counted, stats writer_sleeps and wakes). */
AMP_WARN_UNUSED int amp_store_submit(amp_store_t *st, unsigned producer, amp_store_intent_t *in);

/* amp_store_poll takes up to max completed intents of producer (in commit
 * order) into done[]. Returns how many. Never blocks. Same thread rule. */
unsigned amp_store_poll(amp_store_t *st, unsigned producer, amp_store_intent_t **done,
                        unsigned max);

/* amp_store_maybe_resolved: 0 if (scid, htlc_id) was certainly never resolved
 * in a commit, 1 if it may have been (then ask amp_store_resolution_get).
 * Lock-free, thread-safe, no disk access. */
int amp_store_maybe_resolved(const amp_store_t *st, uint64_t scid, uint64_t htlc_id);

/* Reads by key (amp_store_resolution_get, amp_store_invoice_get) take a
 * producer: the producer's thread (the one rule of submit and poll) reads
 * through that producer's read txn, kept between reads (reset, then renewed:
 * no lock, no allocation). AMP_STORE_ANY: any thread, a txn of its own
 * (LMDB takes a reader slot under its reader-table mutex at each begin: not
 * for a hot path). */
#define AMP_STORE_ANY (~0u)

/* amp_store_resolution_get reads the committed answer of an HTLC.
 * Returns AMP_OK, AMP_ERR_NOTFOUND, AMP_ERR_IO, AMP_ERR_RANGE (no such
 * producer). One LMDB read. */
AMP_WARN_UNUSED int amp_store_resolution_get(amp_store_t *st, unsigned producer, uint64_t scid,
                                             uint64_t htlc_id,
                                             amp_store_resolution_t *out);

/* amp_store_prefetch_resolved / _replayed: start loading what
 * amp_store_maybe_resolved / _replayed of the same key will read (one filter
 * block, a likely cache miss), so a worker overlaps the misses of a burst.
 * No effect on state, thread-safe, ~20 ns each (the key's keyed hash).
 * Return the key's hint: amp_store_maybe_*_hint(st, hint) answers as
 * amp_store_maybe_*(st, key) does, without hashing the key again (the hint
 * stays valid while the store is open). The same holds for
 * amp_store_prefetch_set / _invoice below. */
uint64_t amp_store_prefetch_resolved(const amp_store_t *st, uint64_t scid, uint64_t htlc_id);
uint64_t amp_store_prefetch_replayed(const amp_store_t *st, uint32_t cltv_expiry,
                                     const uint8_t tag[16]);
int amp_store_maybe_resolved_hint(const amp_store_t *st, uint64_t hint);
int amp_store_maybe_replayed_hint(const amp_store_t *st, uint64_t hint);

/* amp_store_maybe_replayed / amp_store_replay_get: the same pair for the
 * onion replay log. replay_get returns the (scid, htlc_id) that first used
 * the onion, AMP_ERR_NOTFOUND, or AMP_ERR_IO. */
int amp_store_maybe_replayed(const amp_store_t *st, uint32_t cltv_expiry, const uint8_t tag[16]);
AMP_WARN_UNUSED int amp_store_replay_get(amp_store_t *st, uint32_t cltv_expiry,
                                         const uint8_t tag[16], uint64_t *scid,
                                         uint64_t *htlc_id);

/* amp_store_maybe_set: 0 when set_id is certainly not settled or cancelled
 * (committed), 1 when it may be: then ask amp_store_set_find. A counting
 * filter: lock-free, no syscall, one cache line; ~0.5-1% false positives.
 * Thread-safe. */
int amp_store_maybe_set(const amp_store_t *st, const uint8_t set_id[32]);

/* amp_store_maybe_invoice: 0 when no invoice with payment_addr is committed
 * (nor in a group being committed), 1 when one may be: then ask
 * amp_store_invoice_get. The same kind of filter as amp_store_maybe_set,
 * over an in-memory index of every invoice's payment_addr (~60 B per
 * invoice, rebuilt at open), so the engine need not keep invoices it does
 * not use (spontaneous payments' placeholders) in memory. Thread-safe. */
int amp_store_maybe_invoice(const amp_store_t *st, const uint8_t payment_addr[32]);

/* amp_store_prefetch_set / _invoice: start loading the filter block that
 * amp_store_maybe_set / _invoice of the same key will read (a likely cache
 * miss once the store knows many sets or invoices), so a worker overlaps the
 * misses of a burst. No effect on state, thread-safe, ~20 ns each; they
 * return the key's hint for amp_store_maybe_set_hint / _invoice_hint, as
 * amp_store_prefetch_resolved does. */
uint64_t amp_store_prefetch_set(const amp_store_t *st, const uint8_t set_id[32]);
uint64_t amp_store_prefetch_invoice(const amp_store_t *st, const uint8_t payment_addr[32]);
int amp_store_maybe_set_hint(const amp_store_t *st, uint64_t hint);
int amp_store_maybe_invoice_hint(const amp_store_t *st, uint64_t hint);

/* amp_store_set_find: has set_id been settled or cancelled (committed)?
 * AMP_OK with its settle index and cancelled flag, or AMP_ERR_NOTFOUND.
 * In memory (read lock), thread-safe. */
AMP_WARN_UNUSED int amp_store_set_find(amp_store_t *st, const uint8_t set_id[32],
                                       uint64_t *settle_index, int *cancelled);

/* Recovery iteration (at start, before workers run; the admin thread may use
 * them at any time). The callback returns 0 to go on, non-zero to stop.
 * Return AMP_OK or AMP_ERR_IO. */
typedef int (*amp_store_invoice_fn)(void *ctx, const amp_store_invoice_t *inv);
AMP_WARN_UNUSED int amp_store_invoice_foreach(amp_store_t *st, amp_store_invoice_fn fn, void *ctx);
/* amp_store_invoice_get reads one invoice (producer: see
 * amp_store_resolution_get). AMP_OK, AMP_ERR_NOTFOUND, AMP_ERR_IO,
 * AMP_ERR_RANGE. */
AMP_WARN_UNUSED int amp_store_invoice_get(amp_store_t *st, unsigned producer,
                                          const uint8_t payment_addr[32],
                                          amp_store_invoice_t *out);

/* A settled or cancelled set as read back. htlcs points into a buffer valid
 * only during the callback. */
typedef struct {
  uint64_t settle_index;
  uint8_t cancelled;
  uint8_t set_id[32];
  uint8_t payment_addr[32];
  uint64_t amount_msat;
  uint64_t time_ns;            /* CLOCK_REALTIME ns of the commit */
  uint32_t n_htlcs;
  const amp_store_htlc_t *htlcs;
} amp_store_set_t;
typedef int (*amp_store_set_fn)(void *ctx, const amp_store_set_t *set);
/* amp_store_set_foreach walks the settle log from index `from` (1 = all).
 * Cost: O(sets from there). */
AMP_WARN_UNUSED int amp_store_set_foreach(amp_store_t *st, uint64_t from, amp_store_set_fn fn,
                                          void *ctx);

/* amp_store_invoice_sets walks the settled and cancelled sets of the
 * invoice with payment_addr, newest first, through the link each set record
 * keeps to the same invoice's set before it: O(its sets) reads, whatever
 * the log's size. Returns AMP_OK; AMP_ERR_NOTFOUND (no such invoice);
 * AMP_ERR_STATE when the invoice predates the chain (a store written before
 * it: walk the log instead, amp_store_set_foreach); AMP_ERR_IO (read error,
 * or a link to nothing); AMP_ERR_NOMEM. Thread-safe (one read txn). */
AMP_WARN_UNUSED int amp_store_invoice_sets(amp_store_t *st, const uint8_t payment_addr[32],
                                           amp_store_set_fn fn, void *ctx);

/* Counters (monotonic unless said, read without locks). Since open. */
typedef struct {
  uint64_t commits;            /* successful commits (groups) */
  uint64_t intents;            /* intents handed back, any status */
  uint64_t commit_errors;      /* failed commits (each fails a whole group) */
  uint64_t group_max_seen;
  uint64_t sync_ns_total;      /* sum of commit durations (write + sync) */
  uint64_t replay_entries;     /* replay entries committed */
  uint64_t resolutions;        /* HTLC resolutions committed */
  uint64_t settles;            /* SETTLE intents committed */
  uint64_t cancels;            /* CANCEL_SET intents committed */
  uint64_t fails;              /* FAIL intents committed */
  uint64_t invoice_puts;
  uint64_t prunes;
  uint64_t refused;            /* intents refused by a check (see kinds) */
  uint64_t puts;               /* LMDB puts in successful commits; puts per
                                  settlement = puts / settles in a pure
                                  settle load */
  uint64_t replay_pruned;      /* replay entries forgotten by PRUNE */
  uint64_t handback_waits;     /* times the writer waited for a full
                                  completion ring */
  uint64_t handback_dropped;   /* completions dropped at stop */
  uint64_t commit_p50_ns;      /* commit duration percentiles (log buckets, */
  uint64_t commit_p99_ns;      /*  ~6% resolution) and maximum */
  uint64_t commit_max_ns;
  uint64_t last_settle_index;  /* gauge */
  uint64_t resolutions_live;   /* gauge: HTLCs in the in-memory index */
  uint64_t replay_live;        /* gauge: live replay entries */
  uint64_t sets_known;         /* gauge: settled + cancelled sets */
  uint64_t invoices_known;     /* gauge: invoices in the store */
  uint64_t filter_grows;       /* filters rebuilt larger: live HTLCs went past
                                  1.5x cfg.filter_entries (or the last size) */
  uint64_t index_rehashes;     /* index tables (HTLCs, sets, invoices) doubled
                                  past their sizing: each a pause of ~100 ns
                                  per entry in the writer, that index's
                                  readers waiting */
  uint64_t writer_cpu_ns;      /* CPU time of the writer thread (as of its
                                  last group): CPU per intent, whatever the
                                  machine's load */
  uint64_t writer_sleeps;      /* the writer, idle past its naps (~1.3 ms),
                                  slept on its futex */
  uint64_t wakes;              /* submits that woke it (a futex syscall on
                                  the producer's thread each) */
} amp_store_stats_t;
void amp_store_stats(const amp_store_t *st, amp_store_stats_t *out);

/* amp_store_commit_hist copies the histogram of successful commit durations
 * (write + sync, nanoseconds; the same commits as `commits` and
 * `sync_ns_total`) into n and returns the number of commits it holds.
 * Layout: log2 with 2^AMP_STORE_COMMIT_HIST_SUB_BITS linear sub-buckets
 * (amp_metrics_lat_add_log2's): bucket b < 8 holds b ns; else, with e = b >> 3
 * and s = b & 7, [(8 + s) << (e - 1), (9 + s) << (e - 1)) ns. Only the writer
 * thread writes it; the copy is relaxed reads, not one snapshot (a commit
 * finishing meanwhile may or may not be in it). */
#define AMP_STORE_COMMIT_HIST_SUB_BITS 3
#define AMP_STORE_COMMIT_HIST_BUCKETS 512
uint64_t amp_store_commit_hist(const amp_store_t *st, uint64_t n[AMP_STORE_COMMIT_HIST_BUCKETS]);

/* amp_store_meta_get/put: small metadata values (node id...). put goes
 * through its own write transaction (not for the hot path; it waits for the
 * writer's current one). Keys: 1..128 bytes; "schema", "prune_height" and
 * "add_index" are the store's own (put: AMP_ERR_STATE). put returns AMP_OK,
 * AMP_ERR_FULL, AMP_ERR_IO, AMP_ERR_RANGE. get returns the value length
 * (copying min(len, cap) bytes), AMP_ERR_NOTFOUND or AMP_ERR_IO. */
AMP_WARN_UNUSED int amp_store_meta_put(amp_store_t *st, const char *key, const void *val,
                                       size_t len);
AMP_WARN_UNUSED long amp_store_meta_get(amp_store_t *st, const char *key, void *val, size_t cap);

#endif /* AMP_STORE_H */
