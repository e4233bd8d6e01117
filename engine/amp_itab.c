/* amp_itab.c: open addressing with tombstones, one lock for inserts and
 * removals, tables replaced whole by rebuilds that drop the tombstones (see
 * amp_itab.h). */
#include "amp_itab.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MIN_SLOTS 64u
#define TOMB_ ((void *)(uintptr_t)1) /* a removed entry's object */
#define NO_SLOT_ UINT64_MAX

#define LD_(p, mo) atomic_load_explicit((p), memory_order_##mo)
#define ST_(p, v, mo) atomic_store_explicit((p), (v), memory_order_##mo)

typedef struct {
  _Atomic uint64_t hash;
  _Atomic(void *) obj;           /* NULL: empty; TOMB_: removed; published last */
} slot_t;

typedef struct {
  uint64_t mask;                 /* slots - 1 */
  slot_t slot[];
} tab_t;

struct amp_itab {
  _Atomic(tab_t *) cur;
  _Atomic uint64_t count;        /* live entries; written under the lock */
  uint64_t used;                 /* live entries and tombstones in cur (under the lock) */
  _Atomic uint8_t lock;
  tab_t **old;                   /* replaced by rebuilds, oldest first, not yet freed */
  uint32_t n_old, cap_old;
  _Atomic uint64_t retired;      /* tables replaced so far */
  uint64_t freed;                /* of those, freed (under the lock) */
};

static tab_t *tab_new_(uint64_t slots) {
  size_t bytes = sizeof(tab_t) + (size_t)slots * sizeof(slot_t);
  bytes = (bytes + 63) & ~(size_t)63;
  tab_t *tb = aligned_alloc(64, bytes);
  if (!tb) return NULL;
  memset(tb, 0, bytes);
  tb->mask = slots - 1;
  return tb;
}

int amp_itab_new(amp_itab_t **out, uint64_t expect) {
  *out = NULL;
  if (expect > ((uint64_t)1 << 40)) return AMP_ERR_RANGE;
  uint64_t slots = MIN_SLOTS;
  while (slots < 2 * expect) slots *= 2;
  amp_itab_t *t = calloc(1, sizeof *t);
  tab_t *tb = t ? tab_new_(slots) : NULL;
  if (!tb) {
    free(t);
    return AMP_ERR_NOMEM;
  }
  atomic_init(&t->cur, tb);
  *out = t;
  return AMP_OK;
}

void amp_itab_delete(amp_itab_t *t) {
  if (!t) return;
  free(LD_(&t->cur, relaxed));
  for (uint32_t i = 0; i < t->n_old; i++) free(t->old[i]);
  free(t->old);
  free(t);
}

/* Returns the object under hash whose key matches, or NULL with *at the
 * first tombstone on the probe path, else the empty slot that ended it. A
 * tombstone is never matched; only an empty slot ends the probe. */
static void *probe_(const tab_t *tb, uint64_t hash, amp_itab_match_fn match, const void *key,
                    uint64_t *at) {
  uint64_t tomb = NO_SLOT_;
  for (uint64_t i = hash & tb->mask;; i = (i + 1) & tb->mask) {
    void *o = LD_(&tb->slot[i].obj, acquire);
    if (!o) {
      *at = tomb != NO_SLOT_ ? tomb : i;
      return NULL;
    }
    if (o == TOMB_) {
      if (tomb == NO_SLOT_) tomb = i;
    } else if (LD_(&tb->slot[i].hash, relaxed) == hash && match(o, key)) {
      return o;
    }
  }
}

/* The table current at the start holds every entry inserted and not removed
 * before: a rebuild copies them all before it publishes the new table, later
 * inserts and removals go to that one, and no slot of a table is emptied
 * again, so the probe passes every slot the insert's probe passed (an insert
 * or removal that runs meanwhile may be seen or not). A slot reused meanwhile
 * may show a removed object with the new object's hash: match may then see
 * that removed object, which the caller has not freed yet (a lookup that read
 * it began before its removal), and the probe goes on. */
void *amp_itab_lookup(const amp_itab_t *t, uint64_t hash, amp_itab_match_fn match,
                      const void *key) {
  uint64_t at;
  return probe_(LD_(&((amp_itab_t *)t)->cur, acquire), hash, match, key, &at);
}

void amp_itab_prefetch(const amp_itab_t *t, uint64_t hash) {
  const tab_t *tb = LD_(&((amp_itab_t *)t)->cur, acquire);
  __builtin_prefetch(&tb->slot[hash & tb->mask], 0, 3);
}

uint64_t amp_itab_count(const amp_itab_t *t) { return LD_(&((amp_itab_t *)t)->count, relaxed); }

static void lock_(amp_itab_t *t) { amp_spin_lock(&t->lock); }

static void unlock_(amp_itab_t *t) { amp_spin_unlock(&t->lock); }

/* Under the lock: a table with every live entry and no tombstones, of the
 * smallest power of two of slots >= MIN_SLOTS and >= 4 per live entry
 * (called at half used: twice the size when all are live), published; the
 * old one kept. Returns the new table or NULL (no memory: nothing changed). */
static tab_t *rebuild_(amp_itab_t *t, tab_t *tb) {
  if (t->n_old == t->cap_old) {
    uint32_t cap = t->cap_old ? 2 * t->cap_old : 8;
    tab_t **o = realloc(t->old, cap * sizeof *o);
    if (!o) return NULL;
    t->old = o;
    t->cap_old = cap;
  }
  uint64_t live = LD_(&t->count, relaxed), slots = MIN_SLOTS;
  while (slots < 4 * live) slots *= 2;
  tab_t *nt = tab_new_(slots);
  if (!nt) return NULL;
  for (uint64_t i = 0; i <= tb->mask; i++) {
    void *o = LD_(&tb->slot[i].obj, relaxed);
    if (!o || o == TOMB_) continue;
    uint64_t h = LD_(&tb->slot[i].hash, relaxed), j = h & nt->mask;
    while (LD_(&nt->slot[j].obj, relaxed)) j = (j + 1) & nt->mask;
    ST_(&nt->slot[j].hash, h, relaxed);
    ST_(&nt->slot[j].obj, o, relaxed);
  }
  t->old[t->n_old++] = tb;
  t->used = live;
  ST_(&t->cur, nt, release); /* the copies are visible with the pointer */
  ST_(&t->retired, LD_(&t->retired, relaxed) + 1, release);
  return nt;
}

uint64_t amp_itab_retired(const amp_itab_t *t) {
  return LD_(&((amp_itab_t *)t)->retired, acquire);
}

void amp_itab_reclaim(amp_itab_t *t, uint64_t mark) {
  lock_(t);
  uint32_t k = 0;
  while (t->freed < mark && k < t->n_old) {
    free(t->old[k++]);
    t->freed++;
  }
  if (k) memmove(t->old, t->old + k, (t->n_old - k) * sizeof *t->old);
  t->n_old -= k;
  unlock_(t);
}

void *amp_itab_add_unique(amp_itab_t *t, uint64_t hash, amp_itab_match_fn match,
                          const void *key, void *obj) {
  return amp_itab_add_unique_if(t, hash, match, key, obj, NULL, NULL, NULL);
}

void *amp_itab_add_unique_if(amp_itab_t *t, uint64_t hash, amp_itab_match_fn match,
                             const void *key, void *obj, int (*admit)(void *ctx), void *ctx,
                             int *refused) {
  if (refused) *refused = 0;
  lock_(t);
  tab_t *tb = LD_(&t->cur, relaxed);
  uint64_t at;
  void *o = probe_(tb, hash, match, key, &at);
  if (!o && admit && !admit(ctx)) {
    unlock_(t);
    if (refused) *refused = 1;
    return NULL;
  }
  if (!o) {
    if (LD_(&tb->slot[at].obj, relaxed) != TOMB_) { /* an empty slot: one more used */
      if (2 * (t->used + 1) > tb->mask + 1) {
        if (!(tb = rebuild_(t, tb))) {
          unlock_(t);
          return NULL;
        }
        probe_(tb, hash, match, key, &at); /* not there, no tombstones: its empty slot */
      }
      t->used++;
    }
    /* a reader sees the tombstone or empty slot, or obj with its hash */
    ST_(&tb->slot[at].hash, hash, relaxed);
    ST_(&tb->slot[at].obj, obj, release);
    ST_(&t->count, LD_(&t->count, relaxed) + 1, relaxed);
    o = obj;
  }
  unlock_(t);
  return o;
}

int amp_itab_remove(amp_itab_t *t, uint64_t hash, const void *obj,
                    int (*pred)(void *obj, void *ctx), void *ctx) {
  int removed = 0;
  lock_(t);
  tab_t *tb = LD_(&t->cur, relaxed);
  for (uint64_t i = hash & tb->mask;; i = (i + 1) & tb->mask) {
    void *o = LD_(&tb->slot[i].obj, relaxed);
    if (!o) break;
    if (o != obj || LD_(&tb->slot[i].hash, relaxed) != hash) continue;
    if (!pred || pred(o, ctx)) {
      ST_(&tb->slot[i].obj, TOMB_, release); /* what pred wrote is seen with it */
      ST_(&t->count, LD_(&t->count, relaxed) - 1, relaxed);
      removed = 1;
    }
    break;
  }
  unlock_(t);
  return removed;
}

void amp_itab_for_each(const amp_itab_t *t, int (*fn)(void *obj, void *ctx), void *ctx) {
  const tab_t *tb = LD_(&((amp_itab_t *)t)->cur, acquire);
  for (uint64_t i = 0; i <= tb->mask; i++) {
    void *o = LD_(&tb->slot[i].obj, acquire);
    if (o && o != TOMB_ && fn(o, ctx)) return;
  }
}
