/* test_itab.c: the insert-only table: bad input; inserts through several
 * doublings against a model, with colliding hashes (equal hashes for
 * different keys, crowded homes); for_each; inserters racing on the same keys
 * while readers look up keys whose insert completed before their lookup
 * began (never a miss, through growth) and keys never inserted (never a hit). */
#include <pthread.h>
#include <stdatomic.h>

#include "amp_itab.h"
#include "amp_test.h"



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

int main(void) {
  uint64_t seed = amp_test_seed();
  test_bad_input();
  for (int s = 0; s < 3; s++) test_model(amp_test_mix64(seed + (uint64_t)s));
  test_race(amp_test_mix64(seed ^ 5));
  return amp_test_done();
}
