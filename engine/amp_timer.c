/* amp_timer.c: single-level timer wheel (see amp_timer.h). */
#include "amp_timer.h"

#include <stdlib.h>

#define AMP_TIMER_SLOTS_LOG2 12

int amp_timer_wheel_init(amp_timer_wheel_t *w, uint64_t max_timeout_ms, uint64_t now_ms) {
  size_t n = (size_t)1 << AMP_TIMER_SLOTS_LOG2;
  w->slot = calloc(n, sizeof *w->slot);
  if (!w->slot) return AMP_ERR_NOMEM;
  w->mask = n - 1;
  w->tick_ms = (max_timeout_ms + n / 2 - 1) / (n / 2);
  if (w->tick_ms == 0) w->tick_ms = 1;
  w->cur_tick = now_ms / w->tick_ms;
  w->count = 0;
  return AMP_OK;
}

void amp_timer_wheel_fini(amp_timer_wheel_t *w) {
  free(w->slot);
  w->slot = NULL;
}

static void link_(amp_timer_node_t **head, amp_timer_node_t *n) {
  n->next = *head;
  if (n->next) n->next->pprev = &n->next;
  n->pprev = head;
  *head = n;
}

static void unlink_(amp_timer_node_t *n) {
  *n->pprev = n->next;
  if (n->next) n->next->pprev = n->pprev;
  n->next = NULL;
  n->pprev = NULL;
}

void amp_timer_add(amp_timer_wheel_t *w, amp_timer_node_t *n, uint64_t deadline_ms) {
  uint64_t t = (deadline_ms + w->tick_ms - 1) / w->tick_ms; /* first tick >= deadline */
  if (t <= w->cur_tick) t = w->cur_tick + 1;
  n->deadline_ms = deadline_ms;
  link_(&w->slot[t & w->mask], n);
  w->count++;
}

void amp_timer_del(amp_timer_wheel_t *w, amp_timer_node_t *n) {
  if (!n->pprev) return;
  unlink_(n);
  w->count--;
}

size_t amp_timer_expire(amp_timer_wheel_t *w, uint64_t now_ms,
                        void (*fn)(void *ctx, amp_timer_node_t *node), void *ctx,
                        size_t max) {
  uint64_t target = now_ms / w->tick_ms;
  size_t fired = 0;
  if (target <= w->cur_tick || w->count == 0) {
    if (target > w->cur_tick) w->cur_tick = target;
    return 0;
  }
  uint64_t span = target - w->cur_tick;
  if (span > w->mask + 1) span = w->mask + 1; /* every slot once is enough */
  for (uint64_t k = 1; k <= span; k++) {
    uint64_t t = target - span + k;
    amp_timer_node_t **head = &w->slot[t & w->mask];
    amp_timer_node_t *local = *head;
    *head = NULL;
    if (local) local->pprev = &local;
    while (local) {
      amp_timer_node_t *n = local;
      unlink_(n);
      if (n->deadline_ms <= now_ms) {
        w->count--;
        fn(ctx, n);
        fired++;
        if (max && fired >= max) {
          /* put the rest back and resume at this tick next time */
          while (local) {
            amp_timer_node_t *m = local;
            unlink_(m);
            link_(head, m);
          }
          w->cur_tick = t - 1;
          return fired;
        }
      } else {
        link_(head, n);
      }
    }
  }
  w->cur_tick = target;
  return fired;
}
