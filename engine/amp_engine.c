/* amp_engine.c: reassembly, receive rules, hold timers, settlement, answers.
 * See amp_engine.h for the contract. Layout of this file:
 *   1. keyed hash, pools, small lock-free stacks
 *   2. objects: HTLC entries, live sets, done sets, invoices, store ops
 *   3. tables: in-flight HTLCs by (scid, htlc id) and in-flight onion tags
 *      by (cltv, tag) on amp_inflight (one cache line per operation, fixed
 *      size, prefetched a burst ahead); sets by (kind, id) and invoices by
 *      payment_hash on cds_lfht under RCU QSBR; invoices by payment_addr on
 *      amp_itab (one cache line per lookup instead of a walk of cold list
 *      nodes; a placeholder leaves it when unused: see struct inv)
 *   4. the worker: arrival, rules, hold, completion, timers, store completions
 *   5. recovery and the admin functions
 *
 * Concurrency design, in short:
 * - An HTLC entry (htlc_t) comes from the pool of the worker that received it
 *   (its owner) and is published in the in-flight table with add_unique: a
 *   duplicate delivered concurrently elsewhere loses the race and is ignored.
 * - A live set (set_t) is shared: workers find it in the set table and add to
 *   it under its spinlock. The HTLC whose amount makes the sum reach the total
 *   flips the set to CLOSING under the lock: exactly one worker completes a
 *   set. Timeouts unlink an HTLC under the same lock (O(1), doubly linked); a
 *   set left empty goes DEAD and leaves the table.
 * - Once its outcome is durable a set leaves the table: the store's set
 *   index (amp_store_set_find) then refuses a late shard or a reused set_id.
 *   A worker that misses in the table asks the store before it makes a set.
 *   In the one race left (it asked before the outcome was committed and
 *   publishes after the set left, e.g. preempted in between), the store
 *   refuses to settle a set_id twice (AMP_ERR_EXISTS): those HTLCs fail,
 *   none is fulfilled. Only an outcome the store never recorded (it gave up,
 *   or no memory for the intent) leaves a small done record in the table
 *   instead (cds_lfht_replace, atomic for readers and add_unique), which
 *   lives as long as the engine.
 * - Timers are intrusive in the HTLC entry and only its owner touches its
 *   wheel: an HTLC answered by another worker stays linked until its timer
 *   fires (and sees the entry is no longer held) or until the owner reuses the
 *   entry (unlinking it first). Entries and sets a worker retires wait in
 *   its limbo list, handed to RCU in one call_rcu per poll; after the grace
 *   period they go back to their owner's pool through a lock-free return
 *   stack (the admin thread's few retirements: one call_rcu each).
 */
#include "amp_engine.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <urcu-qsbr.h>
#include <urcu/rculfhash.h>

#include "amp_child.h"
#include "amp_failure.h"
#include "amp_inflight.h"
#include "amp_itab.h"
#include "amp_msg.h"
#include "amp_payload.h"
#include "amp_secp.h"
#include "amp_sha256.h"
#include "amp_siphash.h"
#include "amp_sphinx.h"
#include "amp_timer.h"

#define BURST 32
#define GW_SLOTS 1024
#define ARR_CLASSES 17 /* 1 .. 65536 HTLCs per set */
#define MAX_PENDING_SUBMIT 4096

#define container_of_(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))
#define LD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define ST(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* ---- 1. keyed hash: crypto/amp_siphash.h, keyed with e->hk ---------------- */

/* ---- lock-free return stack (many pushers, one taker of everything) ------ */

typedef struct {
  _Atomic(void *) top;
} mpsc_t;

/* push obj whose "next" pointer lives at *link */
static void mpsc_push(mpsc_t *s, void *obj, void **link) {
  void *old = atomic_load_explicit(&s->top, memory_order_relaxed);
  do {
    *link = old;
  } while (!atomic_compare_exchange_weak_explicit(&s->top, &old, obj, memory_order_release,
                                                  memory_order_relaxed));
}

static void *mpsc_take_all(mpsc_t *s) {
  if (!atomic_load_explicit(&s->top, memory_order_relaxed)) return NULL;
  return atomic_exchange_explicit(&s->top, NULL, memory_order_acquire);
}

/* ---- 2. objects ---------------------------------------------------------- */

enum { H_FREE = 0, H_NEW, H_HELD, H_CLOSING, H_ANSWERING };
enum { S_OPEN = 1, S_CLOSING, S_DEAD };
enum { K_AMP = 1, K_MPP = 2 };

struct set;
struct amp_worker;

/* Retired objects wait in their worker's limbo list, linked through this
 * (it shares the rcu_head's room in each object), until amp_worker_poll hands
 * the whole list to RCU at once. */
typedef struct limbo_link {
  struct limbo_link *next;
  void (*fn)(struct limbo_link *l); /* frees the object after the grace period */
} limbo_link_t;

/* One HTLC in flight (held, or answered and awaiting its commit). Keep small:
 * bench_engine measures bytes per held HTLC. */
typedef struct htlc {
  uint64_t id_hash;              /* in the in-flight table f_id under this */
  uint64_t tag_hash;             /* in the onion tag table f_tag (if in_tag) */
  amp_timer_node_t timer;        /* owner's wheel; owner-only */
  struct htlc *set_next;         /* set list (under the set lock) */
  struct htlc **set_pprev;
  union {
    struct rcu_head rcu;         /* retire (admin thread: call_rcu) */
    limbo_link_t limbo;          /* retire (worker: batched) */
    void *free_next;             /* pool free list / return stack */
  };
  struct set *set;
  uint64_t gateway_id;
  uint64_t scid;
  uint64_t htlc_id;
  uint64_t amount_msat;
  uint32_t cltv_expiry;
  uint32_t child_index;
  uint8_t state;                 /* H_*, atomic */
  uint8_t in_tag;                /* published in the tag table */
  uint8_t counted;               /* counted in the held limits */
  uint8_t has_ss;                /* shared secret known */
  uint16_t gw_slot;
  struct amp_worker *ow;         /* owner: its pool and wheel */
  uint8_t channel_id[32];
  uint8_t ss[32];                /* hop shared secret: failure onions */
  uint8_t share[32];             /* AMP share */
  uint8_t hash[32];              /* payment_hash */
  uint8_t tag[16];               /* replay tag */
  uint64_t cookie;               /* its message's (amp_engine_in_t), for emit */
} htlc_t;

typedef struct inv inv_t;

/* Common head of live and done set records in the set table. */
typedef struct {
  struct cds_lfht_node node;
  uint8_t kind;                  /* K_AMP / K_MPP */
  uint8_t live;                  /* 1: set_t, 0: dset_t */
  uint8_t key[32];
} skey_t;

typedef struct set {
  skey_t k;
  uint8_t state;                 /* S_*, written under lock, read atomically */
  struct amp_worker *ow;         /* owner: its pool */
  atomic_flag lock;
  uint32_t n;
  inv_t *inv;
  uint64_t total_msat;
  uint64_t sum_msat;
  htlc_t *head;
  union {
    struct rcu_head rcu;
    limbo_link_t limbo;
    void *free_next;
  };
} set_t;

/* A batch of retired objects handed to RCU with one call_rcu; the holders are
 * a fixed set per worker, back through a return stack after their grace
 * period. */
#define LIMBO_HOLDERS 64
#define LIMBO_FLUSH 256          /* a list this long is handed over at once */
typedef struct limbo {
  struct rcu_head rcu;
  struct limbo *next_free;
  struct amp_worker *w;
  limbo_link_t *head;
} limbo_t;

/* A set whose settle or cancel the store did not record (it gave up, or no
 * memory for the intent), kept for rule 8 and the admin while the engine
 * lives. Durable outcomes are the store's (amp_store_set_find). */
typedef struct {
  skey_t k;
  uint8_t cancelled;
  inv_t *inv;                    /* may be NULL after recovery (no invoice) */
  uint8_t payment_addr[32];
  uint64_t settle_index;
  uint64_t amount_msat;
} dset_t;

/* An invoice in memory. Every invoice the operator added stays for the
 * engine's life. A placeholder (rec.placeholder: made by a spontaneous AMP
 * payment) stays only while something uses it: refs counts its live sets
 * (and done records), its INVOICE_PUT until committed, and each thread
 * working with it (receive_, the admin's cancel). When refs falls to zero it
 * leaves the addr index (INV_DEAD set under the index's lock, so no one holds
 * it again) and is freed after a grace period; the store keeps it, and the
 * next payment to its payment_addr reads it back (inv_get_). */
#define INV_DEAD 0x80000000u
/* Eviction generations: a counter per slice of the addr hashes, bumped under
 * the addr index's lock when a placeholder leaves it. A thread that found no
 * invoice for an addr (not in memory, not in the store) inserts one only if
 * its slice's counter has not moved since before it looked (inv_insert_'s
 * gen): otherwise a placeholder for that addr may have been made, committed
 * and evicted meanwhile, and a second one would overwrite its record (a read
 * back copy would be stale). 4 KiB; written once per eviction. */
#define INV_GENS 1024u
/* Placeholders in a worker's pool (then malloc): each lives as long as a set
 * or an intent holds it, so this is far more than a worker keeps at once;
 * ~25 MiB of address space per worker, touched as used. */
#define PH_POOL_MAX 65536u
struct inv {
  struct cds_lfht_node hash_node;
  amp_store_invoice_t rec;       /* state, amt_paid_msat, sets_settled: atomic */
  uint8_t durable;               /* atomic: its INVOICE_PUT committed */
  struct amp_worker *put_by;     /* placeholders: the worker that submitted its INVOICE_PUT */
  uint32_t closing;              /* atomic: its sets settling now */
  _Atomic uint32_t refs;         /* placeholders only: users | INV_DEAD */
  uint64_t ah;                   /* hash32_ of payment_addr (inv_insert_) */
  struct amp_worker *ow;         /* from this worker's pool (NULL: malloc) */
  union {
    struct rcu_head rcu;         /* evicted by the admin thread */
    limbo_link_t limbo;          /* evicted by a worker */
    void *free_next;             /* pool free list / return stack */
  };
};

enum { OP_FAIL = 1, OP_SETTLE, OP_CANCEL_SET, OP_INV_PUT, OP_CANCEL_REQ, OP_PRUNE };

/* A store intent and what to do when it comes back. */
typedef struct op {
  amp_store_intent_t in;
  struct op *next;
  uint8_t type;
  uint8_t from_malloc;
  uint8_t retries;
  uint64_t retry_at_ms;
  uint64_t t_ns;                 /* made (amp_mono_ns): the commit's share */
  htlc_t *h;                     /* OP_FAIL */
  set_t *s;                      /* OP_SETTLE, OP_CANCEL_SET, OP_CANCEL_REQ */
  inv_t *inv;
  amp_store_htlc_t *arr;         /* SETTLE / CANCEL_SET array */
  unsigned arr_cls;
} op_t;

/* A pool of fixed-size entries: a bump region, the owner's free list, and a
 * return stack for entries freed by other threads. */
typedef struct {
  char *base;
  size_t esz;
  size_t link_off;
  uint32_t cap, bump;
  void *free;
  mpsc_t ret;
} pool_t;

typedef struct {
#define CNT_FIELD_(name, desc) uint64_t name;
  AMP_ENGINE_COUNTERS(CNT_FIELD_)
#undef CNT_FIELD_
} counters_t;

#define CNT(w, f) __atomic_store_n(&(w)->c.f, (w)->c.f + 1, __ATOMIC_RELAXED)

typedef struct {
  _Atomic uint64_t id_plus1;
  _Atomic uint64_t held;
} gw_t;

struct amp_worker {
  alignas(64) counters_t c;
  alignas(64) amp_engine_t *e;
  unsigned idx;
  int attached;
  amp_timer_wheel_t wheel;
  pool_t hp, sp, ip;             /* HTLCs, live sets, placeholder invoices */
  op_t *ops;
  uint32_t op_cap, op_bump;
  op_t *op_free;
  mpsc_t inbox;                  /* ops handed over by the admin */
  op_t *fake_done;               /* test hook: ops "failed by the store" */
  uint32_t pruned_height;        /* worker 0: last PRUNE submitted */
  op_t *pend_head, *pend_tail;   /* ops waiting to be submitted */
  size_t n_pend, n_sub;          /* queued, submitted not yet back */
  void *arr_cache[ARR_CLASSES];
  uint64_t gwc_id1[8];           /* gateway slot cache: id + 1 (0: empty) */
  uint16_t gwc_slot[8];
  uint64_t now_ms;
  uint8_t (*v_share)[32];
  uint32_t *v_idx;
  uint8_t (*v_hash)[32];
  uint8_t (*v_pre)[32];
  struct set *cq[BURST];         /* AMP sets completed, to verify (complete_flush_) */
  unsigned ncq;
  amp_sphinx_hop_t *hops;        /* BURST */
  limbo_link_t *limbo;           /* retired, not yet handed to RCU */
  uint32_t limbo_n;
  limbo_t *limbo_free;           /* holders at hand */
  mpsc_t limbo_ret;              /* holders back from their grace period */
  limbo_t *limbo_mem;
  uint8_t out[AMP_ANSWER_MAX];
};

struct amp_engine {
  amp_engine_cfg_t cfg;          /* node_key wiped: the copy is nk */
  uint8_t nk[32];
  amp_store_t *st;
  amp_sipkey_t hk;               /* hash key (random per engine) */
  _Atomic uint32_t height;
  _Atomic uint64_t held;
  _Atomic uint64_t add_index;
  amp_inflight_t *f_id, *f_tag;  /* in flight: (scid, htlc_id), (cltv, onion tag) */
  struct cds_lfht *t_set, *t_hash;
  amp_itab_t *ix_addr;           /* invoices by payment_addr */
  _Atomic uint32_t inv_gen[INV_GENS]; /* eviction generations (INV_GENS) */
  _Atomic uint64_t ix_marked;    /* its replaced tables handed to call_rcu */
  amp_worker_t **w;
  gw_t gw[GW_SLOTS];
  _Atomic int64_t test_fail;     /* test hook: submissions to fail */
  _Atomic int64_t test_fail_rd;  /* test hook: invoice reads to fail */
  void (*test_ph_hook)(void *);  /* test hook: before a made or read-back invoice's insert */
  void *test_ph_ctx;
  pthread_mutex_t admin_mu;
  counters_t ac;                 /* admin counters (under admin_mu) */
};

static __thread int tls_rcu_registered;

static uint64_t wall_now_(const amp_engine_t *e) {
  return e->cfg.wall_clock ? e->cfg.wall_clock() : (uint64_t)time(NULL);
}

/* ---- pools --------------------------------------------------------------- */

static int pool_init(pool_t *p, size_t esz, size_t link_off, uint32_t cap) {
  memset(p, 0, sizeof *p);
  p->esz = (esz + 63) & ~(size_t)63; /* cache-line size classes: no false sharing */
  if (esz <= 320) p->esz = (esz + 15) & ~(size_t)15;
  p->link_off = link_off;
  p->cap = cap;
  /* zeroed and untouched: pages cost nothing until entries are handed out */
  p->base = calloc(cap ? cap : 1, p->esz);
  return p->base ? AMP_OK : AMP_ERR_NOMEM;
}

static void **pool_link_(pool_t *p, void *obj) { return (void **)(void *)((char *)obj + p->link_off); }

static void *pool_get(pool_t *p) {
  void *o = p->free;
  if (!o) {
    o = mpsc_take_all(&p->ret);
    if (!o && p->bump < p->cap) return p->base + p->esz * (size_t)p->bump++;
  }
  if (o) p->free = *pool_link_(p, o);
  return o;
}

/* owner thread */
static void pool_put_local(pool_t *p, void *o) {
  *pool_link_(p, o) = p->free;
  p->free = o;
}

/* any thread */
static void pool_put_remote(pool_t *p, void *o) { mpsc_push(&p->ret, o, pool_link_(p, o)); }

/* ---- 3. tables ----------------------------------------------------------- */

/* 32-byte keys (payment_addr, payment_hash) */
static inline unsigned long hash32_(const amp_engine_t *e, const uint8_t *p) {
  uint64_t m[4] = {amp_siphash_load64(p), amp_siphash_load64(p + 8), amp_siphash_load64(p + 16), amp_siphash_load64(p + 24)};
  return (unsigned long)amp_siphash_words(&e->hk, m, 4);
}

typedef struct {
  uint64_t scid, id;
} idkey_t;

static inline uint64_t hash_id_(const amp_engine_t *e, uint64_t scid, uint64_t id) {
  uint64_t m[2] = {scid, id};
  return amp_siphash_words(&e->hk, m, 2);
}

static int match_id_(const void *obj, const void *key) {
  const htlc_t *h = obj;
  const idkey_t *k = key;
  return h->scid == k->scid && h->htlc_id == k->id;
}

typedef struct {
  uint32_t cltv;
  const uint8_t *tag;
} tagkey_t;

static inline uint64_t hash_tag_(const amp_engine_t *e, uint32_t cltv, const uint8_t tag[16]) {
  uint64_t m[3] = {cltv, amp_siphash_load64(tag), amp_siphash_load64(tag + 8)};
  return amp_siphash_words(&e->hk, m, 3);
}

/* An HTLC leaves an in-flight table it is in (under the hash it went in
 * with): NOTFOUND would be an engine bug. */
static void inflight_del_(amp_inflight_t *t, uint64_t hash, const htlc_t *h) {
  int rc = amp_inflight_del(t, hash, h);
  assert(rc == AMP_OK);
  (void)rc;
}

static int match_tag_(const void *obj, const void *key) {
  const htlc_t *h = obj;
  const tagkey_t *k = key;
  return h->cltv_expiry == k->cltv && memcmp(h->tag, k->tag, 16) == 0;
}

typedef struct {
  uint8_t kind;
  const uint8_t *id;
} setkey_t;

static inline unsigned long hash_set_(const amp_engine_t *e, uint8_t kind, const uint8_t id[32]) {
  uint64_t m[5] = {kind, amp_siphash_load64(id), amp_siphash_load64(id + 8), amp_siphash_load64(id + 16), amp_siphash_load64(id + 24)};
  return (unsigned long)amp_siphash_words(&e->hk, m, 5);
}

static int match_set_(struct cds_lfht_node *n, const void *key) {
  const skey_t *s = container_of_(n, skey_t, node);
  const setkey_t *k = key;
  return s->kind == k->kind && memcmp(s->key, k->id, 32) == 0;
}

static int match_addr_(const void *obj, const void *key) {
  return memcmp(((const inv_t *)obj)->rec.payment_addr, key, 32) == 0;
}

static int match_hash_(struct cds_lfht_node *n, const void *key) {
  const inv_t *i = container_of_(n, inv_t, hash_node);
  return memcmp(i->rec.payment_hash, key, 32) == 0;
}

/* set_find_h_: with the key's hash already computed (hash_set_) */
static skey_t *set_find_h_(amp_engine_t *e, uint8_t kind, const uint8_t id[32], unsigned long hv) {
  struct cds_lfht_iter it;
  setkey_t k = {kind, id};
  cds_lfht_lookup(e->t_set, hv, match_set_, &k, &it);
  struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
  return n ? container_of_(n, skey_t, node) : NULL;
}

static skey_t *set_find_(amp_engine_t *e, uint8_t kind, const uint8_t id[32]) {
  struct cds_lfht_iter it;
  setkey_t k = {kind, id};
  cds_lfht_lookup(e->t_set, hash_set_(e, kind, id), match_set_, &k, &it);
  struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
  return n ? container_of_(n, skey_t, node) : NULL;
}

/* _h: with the addr's hash32_ already computed */
static inv_t *inv_by_addr_h_(amp_engine_t *e, const uint8_t addr[32], uint64_t ah) {
  return amp_itab_lookup(e->ix_addr, ah, match_addr_, addr);
}

static inv_t *inv_by_addr_(amp_engine_t *e, const uint8_t addr[32]) {
  return inv_by_addr_h_(e, addr, hash32_(e, addr));
}

static inv_t *inv_by_hash_(amp_engine_t *e, const uint8_t hash[32]) {
  struct cds_lfht_iter it;
  cds_lfht_lookup(e->t_hash, hash32_(e, hash), match_hash_, hash, &it);
  struct cds_lfht_node *n = cds_lfht_iter_get_node(&it);
  return n ? container_of_(n, inv_t, hash_node) : NULL;
}

/* The addr index's tables replaced by growth are freed after a grace period
 * (every lookup runs inside a read-side section). One call_rcu per doubling. */
typedef struct {
  struct rcu_head rcu;
  amp_itab_t *t;
  uint64_t mark;
} ix_reclaim_t;

static void ix_reclaim_cb_(struct rcu_head *h) {
  ix_reclaim_t *r = container_of_(h, ix_reclaim_t, rcu);
  amp_itab_reclaim(r->t, r->mark);
  free(r);
}

static void ix_reclaim_(amp_engine_t *e) {
  uint64_t m = amp_itab_retired(e->ix_addr), seen = atomic_load(&e->ix_marked);
  if (m == seen || !atomic_compare_exchange_strong(&e->ix_marked, &seen, m)) return;
  ix_reclaim_t *r = malloc(sizeof *r);
  if (!r) return; /* kept until amp_engine_delete */
  r->t = e->ix_addr;
  r->mark = m;
  call_rcu(&r->rcu, ix_reclaim_cb_);
}

/* The eviction generation of addr hash ah's slice (INV_GENS): read before a
 * lookup whose miss may lead to an insert (inv_get_). Acquire: a thread that
 * sees an eviction's bump sees the store's record of what was evicted. */
static uint32_t inv_gen_(amp_engine_t *e, uint64_t ah) {
  return atomic_load_explicit(&e->inv_gen[ah >> 54], memory_order_acquire);
}

typedef struct {
  amp_engine_t *e;
  uint64_t ah;
  uint32_t gen;
} gen_check_t;

/* Under the addr index's lock: no eviction in ah's slice since gen was read. */
static int inv_gen_same_(void *ctx) {
  gen_check_t *g = ctx;
  return atomic_load_explicit(&g->e->inv_gen[g->ah >> 54], memory_order_relaxed) == g->gen;
}

/* Inserts inv in the indexes. gen: NULL, or the eviction generation of ah
 * read before the caller found no invoice for the addr (inv_gen_): then the
 * insert is refused (AMP_ERR_STATE: look again) if a placeholder in ah's
 * slice was evicted since. Returns AMP_OK; AMP_ERR_EXISTS with *other the
 * invoice already there (by addr or, for MPP, by hash); AMP_ERR_STATE;
 * AMP_ERR_NOMEM (the addr index could not grow). Nothing is inserted unless
 * AMP_OK. */
static int inv_insert_(amp_engine_t *e, inv_t *inv, uint64_t ah, const uint32_t *gen,
                       inv_t **other) {
  inv->ah = ah; /* hash32_ of its payment_addr: the eviction's */
  if (inv->rec.type == AMP_INVOICE_MPP) {
    struct cds_lfht_node *n =
        cds_lfht_add_unique(e->t_hash, hash32_(e, inv->rec.payment_hash), match_hash_,
                            inv->rec.payment_hash, &inv->hash_node);
    if (n != &inv->hash_node) {
      *other = container_of_(n, inv_t, hash_node);
      return AMP_ERR_EXISTS;
    }
  }
  gen_check_t gc = {e, ah, gen ? *gen : 0};
  int refused;
  inv_t *got = amp_itab_add_unique_if(e->ix_addr, ah, match_addr_, inv->rec.payment_addr, inv,
                                      gen ? inv_gen_same_ : NULL, &gc, &refused);
  if (got == inv) {
    ix_reclaim_(e);
    return AMP_OK;
  }
  if (inv->rec.type == AMP_INVOICE_MPP) cds_lfht_del(e->t_hash, &inv->hash_node);
  *other = got;
  return got ? AMP_ERR_EXISTS : refused ? AMP_ERR_STATE : AMP_ERR_NOMEM;
}

static void retire_(amp_worker_t *w, limbo_link_t *l, void (*fn)(limbo_link_t *));

/* inv_hold_: takes a reference on a placeholder (any other invoice never
 * leaves: nothing to do). Returns 0 when it is evicted already (INV_DEAD):
 * look it up again (inv_get_). Cost: one CAS on the invoice's line. */
static int inv_hold_(inv_t *inv) {
  if (!inv->rec.placeholder) return 1;
  uint32_t r = atomic_load_explicit(&inv->refs, memory_order_relaxed);
  do {
    if (r & INV_DEAD) return 0;
  } while (!atomic_compare_exchange_weak(&inv->refs, &r, r + 1));
  return 1;
}

/* A zeroed invoice: from w's pool (a placeholder made or read back on the
 * worker's path: no allocation there), else (the pool used up, the admin
 * thread, recovery) from malloc. */
static inv_t *inv_alloc_(amp_worker_t *w) {
  inv_t *inv = w ? pool_get(&w->ip) : NULL;
  if (inv) {
    memset(inv, 0, sizeof *inv);
    inv->ow = w;
    return inv;
  }
  return calloc(1, sizeof *inv);
}

/* Back to its pool (any thread) or to malloc. */
static void inv_free_(inv_t *inv) {
  amp_wipe(inv->rec.preimage, 32);
  if (inv->ow) pool_put_remote(&inv->ow->ip, inv);
  else free(inv);
}

static void inv_free_limbo_(limbo_link_t *l) { inv_free_(container_of_(l, inv_t, limbo)); }

static void inv_free_cb_rcu_(struct rcu_head *h) { inv_free_(container_of_(h, inv_t, rcu)); }

/* Under the addr index's lock: unused still? Then dead: no hold succeeds,
 * and its slice's eviction generation moves on (release: after its record's
 * commit, which its INVOICE_PUT's completion showed this thread). */
static int inv_evictable_(void *obj, void *ctx) {
  inv_t *inv = obj;
  uint32_t zero = 0;
  if (!atomic_compare_exchange_strong(&inv->refs, &zero, INV_DEAD)) return 0;
  atomic_fetch_add_explicit(&((amp_engine_t *)ctx)->inv_gen[inv->ah >> 54], 1,
                            memory_order_release);
  return 1;
}

/* inv_release_: drops a reference inv_hold_ (or a set, or an INVOICE_PUT)
 * took. The last one evicts the placeholder: out of the addr index and freed
 * after a grace period (w's limbo; w NULL: the admin thread, call_rcu). A
 * hold taken meanwhile (refs back above zero) keeps it. */
static void inv_release_(amp_engine_t *e, amp_worker_t *w, inv_t *inv) {
  if (!inv->rec.placeholder || atomic_fetch_sub(&inv->refs, 1) != 1) return;
  if (!amp_itab_remove(e->ix_addr, inv->ah, inv, inv_evictable_, e))
    return;
  if (w) {
    CNT(w, placeholders_evicted);
    retire_(w, &inv->limbo, inv_free_limbo_);
  } else {
    __atomic_store_n(&e->ac.placeholders_evicted, e->ac.placeholders_evicted + 1,
                     __ATOMIC_RELAXED); /* under admin_mu */
    call_rcu(&inv->rcu, inv_free_cb_rcu_);
  }
}

/* inv_get_: the invoice with payment_addr addr, held (inv_hold_): from the
 * addr index, else read back from the store (an evicted placeholder; the
 * store's addr filter answers "no" for a new addr without a read). NULL:
 * there is none, or *err says why not (AMP_ERR_IO: store read error;
 * AMP_ERR_NOMEM). w: the calling worker (NULL: the admin thread); ah:
 * hash32_ of addr (computed once per HTLC); ih: the store's hint for addr
 * (amp_store_prefetch_invoice). loaded counts a read-back. On NULL with
 * AMP_OK, *gen (may be NULL) is the eviction generation read before the
 * look found nothing: placeholder_'s insert condition. A read-back is
 * inserted under the same condition (a copy read while the placeholder was
 * back in memory and changed there would be stale: look again). Cost: the
 * index lookup; a read-back adds an LMDB read, a calloc and an insert. */
static inv_t *inv_get_(amp_engine_t *e, amp_worker_t *w, const uint8_t addr[32], uint64_t ah,
                       uint64_t ih, uint64_t *loaded, uint32_t *gen, int *err) {
  unsigned producer = w ? w->idx : e->cfg.workers;
  *err = AMP_OK;
  for (;;) {
    uint32_t g = inv_gen_(e, ah);
    if (gen) *gen = g;
    inv_t *inv = inv_by_addr_h_(e, addr, ah);
    if (inv && inv_hold_(inv)) return inv;
    /* absent, or evicted just now (then out of the index already, or
     * about to be under the lock inv_insert_ takes) */
    if (!amp_store_maybe_invoice_hint(e->st, ih)) return NULL;
    if (!(inv = inv_alloc_(w))) {
      *err = AMP_ERR_NOMEM;
      return NULL;
    }
    int rc = atomic_load_explicit(&e->test_fail_rd, memory_order_relaxed) > 0 &&
                     atomic_fetch_sub(&e->test_fail_rd, 1) > 0
                 ? AMP_ERR_IO
                 : amp_store_invoice_get(e->st, producer, addr, &inv->rec);
    if (rc != AMP_OK) {
      inv_free_(inv);
      if (rc != AMP_ERR_NOTFOUND) *err = rc;
      return NULL;
    }
    inv->durable = 1;
    atomic_init(&inv->refs, inv->rec.placeholder ? 1u : 0u); /* ours */
    if (e->test_ph_hook) e->test_ph_hook(e->test_ph_ctx);
    inv_t *other = NULL;
    if ((rc = inv_insert_(e, inv, ah, &g, &other)) == AMP_OK) {
      __atomic_store_n(loaded, *loaded + 1, __ATOMIC_RELAXED);
      return inv;
    }
    inv_free_(inv);
    if (rc == AMP_ERR_STATE) continue; /* evicted and maybe changed meanwhile */
    if (!other) {
      *err = rc;
      return NULL;
    }
    if (inv_hold_(other)) return other; /* another thread read it back first */
  }
}

/* A consistent copy of an invoice's record (mutable fields loaded atomically). */
static void inv_copy_(amp_store_invoice_t *out, const inv_t *inv) {
  *out = inv->rec;
  out->state = LD(&inv->rec.state);
  out->amt_paid_msat = LD(&inv->rec.amt_paid_msat);
  out->sets_settled = LD(&inv->rec.sets_settled);
}

/* ---- gateways (held per gateway) ----------------------------------------- */

static gw_t *gw_slot_(amp_engine_t *e, uint64_t id, uint16_t *slot) {
  uint64_t h = amp_siphash_words(&e->hk, &id, 1);
  for (unsigned i = 0; i < GW_SLOTS; i++) {
    unsigned s = (unsigned)((h + i) & (GW_SLOTS - 1));
    uint64_t cur = atomic_load(&e->gw[s].id_plus1);
    if (cur == id + 1) {
      *slot = (uint16_t)s;
      return &e->gw[s];
    }
    if (cur == 0) {
      uint64_t zero = 0;
      if (atomic_compare_exchange_strong(&e->gw[s].id_plus1, &zero, id + 1) || zero == id + 1) {
        *slot = (uint16_t)s;
        return &e->gw[s];
      }
    }
  }
  *slot = 0; /* table full: gateways beyond GW_SLOTS share slot 0 */
  return &e->gw[0];
}

/* gw_slot_ through a small per-worker cache: gateways are few and their
 * slots never move, so the probe (a keyed hash and atomic loads on a shared
 * array) runs once per gateway and cache entry. */
static gw_t *gw_cached_(amp_worker_t *w, uint64_t id, uint16_t *slot) {
  unsigned c = (unsigned)(id & 7);
  if (w->gwc_id1[c] == id + 1) {
    *slot = w->gwc_slot[c];
    return &w->e->gw[*slot];
  }
  gw_t *g = gw_slot_(w->e, id, slot);
  w->gwc_id1[c] = id + 1;
  w->gwc_slot[c] = *slot;
  return g;
}

/* ---- 4. the worker ------------------------------------------------------- */

static htlc_t *htlc_alloc_(amp_worker_t *w) {
  htlc_t *h = pool_get(&w->hp);
  if (!h) return NULL;
  if (h->timer.pprev) amp_timer_del(&w->wheel, &h->timer); /* stale timer of its last life */
  memset(h, 0, offsetof(htlc_t, timer));
  size_t rest = offsetof(htlc_t, set_next);
  memset((char *)h + rest, 0, sizeof *h - rest);
  h->timer.next = NULL;
  h->timer.pprev = NULL;
  h->ow = w;
  ST(&h->state, (uint8_t)H_NEW);
  return h;
}

static void htlc_free_(htlc_t *h) {
  /* secrets do not outlive the HTLC (wiped here, off the worker's path) */
  amp_wipe(h->ss, sizeof h->ss);
  amp_wipe(h->share, sizeof h->share);
  ST(&h->state, (uint8_t)H_FREE);
  pool_put_remote(&h->ow->hp, h);
}

static void htlc_free_limbo_(limbo_link_t *l) { htlc_free_(container_of_(l, htlc_t, limbo)); }

static void set_free_(set_t *s) { pool_put_remote(&s->ow->sp, s); }

static void set_free_limbo_(limbo_link_t *l) { set_free_(container_of_(l, set_t, limbo)); }

static void set_free_cb_(struct rcu_head *head) { set_free_(container_of_(head, set_t, rcu)); }

/* After the grace period of a batch (liburcu's call_rcu thread): free every
 * object of it, give the holder back to its worker. */
static void limbo_cb_(struct rcu_head *head) {
  limbo_t *b = container_of_(head, limbo_t, rcu);
  for (limbo_link_t *l = b->head; l;) {
    limbo_link_t *nx = l->next;
    l->fn(l);
    l = nx;
  }
  mpsc_push(&b->w->limbo_ret, b, (void **)&b->next_free);
}

/* Hands w's limbo list to RCU in one call_rcu (one exchange with liburcu's
 * thread for the whole list, instead of one per object). With every holder
 * still in its grace period the list waits for the next call. */
static void limbo_flush_(amp_worker_t *w) {
  if (!w->limbo) return;
  limbo_t *b = w->limbo_free;
  if (!b) b = mpsc_take_all(&w->limbo_ret);
  if (!b) return;
  w->limbo_free = b->next_free;
  b->w = w;
  b->head = w->limbo;
  w->limbo = NULL;
  w->limbo_n = 0;
  call_rcu(&b->rcu, limbo_cb_);
}

/* Frees l's object after a grace period (worker thread of w, or the thread
 * that deletes the engine). Cost: two stores; a call_rcu per LIMBO_FLUSH. */
static void retire_(amp_worker_t *w, limbo_link_t *l, void (*fn)(limbo_link_t *)) {
  l->fn = fn;
  l->next = w->limbo;
  w->limbo = l;
  if (++w->limbo_n >= LIMBO_FLUSH) limbo_flush_(w);
}

/* Retire an HTLC whose answer went out (or that needs none): unpublish it,
 * release its held counts, and free it after a grace period.
 * Cost (callgrind, per HTLC): ~500 instructions, nearly all in the two
 * cds_lfht_del (split-ordered list unlink + accounting); the free is batched
 * (retire_). */
static void htlc_retire_(amp_worker_t *w, htlc_t *h) {
  amp_engine_t *e = w->e;
  if (h->counted) {
    atomic_fetch_sub(&e->held, 1);
    atomic_fetch_sub(&e->gw[h->gw_slot].held, 1);
    h->counted = 0;
  }
  inflight_del_(e->f_id, h->id_hash, h);
  if (h->in_tag) inflight_del_(e->f_tag, h->tag_hash, h);
  ST(&h->state, (uint8_t)H_ANSWERING);
  retire_(w, &h->limbo, htlc_free_limbo_);
}


static set_t *set_alloc_(amp_worker_t *w) {
  set_t *s = pool_get(&w->sp);
  if (!s) return NULL;
  memset(s, 0, sizeof *s);
  atomic_flag_clear(&s->lock);
  s->ow = w;
  s->k.live = 1;
  return s;
}

static void set_lock_(set_t *s) {
  while (atomic_flag_test_and_set_explicit(&s->lock, memory_order_acquire)) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
}

static void set_unlock_(set_t *s) { atomic_flag_clear_explicit(&s->lock, memory_order_release); }

/* ---- ops ----------------------------------------------------------------- */

static op_t *op_alloc_(amp_worker_t *w, uint8_t type) {
  op_t *o = w->op_free;
  if (o) {
    w->op_free = o->next;
  } else if (w->op_bump < w->op_cap) {
    o = &w->ops[w->op_bump++];
  } else {
    o = malloc(sizeof *o); /* pool exhausted: degrade, do not drop answers */
    if (!o) return NULL;
    memset(o, 0, sizeof *o);
    o->from_malloc = 1;
  }
  uint8_t fm = o->from_malloc;
  memset(o, 0, sizeof *o);
  o->from_malloc = fm;
  o->type = type;
  o->in.cookie = o;
  if (type == OP_SETTLE || type == OP_FAIL) o->t_ns = amp_mono_ns();
  return o;
}

static void op_free_(amp_worker_t *w, op_t *o) {
  if (o->from_malloc) {
    free(o);
    return;
  }
  o->next = w->op_free;
  w->op_free = o;
}

static unsigned arr_cls_(uint32_t n) {
  unsigned c = 0;
  while ((1u << c) < n) c++;
  return c;
}

typedef struct arrhdr {
  struct arrhdr *next;
  uint64_t pad;
} arrhdr_t;

static amp_store_htlc_t *arr_get_(amp_worker_t *w, uint32_t n, unsigned *cls) {
  unsigned c = arr_cls_(n);
  *cls = c;
  if (c < ARR_CLASSES && w->arr_cache[c]) {
    arrhdr_t *h = w->arr_cache[c];
    w->arr_cache[c] = h->next;
    return (amp_store_htlc_t *)(h + 1);
  }
  arrhdr_t *h = malloc(sizeof *h + ((size_t)1 << c) * sizeof(amp_store_htlc_t));
  return h ? (amp_store_htlc_t *)(h + 1) : NULL;
}

static void arr_put_(amp_worker_t *w, amp_store_htlc_t *a, unsigned cls, uint32_t n) {
  if (!a) return;
  amp_wipe(a, (size_t)n * sizeof *a);
  arrhdr_t *h = (arrhdr_t *)a - 1;
  if (cls < ARR_CLASSES) {
    h->next = w->arr_cache[cls];
    w->arr_cache[cls] = h;
  } else {
    free(h);
  }
}

static void pend_push_(amp_worker_t *w, op_t *o) {
  o->next = NULL;
  if (w->pend_tail) w->pend_tail->next = o;
  else w->pend_head = o;
  w->pend_tail = o;
  w->n_pend++;
}

/* Held back for now? A retry until its time; a settle until its invoice's
 * INVOICE_PUT has committed (the store refuses a settle of an invoice it
 * does not have), except on its first try by the worker that submitted that
 * put: the put is ahead of it in the same ring (or in pend_, in order), and
 * the writer applies a ring's intents in order, in one group or an earlier
 * one. So a spontaneous payment's settle commits in its placeholder's group
 * instead of waiting a commit round trip in pend_ (walked at every poll:
 * ~0.9% of the worker in a 1-shard profile). Should the put fail, the settle
 * is refused (AMP_ERR_NOTFOUND, or the group's error) and its retries wait
 * here as before. */
static int op_gated_(amp_worker_t *w, op_t *o) {
  if (o->retry_at_ms && o->retry_at_ms > w->now_ms) return 1;
  if (o->type == OP_SETTLE && o->inv && !LD(&o->inv->durable) &&
      (o->inv->put_by != w || o->retries))
    return 1;
  return 0;
}

/* Submits o to the store, or (test hook) fails it as a failed commit would:
 * nothing reaches the store and the op comes back with AMP_ERR_IO. */
static int store_submit_(amp_worker_t *w, op_t *o) {
  if (atomic_load_explicit(&w->e->test_fail, memory_order_relaxed) > 0 &&
      atomic_fetch_sub(&w->e->test_fail, 1) > 0) {
    o->in.status = AMP_ERR_IO;
    o->next = w->fake_done;
    w->fake_done = o;
    return AMP_OK;
  }
  return amp_store_submit(w->e->st, w->idx, &o->in);
}

/* Submits queued ops in order (skipping those gated); stops at a full ring. */
static void pend_flush_(amp_worker_t *w) {
  op_t **pp = &w->pend_head, *prev = NULL;
  while (*pp) {
    op_t *o = *pp;
    if (op_gated_(w, o)) {
      prev = o;
      pp = &o->next;
      continue;
    }
    int rc = store_submit_(w, o);
    if (rc != AMP_OK) {
      CNT(w, store_ring_full);
      break;
    }
    *pp = o->next;
    if (w->pend_tail == o) w->pend_tail = prev;
    w->n_pend--;
    w->n_sub++;
  }
}

static void op_submit_(amp_worker_t *w, op_t *o) {
  if (!w->pend_head && !op_gated_(w, o)) {
    if (store_submit_(w, o) == AMP_OK) {
      w->n_sub++;
      return;
    }
    CNT(w, store_ring_full);
  }
  pend_push_(w, o);
}

/* ---- answers ------------------------------------------------------------- */

static void emit_(amp_worker_t *w, const amp_engine_sink_t *sink, const htlc_t *h, long len) {
  if (len <= 0 || !sink || !sink->emit) return;
  sink->emit(sink->ctx, h->gateway_id, h->scid, h->cookie, w->out, (size_t)len);
}

static void emit_fail_msg_(amp_worker_t *w, const amp_engine_sink_t *sink, const htlc_t *h,
                           const uint8_t *msg, size_t len) {
  long n = amp_answer_fail(w->out, sizeof w->out, h->channel_id, h->htlc_id, h->ss, msg, len);
  emit_(w, sink, h, n);
  if (n > 0) CNT(w, answers_fail);
}

static void emit_malformed_(amp_worker_t *w, const amp_engine_sink_t *sink, const htlc_t *h,
                            const uint8_t sha[32], uint16_t code) {
  long n = amp_answer_malformed(w->out, sizeof w->out, h->channel_id, h->htlc_id, sha, code);
  emit_(w, sink, h, n);
  if (n > 0) CNT(w, answers_malformed);
}

static void emit_fulfill_(amp_worker_t *w, const amp_engine_sink_t *sink, const htlc_t *h,
                          const uint8_t pre[32]) {
  long n = amp_answer_fulfill(w->out, sizeof w->out, h->channel_id, h->htlc_id, pre);
  emit_(w, sink, h, n);
  amp_wipe(w->out, 32 + 2 + 32 + 8 + 8);
  if (n > 0) CNT(w, answers_fulfill);
}

/* Fails h (not held, or taken out of its set): the failure message msg is
 * committed, then answered. malformed: an update_fail_malformed_htlc with
 * code and msg = sha256_of_onion. */
static void fail_htlc_(amp_worker_t *w, htlc_t *h, const uint8_t *msg, size_t len, uint16_t code,
                       int malformed) {
  op_t *o = op_alloc_(w, OP_FAIL);
  if (!o) {
    /* out of memory: nothing recorded, nothing answered; a redelivery
     * gets a fresh try */
    CNT(w, overload_dropped);
    htlc_retire_(w, h);
    return;
  }
  ST(&h->state, (uint8_t)H_ANSWERING);
  o->h = h;
  o->in.kind = AMP_INTENT_FAIL;
  o->in.scid = h->scid;
  o->in.htlc_id = h->htlc_id;
  o->in.cltv_expiry = h->cltv_expiry;
  if (h->in_tag) {
    memcpy(o->in.onion_tag, h->tag, 16);
    o->in.has_onion_tag = 1;
  }
  o->in.fail_code = code;
  o->in.fail_malformed = (uint8_t)malformed;
  if (len > sizeof o->in.fail_msg) len = sizeof o->in.fail_msg;
  o->in.fail_msg_len = (uint16_t)len;
  memcpy(o->in.fail_msg, msg, len);
  op_submit_(w, o);
}

static void fail_details_(amp_worker_t *w, htlc_t *h) {
  uint8_t m[AMP_FAILURE_MSG_MAX];
  size_t n = amp_failure_msg_details(m, h->amount_msat, amp_engine_height(w->e));
  fail_htlc_(w, h, m, n, AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS, 0);
}

static void fail_code_(amp_worker_t *w, htlc_t *h, uint16_t code) {
  uint8_t m[2];
  size_t n = amp_failure_msg_code(m, code);
  fail_htlc_(w, h, m, n, code, 0);
}

/* ---- sets: completion and cancel ----------------------------------------- */

/* The key of a set in the store's set index (and its settle log). An AMP
 * set: its set_id. An MPP set: SHA256(tag || its invoice's preimage), not its
 * payment_hash: set_ids are chosen by senders and a payment_hash is public,
 * so with one key space anyone holding an MPP invoice could settle a
 * spontaneous AMP set under its hash first and make the invoice's own settle
 * a refused duplicate. Without the preimage no sender can name this key.
 * Cost: one SHA-256 compression, MPP only. */
static void store_set_id_(uint8_t out[32], uint8_t kind, const uint8_t key[32], const inv_t *inv) {
  static const char tag[] = "ampd mpp set id";
  if (kind == K_AMP || !inv || inv->rec.type != AMP_INVOICE_MPP) {
    memcpy(out, key, 32);
    return;
  }
  uint8_t m[sizeof tag - 1 + 32];
  memcpy(m, tag, sizeof tag - 1);
  memcpy(m + sizeof tag - 1, inv->rec.preimage, 32);
  amp_sha256(out, m, sizeof m);
  amp_wipe(m, sizeof m);
}

/* s is out of the set table: it goes back to its pool after a grace period
 * and lets go of its invoice (a placeholder may leave memory then). */
static void set_dead_(amp_worker_t *w, set_t *s) {
  inv_t *inv = s->inv;
  retire_(w, &s->limbo, set_free_limbo_);
  inv_release_(w->e, w, inv);
}

/* The outcome of s is durable: it leaves the table (the store's set index
 * answers for it from now on: see receive_) and goes back to its pool after
 * a grace period. Readers still holding it see it CLOSING. Cost: one
 * cds_lfht_del. */
static void set_done_(amp_worker_t *w, set_t *s) {
  cds_lfht_del(w->e->t_set, &s->k.node);
  set_dead_(w, s);
}

/* The outcome of s is not durable (the store gave up, or there was no
 * memory for the intent): a done record replaces it in the table. */
static void set_replace_done_(amp_worker_t *w, set_t *s, int cancelled, uint64_t settle_index,
                              uint64_t amount) {
  amp_engine_t *e = w->e;
  dset_t *d = calloc(1, sizeof *d);
  if (d) {
    d->k.kind = s->k.kind;
    d->k.live = 0;
    memcpy(d->k.key, s->k.key, 32);
    d->cancelled = (uint8_t)cancelled;
    d->inv = s->inv;
    memcpy(d->payment_addr, s->inv->rec.payment_addr, 32);
    d->settle_index = settle_index;
    d->amount_msat = amount;
    struct cds_lfht_iter it;
    setkey_t k = {s->k.kind, s->k.key};
    unsigned long hv = hash_set_(e, s->k.kind, s->k.key);
    cds_lfht_lookup(e->t_set, hv, match_set_, &k, &it);
    if (cds_lfht_iter_get_node(&it) != &s->k.node ||
        cds_lfht_replace(e->t_set, &it, hv, match_set_, &k, &d->k.node) != 0) {
      free(d); /* cannot happen: a closing set stays in the table */
      cds_lfht_del(e->t_set, &s->k.node);
    }
  } else {
    /* out of memory: keep the closed live record (never reopens) */
    ST(&s->state, (uint8_t)S_CLOSING);
    return;
  }
  retire_(w, &s->limbo, set_free_limbo_);
}

/* Fails every HTLC of a closed set s (reconstruction mismatch, invoice
 * cancelled): the set is recorded as cancelled, each HTLC's failure is
 * committed and then answered. */
static void set_cancel_(amp_worker_t *w, set_t *s) {
  /* the store's CANCEL_SET gives every HTLC one shared failure; ours differ
   * (htlc_msat), so: the set record with no HTLCs, then one FAIL per HTLC */
  op_t *o = op_alloc_(w, OP_CANCEL_SET);
  if (o) {
    o->s = s;
    o->inv = s->inv;
    o->in.kind = AMP_INTENT_CANCEL_SET;
    store_set_id_(o->in.set_id, s->k.kind, s->k.key, s->inv);
    memcpy(o->in.payment_addr, s->inv->rec.payment_addr, 32);
    o->in.amount_msat = s->sum_msat;
    o->in.n_htlcs = 0;
    o->in.htlcs = NULL;
    uint8_t m[2];
    o->in.fail_code = AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS;
    o->in.fail_msg_len = (uint16_t)amp_failure_msg_code(m, AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS);
    memcpy(o->in.fail_msg, m, 2);
    op_submit_(w, o);
  }
  for (htlc_t *h = s->head; h;) {
    htlc_t *nx = h->set_next;
    fail_details_(w, h);
    h = nx;
  }
  if (!o) {
    /* no memory for the set record: the HTLCs still fail durably */
    atomic_fetch_sub(&s->inv->closing, 1);
    set_replace_done_(w, s, 1, 0, 0);
  }
}

/* The settle intent of a verified set s: pre[i] is the preimage of its i-th
 * HTLC in s->head order (wiped here). */
static void set_settle_(amp_worker_t *w, set_t *s, uint8_t (*pre)[32]) {
  uint32_t n = s->n, i;
  unsigned cls = 0;
  op_t *o = op_alloc_(w, OP_SETTLE);
  amp_store_htlc_t *arr = o ? arr_get_(w, n, &cls) : NULL;
  if (!o || !arr) {
    if (o) op_free_(w, o);
    amp_wipe(pre, (size_t)n * 32);
    CNT(w, overload_dropped);
    set_cancel_(w, s);
    return;
  }
  o->s = s;
  o->inv = s->inv;
  o->arr = arr;
  o->arr_cls = cls;
  o->in.kind = AMP_INTENT_SETTLE;
  store_set_id_(o->in.set_id, s->k.kind, s->k.key, s->inv);
  memcpy(o->in.payment_addr, s->inv->rec.payment_addr, 32);
  o->in.amount_msat = s->sum_msat;
  o->in.n_htlcs = n;
  o->in.htlcs = arr;
  i = 0;
  for (htlc_t *h = s->head; h; h = h->set_next, i++) {
    amp_store_htlc_t *a = &arr[i];
    memset(a, 0, sizeof *a);
    a->scid = h->scid;
    a->htlc_id = h->htlc_id;
    a->amount_msat = h->amount_msat;
    a->cltv_expiry = h->cltv_expiry;
    a->child_index = h->child_index;
    memcpy(a->preimage, pre[i], 32);
    memcpy(a->onion_tag, h->tag, 16);
  }
  amp_wipe(pre, (size_t)n * 32);
  op_submit_(w, o);
}

/* Verifies the AMP sets queued by set_complete_ together (one
 * amp_child_verify_sets per group that fits the worker's arrays: the sets a
 * burst completes share SHA-256 batches, sixteen lanes on AVX-512; a 1-shard
 * set alone was three single SHA-NI compressions, ~150 ns), then settles
 * each, or cancels it on a mismatch. Called at the end of each burst
 * (amp_worker_process, amp_worker_process_peeled) and when the queue fills.
 * The sets wait S_CLOSING meanwhile, as they do for their commit. */
static void complete_flush_(amp_worker_t *w) {
  size_t m = w->e->cfg.max_htlcs_per_set;
  unsigned q = 0;
  while (q < w->ncq) {
    size_t len[BURST], tot = 0;
    int ok[BURST];
    unsigned r = q;
    while (r < w->ncq && tot + w->cq[r]->n <= m) { /* one set always fits: n <= m */
      set_t *s = w->cq[r];
      size_t i = tot;
      for (htlc_t *h = s->head; h; h = h->set_next, i++) {
        memcpy(w->v_share[i], h->share, 32);
        w->v_idx[i] = h->child_index;
        memcpy(w->v_hash[i], h->hash, 32);
      }
      len[r - q] = s->n;
      tot += s->n;
      r++;
    }
    amp_child_verify_sets(w->v_pre, (const uint8_t(*)[32])w->v_share, w->v_idx,
                          (const uint8_t(*)[32])w->v_hash, len, r - q, ok);
    amp_wipe(w->v_share, tot * 32);
    for (size_t j = 0, at = 0; j < r - q; at += len[j], j++) {
      if (ok[j]) {
        set_settle_(w, w->cq[q + j], w->v_pre + at);
      } else {
        CNT(w, child_mismatch);
        set_cancel_(w, w->cq[q + j]);
      }
    }
    q = r;
  }
  w->ncq = 0;
}

/* The set s just closed (this worker flipped it): an MPP set settles with
 * its invoice's preimage now; an AMP set is queued for complete_flush_. */
static void set_complete_(amp_worker_t *w, set_t *s) {
  CNT(w, sets_completed);
  if (s->k.kind == K_AMP) {
    w->cq[w->ncq++] = s;
    if (w->ncq == BURST) complete_flush_(w);
    return;
  }
  for (uint32_t i = 0; i < s->n; i++) memcpy(w->v_pre[i], s->inv->rec.preimage, 32);
  set_settle_(w, s, w->v_pre);
}

/* ---- arrival ------------------------------------------------------------- */

/* One HTLC after the peel, as both entry points see it. */
typedef struct {
  uint64_t amount_msat, rx_ns, cookie;
  uint32_t cltv_expiry;
  const uint8_t *payment_hash;
  const uint8_t *channel_id;
  int peel_err;
  uint16_t failure_code;
  const uint8_t *sha256_of_onion;
  const uint8_t *ss;
  int is_final;
  const uint8_t *payload;
  size_t payload_len;
  const uint8_t *tag;            /* 16 bytes when peel_err == OK or PAYLOAD */
  uint64_t tag_hash;             /* hash_tag_(cltv_expiry, tag) */
  uint64_t res_hint, rpl_hint;   /* the store's filter hints (amp_store_prefetch_*) */
  /* set by payload_ahead_: */
  const amp_payload_t *pl;       /* the final hop's payload, parsed when pl_rc == AMP_OK */
  int pl_rc;                     /* amp_payload_parse's result */
  uint64_t pl_bad;               /* its offending type */
  unsigned long set_hash;        /* hash_set_ of the set's key (AMP set_id, else payment_hash) */
  uint64_t addr_hash;            /* hash32_ of payment_addr */
  uint64_t set_hint, inv_hint;   /* AMP: the store's filter hints for set_id, payment_addr */
} arrival_t;

/* payload_ahead_: a peeled final hop's payload parsed once, before the
 * burst's arrive_ loop, with the keyed hashes receive_ needs; for an AMP
 * payload the lines receive_ may read for it start loading meanwhile: the
 * invoice index slot and the store's set and invoice filter blocks (for a
 * new set or a new payment_addr each is a cache miss once the store knows
 * many: amp_cbf_maybe's first load took ~1.4% of the worker in a profile of
 * 1-shard spontaneous payments over net_ring). Nothing else is read; pl may
 * hold a share: the caller wipes it. Cost: the parse, two keyed hashes, and
 * for AMP two more in the store (~20 ns each, their hints kept for
 * receive_). */
static void payload_ahead_(amp_engine_t *e, arrival_t *a, amp_payload_t *pl) {
  a->pl = pl;
  a->pl_bad = 0;
  a->pl_rc = AMP_ERR_PAYLOAD;
  if (a->peel_err != AMP_OK || !a->is_final) return;
  a->pl_rc = amp_payload_parse(pl, a->payload, a->payload_len, &a->pl_bad);
  if (a->pl_rc != AMP_OK) return;
  int is_amp = (pl->present & AMP_PAYLOAD_AMP) != 0;
  a->set_hash = hash_set_(e, is_amp ? K_AMP : K_MPP, is_amp ? pl->amp_set_id : a->payment_hash);
  a->addr_hash = hash32_(e, pl->payment_addr);
  if (!is_amp) return;
  amp_itab_prefetch(e->ix_addr, a->addr_hash);
  a->set_hint = amp_store_prefetch_set(e->st, pl->amp_set_id);
  a->inv_hint = amp_store_prefetch_invoice(e->st, pl->payment_addr);
}

/* Rule 8 for an AMP set_id not in the table: settled or cancelled durably? The
 * store's set filter first (lock-free, one cache line: a new set_id stops
 * there), its index under the read lock only on a "maybe" (done sets, and
 * ~1% false positives). MPP sets have other keys there (store_set_id_). */
static int set_durable_(amp_engine_t *e, const uint8_t id[32], uint64_t hint) {
  uint64_t idx;
  int cancelled;
  return amp_store_maybe_set_hint(e->st, hint) &&
         amp_store_set_find(e->st, id, &idx, &cancelled) == AMP_OK;
}

/* A new placeholder invoice for a spontaneous AMP payment to an addr neither
 * in memory nor in the store, held (inv_hold_; its INVOICE_PUT holds it too
 * until committed). gen: the eviction generation inv_get_ read before it
 * found none. Another worker's placeholder for the same addr, made
 * meanwhile, wins: that one, held. NULL: no memory, or that one was evicted
 * already, or a placeholder in addr's slice was evicted since gen (the caller
 * looks again: it may be in the store now). */
static inv_t *placeholder_(amp_worker_t *w, const amp_payload_t *pl, uint64_t ah, uint32_t gen) {
  amp_engine_t *e = w->e;
  inv_t *inv = inv_alloc_(w);
  if (!inv) return NULL;
  atomic_init(&inv->refs, 2u);
  memcpy(inv->rec.payment_addr, pl->payment_addr, 32);
  inv->rec.type = AMP_INVOICE_AMP;
  inv->rec.state = AMP_INVOICE_OPEN;
  inv->rec.placeholder = 1;
  inv->rec.value_msat = pl->total_msat;
  inv->rec.created = wall_now_(e);
  inv->rec.expiry = 30ull * 24 * 3600;
  inv->rec.cltv_delta = 0;
  inv->rec.add_index = atomic_fetch_add(&e->add_index, 1) + 1;
  snprintf(inv->rec.memo, sizeof inv->rec.memo, "spontaneous AMP");
  op_t *o = op_alloc_(w, OP_INV_PUT);
  if (!o) {
    inv_free_(inv);
    return NULL;
  }
  inv->put_by = w;
  inv_t *other = NULL;
  if (e->test_ph_hook) e->test_ph_hook(e->test_ph_ctx);
  /* another worker's, or raced an eviction or no memory (NULL) */
  if (inv_insert_(e, inv, ah, &gen, &other) != AMP_OK) {
    inv_free_(inv);
    op_free_(w, o);
    return other && inv_hold_(other) ? other : NULL;
  }
  CNT(w, placeholder_invoices);
  o->inv = inv;
  o->in.kind = AMP_INTENT_INVOICE_PUT;
  o->in.invoice = inv->rec;
  op_submit_(w, o);
  return inv;
}

/* Rules 2..9 for a final-hop HTLC whose payload parsed and passed rule 1 and
 * the final-hop checks. Holds h or fails it.
 * Cost (callgrind, 3-shard AMP sets, per HTLC): one keyed hash of the set key
 * (~130 instructions), one set lookup (~130), the invoice lookup for a set's
 * first shard only, one add_unique for a new set, the timer (~25); the set
 * completion (set_complete_) adds per HTLC 3 SHA-256 compressions (batched)
 * and ~370 instructions around them (amp_ct_eq, wipes: crypto/). */
static void receive_(amp_worker_t *w, htlc_t *h, const arrival_t *a, const amp_payload_t *pl) {
  amp_engine_t *e = w->e;
  uint32_t height = amp_engine_height(e);
  int is_amp = (pl->present & AMP_PAYLOAD_AMP) != 0;
  int has_mpp = (pl->present & AMP_PAYLOAD_MPP) != 0;
  inv_t *inv, *held = NULL; /* held: released at every exit */
  /* the set first (one lookup per HTLC, its keyed hash made by
   * payload_ahead_, reused below): a shard of a live AMP set takes that set's
   * invoice when the payment_addr matches, which is what the addr index would
   * return (the set holds it there), and skips the index lookup for every
   * shard but the first of a set */
  uint8_t kind = is_amp ? K_AMP : K_MPP;
  const uint8_t *sid = is_amp ? pl->amp_set_id : a->payment_hash;
  unsigned long shv = a->set_hash;
  skey_t *sk = set_find_h_(e, kind, sid, shv);

  /* rule 2. An AMP invoice is held (inv_hold_) until the end of this
   * function: a placeholder must not leave memory while it is checked and a
   * set made for it. */
  if (is_amp) {
    inv = NULL;
    if (sk && sk->live && memcmp(((set_t *)sk)->inv->rec.payment_addr, pl->payment_addr, 32) == 0 &&
        inv_hold_(((set_t *)sk)->inv))
      inv = ((set_t *)sk)->inv;
    uint64_t ah = a->addr_hash;
    for (int tries = 0; !inv && tries < 4; tries++) {
      int err;
      uint32_t gen;
      if ((inv = inv_get_(e, w, pl->payment_addr, ah, a->inv_hint, &w->c.placeholders_loaded,
                          &gen, &err)) != NULL)
        break;
      if (err != AMP_OK) {
        CNT(w, invoice_read_errors);
        goto fail;
      }
      if (!e->cfg.accept_amp) break;
      /* NULL: no memory, or evicted already, or raced an eviction (look again) */
      inv = placeholder_(w, pl, ah, gen);
    }
    if (!inv) {
      CNT(w, fail_no_invoice);
      goto fail;
    }
    held = inv;
  } else {
    /* by (payment_addr, payment_hash) as LND does: an AMP invoice's addr
     * without the AMP record is a type mismatch (rule 3) */
    inv = has_mpp ? inv_by_addr_h_(e, pl->payment_addr, a->addr_hash) : NULL;
    if (inv && inv->rec.type == AMP_INVOICE_MPP && memcmp(inv->rec.payment_hash, a->payment_hash, 32))
      inv = NULL;
    if (!inv) inv = inv_by_hash_(e, a->payment_hash);
    if (!inv) {
      CNT(w, fail_no_invoice);
      goto fail;
    }
  }
  /* rule 3 */
  if (is_amp != (inv->rec.type == AMP_INVOICE_AMP)) {
    CNT(w, fail_type_mismatch);
    goto fail;
  }
  /* rule 4 */
  if (LD(&inv->rec.state) != AMP_INVOICE_OPEN) {
    CNT(w, fail_invoice_not_open);
    goto fail;
  }
  if (inv->rec.created + inv->rec.expiry < wall_now_(e)) {
    CNT(w, fail_invoice_expired);
    goto fail;
  }
  /* rule 5 */
  if (!has_mpp || memcmp(pl->payment_addr, inv->rec.payment_addr, 32) != 0) {
    CNT(w, fail_payment_addr);
    goto fail;
  }
  if (pl->total_msat == 0 || pl->total_msat < inv->rec.value_msat) {
    CNT(w, fail_total_msat);
    goto fail;
  }
  /* rule 6 */
  if (sk && sk->live) {
    set_t *s = (set_t *)sk;
    if (s->inv == inv && s->total_msat != pl->total_msat) {
      CNT(w, fail_total_mismatch);
      goto fail;
    }
  }
  /* rule 7 */
  if ((uint64_t)h->cltv_expiry < (uint64_t)height + e->cfg.final_cltv_reject_delta) {
    CNT(w, fail_cltv_reject_delta);
    goto fail;
  }
  if ((uint64_t)h->cltv_expiry < (uint64_t)height + inv->rec.cltv_delta) {
    CNT(w, fail_cltv_invoice_delta);
    goto fail;
  }
  if (h->amount_msat < pl->amt_to_forward) {
    CNT(w, fail_amt_below_forward);
    goto fail;
  }
  if (h->cltv_expiry < pl->outgoing_cltv_value) {
    CNT(w, fail_cltv_below_outgoing);
    goto fail;
  }
  /* rule 8 (the set_id is no secret: a word test, not amp_ct_is_zero's
   * byte loop) */
  if (is_amp && (amp_siphash_load64(sid) | amp_siphash_load64(sid + 8) | amp_siphash_load64(sid + 16) | amp_siphash_load64(sid + 24)) == 0) {
    CNT(w, fail_set_id_zero);
    goto fail;
  }
  if (sk && !sk->live) {
    if (((dset_t *)sk)->inv != inv) CNT(w, fail_set_other_invoice);
    else CNT(w, fail_set_done);
    goto fail;
  }
  /* (an MPP set that is done has settled or cancelled its invoice: rule 4) */
  if (!sk && is_amp && set_durable_(e, sid, a->set_hint)) {
    CNT(w, fail_set_done); /* whichever invoice it paid: the store keeps no addr here */
    goto fail;
  }
  if (sk && ((set_t *)sk)->inv != inv) {
    CNT(w, fail_set_other_invoice);
    goto fail;
  }
  /* rule 9: limits, then hold */
  if (atomic_fetch_add(&e->held, 1) >= e->cfg.max_held_total) {
    atomic_fetch_sub(&e->held, 1);
    CNT(w, limit_held_total);
    goto fail;
  }
  gw_t *g = gw_cached_(w, h->gateway_id, &h->gw_slot);
  if (atomic_fetch_add(&g->held, 1) >= e->cfg.max_held_per_gateway) {
    atomic_fetch_sub(&g->held, 1);
    atomic_fetch_sub(&e->held, 1);
    CNT(w, limit_held_gateway);
    goto fail;
  }
  h->counted = 1;
  if (is_amp) {
    memcpy(h->share, pl->amp_share, 32);
    h->child_index = pl->amp_child_index;
  }
  memcpy(h->hash, a->payment_hash, 32);

  set_t *s;
  int complete = 0;
  /* the lookup above serves the first pass; a retry looks again */
  for (int pass = 0;; pass++) {
    if (pass) {
      sk = set_find_h_(e, kind, sid, shv);
      if (!sk && is_amp && set_durable_(e, sid, a->set_hint)) { /* it settled meanwhile */
        CNT(w, fail_set_done);
        goto fail_uncount;
      }
    }
    if (!sk) {
      set_t *ns = set_alloc_(w);
      if (!ns) {
        CNT(w, limit_set_pool);
        goto fail_uncount;
      }
      ns->k.kind = kind;
      memcpy(ns->k.key, sid, 32);
      ns->inv = inv;
      ns->total_msat = pl->total_msat;
      ns->state = S_OPEN;
      if (inv->rec.placeholder) atomic_fetch_add(&inv->refs, 1); /* the set's (we hold it) */
      struct cds_lfht_node *got =
          cds_lfht_add_unique(e->t_set, shv, match_set_, &(setkey_t){kind, sid}, &ns->k.node);
      if (got != &ns->k.node) {
        if (inv->rec.placeholder) atomic_fetch_sub(&inv->refs, 1); /* ours remains */
        pool_put_local(&w->sp, ns); /* never published */
        continue;
      }
      sk = &ns->k;
    }
    if (!sk->live) {
      if (((dset_t *)sk)->inv != inv) CNT(w, fail_set_other_invoice);
      else CNT(w, fail_set_done);
      goto fail_uncount;
    }
    s = (set_t *)sk;
    set_lock_(s);
    if (s->state == S_DEAD) {
      set_unlock_(s);
      continue;
    }
    int why = 0;
    if (s->state == S_CLOSING) why = 1;
    else if (s->inv != inv) why = 2;
    else if (s->total_msat != pl->total_msat) why = 3;
    else if (s->n >= e->cfg.max_htlcs_per_set) why = 4;
    else if (__atomic_load_n(&inv->rec.state, __ATOMIC_SEQ_CST) != AMP_INVOICE_OPEN) why = 5;
    if (why) {
      int dead = 0;
      if (s->state == S_OPEN && s->n == 0) { /* a set this worker just made */
        ST(&s->state, (uint8_t)S_DEAD);
        cds_lfht_del(e->t_set, &s->k.node);
        dead = 1;
      }
      set_unlock_(s);
      if (dead) set_dead_(w, s);
      switch (why) {
      case 1: CNT(w, fail_set_closing); break;
      case 2: CNT(w, fail_set_other_invoice); break;
      case 3: CNT(w, fail_total_mismatch); break;
      case 4: CNT(w, limit_set_htlcs); break;
      default: CNT(w, fail_invoice_not_open); break;
      }
      goto fail_uncount;
    }
    /* link at the tail is not needed: order is irrelevant; push front */
    h->set = s;
    h->set_next = s->head;
    if (s->head) s->head->set_pprev = &h->set_next;
    h->set_pprev = &s->head;
    s->head = h;
    s->n++;
    s->sum_msat += h->amount_msat;
    ST(&h->state, (uint8_t)H_HELD);
    if (s->sum_msat >= s->total_msat) {
      ST(&s->state, (uint8_t)S_CLOSING);
      for (htlc_t *x = s->head; x; x = x->set_next) ST(&x->state, (uint8_t)H_CLOSING);
      atomic_fetch_add(&inv->closing, 1);
      complete = 1;
    }
    set_unlock_(s);
    break;
  }
  CNT(w, held);
  amp_timer_add(&w->wheel, &h->timer, a->rx_ns / 1000000 + e->cfg.hold_timeout_ms);
  if (complete) set_complete_(w, s);
  if (held) inv_release_(e, w, held);
  return;

fail_uncount:
  atomic_fetch_sub(&e->held, 1);
  atomic_fetch_sub(&e->gw[h->gw_slot].held, 1);
  h->counted = 0;
fail:
  if (held) inv_release_(e, w, held);
  fail_details_(w, h);
}

/* Answers a redelivered HTLC from its committed resolution. */
static void answer_from_store_(amp_worker_t *w, htlc_t *h, const amp_store_resolution_t *r,
                               const amp_engine_sink_t *sink) {
  if (r->settled) {
    emit_fulfill_(w, sink, h, r->preimage);
  } else if (r->fail_malformed) {
    uint8_t sha[32] = {0};
    memcpy(sha, r->fail_msg, r->fail_msg_len < 32 ? r->fail_msg_len : 32);
    emit_malformed_(w, sink, h, sha, r->fail_code);
  } else if (h->has_ss) {
    emit_fail_msg_(w, sink, h, r->fail_msg, r->fail_msg_len);
  } else {
    CNT(w, redelivery_read_error); /* cannot wrap a failure without the secret */
    return;
  }
  CNT(w, redelivery_durable);
}

/* One HTLC after the peel. Cost per HTLC (callgrind, bench_engine overhead
 * mode, 3-shard AMP sets, SHA-256 left out because valgrind runs the portable
 * code instead of SHA-NI): ~2,900 instructions here including receive_, of
 * which the two add_unique (id, tag) ~560, the store's two filter probes
 * (amp_store_maybe_resolved / _replayed) ~370, amp_payload_parse ~590, the
 * child verification's non-SHA part ~370; the completion path (complete_,
 * htlc_retire_, set_replace_done_, emit_fulfill_) adds ~1,130. Whole engine
 * outside SHA-256: 4,733 instructions per HTLC (7,343 before the keyed hash
 * and lookup changes). */
/* Takes an HTLC in, before its peel: a pool entry with its identity,
 * published in the in-flight id table (so a redelivery of it, here or on
 * another worker, is seen from now on), and the store's resolution filter
 * block for it prefetched (read in arrive_, after the peel). NULL when it
 * repeats an HTLC in flight or the pool is empty (both counted): neither
 * costs a peel. Cost: one keyed hash (done by the caller), one add_unique. */
static htlc_t *admit_(amp_worker_t *w, uint64_t gateway_id, uint64_t scid, uint64_t htlc_id,
                      uint64_t id_hash, uint64_t *res_hint) {
  amp_engine_t *e = w->e;
  htlc_t *h = htlc_alloc_(w);
  if (!h) {
    CNT(w, overload_dropped);
    return NULL;
  }
  h->gateway_id = gateway_id;
  h->scid = scid;
  h->htlc_id = htlc_id;
  h->id_hash = id_hash;
  idkey_t ik = {scid, htlc_id};
  htlc_t *got = amp_inflight_add_unique(e->f_id, id_hash, match_id_, &ik, h);
  if (got != h) {
    if (got) CNT(w, redelivery_inflight);
    else CNT(w, overload_dropped); /* no room near its bucket: a hash is not uniform */
    ST(&h->state, (uint8_t)H_FREE);
    pool_put_local(&w->hp, h);
    return NULL;
  }
  *res_hint = amp_store_prefetch_resolved(e->st, scid, htlc_id);
  return h;
}

/* The rest of an admitted HTLC's arrival, after its peel. */
static void arrive_(amp_worker_t *w, htlc_t *h, const arrival_t *a, const amp_engine_sink_t *sink) {
  amp_engine_t *e = w->e;
  h->amount_msat = a->amount_msat;
  h->cookie = a->cookie;
  h->cltv_expiry = a->cltv_expiry;
  memcpy(h->channel_id, a->channel_id, 32);
  memcpy(h->hash, a->payment_hash, 32);
  if (a->ss) {
    memcpy(h->ss, a->ss, 32);
    h->has_ss = 1;
  }
  if (a->tag) memcpy(h->tag, a->tag, 16);
  /* answered and durable already? (checked after publishing: see the
   * redelivery argument in amp_engine.h) */
  if (amp_store_maybe_resolved_hint(e->st, a->res_hint)) {
    amp_store_resolution_t r;
    int rc = amp_store_resolution_get(e->st, w->idx, h->scid, h->htlc_id, &r);
    if (rc == AMP_OK) {
      answer_from_store_(w, h, &r, sink);
      amp_wipe(&r, sizeof r);
      htlc_retire_(w, h);
      return;
    }
    if (rc != AMP_ERR_NOTFOUND) {
      CNT(w, redelivery_read_error);
      htlc_retire_(w, h);
      return;
    }
  }
  if (a->peel_err != AMP_OK && a->peel_err != AMP_ERR_PAYLOAD) {
    CNT(w, malformed_onion);
    fail_htlc_(w, h, a->sha256_of_onion, 32, a->failure_code, 1);
    return;
  }
  /* the onion's tag: in flight elsewhere, or durable under another HTLC? */
  tagkey_t tk = {a->cltv_expiry, h->tag};
  h->tag_hash = a->tag_hash;
  htlc_t *other = amp_inflight_add_unique(e->f_tag, h->tag_hash, match_tag_, &tk, h);
  if (other != h) {
    if (other) CNT(w, replays);
    else CNT(w, overload_dropped);
    fail_details_(w, h);
    return;
  }
  h->in_tag = 1;
  if (amp_store_maybe_replayed_hint(e->st, a->rpl_hint)) {
    uint64_t s2 = 0, i2 = 0;
    if (amp_store_replay_get(e->st, a->cltv_expiry, h->tag, &s2, &i2) == AMP_OK &&
        (s2 != h->scid || i2 != h->htlc_id)) {
      CNT(w, replays);
      inflight_del_(e->f_tag, h->tag_hash, h); /* the tag is the other HTLC's */
      h->in_tag = 0;
      fail_details_(w, h);
      return;
    }
  }
  if (a->peel_err == AMP_ERR_PAYLOAD) {
    uint8_t m[16];
    CNT(w, invalid_payload);
    fail_htlc_(w, h, m, amp_failure_msg_invalid_payload(m, 0, 0), AMP_FAIL_INVALID_ONION_PAYLOAD,
               0);
    return;
  }
  if (!a->is_final) {
    CNT(w, forward_unsupported);
    fail_code_(w, h, AMP_FAIL_UNKNOWN_NEXT_PEER);
    return;
  }
  const amp_payload_t *pl = a->pl; /* parsed by payload_ahead_; the caller wipes it */
  uint64_t bad = a->pl_bad;
  if (a->pl_rc != AMP_OK) {
    uint8_t m[16];
    CNT(w, invalid_payload);
    fail_htlc_(w, h, m, amp_failure_msg_invalid_payload(m, bad, 0),
               AMP_FAIL_INVALID_ONION_PAYLOAD, 0);
    return;
  }
  /* rule 1 */
  if ((pl->present & AMP_PAYLOAD_AMP) && !(pl->present & AMP_PAYLOAD_MPP)) {
    CNT(w, fail_amp_without_mpp);
    fail_details_(w, h);
    return;
  }
  if (amp_payload_check_final(pl, &bad) != AMP_OK) {
    uint8_t m[16];
    CNT(w, invalid_payload);
    fail_htlc_(w, h, m, amp_failure_msg_invalid_payload(m, bad, 0),
               AMP_FAIL_INVALID_ONION_PAYLOAD, 0);
    return;
  }
  receive_(w, h, a, pl);
}

/* ---- entry points -------------------------------------------------------- */

/* Cost per update_add_htlc: decode, admit_ (one keyed hash, one add_unique
 * in the id table: a redelivery of an HTLC in flight is dropped before its
 * peel), the peel (crypto/: ~1.03x of pubkey parse + ECDH, measured by
 * bench_engine), the replay tag (one SHA-256 compression, batched), then
 * arrive_ (see there). The store filter blocks that arrive_ reads are
 * prefetched a burst ahead: before the peel (resolution) and before the
 * arrive_ loop (replay tag; and, with the payloads parsed then, the set and
 * invoice filters and the invoice index slot: payload_ahead_), so their
 * misses overlap. */
void amp_worker_process(amp_worker_t *w, const amp_engine_in_t *in, size_t n,
                        const amp_engine_sink_t *sink) {
  amp_engine_t *e = w->e;
  amp_msg_add_t m[BURST];
  const amp_engine_in_t *src[BURST];
  htlc_t *hs[BURST];
  const uint8_t *assoc[BURST], *onion[BURST];
  uint8_t tags[BURST][32];
  const uint8_t *tmsg[BURST];
  size_t tlen[BURST];
  uint64_t idh[BURST], tgh[BURST], rsh[BURST], rph[BURST];
  arrival_t arr[BURST];
  amp_payload_t pl[BURST];
  for (size_t base = 0; base < n; base += BURST) {
    size_t k = n - base < BURST ? n - base : BURST, na = 0, nd = 0;
    for (size_t i = 0; i < k; i++) {
      const amp_engine_in_t *x = &in[base + i];
      CNT(w, msgs_in);
      int t = amp_msg_type(x->msg, x->len);
      if (t == AMP_MSG_UPDATE_ADD_HTLC) {
        CNT(w, htlcs_in);
        if (amp_msg_add_decode(&m[nd], x->msg, x->len) != AMP_OK) {
          CNT(w, bad_msg);
          continue;
        }
        idh[nd] = hash_id_(e, x->scid, m[nd].id);
        amp_inflight_prefetch(e->f_id, idh[nd]);
        src[nd++] = x;
      } else if (t == AMP_MSG_UPDATE_FULFILL_HTLC || t == AMP_MSG_UPDATE_FAIL_HTLC ||
                 t == AMP_MSG_UPDATE_FAIL_MALFORMED_HTLC) {
        CNT(w, fwd_answers_ignored);
      } else if (t == AMP_MSG_TIP) {
        uint32_t hgt;
        if (amp_msg_tip_decode(&hgt, x->msg, x->len) == AMP_OK) {
          CNT(w, tips);
          uint32_t cur = atomic_load(&e->height);
          while (hgt > cur && !atomic_compare_exchange_weak(&e->height, &cur, hgt)) {
          }
        } else {
          CNT(w, bad_msg);
        }
      } else if (t < 0) {
        CNT(w, bad_msg);
      } else {
        CNT(w, unknown_msg);
      }
    }
    /* admit, the id table's lines on their way (compacting m, src) */
    for (size_t i = 0; i < nd; i++) {
      hs[na] = admit_(w, src[i]->gateway_id, src[i]->scid, m[i].id, idh[i], &rsh[na]);
      if (!hs[na]) continue;
      if (na != i) {
        m[na] = m[i];
        src[na] = src[i];
      }
      assoc[na] = m[na].payment_hash;
      onion[na] = m[na].onion;
      na++;
    }
    if (!na) continue;
    uint64_t curve_ns = amp_sphinx_peel_burst(w->hops, na, e->nk, assoc, onion);
    __atomic_store_n(&w->c.peel_curve_ns, w->c.peel_curve_ns + curve_ns, __ATOMIC_RELAXED);
    size_t nt = 0;
    for (size_t i = 0; i < na; i++) {
      amp_sphinx_hop_t *hp = &w->hops[i];
      if (hp->err == AMP_OK || hp->err == AMP_ERR_PAYLOAD) {
        tmsg[nt] = hp->shared_secret;
        tlen[nt] = 32;
        nt++;
      }
    }
    amp_sha256_batch(tags, tmsg, tlen, nt);
    nt = 0;
    for (size_t i = 0; i < na; i++)
      if (w->hops[i].err == AMP_OK || w->hops[i].err == AMP_ERR_PAYLOAD) {
        tgh[i] = hash_tag_(e, m[i].cltv_expiry, tags[nt]);
        amp_inflight_prefetch(e->f_tag, tgh[i]);
        rph[i] = amp_store_prefetch_replayed(e->st, m[i].cltv_expiry, tags[nt++]);
      }
    nt = 0;
    for (size_t i = 0; i < na; i++) {
      amp_sphinx_hop_t *hp = &w->hops[i];
      int ok = hp->err == AMP_OK || hp->err == AMP_ERR_PAYLOAD;
      arr[i] = (arrival_t){
          .amount_msat = m[i].amount_msat,
          .rx_ns = src[i]->rx_ns,
          .cookie = src[i]->cookie,
          .cltv_expiry = m[i].cltv_expiry,
          .payment_hash = m[i].payment_hash,
          .channel_id = m[i].channel_id,
          .peel_err = hp->err,
          .failure_code = hp->failure_code,
          .sha256_of_onion = hp->sha256_of_onion,
          .ss = ok ? hp->shared_secret : NULL,
          .is_final = hp->is_final,
          .payload = hp->payload,
          .payload_len = hp->payload_len,
          .tag = ok ? tags[nt++] : NULL,
          .tag_hash = ok ? tgh[i] : 0,
          .res_hint = rsh[i],
          .rpl_hint = ok ? rph[i] : 0,
      };
      payload_ahead_(e, &arr[i], &pl[i]);
    }
    for (size_t i = 0; i < na; i++) {
      amp_sphinx_hop_t *hp = &w->hops[i];
      arrive_(w, hs[i], &arr[i], sink);
      amp_wipe(hp->shared_secret, 32);
      if (hp->payload) amp_wipe((void *)(uintptr_t)hp->payload, hp->payload_len); /* the share */
    }
    complete_flush_(w);
    amp_wipe(tags, sizeof tags);
    amp_wipe(pl, na * sizeof pl[0]);
  }
}

void amp_worker_process_peeled(amp_worker_t *w, const amp_engine_peeled_t *in, size_t n,
                               const amp_engine_sink_t *sink) {
  for (size_t i = 0; i < n; i++) {
    uint8_t tag[32];
    CNT(w, msgs_in);
    CNT(w, htlcs_in);
    uint64_t res_hint;
    htlc_t *h = admit_(w, in[i].gateway_id, in[i].scid, in[i].htlc_id,
                       hash_id_(w->e, in[i].scid, in[i].htlc_id), &res_hint);
    if (!h) continue;
    amp_sha256(tag, in[i].shared_secret, 32);
    arrival_t a = {
        .amount_msat = in[i].amount_msat,
        .rx_ns = in[i].rx_ns,
        .cookie = in[i].cookie,
        .cltv_expiry = in[i].cltv_expiry,
        .payment_hash = in[i].payment_hash,
        .channel_id = in[i].channel_id,
        .peel_err = AMP_OK,
        .ss = in[i].shared_secret,
        .is_final = 1,
        .payload = in[i].payload,
        .payload_len = in[i].payload_len,
        .tag = tag,
        .tag_hash = hash_tag_(w->e, in[i].cltv_expiry, tag),
        .res_hint = res_hint,
        .rpl_hint = amp_store_prefetch_replayed(w->e->st, in[i].cltv_expiry, tag),
    };
    amp_payload_t pl;
    payload_ahead_(w->e, &a, &pl);
    arrive_(w, h, &a, sink);
    amp_wipe(&pl, sizeof pl);
  }
  complete_flush_(w);
}

/* ---- timers ---------------------------------------------------------------- */

typedef struct {
  amp_worker_t *w;
} fire_ctx_t;

static void on_timer_(void *ctx, amp_timer_node_t *node) {
  amp_worker_t *w = ((fire_ctx_t *)ctx)->w;
  htlc_t *h = container_of_(node, htlc_t, timer);
  if (LD(&h->state) != H_HELD) return; /* answered meanwhile: lazy cancel */
  set_t *s = h->set;
  set_lock_(s);
  if (LD(&h->state) != H_HELD || h->set != s || s->state != S_OPEN) {
    set_unlock_(s);
    return;
  }
  *h->set_pprev = h->set_next;
  if (h->set_next) h->set_next->set_pprev = h->set_pprev;
  h->set_next = NULL;
  h->set_pprev = NULL;
  s->n--;
  s->sum_msat -= h->amount_msat;
  ST(&h->state, (uint8_t)H_ANSWERING);
  int dead = 0;
  if (s->n == 0) {
    ST(&s->state, (uint8_t)S_DEAD);
    cds_lfht_del(w->e->t_set, &s->k.node);
    dead = 1;
  }
  set_unlock_(s);
  if (dead) set_dead_(w, s);
  CNT(w, timeouts);
  fail_code_(w, h, AMP_FAIL_MPP_TIMEOUT);
}

/* ---- completions ------------------------------------------------------------ */

static void give_up_(amp_worker_t *w, op_t *o, const amp_engine_sink_t *sink) {
  uint8_t m[2];
  amp_failure_msg_code(m, AMP_FAIL_TEMPORARY_NODE_FAILURE);
  switch (o->type) {
  case OP_FAIL:
    CNT(w, store_gave_up);
    if (o->in.fail_malformed) {
      uint8_t sha[32] = {0};
      memcpy(sha, o->in.fail_msg, 32);
      emit_malformed_(w, sink, o->h, sha, o->in.fail_code);
    } else {
      emit_fail_msg_(w, sink, o->h, m, 2);
    }
    htlc_retire_(w, o->h);
    break;
  case OP_SETTLE: {
    set_t *s = o->s;
    for (htlc_t *h = s->head; h;) {
      htlc_t *nx = h->set_next;
      CNT(w, store_gave_up);
      emit_fail_msg_(w, sink, h, m, 2);
      htlc_retire_(w, h);
      h = nx;
    }
    atomic_fetch_sub(&s->inv->closing, 1);
    set_replace_done_(w, s, 1, 0, 0);
    arr_put_(w, o->arr, o->arr_cls, o->in.n_htlcs);
    break;
  }
  case OP_CANCEL_SET:
    atomic_fetch_sub(&o->s->inv->closing, 1);
    set_replace_done_(w, o->s, 1, 0, 0);
    break;
  case OP_INV_PUT:
    ST(&o->inv->durable, (uint8_t)1); /* let its sets try; the store decides */
    inv_release_(w->e, w, o->inv);
    break;
  }
  op_free_(w, o);
}

/* A store completion. OP_SETTLE, per HTLC (callgrind): ~1,130 instructions:
 * emit_fulfill_ ~170, htlc_retire_ ~570, and per set set_replace_done_
 * (~970: calloc of the done record, one keyed hash, lookup + replace). */
static void complete_(amp_worker_t *w, op_t *o, const amp_engine_sink_t *sink) {
  amp_engine_t *e = w->e;
  if (o->in.status != AMP_OK) {
    CNT(w, store_errors);
    if (o->type == OP_FAIL && o->in.status == AMP_ERR_EXISTS) {
      /* resolved already (a race with a redelivery elsewhere): that answer */
      amp_store_resolution_t r;
      if (amp_store_resolution_get(e->st, w->idx, o->h->scid, o->h->htlc_id, &r) == AMP_OK)
        answer_from_store_(w, o->h, &r, sink);
      amp_wipe(&r, sizeof r);
      htlc_retire_(w, o->h);
      op_free_(w, o);
      return;
    }
    /* transient (I/O, map full): retry; a refusal (EXISTS, STATE, RANGE,
     * NOTFOUND) will not change: give up at once */
    int transient = o->in.status == AMP_ERR_IO || o->in.status == AMP_ERR_FULL ||
                    o->in.status == AMP_ERR_NOMEM ||
                    (o->in.status == AMP_ERR_NOTFOUND && o->type == OP_SETTLE);
    if (transient && o->retries < e->cfg.store_retry_max) {
      o->retries++;
      o->retry_at_ms = w->now_ms + (10ull << (o->retries - 1 < 7 ? o->retries - 1 : 7));
      CNT(w, store_retries);
      pend_push_(w, o);
      return;
    }
    give_up_(w, o, sink);
    return;
  }
  if (sink && sink->committed && o->t_ns && (o->type == OP_FAIL || o->type == OP_SETTLE)) {
    uint64_t now = amp_mono_ns(); /* the clock of t_ns (rx_ns and now_ns may be a caller's) */
    sink->committed(sink->ctx, now > o->t_ns ? now - o->t_ns : 0,
                    o->type == OP_FAIL ? 1 : o->in.n_htlcs);
  }
  switch (o->type) {
  case OP_FAIL: {
    htlc_t *h = o->h;
    if (o->in.fail_malformed) emit_malformed_(w, sink, h, o->in.fail_msg, o->in.fail_code);
    else emit_fail_msg_(w, sink, h, o->in.fail_msg, o->in.fail_msg_len);
    htlc_retire_(w, h);
    break;
  }
  case OP_SETTLE: {
    set_t *s = o->s;
    inv_t *inv = s->inv;
    uint32_t i = 0;
    for (htlc_t *h = s->head; h; i++) {
      htlc_t *nx = h->set_next;
      emit_fulfill_(w, sink, h, o->arr[i].preimage);
      CNT(w, htlcs_settled);
      htlc_retire_(w, h);
      h = nx;
    }
    __atomic_fetch_add(&inv->rec.amt_paid_msat, s->sum_msat, __ATOMIC_ACQ_REL);
    __atomic_fetch_add(&inv->rec.sets_settled, 1, __ATOMIC_ACQ_REL);
    if (inv->rec.type == AMP_INVOICE_MPP) ST(&inv->rec.state, (uint8_t)AMP_INVOICE_SETTLED);
    atomic_fetch_sub(&inv->closing, 1);
    CNT(w, sets_settled);
    set_done_(w, s);
    arr_put_(w, o->arr, o->arr_cls, o->in.n_htlcs);
    break;
  }
  case OP_CANCEL_SET:
    CNT(w, sets_cancelled);
    atomic_fetch_sub(&o->s->inv->closing, 1);
    set_done_(w, o->s);
    break;
  case OP_INV_PUT:
    /* the store numbers invoices */
    __atomic_store_n(&o->inv->rec.add_index, o->in.invoice.add_index, __ATOMIC_RELAXED);
    ST(&o->inv->durable, (uint8_t)1);
    inv_release_(e, w, o->inv);
    break;
  }
  op_free_(w, o);
}

/* Starts loading, for a batch of committed intents, the lines complete_
 * will touch: each op's tail, then its set or HTLC, then the in-flight
 * table slots (the deletes' buckets) of a failed HTLC or of a settled set's
 * head HTLC. Each pass issues its batch's independent loads together, so
 * their misses overlap instead of coming one op at a time. Measured in place (net_ring, 1-shard
 * sets, a random half of the batches with it, median cycles per completion
 * over batches of 8 or more, three runs): 377-414 against 406-481. */
static void complete_prefetch_(amp_worker_t *w, amp_store_intent_t *const *done, unsigned k) {
  amp_engine_t *e = w->e;
  for (unsigned i = 0; i < k; i++) __builtin_prefetch(&((op_t *)done[i]->cookie)->next);
  for (unsigned i = 0; i < k; i++) {
    op_t *o = done[i]->cookie;
    if (o->type == OP_SETTLE) __builtin_prefetch(o->s);
    else if (o->type == OP_FAIL) __builtin_prefetch(o->h);
  }
  for (unsigned i = 0; i < k; i++) {
    op_t *o = done[i]->cookie;
    htlc_t *h = o->type == OP_SETTLE ? o->s->head : o->type == OP_FAIL ? o->h : NULL;
    if (!h) continue;
    amp_inflight_prefetch(e->f_id, h->id_hash);
    if (h->in_tag) amp_inflight_prefetch(e->f_tag, h->tag_hash);
  }
}

size_t amp_worker_poll(amp_worker_t *w, uint64_t now_ns, const amp_engine_sink_t *sink) {
  amp_engine_t *e = w->e;
  uint64_t before = w->c.answers_fail + w->c.answers_fulfill + w->c.answers_malformed;
  w->now_ms = now_ns / 1000000;
  /* ops handed over by the admin (cancel requests) */
  op_t *in = mpsc_take_all(&w->inbox);
  while (in) {
    op_t *nx = in->next;
    if (in->type == OP_CANCEL_REQ) {
      CNT(w, invoice_cancel_fails);
      set_cancel_(w, in->s);
      free(in);
    }
    in = nx;
  }
  fire_ctx_t fc = {w};
  amp_timer_expire(&w->wheel, w->now_ms, on_timer_, &fc, 0);
  if (w->pend_head) pend_flush_(w);
  /* worker 0 keeps the store's replay log pruned to the height */
  uint32_t hgt = amp_engine_height(e);
  if (w->idx == 0 && hgt > w->pruned_height) {
    op_t *o = op_alloc_(w, OP_PRUNE);
    if (o) {
      w->pruned_height = hgt;
      o->in.kind = AMP_INTENT_PRUNE;
      o->in.height = hgt;
      op_submit_(w, o);
    }
  }
  while (w->fake_done) {
    op_t *o = w->fake_done;
    w->fake_done = o->next;
    w->n_sub--;
    complete_(w, o, sink);
  }
  amp_store_intent_t *done[64];
  unsigned k;
  while ((k = amp_store_poll(e->st, w->idx, done, 64)) > 0) {
    complete_prefetch_(w, done, k);
    for (unsigned i = 0; i < k; i++) {
      w->n_sub--;
      complete_(w, (op_t *)done[i]->cookie, sink);
    }
    if (w->pend_head) pend_flush_(w);
  }
  limbo_flush_(w);
  rcu_quiescent_state();
  return (size_t)(w->c.answers_fail + w->c.answers_fulfill + w->c.answers_malformed - before);
}

int amp_worker_idle(const amp_worker_t *w) {
  return w->n_pend == 0 && w->n_sub == 0 && !atomic_load(&w->inbox.top);
}

void amp_engine_test_fail_invoice_reads(amp_engine_t *e, unsigned n) {
  atomic_store(&e->test_fail_rd, (int64_t)n);
}

void amp_engine_test_before_placeholder(amp_engine_t *e, void (*fn)(void *ctx), void *ctx) {
  e->test_ph_ctx = ctx;
  e->test_ph_hook = fn;
}

void amp_engine_test_fail_commits(amp_engine_t *e, unsigned n) {
  atomic_store(&e->test_fail, (int64_t)n);
}

/* ---- frees through RCU ------------------------------------------------------ */


/* ---- 5. lifecycle ------------------------------------------------------------ */

static int rcu_enter_(void) {
  if (tls_rcu_registered) return 0;
  rcu_register_thread();
  tls_rcu_registered = -1;
  return 1;
}

static void rcu_leave_(int reg) {
  if (!reg) return;
  rcu_unregister_thread();
  tls_rcu_registered = 0;
}

/* Sleeps ~us without holding up RCU grace periods. */
static void rcu_sleep_(unsigned us) {
  int online = tls_rcu_registered != 0;
  if (online) rcu_thread_offline();
  usleep(us);
  if (online) rcu_thread_online();
}

typedef struct {
  amp_engine_t *e;
  int err;
  uint64_t max_add;
} rec_ctx_t;

static int rec_invoice_(void *ctx, const amp_store_invoice_t *r) {
  rec_ctx_t *c = ctx;
  inv_t *inv = calloc(1, sizeof *inv);
  if (!inv) {
    c->err = AMP_ERR_NOMEM;
    return 1;
  }
  inv->rec = *r;
  inv->durable = 1;
  if (r->add_index > c->max_add) c->max_add = r->add_index;
  if (r->placeholder) { /* unused now: the store keeps it (inv_get_) */
    inv_free_(inv);
    return 0;
  }
  inv_t *other;
  int rc = inv_insert_(c->e, inv, hash32_(c->e, inv->rec.payment_addr), NULL, &other);
  if (rc != AMP_OK) free(inv); /* a duplicate: the first one wins */
  if (rc == AMP_ERR_NOMEM) {
    c->err = rc;
    return 1;
  }
  return 0;
}

static int inv_free_cb_(void *obj, void *ctx) {
  (void)ctx;
  inv_free_(obj);
  return 0;
}

static void worker_free_(amp_worker_t *w) {
  if (!w) return;
  free(w->hp.base);
  free(w->sp.base);
  free(w->ip.base);
  free(w->ops);
  for (unsigned c = 0; c < ARR_CLASSES; c++) {
    arrhdr_t *h = w->arr_cache[c];
    while (h) {
      arrhdr_t *nx = h->next;
      free(h);
      h = nx;
    }
  }
  free(w->v_share);
  free(w->v_idx);
  free(w->v_hash);
  free(w->v_pre);
  free(w->hops);
  free(w->limbo_mem); /* every batch came back: amp_engine_delete's rcu_barrier */
  amp_timer_wheel_fini(&w->wheel);
  free(w);
}

/* Tables start at `expect` buckets (a power of two, at most 2^16: 1 MiB of
 * buckets), so that a worker does not wait on the resizes of a warming table,
 * and grow (CDS_LFHT_AUTO_RESIZE) in liburcu's call_rcu thread.
 * CDS_LFHT_ACCOUNTING stays, although it costs every add and del a
 * sched_getcpu and an atomic on a split counter (~4 per HTLC): without it the
 * table grows on chain length alone, and it did grow without bound in
 * bench_engine (cds_lfht_destroy and cds_lfht_next at 50% of the profile,
 * the engine 3x slower). */
static struct cds_lfht *table_new_(uint64_t expect) {
  unsigned long n = 1024;
  while (n < expect && n < (1ul << 16)) n <<= 1;
  return cds_lfht_new(n, 1024, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING, NULL);
}

int amp_engine_new(amp_engine_t **out, const amp_engine_cfg_t *cfg) {
  *out = NULL;
  if (!cfg || !cfg->store || cfg->workers == 0 || cfg->workers > 1024) return AMP_ERR_CONFIG;
  int rc = amp_secp_init();
  if (rc != AMP_OK) return rc;
  if (amp_secp_seckey_verify(cfg->node_key) != AMP_OK) return AMP_ERR_CONFIG;
  /* liburcu makes its default call_rcu thread on the first call_rcu, with
   * the cpuset of the thread that calls: a worker's, pinned to one CPU. That
   * thread (grace periods, the free callbacks of every HTLC and set) would
   * then preempt that worker. Made here, it has the creator's cpuset. */
  if (!get_default_call_rcu_data()) return AMP_ERR_NOMEM;
  amp_engine_t *e = calloc(1, sizeof *e);
  if (!e) return AMP_ERR_NOMEM;
  e->cfg = *cfg;
  memcpy(e->nk, cfg->node_key, 32);
  amp_wipe(e->cfg.node_key, 32);
  amp_engine_cfg_t *c = &e->cfg;
  if (!c->hold_timeout_ms) c->hold_timeout_ms = 120000;
  if (!c->final_cltv_reject_delta) c->final_cltv_reject_delta = 19;
  if (!c->max_htlcs_per_set) c->max_htlcs_per_set = 512;
  if (c->max_htlcs_per_set > (1u << (ARR_CLASSES - 1))) c->max_htlcs_per_set = 1u << (ARR_CLASSES - 1);
  if (!c->max_held_total) c->max_held_total = 1u << 20;
  if (!c->max_held_per_gateway) c->max_held_per_gateway = c->max_held_total;
  if (!c->pool_htlcs) {
    uint64_t p = c->max_held_total / c->workers + 4096;
    c->pool_htlcs = p > 0xffffffffu ? 0xffffffffu : (uint32_t)p;
  }
  if (!c->pool_sets) c->pool_sets = c->pool_htlcs;
  if (!c->pool_ops) c->pool_ops = 16384;
  if (!c->store_retry_max) c->store_retry_max = 8;
  e->st = cfg->store;
  pthread_mutex_init(&e->admin_mu, NULL);
  if ((rc = amp_random(&e->hk, sizeof e->hk)) != AMP_OK) goto fail;
  rc = AMP_ERR_NOMEM;
  uint64_t inflight = (uint64_t)c->pool_htlcs * c->workers;
  if (amp_inflight_new(&e->f_id, inflight) != AMP_OK ||
      amp_inflight_new(&e->f_tag, inflight) != AMP_OK)
    goto fail;
  /* live sets only (done ones are the store's): bounded by what is held, so
   * a small start keeps the buckets in cache (a 2^16 start cost ~0.3 us per
   * HTLC in cold bucket and dummy-node misses); it grows if sets pile up */
  e->t_set = table_new_(4096);
  e->t_hash = table_new_(0);
  if (!e->t_set || !e->t_hash || amp_itab_new(&e->ix_addr, 0) != AMP_OK) goto fail;
  e->w = calloc(c->workers, sizeof *e->w);
  if (!e->w) goto fail;
  for (unsigned i = 0; i < c->workers; i++) {
    amp_worker_t *w = aligned_alloc(64, (sizeof *w + 63) & ~(size_t)63);
    if (!w) goto fail;
    memset(w, 0, sizeof *w);
    e->w[i] = w;
    w->e = e;
    w->idx = i;
    if (pool_init(&w->hp, sizeof(htlc_t), offsetof(htlc_t, free_next), c->pool_htlcs) ||
        pool_init(&w->sp, sizeof(set_t), offsetof(set_t, free_next), c->pool_sets) ||
        pool_init(&w->ip, sizeof(inv_t), offsetof(inv_t, free_next),
                  c->pool_sets < PH_POOL_MAX ? c->pool_sets : PH_POOL_MAX))
      goto fail;
    w->op_cap = c->pool_ops;
    w->ops = calloc(c->pool_ops, sizeof *w->ops);
    size_t m = c->max_htlcs_per_set;
    w->v_share = malloc(m * 32);
    w->v_idx = malloc(m * sizeof *w->v_idx);
    w->v_hash = malloc(m * 32);
    w->v_pre = malloc(m * 32);
    w->hops = malloc(BURST * sizeof *w->hops);
    w->limbo_mem = calloc(LIMBO_HOLDERS, sizeof *w->limbo_mem);
    if (!w->ops || !w->v_share || !w->v_idx || !w->v_hash || !w->v_pre || !w->hops ||
        !w->limbo_mem)
      goto fail;
    for (unsigned k = 0; k < LIMBO_HOLDERS; k++) {
      w->limbo_mem[k].next_free = w->limbo_free;
      w->limbo_free = &w->limbo_mem[k];
    }
    if (amp_timer_wheel_init(&w->wheel, c->hold_timeout_ms, 0) != AMP_OK) goto fail;
  }
  /* recovery */
  {
    int reg = rcu_enter_();
    rec_ctx_t rc2 = {e, AMP_OK, 0};
    rc = amp_store_invoice_foreach(e->st, rec_invoice_, &rc2);
    if (rc == AMP_OK) rc = rc2.err;
    atomic_store(&e->add_index, rc2.max_add);
    rcu_leave_(reg);
    if (rc != AMP_OK) goto fail;
  }
  *out = e;
  return AMP_OK;
fail:
  amp_engine_delete(e);
  return rc;
}

amp_worker_t *amp_engine_worker(amp_engine_t *e, unsigned idx) {
  return idx < e->cfg.workers ? e->w[idx] : NULL;
}

void amp_worker_attach(amp_worker_t *w) {
  if (tls_rcu_registered == 0) rcu_register_thread();
  if (tls_rcu_registered < 0) tls_rcu_registered = 0; /* admin registration becomes ours */
  tls_rcu_registered++;
  w->attached = 1;
}

void amp_worker_detach(amp_worker_t *w) {
  w->attached = 0;
  if (tls_rcu_registered > 0 && --tls_rcu_registered == 0) rcu_unregister_thread();
}

/* Completes what the workers left in flight (no answers go out: the gateways
 * redeliver) so nothing the store still reads is freed. */
static void drain_(amp_engine_t *e) {
  uint64_t t0 = amp_mono_ns();
  for (unsigned i = 0; i < e->cfg.workers; i++) {
    amp_worker_t *w = e->w[i];
    if (!w) continue;
    while ((w->n_sub || w->n_pend) && amp_mono_ns() - t0 < 5000000000ull) {
      w->now_ms = amp_mono_ns() / 1000000;
      while (w->fake_done) {
        op_t *o = w->fake_done;
        w->fake_done = o->next;
        w->n_sub--;
        complete_(w, o, NULL);
      }
      if (w->pend_head) pend_flush_(w);
      amp_store_intent_t *done[64];
      unsigned k = amp_store_poll(e->st, i, done, 64);
      for (unsigned j = 0; j < k; j++) {
        w->n_sub--;
        complete_(w, (op_t *)done[j]->cookie, NULL);
      }
      if (!k) usleep(100);
    }
    /* whatever could not be submitted is simply dropped */
    while (w->pend_head) {
      op_t *o = w->pend_head;
      w->pend_head = o->next;
      if (o->arr) arr_put_(w, o->arr, o->arr_cls, o->in.n_htlcs);
      op_free_(w, o);
    }
    op_t *in = mpsc_take_all(&w->inbox);
    while (in) {
      op_t *nx = in->next;
      free(in);
      in = nx;
    }
  }
}

void amp_engine_delete(amp_engine_t *e) {
  if (!e) return;
  int reg = rcu_enter_();
  if (e->w) drain_(e);
  struct cds_lfht_iter it;
  struct cds_lfht_node *n;
  if (e->t_set) {
    cds_lfht_for_each(e->t_set, &it, n) {
      skey_t *sk = container_of_(n, skey_t, node);
      cds_lfht_del(e->t_set, n);
      if (!sk->live) free(sk); /* live sets live in the pools */
    }
  }
  if (e->t_hash) cds_lfht_for_each(e->t_hash, &it, n) cds_lfht_del(e->t_hash, n);
  if (e->ix_addr) amp_itab_for_each(e->ix_addr, inv_free_cb_, NULL);
  /* what the workers retired: to RCU, a batch per worker (when every holder
   * of one is in its grace period, the barrier brings them back) */
  if (e->w) {
    for (unsigned i = 0; i < e->cfg.workers; i++) {
      amp_worker_t *w = e->w[i];
      if (!w || !w->limbo) continue;
      limbo_flush_(w);
      if (w->limbo) {
        rcu_leave_(reg);
        if (tls_rcu_registered) rcu_thread_offline();
        rcu_barrier();
        if (tls_rcu_registered) rcu_thread_online();
        reg = rcu_enter_();
        limbo_flush_(w);
      }
    }
  }
  rcu_leave_(reg);
  if (reg || tls_rcu_registered == 0) rcu_barrier(); /* callbacks push into the pools */
  else {
    rcu_thread_offline();
    rcu_barrier();
    rcu_thread_online();
  }
  amp_inflight_delete(e->f_id);
  amp_inflight_delete(e->f_tag);
  if (e->t_set) cds_lfht_destroy(e->t_set, NULL);
  if (e->t_hash) cds_lfht_destroy(e->t_hash, NULL);
  amp_itab_delete(e->ix_addr);
  if (e->w) {
    for (unsigned i = 0; i < e->cfg.workers; i++) {
      amp_worker_t *w = e->w[i];
      if (w && w->hp.base) amp_wipe(w->hp.base, w->hp.esz * (size_t)w->hp.bump);
      worker_free_(w);
    }
    free(e->w);
  }
  pthread_mutex_destroy(&e->admin_mu);
  amp_wipe(e->nk, sizeof e->nk);
  amp_wipe(&e->hk, sizeof e->hk);
  free(e);
}

void amp_engine_set_height(amp_engine_t *e, uint32_t height) { atomic_store(&e->height, height); }

uint32_t amp_engine_height(const amp_engine_t *e) {
  return atomic_load_explicit(&((amp_engine_t *)e)->height, memory_order_relaxed);
}

static const char *const cnt_names_[] = {
#define CNT_NAME_(name, desc) #name,
    AMP_ENGINE_COUNTERS(CNT_NAME_)
#undef CNT_NAME_
};
static const char *const cnt_descs_[] = {
#define CNT_DESC_(name, desc) desc,
    AMP_ENGINE_COUNTERS(CNT_DESC_)
#undef CNT_DESC_
};
#define N_CNT (sizeof cnt_names_ / sizeof cnt_names_[0])

const char *amp_engine_counter_name(size_t i, const char **desc) {
  if (i >= N_CNT) return NULL;
  if (desc) *desc = cnt_descs_[i];
  return cnt_names_[i];
}

void amp_engine_stats(const amp_engine_t *e, amp_engine_stats_t *out) {
  memset(out, 0, sizeof *out);
  uint64_t *o = (uint64_t *)(void *)out;
  for (unsigned i = 0; i <= e->cfg.workers; i++) {
    const uint64_t *c = i < e->cfg.workers ? (const uint64_t *)(const void *)&e->w[i]->c
                                           : (const uint64_t *)(const void *)&e->ac;
    for (size_t k = 0; k < N_CNT; k++) o[k] += __atomic_load_n(&c[k], __ATOMIC_RELAXED);
  }
  out->held_now = atomic_load(&((amp_engine_t *)e)->held);
  out->height = amp_engine_height(e);
  out->invoices_now = amp_itab_count(e->ix_addr);
}

/* ---- admin ------------------------------------------------------------------- */

static int admin_begin_(amp_engine_t *e) {
  pthread_mutex_lock(&e->admin_mu);
  return rcu_enter_();
}

static void admin_end_(amp_engine_t *e, int reg) {
  rcu_leave_(reg);
  pthread_mutex_unlock(&e->admin_mu);
}

/* Commits one intent on the admin producer and waits for it. */
static int admin_commit_(amp_engine_t *e, amp_store_intent_t *in) {
  unsigned p = e->cfg.workers;
  in->cookie = in;
  uint64_t t0 = amp_mono_ns();
  while (amp_store_submit(e->st, p, in) != AMP_OK) {
    if (amp_mono_ns() - t0 > 10000000000ull) return AMP_ERR_FULL;
    rcu_sleep_(100);
  }
  for (;;) {
    amp_store_intent_t *d[8];
    unsigned k = amp_store_poll(e->st, p, d, 8);
    for (unsigned i = 0; i < k; i++)
      if (d[i] == in) return in->status;
    if (!k) rcu_sleep_(50);
  }
}

int amp_engine_invoice_add(amp_engine_t *e, const amp_invoice_add_t *req,
                           amp_store_invoice_t *out) {
  if (!req || (!req->amp && req->value_msat == 0)) return AMP_ERR_CONFIG;
  inv_t *inv = calloc(1, sizeof *inv);
  if (!inv) return AMP_ERR_NOMEM;
  amp_store_invoice_t *r = &inv->rec;
  int rc = amp_random(r->payment_addr, 32);
  if (rc != AMP_OK) {
    free(inv);
    return rc;
  }
  r->type = req->amp ? AMP_INVOICE_AMP : AMP_INVOICE_MPP;
  r->state = AMP_INVOICE_OPEN;
  if (!req->amp) {
    if (req->preimage) memcpy(r->preimage, req->preimage, 32);
    else if ((rc = amp_random(r->preimage, 32)) != AMP_OK) {
      free(inv);
      return rc;
    }
    amp_sha256(r->payment_hash, r->preimage, 32);
  }
  r->value_msat = req->value_msat;
  r->created = req->created ? req->created : wall_now_(e);
  r->expiry = req->expiry_s ? req->expiry_s : 30ull * 24 * 3600;
  r->cltv_delta = req->cltv_delta ? req->cltv_delta : 80;
  if (req->memo) snprintf(r->memo, sizeof r->memo, "%s", req->memo);
  int reg = admin_begin_(e);
  if (!req->amp && inv_by_hash_(e, r->payment_hash)) {
    rc = AMP_ERR_EXISTS;
    goto out;
  }
  r->add_index = atomic_fetch_add(&e->add_index, 1) + 1;
  amp_store_intent_t *in = calloc(1, sizeof *in);
  if (!in) {
    rc = AMP_ERR_NOMEM;
    goto out;
  }
  in->kind = AMP_INTENT_INVOICE_PUT;
  in->invoice = *r;
  rc = admin_commit_(e, in);
  if (rc == AMP_OK) r->add_index = in->invoice.add_index; /* the store numbers invoices */
  amp_wipe(in, sizeof *in);
  free(in);
  if (rc != AMP_OK) goto out;
  inv->durable = 1;
  inv_t *other;
  if ((rc = inv_insert_(e, inv, hash32_(e, r->payment_addr), NULL, &other)) != AMP_OK) goto out;
  if (out) *out = *r;
  inv = NULL;
out:
  admin_end_(e, reg);
  if (inv) {
    amp_wipe(inv, sizeof *inv);
    free(inv);
  }
  return rc;
}

int amp_engine_invoice_lookup_addr(amp_engine_t *e, const uint8_t addr[32],
                                   amp_store_invoice_t *out) {
  int reg = admin_begin_(e);
  int rc = AMP_OK;
  inv_t *inv = inv_by_addr_(e, addr);
  if (inv) inv_copy_(out, inv);
  else rc = amp_store_invoice_get(e->st, e->cfg.workers, addr, out); /* a placeholder out of memory */
  admin_end_(e, reg);
  return rc;
}

int amp_engine_invoice_lookup_hash(amp_engine_t *e, const uint8_t hash[32],
                                   amp_store_invoice_t *out) {
  int reg = admin_begin_(e);
  inv_t *inv = inv_by_hash_(e, hash);
  if (inv) inv_copy_(out, inv);
  admin_end_(e, reg);
  return inv ? AMP_OK : AMP_ERR_NOTFOUND;
}

/* The admin's list: the `max` invoices nearest to `offset` on the listed side
 * (above it; reversed: below it, 0 = no bound), kept in out as a heap whose
 * root is the farthest kept, while the store's invoices (and placeholders
 * whose INVOICE_PUT is not committed yet) go by. */
typedef struct {
  uint64_t offset;
  unsigned flags;
  amp_store_invoice_t *out;
  size_t n, max;
} inv_page_t;

/* a is farther from the offset than b (listed after it) */
static int inv_farther_(const inv_page_t *c, const amp_store_invoice_t *a,
                        const amp_store_invoice_t *b) {
  return c->flags & AMP_INVOICE_LIST_REVERSED ? a->add_index < b->add_index
                                              : a->add_index > b->add_index;
}

static void inv_swap_(amp_store_invoice_t *a, amp_store_invoice_t *b) {
  amp_store_invoice_t t = *a;
  *a = *b;
  *b = t;
  amp_wipe(&t, sizeof t); /* an MPP invoice's preimage */
}

static int inv_page_add_(void *ctx, const amp_store_invoice_t *r) {
  inv_page_t *c = ctx;
  amp_store_invoice_t *v = c->out;
  if (c->flags & AMP_INVOICE_LIST_REVERSED ? c->offset && r->add_index >= c->offset
                                           : r->add_index <= c->offset)
    return 0;
  if ((c->flags & AMP_INVOICE_LIST_OPEN) && r->state != AMP_INVOICE_OPEN) return 0;
  size_t i;
  if (c->n < c->max) {
    v[i = c->n++] = *r;
    for (; i && inv_farther_(c, &v[i], &v[(i - 1) / 2]); i = (i - 1) / 2)
      inv_swap_(&v[i], &v[(i - 1) / 2]);
    return 0;
  }
  if (!inv_farther_(c, &v[0], r)) return 0;
  v[0] = *r;
  for (i = 0;;) {
    size_t l = 2 * i + 1, m = i;
    if (l < c->n && inv_farther_(c, &v[l], &v[m])) m = l;
    if (l + 1 < c->n && inv_farther_(c, &v[l + 1], &v[m])) m = l + 1;
    if (m == i) break;
    inv_swap_(&v[i], &v[m]);
    i = m;
  }
  return 0;
}

static int inv_page_pending_(void *obj, void *ctx) {
  const inv_t *inv = obj;
  const inv_page_t *c = ctx;
  if (!LD(&inv->durable)) {
    /* committed but not yet seen so by its worker: the store's copy is in */
    for (size_t i = 0; i < c->n; i++)
      if (memcmp(c->out[i].payment_addr, inv->rec.payment_addr, 32) == 0) return 0;
    amp_store_invoice_t r;
    inv_copy_(&r, inv);
    inv_page_add_(ctx, &r);
    amp_wipe(&r, sizeof r);
  }
  return 0;
}

static int cmp_add_(const void *a, const void *b) {
  const amp_store_invoice_t *x = a, *y = b;
  return x->add_index < y->add_index ? -1 : x->add_index > y->add_index;
}

size_t amp_engine_invoice_list(amp_engine_t *e, uint64_t offset, unsigned flags,
                               amp_store_invoice_t *out, size_t max) {
  if (!max) return 0;
  int reg = admin_begin_(e);
  inv_page_t c = {offset, flags, out, 0, max};
  size_t got = 0;
  /* the store has every committed invoice, as fresh as memory or fresher
   * (a settle updates it at its commit); placeholders need not be in
   * memory */
  if (amp_store_invoice_foreach(e->st, inv_page_add_, &c) == AMP_OK) {
    amp_itab_for_each(e->ix_addr, inv_page_pending_, &c);
    qsort(out, c.n, sizeof *out, cmp_add_);
    got = c.n;
  }
  admin_end_(e, reg);
  return got;
}

int amp_engine_invoice_cancel(amp_engine_t *e, const uint8_t addr[32]) {
  int reg = admin_begin_(e);
  int rc = AMP_OK;
  /* held: a placeholder out of memory comes back for the cancel, so that
   * no worker reads an older copy from the store meanwhile */
  inv_t *inv = inv_get_(e, NULL, addr, hash32_(e, addr), amp_store_prefetch_invoice(e->st, addr),
                        &e->ac.placeholders_loaded, NULL, &rc);
  if (!inv) {
    if (rc == AMP_OK) rc = AMP_ERR_NOTFOUND;
    goto out;
  }
  uint8_t open = AMP_INVOICE_OPEN;
  if (!__atomic_compare_exchange_n(&inv->rec.state, &open, (uint8_t)AMP_INVOICE_CANCELED, 0,
                                   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    rc = AMP_ERR_STATE;
    goto out;
  }
  /* cancel every set of it still collecting; their owners answer */
  struct cds_lfht_iter it;
  struct cds_lfht_node *nd;
  cds_lfht_for_each(e->t_set, &it, nd) {
    skey_t *sk = container_of_(nd, skey_t, node);
    if (!sk->live) continue;
    set_t *s = (set_t *)sk;
    if (s->inv != inv) continue;
    int dead = 0;
    op_t *req = NULL;
    set_lock_(s);
    if (s->state == S_OPEN) {
      if (s->n == 0) {
        ST(&s->state, (uint8_t)S_DEAD);
        cds_lfht_del(e->t_set, &s->k.node);
        dead = 1;
      } else if ((req = calloc(1, sizeof *req)) != NULL) {
        ST(&s->state, (uint8_t)S_CLOSING);
        for (htlc_t *x = s->head; x; x = x->set_next) ST(&x->state, (uint8_t)H_CLOSING);
        atomic_fetch_add(&inv->closing, 1);
        req->type = OP_CANCEL_REQ;
        req->from_malloc = 1;
        req->s = s;
      }
    }
    set_unlock_(s);
    if (dead) {
      call_rcu(&s->rcu, set_free_cb_);
      inv_release_(e, NULL, inv); /* the set's: ours remains */
    }
    if (req) mpsc_push(&s->ow->inbox, req, (void **)&req->next);
  }
  /* sets already settling finish; the store's update keeps its own
   * amt_paid_msat and sets_settled, so this write loses none of theirs */
  amp_store_intent_t *in = calloc(1, sizeof *in);
  if (!in) {
    rc = AMP_ERR_NOMEM;
    goto out;
  }
  in->kind = AMP_INTENT_INVOICE_PUT;
  inv_copy_(&in->invoice, inv);
  rc = admin_commit_(e, in);
  amp_wipe(in, sizeof *in);
  free(in);
out:
  if (inv) inv_release_(e, NULL, inv);
  admin_end_(e, reg);
  return rc;
}

static void set_info_(amp_set_info_t *o, const skey_t *sk) {
  memset(o, 0, sizeof *o);
  memcpy(o->set_id, sk->key, 32);
  o->is_amp = sk->kind == K_AMP;
  if (sk->live) {
    const set_t *s = (const set_t *)sk;
    memcpy(o->payment_addr, s->inv->rec.payment_addr, 32);
    o->state = LD(&s->state) == S_OPEN ? AMP_SET_COLLECTING : AMP_SET_SETTLING;
    o->n_htlcs = s->n;
    o->amount_msat = s->sum_msat;
    o->total_msat = s->total_msat;
  } else {
    const dset_t *d = (const dset_t *)sk;
    memcpy(o->payment_addr, d->payment_addr, 32);
    o->state = d->cancelled ? AMP_SET_CANCELLED : AMP_SET_SETTLED;
    o->amount_msat = d->amount_msat;
    o->settle_index = d->settle_index;
  }
}

/* A durable set as the admin sees it, from its settle log record. AMP or
 * MPP: the invoice's type (AMP when the invoice is unknown). */
static void set_info_log_(amp_engine_t *e, amp_set_info_t *o, const amp_store_set_t *st) {
  memset(o, 0, sizeof *o);
  memcpy(o->payment_addr, st->payment_addr, 32);
  const inv_t *inv = inv_by_addr_(e, st->payment_addr);
  o->is_amp = !(inv && inv->rec.type == AMP_INVOICE_MPP);
  /* an MPP set is named by its payment_hash (the log holds store_set_id_) */
  memcpy(o->set_id, o->is_amp ? st->set_id : inv->rec.payment_hash, 32);
  o->state = st->cancelled ? AMP_SET_CANCELLED : AMP_SET_SETTLED;
  o->amount_msat = st->cancelled ? 0 : st->amount_msat;
  o->settle_index = st->settle_index;
}

/* Reading the settle log for the admin: sets from an index on, each one
 * kept (matching payment_addr, if addr) into out until max. */
typedef struct {
  amp_engine_t *e;
  const uint8_t *addr;           /* NULL: every set */
  amp_set_info_t *out;
  size_t max, got;
} log_read_t;

static int log_read_cb_(void *ctx, const amp_store_set_t *st) {
  log_read_t *c = ctx;
  if (c->got >= c->max) return 1;
  if (c->addr && memcmp(st->payment_addr, c->addr, 32) != 0) return 0;
  set_info_log_(c->e, &c->out[c->got++], st);
  return c->got >= c->max;
}

int amp_engine_set_lookup(amp_engine_t *e, const uint8_t id[32], amp_set_info_t *out) {
  int reg = admin_begin_(e);
  int rc = AMP_OK;
  skey_t *sk = set_find_(e, K_AMP, id);
  if (!sk) sk = set_find_(e, K_MPP, id);
  if (sk) {
    set_info_(out, sk);
  } else {
    /* an AMP set by its set_id, else an MPP set through its invoice */
    uint64_t idx;
    int cancelled;
    rc = amp_store_set_find(e->st, id, &idx, &cancelled);
    const inv_t *mpp = rc == AMP_OK ? NULL : inv_by_hash_(e, id);
    if (mpp && mpp->rec.type == AMP_INVOICE_MPP) {
      uint8_t key[32];
      store_set_id_(key, K_MPP, id, mpp);
      rc = amp_store_set_find(e->st, key, &idx, &cancelled);
    }
    if (rc == AMP_OK) {
      log_read_t c = {e, NULL, out, 1, 0};
      rc = amp_store_set_foreach(e->st, idx, log_read_cb_, &c);
      if (rc == AMP_OK && (c.got != 1 || memcmp(out->set_id, id, 32) != 0)) rc = AMP_ERR_IO;
    }
  }
  admin_end_(e, reg);
  return rc;
}

size_t amp_engine_set_list(amp_engine_t *e, size_t skip, amp_set_info_t *out, size_t max) {
  int reg = admin_begin_(e);
  size_t i = 0, got = 0;
  struct cds_lfht_iter it;
  struct cds_lfht_node *nd;
  cds_lfht_for_each(e->t_set, &it, nd) {
    if (got >= max) break;
    if (i++ < skip) continue;
    set_info_(&out[got++], container_of_(nd, skey_t, node));
  }
  /* then the durable ones: the settle log's indexes run 1, 2, ... */
  if (got < max) {
    log_read_t c = {e, NULL, out + got, max - got, 0};
    uint64_t from = 1 + (skip > i ? skip - i : 0);
    if (amp_store_set_foreach(e->st, from, log_read_cb_, &c) == AMP_OK) got += c.got;
  }
  admin_end_(e, reg);
  return got;
}

typedef struct {
  size_t skip, max, seen, got;
  amp_held_info_t *out;
} held_ctx_t;

static void held_one_(void *obj, void *ctx) {
  held_ctx_t *c = ctx;
  const htlc_t *h = obj;
  if (c->got >= c->max || LD(&h->state) != H_HELD) return;
  if (c->seen++ < c->skip) return;
  amp_held_info_t *o = &c->out[c->got++];
  memset(o, 0, sizeof *o);
  o->gateway_id = h->gateway_id;
  o->scid = h->scid;
  o->htlc_id = h->htlc_id;
  o->amount_msat = h->amount_msat;
  o->cltv_expiry = h->cltv_expiry;
  set_t *s = h->set;
  if (s) memcpy(o->set_id, s->k.key, 32);
  o->deadline_ms = h->timer.deadline_ms;
  o->child_index = h->child_index;
}

size_t amp_engine_held_list(amp_engine_t *e, size_t skip, amp_held_info_t *out, size_t max) {
  int reg = admin_begin_(e);
  held_ctx_t c = {skip, max, 0, 0, out};
  amp_inflight_for_each(e->f_id, held_one_, &c);
  admin_end_(e, reg);
  return c.got;
}

size_t amp_engine_set_table_size(amp_engine_t *e) {
  int reg = admin_begin_(e);
  long before = 0, after = 0;
  unsigned long n = 0;
  cds_lfht_count_nodes(e->t_set, &before, &n, &after);
  admin_end_(e, reg);
  return (size_t)n;
}

size_t amp_engine_invoice_sets(amp_engine_t *e, const uint8_t addr[32], amp_set_info_t *out,
                               size_t max) {
  int reg = admin_begin_(e);
  size_t got = 0;
  struct cds_lfht_iter it;
  struct cds_lfht_node *nd;
  cds_lfht_for_each(e->t_set, &it, nd) {
    if (got >= max) break;
    const skey_t *sk = container_of_(nd, skey_t, node);
    const uint8_t *pa = sk->live ? ((const set_t *)sk)->inv->rec.payment_addr
                                 : ((const dset_t *)sk)->payment_addr;
    if (memcmp(pa, addr, 32) == 0) set_info_(&out[got++], sk);
  }
  if (got < max) {
    /* the invoice's chain in the store: newest first, then turned around */
    log_read_t c = {e, addr, out + got, max - got, 0};
    int rc = amp_store_invoice_sets(e->st, addr, log_read_cb_, &c);
    if (rc == AMP_OK) {
      for (size_t i = 0, j = c.got; i + 1 < j; i++, j--) {
        amp_set_info_t t = c.out[i];
        c.out[i] = c.out[j - 1];
        c.out[j - 1] = t;
      }
    } else if (rc == AMP_ERR_STATE) { /* an invoice from before the chain */
      c.got = 0;
      if (amp_store_set_foreach(e->st, 1, log_read_cb_, &c) != AMP_OK) c.got = 0;
    } else {
      c.got = 0;
    }
    got += c.got;
  }
  admin_end_(e, reg);
  return got;
}

int amp_engine_worker_stats(const amp_engine_t *e, unsigned idx, amp_engine_stats_t *out) {
  if (idx > e->cfg.workers) return AMP_ERR_RANGE;
  memset(out, 0, sizeof *out);
  uint64_t *o = (uint64_t *)(void *)out;
  const uint64_t *c = idx < e->cfg.workers ? (const uint64_t *)(const void *)&e->w[idx]->c
                                           : (const uint64_t *)(const void *)&e->ac;
  for (size_t k = 0; k < N_CNT; k++) o[k] = __atomic_load_n(&c[k], __ATOMIC_RELAXED);
  out->held_now = atomic_load(&((amp_engine_t *)e)->held);
  out->height = amp_engine_height(e);
  out->invoices_now = amp_itab_count(e->ix_addr);
  return AMP_OK;
}
