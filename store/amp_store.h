/* amp_store.h: ampd's durable store on LMDB.
 *
 * One LMDB environment in the data directory, with named databases:
 *   meta        "schema" -> u32 schema version; "node_id" -> 33-byte pubkey
 *   invoices    payment_addr[32] -> invoice record (amp_store_invoice_t, encoded)
 *   settles     be64 settle_index -> one settled or cancelled set with its
 *               HTLCs (appended with MDB_APPEND: the index only grows)
 *   resolutions be64 scid || be64 htlc_id -> the answer given to that HTLC
 *               (fulfill + preimage + settle_index, or fail + failure message)
 *   replay      be32 cltv_expiry || tag[16] -> be64 scid || be64 htlc_id
 *               (the onion replay log; expired entries go by a range delete)
 *   circuits    reserved for forwards
 *
 * Writes: one writer thread owns every write transaction. Producers (the
 * engine's workers, the admin thread) hand it intents through one lock-free
 * single-producer ring each; the writer commits them in groups (up to
 * group_max intents or group_usec microseconds after the first, whichever
 * comes first: one transaction, one sync) and then hands each intent back on
 * its producer's completion ring with its status. A producer releases a
 * settlement's preimages only after polling its intent back with status
 * AMP_OK: that is invariant 1 of DESIGN.md.
 *
 * Reads: workers never open LMDB on the common path. In-memory filters
 * (amp_store_maybe_resolved, amp_store_maybe_replayed) say "definitely not
 * there" without touching the disk; only a hit goes to LMDB (a read txn, which
 * never waits for the writer).
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
 */
#ifndef AMP_STORE_H
#define AMP_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "amp_util.h"

#define AMP_STORE_SCHEMA_VERSION 1

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
} amp_store_invoice_t;

/* One HTLC of a settled or cancelled set. */
typedef struct {
  uint64_t scid;
  uint64_t htlc_id;
  uint64_t amount_msat;
  uint32_t cltv_expiry;
  uint32_t child_index;
  uint8_t preimage[32];        /* zero for a cancelled set; a secret */
  uint8_t onion_tag[16];       /* replay-log tag of the HTLC's onion */
} amp_store_htlc_t;

typedef enum {
  AMP_INTENT_SETTLE = 1,     /* a complete, verified set: settle log, invoice,
                                resolutions and replay entries, one txn */
  AMP_INTENT_CANCEL_SET = 2, /* a set failed as a whole (reconstruction
                                mismatch, invoice cancelled): recorded so the
                                set_id can never settle later */
  AMP_INTENT_FAIL = 3,       /* one HTLC failed: its resolution (+ replay) */
  AMP_INTENT_INVOICE_PUT = 4,/* add or update an invoice (admin) */
  AMP_INTENT_PRUNE = 5,      /* range-delete replay entries with
                                cltv_expiry < height */
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
  uint8_t set_id[32];          /* AMP set_id, or the payment_hash for MPP */
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

/* amp_store_close stops accepting intents, commits everything already
 * submitted, hands it back, joins the writer and closes LMDB. Producers must
 * have stopped submitting. Intents still on completion rings are lost to the
 * producers (they were committed). */
void amp_store_close(amp_store_t *st);

/* amp_store_submit queues an intent on producer's ring. Never blocks.
 * Returns AMP_OK or AMP_ERR_FULL (ring full: the caller answers the HTLC with
 * a temporary failure or retries later). Thread safety: one thread per
 * producer index. Cost: ~20 ns. */
AMP_WARN_UNUSED int amp_store_submit(amp_store_t *st, unsigned producer, amp_store_intent_t *in);

/* amp_store_poll takes up to max completed intents of producer (in commit
 * order) into done[]. Returns how many. Never blocks. Same thread rule. */
unsigned amp_store_poll(amp_store_t *st, unsigned producer, amp_store_intent_t **done,
                        unsigned max);

/* amp_store_maybe_resolved: 0 if (scid, htlc_id) was certainly never resolved
 * in a commit, 1 if it may have been (then ask amp_store_resolution_get).
 * Lock-free, thread-safe, no disk access. */
int amp_store_maybe_resolved(const amp_store_t *st, uint64_t scid, uint64_t htlc_id);

/* amp_store_resolution_get reads the committed answer of an HTLC.
 * Returns AMP_OK, AMP_ERR_NOTFOUND, AMP_ERR_IO. Thread-safe (own read txn). */
AMP_WARN_UNUSED int amp_store_resolution_get(amp_store_t *st, uint64_t scid, uint64_t htlc_id,
                                             amp_store_resolution_t *out);

/* amp_store_maybe_replayed / amp_store_replay_get: the same pair for the
 * onion replay log. replay_get returns the (scid, htlc_id) that first used
 * the onion, AMP_ERR_NOTFOUND, or AMP_ERR_IO. */
int amp_store_maybe_replayed(const amp_store_t *st, uint32_t cltv_expiry, const uint8_t tag[16]);
AMP_WARN_UNUSED int amp_store_replay_get(amp_store_t *st, uint32_t cltv_expiry,
                                         const uint8_t tag[16], uint64_t *scid,
                                         uint64_t *htlc_id);

/* Recovery iteration (at start, before workers run; the admin thread may use
 * them at any time). The callback returns 0 to go on, non-zero to stop.
 * Return AMP_OK or AMP_ERR_IO. */
typedef int (*amp_store_invoice_fn)(void *ctx, const amp_store_invoice_t *inv);
AMP_WARN_UNUSED int amp_store_invoice_foreach(amp_store_t *st, amp_store_invoice_fn fn, void *ctx);
AMP_WARN_UNUSED int amp_store_invoice_get(amp_store_t *st, const uint8_t payment_addr[32],
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
/* amp_store_set_foreach walks the settle log from index `from` (1 = all). */
AMP_WARN_UNUSED int amp_store_set_foreach(amp_store_t *st, uint64_t from, amp_store_set_fn fn,
                                          void *ctx);

/* Counters (monotonic, read without locks). */
typedef struct {
  uint64_t commits;
  uint64_t intents;
  uint64_t commit_errors;
  uint64_t group_max_seen;
  uint64_t sync_ns_total;      /* sum of commit durations */
  uint64_t replay_entries;
  uint64_t resolutions;
  uint64_t settles;
} amp_store_stats_t;
void amp_store_stats(const amp_store_t *st, amp_store_stats_t *out);

/* amp_store_meta_get/put: small metadata values (node id...). put goes
 * through its own write transaction (not for the hot path). */
AMP_WARN_UNUSED int amp_store_meta_put(amp_store_t *st, const char *key, const void *val,
                                       size_t len);
AMP_WARN_UNUSED long amp_store_meta_get(amp_store_t *st, const char *key, void *val, size_t cap);

#endif /* AMP_STORE_H */
