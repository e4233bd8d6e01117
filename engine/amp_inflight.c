/* amp_inflight.c: one-cache-line buckets, home lock, CAS slot claims (see
 * amp_inflight.h for the design and the concurrency argument). */
#include "amp_inflight.h"

#include <inttypes.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 6
#define LIMIT AMP_INFLIGHT_PROBE_LIMIT
#define DIST_BITS 5
#define FP_BITS (16 - DIST_BITS)
#define DIST_MASK ((1u << DIST_BITS) - 1)

_Static_assert(LIMIT - 1 <= DIST_MASK, "a distance must fit in a tag");

typedef struct {
  alignas(64) _Atomic uint8_t lock;
  _Atomic uint8_t reach;                /* written under lock */
  _Atomic uint16_t tag[SLOTS];          /* fp11 << 5 | distance; 0 = empty */
  uint16_t pad_;
  _Atomic(void *) obj[SLOTS];           /* NULL = empty */
} bucket_t;

_Static_assert(sizeof(bucket_t) == 64, "a bucket is one cache line");

struct amp_inflight {
  bucket_t *b;       /* mask + 1 + LIMIT - 1 buckets */
  uint64_t mask;
  uint64_t nb;       /* all buckets, the extra ones included */
};

#define LD_(p, mo) atomic_load_explicit((p), memory_order_##mo)
#define ST_(p, v, mo) atomic_store_explicit((p), (v), memory_order_##mo)

static inline void lock_(bucket_t *b) { amp_spin_lock(&b->lock); }

static inline void unlock_(bucket_t *b) { amp_spin_unlock(&b->lock); }

/* The tag of an entry of hash at distance d from its home. Never 0. */
static inline uint16_t tag_(uint64_t hash, unsigned d) {
  unsigned fp = (unsigned)(hash >> (64 - FP_BITS));
  fp += !fp;
  return (uint16_t)(fp << DIST_BITS | d);
}

int amp_inflight_new(amp_inflight_t **out, uint64_t capacity) {
  *out = NULL;
  if (capacity == 0 || capacity > AMP_INFLIGHT_MAX_CAPACITY) return AMP_ERR_RANGE;
  uint64_t want = (capacity + SLOTS / 2 - 1) / (SLOTS / 2), n = 1;
  while (n < want) n <<= 1;
  amp_inflight_t *t = malloc(sizeof *t);
  if (!t) return AMP_ERR_NOMEM;
  t->mask = n - 1;
  t->nb = n + LIMIT - 1;
  if ((uint64_t)(size_t)t->nb != t->nb || t->nb > SIZE_MAX / sizeof(bucket_t)) {
    free(t);
    return AMP_ERR_NOMEM;
  }
  /* probed at random, one bucket per operation: huge pages where the kernel
   * gives them spare the TLB misses (amp_big_alloc) */
  void *mem = amp_big_alloc((size_t)t->nb * sizeof(bucket_t));
  if (!mem) {
    free(t);
    return AMP_ERR_NOMEM;
  }
  t->b = mem;
  *out = t;
  return AMP_OK;
}

void amp_inflight_delete(amp_inflight_t *t) {
  if (!t) return;
  amp_big_free(t->b, (size_t)t->nb * sizeof(bucket_t));
  free(t);
}

void *amp_inflight_add_unique(amp_inflight_t *t, uint64_t hash, amp_inflight_match_fn match,
                              const void *key, void *obj) {
  bucket_t *home = &t->b[hash & t->mask];
  lock_(home);
  unsigned reach = LD_(&home->reach, relaxed);
  /* Under the home lock the entries of this home are stable: a slot whose
   * tag says "this home, distance d" cannot belong to another home. */
  for (unsigned d = 0; d <= reach; d++) {
    bucket_t *b = home + d;
    uint16_t want = tag_(hash, d);
    for (unsigned i = 0; i < SLOTS; i++) {
      if (LD_(&b->tag[i], acquire) != want) continue;
      void *o = LD_(&b->obj[i], acquire);
      if (o && match(o, key)) {
        unlock_(home);
        return o;
      }
    }
  }
  for (unsigned d = 0; d < LIMIT; d++) {
    bucket_t *b = home + d;
    for (unsigned i = 0; i < SLOTS; i++) {
      void *expect = NULL;
      if (LD_(&b->obj[i], relaxed)) continue;
      /* acquire: the tag store below comes after the clear of the tag by
       * whoever emptied this slot */
      if (!atomic_compare_exchange_strong_explicit(&b->obj[i], &expect, obj,
                                                   memory_order_acq_rel, memory_order_relaxed))
        continue;
      ST_(&b->tag[i], tag_(hash, d), release);
      if (d > reach) ST_(&home->reach, (uint8_t)d, release);
      unlock_(home);
      return obj;
    }
  }
  unlock_(home);
  return NULL;
}

/* 1 when bucket b holds an entry at distance d from its home. */
static inline int has_distance_(const bucket_t *b, unsigned d) {
  for (unsigned i = 0; i < SLOTS; i++) {
    uint16_t g = LD_(&b->tag[i], relaxed);
    if (g && (g & DIST_MASK) == d) return 1;
  }
  return 0;
}

int amp_inflight_del(amp_inflight_t *t, uint64_t hash, const void *obj) {
  bucket_t *home = &t->b[hash & t->mask];
  lock_(home);
  unsigned reach = LD_(&home->reach, relaxed);
  for (unsigned d = 0; d <= reach; d++) {
    bucket_t *b = home + d;
    uint16_t want = tag_(hash, d);
    for (unsigned i = 0; i < SLOTS; i++) {
      if (LD_(&b->tag[i], relaxed) != want || LD_(&b->obj[i], relaxed) != obj) continue;
      /* tag first: the pointer's release orders it before whoever claims
       * the slot next stores its own tag */
      ST_(&b->tag[i], 0, relaxed);
      ST_(&b->obj[i], NULL, release);
      if (d == reach && d > 0) {
        /* The entries of this home only change under its lock, which we
         * hold, and a tag names its home by its distance: exact. */
        unsigned r = d;
        while (r > 0 && !has_distance_(home + r, r)) r--;
        ST_(&home->reach, (uint8_t)r, release);
      }
      unlock_(home);
      return AMP_OK;
    }
  }
  unlock_(home);
  return AMP_ERR_NOTFOUND;
}

void *amp_inflight_lookup(const amp_inflight_t *t, uint64_t hash, amp_inflight_match_fn match,
                          const void *key) {
  const bucket_t *home = &t->b[hash & t->mask];
  unsigned reach = LD_(&home->reach, acquire);
  for (unsigned d = 0; d <= reach; d++) {
    const bucket_t *b = home + d;
    uint16_t want = tag_(hash, d);
    for (unsigned i = 0; i < SLOTS; i++) {
      if (LD_(&b->tag[i], acquire) != want) continue;
      void *o = LD_(&b->obj[i], acquire);
      if (o && match(o, key)) return o;
    }
  }
  return NULL;
}

void amp_inflight_prefetch(const amp_inflight_t *t, uint64_t hash) {
  __builtin_prefetch(&t->b[hash & t->mask], 1, 3);
}

size_t amp_inflight_for_each(const amp_inflight_t *t, void (*fn)(void *obj, void *ctx),
                             void *ctx) {
  size_t n = 0;
  for (uint64_t j = 0; j < t->nb; j++) {
    const bucket_t *b = &t->b[j];
    for (unsigned i = 0; i < SLOTS; i++) {
      void *o = LD_(&b->obj[i], acquire);
      if (!o) continue;
      fn(o, ctx);
      n++;
    }
  }
  return n;
}

size_t amp_inflight_count(const amp_inflight_t *t) {
  size_t n = 0;
  for (uint64_t j = 0; j < t->nb; j++)
    for (unsigned i = 0; i < SLOTS; i++) n += LD_(&t->b[j].obj[i], relaxed) != NULL;
  return n;
}

void amp_inflight_stat(amp_inflight_stat_t *st, const amp_inflight_t *t) {
  memset(st, 0, sizeof *st);
  st->buckets = t->mask + 1;
  st->slots = t->nb * SLOTS;
  st->bytes = t->nb * sizeof(bucket_t);
  for (uint64_t j = 0; j < t->nb; j++) {
    const bucket_t *b = &t->b[j];
    unsigned r = LD_(&b->reach, relaxed);
    if (j <= t->mask) st->with_reach[r]++;
    if (r > st->max_reach) st->max_reach = r;
    for (unsigned i = 0; i < SLOTS; i++) {
      uint16_t g = LD_(&b->tag[i], relaxed);
      if (!g || !LD_(&b->obj[i], relaxed)) continue;
      unsigned d = g & DIST_MASK;
      st->entries++;
      st->at_distance[d]++;
      if (d > st->max_distance) st->max_distance = d;
    }
  }
}

int amp_inflight_verify(const amp_inflight_t *t) {
  uint64_t homes = t->mask + 1;
  for (uint64_t j = 0; j < t->nb; j++) {
    const bucket_t *b = &t->b[j];
    if (LD_(&b->lock, relaxed)) {
      fprintf(stderr, "amp_inflight_verify: bucket %" PRIu64 " locked\n", j);
      return AMP_ERR_STATE;
    }
    unsigned far = 0;
    for (unsigned d = 0; d < LIMIT && j + d < t->nb; d++)
      if (has_distance_(b + d, d)) far = d;
    unsigned r = LD_(&b->reach, relaxed);
    if (j >= homes ? r != 0 : r != far) {
      fprintf(stderr, "amp_inflight_verify: bucket %" PRIu64 " reach %u, farthest entry %u\n", j,
              r, far);
      return AMP_ERR_STATE;
    }
    for (unsigned i = 0; i < SLOTS; i++) {
      uint16_t g = LD_(&b->tag[i], relaxed);
      void *o = LD_(&b->obj[i], relaxed);
      if (!g != !o) {
        fprintf(stderr, "amp_inflight_verify: bucket %" PRIu64 " slot %u tag %#x object %p\n", j,
                i, g, o);
        return AMP_ERR_STATE;
      }
      if (g && ((g & DIST_MASK) > j || j - (g & DIST_MASK) >= homes || (g >> DIST_BITS) == 0)) {
        fprintf(stderr, "amp_inflight_verify: bucket %" PRIu64 " slot %u tag %#x: no home\n", j,
                i, g);
        return AMP_ERR_STATE;
      }
    }
  }
  return AMP_OK;
}
