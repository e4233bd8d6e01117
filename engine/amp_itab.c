/* amp_itab.c: insert-only open addressing, one insert lock, tables replaced
 * whole on growth (see amp_itab.h). */
#include "amp_itab.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MIN_SLOTS 64u

#define LD_(p, mo) atomic_load_explicit((p), memory_order_##mo)
#define ST_(p, v, mo) atomic_store_explicit((p), (v), memory_order_##mo)

typedef struct {
  _Atomic uint64_t hash;
  _Atomic(void *) obj;           /* NULL: empty; published last */
} slot_t;

typedef struct {
  uint64_t mask;                 /* slots - 1 */
  slot_t slot[];
} tab_t;

struct amp_itab {
  _Atomic(tab_t *) cur;
  _Atomic uint64_t count;        /* written under the lock */
  _Atomic uint8_t lock;
  tab_t **old;                   /* replaced by growth, oldest first, not yet freed */
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

static void *probe_(const tab_t *tb, uint64_t hash, amp_itab_match_fn match, const void *key,
                    uint64_t *empty) {
  for (uint64_t i = hash & tb->mask;; i = (i + 1) & tb->mask) {
    void *o = LD_(&tb->slot[i].obj, acquire);
    if (!o) {
      *empty = i;
      return NULL;
    }
    if (LD_(&tb->slot[i].hash, relaxed) == hash && match(o, key)) return o;
  }
}

/* The table current at the start holds every entry inserted before: growth
 * copies them all before it publishes the new table, and later inserts go to
 * that one (a lookup that began before them may miss them: it is ordered
 * before them). */
void *amp_itab_lookup(const amp_itab_t *t, uint64_t hash, amp_itab_match_fn match,
                      const void *key) {
  uint64_t empty;
  return probe_(LD_(&((amp_itab_t *)t)->cur, acquire), hash, match, key, &empty);
}

void amp_itab_prefetch(const amp_itab_t *t, uint64_t hash) {
  const tab_t *tb = LD_(&((amp_itab_t *)t)->cur, acquire);
  __builtin_prefetch(&tb->slot[hash & tb->mask], 0, 3);
}

uint64_t amp_itab_count(const amp_itab_t *t) { return LD_(&((amp_itab_t *)t)->count, relaxed); }

static void lock_(amp_itab_t *t) { amp_spin_lock(&t->lock); }

static void unlock_(amp_itab_t *t) { amp_spin_unlock(&t->lock); }

/* Under the lock: a table twice the size with every entry, published; the
 * old one kept. Returns the new table or NULL (no memory: nothing changed). */
static tab_t *grow_(amp_itab_t *t, tab_t *tb) {
  if (t->n_old == t->cap_old) {
    uint32_t cap = t->cap_old ? 2 * t->cap_old : 8;
    tab_t **o = realloc(t->old, cap * sizeof *o);
    if (!o) return NULL;
    t->old = o;
    t->cap_old = cap;
  }
  tab_t *nt = tab_new_(2 * (tb->mask + 1));
  if (!nt) return NULL;
  for (uint64_t i = 0; i <= tb->mask; i++) {
    void *o = LD_(&tb->slot[i].obj, relaxed);
    if (!o) continue;
    uint64_t h = LD_(&tb->slot[i].hash, relaxed), j = h & nt->mask;
    while (LD_(&nt->slot[j].obj, relaxed)) j = (j + 1) & nt->mask;
    ST_(&nt->slot[j].hash, h, relaxed);
    ST_(&nt->slot[j].obj, o, relaxed);
  }
  t->old[t->n_old++] = tb;
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
  lock_(t);
  tab_t *tb = LD_(&t->cur, relaxed);
  uint64_t empty;
  void *o = probe_(tb, hash, match, key, &empty);
  if (!o) {
    uint64_t n = LD_(&t->count, relaxed);
    if (2 * (n + 1) > tb->mask + 1) {
      if (!(tb = grow_(t, tb))) {
        unlock_(t);
        return NULL;
      }
      probe_(tb, hash, match, key, &empty); /* not there: find its empty slot */
    }
    ST_(&tb->slot[empty].hash, hash, relaxed);
    ST_(&tb->slot[empty].obj, obj, release);
    ST_(&t->count, n + 1, relaxed);
    o = obj;
  }
  unlock_(t);
  return o;
}

void amp_itab_for_each(const amp_itab_t *t, int (*fn)(void *obj, void *ctx), void *ctx) {
  const tab_t *tb = LD_(&((amp_itab_t *)t)->cur, acquire);
  for (uint64_t i = 0; i <= tb->mask; i++) {
    void *o = LD_(&tb->slot[i].obj, acquire);
    if (o && fn(o, ctx)) return;
  }
}
