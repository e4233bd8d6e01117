/* amp_timer.h: a single-level timer wheel for per-HTLC hold timers.
 *
 * One wheel per worker, touched only by its owner thread. Timers are intrusive
 * (amp_timer_node_t sits inside the object that owns it), so adding, removing
 * and firing a timer never allocates and costs O(1).
 *
 * The wheel has 2^k slots of tick_ms milliseconds each. A timer is put in the
 * slot of the first tick at or after its deadline and fires when the wheel
 * passes that tick: late by less than one tick, never early. A deadline
 * further away than one revolution stays in its slot until its tick comes
 * round (each pass checks the deadline), so any deadline is correct; choose
 * slots * tick_ms above the longest timeout to visit each timer once
 * (amp_timer_wheel_init does so for a given maximum timeout).
 *
 * Thread safety: none; a wheel belongs to one thread.
 */
#ifndef AMP_TIMER_H
#define AMP_TIMER_H

#include <stddef.h>
#include <stdint.h>

#include "amp_util.h"

typedef struct amp_timer_node {
  struct amp_timer_node *next;
  struct amp_timer_node **pprev; /* NULL when not linked */
  uint64_t deadline_ms;
} amp_timer_node_t;

typedef struct {
  amp_timer_node_t **slot;       /* 2^k list heads */
  uint64_t mask;
  uint64_t tick_ms;
  uint64_t cur_tick;             /* every tick <= cur_tick has been expired */
  uint64_t count;                /* linked timers */
} amp_timer_wheel_t;

/* amp_timer_wheel_init sets up a wheel able to hold timeouts up to
 * max_timeout_ms with one visit each: 4096 slots, tick = max(1,
 * ceil(max_timeout_ms / 2048)) ms. now_ms is the current time (ticks before
 * it are considered expired). Returns AMP_OK or AMP_ERR_NOMEM. */
AMP_WARN_UNUSED int amp_timer_wheel_init(amp_timer_wheel_t *w, uint64_t max_timeout_ms,
                                         uint64_t now_ms);

/* amp_timer_wheel_fini frees the slots (linked nodes are simply forgotten). */
void amp_timer_wheel_fini(amp_timer_wheel_t *w);

/* amp_timer_node_init marks a node as not linked. */
static inline void amp_timer_node_init(amp_timer_node_t *n) {
  n->next = NULL;
  n->pprev = NULL;
  n->deadline_ms = 0;
}

/* amp_timer_linked returns 1 if n is in a wheel. */
static inline int amp_timer_linked(const amp_timer_node_t *n) { return n->pprev != NULL; }

/* amp_timer_add links n (which must not be linked) to fire at deadline_ms. A
 * deadline already passed fires at the next amp_timer_expire. O(1). */
void amp_timer_add(amp_timer_wheel_t *w, amp_timer_node_t *n, uint64_t deadline_ms);

/* amp_timer_del unlinks n if it is linked (no-op otherwise). O(1). */
void amp_timer_del(amp_timer_wheel_t *w, amp_timer_node_t *n);

/* amp_timer_expire advances the wheel to now_ms and calls fn(ctx, node) for
 * each timer whose deadline is <= now_ms, in tick order; the node is unlinked
 * before fn runs (fn may add it again, or add or delete any other timer).
 * Stops early after max firings (0: no limit), leaving the rest for the next
 * call. Returns the number fired. Cost: O(ticks passed, capped at the slot
 * count) + O(timers fired). */
size_t amp_timer_expire(amp_timer_wheel_t *w, uint64_t now_ms,
                        void (*fn)(void *ctx, amp_timer_node_t *node), void *ctx,
                        size_t max);

#endif /* AMP_TIMER_H */
