/* amp_inflight.h: a fixed-size concurrent hash set of objects, for the
 * engine's uniqueness checks on what is in flight ((scid, htlc id) and
 * (cltv, onion tag)), where one operation should touch one cache line that
 * the caller can prefetch a burst ahead.
 *
 * What it stores: pointers to the caller's objects, each under a 64-bit hash
 * of its key. The table never sees keys: the caller passes a match callback
 * and its key, and must give equal keys equal hashes. The table never
 * allocates, moves, frees or writes the objects.
 *
 * The hash must be uniform over all 64 bits (a keyed hash: amp_siphash with a
 * process secret, as the engine's are). The low bits choose the home bucket,
 * the top 11 bits are the fingerprint; a hash the sender can steer would let
 * it fill one bucket's neighbourhood and make inserts fail (NULL).
 *
 * Layout. The table is an array of buckets of one 64-byte cache line each,
 * aligned to 64:
 *   byte 0       lock (spinlock, taken by add_unique and del of this home)
 *   byte 1       reach: the farthest distance (0..31) at which an entry whose
 *                home is this bucket sits; exact, also after deletes
 *   bytes 2..13  6 tags of 16 bits: 11-bit fingerprint (hash >> 53, 0 made 1)
 *                << 5 | distance of the slot's bucket from the entry's home;
 *                0 = empty
 *   bytes 16..63 6 object pointers; NULL = empty
 * The home bucket is hash & (buckets - 1). An entry that does not fit there
 * goes to the first empty slot of the next buckets, up to distance 31
 * (AMP_INFLIGHT_PROBE_LIMIT = 32 buckets); the array has 31 extra buckets
 * past the last home instead of wrapping round. Entries never move once
 * placed.
 * Buckets: the next power of two >= ceil(capacity / 3): at most half the
 * slots are used at capacity (between 1/4 and 1/2 depending on the rounding).
 * Memory: (buckets + 31) * 64 bytes, allocated and zeroed (so touched) in
 * amp_inflight_new; e.g. capacity 2^20 + 4096 (the engine's default with one
 * worker): 2^19 buckets, 32 MiB.
 *
 * Why the distance sits in the tag (the design first suggested 16-bit
 * fingerprints and a reach byte that only grows): the home can recompute its
 * reach when it loses its farthest entry, so after hours of churn a lookup
 * still stops at the true reach instead of a ratcheted one. A tag hit is also
 * home-specific: two tags are equal only for the same home and the same 11
 * bits (1/2048 per other entry of that home, ~3 of them at half load), so
 * the match callback, the one access outside the table, runs on ~0.15% of
 * misses. Why 32 buckets and not 16: see the failure rate.
 *
 * Measured, at the worst load (capacity = 3 * 2^k: half the slots used),
 * random 64-bit hashes, a fresh fill then deleting and re-inserting at random
 * (test_inflight, and --bench at 2^20 buckets):
 *   - no insert failed in ~230 million; the farthest entry ever seen sat at
 *     distance 13 (after churn; 8 on a fresh fill).
 *   - entries by distance, fresh: 98.2% at home, 1.6% at 1, 0.15% at 2;
 *     after churn (steady state from ~4 x capacity re-inserts on): 93.4%,
 *     5.7%, 0.74%, then each further distance ~4.6 times rarer. Extrapolated,
 *     an insert would reach distance 16 about once in 10^12 and distance 32
 *     (a failure) about once in 10^22: practically, NULL means the hash is
 *     not uniform.
 *   - lines read per operation in steady state: homes with reach 0: 86%, 1:
 *     12%, 2: 1.8%, 3+: 0.4%: 1.17 lines on average. At the engine's default
 *     (2^20 + 4096 in 2^19 buckets, a third of the slots): 98.7% of entries
 *     at home, 98% of homes with reach 0.
 *   - one thread, 526k entries in 2^19 buckets (32 MiB, cold), bursts of 32
 *     with the next burst prefetched: add_unique 21-28 ns, lookup 16-22 ns,
 *     del 16-20 ns; without the prefetch 72-110 / 39-72 / 34-67 ns. cds_lfht
 *     with the same hashes (the engine's flags, nodes in one array):
 *     155-370 / 110-220 / 120-220 ns. (A shared 2-CPU VM: ranges of runs.)
 *
 * Concurrency. add_unique and del on the same key are serialized by the home
 * bucket's lock (equal keys have equal hashes, hence one home): that is the
 * whole uniqueness argument. Slots in later buckets are claimed with a
 * compare-and-swap on the pointer (other homes claim slots there too), so
 * one operation holds one lock and there is no lock order to respect. The
 * lock spins (with the CPU's pause) and calls sched_yield after 64 spins, so
 * a holder preempted on an oversubscribed machine does not stall others for
 * a whole time slice. Lookups, for_each and count take no lock: they read
 * tags and pointers with atomic loads; a slot being filled or emptied is
 * seen either way, and the match callback filters anything stale. Writers
 * publish a slot's pointer before its tag and clear the tag before the
 * pointer, so a reader that sees a tag sees the pointer that came with it
 * (or a later one, which the match callback judges).
 *
 * Object lifetime is the caller's: after amp_inflight_del returns, a
 * concurrent reader may still hold (and match) the object, so the engine
 * frees it after an RCU grace period and calls the lock-free functions
 * inside read-side sections.
 *
 * Functions that return int give AMP_OK or a negative AMP_ERR_* (amp_util.h).
 * No function validates its table argument: it must come from
 * amp_inflight_new.
 */
#ifndef AMP_INFLIGHT_H
#define AMP_INFLIGHT_H

#include <stddef.h>
#include <stdint.h>

#include "amp_util.h"

typedef struct amp_inflight amp_inflight_t;

/* The largest capacity amp_inflight_new accepts (2^31 buckets, 128 GiB). */
#define AMP_INFLIGHT_MAX_CAPACITY ((uint64_t)1 << 32)
/* How far an entry may sit from its home bucket, plus one: inserts look at
 * most this many buckets. */
#define AMP_INFLIGHT_PROBE_LIMIT 32

/* amp_inflight_match_fn returns 1 when obj has the key key, 0 otherwise. It
 * is called with an object that may be in the middle of being removed (never
 * one that was never inserted), so it must only read the key fields, which
 * must not change while the object is in the table. */
typedef int (*amp_inflight_match_fn)(const void *obj, const void *key);

/* amp_inflight_new allocates an empty table for at most capacity entries at
 * once (see the header comment for its size). *out is the table, or NULL on
 * error.
 * Returns AMP_OK; AMP_ERR_RANGE for capacity 0 or above
 * AMP_INFLIGHT_MAX_CAPACITY; AMP_ERR_NOMEM when the allocation fails.
 * Cost: one allocation and a memset of the whole table (the hot path never
 * faults a page in). Thread-safe. */
AMP_WARN_UNUSED int amp_inflight_new(amp_inflight_t **out, uint64_t capacity);

/* amp_inflight_delete frees the table (t may be NULL). Entries are
 * forgotten, not touched. No other thread may use t any more: in the engine,
 * after the workers stopped and a grace period passed. */
void amp_inflight_delete(amp_inflight_t *t);

/* amp_inflight_add_unique inserts obj under hash unless an entry matching key
 * is present.
 * Returns obj when it was inserted; the present entry when one matches key
 * (the table is unchanged); NULL when no slot is empty within
 * AMP_INFLIGHT_PROBE_LIMIT buckets of the home (nothing inserted: count it
 * and drop, like an empty pool; see the measured rate above).
 * Preconditions: obj non-NULL and not in this table; hash is the caller's
 * hash of key, and match(obj, key) would return 1.
 * Thread-safe: any number of threads may add, delete and look up at once;
 * two adds of equal keys never both insert. Takes the home bucket's lock;
 * match runs under it (it must not call into this table).
 * Cost: the home line (lock, tags, one compare-and-swap, unlock), plus one
 * line per bucket up to the home's reach and, when the home is full, to the
 * empty slot; match runs (one access to the object) only on a tag hit. Does
 * no input validation. */
AMP_WARN_UNUSED void *amp_inflight_add_unique(amp_inflight_t *t, uint64_t hash,
                                              amp_inflight_match_fn match, const void *key,
                                              void *obj);

/* amp_inflight_del removes obj (by pointer) inserted under hash.
 * Returns AMP_OK; AMP_ERR_NOTFOUND when obj is not in the table under this
 * hash (nothing changes; an object inserted under another hash is not found
 * either).
 * Thread-safe, as add_unique; obj's memory is not read (readers may still
 * hold it: see the header comment).
 * Cost: the home line, plus the lines up to the home's reach; when obj was
 * the farthest entry of its home, the lines back from there to the next
 * entry of the home (to recompute the reach). */
AMP_WARN_UNUSED int amp_inflight_del(amp_inflight_t *t, uint64_t hash, const void *obj);

/* amp_inflight_lookup returns an entry inserted under hash that matches key,
 * or NULL. An entry present for the whole call is found; one added or
 * removed meanwhile may be found or not.
 * Lock-free: safe concurrently with every other function but
 * amp_inflight_delete; what it returns stays valid as long as the caller
 * keeps objects alive (RCU read-side section in the engine).
 * Cost: the home line plus one line per bucket up to the home's reach (0 in
 * ~99% of homes at capacity); match only on a tag hit. Does no input
 * validation. */
AMP_WARN_UNUSED void *amp_inflight_lookup(const amp_inflight_t *t, uint64_t hash,
                                          amp_inflight_match_fn match, const void *key);

/* amp_inflight_prefetch starts loading the home bucket of hash into the
 * cache, for writing (add_unique and del write it). Call it a burst ahead of
 * the operation. Never faults; no effect on the table. */
void amp_inflight_prefetch(const amp_inflight_t *t, uint64_t hash);

/* amp_inflight_for_each calls fn(obj, ctx) for the entries in the table:
 * every entry present for the whole call exactly once; entries added or
 * removed meanwhile at most once each. Returns the number of calls.
 * Lock-free (no lock is held while fn runs): fn may add or delete entries,
 * including the one it was given; other threads may too.
 * Cost: a scan of the whole table, (buckets + 31) lines: admin and shutdown
 * only. */
size_t amp_inflight_for_each(const amp_inflight_t *t, void (*fn)(void *obj, void *ctx),
                             void *ctx);

/* amp_inflight_count returns the number of entries: exact when no thread is
 * writing, approximate otherwise.
 * Cost: a scan of the whole table, like for_each: the table keeps no shared
 * counter, which every add and del of every worker would write (one line
 * bouncing between cores). Admin and tests only. Lock-free. */
size_t amp_inflight_count(const amp_inflight_t *t);

/* Occupancy, for tests, benchmarks and metrics. */
typedef struct {
  uint64_t buckets;       /* home buckets (a power of two) */
  uint64_t slots;         /* all slots, the 31 extra buckets included */
  uint64_t bytes;         /* memory of the bucket array */
  uint64_t entries;
  uint64_t at_distance[AMP_INFLIGHT_PROBE_LIMIT]; /* entries by distance from home */
  uint64_t with_reach[AMP_INFLIGHT_PROBE_LIMIT];  /* home buckets by reach: a lookup
                                                   * there reads reach + 1 lines */
  unsigned max_distance;  /* largest distance of an entry (0 when empty) */
  unsigned max_reach;     /* largest reach of a home bucket */
} amp_inflight_stat_t;

/* amp_inflight_stat fills *st. A snapshot: approximate when threads write.
 * Cost: a scan of the whole table. Lock-free. */
void amp_inflight_stat(amp_inflight_stat_t *st, const amp_inflight_t *t);

/* amp_inflight_verify checks the table's invariants: no lock held; in each
 * slot the tag is 0 exactly when the pointer is NULL; a tag's distance
 * points at a home bucket; each home's reach is exactly the farthest
 * distance of its entries (0 when it has none) and the extra buckets have
 * reach 0. Returns AMP_OK or AMP_ERR_STATE (the first broken invariant is
 * printed to stderr). Only while no thread writes. Cost: a scan of the
 * table. */
AMP_WARN_UNUSED int amp_inflight_verify(const amp_inflight_t *t);

#endif /* AMP_INFLIGHT_H */
