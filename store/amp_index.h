/* amp_index.h: the store's in-memory indexes and filters. Internal to store/.
 *
 * The durable data lives in two append-only LMDB logs (see amp_store.h):
 * settled/cancelled sets and failed HTLCs. These structures answer, from
 * memory, the three questions asked of it by key:
 *   - has HTLC (scid, htlc_id) been resolved, and where is its answer?
 *   - has onion tag (cltv_expiry, tag) been used, and by which HTLC?
 *   - has set_id been settled or cancelled, and at which settle index?
 * They are rebuilt at open by walking the logs, so they are never the only
 * copy of anything.
 *
 * Pieces:
 *   keyed hash  SipHash-1-3 (crypto/amp_siphash.h) over 64-bit words with a
 *               per-store random key: every key here is chosen, at least
 *               partly, by a remote peer,
 *               so the tables' hashing must not be predictable.
 *   amp_cbf_*   counting blocked Bloom filter: 4-bit counters, one 64-byte
 *               block (128 counters) per key, 6 counters per key, 12 counters
 *               per expected entry (~6 bytes/entry; ~0.5-1% false positives at
 *               the sized load, measured in test_index). Counting, so prune
 *               and rollback take keys out again: the filter never goes stale.
 *               Past 1.5x its sizing it is rebuilt 4x larger (see
 *               amp_hidx_t), so a busier node than configured degrades by one
 *               pause, not by a filter that always says "maybe".
 *               A counter that reaches 15 sticks (a false positive forever,
 *               never a false negative). One writer; lock-free readers.
 *   amp_hidx_*  the HTLC index: one entry per resolved HTLC, in two open-
 *               addressing tables (by (scid, htlc_id) and by (cltv, tag)) and
 *               in a bucket per cltv_expiry (for prune, which never scans
 *               live entries). 72 B per entry plus 16-32 B of table slots
 *               (8-byte slots at load <= 1/2: an id and a hash tag, so a
 *               probe reads no entry but the one it is looking for);
 *               the tables start sized for filter_entries keys (load 1/2),
 *               so a node within its sizing never rehashes (a rehash holds
 *               the write lock for ~100 ns per entry).
 *   amp_sidx_*  the set index: set_id -> settle_index (+ cancelled), inline
 *               open addressing, ~57 B per set at 0.7 load. Kept for every
 *               set ever settled or cancelled (a set_id never settles twice).
 *               With a counting filter (as the HTLC index's), so the engine
 *               asks "is this new set_id done?" without the read lock;
 *               rebuilt for 4x the sets past 1.5x its sizing, so 4-24 B more
 *               per set (plus the smaller filters it replaced, kept until
 *               fini: at most a third more).
 *
 * Pending and rollback: the writer adds a group's entries before its commit
 * marked pending (visible to the writer's own duplicate checks, invisible to
 * readers' lookups, but already in the filters, so a filter never says "no"
 * for a committed key), then either commits them (pending cleared) or rolls
 * them all back (removed, filters decremented) when the LMDB commit fails.
 *
 * Threads: one writer calls every mutating function; any thread may call the
 * lookups (they take a read lock) and the filter checks (lock-free, no lock,
 * no syscall). The writer takes the write lock for a few microseconds per
 * intent. Nothing here does I/O.
 */
#ifndef AMP_INDEX_H
#define AMP_INDEX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "amp_siphash.h"
#include "amp_util.h"

/* --- keyed hash: crypto/amp_siphash.h (amp_sipkey_t, amp_siphash_words) -- */

/* --- counting blocked Bloom filter ------------------------------------ */

typedef struct {
  _Atomic uint64_t *w;   /* nblocks * 8 words, 64-byte aligned */
  uint64_t nblocks;
} amp_cbf_t;

/* amp_cbf_init sizes f for `entries` keys (>= 1). Returns AMP_OK or
 * AMP_ERR_NOMEM. Memory: ~6 bytes per entry, rounded to 64-byte blocks. */
AMP_WARN_UNUSED int amp_cbf_init(amp_cbf_t *f, uint64_t entries);
void amp_cbf_fini(amp_cbf_t *f);
/* amp_cbf_add / amp_cbf_del count key hash h in or out. Writer only; del only
 * for an h that was added and not yet deleted. */
void amp_cbf_add(amp_cbf_t *f, uint64_t h);
void amp_cbf_del(amp_cbf_t *f, uint64_t h);
/* amp_cbf_maybe: 0 when h was certainly never added (or was deleted as often
 * as added), 1 otherwise. Any thread, lock-free. */
int amp_cbf_maybe(const amp_cbf_t *f, uint64_t h);

/* --- HTLC index ------------------------------------------------------- */

/* Where an HTLC's answer lives: bit 63 set: the fail log, key = bits 0..47;
 * clear: the settle log, key = settle index (bits 0..47), HTLC position in the
 * set = bits 48..62. */
#define AMP_LOC_FAIL (1ull << 63)
#define AMP_LOC_KEY(loc) ((loc) & ((1ull << 48) - 1))
#define AMP_LOC_POS(loc) ((uint32_t)(((loc) >> 48) & 0x7fff))
#define AMP_LOC_SETTLE(idx, pos) (((uint64_t)(pos) << 48) | (idx))
#define AMP_LOC_MAX_POS 0x7fff

typedef struct {
  uint64_t scid, htlc_id;
  uint64_t loc;
  uint64_t hres, hrpl;   /* the keys' hashes: a rehash, a filter rebuild, a
                            deletion or a prune hashes nothing */
  uint8_t tag[16];
  uint32_t cltv;         /* the HTLC's cltv_expiry (part of the replay key) */
  uint32_t keep;         /* retention height: cltv, capped by the caller */
  uint32_t next;         /* next entry id in its bucket, or free list */
  uint8_t flags;         /* AMP_HENT_* */
} amp_hent_t;            /* 72 bytes */

typedef struct {
  uint32_t cltv;         /* the entries' keep height */
  uint32_t head;         /* entry id (1-based), 0: none */
  uint32_t count;
  uint32_t rpl_done;     /* replay roles of this bucket already pruned */
} amp_hbucket_t;

typedef struct {
  pthread_rwlock_t lock;
  amp_sipkey_t key;
  amp_hent_t *ent;       /* ent[id - 1] */
  uint32_t n_ent, cap_ent, free_head, live;
  uint64_t *res_slot;    /* slots: entry id | high 32 bits of the hash */
  uint64_t *rpl_slot;
  uint32_t res_mask, res_count, rpl_mask, rpl_count;
  amp_hbucket_t *bk;     /* sorted by cltv */
  uint32_t n_bk, cap_bk;
  uint32_t *pend;        /* ids added since the last commit/rollback */
  uint32_t n_pend, cap_pend;
  uint32_t res_floor, rpl_floor; /* roles below these cltv values are gone */
  /* Filters, by pointer: when the live keys of one pass 1.5x what it was
   * sized for, the writer builds one 4x larger from the table and publishes
   * it; the old one is kept (stale but valid memory) until fini, so a reader
   * that loaded it never touches freed memory. A reader whose answer is "no"
   * checks the pointer again and retries if it changed: a key the writer
   * adds after the swap is only in the new filter. */
  _Atomic(amp_cbf_t *) res_f, rpl_f;
  uint64_t res_cap, rpl_cap;     /* keys each was sized for */
  amp_cbf_t **retired;
  uint32_t n_retired, cap_retired;
  uint32_t filter_grows;
  uint32_t table_grows;          /* tables doubled past their sizing (a rehash) */
} amp_hidx_t;

AMP_WARN_UNUSED int amp_hidx_init(amp_hidx_t *ix, const amp_sipkey_t *key, uint64_t filter_entries);
void amp_hidx_fini(amp_hidx_t *ix);

/* Hashes, exposed so a caller hashes once for filter and table. */
uint64_t amp_hidx_res_hash(const amp_hidx_t *ix, uint64_t scid, uint64_t htlc_id);
uint64_t amp_hidx_rpl_hash(const amp_hidx_t *ix, uint32_t cltv, const uint8_t tag[16]);

/* amp_hidx_prefetch / amp_sidx_prefetch (writer): start loading the cache
 * lines that a later check or add of this key touches (table slot, filter
 * blocks), so that the misses of several intents overlap. tag may be NULL.
 * No effect on state; costs the key's hashes (~20 ns each). */
void amp_hidx_prefetch(const amp_hidx_t *ix, uint64_t scid, uint64_t htlc_id, uint32_t cltv,
                       const uint8_t *tag);

/* amp_hidx_prefetch_res / _rpl (any thread): start loading the filter block
 * that amp_hidx_maybe_res / _rpl of this key reads (read-only hint), so a
 * worker can overlap the miss with other work. No effect on state; costs the
 * key's hash (~20 ns), which it returns for amp_hidx_maybe_res_h / _rpl_h (a
 * filter replaced meanwhile takes the same hash). */
uint64_t amp_hidx_prefetch_res(const amp_hidx_t *ix, uint64_t scid, uint64_t htlc_id);
uint64_t amp_hidx_prefetch_rpl(const amp_hidx_t *ix, uint32_t cltv, const uint8_t tag[16]);

/* amp_hidx_check (writer) says whether (scid, htlc_id) already has a
 * resolution, committed or pending: AMP_ERR_EXISTS, else AMP_OK. */
AMP_WARN_UNUSED int amp_hidx_check(amp_hidx_t *ix, uint64_t scid, uint64_t htlc_id);

/* amp_hidx_add (writer) records a resolved HTLC at loc, pending if `pending`.
 * tag may be NULL (no replay entry). keep (<= cltv) is the height by which
 * the entry's roles expire: normally cltv itself, lower for an absurd cltv
 * (see amp_store.c). The resolution role is kept if keep >= res_floor, the
 * replay role if tag and keep >= rpl_floor and the (cltv, tag) key is not
 * already used (the first user of an onion stays its owner). A duplicate
 * resolution is not added (call amp_hidx_check first to refuse it). Returns
 * AMP_OK or AMP_ERR_NOMEM (nothing changed). Takes the write lock. */
AMP_WARN_UNUSED int amp_hidx_add(amp_hidx_t *ix, uint64_t scid, uint64_t htlc_id, uint32_t cltv,
                                 uint32_t keep, const uint8_t *tag, uint64_t loc, int pending);

/* amp_hidx_commit / amp_hidx_rollback (writer): make every pending entry
 * visible, or take every pending entry out again (newest first). */
void amp_hidx_commit(amp_hidx_t *ix);
void amp_hidx_rollback(amp_hidx_t *ix);

/* amp_hidx_prune (writer; nothing pending): drop replay roles with
 * keep < rpl_floor and resolutions with keep < res_floor (entries with no
 * role left are freed). Floors only rise. Cost: O(entries dropped + buckets
 * visited), never a scan of live entries. Returns the replay roles dropped. */
uint64_t amp_hidx_prune(amp_hidx_t *ix, uint32_t rpl_floor, uint32_t res_floor);

/* Lookups (any thread, read lock). Pending entries are not found.
 * amp_hidx_find_res: AMP_OK with *loc, or AMP_ERR_NOTFOUND.
 * amp_hidx_find_rpl: AMP_OK with the owner HTLC, or AMP_ERR_NOTFOUND. */
AMP_WARN_UNUSED int amp_hidx_find_res(amp_hidx_t *ix, uint64_t scid, uint64_t htlc_id,
                                      uint64_t *loc);
AMP_WARN_UNUSED int amp_hidx_find_rpl(amp_hidx_t *ix, uint32_t cltv, const uint8_t tag[16],
                                      uint64_t *scid, uint64_t *htlc_id);

/* Filters (any thread, lock-free). */
int amp_hidx_maybe_res(const amp_hidx_t *ix, uint64_t scid, uint64_t htlc_id);
int amp_hidx_maybe_rpl(const amp_hidx_t *ix, uint32_t cltv, const uint8_t tag[16]);
/* _h: with the key's hash from amp_hidx_prefetch_res / _rpl. */
int amp_hidx_maybe_res_h(const amp_hidx_t *ix, uint64_t h);
int amp_hidx_maybe_rpl_h(const amp_hidx_t *ix, uint64_t h);

/* --- set index ---------------------------------------------------------- */

#define AMP_SIDX_CANCELLED (1ull << 62)
#define AMP_SIDX_PENDING (1ull << 61)
#define AMP_SIDX_INDEX(v) ((v) & ((1ull << 48) - 1))

typedef struct {
  uint8_t id[32];
  uint64_t v;            /* 0: empty slot; else settle index | flags */
} amp_sent_t;

typedef struct {
  pthread_rwlock_t lock;
  amp_sipkey_t key;
  amp_sent_t *slot;
  uint64_t mask, count;
  struct amp_spend {
    uint8_t id[32];
    uint64_t slot;       /* where it sits (kept right across a rehash) */
  } *pend;
  uint32_t n_pend, cap_pend;
  /* Filter of every id in the table, pending ones included, by pointer as
   * the HTLC index's (replaced by a larger one, the old kept until fini). */
  _Atomic(amp_cbf_t *) f;
  uint64_t f_cap;        /* keys it was sized for */
  amp_cbf_t **retired;
  uint32_t n_retired, cap_retired;
  uint32_t grows;        /* doubled by an add past its sizing (a rehash under
                          * the write lock; amp_sidx_reserve's not counted) */
} amp_sidx_t;

AMP_WARN_UNUSED int amp_sidx_init(amp_sidx_t *sx, const amp_sipkey_t *key);
void amp_sidx_fini(amp_sidx_t *sx);
/* amp_sidx_add (writer): AMP_OK, AMP_ERR_EXISTS (set_id known, committed or
 * pending: nothing changed) or AMP_ERR_NOMEM. */
AMP_WARN_UNUSED int amp_sidx_add(amp_sidx_t *sx, const uint8_t id[32], uint64_t settle_index,
                                 int cancelled, int pending);
/* amp_sidx_reserve (writer) sizes the table for n sets (load 0.7) now, so
 * that it does not rehash until then. AMP_OK or AMP_ERR_NOMEM. */
AMP_WARN_UNUSED int amp_sidx_reserve(amp_sidx_t *sx, uint64_t n);
void amp_sidx_prefetch(const amp_sidx_t *sx, const uint8_t id[32]);
/* amp_sidx_check (writer): AMP_ERR_EXISTS if id is known, committed or
 * pending, else AMP_OK. */
AMP_WARN_UNUSED int amp_sidx_check(amp_sidx_t *sx, const uint8_t id[32]);
void amp_sidx_commit(amp_sidx_t *sx);
void amp_sidx_rollback(amp_sidx_t *sx);
/* amp_sidx_maybe (any thread, lock-free, no syscall): 0 when id is
 * certainly in no committed entry (nor pending one), 1 when it may be (then
 * ask amp_sidx_find). ~0.5-1% false positives at the sized load. */
int amp_sidx_maybe(const amp_sidx_t *sx, const uint8_t id[32]);
/* amp_sidx_prefetch_maybe (any thread): start loading the filter block that
 * amp_sidx_maybe of id reads (read-only hint). No effect on state; costs the
 * key's hash (~20 ns), which it returns for amp_sidx_maybe_h. */
uint64_t amp_sidx_prefetch_maybe(const amp_sidx_t *sx, const uint8_t id[32]);
int amp_sidx_maybe_h(const amp_sidx_t *sx, uint64_t h);
/* amp_sidx_find (any thread): AMP_OK with the index and cancelled flag, or
 * AMP_ERR_NOTFOUND (pending sets are not found). */
AMP_WARN_UNUSED int amp_sidx_find(amp_sidx_t *sx, const uint8_t id[32], uint64_t *settle_index,
                                  int *cancelled);

#endif /* AMP_INDEX_H */
