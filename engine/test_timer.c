/* test_timer.c: the timer wheel: order, lateness bound, deletion, far
 * deadlines, bounded firing, randomized against a reference. */
#include "amp_test.h"
#include "amp_timer.h"

typedef struct {
  amp_timer_node_t n;
  uint64_t deadline;
  uint64_t fired_at;
  int fired;
} tm_t;

static uint64_t g_now;
static void on_fire(void *ctx, amp_timer_node_t *node) {
  (void)ctx;
  tm_t *t = (tm_t *)(void *)node;
  t->fired++;
  t->fired_at = g_now;
}

int main(void) {
  amp_timer_wheel_t w;
  int rc = amp_timer_wheel_init(&w, 1000, 0); /* AMP_REQUIRE evaluates twice */
  AMP_REQUIRE(rc == AMP_OK);
  AMP_CHECK_EQ(w.tick_ms, 1);
  tm_t a, b, c;
  amp_timer_node_init(&a.n);
  amp_timer_node_init(&b.n);
  amp_timer_node_init(&c.n);
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  memset(&c, 0, sizeof c);
  amp_timer_add(&w, &a.n, 10);
  amp_timer_add(&w, &b.n, 20);
  amp_timer_add(&w, &c.n, 10000); /* beyond one revolution (4096 ms) */
  AMP_CHECK(amp_timer_linked(&a.n));
  g_now = 9;
  AMP_CHECK_EQ(amp_timer_expire(&w, g_now, on_fire, NULL, 0), 0);
  g_now = 10;
  AMP_CHECK_EQ(amp_timer_expire(&w, g_now, on_fire, NULL, 0), 1);
  AMP_CHECK_EQ(a.fired, 1);
  AMP_CHECK(!amp_timer_linked(&a.n));
  amp_timer_del(&w, &b.n);
  AMP_CHECK(!amp_timer_linked(&b.n));
  amp_timer_del(&w, &b.n); /* no-op */
  g_now = 5000;
  AMP_CHECK_EQ(amp_timer_expire(&w, g_now, on_fire, NULL, 0), 0);
  AMP_CHECK_EQ(b.fired, 0);
  g_now = 9999;
  AMP_CHECK_EQ(amp_timer_expire(&w, g_now, on_fire, NULL, 0), 0);
  g_now = 10000;
  AMP_CHECK_EQ(amp_timer_expire(&w, g_now, on_fire, NULL, 0), 1);
  AMP_CHECK_EQ(c.fired, 1);
  AMP_CHECK_EQ(w.count, 0);
  /* a deadline already passed fires at the next expire */
  amp_timer_add(&w, &a.n, 1);
  g_now = 10001;
  AMP_CHECK_EQ(amp_timer_expire(&w, g_now, on_fire, NULL, 0), 1);
  AMP_CHECK_EQ(a.fired, 2);
  amp_timer_wheel_fini(&w);

  /* coarse ticks: 120 s timeout -> 59 ms ticks; never early, late < 1 tick */
  rc = amp_timer_wheel_init(&w, 120000, 1000);
  AMP_REQUIRE(rc == AMP_OK);
  AMP_CHECK(w.tick_ms >= 58 && w.tick_ms <= 59);
  uint64_t seed = amp_test_seed();
  enum { N = 20000 };
  static tm_t t[N];
  g_now = 1000;
  for (int i = 0; i < N; i++) {
    amp_timer_node_init(&t[i].n);
    t[i].deadline = g_now + amp_test_rand(&seed) % 300000;
    amp_timer_add(&w, &t[i].n, t[i].deadline);
  }
  /* delete a third */
  for (int i = 0; i < N; i += 3) amp_timer_del(&w, &t[i].n);
  size_t fired = 0;
  while (g_now < 1000 + 400000) {
    g_now += 1 + amp_test_rand(&seed) % 200;
    fired += amp_timer_expire(&w, g_now, on_fire, NULL, 7); /* bounded batches */
    fired += amp_timer_expire(&w, g_now, on_fire, NULL, 0);
  }
  int early = 0, late = 0, wrong = 0;
  for (int i = 0; i < N; i++) {
    if (i % 3 == 0) {
      if (t[i].fired) wrong++;
      continue;
    }
    if (t[i].fired != 1) { wrong++; continue; }
    if (t[i].fired_at < t[i].deadline) early++;
    if (t[i].fired_at > t[i].deadline + w.tick_ms + 200) late++;
  }
  AMP_CHECK_EQ(wrong, 0);
  AMP_CHECK_EQ(early, 0);
  AMP_CHECK_EQ(late, 0);
  AMP_CHECK_EQ(fired, N - (N + 2) / 3);
  AMP_CHECK_EQ(w.count, 0);
  amp_timer_wheel_fini(&w);
  return amp_test_done();
}
