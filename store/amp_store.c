/* amp_store.c: LMDB environment, record codecs, the group-commit writer,
 * recovery and the read paths. See amp_store.h for the contract and the
 * schema, amp_index.h for the in-memory indexes, amp_ring.h for the rings. */
#include "amp_store.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "amp_index.h"
#include "amp_ring.h"

#define DEF_MAP_SIZE (1ull << 30)
#define DEF_GROUP_MAX 512u
#define DEF_GROUP_USEC 200u
#define DEF_RING_SIZE 8192u
#define DEF_FILTER_ENTRIES (1ull << 20)
#define MAX_GROUP 65536u
#define IDLE_SPINS 256
#define IDLE_SLEEP_MS 20          /* futex wait bound: a safety net only */
#define IDLE_NAP_FIRST_NS 10000ll /* idle: naps of 10, 20 .. 640 us before the futex */
#define IDLE_NAP_LAST_NS 640000ll
#define HANDBACK_WAIT_NS 50000ll  /* sleep while a completion ring is full */
#define HANDBACK_STOP_NS 100000000ll
#define GROUP_POLL_NS 20000ll     /* sleep between looks while a group fills */

/* --- records ---------------------------------------------------------------
 * All integers big-endian. LMDB values are not aligned: byte access only.
 *
 * set (settles):  0 u8 format 2 | 1 u8 flags (1: cancelled) | 2 u16 fail_code
 *   | 4 u32 n_htlcs | 8 u64 time_ns | 16 set_id[32] | 48 payment_addr[32]
 *   | 80 u64 amount_msat | 88 u8 fail_malformed | 89 u8 fail_msg_len
 *   | 90 u16 0 | 92 u32 base | 96 u64 prev | 104 fail_msg[len] | n x htlc
 *   (80 bytes: scid, htlc_id, amount u64; cltv, child_index u32;
 *   preimage[32]; onion_tag[16]). prev: the settle index of the same
 *   invoice's set before this one (0: none), the chain
 *   amp_store_invoice_sets walks. Format 1 (stores written before the
 *   chain): no prev, fail_msg at 96.
 * fail (fails):   0 u8 format 1 | 1 u8 flags (1: has tag, 2: malformed)
 *   | 2 u16 fail_code | 4 u32 cltv | 8 u64 scid | 16 u64 htlc_id
 *   | 24 tag[16] | 40 u8 msg_len | 41 u32 base | 45 msg[len]
 * base: the prune height when the record was written, for keep_of().
 * invoice:        0 u8 format 2 | 1 type | 2 state | 3 placeholder
 *   | 4 u32 cltv_delta | 8 u32 sets_settled | 12 u32 flags (1: chained)
 *   | 16 u64 value | 24 u64 amt_paid | 32 u64 created | 40 u64 expiry
 *   | 48 u64 add_index | 56 payment_addr[32] | 88 payment_hash[32]
 *   | 120 preimage[32] | 152 u8 memo_len | 153 u64 last_set | 161 memo[len]
 *   last_set: its newest set's settle index (0: none); chained: every set of
 *   it is on the chain (it was made after the chain was). Format 1: neither,
 *   memo at 153.
 */
#define REC_FORMAT 1             /* fail records */
#define REC_FORMAT_CHAIN 2       /* set and invoice records */
#define SET_HDR1 96
#define SET_HDR 104
#define SET_HTLC 80
#define FAIL_HDR 45
#define INV_HDR1 153
#define INV_HDR 161
#define INV_CHAINED 1u

/* How long an HTLC's resolution and replay entry are kept: until its
 * cltv_expiry, but at most AMP_STORE_CLTV_MAX_AHEAD blocks past the prune
 * height at the time it was written (base; 0: unknown, no cap). cltv_expiry
 * comes from a peer: without the cap an absurd one would pin its entry in
 * memory and stop the fail log's prefix delete forever. */
static uint32_t keep_of(uint32_t cltv, uint32_t base) {
  if (base && cltv > base && cltv - base > AMP_STORE_CLTV_MAX_AHEAD)
    return base + AMP_STORE_CLTV_MAX_AHEAD;
  return cltv;
}

static size_t set_rec_len(size_t hdr, uint32_t n, unsigned msg_len) {
  return hdr + msg_len + (size_t)n * SET_HTLC;
}

static void set_rec_encode(uint8_t *p, const amp_store_intent_t *in, int cancelled,
                           uint64_t time_ns, uint32_t base, uint64_t prev) {
  unsigned ml = cancelled ? in->fail_msg_len : 0;
  p[0] = REC_FORMAT_CHAIN;
  p[1] = cancelled ? 1 : 0;
  amp_put_be16(p + 2, cancelled ? in->fail_code : 0);
  amp_put_be32(p + 4, in->n_htlcs);
  amp_put_be64(p + 8, time_ns);
  memcpy(p + 16, in->set_id, 32);
  memcpy(p + 48, in->payment_addr, 32);
  amp_put_be64(p + 80, in->amount_msat);
  p[88] = cancelled ? in->fail_malformed : 0;
  p[89] = (uint8_t)ml;
  amp_put_be16(p + 90, 0);
  amp_put_be32(p + 92, base);
  amp_put_be64(p + 96, prev);
  memcpy(p + SET_HDR, in->fail_msg, ml);
  uint8_t *h = p + SET_HDR + ml;
  for (uint32_t i = 0; i < in->n_htlcs; i++, h += SET_HTLC) {
    const amp_store_htlc_t *x = &in->htlcs[i];
    amp_put_be64(h, x->scid);
    amp_put_be64(h + 8, x->htlc_id);
    amp_put_be64(h + 16, x->amount_msat);
    amp_put_be32(h + 24, x->cltv_expiry);
    amp_put_be32(h + 28, x->child_index);
    if (cancelled) memset(h + 32, 0, 32);
    else memcpy(h + 32, x->preimage, 32);
    memcpy(h + 64, x->onion_tag, 16);
  }
}

/* A decoded set record header; htlcs stay encoded at hp. */
typedef struct {
  uint8_t cancelled, fail_malformed, fail_msg_len;
  uint16_t fail_code;
  uint32_t n, base;
  uint64_t time_ns, amount, prev;   /* prev: 0 in format 1 */
  const uint8_t *set_id, *payment_addr, *fail_msg, *hp;
} set_view_t;

static int set_rec_view(set_view_t *v, const uint8_t *p, size_t len) {
  size_t hdr = len >= 1 && p[0] == REC_FORMAT_CHAIN ? SET_HDR : SET_HDR1;
  if (len < hdr || (p[0] != REC_FORMAT_CHAIN && p[0] != REC_FORMAT)) return AMP_ERR_IO;
  v->cancelled = p[1] & 1;
  v->fail_code = amp_be16(p + 2);
  v->n = amp_be32(p + 4);
  v->time_ns = amp_be64(p + 8);
  v->set_id = p + 16;
  v->payment_addr = p + 48;
  v->amount = amp_be64(p + 80);
  v->fail_malformed = p[88];
  v->fail_msg_len = p[89];
  v->base = amp_be32(p + 92);
  v->prev = hdr == SET_HDR ? amp_be64(p + 96) : 0;
  if (v->fail_msg_len > 64 || set_rec_len(hdr, v->n, v->fail_msg_len) != len) return AMP_ERR_IO;
  v->fail_msg = p + hdr;
  v->hp = p + hdr + v->fail_msg_len;
  return AMP_OK;
}

static void set_htlc_decode(amp_store_htlc_t *x, const uint8_t *h) {
  x->scid = amp_be64(h);
  x->htlc_id = amp_be64(h + 8);
  x->amount_msat = amp_be64(h + 16);
  x->cltv_expiry = amp_be32(h + 24);
  x->child_index = amp_be32(h + 28);
  memcpy(x->preimage, h + 32, 32);
  memcpy(x->onion_tag, h + 64, 16);
}

static void fail_rec_encode(uint8_t *p, const amp_store_intent_t *in, uint32_t base) {
  p[0] = REC_FORMAT;
  p[1] = (uint8_t)((in->has_onion_tag ? 1 : 0) | (in->fail_malformed ? 2 : 0));
  amp_put_be16(p + 2, in->fail_code);
  amp_put_be32(p + 4, in->cltv_expiry);
  amp_put_be64(p + 8, in->scid);
  amp_put_be64(p + 16, in->htlc_id);
  if (in->has_onion_tag) memcpy(p + 24, in->onion_tag, 16);
  else memset(p + 24, 0, 16);
  p[40] = (uint8_t)in->fail_msg_len;
  amp_put_be32(p + 41, base);
  memcpy(p + FAIL_HDR, in->fail_msg, in->fail_msg_len);
}

typedef struct {
  uint8_t has_tag, malformed, msg_len;
  uint16_t code;
  uint32_t cltv, base;
  uint64_t scid, htlc_id;
  const uint8_t *tag, *msg;
} fail_view_t;

static int fail_rec_view(fail_view_t *v, const uint8_t *p, size_t len) {
  if (len < FAIL_HDR || p[0] != REC_FORMAT) return AMP_ERR_IO;
  v->has_tag = p[1] & 1;
  v->malformed = (p[1] >> 1) & 1;
  v->code = amp_be16(p + 2);
  v->cltv = amp_be32(p + 4);
  v->scid = amp_be64(p + 8);
  v->htlc_id = amp_be64(p + 16);
  v->tag = p + 24;
  v->msg_len = p[40];
  v->base = amp_be32(p + 41);
  v->msg = p + FAIL_HDR;
  if (v->msg_len > 64 || (size_t)FAIL_HDR + v->msg_len != len) return AMP_ERR_IO;
  return AMP_OK;
}

static size_t inv_memo_len(const amp_store_invoice_t *inv) {
  return strnlen(inv->memo, sizeof inv->memo - 1);
}

static void inv_encode(uint8_t *p, const amp_store_invoice_t *inv) {
  size_t ml = inv_memo_len(inv);
  p[0] = REC_FORMAT_CHAIN;
  p[1] = inv->type;
  p[2] = inv->state;
  p[3] = inv->placeholder;
  amp_put_be32(p + 4, inv->cltv_delta);
  amp_put_be32(p + 8, inv->sets_settled);
  amp_put_be32(p + 12, inv->chained ? INV_CHAINED : 0);
  amp_put_be64(p + 16, inv->value_msat);
  amp_put_be64(p + 24, inv->amt_paid_msat);
  amp_put_be64(p + 32, inv->created);
  amp_put_be64(p + 40, inv->expiry);
  amp_put_be64(p + 48, inv->add_index);
  memcpy(p + 56, inv->payment_addr, 32);
  memcpy(p + 88, inv->payment_hash, 32);
  memcpy(p + 120, inv->preimage, 32);
  p[152] = (uint8_t)ml;
  amp_put_be64(p + 153, inv->last_set);
  memcpy(p + INV_HDR, inv->memo, ml);
}

static int inv_decode(amp_store_invoice_t *inv, const uint8_t *p, size_t len) {
  size_t hdr = len >= 1 && p[0] == REC_FORMAT_CHAIN ? INV_HDR : INV_HDR1;
  if (len < hdr || (p[0] != REC_FORMAT_CHAIN && p[0] != REC_FORMAT) || hdr + p[152] != len ||
      p[152] >= sizeof inv->memo)
    return AMP_ERR_IO;
  memset(inv, 0, sizeof *inv);
  if (hdr == INV_HDR) {
    inv->last_set = amp_be64(p + 153);
    inv->chained = (amp_be32(p + 12) & INV_CHAINED) != 0;
  }
  inv->type = p[1];
  inv->state = p[2];
  inv->placeholder = p[3];
  inv->cltv_delta = amp_be32(p + 4);
  inv->sets_settled = amp_be32(p + 8);
  inv->value_msat = amp_be64(p + 16);
  inv->amt_paid_msat = amp_be64(p + 24);
  inv->created = amp_be64(p + 32);
  inv->expiry = amp_be64(p + 40);
  inv->add_index = amp_be64(p + 48);
  memcpy(inv->payment_addr, p + 56, 32);
  memcpy(inv->payment_hash, p + 88, 32);
  memcpy(inv->preimage, p + 120, 32);
  memcpy(inv->memo, p + hdr, p[152]);
  return AMP_OK;
}

/* --- the store ------------------------------------------------------------- */

enum {
  C_COMMITS, C_INTENTS, C_COMMIT_ERRORS, C_GROUP_MAX, C_SYNC_NS, C_REPLAY, C_RES, C_SETTLES,
  C_CANCELS, C_FAILS, C_INVPUTS, C_PRUNES, C_REFUSED, C_PUTS, C_RPL_PRUNED, C_HB_WAITS,
  C_HB_DROPPED, C_COMMIT_MAX, C_LAST_SETTLE, C_RES_LIVE, C_RPL_LIVE, C_SETS_KNOWN, C_INVOICES_KNOWN, C_FILTER_GROWS,
  C_INDEX_REHASHES, C_WRITER_CPU, C_WRITER_SLEEPS, C_WAKES,
  C_NCOUNTERS
};

#define LAT_BUCKETS 512

typedef struct {
  amp_ring_t sub;   /* producer -> writer */
  amp_ring_t done;  /* writer -> producer */
  MDB_txn *rtxn;    /* the producer's read txn, reset between reads (rtxn_get) */
} amp_prod_t;

struct amp_store {
  amp_store_cfg_t cfg;
  char *dir;
  MDB_env *env;
  MDB_dbi db_meta, db_inv, db_set, db_fail, db_circ;
  amp_prod_t *prod;          /* cfg.producers, 64-byte aligned */

  pthread_t writer;
  int writer_started;
  pthread_mutex_t stop_lock;
  int stopped;
  _Atomic int stopping;
  alignas(64) _Atomic uint32_t sleeping;
  _Atomic uint32_t wake_seq;

  /* writer-only state */
  alignas(64) uint64_t last_settle, last_fail, add_index;
  uint32_t prune_height;
  amp_store_intent_t **group;
  uint16_t *gprod;
  unsigned rr;
  uint64_t fail_burst;

  amp_hidx_t hix;
  amp_sidx_t six;
  amp_sidx_t iix;            /* invoices' payment_addrs (value: add_index) */
  int hix_ok, six_ok, iix_ok;

  alignas(64) _Atomic uint64_t c[C_NCOUNTERS];
  _Atomic uint64_t lat[LAT_BUCKETS];
};

static uint64_t now_ns(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void cadd(amp_store_t *st, int i, uint64_t v) {
  atomic_fetch_add_explicit(&st->c[i], v, memory_order_relaxed);
}
static inline uint64_t cget(const amp_store_t *st, int i) {
  return atomic_load_explicit(&((amp_store_t *)st)->c[i], memory_order_relaxed);
}
static inline void cset(amp_store_t *st, int i, uint64_t v) {
  atomic_store_explicit(&st->c[i], v, memory_order_relaxed);
}

static unsigned lat_bucket(uint64_t ns) {
  if (ns < 8) return (unsigned)ns;
  unsigned e = 63u - (unsigned)__builtin_clzll(ns);
  return (e - 2) * 8 + (unsigned)((ns >> (e - 3)) & 7);
}

static uint64_t lat_value(unsigned b) {
  if (b < 8) return b;
  unsigned e = b / 8 + 2, sub = b % 8;
  return ((8ull + sub) << (e - 3)) + ((1ull << (e - 3)) >> 1); /* bucket middle */
}

static int map_mdb(int rc) {
  if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL) return AMP_ERR_FULL;
  if (rc == MDB_NOTFOUND) return AMP_ERR_NOTFOUND;
  return AMP_ERR_IO;
}

static void key64(uint8_t k[8], uint64_t v) { amp_put_be64(k, v); }

static void futex_wake1(_Atomic uint32_t *w) {
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void futex_wait_ms(_Atomic uint32_t *w, uint32_t seen, long ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static void sleep_ns(long ns) {
  struct timespec ts = {.tv_sec = 0, .tv_nsec = ns};
  nanosleep(&ts, NULL);
}

/* --- writer: applying intents ------------------------------------------------ */

/* Per-group tallies, added to the counters only if the group commits. */
typedef struct {
  uint64_t puts, settles, cancels, fails, invputs, prunes, res, rpl, refused;
  uint32_t prune_to;
} tally_t;

static int is_zero16(const uint8_t *t) {
  uint8_t acc = 0;
  for (int i = 0; i < 16; i++) acc |= t[i];
  return acc == 0;
}

static int cmp_pair(const void *a, const void *b) {
  const uint64_t *x = a, *y = b;
  if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
  if (x[1] != y[1]) return x[1] < y[1] ? -1 : 1;
  return 0;
}

/* HTLCs of a set: none already resolved (committed or pending), none twice. */
static int check_htlcs(amp_store_t *st, const amp_store_intent_t *in) {
  uint32_t n = in->n_htlcs;
  for (uint32_t i = 0; i < n; i++)
    if (amp_hidx_check(&st->hix, in->htlcs[i].scid, in->htlcs[i].htlc_id) != AMP_OK)
      return AMP_ERR_EXISTS;
  if (n < 2) return AMP_OK;
  if (n <= 16) {
    for (uint32_t i = 0; i < n; i++)
      for (uint32_t j = i + 1; j < n; j++)
        if (in->htlcs[i].scid == in->htlcs[j].scid && in->htlcs[i].htlc_id == in->htlcs[j].htlc_id)
          return AMP_ERR_EXISTS;
    return AMP_OK;
  }
  uint64_t *pairs = malloc((size_t)n * 16);
  if (!pairs) return AMP_ERR_NOMEM;
  for (uint32_t i = 0; i < n; i++) {
    pairs[2 * i] = in->htlcs[i].scid;
    pairs[2 * i + 1] = in->htlcs[i].htlc_id;
  }
  qsort(pairs, n, 16, cmp_pair);
  int rc = AMP_OK;
  for (uint32_t i = 1; i < n && rc == AMP_OK; i++)
    if (cmp_pair(&pairs[2 * i - 2], &pairs[2 * i]) == 0) rc = AMP_ERR_EXISTS;
  free(pairs);
  return rc;
}

/* Each apply_* returns the intent's status; an LMDB failure (the group must
 * abort) is returned in *fatal as an LMDB code (or AMP_ERR_NOMEM as -1). */
static int apply_set(amp_store_t *st, MDB_txn *txn, amp_store_intent_t *in, int cancel,
                     uint64_t time_ns, tally_t *t, int *fatal) {
  if (cancel ? in->n_htlcs > AMP_STORE_MAX_HTLCS
             : (in->n_htlcs < 1 || in->n_htlcs > AMP_STORE_MAX_HTLCS))
    return AMP_ERR_RANGE;
  if (in->n_htlcs && !in->htlcs) return AMP_ERR_RANGE;
  if (cancel && in->fail_msg_len > sizeof in->fail_msg) return AMP_ERR_RANGE;
  /* set_id known, committed or pending in this group? */
  if (amp_sidx_check(&st->six, in->set_id) != AMP_OK) return AMP_ERR_EXISTS;
  int rc = check_htlcs(st, in);
  if (rc != AMP_OK) return rc;

  /* the invoice: a settle needs it open; a cancel chains to it if it exists
   * (a set whose invoice never became durable can still be cancelled) */
  amp_store_invoice_t inv = {0};
  MDB_val k = {32, (void *)in->payment_addr}, v;
  int has_inv = 0;
  {
    int mrc = mdb_get(txn, st->db_inv, &k, &v);
    if (mrc == MDB_NOTFOUND && !cancel) return AMP_ERR_NOTFOUND;
    if (mrc && mrc != MDB_NOTFOUND) {
      *fatal = mrc;
      return map_mdb(mrc);
    }
    if (mrc == 0) {
      if (inv_decode(&inv, v.mv_data, v.mv_size) != AMP_OK) {
        *fatal = MDB_CORRUPTED;
        return AMP_ERR_IO;
      }
      has_inv = 1;
    }
    if (!cancel && (inv.state == AMP_INVOICE_CANCELED ||
                    (inv.type == AMP_INVOICE_MPP && inv.state == AMP_INVOICE_SETTLED))) {
      amp_wipe(&inv, sizeof inv);
      return AMP_ERR_STATE;
    }
  }

  /* Checked: from here on only an LMDB or memory failure stops us, and that
   * aborts the whole group. Memory first (pending), then LMDB. */
  uint64_t idx = st->last_settle + 1;
  if (amp_sidx_add(&st->six, in->set_id, idx, cancel, 1) != AMP_OK) goto nomem;
  for (uint32_t i = 0; i < in->n_htlcs; i++) {
    const amp_store_htlc_t *x = &in->htlcs[i];
    const uint8_t *tag = is_zero16(x->onion_tag) ? NULL : x->onion_tag;
    if (amp_hidx_add(&st->hix, x->scid, x->htlc_id, x->cltv_expiry,
                     keep_of(x->cltv_expiry, st->prune_height), tag, AMP_LOC_SETTLE(idx, i),
                     1) != AMP_OK)
      goto nomem;
    if (tag) t->rpl++;
  }

  uint8_t kb[8];
  key64(kb, idx);
  MDB_val sk = {8, kb},
          sv = {set_rec_len(SET_HDR, in->n_htlcs, cancel ? in->fail_msg_len : 0), NULL};
  int mrc = mdb_put(txn, st->db_set, &sk, &sv, MDB_APPEND | MDB_RESERVE);
  if (mrc) goto lmdb;
  set_rec_encode(sv.mv_data, in, cancel, time_ns, st->prune_height,
                 has_inv && inv.chained ? inv.last_set : 0);
  t->puts++;
  if (has_inv) {
    /* the same put as before the chain for a settle; a cancel's is new
     * (cancels are rare) */
    inv.last_set = idx;
    if (!cancel) {
      inv.amt_paid_msat += in->amount_msat;
      inv.sets_settled++;
      if (inv.type == AMP_INVOICE_MPP) inv.state = AMP_INVOICE_SETTLED;
    }
    MDB_val iv = {INV_HDR + inv_memo_len(&inv), NULL};
    mrc = mdb_put(txn, st->db_inv, &k, &iv, MDB_RESERVE);
    if (mrc) {
      amp_wipe(&inv, sizeof inv);
      goto lmdb;
    }
    inv_encode(iv.mv_data, &inv);
    amp_wipe(&inv, sizeof inv);
    t->puts++;
  }
  if (cancel) t->cancels++;
  else t->settles++;
  t->res += in->n_htlcs;
  st->last_settle = idx;
  in->settle_index = idx;
  return AMP_OK;
nomem:
  if (has_inv) amp_wipe(&inv, sizeof inv);
  *fatal = -1;
  return AMP_ERR_NOMEM;
lmdb:
  if (has_inv) amp_wipe(&inv, sizeof inv); /* an MPP invoice's preimage */
  *fatal = mrc;
  return map_mdb(mrc);
}

static int apply_fail(amp_store_t *st, MDB_txn *txn, amp_store_intent_t *in, tally_t *t,
                      int *fatal) {
  if (in->fail_msg_len > sizeof in->fail_msg) return AMP_ERR_RANGE;
  if (amp_hidx_check(&st->hix, in->scid, in->htlc_id) != AMP_OK) return AMP_ERR_EXISTS;
  uint64_t seq = st->last_fail + 1;
  if (amp_hidx_add(&st->hix, in->scid, in->htlc_id, in->cltv_expiry,
                   keep_of(in->cltv_expiry, st->prune_height),
                   in->has_onion_tag ? in->onion_tag : NULL, AMP_LOC_FAIL | seq, 1) != AMP_OK) {
    *fatal = -1;
    return AMP_ERR_NOMEM;
  }
  uint8_t kb[8];
  key64(kb, seq);
  MDB_val k = {8, kb}, v = {FAIL_HDR + (size_t)in->fail_msg_len, NULL};
  int mrc = mdb_put(txn, st->db_fail, &k, &v, MDB_APPEND | MDB_RESERVE);
  if (mrc) {
    *fatal = mrc;
    return map_mdb(mrc);
  }
  fail_rec_encode(v.mv_data, in, st->prune_height);
  st->last_fail = seq;
  t->puts++;
  t->fails++;
  t->res++;
  if (in->has_onion_tag) t->rpl++;
  return AMP_OK;
}

static int meta_put_u(amp_store_t *st, MDB_txn *txn, const char *key, uint64_t v, int bytes) {
  uint8_t b[8];
  if (bytes == 4) amp_put_be32(b, (uint32_t)v);
  else amp_put_be64(b, v);
  MDB_val k = {strlen(key), (void *)key}, d = {(size_t)bytes, b};
  return mdb_put(txn, st->db_meta, &k, &d, 0);
}

static int apply_invoice_put(amp_store_t *st, MDB_txn *txn, amp_store_intent_t *in, tally_t *t,
                             int *fatal) {
  amp_store_invoice_t *inv = &in->invoice;
  if ((inv->type != AMP_INVOICE_AMP && inv->type != AMP_INVOICE_MPP) ||
      inv->state > AMP_INVOICE_CANCELED)
    return AMP_ERR_RANGE;
  inv->memo[sizeof inv->memo - 1] = 0;
  MDB_val k = {32, inv->payment_addr}, v;
  int mrc = mdb_get(txn, st->db_inv, &k, &v);
  if (mrc == 0) {
    amp_store_invoice_t old;
    if (inv_decode(&old, v.mv_data, v.mv_size) != AMP_OK) {
      *fatal = MDB_CORRUPTED;
      return AMP_ERR_IO;
    }
    inv->amt_paid_msat = old.amt_paid_msat;
    inv->sets_settled = old.sets_settled;
    inv->add_index = old.add_index;
    inv->last_set = old.last_set;
    inv->chained = old.chained;
    if (old.state == AMP_INVOICE_SETTLED) inv->state = AMP_INVOICE_SETTLED;
    amp_wipe(&old, sizeof old);
  } else if (mrc == MDB_NOTFOUND) {
    inv->amt_paid_msat = 0;
    inv->sets_settled = 0;
    inv->last_set = 0;
    inv->chained = 1; /* all its sets will be on the chain */
    inv->add_index = ++st->add_index;
    /* memory first (pending until the commit), as apply_set */
    if (amp_sidx_add(&st->iix, inv->payment_addr, inv->add_index, 0, 1) != AMP_OK) {
      *fatal = -1;
      return AMP_ERR_NOMEM;
    }
    if ((mrc = meta_put_u(st, txn, "add_index", st->add_index, 8)) != 0) goto lmdb;
    t->puts++;
  } else {
    goto lmdb;
  }
  MDB_val nv = {INV_HDR + inv_memo_len(inv), NULL};
  if ((mrc = mdb_put(txn, st->db_inv, &k, &nv, MDB_RESERVE)) != 0) goto lmdb;
  inv_encode(nv.mv_data, inv);
  t->puts++;
  t->invputs++;
  return AMP_OK;
lmdb:
  *fatal = mrc;
  return map_mdb(mrc);
}

static uint32_t res_floor_of(uint32_t height) {
  return height > AMP_STORE_RESOLUTION_KEEP ? height - AMP_STORE_RESOLUTION_KEEP : 0;
}

/* PRUNE: durable prune height and the fail log's expired prefix (cursor from
 * the start; stops at the first record still needed). The in-memory indexes
 * follow after the commit. */
static int apply_prune(amp_store_t *st, MDB_txn *txn, amp_store_intent_t *in, tally_t *t,
                       int *fatal) {
  uint32_t cur = t->prune_to > st->prune_height ? t->prune_to : st->prune_height;
  if (in->height <= cur) return AMP_OK;
  int mrc = meta_put_u(st, txn, "prune_height", in->height, 4);
  if (mrc) goto lmdb;
  t->puts++;
  uint32_t floor = res_floor_of(in->height);
  MDB_cursor *c;
  if ((mrc = mdb_cursor_open(txn, st->db_fail, &c)) != 0) goto lmdb;
  MDB_val k, v;
  for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    fail_view_t fv;
    if (fail_rec_view(&fv, v.mv_data, v.mv_size) != AMP_OK) break; /* leave it */
    if (keep_of(fv.cltv, fv.base) >= floor) break;
    if ((mrc = mdb_cursor_del(c, 0)) != 0) break;
  }
  mdb_cursor_close(c);
  if (mrc && mrc != MDB_NOTFOUND) goto lmdb;
  t->prune_to = in->height;
  t->prunes++;
  return AMP_OK;
lmdb:
  *fatal = mrc;
  return map_mdb(mrc);
}

/* --- writer: groups ---------------------------------------------------------- */

static void log_commit_failure(amp_store_t *st, unsigned n, int mrc) {
  cadd(st, C_COMMIT_ERRORS, 1);
  if (st->fail_burst++ == 0)
    fprintf(stderr,
            "ampd store: commit of a group of %u intents failed: %s (%d); every intent of "
            "it is handed back failed; further failures are only counted until a commit "
            "works again\n",
            n, mrc == -1 ? "out of memory" : mdb_strerror(mrc), mrc);
}

/* Gauges of the writer-owned indexes, published for amp_store_stats. */
static void publish_gauges(amp_store_t *st) {
  cset(st, C_LAST_SETTLE, st->last_settle);
  cset(st, C_RES_LIVE, st->hix.res_count);
  cset(st, C_RPL_LIVE, st->hix.rpl_count);
  cset(st, C_SETS_KNOWN, st->six.count);
  cset(st, C_INVOICES_KNOWN, st->iix.count);
  cset(st, C_FILTER_GROWS, st->hix.filter_grows);
  cset(st, C_INDEX_REHASHES, (uint64_t)st->hix.table_grows + st->six.grows + st->iix.grows);
}

/* Start the cache misses of an intent's index work early (see commit_group):
 * the set_id slot, and per HTLC (the first 16) its table slots and filter
 * blocks. */
#define PREFETCH_AHEAD 4
static void prefetch_intent(amp_store_t *st, const amp_store_intent_t *in) {
  if (in->kind == AMP_INTENT_SETTLE || in->kind == AMP_INTENT_CANCEL_SET) {
    amp_sidx_prefetch(&st->six, in->set_id);
    uint32_t n = in->htlcs ? (in->n_htlcs < 16 ? in->n_htlcs : 16) : 0;
    for (uint32_t i = 0; i < n; i++) {
      const amp_store_htlc_t *x = &in->htlcs[i];
      amp_hidx_prefetch(&st->hix, x->scid, x->htlc_id, x->cltv_expiry,
                        is_zero16(x->onion_tag) ? NULL : x->onion_tag);
    }
  } else if (in->kind == AMP_INTENT_FAIL) {
    amp_hidx_prefetch(&st->hix, in->scid, in->htlc_id, in->cltv_expiry,
                      in->has_onion_tag ? in->onion_tag : NULL);
  }
}

static void commit_group(amp_store_t *st, unsigned n) {
  uint64_t save_settle = st->last_settle, save_fail = st->last_fail, save_add = st->add_index;
  tally_t t = {0};
  int fatal = 0;
  uint64_t real_ns = now_ns(CLOCK_REALTIME);
  MDB_txn *txn = NULL;
  int mrc = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (mrc) fatal = mrc;
  /* VPP style: while intent i is applied, the lines of intent i + AHEAD are
   * on their way (the index tables and filters are far larger than cache). */
  for (unsigned i = 0; i < n && i < PREFETCH_AHEAD; i++) prefetch_intent(st, st->group[i]);
  for (unsigned i = 0; i < n && !fatal; i++) {
    amp_store_intent_t *in = st->group[i];
    if (i + PREFETCH_AHEAD < n) prefetch_intent(st, st->group[i + PREFETCH_AHEAD]);
    int s;
    in->settle_index = 0;
    switch (in->kind) {
    case AMP_INTENT_SETTLE: s = apply_set(st, txn, in, 0, real_ns, &t, &fatal); break;
    case AMP_INTENT_CANCEL_SET: s = apply_set(st, txn, in, 1, real_ns, &t, &fatal); break;
    case AMP_INTENT_FAIL: s = apply_fail(st, txn, in, &t, &fatal); break;
    case AMP_INTENT_INVOICE_PUT: s = apply_invoice_put(st, txn, in, &t, &fatal); break;
    case AMP_INTENT_PRUNE: s = apply_prune(st, txn, in, &t, &fatal); break;
    default: s = AMP_ERR_RANGE; break;
    }
    in->status = s;
    if (s != AMP_OK && !fatal) t.refused++;
  }
  uint64_t t0 = now_ns(CLOCK_MONOTONIC), t1 = t0;
  if (!fatal) {
    mrc = mdb_txn_commit(txn);
    t1 = now_ns(CLOCK_MONOTONIC);
    txn = NULL;
    if (mrc) fatal = mrc;
  } else if (txn) {
    mdb_txn_abort(txn);
  }

  if (fatal) {
    amp_hidx_rollback(&st->hix);
    amp_sidx_rollback(&st->six);
    amp_sidx_rollback(&st->iix);
    st->last_settle = save_settle;
    st->last_fail = save_fail;
    st->add_index = save_add;
    int status = fatal == -1 ? AMP_ERR_NOMEM : map_mdb(fatal);
    if (status == AMP_ERR_NOTFOUND) status = AMP_ERR_IO;
    for (unsigned i = 0; i < n; i++) {
      st->group[i]->status = status;
      st->group[i]->settle_index = 0;
      st->group[i]->commit_ns = t1;
    }
    log_commit_failure(st, n, fatal);
    return;
  }

  amp_hidx_commit(&st->hix);
  amp_sidx_commit(&st->six);
  amp_sidx_commit(&st->iix);
  if (t.prune_to > st->prune_height) {
    uint64_t dropped = amp_hidx_prune(&st->hix, t.prune_to, res_floor_of(t.prune_to));
    st->prune_height = t.prune_to;
    cadd(st, C_RPL_PRUNED, dropped);
  }
  if (st->fail_burst) {
    fprintf(stderr, "ampd store: commits work again after %llu failed\n",
            (unsigned long long)st->fail_burst);
    st->fail_burst = 0;
  }
  for (unsigned i = 0; i < n; i++) st->group[i]->commit_ns = t1;

  uint64_t dur = t1 - t0;
  cadd(st, C_COMMITS, 1);
  cadd(st, C_SYNC_NS, dur);
  cadd(st, C_PUTS, t.puts);
  cadd(st, C_SETTLES, t.settles);
  cadd(st, C_CANCELS, t.cancels);
  cadd(st, C_FAILS, t.fails);
  cadd(st, C_INVPUTS, t.invputs);
  cadd(st, C_PRUNES, t.prunes);
  cadd(st, C_RES, t.res);
  cadd(st, C_REPLAY, t.rpl);
  cadd(st, C_REFUSED, t.refused);
  publish_gauges(st);
  if (n > cget(st, C_GROUP_MAX)) cset(st, C_GROUP_MAX, n);
  if (dur > cget(st, C_COMMIT_MAX)) cset(st, C_COMMIT_MAX, dur);
  atomic_fetch_add_explicit(&st->lat[lat_bucket(dur)], 1, memory_order_relaxed);
}

static void handback(amp_store_t *st, unsigned n) {
  long long waited = 0;
  for (unsigned i = 0; i < n; i++) {
    amp_ring_t *r = &st->prod[st->gprod[i]].done;
    while (!amp_ring_push(r, st->group[i])) {
      if (atomic_load_explicit(&st->stopping, memory_order_relaxed) && waited >= HANDBACK_STOP_NS) {
        cadd(st, C_HB_DROPPED, 1);
        break;
      }
      cadd(st, C_HB_WAITS, 1);
      sleep_ns(HANDBACK_WAIT_NS);
      waited += HANDBACK_WAIT_NS;
    }
  }
  cadd(st, C_INTENTS, n);
}

static unsigned collect(amp_store_t *st, unsigned n) {
  unsigned max = st->cfg.group_max, np = st->cfg.producers;
  for (unsigned k = 0; k < np && n < max; k++) {
    unsigned p = (st->rr + k) % np;
    uint32_t got = amp_ring_pop_burst(&st->prod[p].sub, (void **)&st->group[n], max - n);
    for (uint32_t i = 0; i < got; i++) st->gprod[n + i] = (uint16_t)p;
    n += got;
  }
  st->rr = (st->rr + 1) % np;
  return n;
}

static int rings_empty(amp_store_t *st) {
  for (unsigned p = 0; p < st->cfg.producers; p++)
    if (!amp_ring_empty_var(&st->prod[p].sub)) return 0;
  return 1;
}

/* Idle: spin a little, then nap (doubling naps, ~1.3 ms in all: a worker's
 * next intents come within a burst's ECDHs, ~1.4 ms for 32 HTLCs), then
 * sleep on the futex until a submit wakes us. While we nap, `sleeping` is 0
 * and producers make no wake syscall: that syscall, one per writer sleep,
 * was ~0.3% of a worker under full load (1,200 wakes per 30,000 1-shard
 * HTLCs in ~1.5 s, 4.2 us each on this VM: the mean wake of a sleeping
 * thread, measured alone); the naps cost this thread ~7 wakeups per
 * idle stretch instead. An intent that comes during a nap waits for its
 * end (at most 640 us, once the store was idle for ~600 us). Only the
 * first wait after work naps (fresh), and only its sleep is counted: an idle
 * writer wakes every IDLE_SLEEP_MS as before, and its counter stays still.
 * The futex handshake with amp_store_submit is Dekker's: each side stores
 * its flag, fences (seq_cst), then loads the other's, so either the
 * producer sees `sleeping` and wakes us, or we see its intent and do not
 * sleep. */
static void idle_wait(amp_store_t *st, int fresh) {
  for (int i = 0; i < IDLE_SPINS; i++) {
    if (!rings_empty(st) || atomic_load_explicit(&st->stopping, memory_order_relaxed)) return;
    cpu_relax();
  }
  for (long long nap = IDLE_NAP_FIRST_NS; fresh && nap <= IDLE_NAP_LAST_NS; nap *= 2) {
    sleep_ns(nap);
    if (!rings_empty(st) || atomic_load_explicit(&st->stopping, memory_order_relaxed)) return;
  }
  uint32_t seen = atomic_load(&st->wake_seq);
  atomic_store(&st->sleeping, 1);
  atomic_thread_fence(memory_order_seq_cst);
  if (rings_empty(st) && !atomic_load(&st->stopping)) {
    if (fresh) cadd(st, C_WRITER_SLEEPS, 1);
    futex_wait_ms(&st->wake_seq, seen, IDLE_SLEEP_MS);
  }
  atomic_store(&st->sleeping, 0);
}

static void *writer_main(void *arg) {
  amp_store_t *st = arg;
  prctl(PR_SET_TIMERSLACK, 5000UL, 0, 0, 0); /* short sleeps mean short */
  unsigned gmax = st->cfg.group_max;
  uint64_t gwait = (uint64_t)st->cfg.group_usec * 1000;
  int fresh = 0; /* idle just after work: nap before the futex (idle_wait) */
  for (;;) {
    unsigned n = collect(st, 0);
    if (!n) {
      if (atomic_load(&st->stopping)) {
        /* stopping was set after the producers' last submits: one more
         * look at the rings settles it */
        n = collect(st, 0);
        if (!n) break;
      } else {
        idle_wait(st, fresh);
        fresh = 0;
        continue;
      }
    }
    fresh = 1;
    if (n < gmax && gwait && !atomic_load_explicit(&st->stopping, memory_order_relaxed)) {
      uint64_t end = now_ns(CLOCK_MONOTONIC) + gwait;
      while (n < gmax) {
        unsigned m = collect(st, n);
        if (m == n) {
          if (now_ns(CLOCK_MONOTONIC) >= end) break;
          sleep_ns(GROUP_POLL_NS); /* not a spin: light load must stay cheap */
        }
        n = m;
      }
    }
    commit_group(st, n);
    handback(st, n);
    cset(st, C_WRITER_CPU, now_ns(CLOCK_THREAD_CPUTIME_ID));
  }
  return NULL;
}

/* --- open / recovery ------------------------------------------------------------ */

static int meta_get_u(MDB_txn *txn, MDB_dbi db, const char *key, uint64_t *out, int bytes) {
  MDB_val k = {strlen(key), (void *)key}, v;
  int rc = mdb_get(txn, db, &k, &v);
  if (rc) return rc;
  if (v.mv_size != (size_t)bytes) return MDB_CORRUPTED;
  *out = bytes == 4 ? amp_be32(v.mv_data) : amp_be64(v.mv_data);
  return 0;
}

static int log_mdb(const char *what, const char *dir, int rc) {
  fprintf(stderr, "ampd store: %s (%s): %s\n", what, dir, mdb_strerror(rc));
  return map_mdb(rc) == AMP_ERR_FULL ? AMP_ERR_FULL : AMP_ERR_IO;
}

/* Open the named databases, check or write the schema version. */
static int open_dbs(amp_store_t *st) {
  MDB_txn *txn;
  int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (rc) return log_mdb("begin", st->dir, rc);
  if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->db_meta)) != 0) goto lmdb;
  uint64_t ver = 0;
  rc = meta_get_u(txn, st->db_meta, "schema", &ver, 4);
  if (rc == MDB_NOTFOUND) {
    /* Fresh only if nothing else is there. */
    MDB_dbi probe;
    if (mdb_dbi_open(txn, "settles", 0, &probe) == 0) {
      fprintf(stderr,
              "ampd store: %s has data but no schema version; this build expects schema "
              "version %u\n",
              st->dir, AMP_STORE_SCHEMA_VERSION);
      mdb_txn_abort(txn);
      return AMP_ERR_STATE;
    }
    if ((rc = meta_put_u(st, txn, "schema", AMP_STORE_SCHEMA_VERSION, 4)) != 0) goto lmdb;
  } else if (rc) {
    goto lmdb;
  } else if (ver != AMP_STORE_SCHEMA_VERSION) {
    fprintf(stderr,
            "ampd store: %s has schema version %llu, this build reads schema version %u; "
            "refusing to open it\n",
            st->dir, (unsigned long long)ver, AMP_STORE_SCHEMA_VERSION);
    mdb_txn_abort(txn);
    return AMP_ERR_STATE;
  }
  if ((rc = mdb_dbi_open(txn, "invoices", MDB_CREATE, &st->db_inv)) != 0 ||
      (rc = mdb_dbi_open(txn, "settles", MDB_CREATE, &st->db_set)) != 0 ||
      (rc = mdb_dbi_open(txn, "fails", MDB_CREATE, &st->db_fail)) != 0 ||
      (rc = mdb_dbi_open(txn, "circuits", MDB_CREATE, &st->db_circ)) != 0)
    goto lmdb;
  uint64_t v;
  rc = meta_get_u(txn, st->db_meta, "prune_height", &v, 4);
  if (rc == 0) st->prune_height = (uint32_t)v;
  else if (rc != MDB_NOTFOUND) goto lmdb;
  rc = meta_get_u(txn, st->db_meta, "add_index", &v, 8);
  if (rc == 0) st->add_index = v;
  else if (rc != MDB_NOTFOUND) goto lmdb;
  if ((rc = mdb_txn_commit(txn)) != 0) return log_mdb("commit at open", st->dir, rc);
  return AMP_OK;
lmdb:
  mdb_txn_abort(txn);
  return log_mdb("open databases", st->dir, rc);
}

/* Walk both logs: last indexes, set index, HTLC index and filters. */
static int rebuild(amp_store_t *st) {
  MDB_txn *txn;
  MDB_cursor *c = NULL;
  int rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
  if (rc) return log_mdb("read txn", st->dir, rc);
  (void)amp_hidx_prune(&st->hix, st->prune_height, res_floor_of(st->prune_height));
  MDB_val k, v;
  MDB_stat ms;
  if ((rc = mdb_stat(txn, st->db_set, &ms)) != 0) goto lmdb;
  if (amp_sidx_reserve(&st->six, ms.ms_entries + st->cfg.filter_entries / 4) != AMP_OK) goto nomem;
  if ((rc = mdb_cursor_open(txn, st->db_set, &c)) != 0) goto lmdb;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    set_view_t sv;
    if (k.mv_size != 8 || set_rec_view(&sv, v.mv_data, v.mv_size) != AMP_OK) goto corrupt;
    uint64_t idx = amp_be64(k.mv_data);
    int arc = amp_sidx_add(&st->six, sv.set_id, idx, sv.cancelled, 0);
    if (arc == AMP_ERR_NOMEM) goto nomem;
    for (uint32_t i = 0; i < sv.n && i <= AMP_LOC_MAX_POS; i++) {
      const uint8_t *h = sv.hp + (size_t)i * SET_HTLC;
      const uint8_t *tag = is_zero16(h + 64) ? NULL : h + 64;
      uint32_t cltv = amp_be32(h + 24);
      if (amp_hidx_add(&st->hix, amp_be64(h), amp_be64(h + 8), cltv, keep_of(cltv, sv.base), tag,
                       AMP_LOC_SETTLE(idx, i), 0) != AMP_OK)
        goto nomem;
    }
    st->last_settle = idx;
  }
  if (rc != MDB_NOTFOUND) goto lmdb;
  mdb_cursor_close(c);
  if ((rc = mdb_cursor_open(txn, st->db_fail, &c)) != 0) goto lmdb;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    fail_view_t fv;
    if (k.mv_size != 8 || fail_rec_view(&fv, v.mv_data, v.mv_size) != AMP_OK) goto corrupt;
    uint64_t seq = amp_be64(k.mv_data);
    if (amp_hidx_add(&st->hix, fv.scid, fv.htlc_id, fv.cltv, keep_of(fv.cltv, fv.base),
                     fv.has_tag ? fv.tag : NULL, AMP_LOC_FAIL | seq, 0) != AMP_OK)
      goto nomem;
    st->last_fail = seq;
  }
  if (rc != MDB_NOTFOUND) goto lmdb;
  mdb_cursor_close(c);
  c = NULL;
  /* the invoices' addrs (amp_store_maybe_invoice), values only skimmed */
  if ((rc = mdb_stat(txn, st->db_inv, &ms)) != 0) goto lmdb;
  /* sized as the set index: a spontaneous payment makes an invoice per set,
   * and a table doubling under load is a pause of the writer, with that
   * index's readers waiting (measured, paced 1-shard traffic, 60,000 new
   * invoices: fulfill p99.9 13-43 ms with room for 4096 more at open,
   * 7-10 ms sized so) */
  if (amp_sidx_reserve(&st->iix, ms.ms_entries + st->cfg.filter_entries / 4) != AMP_OK)
    goto nomem;
  if ((rc = mdb_cursor_open(txn, st->db_inv, &c)) != 0) goto lmdb;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    amp_store_invoice_t inv;
    if (k.mv_size != 32 || inv_decode(&inv, v.mv_data, v.mv_size) != AMP_OK) goto corrupt;
    uint64_t add = inv.add_index ? inv.add_index : 1;
    amp_wipe(&inv, sizeof inv);
    if (amp_sidx_add(&st->iix, k.mv_data, add, 0, 0) == AMP_ERR_NOMEM) goto nomem;
  }
  if (rc != MDB_NOTFOUND) goto lmdb;
  mdb_cursor_close(c);
  mdb_txn_abort(txn);
  publish_gauges(st);
  return AMP_OK;
corrupt:
  fprintf(stderr, "ampd store: %s: undecodable record in the logs\n", st->dir);
  mdb_cursor_close(c);
  mdb_txn_abort(txn);
  return AMP_ERR_IO;
nomem:
  mdb_cursor_close(c);
  mdb_txn_abort(txn);
  return AMP_ERR_NOMEM;
lmdb:
  if (c) mdb_cursor_close(c);
  mdb_txn_abort(txn);
  return log_mdb("walk the logs", st->dir, rc);
}

static int mkdir_p(const char *dir) {
  struct stat sb;
  if (stat(dir, &sb) == 0) {
    if (S_ISDIR(sb.st_mode)) return 0;
    errno = ENOTDIR;
    return -1;
  }
  if (mkdir(dir, 0700) == 0 || errno == EEXIST) return 0;
  return -1;
}

static void free_store(amp_store_t *st) {
  for (unsigned p = 0; st->prod && p < st->cfg.producers; p++)
    if (st->prod[p].rtxn) mdb_txn_abort(st->prod[p].rtxn);
  if (st->env) mdb_env_close(st->env);
  if (st->prod) {
    for (unsigned p = 0; p < st->cfg.producers; p++) {
      amp_ring_fini(&st->prod[p].sub);
      amp_ring_fini(&st->prod[p].done);
    }
    free(st->prod);
  }
  if (st->hix_ok) amp_hidx_fini(&st->hix);
  if (st->six_ok) amp_sidx_fini(&st->six);
  if (st->iix_ok) amp_sidx_fini(&st->iix);
  free(st->group);
  free(st->gprod);
  free(st->dir);
  pthread_mutex_destroy(&st->stop_lock);
  free(st);
}

int amp_store_open(amp_store_t **out, const amp_store_cfg_t *cfg_in) {
  *out = NULL;
  if (!cfg_in || !cfg_in->dir || !cfg_in->dir[0]) return AMP_ERR_CONFIG;
  amp_store_cfg_t cfg = *cfg_in;
  if (!cfg.map_size) cfg.map_size = DEF_MAP_SIZE;
  if (!cfg.group_max) cfg.group_max = DEF_GROUP_MAX;
  if (!cfg.group_usec) cfg.group_usec = DEF_GROUP_USEC;
  if (!cfg.ring_size) cfg.ring_size = DEF_RING_SIZE;
  if (!cfg.filter_entries) cfg.filter_entries = DEF_FILTER_ENTRIES;
  if (cfg.producers < 1 || cfg.producers > AMP_STORE_MAX_PRODUCERS || cfg.group_max > MAX_GROUP ||
      cfg.ring_size < 2 || cfg.ring_size > (1u << 24) || (cfg.ring_size & (cfg.ring_size - 1)) ||
      cfg.sync > AMP_STORE_SYNC_NONE || cfg.group_usec > 1000000 ||
      cfg.filter_entries > (1ull << 32)) {
    fprintf(stderr, "ampd store: invalid configuration\n");
    return AMP_ERR_CONFIG;
  }

  amp_store_t *st = aligned_alloc(64, (sizeof *st + 63) & ~(size_t)63);
  if (!st) return AMP_ERR_NOMEM;
  memset(st, 0, sizeof *st);
  pthread_mutex_init(&st->stop_lock, NULL);
  st->cfg = cfg;
  st->dir = strdup(cfg.dir);
  st->cfg.dir = st->dir;
  int rc = AMP_ERR_NOMEM;
  if (!st->dir) goto fail;

  amp_sipkey_t key;
  if ((rc = amp_random(&key, sizeof key)) != AMP_OK) goto fail;
  rc = AMP_ERR_NOMEM;
  if (amp_hidx_init(&st->hix, &key, cfg.filter_entries) != AMP_OK) goto fail;
  st->hix_ok = 1;
  if (amp_sidx_init(&st->six, &key) != AMP_OK) goto fail;
  st->six_ok = 1;
  if (amp_sidx_init(&st->iix, &key) != AMP_OK) goto fail;
  st->iix_ok = 1;
  amp_wipe(&key, sizeof key);

  if (mkdir_p(cfg.dir) != 0) {
    fprintf(stderr, "ampd store: cannot create %s: %s\n", cfg.dir, strerror(errno));
    rc = AMP_ERR_IO;
    goto fail;
  }
  int mrc;
  unsigned flags = MDB_NOTLS;
  if (cfg.sync == AMP_STORE_SYNC_META) flags |= MDB_NOMETASYNC;
  if (cfg.sync == AMP_STORE_SYNC_NONE) flags |= MDB_NOSYNC;
  if ((mrc = mdb_env_create(&st->env)) != 0 || (mrc = mdb_env_set_maxdbs(st->env, 8)) != 0 ||
      (mrc = mdb_env_set_maxreaders(st->env, 512)) != 0 ||
      (mrc = mdb_env_set_mapsize(st->env, cfg.map_size)) != 0 ||
      (mrc = mdb_env_open(st->env, cfg.dir, flags, 0600)) != 0) {
    rc = log_mdb("open environment", cfg.dir, mrc);
    if (st->env && mrc) {
      mdb_env_close(st->env);
      st->env = NULL;
    }
    goto fail;
  }
  int dead;
  mdb_reader_check(st->env, &dead); /* slots of killed processes */
  if ((rc = open_dbs(st)) != AMP_OK) goto fail;
  if ((rc = rebuild(st)) != AMP_OK) goto fail;

  rc = AMP_ERR_NOMEM;
  st->group = calloc(cfg.group_max, sizeof *st->group);
  st->gprod = calloc(cfg.group_max, sizeof *st->gprod);
  st->prod = aligned_alloc(64, cfg.producers * sizeof(amp_prod_t));
  if (!st->group || !st->gprod || !st->prod) goto fail;
  memset(st->prod, 0, cfg.producers * sizeof(amp_prod_t));
  for (unsigned p = 0; p < cfg.producers; p++)
    if (amp_ring_init(&st->prod[p].sub, cfg.ring_size) ||
        amp_ring_init(&st->prod[p].done, cfg.ring_size))
      goto fail;
  if (pthread_create(&st->writer, NULL, writer_main, st) != 0) {
    rc = AMP_ERR_NOMEM;
    goto fail;
  }
  pthread_setname_np(st->writer, "amp-store");
  st->writer_started = 1;
  *out = st;
  return AMP_OK;
fail:
  free_store(st);
  return rc;
}

void amp_store_stop(amp_store_t *st) {
  if (!st) return;
  pthread_mutex_lock(&st->stop_lock);
  if (!st->stopped) {
    atomic_store(&st->stopping, 1);
    atomic_fetch_add(&st->wake_seq, 1);
    futex_wake1(&st->wake_seq);
    if (st->writer_started) pthread_join(st->writer, NULL);
    st->writer_started = 0;
    /* Submits that raced with stop: hand them back refused. */
    for (unsigned p = 0; p < st->cfg.producers; p++) {
      void *x;
      while (amp_ring_pop_burst(&st->prod[p].sub, &x, 1) == 1) {
        amp_store_intent_t *in = x;
        in->status = AMP_ERR_STATE;
        if (!amp_ring_push(&st->prod[p].done, in)) cadd(st, C_HB_DROPPED, 1);
      }
    }
    st->stopped = 1;
  }
  pthread_mutex_unlock(&st->stop_lock);
}

void amp_store_close(amp_store_t *st) {
  if (!st) return;
  amp_store_stop(st);
  free_store(st);
}

/* --- producers ---------------------------------------------------------------- */

int amp_store_submit(amp_store_t *st, unsigned producer, amp_store_intent_t *in) {
  if (producer >= st->cfg.producers) return AMP_ERR_RANGE;
  if (atomic_load_explicit(&st->stopping, memory_order_relaxed)) return AMP_ERR_STATE;
  if (!amp_ring_push(&st->prod[producer].sub, in)) return AMP_ERR_FULL;
  atomic_thread_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&st->sleeping, memory_order_relaxed)) {
    atomic_fetch_add(&st->wake_seq, 1);
    futex_wake1(&st->wake_seq);
    cadd(st, C_WAKES, 1);
  }
  return AMP_OK;
}

unsigned amp_store_poll(amp_store_t *st, unsigned producer, amp_store_intent_t **done,
                        unsigned max) {
  if (producer >= st->cfg.producers) return 0;
  return amp_ring_pop_burst(&st->prod[producer].done, (void **)done, max);
}

/* --- reads ---------------------------------------------------------------------- */

int amp_store_maybe_resolved(const amp_store_t *st, uint64_t scid, uint64_t htlc_id) {
  return amp_hidx_maybe_res(&st->hix, scid, htlc_id);
}

uint64_t amp_store_prefetch_resolved(const amp_store_t *st, uint64_t scid, uint64_t htlc_id) {
  return amp_hidx_prefetch_res(&st->hix, scid, htlc_id);
}

uint64_t amp_store_prefetch_replayed(const amp_store_t *st, uint32_t cltv_expiry,
                                     const uint8_t tag[16]) {
  return amp_hidx_prefetch_rpl(&st->hix, cltv_expiry, tag);
}

int amp_store_maybe_resolved_hint(const amp_store_t *st, uint64_t hint) {
  return amp_hidx_maybe_res_h(&st->hix, hint);
}

int amp_store_maybe_replayed_hint(const amp_store_t *st, uint64_t hint) {
  return amp_hidx_maybe_rpl_h(&st->hix, hint);
}

int amp_store_maybe_replayed(const amp_store_t *st, uint32_t cltv_expiry, const uint8_t tag[16]) {
  return amp_hidx_maybe_rpl(&st->hix, cltv_expiry, tag);
}

int amp_store_replay_get(amp_store_t *st, uint32_t cltv_expiry, const uint8_t tag[16],
                         uint64_t *scid, uint64_t *htlc_id) {
  return amp_hidx_find_rpl(&st->hix, cltv_expiry, tag, scid, htlc_id);
}

int amp_store_maybe_set(const amp_store_t *st, const uint8_t set_id[32]) {
  return amp_sidx_maybe(&st->six, set_id);
}

int amp_store_maybe_invoice(const amp_store_t *st, const uint8_t payment_addr[32]) {
  return amp_sidx_maybe(&st->iix, payment_addr);
}

uint64_t amp_store_prefetch_set(const amp_store_t *st, const uint8_t set_id[32]) {
  return amp_sidx_prefetch_maybe(&st->six, set_id);
}

uint64_t amp_store_prefetch_invoice(const amp_store_t *st, const uint8_t payment_addr[32]) {
  return amp_sidx_prefetch_maybe(&st->iix, payment_addr);
}

int amp_store_maybe_set_hint(const amp_store_t *st, uint64_t hint) {
  return amp_sidx_maybe_h(&st->six, hint);
}

int amp_store_maybe_invoice_hint(const amp_store_t *st, uint64_t hint) {
  return amp_sidx_maybe_h(&st->iix, hint);
}

int amp_store_set_find(amp_store_t *st, const uint8_t set_id[32], uint64_t *settle_index,
                       int *cancelled) {
  return amp_sidx_find(&st->six, set_id, settle_index, cancelled);
}

/* A read txn for one lookup. A producer's is kept between reads: reset after
 * each (it pins no snapshot then) and renewed for the next, which reuses its
 * reader slot; a fresh txn (AMP_STORE_ANY) takes a slot under LMDB's
 * reader-table mutex at every begin. Returns AMP_OK, AMP_ERR_RANGE (no such
 * producer), AMP_ERR_IO. */
static int rtxn_get(amp_store_t *st, unsigned producer, MDB_txn **txn) {
  if (producer == AMP_STORE_ANY) return mdb_txn_begin(st->env, NULL, MDB_RDONLY, txn) ? AMP_ERR_IO : AMP_OK;
  if (producer >= st->cfg.producers) return AMP_ERR_RANGE;
  amp_prod_t *p = &st->prod[producer];
  if (p->rtxn && mdb_txn_renew(p->rtxn) != 0) {
    mdb_txn_abort(p->rtxn);
    p->rtxn = NULL;
  }
  if (!p->rtxn && mdb_txn_begin(st->env, NULL, MDB_RDONLY, &p->rtxn) != 0) {
    p->rtxn = NULL;
    return AMP_ERR_IO;
  }
  *txn = p->rtxn;
  return AMP_OK;
}

static void rtxn_put(unsigned producer, MDB_txn *txn) {
  if (producer == AMP_STORE_ANY) mdb_txn_abort(txn);
  else mdb_txn_reset(txn);
}

int amp_store_resolution_get(amp_store_t *st, unsigned producer, uint64_t scid, uint64_t htlc_id,
                             amp_store_resolution_t *out) {
  uint64_t loc;
  if (amp_hidx_find_res(&st->hix, scid, htlc_id, &loc) != AMP_OK) return AMP_ERR_NOTFOUND;
  MDB_txn *txn;
  int mrc, rrc = rtxn_get(st, producer, &txn);
  if (rrc != AMP_OK) return rrc;
  uint8_t kb[8];
  key64(kb, AMP_LOC_KEY(loc));
  MDB_val k = {8, kb}, v;
  int rc = AMP_ERR_IO;
  memset(out, 0, sizeof *out);
  if (loc & AMP_LOC_FAIL) {
    fail_view_t fv;
    if ((mrc = mdb_get(txn, st->db_fail, &k, &v)) != 0) {
      rc = map_mdb(mrc);
      goto done;
    }
    if (fail_rec_view(&fv, v.mv_data, v.mv_size) != AMP_OK || fv.scid != scid ||
        fv.htlc_id != htlc_id)
      goto done;
    out->settled = 0;
    out->fail_code = fv.code;
    out->fail_malformed = fv.malformed;
    out->fail_msg_len = fv.msg_len;
    memcpy(out->fail_msg, fv.msg, fv.msg_len);
    rc = AMP_OK;
  } else {
    set_view_t sv;
    if ((mrc = mdb_get(txn, st->db_set, &k, &v)) != 0) {
      rc = map_mdb(mrc);
      goto done;
    }
    uint32_t pos = AMP_LOC_POS(loc);
    if (set_rec_view(&sv, v.mv_data, v.mv_size) != AMP_OK || pos >= sv.n) goto done;
    const uint8_t *h = sv.hp + (size_t)pos * SET_HTLC;
    if (amp_be64(h) != scid || amp_be64(h + 8) != htlc_id) goto done;
    out->settle_index = AMP_LOC_KEY(loc);
    if (sv.cancelled) {
      out->settled = 0;
      out->fail_code = sv.fail_code;
      out->fail_malformed = sv.fail_malformed;
      out->fail_msg_len = sv.fail_msg_len;
      memcpy(out->fail_msg, sv.fail_msg, sv.fail_msg_len);
    } else {
      out->settled = 1;
      memcpy(out->preimage, h + 32, 32);
    }
    rc = AMP_OK;
  }
done:
  rtxn_put(producer, txn);
  if (rc == AMP_ERR_NOTFOUND) rc = AMP_ERR_IO; /* the index pointed at nothing */
  return rc;
}

int amp_store_invoice_get(amp_store_t *st, unsigned producer, const uint8_t payment_addr[32],
                          amp_store_invoice_t *out) {
  MDB_txn *txn;
  int rc = rtxn_get(st, producer, &txn);
  if (rc != AMP_OK) return rc;
  MDB_val k = {32, (void *)payment_addr}, v;
  int mrc = mdb_get(txn, st->db_inv, &k, &v);
  rc = mrc ? map_mdb(mrc) : inv_decode(out, v.mv_data, v.mv_size);
  rtxn_put(producer, txn);
  return rc == AMP_ERR_FULL ? AMP_ERR_IO : rc;
}

int amp_store_invoice_foreach(amp_store_t *st, amp_store_invoice_fn fn, void *ctx) {
  MDB_txn *txn;
  MDB_cursor *c;
  if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) return AMP_ERR_IO;
  if (mdb_cursor_open(txn, st->db_inv, &c)) {
    mdb_txn_abort(txn);
    return AMP_ERR_IO;
  }
  MDB_val k, v;
  int rc = AMP_OK, mrc;
  amp_store_invoice_t inv;
  for (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST); mrc == 0;
       mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
    if (inv_decode(&inv, v.mv_data, v.mv_size) != AMP_OK) {
      rc = AMP_ERR_IO;
      break;
    }
    int stop = fn(ctx, &inv);
    if (stop) break;
  }
  if (rc == AMP_OK && mrc && mrc != MDB_NOTFOUND) rc = AMP_ERR_IO;
  amp_wipe(&inv, sizeof inv);
  mdb_cursor_close(c);
  mdb_txn_abort(txn);
  return rc;
}

/* Decodes the set record (key k, value v) and calls fn with it; buf/cap: a
 * scratch array for its HTLCs, grown as needed (wiped after each call).
 * Returns AMP_OK with *stop what fn said, AMP_ERR_IO (undecodable) or
 * AMP_ERR_NOMEM. *prev: the record's chain link (0 in format 1). */
static int set_emit(const MDB_val *k, const MDB_val *v, amp_store_htlc_t **buf, size_t *cap,
                    amp_store_set_fn fn, void *ctx, int *stop, uint64_t *prev) {
  set_view_t sv;
  if (k->mv_size != 8 || set_rec_view(&sv, v->mv_data, v->mv_size) != AMP_OK) return AMP_ERR_IO;
  if (sv.n > *cap) {
    size_t ncap = sv.n < 16 ? 16 : sv.n;
    amp_store_htlc_t *nb = malloc(ncap * sizeof *nb);
    if (!nb) return AMP_ERR_NOMEM;
    free(*buf);
    *buf = nb;
    *cap = ncap;
  }
  for (uint32_t i = 0; i < sv.n; i++) set_htlc_decode(&(*buf)[i], sv.hp + (size_t)i * SET_HTLC);
  amp_store_set_t set = {.settle_index = amp_be64(k->mv_data),
                         .cancelled = sv.cancelled,
                         .amount_msat = sv.amount,
                         .time_ns = sv.time_ns,
                         .n_htlcs = sv.n,
                         .htlcs = *buf};
  memcpy(set.set_id, sv.set_id, 32);
  memcpy(set.payment_addr, sv.payment_addr, 32);
  *stop = fn(ctx, &set);
  if (sv.n) amp_wipe(*buf, sv.n * sizeof **buf);
  *prev = sv.prev;
  return AMP_OK;
}

int amp_store_set_foreach(amp_store_t *st, uint64_t from, amp_store_set_fn fn, void *ctx) {
  MDB_txn *txn;
  MDB_cursor *c;
  if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) return AMP_ERR_IO;
  if (mdb_cursor_open(txn, st->db_set, &c)) {
    mdb_txn_abort(txn);
    return AMP_ERR_IO;
  }
  uint8_t kb[8];
  key64(kb, from);
  MDB_val k = {8, kb}, v;
  amp_store_htlc_t *buf = NULL;
  size_t cap = 0;
  int rc = AMP_OK, mrc, stop = 0;
  uint64_t prev;
  for (mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); mrc == 0 && !stop;
       mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
    if ((rc = set_emit(&k, &v, &buf, &cap, fn, ctx, &stop, &prev)) != AMP_OK) break;
  if (rc == AMP_OK && !stop && mrc && mrc != MDB_NOTFOUND) rc = AMP_ERR_IO;
  free(buf);
  mdb_cursor_close(c);
  mdb_txn_abort(txn);
  return rc;
}

int amp_store_invoice_sets(amp_store_t *st, const uint8_t payment_addr[32], amp_store_set_fn fn,
                           void *ctx) {
  MDB_txn *txn;
  if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) return AMP_ERR_IO;
  MDB_val k = {32, (void *)payment_addr}, v;
  amp_store_invoice_t inv;
  int mrc = mdb_get(txn, st->db_inv, &k, &v), rc;
  if (mrc) {
    rc = mrc == MDB_NOTFOUND ? AMP_ERR_NOTFOUND : AMP_ERR_IO;
  } else if ((rc = inv_decode(&inv, v.mv_data, v.mv_size)) == AMP_OK) {
    amp_wipe(inv.preimage, 32);
    if (!inv.chained) rc = AMP_ERR_STATE;
    amp_store_htlc_t *buf = NULL;
    size_t cap = 0;
    int stop = 0;
    /* newest first; each link points lower (appended), so a corrupt
     * chain cannot loop */
    for (uint64_t idx = inv.last_set, prev; rc == AMP_OK && idx && !stop; idx = prev) {
      uint8_t kb[8];
      key64(kb, idx);
      MDB_val sk = {8, kb};
      if ((mrc = mdb_get(txn, st->db_set, &sk, &v)) != 0) {
        rc = AMP_ERR_IO; /* the chain points at nothing */
        break;
      }
      if ((rc = set_emit(&sk, &v, &buf, &cap, fn, ctx, &stop, &prev)) != AMP_OK) break;
      if (prev >= idx) rc = AMP_ERR_IO;
    }
    free(buf);
  } else {
    rc = AMP_ERR_IO;
  }
  mdb_txn_abort(txn);
  return rc;
}

/* --- meta ------------------------------------------------------------------------- */

static int meta_reserved(const char *key) {
  return !strcmp(key, "schema") || !strcmp(key, "prune_height") || !strcmp(key, "add_index");
}

int amp_store_meta_put(amp_store_t *st, const char *key, const void *val, size_t len) {
  size_t kl = strlen(key);
  if (kl < 1 || kl > 128 || len > 65536) return AMP_ERR_RANGE;
  if (meta_reserved(key)) return AMP_ERR_STATE;
  MDB_txn *txn;
  int mrc = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (mrc) return map_mdb(mrc);
  MDB_val k = {kl, (void *)key}, v = {len, (void *)val};
  if ((mrc = mdb_put(txn, st->db_meta, &k, &v, 0)) != 0) {
    mdb_txn_abort(txn);
    return map_mdb(mrc);
  }
  mrc = mdb_txn_commit(txn);
  return mrc ? map_mdb(mrc) : AMP_OK;
}

long amp_store_meta_get(amp_store_t *st, const char *key, void *val, size_t cap) {
  size_t kl = strlen(key);
  if (kl < 1 || kl > 128) return AMP_ERR_RANGE;
  MDB_txn *txn;
  if (mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) return AMP_ERR_IO;
  MDB_val k = {kl, (void *)key}, v;
  int mrc = mdb_get(txn, st->db_meta, &k, &v);
  long rc;
  if (mrc) {
    rc = mrc == MDB_NOTFOUND ? AMP_ERR_NOTFOUND : AMP_ERR_IO;
  } else {
    memcpy(val, v.mv_data, v.mv_size < cap ? v.mv_size : cap);
    rc = (long)v.mv_size;
  }
  mdb_txn_abort(txn);
  return rc;
}

/* --- stats ------------------------------------------------------------------------ */

_Static_assert(LAT_BUCKETS == AMP_STORE_COMMIT_HIST_BUCKETS, "commit histogram layout");

uint64_t amp_store_commit_hist(const amp_store_t *st, uint64_t n[AMP_STORE_COMMIT_HIST_BUCKETS]) {
  uint64_t total = 0;
  for (unsigned b = 0; b < LAT_BUCKETS; b++)
    total += n[b] = atomic_load_explicit(&((amp_store_t *)st)->lat[b], memory_order_relaxed);
  return total;
}

void amp_store_stats(const amp_store_t *st, amp_store_stats_t *o) {
  memset(o, 0, sizeof *o);
  o->commits = cget(st, C_COMMITS);
  o->intents = cget(st, C_INTENTS);
  o->commit_errors = cget(st, C_COMMIT_ERRORS);
  o->group_max_seen = cget(st, C_GROUP_MAX);
  o->sync_ns_total = cget(st, C_SYNC_NS);
  o->replay_entries = cget(st, C_REPLAY);
  o->resolutions = cget(st, C_RES);
  o->settles = cget(st, C_SETTLES);
  o->cancels = cget(st, C_CANCELS);
  o->fails = cget(st, C_FAILS);
  o->invoice_puts = cget(st, C_INVPUTS);
  o->prunes = cget(st, C_PRUNES);
  o->refused = cget(st, C_REFUSED);
  o->puts = cget(st, C_PUTS);
  o->replay_pruned = cget(st, C_RPL_PRUNED);
  o->handback_waits = cget(st, C_HB_WAITS);
  o->handback_dropped = cget(st, C_HB_DROPPED);
  o->commit_max_ns = cget(st, C_COMMIT_MAX);
  o->last_settle_index = cget(st, C_LAST_SETTLE);
  uint64_t total = 0, hist[LAT_BUCKETS];
  for (unsigned b = 0; b < LAT_BUCKETS; b++) {
    hist[b] = atomic_load_explicit(&((amp_store_t *)st)->lat[b], memory_order_relaxed);
    total += hist[b];
  }
  if (total) {
    uint64_t want50 = (total + 1) / 2, want99 = total - total / 100, acc = 0;
    for (unsigned b = 0; b < LAT_BUCKETS; b++) {
      acc += hist[b];
      if (!o->commit_p50_ns && acc >= want50) o->commit_p50_ns = lat_value(b);
      if (acc >= want99) {
        o->commit_p99_ns = lat_value(b);
        break;
      }
    }
  }
  o->resolutions_live = cget(st, C_RES_LIVE);
  o->replay_live = cget(st, C_RPL_LIVE);
  o->sets_known = cget(st, C_SETS_KNOWN);
  o->invoices_known = cget(st, C_INVOICES_KNOWN);
  o->filter_grows = cget(st, C_FILTER_GROWS);
  o->index_rehashes = cget(st, C_INDEX_REHASHES);
  o->writer_sleeps = cget(st, C_WRITER_SLEEPS);
  o->wakes = cget(st, C_WAKES);
  o->writer_cpu_ns = cget(st, C_WRITER_CPU);
}
