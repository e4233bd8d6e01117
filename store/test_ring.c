/* test_ring.c: the SPSC ring: bounds, FIFO order, and two threads moving
 * millions of pointers through a small ring without loss, duplication or
 * reordering. */
#include <pthread.h>

#include "amp_ring.h"
#include "amp_test.h"

#define N_ITEMS 2000000u

static amp_ring_t ring;

static void *producer(void *arg) {
  (void)arg;
  for (uintptr_t i = 1; i <= N_ITEMS;)
    if (amp_ring_push(&ring, (void *)i)) i++;
  return NULL;
}

int main(void) {
  AMP_CHECK(amp_ring_init(&ring, 0) != 0);
  AMP_CHECK(amp_ring_init(&ring, 3) != 0);
  AMP_CHECK(amp_ring_init(&ring, 1) != 0);

  /* single thread: fill, full, drain in order, wrap around many times */
  int irc = amp_ring_init(&ring, 8);
  AMP_REQUIRE(irc == 0);
  void *out[16];
  uintptr_t next_in = 1, next_out = 1;
  for (int round = 0; round < 1000; round++) {
    unsigned want = (unsigned)(round % 9);
    for (unsigned i = 0; i < want; i++) AMP_CHECK(amp_ring_push(&ring, (void *)next_in++));
    if (want == 8) AMP_CHECK(!amp_ring_push(&ring, (void *)1));
    AMP_CHECK_EQ(amp_ring_free_slots(&ring), 8 - want);
    uint32_t got = amp_ring_pop_burst(&ring, out, 16);
    AMP_CHECK_EQ(got, want);
    for (uint32_t i = 0; i < got; i++) AMP_CHECK_EQ((uintptr_t)out[i], next_out++);
    AMP_CHECK(amp_ring_empty_var(&ring));
  }
  amp_ring_fini(&ring);

  /* two threads */
  irc = amp_ring_init(&ring, 64);
  AMP_REQUIRE(irc == 0);
  pthread_t th;
  int prc = pthread_create(&th, NULL, producer, NULL);
  AMP_REQUIRE(prc == 0);
  uintptr_t expect = 1;
  unsigned long bad = 0;
  while (expect <= N_ITEMS) {
    uint32_t got = amp_ring_pop_burst(&ring, out, 1 + (uint32_t)(expect % 16));
    for (uint32_t i = 0; i < got; i++)
      if ((uintptr_t)out[i] != expect++) bad++;
  }
  pthread_join(th, NULL);
  AMP_CHECK_EQ(bad, 0);
  AMP_CHECK(amp_ring_empty_var(&ring));
  amp_ring_fini(&ring);
  return amp_test_done();
}
