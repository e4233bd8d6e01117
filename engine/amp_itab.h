/* amp_itab.h: a concurrent hash set of object pointers that grows, for the
 * engine's invoice index by payment_addr, where a lookup should read one
 * cache line that can be prefetched instead of walking cold list nodes
 * (cds_lfht: 3-4 dependent misses for a miss, the common case for a
 * spontaneous payment's new payment_addr).
 *
 * What it stores: pointers to the caller's objects under a 64-bit hash of
 * their key. The table never sees keys: the caller passes a match callback
 * and its key, and must give equal keys equal hashes (a keyed hash, uniform
 * over 64 bits: amp_siphash with a process secret). It never frees, moves or
 * writes the objects.
 *
 * Layout: open addressing with linear probing over 16-byte slots {hash,
 * object}, four to a cache line; a slot whose object is NULL is empty. The
 * home slot is hash & (slots - 1); a probe ends at an empty slot.
 *
 * Removal leaves a tombstone (a reserved object value) so that probes still
 * pass the slot: lookups skip it, and an insert takes the first tombstone on
 * its key's probe path before the empty slot that ends it. Used slots (live
 * entries and tombstones) stay at most half the table: an insert that would
 * take a new slot past half rebuilds the table first, so a probe ends after
 * ~1.5 slots on average (one line, rarely two). A rebuild copies the live
 * entries only, into the smallest power of two of at least 64 slots and 4 per
 * live entry: it doubles a table of live entries only, and keeps or shrinks
 * one whose used slots are at least half tombstones. Tables shrink only then:
 * removals alone free no memory.
 * Memory: 16 B per slot: 32-64 B per entry while only inserts run, 64-128 B
 * per live entry after a rebuild over tombstones, more while removals run
 * with no inserts; plus the tables rebuilds replaced until they are reclaimed
 * (amp_itab_reclaim: with inserts only at most as much again, with removals
 * one more table per ~1/4 table of inserts, so reclaim after each rebuild).
 *
 * Concurrency:
 *   - amp_itab_lookup, amp_itab_prefetch, amp_itab_for_each, amp_itab_count
 *     take no lock. An inserter writes a slot's hash, then publishes its
 *     object with a release store; a reader that sees the object sees the
 *     hash. A lookup probes the table current when it starts, which holds
 *     every entry inserted and not removed before: a rebuild copies them all
 *     before it publishes the new table, later inserts and removals go to
 *     that one, and no slot of a table is emptied again.
 *   - amp_itab_add_unique and amp_itab_remove take one spin lock (the CPU's
 *     pause while it spins, sched_yield after 64 spins): they are
 *     serialized, which is the whole uniqueness argument. An insert that
 *     rebuilds copies every live entry under that lock: O(slots), ~10 ns per
 *     entry, at most once per ~1/4 table of inserts; size the table at
 *     creation for what is known (recovery).
 *   - A removed object may still be returned by lookups and for_each walks
 *     that began before the removal, and seen by their match callbacks: the
 *     caller frees it only when they have ended (the engine: an RCU grace
 *     period).
 *   - Replaced tables stay allocated until the caller reclaims them with
 *     amp_itab_reclaim once no lookup that began before the replacement can
 *     still run (the engine: an RCU grace period), or until amp_itab_delete.
 *
 * Functions that return int give AMP_OK or a negative AMP_ERR_* (amp_util.h)
 * unless said otherwise. No function validates its table argument: it must
 * come from amp_itab_new.
 */
#ifndef AMP_ITAB_H
#define AMP_ITAB_H

#include <stddef.h>
#include <stdint.h>

#include "amp_util.h"

typedef struct amp_itab amp_itab_t;

/* amp_itab_match_fn returns 1 when obj has the key key, 0 otherwise. It only
 * ever sees objects that were inserted, removed ones too until the lookups
 * that began before their removal end; their key fields must not change
 * meanwhile. */
typedef int (*amp_itab_match_fn)(const void *obj, const void *key);

/* amp_itab_new allocates an empty table sized for `expect` inserts without a
 * rebuild (0: a small one). *out is the table, or NULL on error.
 * Returns AMP_OK; AMP_ERR_RANGE for expect above 2^40; AMP_ERR_NOMEM.
 * Cost: one zeroed allocation of ~32 B per expected entry. Thread-safe. */
AMP_WARN_UNUSED int amp_itab_new(amp_itab_t **out, uint64_t expect);

/* amp_itab_delete frees the table and the ones rebuilds replaced (t may be
 * NULL); not the objects. Nothing else may use t then. */
void amp_itab_delete(amp_itab_t *t);

/* amp_itab_lookup returns the object under hash whose key matches, or NULL.
 * Cost: the home slot's cache line (a miss when cold), the match callback
 * for each slot with an equal hash. Lock-free; any thread. */
void *amp_itab_lookup(const amp_itab_t *t, uint64_t hash, amp_itab_match_fn match,
                      const void *key);

/* amp_itab_add_unique inserts obj (an object's address: not NULL, not 1)
 * under hash unless an object with the same key is there. Returns obj when
 * inserted, the object already there when not, NULL when a rebuild could not
 * allocate (nothing inserted). Cost: the lookup's to the empty slot that ends
 * the probe, under the insert lock; sometimes a rebuild (above). Any thread. */
void *amp_itab_add_unique(amp_itab_t *t, uint64_t hash, amp_itab_match_fn match,
                          const void *key, void *obj);

/* amp_itab_add_unique_if is amp_itab_add_unique with a condition: when the
 * key is absent, admit(ctx) runs under the insert lock, and if it returns 0
 * nothing is inserted, *refused is set to 1 (refused may be NULL) and NULL
 * is returned (otherwise *refused is 0). admit runs atomically with the
 * insert against every amp_itab_remove and its pred, so a pred that records
 * removals (a generation counter) lets admit refuse an insert that raced
 * one. admit (NULL: always) must not call add_unique, remove or reclaim on t.
 * Cost: add_unique's, plus admit under the lock. Any thread. */
void *amp_itab_add_unique_if(amp_itab_t *t, uint64_t hash, amp_itab_match_fn match,
                             const void *key, void *obj, int (*admit)(void *ctx), void *ctx,
                             int *refused);

/* amp_itab_remove takes obj (pointer identity, not key; an object's address
 * as add_unique takes) out of the table if it is there under hash and pred
 * is NULL or pred(obj, ctx) returns non-zero. The probe and pred run under
 * the insert lock: no insert or remove runs meanwhile, so a pred that marks
 * obj (e.g. a CAS on a refcount) is atomic with the removal for every thread
 * that inserts; pred must not call add_unique, remove or reclaim on t.
 * Returns 1 when removed, 0 when not (absent, or pred said no). Lookups and
 * for_each walks already running may still return obj afterwards: the caller
 * frees obj only after they end (the engine: an RCU grace period). The slot
 * becomes a tombstone; no memory is freed. Cost: the probe under the lock.
 * Any thread. */
int amp_itab_remove(amp_itab_t *t, uint64_t hash, const void *obj,
                    int (*pred)(void *obj, void *ctx), void *ctx);

/* amp_itab_prefetch starts loading the home slot's cache line of hash. No
 * effect on state. Lock-free; any thread. */
void amp_itab_prefetch(const amp_itab_t *t, uint64_t hash);

/* amp_itab_retired returns how many tables rebuilds have replaced so far (a
 * mark for amp_itab_reclaim). Any thread. */
uint64_t amp_itab_retired(const amp_itab_t *t);

/* amp_itab_reclaim frees the replaced tables among the first `mark` (a value
 * amp_itab_retired returned). The caller guarantees that no lookup, prefetch
 * or for_each that began before that amp_itab_retired call still runs. Takes
 * the insert lock. Any thread. */
void amp_itab_reclaim(amp_itab_t *t, uint64_t mark);

/* amp_itab_count returns the number of live entries (racy while inserts or
 * removals run). */
uint64_t amp_itab_count(const amp_itab_t *t);

/* amp_itab_for_each calls fn(obj, ctx) for every live entry, in slot order,
 * until fn returns non-zero. Entries inserted or removed meanwhile may or may
 * not be seen, a key removed and inserted again meanwhile maybe twice (an
 * entry moved by a rebuild meanwhile is seen in the table the walk started
 * on). Lock-free; any thread. Cost: O(slots). */
void amp_itab_for_each(const amp_itab_t *t, int (*fn)(void *obj, void *ctx), void *ctx);

#endif /* AMP_ITAB_H */
