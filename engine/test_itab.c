/* test_itab.c: bad input; inserts through several doublings against a
 * model, with colliding hashes (equal hashes for different keys, crowded
 * homes); for_each; removal: its edge cases (pred, another object with the
 * key, tombstones in a probe path), a random mix of inserts, removals and
 * lookups against a model after every step with the table's own invariants,
 * churn at a constant live count (the table stays bounded), a drained table
 * shrinking; inserters racing on the same keys while readers look up keys
 * whose insert completed before their lookup began (never a miss, through
 * growth) and keys never inserted (never a hit); writers inserting and
 * removing while readers look up keys that stay (never a miss, through
 * tombstone reuse and rebuilds), removed objects and replaced tables freed
 * after a grace period (ASan sees a use after it).
 *
 * It includes the file under test, not only its header, to read the slot
 * count, used count and tombstones of the current table, which the API does
 * not show (single-threaded tests only). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "amp_itab.c"
#include "amp_test.h"

/* ---- the table's insides, for single-threaded checks ----------------- */

static uint64_t slots_(const amp_itab_t *t) {
  return LD_(&((amp_itab_t *)t)->cur, relaxed)->mask + 1;
}

static uint64_t tombs_(const amp_itab_t *t) {
  const tab_t *tb = LD_(&((amp_itab_t *)t)->cur, relaxed);
  uint64_t n = 0;
  for (uint64_t i = 0; i <= tb->mask; i++) n += LD_(&tb->slot[i].obj, relaxed) == TOMB_;
  return n;
}

/* What a rebuild at `live` entries must give: the smallest power of two
 * >= 64 with 4 slots per live entry. */
static uint64_t rebuilt_slots_(uint64_t live) {
  uint64_t s = 64;
  while (s < 4 * live) s *= 2;
  return s;
}

/* used counts live entries and tombstones, at most half the slots */
static void check_insides_(const amp_itab_t *t) {
  uint64_t tombs = tombs_(t);
  AMP_CHECK(2 * t->used <= slots_(t));
  AMP_CHECK_EQ(t->used, amp_itab_count(t) + tombs);
}

static void test_bad_input(void) {
  amp_itab_t *t = (amp_itab_t *)1;
  AMP_CHECK_EQ(amp_itab_new(&t, ((uint64_t)1 << 40) + 1), AMP_ERR_RANGE);
  AMP_CHECK(t == NULL);
  amp_itab_delete(NULL);
  AMP_CHECK_EQ(amp_itab_new(&t, 0), AMP_OK);
  uint64_t k = 7;
  AMP_CHECK(amp_itab_lookup(t, 123, amp_test_obj_match, &k) == NULL);
  AMP_CHECK_EQ(amp_itab_count(t), 0);
  amp_itab_delete(t);
}

static int count_cb_(void *obj, void *ctx) {
  (void)obj;
  ++*(size_t *)ctx;
  return 0;
}

static int stop_cb_(void *obj, void *ctx) {
  (void)obj;
  return ++*(size_t *)ctx == 10;
}

/* N objects, hashes drawn so that many collide: a quarter share their hash
 * with another key, and all of them fall in few homes while the table is
 * small. */
static void test_model(uint64_t seed) {
  enum { N = 50000 };
  amp_test_obj_t *o = calloc(N, sizeof *o);
  AMP_REQUIRE(o != NULL);
  for (size_t i = 0; i < N; i++) {
    o[i].key = i + 1;
    o[i].hash = (i % 4 == 3) ? o[i - 1].hash : amp_test_mix64(seed + i);
  }
  amp_itab_t *t;
  AMP_REQUIRE(amp_itab_new(&t, 0) == AMP_OK);
  unsigned long bad = 0;
  for (size_t i = 0; i < N; i++) {
    bad += amp_itab_add_unique(t, o[i].hash, amp_test_obj_match, &o[i].key, &o[i]) != &o[i];
    /* a second insert of the same key (another object) returns the first */
    amp_test_obj_t dup = o[i];
    bad += amp_itab_add_unique(t, dup.hash, amp_test_obj_match, &dup.key, &dup) != &o[i];
    if (i % 997 == 0)
      for (size_t j = 0; j <= i; j++)
        bad += amp_itab_lookup(t, o[j].hash, amp_test_obj_match, &o[j].key) != &o[j];
  }
  AMP_CHECK_EQ(bad, 0);
  AMP_CHECK_EQ(amp_itab_count(t), N);
  for (size_t i = 0; i < N; i++) {
    bad += amp_itab_lookup(t, o[i].hash, amp_test_obj_match, &o[i].key) != &o[i];
    uint64_t other = o[i].key + N; /* never inserted, same hash */
    bad += amp_itab_lookup(t, o[i].hash, amp_test_obj_match, &other) != NULL;
    amp_itab_prefetch(t, o[i].hash);
  }
  AMP_CHECK_EQ(bad, 0);
  size_t seen = 0;
  amp_itab_for_each(t, count_cb_, &seen);
  AMP_CHECK_EQ(seen, N);
  seen = 0;
  amp_itab_for_each(t, stop_cb_, &seen);
  AMP_CHECK_EQ(seen, 10);
  /* the tables growth replaced (50,000 entries from 64 slots: 11), freed
   * when no reader can still use them; the current one keeps everything */
  uint64_t mark = amp_itab_retired(t);
  AMP_CHECK_EQ(mark, 11);
  amp_itab_reclaim(t, mark - 3);
  amp_itab_reclaim(t, mark - 3); /* again: nothing more */
  amp_itab_reclaim(t, mark);
  for (size_t i = 0; i < N; i++)
    bad += amp_itab_lookup(t, o[i].hash, amp_test_obj_match, &o[i].key) != &o[i];
  AMP_CHECK_EQ(bad, 0);
  amp_test_obj_t extra = {2 * N + 1, amp_test_mix64(seed ^ 99)};
  AMP_CHECK(amp_itab_add_unique(t, extra.hash, amp_test_obj_match, &extra.key, &extra) == &extra);
  amp_itab_delete(t);
  /* presized: no growth needed for what was announced */
  AMP_REQUIRE(amp_itab_new(&t, N) == AMP_OK);
  for (size_t i = 0; i < N; i++)
    bad += amp_itab_add_unique(t, o[i].hash, amp_test_obj_match, &o[i].key, &o[i]) != &o[i];
  AMP_CHECK_EQ(bad, 0);
  amp_itab_delete(t);
  free(o);
}

/* ---- removal ----------------------------------------------------------- */

typedef struct {
  const void *want;              /* the object pred must see */
  int answer;
  unsigned calls, wrong;
} pred_ctx_t;

static int pred_(void *obj, void *ctx) {
  pred_ctx_t *p = ctx;
  p->calls++;
  p->wrong += obj != p->want;
  return p->answer;
}

/* add_unique_if: admit is asked only for an absent key, under the lock; a
 * refusal inserts nothing and says so; a present key returns that object
 * without asking. */
typedef struct {
  int answer, calls;
} admit_ctx_t;

static int admit_(void *ctx) {
  admit_ctx_t *a = ctx;
  a->calls++;
  return a->answer;
}

static void test_add_if(void) {
  amp_itab_t *t;
  AMP_REQUIRE(amp_itab_new(&t, 0) == AMP_OK);
  uint64_t h = 0x0badc0ffee123457ULL;
  amp_test_obj_t a = {1, h}, a2 = {1, h}, b = {2, h};
  admit_ctx_t no = {0, 0}, yes = {1, 0};
  int refused = -1;
  AMP_CHECK(amp_itab_add_unique_if(t, h, amp_test_obj_match, &a.key, &a, admit_, &no, &refused) ==
            NULL);
  AMP_CHECK_EQ(refused, 1);
  AMP_CHECK_EQ(no.calls, 1);
  AMP_CHECK_EQ(amp_itab_count(t), 0);
  AMP_CHECK(amp_itab_lookup(t, h, amp_test_obj_match, &a.key) == NULL);
  AMP_CHECK(amp_itab_add_unique_if(t, h, amp_test_obj_match, &a.key, &a, admit_, &yes, &refused) ==
            &a);
  AMP_CHECK_EQ(refused, 0);
  AMP_CHECK_EQ(yes.calls, 1);
  AMP_CHECK_EQ(amp_itab_count(t), 1);
  /* present: the one there, admit not asked */
  AMP_CHECK(amp_itab_add_unique_if(t, h, amp_test_obj_match, &a2.key, &a2, admit_, &no, &refused) ==
            &a);
  AMP_CHECK_EQ(refused, 0);
  AMP_CHECK_EQ(no.calls, 1);
  /* admit NULL: add_unique; refused NULL is allowed */
  AMP_CHECK(amp_itab_add_unique_if(t, h, amp_test_obj_match, &b.key, &b, NULL, NULL, NULL) == &b);
  AMP_CHECK_EQ(amp_itab_count(t), 2);
  check_insides_(t);
  amp_itab_delete(t);
}

static void test_remove_edges(void) {
  amp_itab_t *t;
  AMP_REQUIRE(amp_itab_new(&t, 0) == AMP_OK);
  /* keys 1-3 share one hash: one probe path, a (key 1), c (key 2) on it */
  uint64_t h = 0x1234567890abcdefULL;
  amp_test_obj_t a = {1, h}, b = {1, h}, c = {2, h}, c2 = {2, h}, d = {3, h};
  pred_ctx_t p = {&a, 0, 0, 0};
  AMP_CHECK_EQ(amp_itab_remove(t, h, &a, NULL, NULL), 0); /* empty table */
  AMP_CHECK(amp_itab_add_unique(t, h, amp_test_obj_match, &a.key, &a) == &a);
  /* pred refuses: a stays; pred saw a, once */
  AMP_CHECK_EQ(amp_itab_remove(t, h, &a, pred_, &p), 0);
  AMP_CHECK_EQ(p.calls, 1);
  AMP_CHECK_EQ(p.wrong, 0);
  AMP_CHECK(amp_itab_lookup(t, h, amp_test_obj_match, &a.key) == &a);
  AMP_CHECK_EQ(amp_itab_count(t), 1);
  /* b has a's key but is not in: not removed, pred not asked */
  p = (pred_ctx_t){&b, 1, 0, 0};
  AMP_CHECK_EQ(amp_itab_remove(t, h, &b, NULL, NULL), 0);
  AMP_CHECK_EQ(amp_itab_remove(t, h, &b, pred_, &p), 0);
  AMP_CHECK_EQ(p.calls, 0);
  /* a under another hash (same home slot): not there */
  AMP_CHECK_EQ(amp_itab_remove(t, h ^ ((uint64_t)1 << 40), &a, NULL, NULL), 0);
  AMP_CHECK(amp_itab_lookup(t, h, amp_test_obj_match, &a.key) == &a);
  AMP_CHECK_EQ(amp_itab_count(t), 1);
  check_insides_(t);
  /* c after a on the path; a removed: its slot a tombstone that the probe
   * for c passes, and that an insert of c's key must not take */
  AMP_CHECK(amp_itab_add_unique(t, h, amp_test_obj_match, &c.key, &c) == &c);
  p = (pred_ctx_t){&a, 1, 0, 0};
  AMP_CHECK_EQ(amp_itab_remove(t, h, &a, pred_, &p), 1);
  AMP_CHECK_EQ(p.calls, 1);
  AMP_CHECK_EQ(p.wrong, 0);
  AMP_CHECK(amp_itab_lookup(t, h, amp_test_obj_match, &a.key) == NULL);
  AMP_CHECK(amp_itab_lookup(t, h, amp_test_obj_match, &c.key) == &c);
  AMP_CHECK_EQ(amp_itab_count(t), 1);
  AMP_CHECK_EQ(tombs_(t), 1);
  AMP_CHECK(amp_itab_add_unique(t, h, amp_test_obj_match, &c2.key, &c2) == &c);
  AMP_CHECK_EQ(amp_itab_count(t), 1);
  AMP_CHECK_EQ(amp_itab_remove(t, h, &a, NULL, NULL), 0); /* twice: gone */
  size_t seen = 0;
  amp_itab_for_each(t, count_cb_, &seen);
  AMP_CHECK_EQ(seen, 1);
  /* a new key takes the tombstone: no more slots used */
  uint64_t used = t->used;
  AMP_CHECK(amp_itab_add_unique(t, h, amp_test_obj_match, &d.key, &d) == &d);
  AMP_CHECK_EQ(t->used, used);
  AMP_CHECK_EQ(tombs_(t), 0);
  AMP_CHECK(amp_itab_lookup(t, h, amp_test_obj_match, &c.key) == &c);
  AMP_CHECK(amp_itab_lookup(t, h, amp_test_obj_match, &d.key) == &d);
  /* a back in, removed without pred; c and d out too: nothing left */
  AMP_CHECK(amp_itab_add_unique(t, h, amp_test_obj_match, &a.key, &a) == &a);
  AMP_CHECK_EQ(amp_itab_remove(t, h, &a, NULL, NULL), 1);
  AMP_CHECK_EQ(amp_itab_remove(t, h, &c, NULL, NULL), 1);
  AMP_CHECK_EQ(amp_itab_remove(t, h, &d, NULL, NULL), 1);
  AMP_CHECK_EQ(amp_itab_count(t), 0);
  seen = 0;
  amp_itab_for_each(t, count_cb_, &seen);
  AMP_CHECK_EQ(seen, 0);
  AMP_CHECK(amp_itab_lookup(t, h, amp_test_obj_match, &c.key) == NULL);
  check_insides_(t);
  AMP_CHECK_EQ(amp_itab_retired(t), 0);
  amp_itab_delete(t);
}

/* A random mix of inserts (either of two objects per key), removals (the
 * object in or the other one; no pred, a pred that refuses, one that
 * accepts) over MIX_KEYS keys whose hashes collide (1/8 crowd home 0 of every
 * table up to 1,024 slots, 1/8 the last slot, so probes wrap; 1/4 share their
 * hash with another key), in phases that fill and drain the table. After
 * every step: lookups (below), a key never inserted, the count, for_each
 * visiting exactly the live set, the insides. Every rebuild has the size the
 * rule gives; some come over tombstones and keep or shrink the table. */
#define MIX_KEYS 2048
#define MIX_STEPS 30000

typedef struct {
  const amp_test_obj_t *o;       /* 2 per key */
  const int *in;                 /* per key: the copy in, or -1 */
  unsigned char seen[MIX_KEYS];
  unsigned long bad;
} mix_walk_t;

static int mix_walk_cb_(void *obj, void *ctx) {
  mix_walk_t *w = ctx;
  const amp_test_obj_t *x = obj;
  size_t k = (size_t)(x->key - 1);
  if (k >= MIX_KEYS || w->seen[k]++ || w->in[k] < 0 || x != &w->o[2 * k + (size_t)w->in[k]])
    w->bad++;
  return 0;
}

static void test_remove_model(uint64_t seed) {
  amp_test_obj_t o[2 * MIX_KEYS];
  for (size_t k = 0; k < MIX_KEYS; k++) {
    uint64_t h = amp_test_mix64(seed + k);
    if (k % 8 == 0) h &= ~(uint64_t)1023;
    if (k % 8 == 1) h |= 1023;
    if (k % 4 == 3) h = o[2 * k - 2].hash;
    o[2 * k] = o[2 * k + 1] = (amp_test_obj_t){k + 1, h};
  }
  int in[MIX_KEYS];
  size_t live_k[MIX_KEYS], pos[MIX_KEYS]; /* the keys in, and where in live_k */
  for (size_t k = 0; k < MIX_KEYS; k++) in[k] = -1;
  uint64_t live = 0, rs = seed | 1, rebuilds = 0, tomb_rebuilds = 0, not_grown = 0, shrunk = 0;
  unsigned long bad = 0;
  amp_itab_t *t;
  AMP_REQUIRE(amp_itab_new(&t, 0) == AMP_OK);
  for (unsigned step = 0; step < MIX_STEPS; step++) {
    /* phases of 2,000 steps, each steering the live count to a target: 3/4
     * inserts below it, 1/4 above; over many more keys than that, so the
     * tombstones of keys gone fill the table (used) and rebuild it */
    static const uint64_t target[5] = {60, 4, 120, 2, 30};
    unsigned ins_pct = live < target[(step / 2000) % 5] ? 75 : 25;
    uint64_t r = amp_test_rand(&rs);
    int ins = (r >> 48) % 100 < ins_pct;
    size_t k = (size_t)((r >> 8) % MIX_KEYS);
    int copy = (int)((r >> 40) & 1);
    if (!ins && live && (r >> 20) % 8) { /* mostly a key in; mostly its object */
      k = live_k[(r >> 24) % live];
      copy = (r >> 41) % 4 ? in[k] : !in[k];
    }
    amp_test_obj_t *x = &o[2 * k + (size_t)copy];
    if (ins) {
      uint64_t slots = slots_(t), mark = amp_itab_retired(t), tombs = tombs_(t), used = t->used;
      void *want = in[k] >= 0 ? &o[2 * k + (size_t)in[k]] : x;
      bad += amp_itab_add_unique(t, x->hash, amp_test_obj_match, &x->key, x) != want;
      if (amp_itab_retired(t) != mark) {
        rebuilds++;
        tomb_rebuilds += tombs > 0;
        not_grown += slots_(t) <= slots;
        shrunk += slots_(t) < slots;
        bad += in[k] >= 0 || amp_itab_retired(t) != mark + 1; /* only an insert, once */
        bad += 2 * (used + 1) <= slots;                       /* only when due */
        bad += slots_(t) != rebuilt_slots_(live);
        bad += tombs_(t) != 0;
      }
      if (in[k] < 0) {
        in[k] = copy;
        pos[k] = live;
        live_k[live++] = k;
      }
    } else {
      pred_ctx_t p = {x, 0, 0, 0};
      unsigned how = (unsigned)((r >> 56) % 3); /* no pred, pred says no, pred says yes */
      p.answer = how == 2;
      int removed = amp_itab_remove(t, x->hash, x, how ? pred_ : NULL, &p);
      int there = in[k] == copy;
      bad += removed != (there && how != 1);
      bad += p.calls != (unsigned)(how && there) || p.wrong;
      if (removed) {
        in[k] = -1;
        live_k[pos[k]] = live_k[--live];
        pos[live_k[pos[k]]] = pos[k];
      }
    }
    /* against the model: the key touched, every key in, 16 others (every
     * key every 256 steps and at the end) */
    size_t check[1 + MIX_KEYS + 16], n_check = 0;
    check[n_check++] = k;
    for (size_t j = 0; j < live; j++) check[n_check++] = live_k[j];
    for (size_t j = 0; j < 16; j++) check[n_check++] = (size_t)(amp_test_rand(&rs) % MIX_KEYS);
    if (step % 256 == 0 || step + 1 == MIX_STEPS)
      for (size_t j = n_check = 0; j < MIX_KEYS; j++) check[n_check++] = j;
    for (size_t i = 0; i < n_check; i++) {
      size_t j = check[i];
      const void *got = amp_itab_lookup(t, o[2 * j].hash, amp_test_obj_match, &o[2 * j].key);
      bad += got != (in[j] >= 0 ? &o[2 * j + (size_t)in[j]] : NULL);
    }
    uint64_t never = MIX_KEYS + 1 + k;
    bad += amp_itab_lookup(t, x->hash, amp_test_obj_match, &never) != NULL;
    bad += amp_itab_count(t) != live;
    mix_walk_t w = {o, in, {0}, 0};
    amp_itab_for_each(t, mix_walk_cb_, &w);
    size_t n = 0;
    for (size_t j = 0; j < MIX_KEYS; j++) n += w.seen[j];
    bad += w.bad + (n != live);
    bad += 2 * t->used > slots_(t) || t->used != live + tombs_(t);
    if (bad) {
      fprintf(stderr, "remove model: first bad step %u\n", step);
      break;
    }
  }
  AMP_CHECK_EQ(bad, 0);
  /* rebuilds happened (~90): growing, over tombstones, keeping the size,
   * shrinking */
  AMP_CHECK(rebuilds >= 30);
  AMP_CHECK(rebuilds - not_grown >= 5);
  AMP_CHECK(tomb_rebuilds >= 20);
  AMP_CHECK(not_grown >= 20);
  AMP_CHECK(shrunk >= 1);
  AMP_CHECK_EQ(amp_itab_retired(t), rebuilds);
  amp_itab_reclaim(t, amp_itab_retired(t));
  AMP_CHECK_EQ(t->n_old, 0);
  fprintf(stderr,
          "remove model: %u steps, %" PRIu64 " rebuilds (%" PRIu64 " over tombstones, %" PRIu64
          " not growing, %" PRIu64 " shrinking)\n",
          MIX_STEPS, rebuilds, tomb_rebuilds, not_grown, shrunk);
  amp_itab_delete(t);
}

/* Churn at a constant live count: CHURN_LIVE keys in, then each cycle
 * inserts a key that is out and removes one that is in, over 4x as many
 * keys. The table stays at the size of the rule for the live count (512
 * slots) however many tombstones the cycles leave; rebuilds come often
 * enough to hold it there and rarely enough to cost O(1) per insert; the
 * replaced tables are reclaimed as it goes. */
#define CHURN_LIVE 100
#define CHURN_CYCLES 100000

static void test_remove_churn(uint64_t seed) {
  enum { K = 4 * CHURN_LIVE };
  amp_test_obj_t o[K];
  size_t in[K], out[K], n_in = 0, n_out = 0; /* key indexes in and out */
  for (size_t k = 0; k < K; k++) {
    o[k] = (amp_test_obj_t){k + 1, (k % 4 == 3) ? o[k - 1].hash : amp_test_mix64(seed ^ k)};
    out[n_out++] = k;
  }
  amp_itab_t *t;
  AMP_REQUIRE(amp_itab_new(&t, 0) == AMP_OK);
  uint64_t rs = seed | 1, max_slots = 0;
  unsigned long bad = 0;
  for (unsigned c = 0; c < CHURN_LIVE + CHURN_CYCLES; c++) {
    size_t i = (size_t)(amp_test_rand(&rs) % n_out), k = out[i];
    out[i] = out[--n_out];
    in[n_in++] = k;
    bad += amp_itab_add_unique(t, o[k].hash, amp_test_obj_match, &o[k].key, &o[k]) != &o[k];
    if (slots_(t) > max_slots) max_slots = slots_(t);
    if (c >= CHURN_LIVE) {
      i = (size_t)(amp_test_rand(&rs) % n_in);
      k = in[i];
      in[i] = in[--n_in];
      out[n_out++] = k;
      bad += amp_itab_remove(t, o[k].hash, &o[k], NULL, NULL) != 1;
    }
    if (c % 1000 == 0) amp_itab_reclaim(t, amp_itab_retired(t));
  }
  AMP_CHECK_EQ(bad, 0);
  AMP_CHECK_EQ(amp_itab_count(t), CHURN_LIVE);
  for (size_t j = 0; j < n_in; j++)
    bad += amp_itab_lookup(t, o[in[j]].hash, amp_test_obj_match, &o[in[j]].key) != &o[in[j]];
  for (size_t j = 0; j < n_out; j++)
    bad += amp_itab_lookup(t, o[out[j]].hash, amp_test_obj_match, &o[out[j]].key) != NULL;
  AMP_CHECK_EQ(bad, 0);
  check_insides_(t);
  AMP_CHECK_EQ(max_slots, rebuilt_slots_(CHURN_LIVE)); /* 512 */
  /* a rebuild leaves 101 of 512 slots used and the next comes at 256: >= 155
   * inserts into empty slots apart, so at most 646 rebuilds (O(1) per insert
   * amortized); the inserts that take a tombstone bring none (~250 here) */
  uint64_t rebuilds = amp_itab_retired(t);
  AMP_CHECK(rebuilds >= 100 && rebuilds <= (CHURN_LIVE + CHURN_CYCLES) / 155);
  amp_itab_reclaim(t, rebuilds);
  AMP_CHECK_EQ(t->n_old, 0);
  fprintf(stderr, "remove churn: %d live, %d cycles, %" PRIu64 " rebuilds, at most %" PRIu64
          " slots\n", CHURN_LIVE, CHURN_CYCLES, rebuilds, max_slots);
  amp_itab_delete(t);
}

/* A table grown for many entries, drained: removals free nothing, and the
 * first rebuild that inserts then cause shrinks it to what is live. */
static void test_remove_shrink(uint64_t seed) {
  enum { N = 10000, KEEP = 10 };
  amp_test_obj_t *o = calloc(4 * N, sizeof *o);
  AMP_REQUIRE(o != NULL);
  for (size_t i = 0; i < 4 * N; i++) o[i] = (amp_test_obj_t){i + 1, amp_test_mix64(seed + i)};
  amp_itab_t *t;
  AMP_REQUIRE(amp_itab_new(&t, 0) == AMP_OK);
  unsigned long bad = 0;
  for (size_t i = 0; i < N; i++)
    bad += amp_itab_add_unique(t, o[i].hash, amp_test_obj_match, &o[i].key, &o[i]) != &o[i];
  uint64_t big = slots_(t), mark = amp_itab_retired(t);
  AMP_CHECK_EQ(big, 32768);
  for (size_t i = KEEP; i < N; i++) bad += amp_itab_remove(t, o[i].hash, &o[i], NULL, NULL) != 1;
  AMP_CHECK_EQ(slots_(t), big);
  AMP_CHECK_EQ(amp_itab_count(t), KEEP);
  check_insides_(t);
  /* insert a new key, remove it, until a rebuild (~11,000 times: 6,385 of
   * the inserts take an empty slot, the others a tombstone) */
  size_t j = N;
  while (amp_itab_retired(t) == mark && j < 4 * N) {
    bad += amp_itab_add_unique(t, o[j].hash, amp_test_obj_match, &o[j].key, &o[j]) != &o[j];
    bad += amp_itab_remove(t, o[j].hash, &o[j], NULL, NULL) != 1;
    j++;
  }
  AMP_CHECK_EQ(amp_itab_retired(t), mark + 1);
  AMP_CHECK_EQ(slots_(t), 64);
  AMP_CHECK_EQ(tombs_(t), 1); /* the last removal, after the rebuild */
  AMP_CHECK_EQ(amp_itab_count(t), KEEP);
  for (size_t i = 0; i < N; i++) {
    const void *want = i < KEEP ? &o[i] : NULL;
    bad += amp_itab_lookup(t, o[i].hash, amp_test_obj_match, &o[i].key) != want;
  }
  AMP_CHECK_EQ(bad, 0);
  amp_itab_delete(t);
  free(o);
}

/* ---- threads ----------------------------------------------------------- */

#define RACE_N 200000
#define WRITERS 2
#define READERS 2

typedef struct {
  amp_itab_t *t;
  amp_test_obj_t *o;                      /* RACE_N objects, two per key: writer w uses copy w */
  _Atomic size_t *published;     /* keys below this are in (both writers insert in order) */
  _Atomic int *writers_done;
  unsigned idx;
  unsigned long bad, misses_checked;
  void *winner[1];
} race_t;

static void *writer_(void *arg) {
  race_t *r = arg;
  for (size_t i = 0; i < RACE_N; i++) {
    amp_test_obj_t *mine = &r->o[2 * i + r->idx];
    void *got = amp_itab_add_unique(r->t, mine->hash, amp_test_obj_match, &mine->key, mine);
    /* one of the two copies wins, and both writers must agree on which */
    if (got != &r->o[2 * i] && got != &r->o[2 * i + 1]) r->bad++;
    /* publish: key i is in (monotonic max over both writers) */
    size_t p = atomic_load(r->published);
    while (p < i + 1 && !atomic_compare_exchange_weak(r->published, &p, i + 1)) {
    }
  }
  atomic_fetch_add(r->writers_done, 1);
  return NULL;
}

static void *reader_(void *arg) {
  race_t *r = arg;
  uint64_t rs = 0x9e3779b97f4a7c15ULL * (r->idx + 1);
  while (atomic_load(r->writers_done) < WRITERS) {
    size_t p = atomic_load(r->published);
    if (!p) continue;
    rs = amp_test_mix64(rs);
    size_t i = (size_t)(rs % p);
    const amp_test_obj_t *a = &r->o[2 * i];
    const void *got = amp_itab_lookup(r->t, a->hash, amp_test_obj_match, &a->key);
    if (got != &r->o[2 * i] && got != &r->o[2 * i + 1]) r->bad++;
    uint64_t never = a->key + 2 * RACE_N; /* same hash, never inserted */
    if (amp_itab_lookup(r->t, a->hash, amp_test_obj_match, &never)) r->bad++;
    r->misses_checked++;
  }
  return NULL;
}

static void test_race(uint64_t seed) {
  amp_test_obj_t *o = calloc(2 * RACE_N, sizeof *o);
  AMP_REQUIRE(o != NULL);
  for (size_t i = 0; i < RACE_N; i++) {
    o[2 * i].key = o[2 * i + 1].key = i + 1;
    o[2 * i].hash = o[2 * i + 1].hash = (i % 8 == 7) ? o[2 * i - 2].hash : amp_test_mix64(seed ^ i);
  }
  amp_itab_t *t;
  AMP_REQUIRE(amp_itab_new(&t, 0) == AMP_OK); /* grows ~12 times during the race */
  _Atomic size_t published = 0;
  _Atomic int done = 0;
  race_t r[WRITERS + READERS];
  pthread_t th[WRITERS + READERS];
  for (unsigned k = 0; k < WRITERS + READERS; k++) {
    r[k] = (race_t){t, o, &published, &done, k < WRITERS ? k : k - WRITERS, 0, 0, {NULL}};
    AMP_REQUIRE(pthread_create(&th[k], NULL, k < WRITERS ? writer_ : reader_, &r[k]) == 0);
  }
  for (unsigned k = 0; k < WRITERS + READERS; k++) pthread_join(th[k], NULL);
  unsigned long bad = 0, checked = 0;
  for (unsigned k = 0; k < WRITERS + READERS; k++) {
    bad += r[k].bad;
    checked += r[k].misses_checked;
  }
  AMP_CHECK_EQ(bad, 0);
  AMP_CHECK(checked > 0);
  AMP_CHECK_EQ(amp_itab_count(t), RACE_N);
  for (size_t i = 0; i < RACE_N; i++) {
    const void *got = amp_itab_lookup(t, o[2 * i].hash, amp_test_obj_match, &o[2 * i].key);
    bad += got != &o[2 * i] && got != &o[2 * i + 1];
  }
  AMP_CHECK_EQ(bad, 0);
  fprintf(stderr, "race: %d keys by %d writers, %lu lookups by %d readers during the inserts\n",
          RACE_N, WRITERS, checked, READERS);
  amp_itab_delete(t);
  free(o);
}

/* Writers insert new keys and remove them (objects malloc'd for each insert;
 * a key removed never comes back, so tombstones pile up and force rebuilds)
 * while readers look up stable keys, inserted before and never removed:
 * every lookup finds its object, through tombstone reuse and rebuilds. Half
 * the churn keys share a stable key's hash, so their tombstones sit in the
 * stable keys' probe paths. Readers also look up churn keys (NULL or the
 * object with that key, whose key they read), keys never inserted (NULL),
 * and walk the table (every stable entry seen once). Each writer frees the
 * objects it removed and reclaims the replaced tables after a grace period:
 * every reader has finished a batch of lookups since (ASan reports a use
 * after). */
#define CH_STABLE 256
#define CH_SLOTS 64                       /* per writer: each holds a key or none */
#define CH_OPS 60000                      /* inserts and removals per writer */
#define CH_PENDING 1024                   /* removed objects per grace period */

typedef struct {
  amp_itab_t *t;
  const amp_test_obj_t *stable;
  uint64_t seed;
  _Atomic uint64_t next[WRITERS];         /* keys each writer has used */
  _Atomic int writers_done;
  _Atomic uint64_t qs[READERS];           /* batches each reader finished */
} churn_t;

typedef struct {
  churn_t *c;
  unsigned idx;
  uint64_t seed;
  unsigned long bad, lookups, walks, grace;
  amp_test_obj_t *in[CH_SLOTS];           /* writer: the objects it has in */
} churn_thr_t;

/* writer w's n-th key and its hash (readers compute them too) */
static uint64_t ch_key_(unsigned w, uint64_t n) { return CH_STABLE + 1 + ((uint64_t)w << 40) + n; }

static uint64_t ch_hash_(const churn_t *c, uint64_t key) {
  return key % 2 ? c->stable[amp_test_mix64(key) % CH_STABLE].hash : amp_test_mix64(c->seed ^ key);
}

static void grace_(churn_t *c) {
  uint64_t seen[READERS];
  for (unsigned r = 0; r < READERS; r++) seen[r] = atomic_load(&c->qs[r]);
  for (unsigned r = 0; r < READERS; r++)
    while (atomic_load(&c->qs[r]) == seen[r]) sched_yield();
}

static void *churn_writer_(void *arg) {
  churn_thr_t *w = arg;
  churn_t *c = w->c;
  amp_test_obj_t *pending[CH_PENDING];
  size_t n_pending = 0;
  uint64_t rs = w->seed | 1;
  for (unsigned op = 0; op < CH_OPS; op++) {
    size_t i = (size_t)(amp_test_rand(&rs) % CH_SLOTS);
    amp_test_obj_t *x = w->in[i];
    if (x) {
      amp_test_obj_t other = *x; /* its key, not in */
      if (op % 7 == 0) w->bad += amp_itab_remove(c->t, other.hash, &other, NULL, NULL) != 0;
      pred_ctx_t p = {x, 1, 0, 0};
      w->bad += amp_itab_remove(c->t, x->hash, x, op & 1 ? pred_ : NULL, &p) != 1;
      w->bad += p.wrong;
      w->in[i] = NULL;
      pending[n_pending++] = x;
    } else {
      x = malloc(sizeof *x);
      if (!x) {
        w->bad++;
        break;
      }
      x->key = ch_key_(w->idx, atomic_load_explicit(&c->next[w->idx], memory_order_relaxed));
      x->hash = ch_hash_(c, x->key);
      w->bad += amp_itab_add_unique(c->t, x->hash, amp_test_obj_match, &x->key, x) != x;
      atomic_fetch_add(&c->next[w->idx], 1);
      w->in[i] = x;
    }
    if (n_pending == CH_PENDING || op + 1 == CH_OPS) {
      uint64_t mark = amp_itab_retired(c->t);
      grace_(c);
      w->grace++;
      for (size_t j = 0; j < n_pending; j++) free(pending[j]);
      n_pending = 0;
      amp_itab_reclaim(c->t, mark);
    }
  }
  atomic_fetch_add(&c->writers_done, 1);
  return NULL;
}

typedef struct {
  unsigned long stable, bad;
} churn_walk_t;

static int churn_walk_cb_(void *obj, void *ctx) {
  churn_walk_t *w = ctx;
  const amp_test_obj_t *x = obj;
  if (x->key <= CH_STABLE) w->stable++;
  else if (x->key >= ch_key_(WRITERS, 0)) w->bad++;
  return 0;
}

static void *churn_reader_(void *arg) {
  churn_thr_t *r = arg;
  churn_t *c = r->c;
  uint64_t rs = r->seed | 1;
  unsigned batch = 0;
  while (atomic_load(&c->writers_done) < WRITERS) {
    for (int i = 0; i < 64; i++) {
      uint64_t v = amp_test_rand(&rs);
      const amp_test_obj_t *s = &c->stable[(v >> 8) % CH_STABLE];
      r->bad += amp_itab_lookup(c->t, s->hash, amp_test_obj_match, &s->key) != s;
      unsigned w = (unsigned)((v >> 20) % WRITERS);
      uint64_t n = atomic_load(&c->next[w]), key = ch_key_(w, n ? (v >> 32) % n : 0);
      uint64_t h = ch_hash_(c, key);
      const amp_test_obj_t *x = amp_itab_lookup(c->t, h, amp_test_obj_match, &key);
      r->bad += x && x->key != key;
      uint64_t never = key | (uint64_t)1 << 63; /* same hash, never inserted */
      r->bad += amp_itab_lookup(c->t, h, amp_test_obj_match, &never) != NULL;
      r->lookups += 3;
    }
    if (++batch % 32 == 0) {
      churn_walk_t w = {0, 0};
      amp_itab_for_each(c->t, churn_walk_cb_, &w);
      r->bad += w.bad + (w.stable != CH_STABLE);
      r->walks++;
    }
    atomic_fetch_add(&c->qs[r->idx], 1);
  }
  return NULL;
}

static void test_churn_race(uint64_t seed) {
  amp_test_obj_t *stable = calloc(CH_STABLE, sizeof *stable);
  AMP_REQUIRE(stable != NULL);
  for (size_t i = 0; i < CH_STABLE; i++)
    stable[i] = (amp_test_obj_t){i + 1, i % 4 == 3 ? stable[i - 1].hash : amp_test_mix64(seed + i)};
  churn_t c = {.t = NULL, .stable = stable, .seed = seed};
  AMP_REQUIRE(amp_itab_new(&c.t, 0) == AMP_OK);
  unsigned long bad = 0;
  for (size_t i = 0; i < CH_STABLE; i++)
    bad += amp_itab_add_unique(c.t, stable[i].hash, amp_test_obj_match, &stable[i].key,
                               &stable[i]) != &stable[i];
  uint64_t mark0 = amp_itab_retired(c.t);
  churn_thr_t th[WRITERS + READERS];
  pthread_t pt[WRITERS + READERS];
  for (unsigned k = 0; k < WRITERS + READERS; k++) {
    th[k] = (churn_thr_t){.c = &c, .idx = k < WRITERS ? k : k - WRITERS,
                          .seed = amp_test_mix64(seed + 100 + k)};
    void *(*fn)(void *) = k < WRITERS ? churn_writer_ : churn_reader_;
    AMP_REQUIRE(pthread_create(&pt[k], NULL, fn, &th[k]) == 0);
  }
  for (unsigned k = 0; k < WRITERS + READERS; k++) pthread_join(pt[k], NULL);
  unsigned long lookups = 0, walks = 0, grace = 0;
  for (unsigned k = 0; k < WRITERS + READERS; k++) {
    bad += th[k].bad;
    lookups += th[k].lookups;
    walks += th[k].walks;
    grace += th[k].grace;
  }
  AMP_CHECK_EQ(bad, 0);
  AMP_CHECK(lookups > 0);
  /* the model: the stable keys, and what each writer has in; every key a
   * writer used is in or not as it says */
  uint64_t live = CH_STABLE;
  for (unsigned w = 0; w < WRITERS; w++) {
    uint64_t n = atomic_load(&c.next[w]), n_in = 0;
    for (size_t i = 0; i < CH_SLOTS; i++) n_in += th[w].in[i] != NULL;
    for (uint64_t j = 0; j < n; j++) {
      uint64_t key = ch_key_(w, j);
      const amp_test_obj_t *x = amp_itab_lookup(c.t, ch_hash_(&c, key), amp_test_obj_match, &key);
      if (!x) continue;
      size_t i = 0;
      while (i < CH_SLOTS && th[w].in[i] != x) i++;
      bad += i == CH_SLOTS;
      n_in--;
    }
    bad += n_in != 0;
    for (size_t i = 0; i < CH_SLOTS; i++) live += th[w].in[i] != NULL;
  }
  for (size_t i = 0; i < CH_STABLE; i++)
    bad += amp_itab_lookup(c.t, stable[i].hash, amp_test_obj_match, &stable[i].key) != &stable[i];
  AMP_CHECK_EQ(bad, 0);
  AMP_CHECK_EQ(amp_itab_count(c.t), live);
  size_t seen = 0;
  amp_itab_for_each(c.t, count_cb_, &seen);
  AMP_CHECK_EQ(seen, live);
  check_insides_(c.t);
  uint64_t rebuilds = amp_itab_retired(c.t) - mark0;
  AMP_CHECK(rebuilds >= 10); /* during the race: ~40 */
  fprintf(stderr, "churn race: %d stable keys, %d writers x %d inserts/removals, %" PRIu64
          " rebuilds, %lu grace periods; %lu lookups and %lu walks by %d readers\n",
          CH_STABLE, WRITERS, CH_OPS, rebuilds, grace, lookups, walks, READERS);
  for (unsigned w = 0; w < WRITERS; w++)
    for (size_t i = 0; i < CH_SLOTS; i++) free(th[w].in[i]);
  amp_itab_delete(c.t);
  free(stable);
}

int main(void) {
  uint64_t seed = amp_test_seed();
  test_bad_input();
  for (int s = 0; s < 3; s++) test_model(amp_test_mix64(seed + (uint64_t)s));
  test_remove_edges();
  test_add_if();
  for (int s = 0; s < 2; s++) test_remove_model(amp_test_mix64(seed + 10 + (uint64_t)s));
  test_remove_churn(amp_test_mix64(seed ^ 7));
  test_remove_shrink(amp_test_mix64(seed ^ 8));
  test_race(amp_test_mix64(seed ^ 5));
  test_churn_race(amp_test_mix64(seed ^ 6));
  return amp_test_done();
}
