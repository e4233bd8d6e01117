/* test_inflight.c: the in-flight table: bad input; directed spills and
 * reach; random operations on colliding hashes against a model of the slot
 * array; the failure rate at full capacity (fresh and after churn); threads
 * racing add_unique / del on the same keys with lookups and for_each beside
 * them. `test_inflight --bench` measures the failure rate on 2^20 buckets
 * and the cost per operation (printed, never asserted). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "amp_inflight.h"
#include "amp_test.h"

#define SLOTS 6 /* per bucket, as amp_inflight.c */
#define LIMIT AMP_INFLIGHT_PROBE_LIMIT



/* A hash with home bucket `home` (< 2^16) and fingerprint bits `fp` (11
 * bits: the top ones). */
static uint64_t hash_at_(uint64_t home, uint64_t fp, uint64_t *rs) {
  uint64_t mid = amp_test_rand(rs) & (((uint64_t)1 << 53) - 1) & ~(uint64_t)0xffff;
  return fp << 53 | mid | home;
}

static void *add_(amp_inflight_t *t, amp_test_obj_t *o) {
  return amp_inflight_add_unique(t, o->hash, amp_test_obj_match, &o->key, o);
}

static void *find_(const amp_inflight_t *t, const amp_test_obj_t *o) {
  return amp_inflight_lookup(t, o->hash, amp_test_obj_match, &o->key);
}

/* ---- bad input and sizes ------------------------------------------------- */

static void test_bad_input(void) {
  amp_inflight_t *t = (amp_inflight_t *)1;
  AMP_CHECK_EQ(amp_inflight_new(&t, 0), AMP_ERR_RANGE);
  AMP_CHECK(t == NULL);
  t = (amp_inflight_t *)1;
  AMP_CHECK_EQ(amp_inflight_new(&t, AMP_INFLIGHT_MAX_CAPACITY + 1), AMP_ERR_RANGE);
  AMP_CHECK(t == NULL);
  AMP_CHECK_EQ(amp_inflight_new(&t, UINT64_MAX), AMP_ERR_RANGE);
  AMP_CHECK(t == NULL);
  amp_inflight_delete(NULL);

  static const struct { uint64_t cap, buckets; } sz[] = {
      {1, 1}, {3, 1}, {4, 2}, {6, 2}, {7, 4}, {24, 8}, {25, 16}, {3 << 20, 1 << 20},
      {(1 << 20) + 4096, 1 << 19}};
  for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
    int rc = amp_inflight_new(&t, sz[i].cap);
    AMP_REQUIRE(rc == AMP_OK);
    amp_inflight_stat_t st;
    amp_inflight_stat(&st, t);
    AMP_CHECK_EQ(st.buckets, sz[i].buckets);
    AMP_CHECK_EQ(st.slots, (sz[i].buckets + LIMIT - 1) * SLOTS);
    AMP_CHECK_EQ(st.bytes, (sz[i].buckets + LIMIT - 1) * 64);
    AMP_CHECK_EQ(st.entries, 0);
    AMP_CHECK_EQ(amp_inflight_count(t), 0);
    AMP_CHECK_EQ(amp_inflight_verify(t), AMP_OK);
    amp_inflight_delete(t);
  }

  /* del of what is absent changes nothing */
  int rc = amp_inflight_new(&t, 24);
  AMP_REQUIRE(rc == AMP_OK);
  uint64_t rs = 1;
  amp_test_obj_t a = {1, hash_at_(3, 5, &rs)}, b = {2, hash_at_(3, 5, &rs)}, a2 = {1, a.hash};
  AMP_CHECK_EQ(amp_inflight_del(t, a.hash, &a), AMP_ERR_NOTFOUND);
  AMP_CHECK(add_(t, &a) == &a);
  AMP_CHECK(add_(t, &a2) == &a); /* same key: the present one */
  AMP_CHECK_EQ(amp_inflight_del(t, b.hash, &b), AMP_ERR_NOTFOUND);
  AMP_CHECK_EQ(amp_inflight_del(t, a.hash, &a2), AMP_ERR_NOTFOUND); /* same key, other obj */
  AMP_CHECK_EQ(amp_inflight_del(t, a.hash ^ (1ull << 60), &a), AMP_ERR_NOTFOUND); /* other fp */
  AMP_CHECK_EQ(amp_inflight_del(t, a.hash ^ 1, &a), AMP_ERR_NOTFOUND); /* other home */
  AMP_CHECK_EQ(amp_inflight_count(t), 1);
  AMP_CHECK(find_(t, &a) == &a);
  AMP_CHECK(find_(t, &b) == NULL);
  AMP_CHECK_EQ(amp_inflight_verify(t), AMP_OK);
  AMP_CHECK_EQ(amp_inflight_del(t, a.hash, &a), AMP_OK);
  AMP_CHECK_EQ(amp_inflight_del(t, a.hash, &a), AMP_ERR_NOTFOUND);
  AMP_CHECK_EQ(amp_inflight_count(t), 0);
  AMP_CHECK_EQ(amp_inflight_verify(t), AMP_OK);
  amp_inflight_delete(t);
}

/* ---- directed: a spill over three buckets, holes, reach ----------------- */

static void test_spill(void) {
  amp_inflight_t *t;
  int rc = amp_inflight_new(&t, 24); /* 8 homes, 23 buckets */
  AMP_REQUIRE(rc == AMP_OK);
  uint64_t rs = 7;
  enum { N = 15 };
  amp_test_obj_t o[N + 2];
  /* 15 keys homed at 0, all the same fingerprint: buckets 0, 1 and 2 */
  for (int i = 0; i < N + 2; i++) o[i] = (amp_test_obj_t){(uint64_t)i, hash_at_(0, 0x123, &rs)};
  for (int i = 0; i < N; i++) AMP_CHECK(add_(t, &o[i]) == &o[i]);
  amp_inflight_stat_t st;
  amp_inflight_stat(&st, t);
  AMP_CHECK_EQ(st.at_distance[0], 6);
  AMP_CHECK_EQ(st.at_distance[1], 6);
  AMP_CHECK_EQ(st.at_distance[2], 3);
  AMP_CHECK_EQ(st.max_reach, 2);
  for (int i = 0; i < N; i++) AMP_CHECK(find_(t, &o[i]) == &o[i]);
  AMP_CHECK(find_(t, &o[N]) == NULL);
  /* a key homed at 1 goes after the spill, at distance 1 (bucket 2) */
  amp_test_obj_t h1 = {100, hash_at_(1, 0x123, &rs)};
  AMP_CHECK(add_(t, &h1) == &h1);
  amp_inflight_stat(&st, t);
  AMP_CHECK_EQ(st.at_distance[1], 7);
  /* delete from the middle of the spill: the reach stays 2 */
  AMP_CHECK_EQ(amp_inflight_del(t, o[8].hash, &o[8]), AMP_OK);
  AMP_CHECK_EQ(amp_inflight_verify(t), AMP_OK);
  for (int i = 0; i < N; i++) AMP_CHECK(find_(t, &o[i]) == (i == 8 ? NULL : &o[i]));
  /* reinsertion fills the hole, at distance 1 */
  AMP_CHECK(add_(t, &o[N]) == &o[N]);
  amp_inflight_stat(&st, t);
  AMP_CHECK_EQ(st.at_distance[1], 7);
  AMP_CHECK_EQ(st.at_distance[2], 3);
  AMP_CHECK(add_(t, &o[8]) == &o[8]); /* now at distance 2 */
  AMP_CHECK(add_(t, &o[N + 1]) == &o[N + 1]);
  amp_inflight_stat(&st, t);
  AMP_CHECK_EQ(st.at_distance[2], 5);
  AMP_CHECK_EQ(st.max_reach, 2);
  /* the far entries leave: the reach shrinks to 1 then 0 */
  for (int i = 12; i < N; i++) AMP_CHECK_EQ(amp_inflight_del(t, o[i].hash, &o[i]), AMP_OK);
  AMP_CHECK_EQ(amp_inflight_del(t, o[8].hash, &o[8]), AMP_OK);
  AMP_CHECK_EQ(amp_inflight_verify(t), AMP_OK);
  amp_inflight_stat(&st, t);
  AMP_CHECK_EQ(st.max_reach, 2); /* o[N + 1] is still at distance 2 */
  AMP_CHECK_EQ(amp_inflight_del(t, o[N + 1].hash, &o[N + 1]), AMP_OK);
  amp_inflight_stat(&st, t);
  AMP_CHECK_EQ(st.max_reach, 1);
  AMP_CHECK_EQ(amp_inflight_verify(t), AMP_OK);
  for (int i = 6; i < 12; i++)
    if (i != 8) AMP_CHECK_EQ(amp_inflight_del(t, o[i].hash, &o[i]), AMP_OK);
  AMP_CHECK_EQ(amp_inflight_del(t, o[N].hash, &o[N]), AMP_OK);
  amp_inflight_stat(&st, t);
  AMP_CHECK_EQ(st.max_reach, 1); /* h1's own reach: it sits at distance 1 */
  AMP_CHECK_EQ(amp_inflight_del(t, h1.hash, &h1), AMP_OK);
  amp_inflight_stat(&st, t);
  AMP_CHECK_EQ(st.max_reach, 0);
  AMP_CHECK_EQ(st.entries, 6);
  AMP_CHECK_EQ(amp_inflight_verify(t), AMP_OK);

  /* the last home spills into the extra buckets, never wraps to bucket 0 */
  amp_test_obj_t w[LIMIT * SLOTS + 1];
  for (int i = 0; i < LIMIT * SLOTS + 1; i++)
    w[i] = (amp_test_obj_t){(uint64_t)(1000 + i), hash_at_(7, (uint64_t)(i % 3), &rs)};
  for (int i = 0; i < LIMIT * SLOTS; i++) AMP_CHECK(add_(t, &w[i]) == &w[i]);
  AMP_CHECK(add_(t, &w[LIMIT * SLOTS]) == NULL); /* LIMIT buckets full: no room */
  AMP_CHECK(find_(t, &w[LIMIT * SLOTS]) == NULL);
  amp_inflight_stat(&st, t);
  AMP_CHECK_EQ(st.max_distance, LIMIT - 1);
  AMP_CHECK_EQ(st.at_distance[0], 12); /* bucket 0 holds its own 6 */
  AMP_CHECK_EQ(st.entries, 6 + LIMIT * SLOTS);
  AMP_CHECK_EQ(amp_inflight_verify(t), AMP_OK);
  for (int i = 0; i < LIMIT * SLOTS; i++) AMP_CHECK(find_(t, &w[i]) == &w[i]);
  amp_inflight_delete(t);
}

/* ---- random operations against a model --------------------------------- */

/* The model: the table's slot array, filled the way amp_inflight.c fills it
 * single-threaded (first empty slot from the home, in bucket then slot
 * order), and which object each key has in the table. */
#define M_CAP 24
#define M_HOMES 8
#define M_BUCKETS (M_HOMES + LIMIT - 1)
#define M_KEYS 400

typedef struct {
  const amp_test_obj_t *slot[M_BUCKETS * SLOTS];
  const amp_test_obj_t *present[M_KEYS];
} model_t;

static int model_add_(model_t *m, const amp_test_obj_t *o) {
  unsigned home = (unsigned)(o->hash & (M_HOMES - 1));
  for (unsigned j = home * SLOTS; j < (home + LIMIT) * SLOTS; j++) {
    if (m->slot[j]) continue;
    m->slot[j] = o;
    m->present[o->key] = o;
    return 1;
  }
  return 0;
}

static void model_del_(model_t *m, const amp_test_obj_t *o) {
  for (unsigned j = 0; j < M_BUCKETS * SLOTS; j++)
    if (m->slot[j] == o) m->slot[j] = NULL;
  m->present[o->key] = NULL;
}

typedef struct {
  const amp_test_obj_t *base;
  size_t n;
  uint8_t *seen;
  size_t bad;
} visit_t;

static void visit_(void *obj, void *ctx) {
  visit_t *v = ctx;
  const amp_test_obj_t *o = obj;
  if (o < v->base || o >= v->base + v->n) {
    v->bad++;
    return;
  }
  v->seen[o - v->base]++;
}

static void del_self_(void *obj, void *ctx) {
  amp_inflight_t *t = ctx;
  const amp_test_obj_t *o = obj;
  if (amp_inflight_del(t, o->hash, o) != AMP_OK) abort();
}

static void model_compare_(const amp_inflight_t *t, const model_t *m, const amp_test_obj_t *objs) {
  size_t n = 0;
  for (int k = 0; k < M_KEYS; k++) n += m->present[k] != NULL;
  AMP_CHECK_EQ(amp_inflight_count(t), n);
  uint8_t seen[M_KEYS * 2] = {0};
  visit_t v = {objs, M_KEYS * 2, seen, 0};
  AMP_CHECK_EQ(amp_inflight_for_each(t, visit_, &v), n);
  AMP_CHECK_EQ(v.bad, 0);
  for (int i = 0; i < M_KEYS * 2; i++)
    AMP_CHECK_EQ(seen[i], m->present[objs[i].key] == &objs[i]);
  amp_inflight_stat_t st;
  amp_inflight_stat(&st, t);
  uint64_t dist[LIMIT] = {0};
  for (unsigned j = 0; j < M_BUCKETS * SLOTS; j++)
    if (m->slot[j]) dist[j / SLOTS - (m->slot[j]->hash & (M_HOMES - 1))]++;
  AMP_CHECK_MEM(st.at_distance, dist, sizeof dist);
  AMP_CHECK_EQ(amp_inflight_verify(t), AMP_OK);
}

static void test_model(uint64_t seed) {
  amp_inflight_t *t;
  int rc = amp_inflight_new(&t, M_CAP);
  AMP_REQUIRE(rc == AMP_OK);
  /* Keys crowd a few homes (0, 1, 2 and the last, 7) with few fingerprints
   * (0 becomes 1: it collides with 1), the rest anywhere: full buckets,
   * spills over each other, same home + same fingerprint + other key. Two
   * objects per key. */
  static amp_test_obj_t objs[M_KEYS * 2];
  static const uint64_t homes[] = {0, 1, 2, 7}, fps[] = {0, 1, 2, 0x7ff};
  uint64_t rs = seed;
  for (int k = 0; k < M_KEYS; k++) {
    uint64_t r = amp_test_rand(&rs);
    uint64_t h = k % 5 == 4 ? hash_at_(r % M_HOMES, (r >> 8) & 0x7ff, &rs)
                            : hash_at_(homes[r % 4], fps[(r >> 8) % 4], &rs);
    objs[2 * k] = (amp_test_obj_t){(uint64_t)k, h};
    objs[2 * k + 1] = (amp_test_obj_t){(uint64_t)k, h};
  }
  static model_t m;
  memset(&m, 0, sizeof m);
  size_t full = 0, hits = 0, nops = 0;
  for (int round = 0; round < 40; round++) {
    /* each round drifts toward adds or dels, so the table goes from empty
     * to overfull and back */
    unsigned add_pct = round % 4 < 2 ? 70 : 30;
    for (int i = 0; i < 1000; i++, nops++) {
      uint64_t r = amp_test_rand(&rs);
      int k = (int)(r % M_KEYS);
      amp_test_obj_t *o = &objs[2 * k + (int)((r >> 16) & 1)];
      unsigned op = (unsigned)((r >> 20) % 100);
      if (op < add_pct) {
        if (m.present[k] == o) continue; /* obj must not be in the table */
        void *got = add_(t, o);
        if (m.present[k]) {
          AMP_CHECK(got == m.present[k]);
          hits++;
        } else if (model_add_(&m, o)) {
          AMP_CHECK(got == o);
        } else {
          AMP_CHECK(got == NULL);
          full++;
        }
      } else if (op < add_pct + 25) {
        int want = m.present[k] == o ? AMP_OK : AMP_ERR_NOTFOUND;
        uint64_t h = (r >> 30) % 8 == 0 ? o->hash ^ (1ull << 60) : o->hash;
        if (h != o->hash) want = AMP_ERR_NOTFOUND;
        AMP_CHECK_EQ(amp_inflight_del(t, h, o), want);
        if (want == AMP_OK) model_del_(&m, o);
      } else {
        AMP_CHECK(find_(t, o) == m.present[k]);
      }
      if (i % 97 == 0) model_compare_(t, &m, objs);
    }
    model_compare_(t, &m, objs);
    for (int k = 0; k < M_KEYS; k++) AMP_CHECK(find_(t, &objs[2 * k]) == m.present[k]);
    if (round % 10 == 9) {
      /* for_each whose callback deletes the entry it is given */
      amp_inflight_for_each(t, del_self_, t);
      memset(&m, 0, sizeof m);
      model_compare_(t, &m, objs);
      amp_inflight_stat_t st;
      amp_inflight_stat(&st, t);
      AMP_CHECK_EQ(st.max_reach, 0);
    }
  }
  AMP_CHECK(full > 0); /* the crowded homes did overflow */
  AMP_CHECK(hits > 0);
  fprintf(stderr, "model: %zu ops, %zu duplicates found, %zu no-room answers\n", nops, hits,
          full);
  amp_inflight_delete(t);
}

/* ---- failure rate at capacity ------------------------------------------- */

typedef struct {
  uint64_t inserts, nulls;
  unsigned worst_distance;        /* fresh fill */
  unsigned worst_distance_churn;  /* after churn */
  uint64_t at_distance[LIMIT];    /* fresh */
  uint64_t at_distance_churn[LIMIT];
} fill_stat_t;

/* Fills a table of capacity cap with random hashes, then deletes and
 * re-inserts cap * churn entries at random (each under a new hash), then
 * empties it. Counts NULL answers (the entry is dropped and retried under
 * another hash so the table stays at capacity). */
static void fill_(fill_stat_t *fs, uint64_t cap, unsigned churn, uint64_t *rs, int check) {
  amp_inflight_t *t;
  int rc = amp_inflight_new(&t, cap);
  AMP_REQUIRE(rc == AMP_OK);
  amp_test_obj_t *o = malloc(cap * sizeof *o);
  AMP_REQUIRE(o != NULL);
  for (uint64_t i = 0; i < cap; i++) {
    o[i].key = i;
    do {
      o[i].hash = amp_test_mix64(amp_test_rand(rs));
      fs->inserts++;
    } while (!add_(t, &o[i]) && ++fs->nulls);
  }
  amp_inflight_stat_t st;
  amp_inflight_stat(&st, t);
  if (check) AMP_CHECK_EQ(st.entries, cap);
  if (st.max_distance > fs->worst_distance) fs->worst_distance = st.max_distance;
  for (int d = 0; d < LIMIT; d++) fs->at_distance[d] += st.at_distance[d];
  for (uint64_t n = 0; n < cap * churn; n++) {
    amp_test_obj_t *x = &o[amp_test_rand(rs) % cap];
    if (amp_inflight_del(t, x->hash, x) != AMP_OK) AMP_CHECK(0);
    do {
      x->hash = amp_test_mix64(amp_test_rand(rs));
      fs->inserts++;
    } while (!add_(t, x) && ++fs->nulls);
  }
  amp_inflight_stat(&st, t);
  if (st.max_distance > fs->worst_distance_churn) fs->worst_distance_churn = st.max_distance;
  for (int d = 0; d < LIMIT; d++) fs->at_distance_churn[d] += st.at_distance[d];
  if (check) {
    AMP_CHECK_EQ(amp_inflight_verify(t), AMP_OK);
    for (uint64_t i = 0; i < cap; i += 1 + cap / 512) AMP_CHECK(find_(t, &o[i]) == &o[i]);
  }
  for (uint64_t i = 0; i < cap; i++)
    if (amp_inflight_del(t, o[i].hash, &o[i]) != AMP_OK) AMP_CHECK(0);
  if (check) {
    AMP_CHECK_EQ(amp_inflight_count(t), 0);
    amp_inflight_stat(&st, t);
    AMP_CHECK_EQ(st.max_reach, 0);
    AMP_CHECK_EQ(amp_inflight_verify(t), AMP_OK); /* every bucket clean */
  }
  free(o);
  amp_inflight_delete(t);
}

static void print_dist_(const char *what, unsigned worst, const uint64_t *at) {
  uint64_t n = 0;
  for (int d = 0; d < LIMIT; d++) n += at[d];
  fprintf(stderr, "  %s: farthest distance %u; entries at distance 0/1/2/3+: %.4f/%.4f/%.5f/%.6f\n",
          what, worst, (double)at[0] / (double)n, (double)at[1] / (double)n,
          (double)at[2] / (double)n, (double)(n - at[0] - at[1] - at[2]) / (double)n);
}

static void print_fill_(const char *what, const fill_stat_t *fs) {
  fprintf(stderr, "%s: %" PRIu64 " inserts, %" PRIu64 " NULL\n", what, fs->inserts, fs->nulls);
  print_dist_("fresh", fs->worst_distance, fs->at_distance);
  print_dist_("after churn", fs->worst_distance_churn, fs->at_distance_churn);
}

static void add_fill_(fill_stat_t *all, const fill_stat_t *fs) {
  all->inserts += fs->inserts;
  all->nulls += fs->nulls;
  if (fs->worst_distance > all->worst_distance) all->worst_distance = fs->worst_distance;
  if (fs->worst_distance_churn > all->worst_distance_churn)
    all->worst_distance_churn = fs->worst_distance_churn;
  for (int d = 0; d < LIMIT; d++) {
    all->at_distance[d] += fs->at_distance[d];
    all->at_distance_churn[d] += fs->at_distance_churn[d];
  }
}

static void test_capacity(uint64_t seed) {
  uint64_t rs = seed ^ 0xc0ffee;
  /* every small capacity, many seeds */
  fill_stat_t small = {0};
  for (uint64_t cap = 1; cap <= 96; cap++)
    for (int s = 0; s < 10; s++) fill_(&small, cap, 4, &rs, 1);
  print_fill_("capacity 1..96 x 10 seeds", &small);
  AMP_CHECK_EQ(small.nulls, 0);
  /* the worst load (capacity 3 * 2^k: half the slots), ~300k inserts per
   * size, fresh and after deleting and re-inserting 4 x capacity */
  fill_stat_t all = {0};
  for (unsigned k = 8; k <= 14; k++) {
    fill_stat_t fs = {0};
    uint64_t cap = (uint64_t)3 << k;
    unsigned seeds = (unsigned)((1u << 14 >> k) + 1);
    for (unsigned s = 0; s < seeds; s++) fill_(&fs, cap, 4, &rs, 1);
    AMP_CHECK_EQ(fs.nulls, 0);
    add_fill_(&all, &fs);
  }
  print_fill_("capacity 3 x 2^8 .. 3 x 2^14 (half the slots used)", &all);
  AMP_CHECK_EQ(all.nulls, 0);
  /* the shape, loosely (steady state ~93% at home, fresh ~98%) */
  uint64_t n = 0, nc = 0;
  for (int d = 0; d < LIMIT; d++) {
    n += all.at_distance[d];
    nc += all.at_distance_churn[d];
  }
  AMP_CHECK(all.at_distance[0] > n / 100 * 95);
  AMP_CHECK(all.at_distance_churn[0] > nc / 100 * 90);
}

/* ---- threads ------------------------------------------------------------ */

static double now_ns_(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

#define WRITERS 4
#define READERS 2

typedef struct {
  amp_inflight_t *t;
  int nk;                  /* keys that writers race on */
  int ns;                  /* stable keys after them, never deleted */
  amp_test_obj_t *objs[WRITERS];    /* per writer, one object per key */
  uint8_t *in[WRITERS];    /* the writer's objects in the table */
  amp_test_obj_t *stable;
  _Atomic int *own;        /* per key: writers whose object is in */
  long iters;             /* per writer, at least; and at least 0.5 s */
  double t0_ns;
  _Atomic int stop;
  _Atomic long fails, ops, inserted, lost, lookups, walks;
} race_t;

typedef struct {
  race_t *r;
  int id;
} arg_t;

static void *writer_(void *p) {
  arg_t *a = p;
  race_t *r = a->r;
  uint64_t rs = amp_test_mix64((uint64_t)a->id + 1);
  amp_test_obj_t *objs = r->objs[a->id];
  uint8_t *in = r->in[a->id];
  long fails = 0, inserted = 0, lost = 0;
  long it;
  for (it = 0;; it++) {
    if (it >= r->iters && it % 1024 == 0 && now_ns_() - r->t0_ns >= 5e8) break;
    uint64_t x = amp_test_rand(&rs);
    int k = (int)(x % (uint64_t)r->nk);
    amp_test_obj_t *o = &objs[k];
    if (!in[k]) {
      void *got = add_(r->t, o);
      if (got == o) {
        if (atomic_fetch_add(&r->own[k], 1) != 0) fails++; /* two owners */
        in[k] = 1;
        inserted++;
        if (find_(r->t, o) != o) fails++;
      } else if (!got || ((amp_test_obj_t *)got)->key != (uint64_t)k) {
        fails++;
      } else {
        lost++;
      }
    } else {
      for (unsigned spin = (unsigned)(x >> 32) % 64; spin; spin--) /* hold it a while */
        atomic_signal_fence(memory_order_seq_cst);
      if (find_(r->t, o) != o) fails++;
      if (atomic_fetch_sub(&r->own[k], 1) != 1) fails++;
      if (amp_inflight_del(r->t, o->hash, o) != AMP_OK) fails++;
      in[k] = 0;
      if ((x >> 40) % 8 == 0 && amp_inflight_del(r->t, o->hash, o) != AMP_ERR_NOTFOUND) fails++;
    }
  }
  atomic_fetch_add(&r->fails, fails);
  atomic_fetch_add(&r->ops, it);
  atomic_fetch_add(&r->inserted, inserted);
  atomic_fetch_add(&r->lost, lost);
  return NULL;
}

typedef struct {
  race_t *r;
  long stable_seen, bad;
} walk_t;

static void walk_(void *obj, void *ctx) {
  walk_t *w = ctx;
  race_t *r = w->r;
  const amp_test_obj_t *o = obj;
  if (o >= r->stable && o < r->stable + r->ns) {
    w->stable_seen++;
    return;
  }
  int mine = 0;
  for (int i = 0; i < WRITERS; i++) mine |= o >= r->objs[i] && o < r->objs[i] + r->nk;
  if (!mine || o->key >= (uint64_t)r->nk) w->bad++;
}

static void *reader_(void *p) {
  arg_t *a = p;
  race_t *r = a->r;
  uint64_t rs = amp_test_mix64((uint64_t)a->id + 100);
  long fails = 0, lookups = 0, walks = 0;
  while (!atomic_load(&r->stop)) {
    /* the writers are the point: 6 threads on 2 CPUs */
    if (lookups % 4096 == 0) sched_yield();
    for (int i = 0; i < 256; i++, lookups++) {
      uint64_t x = amp_test_rand(&rs);
      int k = (int)(x % (uint64_t)(r->nk + r->ns));
      uint64_t key = (uint64_t)k;
      const amp_test_obj_t *o = k < r->nk ? &r->objs[0][k] : &r->stable[k - r->nk];
      const amp_test_obj_t *got = amp_inflight_lookup(r->t, o->hash, amp_test_obj_match, &key);
      if (k >= r->nk ? got != o : got && got->key != key) fails++;
    }
    if (a->id == 1 && lookups % 1024 == 0) {
      /* every stable entry is present for the whole walk: seen once */
      walk_t w = {r, 0, 0};
      amp_inflight_for_each(r->t, walk_, &w);
      if (w.stable_seen != r->ns || w.bad) fails++;
      walks++;
    }
  }
  atomic_fetch_add(&r->fails, fails);
  atomic_fetch_add(&r->lookups, lookups);
  atomic_fetch_add(&r->walks, walks);
  return NULL;
}

/* crowd: every hash in homes 0..3 with 3 fingerprints (spills, reach going
 * up and down under the race); otherwise random hashes. */
static void race_(const char *what, uint64_t cap, int nk, int ns, int crowd, long iters,
                  uint64_t seed) {
  race_t r;
  memset(&r, 0, sizeof r);
  int rc = amp_inflight_new(&r.t, cap);
  AMP_REQUIRE(rc == AMP_OK);
  r.nk = nk;
  r.ns = ns;
  r.iters = iters;
  r.own = calloc((size_t)nk, sizeof *r.own);
  r.stable = calloc((size_t)ns, sizeof *r.stable);
  uint64_t *h = calloc((size_t)(nk + ns), sizeof *h);
  AMP_REQUIRE(r.own && r.stable && h);
  uint64_t rs = seed;
  for (int k = 0; k < nk + ns; k++) {
    uint64_t x = amp_test_rand(&rs);
    h[k] = crowd ? hash_at_(x % 4, 1 + (x >> 8) % 3, &rs) : amp_test_mix64(x);
  }
  for (int i = 0; i < WRITERS; i++) {
    r.objs[i] = calloc((size_t)nk, sizeof(amp_test_obj_t));
    r.in[i] = calloc((size_t)nk, 1);
    AMP_REQUIRE(r.objs[i] && r.in[i]);
    for (int k = 0; k < nk; k++) r.objs[i][k] = (amp_test_obj_t){(uint64_t)k, h[k]};
  }
  for (int s = 0; s < ns; s++) {
    r.stable[s] = (amp_test_obj_t){(uint64_t)(nk + s), h[nk + s]};
    AMP_CHECK(add_(r.t, &r.stable[s]) == &r.stable[s]);
  }
  pthread_t th[WRITERS + READERS];
  arg_t args[WRITERS + READERS];
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  r.t0_ns = now_ns_();
  for (int i = 0; i < READERS; i++) {
    args[WRITERS + i] = (arg_t){&r, i};
    AMP_REQUIRE(pthread_create(&th[WRITERS + i], NULL, reader_, &args[WRITERS + i]) == 0);
  }
  for (int i = 0; i < WRITERS; i++) {
    args[i] = (arg_t){&r, i};
    AMP_REQUIRE(pthread_create(&th[i], NULL, writer_, &args[i]) == 0);
  }
  for (int i = 0; i < WRITERS; i++) pthread_join(th[i], NULL);
  atomic_store(&r.stop, 1);
  for (int i = 0; i < READERS; i++) pthread_join(th[WRITERS + i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
  fprintf(stderr,
          "%s: %d writers, %ld ops, %ld inserted, %ld lost the race, %d readers: %ld lookups, "
          "%ld walks; %.2f s\n",
          what, WRITERS, (long)r.ops, (long)r.inserted, (long)r.lost, READERS, (long)r.lookups,
          (long)r.walks, secs);
  AMP_CHECK_EQ(r.fails, 0);
  AMP_CHECK(r.lost > 0); /* the same keys did race */
  /* quiet now: each key is in at most once, by the writer that thinks so */
  size_t n = (size_t)ns;
  for (int k = 0; k < nk; k++) {
    int owners = 0;
    const amp_test_obj_t *o = NULL;
    for (int i = 0; i < WRITERS; i++)
      if (r.in[i][k]) {
        owners++;
        o = &r.objs[i][k];
      }
    AMP_CHECK(owners <= 1);
    AMP_CHECK_EQ(r.own[k], owners);
    AMP_CHECK(find_(r.t, &r.objs[0][k]) == o);
    n += (size_t)owners;
  }
  AMP_CHECK_EQ(amp_inflight_count(r.t), n);
  AMP_CHECK_EQ(amp_inflight_verify(r.t), AMP_OK);
  for (int i = 0; i < WRITERS; i++)
    for (int k = 0; k < nk; k++)
      if (r.in[i][k]) AMP_CHECK_EQ(amp_inflight_del(r.t, h[k], &r.objs[i][k]), AMP_OK);
  for (int s = 0; s < ns; s++) AMP_CHECK_EQ(amp_inflight_del(r.t, h[nk + s], &r.stable[s]), AMP_OK);
  AMP_CHECK_EQ(amp_inflight_count(r.t), 0);
  AMP_CHECK_EQ(amp_inflight_verify(r.t), AMP_OK);
  for (int i = 0; i < WRITERS; i++) {
    free(r.objs[i]);
    free(r.in[i]);
  }
  free(r.own);
  free(r.stable);
  free(h);
  amp_inflight_delete(r.t);
}

/* ---- --bench ------------------------------------------------------------ */


enum { BURST = 32 };

/* ns per operation over n objects in bursts of 32; prefetching the next
 * burst's buckets while doing this one when pf */
static double bench_op_(amp_inflight_t *t, amp_test_obj_t *o, size_t n, int op, int pf) {
  double t0 = now_ns_();
  size_t bad = 0;
  for (size_t i = 0; i < n; i += BURST) {
    if (pf)
      for (size_t j = i + BURST; j < i + 2 * BURST && j < n; j++)
        amp_inflight_prefetch(t, o[j].hash);
    for (size_t j = i; j < i + BURST && j < n; j++) {
      if (op == 0) bad += add_(t, &o[j]) != &o[j];
      else if (op == 1) bad += find_(t, &o[j]) != &o[j];
      else bad += amp_inflight_del(t, o[j].hash, &o[j]) != AMP_OK;
    }
  }
  double dt = (now_ns_() - t0) / (double)n;
  if (bad) fprintf(stderr, "bench: %zu failed operations\n", bad);
  return dt;
}

static void bench(uint64_t seed) {
  uint64_t rs = seed;
  fill_stat_t fs = {0};
  for (int s = 0; s < 8; s++) fill_(&fs, (uint64_t)3 << 20, 4, &rs, 0);
  print_fill_("bench: capacity 3 x 2^20 (half the slots used) x 8 seeds", &fs);
  /* the engine's default capacity: 2^20 + 4096 -> 2^19 buckets (32 MiB) */
  uint64_t cap = (1 << 20) + 4096;
  amp_inflight_t *t;
  int rc = amp_inflight_new(&t, cap);
  AMP_REQUIRE(rc == AMP_OK);
  size_t n = (size_t)cap / 2; /* half the capacity in the table */
  amp_test_obj_t *o = malloc(n * sizeof *o);
  AMP_REQUIRE(o != NULL);
  /* the objects are an array in insertion order, the hashes random: the
   * buckets are cold (32 MiB), the objects mostly warm */
  for (int pf = 0; pf < 2; pf++) {
    for (size_t i = 0; i < n; i++) o[i] = (amp_test_obj_t){i, amp_test_mix64(amp_test_rand(&rs))};
    double a = bench_op_(t, o, n, 0, pf);
    double l = bench_op_(t, o, n, 1, pf);
    double d = bench_op_(t, o, n, 2, pf);
    fprintf(stderr,
            "bench: %zu entries in 2^19 buckets (32 MiB), bursts of %d, %s: add_unique %.1f ns, "
            "lookup %.1f ns, del %.1f ns\n",
            n, BURST, pf ? "next burst prefetched" : "no prefetch", a, l, d);
    AMP_CHECK_EQ(amp_inflight_count(t), 0);
  }
  free(o);
  amp_inflight_delete(t);
}

int main(int argc, char **argv) {
  uint64_t seed = amp_test_seed();
  if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
    bench(seed);
    return amp_test_done();
  }
  test_bad_input();
  test_spill();
  for (int s = 0; s < 8; s++) test_model(amp_test_mix64(seed + (uint64_t)s));
  test_capacity(seed);
  race_("race, crowded homes", 24, 64, 8, 1, 200000, amp_test_mix64(seed ^ 1));
  race_("race, random hashes", 3072, 3000, 64, 0, 200000, amp_test_mix64(seed ^ 2));
  return amp_test_done();
}
