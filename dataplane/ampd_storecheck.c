/* ampd_storecheck.c (ampd-storecheck): reads an ampd store and reports its
 * settle log; a test helper for the restart test (invariant 2 of DESIGN.md:
 * a set settles at most once, an HTLC is resolved at most once).
 *
 *   ampd-storecheck DATA_DIR
 *
 * Prints one line: "settled S cancelled C htlcs H dup_sets D dup_htlcs E".
 * Exit 0 when no set_id and no (scid, htlc id) appears twice among settled
 * sets, 1 when one does, 2 when the store cannot be read. Run it only while
 * no ampd uses the directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp_store.h"

typedef struct {
  uint8_t set_id[32];
} set_key_t;

typedef struct {
  uint64_t scid, htlc_id;
} htlc_key_t;

typedef struct {
  set_key_t *sets;
  size_t n_sets, cap_sets;
  htlc_key_t *htlcs;
  size_t n_htlcs, cap_htlcs;
  uint64_t cancelled;
  int oom;
} acc_t;

static int on_set(void *ctx, const amp_store_set_t *s) {
  acc_t *a = ctx;
  if (s->cancelled) {
    a->cancelled++;
    return 0;
  }
  if (a->n_sets == a->cap_sets) {
    a->cap_sets = a->cap_sets ? 2 * a->cap_sets : 1024;
    set_key_t *p = realloc(a->sets, a->cap_sets * sizeof *p);
    if (!p) { a->oom = 1; return 1; }
    a->sets = p;
  }
  memcpy(a->sets[a->n_sets++].set_id, s->set_id, 32);
  for (uint32_t i = 0; i < s->n_htlcs; i++) {
    if (a->n_htlcs == a->cap_htlcs) {
      a->cap_htlcs = a->cap_htlcs ? 2 * a->cap_htlcs : 4096;
      htlc_key_t *p = realloc(a->htlcs, a->cap_htlcs * sizeof *p);
      if (!p) { a->oom = 1; return 1; }
      a->htlcs = p;
    }
    a->htlcs[a->n_htlcs].scid = s->htlcs[i].scid;
    a->htlcs[a->n_htlcs].htlc_id = s->htlcs[i].htlc_id;
    a->n_htlcs++;
  }
  return 0;
}

static int cmp_set(const void *x, const void *y) { return memcmp(x, y, 32); }

static int cmp_htlc(const void *x, const void *y) {
  const htlc_key_t *a = x, *b = y;
  if (a->scid != b->scid) return a->scid < b->scid ? -1 : 1;
  if (a->htlc_id != b->htlc_id) return a->htlc_id < b->htlc_id ? -1 : 1;
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: ampd-storecheck DATA_DIR\n");
    return 2;
  }
  amp_store_cfg_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.dir = argv[1];
  cfg.producers = 1;
  cfg.sync = AMP_STORE_SYNC_NONE;
  amp_store_t *st;
  int rc = amp_store_open(&st, &cfg);
  if (rc != AMP_OK) {
    fprintf(stderr, "ampd-storecheck: %s: %s\n", argv[1], amp_strerror(rc));
    return 2;
  }
  acc_t a;
  memset(&a, 0, sizeof a);
  rc = amp_store_set_foreach(st, 1, on_set, &a);
  amp_store_close(st);
  if (rc != AMP_OK || a.oom) {
    fprintf(stderr, "ampd-storecheck: reading the settle log: %s\n",
            a.oom ? "out of memory" : amp_strerror(rc));
    return 2;
  }
  qsort(a.sets, a.n_sets, sizeof *a.sets, cmp_set);
  qsort(a.htlcs, a.n_htlcs, sizeof *a.htlcs, cmp_htlc);
  size_t dup_sets = 0, dup_htlcs = 0;
  for (size_t i = 1; i < a.n_sets; i++) dup_sets += cmp_set(&a.sets[i - 1], &a.sets[i]) == 0;
  for (size_t i = 1; i < a.n_htlcs; i++) dup_htlcs += cmp_htlc(&a.htlcs[i - 1], &a.htlcs[i]) == 0;
  printf("settled %zu cancelled %llu htlcs %zu dup_sets %zu dup_htlcs %zu\n", a.n_sets,
         (unsigned long long)a.cancelled, a.n_htlcs, dup_sets, dup_htlcs);
  free(a.sets);
  free(a.htlcs);
  return dup_sets || dup_htlcs ? 1 : 0;
}
