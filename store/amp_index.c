/* amp_index.c: in-memory indexes and counting Bloom filters of the store.
 * See amp_index.h for the design and the thread rules. */
#include "amp_index.h"

#include <stdlib.h>
#include <string.h>

/* The tables and filters are large and probed at random: they live in
 * amp_big_alloc memory (amp_util.h: their own mappings, transparent huge
 * pages where the kernel allows them, faulted in when allocated, so resident
 * from open: ~90 MiB at the default sizing). Sizes are recomputed by the
 * owners for amp_big_free. The entry array grows by mremap (amp_big_grow)
 * and is faulted as it fills. */

/* --- counting blocked Bloom filter ------------------------------------------ */

#define CBF_K 6
#define CBF_PER_ENTRY 12 /* counters per expected entry */

int amp_cbf_init(amp_cbf_t *f, uint64_t entries) {
  if (entries < 1) entries = 1;
  uint64_t counters = entries * CBF_PER_ENTRY;
  f->nblocks = (counters + 127) / 128;
  f->w = amp_big_alloc((size_t)f->nblocks * 64); /* zeroed, page aligned */
  if (!f->w) return AMP_ERR_NOMEM;
  return AMP_OK;
}

void amp_cbf_fini(amp_cbf_t *f) {
  if (f->w) amp_big_free((void *)f->w, (size_t)f->nblocks * 64);
  f->w = NULL;
}

static inline _Atomic uint64_t *cbf_block(const amp_cbf_t *f, uint64_t h) {
  uint64_t b = (uint64_t)(((unsigned __int128)h * f->nblocks) >> 64);
  return f->w + b * 8;
}

void amp_cbf_add(amp_cbf_t *f, uint64_t h) {
  _Atomic uint64_t *blk = cbf_block(f, h);
  for (int i = 0; i < CBF_K; i++) {
    unsigned p = (unsigned)(h >> (7 * i)) & 127;
    _Atomic uint64_t *wp = &blk[p >> 4];
    unsigned sh = (p & 15) * 4;
    uint64_t w = atomic_load_explicit(wp, memory_order_relaxed);
    if (((w >> sh) & 15) != 15) atomic_store_explicit(wp, w + (1ull << sh), memory_order_release);
  }
}

void amp_cbf_del(amp_cbf_t *f, uint64_t h) {
  _Atomic uint64_t *blk = cbf_block(f, h);
  for (int i = 0; i < CBF_K; i++) {
    unsigned p = (unsigned)(h >> (7 * i)) & 127;
    _Atomic uint64_t *wp = &blk[p >> 4];
    unsigned sh = (p & 15) * 4;
    uint64_t w = atomic_load_explicit(wp, memory_order_relaxed);
    uint64_t c = (w >> sh) & 15;
    if (c != 15 && c != 0) atomic_store_explicit(wp, w - (1ull << sh), memory_order_release);
  }
}

static inline void cbf_prefetch(const amp_cbf_t *f, uint64_t h) {
  __builtin_prefetch((const void *)cbf_block(f, h), 1, 3);
}

int amp_cbf_maybe(const amp_cbf_t *f, uint64_t h) {
  _Atomic uint64_t *blk = cbf_block(f, h);
  for (int i = 0; i < CBF_K; i++) {
    unsigned p = (unsigned)(h >> (7 * i)) & 127;
    uint64_t w = atomic_load_explicit(&blk[p >> 4], memory_order_acquire);
    if (((w >> ((p & 15) * 4)) & 15) == 0) return 0;
  }
  return 1;
}

/* --- HTLC index ---------------------------------------------------------------- */

#define HENT_RES 1
#define HENT_RPL 2
#define HENT_PEND 4
_Static_assert(sizeof(amp_hent_t) == 72, "amp_hent_t layout");

static void rwlock_init_writer_pref(pthread_rwlock_t *l) {
  pthread_rwlockattr_t a;
  pthread_rwlockattr_init(&a);
  pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(l, &a);
  pthread_rwlockattr_destroy(&a);
}

uint64_t amp_hidx_res_hash(const amp_hidx_t *ix, uint64_t scid, uint64_t htlc_id) {
  uint64_t w[2] = {scid, htlc_id};
  return amp_siphash_words(&ix->key, w, 2);
}

uint64_t amp_hidx_rpl_hash(const amp_hidx_t *ix, uint32_t cltv, const uint8_t tag[16]) {
  uint64_t w[3] = {cltv, amp_siphash_load64(tag), amp_siphash_load64(tag + 8)};
  return amp_siphash_words(&ix->key, w, 3);
}

#define HIDX_MIN_SLOTS 1024u

static amp_cbf_t *cbf_new(uint64_t entries) {
  amp_cbf_t *f = malloc(sizeof *f);
  if (f && amp_cbf_init(f, entries) != AMP_OK) {
    free(f);
    f = NULL;
  }
  return f;
}

static void cbf_free(amp_cbf_t *f) {
  if (!f) return;
  amp_cbf_fini(f);
  free(f);
}

static inline amp_cbf_t *res_filter(const amp_hidx_t *ix) {
  return atomic_load_explicit(&((amp_hidx_t *)ix)->res_f, memory_order_acquire);
}
static inline amp_cbf_t *rpl_filter(const amp_hidx_t *ix) {
  return atomic_load_explicit(&((amp_hidx_t *)ix)->rpl_f, memory_order_acquire);
}

int amp_hidx_init(amp_hidx_t *ix, const amp_sipkey_t *key, uint64_t filter_entries) {
  memset(ix, 0, sizeof *ix);
  ix->key = *key;
  uint64_t slots = HIDX_MIN_SLOTS;
  while (slots < 2 * filter_entries && slots < (1ull << 31)) slots *= 2;
  ix->res_slot = amp_big_alloc(slots * sizeof(uint64_t));
  ix->rpl_slot = amp_big_alloc(slots * sizeof(uint64_t));
  ix->res_mask = ix->rpl_mask = (uint32_t)(slots - 1);
  if (!ix->res_slot || !ix->rpl_slot) goto nomem;
  amp_cbf_t *rf = cbf_new(filter_entries), *pf = cbf_new(filter_entries);
  if (!rf || !pf) {
    cbf_free(rf);
    cbf_free(pf);
    goto nomem;
  }
  atomic_init(&ix->res_f, rf);
  atomic_init(&ix->rpl_f, pf);
  ix->res_cap = ix->rpl_cap = filter_entries < 1 ? 1 : filter_entries;
  rwlock_init_writer_pref(&ix->lock);
  return AMP_OK;
nomem:
  amp_big_free(ix->res_slot, slots * sizeof(uint64_t));
  amp_big_free(ix->rpl_slot, slots * sizeof(uint64_t));
  memset(ix, 0, sizeof *ix);
  return AMP_ERR_NOMEM;
}

void amp_hidx_fini(amp_hidx_t *ix) {
  if (!ix->res_slot) return;
  pthread_rwlock_destroy(&ix->lock);
  amp_big_free(ix->ent, (size_t)ix->cap_ent * sizeof(amp_hent_t));
  amp_big_free(ix->res_slot, ((size_t)ix->res_mask + 1) * sizeof(uint64_t));
  amp_big_free(ix->rpl_slot, ((size_t)ix->rpl_mask + 1) * sizeof(uint64_t));
  free(ix->bk);
  free(ix->pend);
  cbf_free(atomic_load(&ix->res_f));
  cbf_free(atomic_load(&ix->rpl_f));
  for (uint32_t i = 0; i < ix->n_retired; i++) cbf_free(ix->retired[i]);
  free(ix->retired);
  memset(ix, 0, sizeof *ix);
}

static inline amp_hent_t *hent(const amp_hidx_t *ix, uint32_t id) { return &ix->ent[id - 1]; }
static void filter_grow(amp_hidx_t *ix, int kind);

/* The keys' hashes, kept in the entry: nothing is hashed twice. */
static inline uint64_t ent_res_hash(const amp_hidx_t *ix, const amp_hent_t *e) {
  (void)ix;
  return e->hres;
}
static inline uint64_t ent_rpl_hash(const amp_hidx_t *ix, const amp_hent_t *e) {
  (void)ix;
  return e->hrpl;
}

/* A slot: the entry id (low 32 bits, never 0 when used) and the high 32
 * bits of the key's hash, so a probe passes over other keys without reading
 * their entries (one cache miss saved per occupied slot on the way). The low
 * bits (the home) are in the entry. */
#define SLOT_ID(v) ((uint32_t)(v))
#define SLOT_TAG(v) ((uint32_t)((v) >> 32))
#define MK_SLOT(h, id) (((h) & 0xffffffff00000000ull) | (uint64_t)(id))

/* Probe for a key; returns the slot position holding it, or -1. */
static long res_probe(const amp_hidx_t *ix, uint64_t h, uint64_t scid, uint64_t htlc_id) {
  uint32_t tag = (uint32_t)(h >> 32);
  for (uint32_t i = (uint32_t)h & ix->res_mask;; i = (i + 1) & ix->res_mask) {
    uint64_t v = ix->res_slot[i];
    if (!v) return -1;
    if (SLOT_TAG(v) != tag) continue;
    const amp_hent_t *e = hent(ix, SLOT_ID(v));
    if (e->scid == scid && e->htlc_id == htlc_id) return (long)i;
  }
}

static long rpl_probe(const amp_hidx_t *ix, uint64_t h, uint32_t cltv, const uint8_t tag[16]) {
  uint32_t t = (uint32_t)(h >> 32);
  for (uint32_t i = (uint32_t)h & ix->rpl_mask;; i = (i + 1) & ix->rpl_mask) {
    uint64_t v = ix->rpl_slot[i];
    if (!v) return -1;
    if (SLOT_TAG(v) != t) continue;
    const amp_hent_t *e = hent(ix, SLOT_ID(v));
    if (e->cltv == cltv && memcmp(e->tag, tag, 16) == 0) return (long)i;
  }
}

/* Table kind: 0 resolutions, 1 replay. The home (low hash bits) of a slot. */
static uint32_t tab_home(const amp_hidx_t *ix, int kind, uint64_t v) {
  const amp_hent_t *e = hent(ix, SLOT_ID(v));
  return (uint32_t)(kind ? e->hrpl : e->hres);
}

static void tab_place(uint64_t *slot, uint32_t mask, uint32_t home, uint64_t v) {
  uint32_t i = home & mask;
  while (slot[i]) i = (i + 1) & mask;
  slot[i] = v;
}

/* Grow a table to hold one more key at load <= 1/2. */
static int tab_reserve(amp_hidx_t *ix, int kind) {
  uint64_t **slotp = kind ? &ix->rpl_slot : &ix->res_slot;
  uint32_t *maskp = kind ? &ix->rpl_mask : &ix->res_mask;
  uint32_t count = kind ? ix->rpl_count : ix->res_count;
  uint64_t size = (uint64_t)*maskp + 1;
  if ((uint64_t)(count + 1) * 2 <= size) return AMP_OK;
  if (size >= (1ull << 31)) return AMP_ERR_NOMEM;
  uint64_t nsize = size * 2;
  uint64_t *ns = amp_big_alloc(nsize * sizeof(uint64_t));
  if (!ns) return AMP_ERR_NOMEM;
  ix->table_grows++;
  /* From the entries, in order (a sequential read) rather than through the
   * old slots (a random read per key): one cache miss per key, not two. */
  uint8_t role = kind ? HENT_RPL : HENT_RES;
  for (uint32_t id = 1; id <= ix->n_ent; id++) {
    const amp_hent_t *e = hent(ix, id);
    if (!(e->flags & role)) continue;
    uint64_t h = kind ? e->hrpl : e->hres;
    tab_place(ns, (uint32_t)(nsize - 1), (uint32_t)h, MK_SLOT(h, id));
  }
  amp_big_free(*slotp, size * sizeof(uint64_t));
  *slotp = ns;
  *maskp = (uint32_t)(nsize - 1);
  return AMP_OK;
}

/* Backward-shift deletion for linear probing: no tombstones. */
static void tab_delete_at(amp_hidx_t *ix, int kind, uint32_t i) {
  uint64_t *slot = kind ? ix->rpl_slot : ix->res_slot;
  uint32_t mask = kind ? ix->rpl_mask : ix->res_mask;
  slot[i] = 0;
  for (uint32_t j = (i + 1) & mask; slot[j]; j = (j + 1) & mask) {
    uint32_t home = tab_home(ix, kind, slot[j]) & mask;
    /* slot[j] may move to i if its home is not in the cyclic range (i, j]. */
    int in_range = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
    if (!in_range) {
      slot[i] = slot[j];
      slot[j] = 0;
      i = j;
    }
  }
}

static void ent_drop_res(amp_hidx_t *ix, uint32_t id) {
  amp_hent_t *e = hent(ix, id);
  uint64_t h = ent_res_hash(ix, e);
  long pos = res_probe(ix, h, e->scid, e->htlc_id);
  if (pos >= 0 && SLOT_ID(ix->res_slot[pos]) == id) {
    tab_delete_at(ix, 0, (uint32_t)pos);
    ix->res_count--;
  }
  amp_cbf_del(res_filter(ix), h);
  e->flags &= (uint8_t)~HENT_RES;
}

static void ent_drop_rpl(amp_hidx_t *ix, uint32_t id) {
  amp_hent_t *e = hent(ix, id);
  uint64_t h = ent_rpl_hash(ix, e);
  long pos = rpl_probe(ix, h, e->cltv, e->tag);
  if (pos >= 0 && SLOT_ID(ix->rpl_slot[pos]) == id) {
    tab_delete_at(ix, 1, (uint32_t)pos);
    ix->rpl_count--;
  }
  amp_cbf_del(rpl_filter(ix), h);
  e->flags &= (uint8_t)~HENT_RPL;
}

static void ent_free(amp_hidx_t *ix, uint32_t id) {
  amp_hent_t *e = hent(ix, id);
  e->flags = 0;
  e->next = ix->free_head;
  ix->free_head = id;
  ix->live--;
}

/* Bucket of keep height cltv: its position, or where it would go (*found = 0). */
static uint32_t bk_search(const amp_hidx_t *ix, uint32_t cltv, int *found) {
  uint32_t lo = 0, hi = ix->n_bk;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (ix->bk[mid].cltv < cltv) lo = mid + 1;
    else hi = mid;
  }
  *found = lo < ix->n_bk && ix->bk[lo].cltv == cltv;
  return lo;
}

static int grow(void **p, uint32_t *cap, uint32_t need, size_t elem) {
  if (need <= *cap) return AMP_OK;
  uint64_t ncap = *cap ? (uint64_t)*cap * 2 : 64;
  while (ncap < need) ncap *= 2;
  if (ncap > 0xffffffffull) return AMP_ERR_NOMEM;
  void *np = realloc(*p, (size_t)ncap * elem);
  if (!np) return AMP_ERR_NOMEM;
  *p = np;
  *cap = (uint32_t)ncap;
  return AMP_OK;
}

void amp_hidx_prefetch(const amp_hidx_t *ix, uint64_t scid, uint64_t htlc_id, uint32_t cltv,
                       const uint8_t *tag) {
  uint64_t hres = amp_hidx_res_hash(ix, scid, htlc_id);
  __builtin_prefetch(&ix->res_slot[(uint32_t)hres & ix->res_mask], 1, 3);
  cbf_prefetch(res_filter(ix), hres);
  if (tag) {
    uint64_t hrpl = amp_hidx_rpl_hash(ix, cltv, tag);
    __builtin_prefetch(&ix->rpl_slot[(uint32_t)hrpl & ix->rpl_mask], 1, 3);
    cbf_prefetch(rpl_filter(ix), hrpl);
  }
}

uint64_t amp_hidx_prefetch_res(const amp_hidx_t *ix, uint64_t scid, uint64_t htlc_id) {
  uint64_t h = amp_hidx_res_hash(ix, scid, htlc_id);
  __builtin_prefetch((const void *)cbf_block(res_filter(ix), h), 0, 3);
  return h;
}

uint64_t amp_hidx_prefetch_rpl(const amp_hidx_t *ix, uint32_t cltv, const uint8_t tag[16]) {
  uint64_t h = amp_hidx_rpl_hash(ix, cltv, tag);
  __builtin_prefetch((const void *)cbf_block(rpl_filter(ix), h), 0, 3);
  return h;
}

/* Room for one more entry: the entry array doubles in place (mremap). */
static int ent_reserve(amp_hidx_t *ix) {
  if (ix->n_ent < ix->cap_ent) return AMP_OK;
  uint64_t ncap = ix->cap_ent ? 2ull * ix->cap_ent : 1024;
  if (ncap > 0xfffffff0ull) return AMP_ERR_NOMEM;
  void *p = amp_big_grow(ix->ent, (size_t)ix->cap_ent * sizeof(amp_hent_t),
                     (size_t)ncap * sizeof(amp_hent_t));
  if (!p) return AMP_ERR_NOMEM;
  ix->ent = p;
  ix->cap_ent = (uint32_t)ncap;
  return AMP_OK;
}

int amp_hidx_check(amp_hidx_t *ix, uint64_t scid, uint64_t htlc_id) {
  /* The writer is the only mutator, so it reads without the lock. */
  uint64_t h = amp_hidx_res_hash(ix, scid, htlc_id);
  return res_probe(ix, h, scid, htlc_id) >= 0 ? AMP_ERR_EXISTS : AMP_OK;
}

int amp_hidx_add(amp_hidx_t *ix, uint64_t scid, uint64_t htlc_id, uint32_t cltv, uint32_t keep,
                 const uint8_t *tag, uint64_t loc, int pending) {
  if (keep > cltv) keep = cltv;
  uint64_t hres = amp_hidx_res_hash(ix, scid, htlc_id);
  uint64_t hrpl = tag ? amp_hidx_rpl_hash(ix, cltv, tag) : 0;
  int want_res = keep >= ix->res_floor && res_probe(ix, hres, scid, htlc_id) < 0;
  int want_rpl = tag && keep >= ix->rpl_floor && rpl_probe(ix, hrpl, cltv, tag) < 0;
  if (!want_res && !want_rpl) return AMP_OK;

  int rc = AMP_OK;
  pthread_rwlock_wrlock(&ix->lock);
  int found;
  uint32_t b = bk_search(ix, keep, &found);
  if ((!ix->free_head && (rc = ent_reserve(ix)) != AMP_OK) ||
      (want_res && (rc = tab_reserve(ix, 0)) != AMP_OK) ||
      (want_rpl && (rc = tab_reserve(ix, 1)) != AMP_OK) ||
      (!found && (rc = grow((void **)&ix->bk, &ix->cap_bk, ix->n_bk + 1,
                            sizeof(amp_hbucket_t))) != AMP_OK) ||
      (pending && (rc = grow((void **)&ix->pend, &ix->cap_pend, ix->n_pend + 1,
                             sizeof(uint32_t))) != AMP_OK))
    goto out;

  uint32_t id;
  if (ix->free_head) {
    id = ix->free_head;
    ix->free_head = hent(ix, id)->next;
  } else {
    id = ++ix->n_ent;
  }
  ix->live++;
  amp_hent_t *e = hent(ix, id);
  e->scid = scid;
  e->htlc_id = htlc_id;
  e->loc = loc;
  if (tag) memcpy(e->tag, tag, 16);
  else memset(e->tag, 0, 16);
  e->cltv = cltv;
  e->keep = keep;
  e->hres = hres;
  e->hrpl = hrpl;
  e->flags = (uint8_t)((want_res ? HENT_RES : 0) | (want_rpl ? HENT_RPL : 0) |
                       (pending ? HENT_PEND : 0));
  if (want_res) {
    tab_place(ix->res_slot, ix->res_mask, (uint32_t)hres, MK_SLOT(hres, id));
    ix->res_count++;
    amp_cbf_add(res_filter(ix), hres);
  }
  if (want_rpl) {
    tab_place(ix->rpl_slot, ix->rpl_mask, (uint32_t)hrpl, MK_SLOT(hrpl, id));
    ix->rpl_count++;
    amp_cbf_add(rpl_filter(ix), hrpl);
  }
  if (!found) {
    memmove(&ix->bk[b + 1], &ix->bk[b], (ix->n_bk - b) * sizeof(amp_hbucket_t));
    ix->bk[b] = (amp_hbucket_t){.cltv = keep, .head = 0, .count = 0, .rpl_done = 0};
    ix->n_bk++;
  }
  e->next = ix->bk[b].head;
  ix->bk[b].head = id;
  ix->bk[b].count++;
  if (pending) ix->pend[ix->n_pend++] = id;
  if (2 * (uint64_t)ix->res_count > 3 * ix->res_cap) filter_grow(ix, 0);
  if (2 * (uint64_t)ix->rpl_count > 3 * ix->rpl_cap) filter_grow(ix, 1);
out:
  pthread_rwlock_unlock(&ix->lock);
  return rc;
}

void amp_hidx_commit(amp_hidx_t *ix) {
  if (!ix->n_pend) return;
  pthread_rwlock_wrlock(&ix->lock);
  for (uint32_t i = 0; i < ix->n_pend; i++) hent(ix, ix->pend[i])->flags &= (uint8_t)~HENT_PEND;
  ix->n_pend = 0;
  pthread_rwlock_unlock(&ix->lock);
}

void amp_hidx_rollback(amp_hidx_t *ix) {
  if (!ix->n_pend) return;
  pthread_rwlock_wrlock(&ix->lock);
  while (ix->n_pend) {
    uint32_t id = ix->pend[--ix->n_pend];
    amp_hent_t *e = hent(ix, id);
    if (e->flags & HENT_RES) ent_drop_res(ix, id);
    if (e->flags & HENT_RPL) ent_drop_rpl(ix, id);
    int found;
    uint32_t b = bk_search(ix, e->keep, &found);
    /* Newest first: a pending entry is the head of its bucket. */
    if (found && ix->bk[b].head == id) {
      ix->bk[b].head = e->next;
      if (--ix->bk[b].count == 0) {
        memmove(&ix->bk[b], &ix->bk[b + 1], (ix->n_bk - b - 1) * sizeof(amp_hbucket_t));
        ix->n_bk--;
      }
    }
    ent_free(ix, id);
  }
  pthread_rwlock_unlock(&ix->lock);
}

uint64_t amp_hidx_prune(amp_hidx_t *ix, uint32_t rpl_floor, uint32_t res_floor) {
  if (rpl_floor < ix->rpl_floor) rpl_floor = ix->rpl_floor;
  if (res_floor < ix->res_floor) res_floor = ix->res_floor;
  uint64_t dropped = 0;
  pthread_rwlock_wrlock(&ix->lock);
  uint32_t gone = 0; /* buckets at the front left empty */
  for (uint32_t b = 0; b < ix->n_bk; b++) {
    amp_hbucket_t *bk = &ix->bk[b];
    int do_rpl = bk->cltv < rpl_floor && !bk->rpl_done;
    int do_res = bk->cltv < res_floor;
    if (!do_rpl && !do_res) {
      if (bk->cltv >= rpl_floor) break;
      continue;
    }
    uint32_t prev = 0;
    for (uint32_t id = bk->head; id;) {
      amp_hent_t *e = hent(ix, id);
      uint32_t next = e->next;
      if (do_rpl && (e->flags & HENT_RPL)) {
        ent_drop_rpl(ix, id);
        dropped++;
      }
      if (do_res && (e->flags & HENT_RES)) ent_drop_res(ix, id);
      if (!(e->flags & (HENT_RES | HENT_RPL))) {
        if (prev) hent(ix, prev)->next = next;
        else bk->head = next;
        bk->count--;
        ent_free(ix, id);
      } else {
        prev = id;
      }
      id = next;
    }
    bk->rpl_done = bk->rpl_done || do_rpl;
    if (bk->count == 0 && b == gone) gone++;
  }
  if (gone) {
    memmove(&ix->bk[0], &ix->bk[gone], (ix->n_bk - gone) * sizeof(amp_hbucket_t));
    ix->n_bk -= gone;
  }
  ix->rpl_floor = rpl_floor;
  ix->res_floor = res_floor;
  pthread_rwlock_unlock(&ix->lock);
  return dropped;
}

int amp_hidx_find_res(amp_hidx_t *ix, uint64_t scid, uint64_t htlc_id, uint64_t *loc) {
  uint64_t h = amp_hidx_res_hash(ix, scid, htlc_id);
  int rc = AMP_ERR_NOTFOUND;
  pthread_rwlock_rdlock(&ix->lock);
  long pos = res_probe(ix, h, scid, htlc_id);
  if (pos >= 0) {
    const amp_hent_t *e = hent(ix, SLOT_ID(ix->res_slot[pos]));
    if (!(e->flags & HENT_PEND)) {
      *loc = e->loc;
      rc = AMP_OK;
    }
  }
  pthread_rwlock_unlock(&ix->lock);
  return rc;
}

int amp_hidx_find_rpl(amp_hidx_t *ix, uint32_t cltv, const uint8_t tag[16], uint64_t *scid,
                      uint64_t *htlc_id) {
  uint64_t h = amp_hidx_rpl_hash(ix, cltv, tag);
  int rc = AMP_ERR_NOTFOUND;
  pthread_rwlock_rdlock(&ix->lock);
  long pos = rpl_probe(ix, h, cltv, tag);
  if (pos >= 0) {
    const amp_hent_t *e = hent(ix, SLOT_ID(ix->rpl_slot[pos]));
    if (!(e->flags & HENT_PEND)) {
      *scid = e->scid;
      *htlc_id = e->htlc_id;
      rc = AMP_OK;
    }
  }
  pthread_rwlock_unlock(&ix->lock);
  return rc;
}

/* A "no" is only final if the filter was not replaced meanwhile. */
static int maybe_in(_Atomic(amp_cbf_t *) *fp, uint64_t h) {
  for (;;) {
    amp_cbf_t *f = atomic_load_explicit(fp, memory_order_seq_cst);
    if (amp_cbf_maybe(f, h)) return 1;
    if (atomic_load_explicit(fp, memory_order_seq_cst) == f) return 0;
  }
}

int amp_hidx_maybe_res_h(const amp_hidx_t *ix, uint64_t h) {
  return maybe_in(&((amp_hidx_t *)ix)->res_f, h);
}

int amp_hidx_maybe_rpl_h(const amp_hidx_t *ix, uint64_t h) {
  return maybe_in(&((amp_hidx_t *)ix)->rpl_f, h);
}

int amp_hidx_maybe_res(const amp_hidx_t *ix, uint64_t scid, uint64_t htlc_id) {
  return amp_hidx_maybe_res_h(ix, amp_hidx_res_hash(ix, scid, htlc_id));
}

int amp_hidx_maybe_rpl(const amp_hidx_t *ix, uint32_t cltv, const uint8_t tag[16]) {
  return amp_hidx_maybe_rpl_h(ix, amp_hidx_rpl_hash(ix, cltv, tag));
}

/* Writer, write lock held: replace a filter by one 4x the live keys, built
 * from every entry that has the role (pending ones included). On no memory
 * the old one stays: only the false-positive rate suffers. */
static void filter_grow(amp_hidx_t *ix, int kind) {
  uint64_t live = kind ? ix->rpl_count : ix->res_count;
  amp_cbf_t *nf = cbf_new(4 * live);
  if (!nf) return;
  if (grow((void **)&ix->retired, &ix->cap_retired, ix->n_retired + 1, sizeof *ix->retired) !=
      AMP_OK) {
    cbf_free(nf);
    return;
  }
  uint8_t role = kind ? HENT_RPL : HENT_RES;
  for (uint32_t id = 1; id <= ix->n_ent; id++) {
    amp_hent_t *e = hent(ix, id);
    if (e->flags & role) amp_cbf_add(nf, kind ? ent_rpl_hash(ix, e) : ent_res_hash(ix, e));
  }
  _Atomic(amp_cbf_t *) *fp = kind ? &ix->rpl_f : &ix->res_f;
  ix->retired[ix->n_retired++] = atomic_load(fp);
  atomic_store_explicit(fp, nf, memory_order_seq_cst);
  if (kind) ix->rpl_cap = 4 * live;
  else ix->res_cap = 4 * live;
  ix->filter_grows++;
}

/* --- set index --------------------------------------------------------------- */

#define SIDX_INIT_SLOTS 1024u
#define SIDX_FILTER_INIT 4096u

static uint64_t sidx_hash(const amp_sidx_t *sx, const uint8_t id[32]) {
  uint64_t w[4] = {amp_siphash_load64(id), amp_siphash_load64(id + 8),
                   amp_siphash_load64(id + 16), amp_siphash_load64(id + 24)};
  return amp_siphash_words(&sx->key, w, 4);
}

int amp_sidx_init(amp_sidx_t *sx, const amp_sipkey_t *key) {
  memset(sx, 0, sizeof *sx);
  sx->key = *key;
  sx->slot = amp_big_alloc(SIDX_INIT_SLOTS * sizeof(amp_sent_t));
  if (!sx->slot) return AMP_ERR_NOMEM;
  sx->mask = SIDX_INIT_SLOTS - 1;
  amp_cbf_t *f = cbf_new(SIDX_FILTER_INIT);
  if (!f) {
    amp_big_free(sx->slot, SIDX_INIT_SLOTS * sizeof(amp_sent_t));
    sx->slot = NULL;
    return AMP_ERR_NOMEM;
  }
  atomic_init(&sx->f, f);
  sx->f_cap = SIDX_FILTER_INIT;
  rwlock_init_writer_pref(&sx->lock);
  return AMP_OK;
}

/* Writer, write lock held (or no reader yet): replace the set filter by one
 * sized for `keys`, built from every entry in the table (pending ones
 * included). On no memory the old one stays: only false positives grow. */
static void sidx_filter_build(amp_sidx_t *sx, uint64_t keys) {
  amp_cbf_t *nf = cbf_new(keys);
  if (!nf) return;
  if (grow((void **)&sx->retired, &sx->cap_retired, sx->n_retired + 1, sizeof *sx->retired) !=
      AMP_OK) {
    cbf_free(nf);
    return;
  }
  for (uint64_t i = 0; i <= sx->mask; i++)
    if (sx->slot[i].v) amp_cbf_add(nf, sidx_hash(sx, sx->slot[i].id));
  sx->retired[sx->n_retired++] = atomic_load(&sx->f);
  atomic_store_explicit(&sx->f, nf, memory_order_seq_cst);
  sx->f_cap = keys;
}

int amp_sidx_maybe_h(const amp_sidx_t *sx, uint64_t h) {
  return maybe_in(&((amp_sidx_t *)sx)->f, h);
}

int amp_sidx_maybe(const amp_sidx_t *sx, const uint8_t id[32]) {
  return amp_sidx_maybe_h(sx, sidx_hash(sx, id));
}

uint64_t amp_sidx_prefetch_maybe(const amp_sidx_t *sx, const uint8_t id[32]) {
  uint64_t h = sidx_hash(sx, id);
  __builtin_prefetch((const void *)cbf_block(atomic_load_explicit(&((amp_sidx_t *)sx)->f,
                                                                  memory_order_acquire),
                                             h),
                     0, 3);
  return h;
}

void amp_sidx_fini(amp_sidx_t *sx) {
  if (!sx->slot) return;
  pthread_rwlock_destroy(&sx->lock);
  amp_big_free(sx->slot, (sx->mask + 1) * sizeof(amp_sent_t));
  free(sx->pend);
  cbf_free(atomic_load(&sx->f));
  for (uint32_t i = 0; i < sx->n_retired; i++) cbf_free(sx->retired[i]);
  free(sx->retired);
  memset(sx, 0, sizeof *sx);
}

static long sidx_probe(const amp_sidx_t *sx, const uint8_t id[32]) {
  for (uint64_t i = sidx_hash(sx, id) & sx->mask;; i = (i + 1) & sx->mask) {
    if (!sx->slot[i].v) return -1;
    if (memcmp(sx->slot[i].id, id, 32) == 0) return (long)i;
  }
}

static int sidx_grow(amp_sidx_t *sx, uint64_t nsize) {
  uint64_t size = sx->mask + 1;
  amp_sent_t *ns = amp_big_alloc(nsize * sizeof(amp_sent_t));
  if (!ns) return AMP_ERR_NOMEM;
  for (uint64_t i = 0; i < size; i++) {
    if (!sx->slot[i].v) continue;
    uint64_t j = sidx_hash(sx, sx->slot[i].id) & (nsize - 1);
    while (ns[j].v) j = (j + 1) & (nsize - 1);
    ns[j] = sx->slot[i];
  }
  amp_big_free(sx->slot, size * sizeof(amp_sent_t));
  sx->slot = ns;
  sx->mask = nsize - 1;
  /* The pending journal follows its entries: found again by id once the table
   * is complete. (Remapping old -> new slot numbers inside the loop above
   * moved an entry twice when its new slot number was also a later old one.) */
  for (uint32_t k = 0; k < sx->n_pend; k++) {
    long pos = sidx_probe(sx, sx->pend[k].id);
    if (pos >= 0) sx->pend[k].slot = (uint64_t)pos;
  }
  return AMP_OK;
}

static int sidx_reserve(amp_sidx_t *sx) {
  uint64_t size = sx->mask + 1;
  if ((sx->count + 1) * 10 <= size * 7) return AMP_OK;
  sx->grows++;
  return sidx_grow(sx, size * 2);
}

int amp_sidx_reserve(amp_sidx_t *sx, uint64_t n) {
  uint64_t size = sx->mask + 1, nsize = size;
  while (n * 10 > nsize * 7) nsize *= 2;
  int rc = AMP_OK;
  if (nsize == size && n <= sx->f_cap) return AMP_OK;
  pthread_rwlock_wrlock(&sx->lock);
  if (nsize != size) rc = sidx_grow(sx, nsize);
  if (rc == AMP_OK && n > sx->f_cap) sidx_filter_build(sx, n);
  pthread_rwlock_unlock(&sx->lock);
  return rc;
}

int amp_sidx_add(amp_sidx_t *sx, const uint8_t id[32], uint64_t settle_index, int cancelled,
                 int pending) {
  if (sidx_probe(sx, id) >= 0) return AMP_ERR_EXISTS;
  int rc;
  pthread_rwlock_wrlock(&sx->lock);
  if ((rc = sidx_reserve(sx)) != AMP_OK) goto out;
  if (pending &&
      (rc = grow((void **)&sx->pend, &sx->cap_pend, sx->n_pend + 1, sizeof sx->pend[0])) != AMP_OK)
    goto out;
  uint64_t h = sidx_hash(sx, id), i = h & sx->mask;
  while (sx->slot[i].v) i = (i + 1) & sx->mask;
  memcpy(sx->slot[i].id, id, 32);
  sx->slot[i].v = settle_index | (cancelled ? AMP_SIDX_CANCELLED : 0) |
                  (pending ? AMP_SIDX_PENDING : 0) | (1ull << 60); /* never 0 */
  sx->count++;
  /* in the filter before it can be committed: a "no" is never wrong */
  amp_cbf_add(atomic_load_explicit(&sx->f, memory_order_relaxed), h);
  if (sx->count * 2 > sx->f_cap * 3) sidx_filter_build(sx, 4 * sx->count);
  if (pending) {
    memcpy(sx->pend[sx->n_pend].id, id, 32);
    sx->pend[sx->n_pend++].slot = i;
  }
out:
  pthread_rwlock_unlock(&sx->lock);
  return rc;
}

void amp_sidx_prefetch(const amp_sidx_t *sx, const uint8_t id[32]) {
  __builtin_prefetch(&sx->slot[sidx_hash(sx, id) & sx->mask], 1, 3);
}

int amp_sidx_check(amp_sidx_t *sx, const uint8_t id[32]) {
  return sidx_probe(sx, id) >= 0 ? AMP_ERR_EXISTS : AMP_OK;
}

void amp_sidx_commit(amp_sidx_t *sx) {
  if (!sx->n_pend) return;
  pthread_rwlock_wrlock(&sx->lock);
  /* no deletion since the adds, so each one is where it was put */
  for (uint32_t k = 0; k < sx->n_pend; k++) sx->slot[sx->pend[k].slot].v &= ~AMP_SIDX_PENDING;
  sx->n_pend = 0;
  pthread_rwlock_unlock(&sx->lock);
}

void amp_sidx_rollback(amp_sidx_t *sx) {
  if (!sx->n_pend) return;
  pthread_rwlock_wrlock(&sx->lock);
  while (sx->n_pend) {
    /* a backward shift may have moved older pending ones: find by id */
    long pos = sidx_probe(sx, sx->pend[--sx->n_pend].id);
    if (pos < 0) continue;
    amp_cbf_del(atomic_load_explicit(&sx->f, memory_order_relaxed),
                sidx_hash(sx, sx->pend[sx->n_pend].id));
    uint64_t i = (uint64_t)pos, mask = sx->mask;
    memset(&sx->slot[i], 0, sizeof sx->slot[i]);
    for (uint64_t j = (i + 1) & mask; sx->slot[j].v; j = (j + 1) & mask) {
      uint64_t home = sidx_hash(sx, sx->slot[j].id) & mask;
      int in_range = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
      if (!in_range) {
        sx->slot[i] = sx->slot[j];
        memset(&sx->slot[j], 0, sizeof sx->slot[j]);
        i = j;
      }
    }
    sx->count--;
  }
  pthread_rwlock_unlock(&sx->lock);
}

int amp_sidx_find(amp_sidx_t *sx, const uint8_t id[32], uint64_t *settle_index, int *cancelled) {
  int rc = AMP_ERR_NOTFOUND;
  pthread_rwlock_rdlock(&sx->lock);
  long i = sidx_probe(sx, id);
  if (i >= 0 && !(sx->slot[i].v & AMP_SIDX_PENDING)) {
    *settle_index = AMP_SIDX_INDEX(sx->slot[i].v);
    *cancelled = (sx->slot[i].v & AMP_SIDX_CANCELLED) != 0;
    rc = AMP_OK;
  }
  pthread_rwlock_unlock(&sx->lock);
  return rc;
}
