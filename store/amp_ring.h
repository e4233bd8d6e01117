/* amp_ring.h: a bounded lock-free single-producer single-consumer ring of
 * pointers (C11 atomics). Internal to store/: the writer's submission and
 * completion rings.
 *
 * Layout: the consumer's line (head and its cached copy of tail) and the
 * producer's line (tail and its cached copy of head) sit on separate cache
 * lines, so in the steady state each side reads the other's line only when its
 * cached copy says the ring looks full (producer) or empty (consumer).
 * Positions are free-running uint32 counters; slot = pos & mask.
 *
 * Memory order: the producer writes the slot, then publishes tail with a
 * release store; the consumer reads tail with acquire before reading the slot
 * (and the reverse for head), so an intent's fields written before push are
 * visible to whoever pops it.
 *
 * Thread safety: exactly one producer thread and one consumer thread per
 * ring, for the ring's lifetime (either may change over time if the hand-over
 * itself is synchronized). No input validation: the callers pass valid rings.
 * Cost: push/pop ~5-10 ns uncontended, one cache miss when the other side's
 * line must be read.
 */
#ifndef AMP_RING_H
#define AMP_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define AMP_RING_LINE 64

typedef struct {
  alignas(AMP_RING_LINE) _Atomic uint32_t head; /* consumer's position */
  uint32_t tail_cache;                          /* consumer's view of tail */
  alignas(AMP_RING_LINE) _Atomic uint32_t tail; /* producer's position */
  uint32_t head_cache;                          /* producer's view of head */
  alignas(AMP_RING_LINE) uint32_t mask;         /* read-only after init */
  void **slot;
} amp_ring_t;

/* amp_ring_init sets up r with size slots (a power of two, 2 .. 2^30).
 * Returns 0, or -1 when size is not a valid power of two or on no memory. */
static inline int amp_ring_init(amp_ring_t *r, uint32_t size) {
  if (size < 2 || size > (1u << 30) || (size & (size - 1))) return -1;
  r->slot = (void **)calloc(size, sizeof(void *));
  if (!r->slot) return -1;
  atomic_init(&r->head, 0);
  atomic_init(&r->tail, 0);
  r->tail_cache = 0;
  r->head_cache = 0;
  r->mask = size - 1;
  return 0;
}

/* amp_ring_fini frees the slots (not what they point to). */
static inline void amp_ring_fini(amp_ring_t *r) {
  free(r->slot);
  r->slot = NULL;
}

/* amp_ring_push (producer) appends p. Returns 1, or 0 if the ring is full. */
static inline int amp_ring_push(amp_ring_t *r, void *p) {
  uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
  if (t - r->head_cache > r->mask) {
    r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
    if (t - r->head_cache > r->mask) return 0;
  }
  r->slot[t & r->mask] = p;
  atomic_store_explicit(&r->tail, t + 1, memory_order_release);
  return 1;
}

/* amp_ring_pop_burst (consumer) takes up to max pointers into out in FIFO
 * order. Returns how many. */
static inline uint32_t amp_ring_pop_burst(amp_ring_t *r, void **out, uint32_t max) {
  uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
  uint32_t avail = r->tail_cache - h;
  if (avail < max) {
    r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
    avail = r->tail_cache - h;
  }
  uint32_t n = avail < max ? avail : max;
  for (uint32_t i = 0; i < n; i++) out[i] = r->slot[(h + i) & r->mask];
  if (n) atomic_store_explicit(&r->head, h + n, memory_order_release);
  return n;
}

/* amp_ring_free_slots (producer) returns how many pushes would succeed now. */
static inline uint32_t amp_ring_free_slots(amp_ring_t *r) {
  uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
  r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
  return r->mask + 1 - (t - r->head_cache);
}

/* amp_ring_empty_var (any thread) is a racy emptiness hint: 1 if it looked
 * empty at the moment of the loads. The writer uses it, with a fence, to
 * decide whether it may sleep. */
static inline int amp_ring_empty_var(amp_ring_t *r) {
  return atomic_load_explicit(&r->tail, memory_order_acquire) ==
         atomic_load_explicit(&r->head, memory_order_acquire);
}

#endif /* AMP_RING_H */
