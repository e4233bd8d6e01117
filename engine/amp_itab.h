/* amp_itab.h: an insert-only concurrent hash set of object pointers that
 * grows, for the engine's invoice index by payment_addr (invoices never leave
 * it), where a lookup should read one cache line that can be prefetched
 * instead of walking cold list nodes (cds_lfht: 3-4 dependent misses for a
 * miss, the common case for a spontaneous payment's new payment_addr).
 *
 * What it stores: pointers to the caller's objects under a 64-bit hash of
 * their key. The table never sees keys: the caller passes a match callback
 * and its key, and must give equal keys equal hashes (a keyed hash, uniform
 * over 64 bits: amp_siphash with a process secret). It never frees, moves or
 * writes the objects. There is no delete.
 *
 * Layout: open addressing with linear probing over 16-byte slots {hash,
 * object}, four to a cache line; a slot whose object is NULL is empty. The
 * home slot is hash & (slots - 1). The table doubles when an insert would
 * take it past half full, so a probe ends at an empty slot after ~1.5 slots
 * on average (one line, rarely two). Memory: 16 B per slot, 32-64 B per
 * entry, plus the smaller tables growth replaced until they are reclaimed
 * (amp_itab_reclaim; at most as much again).
 *
 * Concurrency:
 *   - amp_itab_lookup, amp_itab_prefetch, amp_itab_for_each, amp_itab_count
 *     take no lock. An inserter writes a slot's hash, then publishes its
 *     object with a release store; a reader that sees the object sees the
 *     hash. A lookup probes the table current when it starts, which holds
 *     every entry inserted before: growth copies them all before it
 *     publishes the new table, and inserts after that go to the new one.
 *   - amp_itab_add_unique takes one spin lock (the CPU's pause while it
 *     spins, sched_yield after 64 spins): inserts are serialized, which is
 *     the whole uniqueness argument. An insert that doubles the table copies
 *     every entry under that lock: O(entries), ~10 ns each, once per
 *     doubling; size the table at creation for what is known (recovery).
 *   - Replaced tables stay allocated until the caller reclaims them with
 *     amp_itab_reclaim once no lookup that began before the replacement can
 *     still run (the engine: an RCU grace period), or until amp_itab_delete.
 *
 * Functions that return int give AMP_OK or a negative AMP_ERR_* (amp_util.h).
 * No function validates its table argument: it must come from amp_itab_new.
 */
#ifndef AMP_ITAB_H
#define AMP_ITAB_H

#include <stddef.h>
#include <stdint.h>

#include "amp_util.h"

typedef struct amp_itab amp_itab_t;

/* amp_itab_match_fn returns 1 when obj has the key key, 0 otherwise. It only
 * ever sees objects that were inserted; their key fields must not change. */
typedef int (*amp_itab_match_fn)(const void *obj, const void *key);

/* amp_itab_new allocates an empty table sized for `expect` entries without
 * growing (0: a small one). *out is the table, or NULL on error.
 * Returns AMP_OK; AMP_ERR_RANGE for expect above 2^40; AMP_ERR_NOMEM.
 * Cost: one zeroed allocation of ~32 B per expected entry. Thread-safe. */
AMP_WARN_UNUSED int amp_itab_new(amp_itab_t **out, uint64_t expect);

/* amp_itab_delete frees the table and the ones growth replaced (t may be
 * NULL); not the objects. Nothing else may use t then. */
void amp_itab_delete(amp_itab_t *t);

/* amp_itab_lookup returns the object under hash whose key matches, or NULL.
 * Cost: the home slot's cache line (a miss when cold), the match callback
 * for each slot with an equal hash. Lock-free; any thread. */
void *amp_itab_lookup(const amp_itab_t *t, uint64_t hash, amp_itab_match_fn match,
                      const void *key);

/* amp_itab_add_unique inserts obj (not NULL) under hash unless an object
 * with the same key is there. Returns obj when inserted, the object already
 * there when not, NULL when growth could not allocate (nothing inserted).
 * Cost: the lookup's, under the insert lock; sometimes a doubling (above).
 * Any thread. */
void *amp_itab_add_unique(amp_itab_t *t, uint64_t hash, amp_itab_match_fn match,
                          const void *key, void *obj);

/* amp_itab_prefetch starts loading the home slot's cache line of hash. No
 * effect on state. Lock-free; any thread. */
void amp_itab_prefetch(const amp_itab_t *t, uint64_t hash);

/* amp_itab_retired returns how many tables growth has replaced so far (a
 * mark for amp_itab_reclaim). Any thread. */
uint64_t amp_itab_retired(const amp_itab_t *t);

/* amp_itab_reclaim frees the replaced tables among the first `mark` (a value
 * amp_itab_retired returned). The caller guarantees that no lookup, prefetch
 * or for_each that began before that amp_itab_retired call still runs. Takes
 * the insert lock. Any thread. */
void amp_itab_reclaim(amp_itab_t *t, uint64_t mark);

/* amp_itab_count returns the number of entries (racy while inserts run). */
uint64_t amp_itab_count(const amp_itab_t *t);

/* amp_itab_for_each calls fn(obj, ctx) for every entry, in slot order, until
 * fn returns non-zero. Entries inserted meanwhile may or may not be seen (an
 * entry moved by growth meanwhile is seen in the table the walk started on).
 * Lock-free; any thread. Cost: O(slots). */
void amp_itab_for_each(const amp_itab_t *t, int (*fn)(void *obj, void *ctx), void *ctx);

#endif /* AMP_ITAB_H */
