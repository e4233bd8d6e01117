/* test_engine.c: the engine end to end on a real store, with real onions
 * built by amp_sphinx_build for the node key: every receive rule (failure
 * and success paths, checking the exact wire answer), sets, timers, limits,
 * cancel, redelivery (before/after durability, after a restart), replays,
 * malformed onions; then a two-thread concurrency run over 10^5 sets
 * (through the test-only amp_worker_process_peeled). */
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "amp_child.h"
#include "amp_engine.h"
#include "amp_failure.h"
#include "amp_msg.h"
#include "amp_payload.h"
#include "amp_secp.h"
#include "amp_sha256.h"
#include "amp_sphinx.h"
#include "amp_test.h"

/* ---- answers ------------------------------------------------------------ */

typedef struct {
  uint64_t gw, scid, id;
  int type;
  uint8_t chan[32];
  uint8_t pre[32];
  uint8_t reason[AMP_FAIL_MAX_LEN];
  size_t rlen;
  uint16_t mcode;
  uint8_t sha[32];
  uint64_t cookie;               /* as emitted: its message's (send) */
} ans_t;

/* AMP_REQUIRE evaluates its condition twice: calls with effects go here */
#define MUST(x)                                                                \
  do {                                                                         \
    int must_rc_ = (x);                                                        \
    if (must_rc_ != AMP_OK) fprintf(stderr, "  rc %d (%s)\n", must_rc_, amp_strerror(must_rc_)); \
    AMP_REQUIRE(must_rc_ == AMP_OK);                                           \
  } while (0)

#define MAXANS 4096
static ans_t g_ans[MAXANS];
static size_t g_nans;

static void decode_answer(ans_t *a, uint64_t gw, uint64_t scid, uint64_t cookie,
                          const uint8_t *msg, size_t len) {
  memset(a, 0, sizeof *a);
  a->gw = gw;
  a->scid = scid;
  a->cookie = cookie;
  a->type = amp_msg_type(msg, len);
  if (a->type == AMP_MSG_UPDATE_FULFILL_HTLC) {
    amp_msg_fulfill_t m;
    MUST(amp_msg_fulfill_decode(&m, msg, len));
    a->id = m.id;
    memcpy(a->chan, m.channel_id, 32);
    memcpy(a->pre, m.payment_preimage, 32);
  } else if (a->type == AMP_MSG_UPDATE_FAIL_HTLC) {
    amp_msg_fail_t m;
    MUST(amp_msg_fail_decode(&m, msg, len));
    a->id = m.id;
    memcpy(a->chan, m.channel_id, 32);
    AMP_REQUIRE(m.reason_len <= sizeof a->reason);
    memcpy(a->reason, m.reason, m.reason_len);
    a->rlen = m.reason_len;
  } else if (a->type == AMP_MSG_UPDATE_FAIL_MALFORMED_HTLC) {
    amp_msg_fail_malformed_t m;
    MUST(amp_msg_fail_malformed_decode(&m, msg, len));
    a->id = m.id;
    memcpy(a->chan, m.channel_id, 32);
    a->mcode = m.failure_code;
    memcpy(a->sha, m.sha256_of_onion, 32);
  } else {
    AMP_CHECK(0 && "unexpected answer type");
  }
}

static void emit_rec(void *ctx, uint64_t gw, uint64_t scid, uint64_t cookie, const uint8_t *msg,
                     size_t len) {
  (void)ctx;
  AMP_REQUIRE(g_nans < MAXANS);
  decode_answer(&g_ans[g_nans++], gw, scid, cookie, msg, len);
}

/* the sink's commit report: calls, answers they announce, longest wait */
static size_t g_ncommit, g_commit_answers;
static uint64_t g_commit_max_ns;
static void committed_rec(void *ctx, uint64_t wait_ns, uint32_t answers) {
  (void)ctx;
  g_ncommit++;
  g_commit_answers += answers;
  if (wait_ns > g_commit_max_ns) g_commit_max_ns = wait_ns;
}

static const amp_engine_sink_t g_sink = {emit_rec, NULL, committed_rec};

/* ---- environment --------------------------------------------------------- */

static uint8_t g_nk[32], g_npub[33];
static uint64_t g_now = 1000000000000ull; /* CLOCK_MONOTONIC-like ns, by hand */
static uint64_t g_wall = 1700000000;
static uint64_t wall(void) { return g_wall; }

typedef struct {
  char dir[64];
  amp_store_t *st;
  amp_engine_t *e;
  amp_worker_t *w;
  amp_engine_cfg_t cfg;
  unsigned workers;
} env_t;

static void env_start(env_t *v) {
  amp_store_cfg_t sc;
  memset(&sc, 0, sizeof sc);
  sc.dir = v->dir;
  sc.sync = AMP_STORE_SYNC_NONE;
  sc.producers = v->workers + 1;
  sc.group_usec = 50;
  MUST(amp_store_open(&v->st, &sc));
  amp_engine_cfg_t c = v->cfg;
  memcpy(c.node_key, g_nk, 32);
  c.store = v->st;
  c.workers = v->workers;
  c.wall_clock = wall;
  MUST(amp_engine_new(&v->e, &c));
  amp_wipe(c.node_key, 32);
  amp_engine_set_height(v->e, 1000);
  v->w = amp_engine_worker(v->e, 0);
  amp_worker_attach(v->w);
}

static void env_stop(env_t *v) {
  amp_worker_detach(v->w);
  amp_engine_delete(v->e);
  amp_store_close(v->st);
  v->e = NULL;
  v->st = NULL;
}

static void env_open(env_t *v, const amp_engine_cfg_t *over) {
  memset(v, 0, sizeof *v);
  snprintf(v->dir, sizeof v->dir, "/tmp/ampeng-XXXXXX");
  char *d_ = mkdtemp(v->dir);
  AMP_REQUIRE(d_ != NULL);
  if (over) v->cfg = *over;
  v->workers = v->cfg.workers ? v->cfg.workers : 1;
  env_start(v);
  g_nans = 0;
  g_ncommit = g_commit_answers = 0;
  g_commit_max_ns = 0;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f) {
  (void)sb;
  (void)flag;
  (void)f;
  return remove(p);
}

static void env_close(env_t *v) {
  env_stop(v);
  nftw(v->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

/* 32 bytes from the test PRNG */
static void rand32_(uint8_t out[32], uint64_t *seed) {
  for (int j = 0; j < 4; j++) {
    uint64_t r = amp_test_rand(seed);
    memcpy(out + 8 * j, &r, 8);
  }
}

static uint64_t real_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Polls until `want` answers in total were seen (or 3 s pass); returns the
 * total. */
static size_t pump(env_t *v, size_t want) {
  uint64_t t0 = real_ns();
  while (g_nans < want && real_ns() - t0 < 3000000000ull) {
    amp_worker_poll(v->w, g_now, &g_sink);
    if (g_nans < want) usleep(100);
  }
  return g_nans;
}

/* Polls until the worker has nothing in flight (no answer expected). */
static void settle_down(env_t *v) {
  uint64_t t0 = real_ns();
  do {
    amp_worker_poll(v->w, g_now, &g_sink);
    usleep(100);
  } while (!amp_worker_idle(v->w) && real_ns() - t0 < 3000000000ull);
  amp_worker_poll(v->w, g_now, &g_sink);
}

/* ---- HTLCs -------------------------------------------------------------- */

typedef struct {
  uint64_t gw, scid, id, amount;
  uint32_t cltv;
  uint8_t hash[32];
  uint8_t chan[32];
  uint8_t ss[32];
  uint8_t pre[32];               /* expected preimage */
  uint8_t onion[AMP_ONION_LEN];
  uint8_t msg[1600];
  size_t len;
  uint64_t cookie;               /* what send passes (0: cookie_of) */
} th_t;

/* The cookie an HTLC's message goes in with by default: one per (scid, id),
 * never 0; every answer to it must carry it back (find checks). */
static uint64_t cookie_of(const th_t *t) {
  return ((t->scid * 0x9E3779B97F4A7C15ull) ^ (t->id + 1)) | 1;
}

static uint64_t g_next_id = 1;

static size_t mk_payload(uint8_t *out, uint64_t amt, uint32_t cltv, const uint8_t *addr,
                         uint64_t total, const uint8_t *share, const uint8_t *set_id,
                         uint32_t idx) {
  amp_payload_t pl;
  memset(&pl, 0, sizeof pl);
  pl.present = AMP_PAYLOAD_AMT | AMP_PAYLOAD_CLTV;
  pl.amt_to_forward = amt;
  pl.outgoing_cltv_value = cltv;
  if (addr) {
    pl.present |= AMP_PAYLOAD_MPP;
    memcpy(pl.payment_addr, addr, 32);
    pl.total_msat = total;
  }
  if (share) {
    pl.present |= AMP_PAYLOAD_AMP;
    memcpy(pl.amp_share, share, 32);
    memcpy(pl.amp_set_id, set_id, 32);
    pl.amp_child_index = idx;
  }
  long n = amp_payload_encode(out, 256, &pl);
  AMP_REQUIRE(n > 0);
  return (size_t)n;
}

/* Builds the update_add_htlc carrying payload for us (two_hops: we are the
 * first of two hops, so the onion is not final here). */
static void mk_add_hops(th_t *t, const uint8_t *pl, size_t pl_len, int two_hops) {
  uint8_t sk[32], pks[2][33], ss[2][32];
  const uint8_t *pls[2] = {pl, pl};
  size_t lens[2] = {pl_len, pl_len};
  MUST(amp_random(sk, 32));
  memcpy(pks[0], g_npub, 33);
  if (two_hops) {
    uint8_t other[32];
    amp_pubkey_t opk;
    memset(other, 7, 32);
    MUST(amp_secp_pubkey_create(&opk, other));
    amp_secp_pubkey_serialize(pks[1], &opk);
  }
  MUST(amp_sphinx_build(t->onion, sk, (const uint8_t(*)[33])pks, pls, lens,
                               two_hops ? 2 : 1, t->hash, 32, ss));
  memcpy(t->ss, ss[0], 32);
  if (!t->id) t->id = g_next_id++;
  if (!t->scid) t->scid = 0x10000 + (t->id % 7);
  if (!t->gw) t->gw = 1;
  memset(t->chan, (int)(t->scid & 0xff), 32);
  amp_msg_add_t m;
  memset(&m, 0, sizeof m);
  memcpy(m.channel_id, t->chan, 32);
  m.id = t->id;
  m.amount_msat = t->amount;
  memcpy(m.payment_hash, t->hash, 32);
  m.cltv_expiry = t->cltv;
  m.onion = t->onion;
  long n = amp_msg_add_encode(t->msg, sizeof t->msg, &m);
  AMP_REQUIRE(n > 0);
  t->len = (size_t)n;
}

static void mk_add(th_t *t, const uint8_t *pl, size_t pl_len) { mk_add_hops(t, pl, pl_len, 0); }

/* Re-encodes t's message after its fields changed (same onion). */
static void re_encode(th_t *t) {
  amp_msg_add_t m;
  memset(&m, 0, sizeof m);
  memcpy(m.channel_id, t->chan, 32);
  m.id = t->id;
  m.amount_msat = t->amount;
  memcpy(m.payment_hash, t->hash, 32);
  m.cltv_expiry = t->cltv;
  m.onion = t->onion;
  long n = amp_msg_add_encode(t->msg, sizeof t->msg, &m);
  AMP_REQUIRE(n > 0);
  t->len = (size_t)n;
}

#define MAXSH 16
typedef struct {
  uint8_t root[32];
  uint8_t set_id[32];
  size_t n;
  uint8_t share[MAXSH][32];
  th_t h[MAXSH];
} aset_t;

/* An AMP set of n shards of amt each for invoice addr, total as given. */
static void mk_amp_set(aset_t *s, const uint8_t addr[32], size_t n, uint64_t amt, uint64_t total,
                       uint32_t cltv) {
  memset(s, 0, sizeof *s);
  s->n = n;
  MUST(amp_random(s->root, 32));
  MUST(amp_random(s->set_id, 32));
  MUST(amp_child_split(s->share, n, s->root));
  for (size_t i = 0; i < n; i++) {
    amp_child_t c;
    amp_child_derive(&c, s->root, s->share[i], (uint32_t)i);
    th_t *t = &s->h[i];
    memcpy(t->hash, c.hash, 32);
    memcpy(t->pre, c.preimage, 32);
    t->amount = amt;
    t->cltv = cltv;
    uint8_t pl[256];
    size_t pn = mk_payload(pl, amt, cltv, addr, total, s->share[i], s->set_id, (uint32_t)i);
    mk_add(t, pl, pn);
  }
}

static void send(env_t *v, th_t *t) {
  amp_engine_in_t in = {t->gw, t->scid, t->msg, t->len, g_now, t->cookie ? t->cookie : cookie_of(t)};
  amp_worker_process(v->w, &in, 1, &g_sink);
}

static void send_set(env_t *v, aset_t *s) {
  for (size_t i = 0; i < s->n; i++) send(v, &s->h[i]);
}

static const ans_t *find(const th_t *t, int *count) {
  const ans_t *a = NULL;
  int c = 0;
  for (size_t i = 0; i < g_nans; i++)
    if (g_ans[i].scid == t->scid && g_ans[i].id == t->id) {
      a = &g_ans[i];
      c++;
    }
  if (count) *count = c;
  /* the newest answer carries its message's cookie (send) */
  if (a) AMP_CHECK_EQ(a->cookie, t->cookie ? t->cookie : cookie_of(t));
  return a;
}

/* Decodes a failure onion with t's shared secret; returns the failure code
 * and points *data at the data. */
static int fail_code(const ans_t *a, const th_t *t, const uint8_t **data, size_t *dlen) {
  static uint8_t buf[AMP_FAIL_MAX_LEN];
  if (a->type != AMP_MSG_UPDATE_FAIL_HTLC) return -1;
  memcpy(buf, a->reason, a->rlen);
  size_t hop = 9;
  const uint8_t *m;
  size_t ml;
  if (amp_sphinx_fail_decode_var(&hop, &m, &ml, buf, a->rlen, (const uint8_t(*)[32])t->ss, 1) !=
          AMP_OK ||
      hop != 0 || ml < 2)
    return -2;
  if (data) *data = m + 2;
  if (dlen) *dlen = ml - 2;
  return amp_be16(m);
}

static int g_height = 1000;

/* Checks t got exactly one answer: incorrect_or_unknown_payment_details with
 * its amount and the height. */
#define EXPECT_DETAILS(t) expect_details_((t), __LINE__)
static void expect_details_(const th_t *t, int line) {
  int c;
  const ans_t *a = find(t, &c);
  const uint8_t *d;
  size_t dl;
  if (c != 1 || !a || fail_code(a, t, &d, &dl) != AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS ||
      dl != 12 || amp_be64(d) != t->amount || amp_be32(d + 8) != (uint32_t)g_height ||
      memcmp(a->chan, t->chan, 32) != 0 || a->gw != t->gw) {
    fprintf(stderr, "  (expect_details at line %d: %d answers, code %d)\n", line, c,
            a ? fail_code(a, t, NULL, NULL) : -9);
    AMP_CHECK(0 && "incorrect_or_unknown_payment_details");
  } else {
    AMP_CHECK(1);
  }
}

#define EXPECT_CODE(t, code) expect_code_((t), (code), __LINE__)
static void expect_code_(const th_t *t, int code, int line) {
  int c;
  const ans_t *a = find(t, &c);
  int got = a ? fail_code(a, t, NULL, NULL) : -9;
  if (c != 1 || got != code) {
    fprintf(stderr, "  (expect_code at line %d: %d answers, code %d want %d)\n", line, c, got,
            code);
    AMP_CHECK(0 && "failure code");
  } else {
    AMP_CHECK(1);
  }
}

#define EXPECT_FULFILL(t) expect_fulfill_((t), __LINE__)
static void expect_fulfill_(const th_t *t, int line) {
  int c;
  const ans_t *a = find(t, &c);
  if (c != 1 || a->type != AMP_MSG_UPDATE_FULFILL_HTLC || memcmp(a->pre, t->pre, 32) != 0 ||
      memcmp(a->chan, t->chan, 32) != 0) {
    fprintf(stderr, "  (expect_fulfill at line %d: %d answers, type %d)\n", line, c,
            a ? a->type : -1);
    AMP_CHECK(0 && "fulfill");
  } else {
    AMP_CHECK(1);
  }
}

#define EXPECT_NONE(t) expect_none_((t), __LINE__)
static void expect_none_(const th_t *t, int line) {
  int c;
  find(t, &c);
  if (c) fprintf(stderr, "  (expect_none at line %d: %d answers)\n", line, c);
  AMP_CHECK_EQ(c, 0);
}

static uint64_t stat_(env_t *v, size_t off) {
  amp_engine_stats_t s;
  amp_engine_stats(v->e, &s);
  return *(uint64_t *)(void *)((char *)&s + off);
}
#define STAT(v, f) stat_((v), offsetof(amp_engine_stats_t, f))

static amp_store_invoice_t add_amp(env_t *v, uint64_t value) {
  amp_invoice_add_t r;
  memset(&r, 0, sizeof r);
  r.amp = 1;
  r.value_msat = value;
  amp_store_invoice_t out;
  MUST(amp_engine_invoice_add(v->e, &r, &out));
  return out;
}

static amp_store_invoice_t add_mpp(env_t *v, uint64_t value) {
  amp_invoice_add_t r;
  memset(&r, 0, sizeof r);
  r.value_msat = value;
  amp_store_invoice_t out;
  MUST(amp_engine_invoice_add(v->e, &r, &out));
  return out;
}

#define CLTV 1100 /* height 1000 + 100: above 19 and the default invoice delta 80 */

/* ---- success paths --------------------------------------------------------- */

static void test_amp_settle(void) {
  env_t v;
  env_open(&v, NULL);
  amp_store_invoice_t inv = add_amp(&v, 3000);
  static aset_t s;
  mk_amp_set(&s, inv.payment_addr, 3, 1000, 3000, CLTV);
  send(&v, &s.h[0]);
  send(&v, &s.h[1]);
  pump(&v, 1);
  AMP_CHECK_EQ(g_nans, 0); /* held */
  AMP_CHECK_EQ(STAT(&v, held_now), 2);
  amp_held_info_t hi[4];
  AMP_CHECK_EQ(amp_engine_held_list(v.e, 0, hi, 4), 2);
  AMP_CHECK_MEM(hi[0].set_id, s.set_id, 32);
  struct timespec c0, c1;
  clock_gettime(CLOCK_MONOTONIC, &c0);
  send(&v, &s.h[2]);
  pump(&v, 3);
  clock_gettime(CLOCK_MONOTONIC, &c1);
  for (int i = 0; i < 3; i++) EXPECT_FULFILL(&s.h[i]);
  /* one commit report, before the fulfills it releases, for 3 answers; its
   * wait lies within the time the last shard took to be answered */
  AMP_CHECK_EQ(g_ncommit, 1);
  AMP_CHECK_EQ(g_commit_answers, 3);
  AMP_CHECK(g_commit_max_ns > 0);
  AMP_CHECK(g_commit_max_ns <= (uint64_t)(c1.tv_sec - c0.tv_sec) * 1000000000ull +
                                   (uint64_t)c1.tv_nsec - (uint64_t)c0.tv_nsec);
  AMP_CHECK_EQ(STAT(&v, held_now), 0);
  AMP_CHECK_EQ(STAT(&v, sets_settled), 1);
  AMP_CHECK_EQ(STAT(&v, htlcs_settled), 3);
  amp_store_invoice_t got;
  AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, inv.payment_addr, &got) == AMP_OK);
  AMP_CHECK_EQ(got.amt_paid_msat, 3000);
  AMP_CHECK_EQ(got.sets_settled, 1);
  AMP_CHECK_EQ(got.state, AMP_INVOICE_OPEN);
  amp_set_info_t si;
  AMP_CHECK(amp_engine_set_lookup(v.e, s.set_id, &si) == AMP_OK);
  AMP_CHECK_EQ(si.state, AMP_SET_SETTLED);
  AMP_CHECK(si.settle_index >= 1);
  env_close(&v);
}

/* AMP invoice reuse: three sets, each its own settle index; amt_paid adds up.
 * An overpaying set (sum above total) settles too. */
static void test_amp_reuse(void) {
  env_t v;
  env_open(&v, NULL);
  amp_store_invoice_t inv = add_amp(&v, 0);
  static aset_t s[3];
  uint64_t idx[3];
  size_t want = 0;
  for (int k = 0; k < 3; k++) {
    mk_amp_set(&s[k], inv.payment_addr, (size_t)k + 1, 700, 700 * ((uint64_t)k + 1) - 100, CLTV);
    send_set(&v, &s[k]);
    want += (size_t)k + 1;
    pump(&v, want);
    for (size_t i = 0; i < s[k].n; i++) EXPECT_FULFILL(&s[k].h[i]);
    amp_set_info_t si;
    AMP_CHECK(amp_engine_set_lookup(v.e, s[k].set_id, &si) == AMP_OK);
    AMP_CHECK_EQ(si.state, AMP_SET_SETTLED);
    idx[k] = si.settle_index;
  }
  AMP_CHECK(idx[0] < idx[1] && idx[1] < idx[2]);
  /* settled sets leave the engine's memory; the store answers for them */
  AMP_CHECK_EQ(amp_engine_set_table_size(v.e), 0);
  {
    amp_set_info_t si, list[8], of_inv[8];
    AMP_CHECK(amp_engine_set_lookup(v.e, s[1].set_id, &si) == AMP_OK);
    AMP_CHECK_EQ(si.state, AMP_SET_SETTLED);
    AMP_CHECK_EQ(si.settle_index, idx[1]);
    AMP_CHECK_EQ(si.amount_msat, 700 * 2);
    AMP_CHECK(si.is_amp);
    AMP_CHECK(memcmp(si.payment_addr, inv.payment_addr, 32) == 0);
    /* a held shard of a fourth set: the list gives it first, then the log */
    static aset_t h4;
    mk_amp_set(&h4, inv.payment_addr, 2, 700, 1400, CLTV);
    send(&v, &h4.h[0]);
    pump(&v, want);
    AMP_CHECK_EQ(amp_engine_set_table_size(v.e), 1);
    AMP_CHECK_EQ(amp_engine_set_list(v.e, 0, list, 8), 4);
    AMP_CHECK_EQ(list[0].state, AMP_SET_COLLECTING);
    AMP_CHECK(memcmp(list[0].set_id, h4.set_id, 32) == 0);
    for (int k = 0; k < 3; k++) {
      AMP_CHECK(memcmp(list[1 + k].set_id, s[k].set_id, 32) == 0);
      AMP_CHECK_EQ(list[1 + k].settle_index, idx[k]);
    }
    /* paging: skip 2 = the live one and the first settled one */
    AMP_CHECK_EQ(amp_engine_set_list(v.e, 2, list, 8), 2);
    AMP_CHECK(memcmp(list[0].set_id, s[1].set_id, 32) == 0);
    AMP_CHECK_EQ(amp_engine_set_list(v.e, 1, list, 1), 1);
    AMP_CHECK(memcmp(list[0].set_id, s[0].set_id, 32) == 0);
    /* the invoice's sets: the live one, then its chain in the store in
     * settle order; cut short, the newest */
    AMP_CHECK_EQ(amp_engine_invoice_sets(v.e, inv.payment_addr, of_inv, 8), 4);
    AMP_CHECK_EQ(of_inv[0].state, AMP_SET_COLLECTING);
    for (int k = 0; k < 3; k++) {
      AMP_CHECK(memcmp(of_inv[1 + k].set_id, s[k].set_id, 32) == 0);
      AMP_CHECK_EQ(of_inv[1 + k].settle_index, idx[k]);
      AMP_CHECK_EQ(of_inv[1 + k].state, AMP_SET_SETTLED);
    }
    AMP_CHECK_EQ(amp_engine_invoice_sets(v.e, inv.payment_addr, of_inv, 2), 2);
    AMP_CHECK_EQ(of_inv[1].settle_index, idx[2]);
    send(&v, &h4.h[1]);
    want += 2;
    pump(&v, want);
    EXPECT_FULFILL(&h4.h[0]);
    EXPECT_FULFILL(&h4.h[1]);
    AMP_CHECK_EQ(amp_engine_set_table_size(v.e), 0);
  }
  amp_store_invoice_t got;
  AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, inv.payment_addr, &got) == AMP_OK);
  AMP_CHECK_EQ(got.amt_paid_msat, 700 * 6 + 1400);
  AMP_CHECK_EQ(got.sets_settled, 4);
  AMP_CHECK_EQ(got.state, AMP_INVOICE_OPEN);
  /* a late shard for a settled set */
  static aset_t late;
  mk_amp_set(&late, inv.payment_addr, 1, 700, 600, CLTV);
  memcpy(late.set_id, s[0].set_id, 32);
  uint8_t pl[256];
  size_t pn = mk_payload(pl, 700, CLTV, inv.payment_addr, 600, late.share[0], late.set_id, 0);
  late.h[0].id = 0;
  mk_add(&late.h[0], pl, pn);
  send(&v, &late.h[0]);
  pump(&v, want + 1);
  EXPECT_DETAILS(&late.h[0]);
  AMP_CHECK_EQ(STAT(&v, fail_set_done), 1);
  /* the settled sets survive a restart (rule 8 after recovery) */
  env_stop(&v);
  env_start(&v);
  th_t again = late.h[0];
  again.id = 0;
  mk_add(&again, pl, pn);
  send(&v, &again);
  pump(&v, want + 2);
  EXPECT_DETAILS(&again);
  AMP_CHECK_EQ(STAT(&v, fail_set_done), 1); /* counters restart with the engine */
  AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, inv.payment_addr, &got) == AMP_OK);
  AMP_CHECK_EQ(got.amt_paid_msat, 700 * 6 + 1400);
  AMP_CHECK_EQ(got.sets_settled, 4);
  /* recovery loads no set: they are the store's */
  AMP_CHECK_EQ(amp_engine_set_table_size(v.e), 0);
  amp_set_info_t si2;
  AMP_CHECK(amp_engine_set_lookup(v.e, s[2].set_id, &si2) == AMP_OK);
  AMP_CHECK_EQ(si2.state, AMP_SET_SETTLED);
  AMP_CHECK_EQ(si2.settle_index, idx[2]);
  env_close(&v);
}

static void test_mpp(void) {
  env_t v;
  env_open(&v, NULL);
  amp_store_invoice_t inv = add_mpp(&v, 5000);
  th_t t[3];
  memset(t, 0, sizeof t);
  for (int i = 0; i < 3; i++) {
    memcpy(t[i].hash, inv.payment_hash, 32);
    memcpy(t[i].pre, inv.preimage, 32);
    t[i].amount = 2500;
    t[i].cltv = CLTV;
    uint8_t pl[256];
    size_t pn = mk_payload(pl, 2500, CLTV, inv.payment_addr, 5000, NULL, NULL, 0);
    mk_add(&t[i], pl, pn);
  }
  send(&v, &t[0]);
  pump(&v, 1);
  AMP_CHECK_EQ(g_nans, 0);
  send(&v, &t[1]);
  pump(&v, 2);
  EXPECT_FULFILL(&t[0]);
  EXPECT_FULFILL(&t[1]);
  amp_store_invoice_t got;
  AMP_CHECK(amp_engine_invoice_lookup_hash(v.e, inv.payment_hash, &got) == AMP_OK);
  AMP_CHECK_EQ(got.state, AMP_INVOICE_SETTLED);
  AMP_CHECK_EQ(got.amt_paid_msat, 5000);
  /* MPP settles once: a third HTLC fails (rule 4) */
  send(&v, &t[2]);
  pump(&v, 3);
  EXPECT_DETAILS(&t[2]);
  AMP_CHECK_EQ(STAT(&v, fail_invoice_not_open), 1);
  AMP_CHECK_EQ(amp_engine_set_table_size(v.e), 0);
  amp_set_info_t si;
  AMP_CHECK(amp_engine_set_lookup(v.e, inv.payment_hash, &si) == AMP_OK);
  AMP_CHECK_EQ(si.state, AMP_SET_SETTLED);
  AMP_CHECK(!si.is_amp);
  AMP_CHECK(memcmp(si.set_id, inv.payment_hash, 32) == 0);
  AMP_CHECK_EQ(si.amount_msat, 5000);
  env_close(&v);
}

/* An AMP set_id is the sender's choice and an MPP invoice's payment_hash is
 * public: the two must not share a key in the store's set index, or anyone
 * holding the invoice could pay a spontaneous AMP set with set_id = its hash
 * first and leave the invoice unpayable (its settle refused as a duplicate). */
static void test_mpp_amp_keys(void) {
  amp_engine_cfg_t c = {.accept_amp = 1};
  env_t v;
  env_open(&v, &c);
  amp_store_invoice_t mpp = add_mpp(&v, 3000);
  uint8_t addr[32], pl[256];
  MUST(amp_random(addr, 32));
  /* the AMP set first, with set_id = the MPP invoice's hash */
  static aset_t a;
  mk_amp_set(&a, addr, 1, 1000, 1000, CLTV);
  memcpy(a.set_id, mpp.payment_hash, 32);
  size_t pn = mk_payload(pl, 1000, CLTV, addr, 1000, a.share[0], a.set_id, 0);
  mk_add(&a.h[0], pl, pn);
  send(&v, &a.h[0]);
  pump(&v, 1);
  EXPECT_FULFILL(&a.h[0]);
  /* then the MPP payment: it settles */
  th_t t;
  memset(&t, 0, sizeof t);
  memcpy(t.hash, mpp.payment_hash, 32);
  memcpy(t.pre, mpp.preimage, 32);
  t.amount = 3000;
  t.cltv = CLTV;
  pn = mk_payload(pl, 3000, CLTV, mpp.payment_addr, 3000, NULL, NULL, 0);
  mk_add(&t, pl, pn);
  send(&v, &t);
  pump(&v, 2);
  EXPECT_FULFILL(&t);
  AMP_CHECK_EQ(STAT(&v, store_gave_up), 0);
  /* the id now names two settled sets: a lookup gives the AMP one (the MPP
   * one is found through its invoice) */
  amp_set_info_t si;
  AMP_CHECK(amp_engine_set_lookup(v.e, mpp.payment_hash, &si) == AMP_OK);
  AMP_CHECK_EQ(si.state, AMP_SET_SETTLED);
  AMP_CHECK(si.is_amp);
  AMP_CHECK_EQ(si.amount_msat, 1000);
  size_t n = amp_engine_invoice_sets(v.e, mpp.payment_addr, &si, 1);
  AMP_CHECK_EQ(n, 1);
  AMP_CHECK(!si.is_amp && si.amount_msat == 3000 && memcmp(si.set_id, mpp.payment_hash, 32) == 0);
  /* a second AMP set with that id: a reused set_id */
  static aset_t b;
  uint8_t addr2[32];
  MUST(amp_random(addr2, 32));
  mk_amp_set(&b, addr2, 1, 1000, 1000, CLTV);
  memcpy(b.set_id, mpp.payment_hash, 32);
  pn = mk_payload(pl, 1000, CLTV, addr2, 1000, b.share[0], b.set_id, 0);
  mk_add(&b.h[0], pl, pn);
  send(&v, &b.h[0]);
  pump(&v, 3);
  EXPECT_DETAILS(&b.h[0]);
  AMP_CHECK_EQ(STAT(&v, fail_set_done), 1);
  env_close(&v);
}

static void test_spontaneous(void) {
  uint8_t addr[32];
  MUST(amp_random(addr, 32));
  static aset_t s;
  mk_amp_set(&s, addr, 2, 500, 1000, CLTV);
  /* off: no invoice */
  env_t v;
  env_open(&v, NULL);
  send_set(&v, &s);
  pump(&v, 2);
  EXPECT_DETAILS(&s.h[0]);
  EXPECT_DETAILS(&s.h[1]);
  AMP_CHECK_EQ(STAT(&v, fail_no_invoice), 2);
  env_close(&v);
  /* on: a placeholder invoice from the first HTLC */
  amp_engine_cfg_t c;
  memset(&c, 0, sizeof c);
  c.accept_amp = 1;
  env_open(&v, &c);
  send_set(&v, &s);
  pump(&v, 2);
  EXPECT_FULFILL(&s.h[0]);
  EXPECT_FULFILL(&s.h[1]);
  amp_store_invoice_t got;
  AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, addr, &got) == AMP_OK);
  AMP_CHECK_EQ(got.placeholder, 1);
  AMP_CHECK_EQ(got.value_msat, 1000);
  AMP_CHECK_EQ(got.amt_paid_msat, 1000);
  AMP_CHECK_EQ(STAT(&v, placeholder_invoices), 1);
  amp_store_invoice_t list[4];
  AMP_CHECK_EQ(amp_engine_invoice_list(v.e, 0, 0, list, 4), 1);
  /* used by nothing once its set is settled: out of memory, in the store */
  AMP_CHECK_EQ(STAT(&v, placeholders_evicted), 1);
  AMP_CHECK_EQ(STAT(&v, invoices_now), 0);
  /* durable: it is there after a restart */
  env_stop(&v);
  env_start(&v);
  AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, addr, &got) == AMP_OK);
  AMP_CHECK_EQ(got.placeholder, 1);
  env_close(&v);
}

/* Waits (no worker poll) until the store has committed `settles` SETTLE
 * intents, 3 s at most; returns its stats then. */
static amp_store_stats_t wait_settles(env_t *v, uint64_t settles) {
  amp_store_stats_t st;
  uint64_t t0 = real_ns();
  do {
    amp_store_stats(v->st, &st);
    if (st.settles >= settles) break;
    usleep(200);
  } while (real_ns() - t0 < 3000000000ull);
  return st;
}

/* A spontaneous payment's SETTLE goes to the store right behind its
 * placeholder's INVOICE_PUT (same worker, same ring: the writer applies the
 * put first), not after a poll has seen the put committed; a put that fails
 * makes the settle wait for it, as before. */
static void test_spontaneous_settle_order(void) {
  amp_engine_cfg_t c = {.accept_amp = 1};
  env_t v;
  env_open(&v, &c);
  settle_down(&v);
  uint8_t addr[32];
  MUST(amp_random(addr, 32));
  static aset_t s;
  mk_amp_set(&s, addr, 1, 700, 700, CLTV);
  send_set(&v, &s); /* the set completes: INVOICE_PUT, then SETTLE */
  amp_store_stats_t st = wait_settles(&v, 1);
  AMP_CHECK_EQ(st.invoice_puts, 1);
  AMP_CHECK_EQ(st.settles, 1); /* with no poll in between */
  AMP_CHECK_EQ(st.refused, 0);
  AMP_CHECK_EQ(g_nans, 0);     /* nothing out before the worker sees the commit */
  pump(&v, 1);
  EXPECT_FULFILL(&s.h[0]);
  AMP_CHECK_EQ(STAT(&v, store_retries), 0);

  /* the put fails (a failed commit, before it reaches the store): the settle
   * is refused (no such invoice), then waits for the put's retry */
  static aset_t s2;
  MUST(amp_random(addr, 32));
  mk_amp_set(&s2, addr, 1, 800, 800, CLTV);
  amp_engine_test_fail_commits(v.e, 1);
  send_set(&v, &s2);
  for (int i = 0; i < 20 && g_nans < 2; i++) {
    amp_worker_poll(v.w, g_now, &g_sink);
    usleep(1000);
    g_now += 5 * 1000000ull;
  }
  pump(&v, 2);
  settle_down(&v);
  EXPECT_FULFILL(&s2.h[0]);
  amp_store_stats(v.st, &st);
  AMP_CHECK_EQ(st.invoice_puts, 2);
  AMP_CHECK_EQ(st.settles, 2);
  AMP_CHECK_EQ(STAT(&v, store_retries), 2); /* the put, and the settle once */
  AMP_CHECK_EQ(STAT(&v, store_gave_up), 0);
  amp_store_invoice_t got;
  AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, addr, &got) == AMP_OK);
  AMP_CHECK_EQ(got.amt_paid_msat, 800);
  env_close(&v);
}

/* Sends s, polls until `want` answers in total, then until the worker is idle. */
static void send_set_wait(env_t *v, aset_t *s, size_t want) {
  send_set(v, s);
  pump(v, want);
  settle_down(v);
}

#define EXPECT_SET_FULFILL(s)                                                                    \
  do {                                                                                           \
    for (size_t i_ = 0; i_ < (s)->n; i_++) EXPECT_FULFILL(&(s)->h[i_]);                         \
  } while (0)

/* Two spontaneous payments to one addr on two workers, the second worker's
 * whole payment (placeholder made or read back, settled, evicted) inside the
 * first worker's window between finding no invoice in memory and inserting
 * one (the hook). A new addr: the first worker must read the committed
 * placeholder back, not make a second that rewrites its record (CI saw
 * placeholder_invoices 257 for 256 addrs in test_placeholders_mt). A known
 * addr: the copy the first worker read before the other payment is stale,
 * and it must read again. */
typedef struct {
  env_t *v;
  aset_t *s;
  _Atomic int fired;
} race_ctx_t;

static void *race_other_(void *arg) {
  race_ctx_t *r = arg;
  amp_worker_t *w1 = amp_engine_worker(r->v->e, 1);
  amp_worker_attach(w1);
  amp_engine_in_t in = {r->s->h[0].gw, r->s->h[0].scid, r->s->h[0].msg, r->s->h[0].len, g_now,
                        cookie_of(&r->s->h[0])};
  amp_worker_process(w1, &in, 1, &g_sink);
  uint64_t t0 = real_ns();
  uint64_t evicted = STAT(r->v, placeholders_evicted);
  while ((STAT(r->v, placeholders_evicted) == evicted || !amp_worker_idle(w1)) &&
         real_ns() - t0 < 3000000000ull) {
    amp_worker_poll(w1, g_now, &g_sink);
    usleep(100);
  }
  amp_worker_detach(w1);
  return NULL;
}

static void race_hook_(void *ctx) {
  race_ctx_t *r = ctx;
  if (atomic_exchange(&r->fired, 1)) return; /* once: not for the other worker's */
  pthread_t th;
  AMP_REQUIRE(pthread_create(&th, NULL, race_other_, r) == 0);
  pthread_join(th, NULL);
}

/* Sends `first` on worker 0 with the hook running r->s on worker 1 inside
 * its window; both must be fulfilled (want: answers in total by then). */
static void race_run_(env_t *v, race_ctx_t *r, aset_t *first, size_t want) {
  atomic_store(&r->fired, 0);
  amp_engine_test_before_placeholder(v->e, race_hook_, r);
  send_set(v, first);
  pump(v, want);
  settle_down(v);
  amp_engine_test_before_placeholder(v->e, NULL, NULL);
  AMP_CHECK_EQ(atomic_load(&r->fired), 1);
  EXPECT_FULFILL(&r->s->h[0]);
  EXPECT_FULFILL(&first->h[0]);
}

static void test_placeholder_race(void) {
  amp_engine_cfg_t c = {.workers = 2, .accept_amp = 1};
  env_t v;
  env_open(&v, &c);
  uint8_t a[32];
  MUST(amp_random(a, 32));
  static aset_t first, other;
  mk_amp_set(&first, a, 1, 2000, 2000, CLTV);
  mk_amp_set(&other, a, 1, 1000, 1000, CLTV); /* a later payment may not pay less */
  race_ctx_t r = {.v = &v, .s = &other};
  race_run_(&v, &r, &first, 2);
  AMP_CHECK_EQ(STAT(&v, placeholder_invoices), 1);
  AMP_CHECK_EQ(STAT(&v, placeholders_loaded), 1);
  amp_store_stats_t st;
  amp_store_stats(v.st, &st);
  AMP_CHECK_EQ(st.invoice_puts, 1);
  amp_store_invoice_t got;
  AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, a, &got) == AMP_OK);
  AMP_CHECK_EQ(got.value_msat, 1000); /* the first payment's total */
  AMP_CHECK_EQ(got.amt_paid_msat, 3000);
  AMP_CHECK_EQ(got.sets_settled, 2);
  AMP_CHECK_EQ(STAT(&v, invoices_now), 0);

  /* the addr is known now: both workers read it back */
  static aset_t again, other2;
  mk_amp_set(&again, a, 1, 3000, 3000, CLTV);
  mk_amp_set(&other2, a, 1, 4000, 4000, CLTV);
  r.s = &other2;
  uint64_t evicted = STAT(&v, placeholders_evicted);
  race_run_(&v, &r, &again, 4);
  /* worker 1 read it once, worker 0 twice: its first copy was not inserted */
  AMP_CHECK_EQ(STAT(&v, placeholders_loaded), 3);
  AMP_CHECK_EQ(STAT(&v, placeholders_evicted), evicted + 2);
  AMP_CHECK_EQ(STAT(&v, placeholder_invoices), 1);
  AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, a, &got) == AMP_OK);
  AMP_CHECK_EQ(got.amt_paid_msat, 10000);
  AMP_CHECK_EQ(got.sets_settled, 4);
  env_close(&v);
}

/* A placeholder lives in memory only while something uses it: evicted after
 * each set, read back for the next payment, the admin's cancel and a
 * timeout; never loaded at start. Invoices the operator added stay. */
static void test_placeholder_evict(void) {
  amp_engine_cfg_t c = {.accept_amp = 1, .hold_timeout_ms = 1000};
  env_t v;
  env_open(&v, &c);
  uint8_t a[32], b[32];
  MUST(amp_random(a, 32));
  MUST(amp_random(b, 32));
  static aset_t s1, s2, s3, again, lone, s4;
  mk_amp_set(&s1, a, 2, 500, 1000, CLTV);
  send_set_wait(&v, &s1, 2);
  EXPECT_SET_FULFILL(&s1);
  AMP_CHECK_EQ(STAT(&v, invoices_now), 0);
  AMP_CHECK_EQ(STAT(&v, placeholders_evicted), 1);
  /* a second payment to the same addr reads it back: no second placeholder */
  mk_amp_set(&s2, a, 1, 1500, 1500, CLTV);
  send_set_wait(&v, &s2, 3);
  EXPECT_SET_FULFILL(&s2);
  AMP_CHECK_EQ(STAT(&v, placeholder_invoices), 1);
  AMP_CHECK_EQ(STAT(&v, placeholders_loaded), 1);
  AMP_CHECK_EQ(STAT(&v, placeholders_evicted), 2);
  AMP_CHECK_EQ(STAT(&v, invoices_now), 0);
  amp_store_invoice_t got;
  AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, a, &got) == AMP_OK);
  AMP_CHECK_EQ(got.amt_paid_msat, 2500);
  AMP_CHECK_EQ(got.sets_settled, 2);
  AMP_CHECK_EQ(got.value_msat, 1000); /* the first payment's total */
  /* rule 8 from the store: set 1's id again, a new HTLC */
  mk_amp_set(&again, a, 1, 1000, 1000, CLTV);
  memcpy(again.set_id, s1.set_id, 32);
  {
    uint8_t pl[256];
    size_t pn = mk_payload(pl, 1000, CLTV, a, 1000, again.share[0], again.set_id, 0);
    mk_add(&again.h[0], pl, pn);
  }
  send_set_wait(&v, &again, 4);
  EXPECT_DETAILS(&again.h[0]);
  AMP_CHECK_EQ(STAT(&v, fail_set_done), 1);
  AMP_CHECK_EQ(STAT(&v, invoices_now), 0);
  /* a store read error on the way back: that HTLC fails (counted), nothing
   * changes, the next one reads it */
  static aset_t rd1, rd2;
  mk_amp_set(&rd1, a, 1, 1000, 1000, CLTV);
  amp_engine_test_fail_invoice_reads(v.e, 1);
  send_set_wait(&v, &rd1, 5);
  EXPECT_DETAILS(&rd1.h[0]);
  AMP_CHECK_EQ(STAT(&v, invoice_read_errors), 1);
  AMP_CHECK_EQ(STAT(&v, placeholder_invoices), 1); /* no second placeholder for it */
  AMP_CHECK_EQ(STAT(&v, invoices_now), 0);
  AMP_CHECK_EQ(STAT(&v, held_now), 0);
  mk_amp_set(&rd2, a, 1, 1000, 1000, CLTV);
  send_set_wait(&v, &rd2, 6);
  EXPECT_SET_FULFILL(&rd2);
  AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, a, &got) == AMP_OK);
  AMP_CHECK_EQ(got.amt_paid_msat, 3500);
  AMP_CHECK_EQ(got.sets_settled, 3);
  /* the admin cancels it while it is out of memory: a read error first */
  amp_engine_test_fail_invoice_reads(v.e, 1);
  AMP_CHECK_EQ(amp_engine_invoice_cancel(v.e, a), AMP_ERR_IO);
  AMP_CHECK_EQ(amp_engine_invoice_cancel(v.e, a), AMP_OK);
  AMP_CHECK_EQ(STAT(&v, invoices_now), 0);
  AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, a, &got) == AMP_OK);
  AMP_CHECK_EQ(got.state, AMP_INVOICE_CANCELED);
  AMP_CHECK_EQ(got.amt_paid_msat, 3500);
  AMP_CHECK_EQ(amp_engine_invoice_cancel(v.e, a), AMP_ERR_STATE);
  uint8_t nowhere[32];
  MUST(amp_random(nowhere, 32));
  AMP_CHECK_EQ(amp_engine_invoice_cancel(v.e, nowhere), AMP_ERR_NOTFOUND);
  AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, nowhere, &got) == AMP_ERR_NOTFOUND);
  mk_amp_set(&s3, a, 1, 1000, 1000, CLTV);
  send_set_wait(&v, &s3, 7);
  EXPECT_DETAILS(&s3.h[0]);
  AMP_CHECK_EQ(STAT(&v, fail_invoice_not_open), 1);
  AMP_CHECK_EQ(STAT(&v, invoices_now), 0); /* read, refused, out again */
  /* a set that times out lets go of its placeholder too */
  mk_amp_set(&lone, b, 2, 100, 200, CLTV);
  send(&v, &lone.h[0]);
  settle_down(&v);
  AMP_CHECK_EQ(STAT(&v, invoices_now), 1);
  g_now += 2000 * 1000000ull;
  pump(&v, 8);
  settle_down(&v);
  EXPECT_CODE(&lone.h[0], AMP_FAIL_MPP_TIMEOUT);
  AMP_CHECK_EQ(STAT(&v, invoices_now), 0);
  AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, b, &got) == AMP_OK);
  AMP_CHECK_EQ(got.placeholder, 1);
  AMP_CHECK_EQ(got.amt_paid_msat, 0);
  /* an invoice the operator added stays */
  amp_store_invoice_t op = add_amp(&v, 0);
  mk_amp_set(&s4, op.payment_addr, 1, 700, 700, CLTV);
  send_set_wait(&v, &s4, 9);
  EXPECT_SET_FULFILL(&s4);
  AMP_CHECK_EQ(STAT(&v, invoices_now), 1);
  /* a restart loads the operator's invoice only; the list has all three */
  env_stop(&v);
  env_start(&v);
  AMP_CHECK_EQ(STAT(&v, invoices_now), 1);
  amp_store_invoice_t list[8];
  size_t n = amp_engine_invoice_list(v.e, 0, 0, list, 8);
  AMP_CHECK_EQ(n, 3);
  for (size_t i = 1; i < n; i++) AMP_CHECK(list[i - 1].add_index < list[i].add_index);
  uint64_t ia = list[0].add_index, ib = list[1].add_index, iop = list[2].add_index;
  AMP_CHECK_EQ(amp_engine_invoice_list(v.e, ia, 0, list, 1), 1);
  AMP_CHECK(memcmp(list[0].payment_addr, b, 32) == 0); /* numbered a, b, op */
  AMP_CHECK_EQ(amp_engine_invoice_list(v.e, 0, AMP_INVOICE_LIST_REVERSED, list, 2), 2);
  AMP_CHECK(list[0].add_index == ib && list[1].add_index == iop);
  AMP_CHECK_EQ(amp_engine_invoice_list(v.e, iop, AMP_INVOICE_LIST_REVERSED, list, 8), 2);
  AMP_CHECK(list[0].add_index == ia && list[1].add_index == ib);
  AMP_CHECK_EQ(amp_engine_invoice_list(v.e, 0, AMP_INVOICE_LIST_OPEN, list, 8), 2); /* a: cancelled */
  AMP_CHECK(list[0].add_index == ib && list[1].add_index == iop);
  AMP_CHECK_EQ(amp_engine_invoice_list(v.e, iop, 0, list, 8), 0);
  /* and the placeholder still takes payments after the restart */
  g_nans = 0;
  static aset_t s5;
  mk_amp_set(&s5, b, 2, 100, 200, CLTV);
  send_set_wait(&v, &s5, 2);
  EXPECT_SET_FULFILL(&s5);
  AMP_CHECK_EQ(STAT(&v, placeholders_loaded), 1);
  AMP_CHECK_EQ(STAT(&v, invoices_now), 1);
  env_close(&v);
}

/* ---- failure paths, in rule order --------------------------------------- */

static void test_rules(void) {
  env_t v;
  env_open(&v, NULL);
  amp_store_invoice_t amp = add_amp(&v, 2000);
  amp_store_invoice_t mpp = add_mpp(&v, 2000);
  uint8_t pl[256], zero[32] = {0}, share[32], sid[32];
  size_t pn, n = 0;
  MUST(amp_random(share, 32));
  MUST(amp_random(sid, 32));
#define NEW_T(t, amt_, cltv_)                                                                    \
  th_t t;                                                                                        \
  memset(&t, 0, sizeof t);                                                                       \
  MUST(amp_random(t.hash, 32));                                                 \
  t.amount = (amt_);                                                                             \
  t.cltv = (cltv_)
#define GO(t, detail)                                                                            \
  do {                                                                                           \
    uint64_t before_ = STAT(&v, detail);                                                         \
    mk_add(&t, pl, pn);                                                                          \
    send(&v, &t);                                                                                \
    pump(&v, ++n);                                                                               \
    EXPECT_DETAILS(&t);                                                                          \
    AMP_CHECK_EQ(STAT(&v, detail), before_ + 1);                                                 \
  } while (0)

  /* rule 1: AMP without MPP */
  { NEW_T(t, 2000, CLTV); pn = mk_payload(pl, 2000, CLTV, NULL, 0, share, sid, 0);
    GO(t, fail_amp_without_mpp); }
  /* rule 2: no invoice (AMP by addr, MPP by hash) */
  { NEW_T(t, 2000, CLTV); pn = mk_payload(pl, 2000, CLTV, sid, 2000, share, sid, 0);
    GO(t, fail_no_invoice); }
  { NEW_T(t, 2000, CLTV); pn = mk_payload(pl, 2000, CLTV, mpp.payment_addr, 2000, NULL, NULL, 0);
    GO(t, fail_no_invoice); } /* random hash: no MPP invoice has it */
  /* rule 3: AMP record to the MPP invoice, and an MPP payment to the AMP invoice */
  { NEW_T(t, 2000, CLTV); pn = mk_payload(pl, 2000, CLTV, mpp.payment_addr, 2000, share, sid, 0);
    GO(t, fail_type_mismatch); }
  { NEW_T(t, 2000, CLTV); pn = mk_payload(pl, 2000, CLTV, amp.payment_addr, 2000, NULL, NULL, 0);
    GO(t, fail_type_mismatch); }
  /* rule 5: payment_addr mismatch / absent (MPP), total zero / below value */
  { NEW_T(t, 2000, CLTV); memcpy(t.hash, mpp.payment_hash, 32);
    pn = mk_payload(pl, 2000, CLTV, sid, 2000, NULL, NULL, 0); GO(t, fail_payment_addr); }
  { NEW_T(t, 2000, CLTV); memcpy(t.hash, mpp.payment_hash, 32);
    pn = mk_payload(pl, 2000, CLTV, NULL, 0, NULL, NULL, 0); GO(t, fail_payment_addr); }
  { NEW_T(t, 2000, CLTV); pn = mk_payload(pl, 2000, CLTV, amp.payment_addr, 0, share, sid, 0);
    GO(t, fail_total_msat); }
  { NEW_T(t, 1999, CLTV); pn = mk_payload(pl, 1999, CLTV, amp.payment_addr, 1999, share, sid, 0);
    GO(t, fail_total_msat); }
  { NEW_T(t, 1000, CLTV); memcpy(t.hash, mpp.payment_hash, 32);
    pn = mk_payload(pl, 1000, CLTV, mpp.payment_addr, 1000, NULL, NULL, 0); GO(t, fail_total_msat); }
  /* rule 6: total differs from the set's (the first shard stays held) */
  {
    NEW_T(a, 1000, CLTV);
    pn = mk_payload(pl, 1000, CLTV, amp.payment_addr, 2000, share, sid, 0);
    mk_add(&a, pl, pn);
    send(&v, &a);
    pump(&v, n + 1);
    EXPECT_NONE(&a);
    NEW_T(t, 1000, CLTV);
    pn = mk_payload(pl, 1000, CLTV, amp.payment_addr, 3000, share, sid, 1);
    GO(t, fail_total_mismatch);
    EXPECT_NONE(&a);
    AMP_CHECK_EQ(STAT(&v, held_now), 1);
  }
  /* rule 7: cltv vs height + 19, vs height + invoice delta (80), amount <
   * amt_to_forward, cltv < outgoing_cltv_value */
  { NEW_T(t, 2000, 1018); pn = mk_payload(pl, 2000, 1018, amp.payment_addr, 2000, share, sid, 0);
    GO(t, fail_cltv_reject_delta); }
  { NEW_T(t, 2000, 1079); pn = mk_payload(pl, 2000, 1079, amp.payment_addr, 2000, share, sid, 0);
    GO(t, fail_cltv_invoice_delta); }
  { NEW_T(t, 1999, CLTV); pn = mk_payload(pl, 2000, CLTV, amp.payment_addr, 2000, share, sid, 0);
    GO(t, fail_amt_below_forward); }
  { NEW_T(t, 2000, CLTV); pn = mk_payload(pl, 2000, CLTV + 1, amp.payment_addr, 2000, share, sid, 0);
    GO(t, fail_cltv_below_outgoing); }
  /* rule 8: zero set_id; a set_id of another invoice */
  { NEW_T(t, 2000, CLTV); pn = mk_payload(pl, 2000, CLTV, amp.payment_addr, 2000, share, zero, 0);
    GO(t, fail_set_id_zero); }
  {
    amp_store_invoice_t amp2 = add_amp(&v, 0);
    NEW_T(t, 500, CLTV);
    pn = mk_payload(pl, 500, CLTV, amp2.payment_addr, 2000, share, sid, 0);
    GO(t, fail_set_other_invoice);
  }
  /* rule 4: cancelled; expired (and expired after a settled set) */
  {
    amp_invoice_add_t r;
    memset(&r, 0, sizeof r);
    r.amp = 1;
    r.expiry_s = 100;
    amp_store_invoice_t exp;
    MUST(amp_engine_invoice_add(v.e, &r, &exp));
    static aset_t s;
    mk_amp_set(&s, exp.payment_addr, 1, 700, 700, CLTV);
    send_set(&v, &s);
    pump(&v, ++n);
    EXPECT_FULFILL(&s.h[0]);
    g_wall += 101;
    mk_amp_set(&s, exp.payment_addr, 1, 700, 700, CLTV);
    uint64_t before = STAT(&v, fail_invoice_expired);
    send_set(&v, &s);
    pump(&v, ++n);
    EXPECT_DETAILS(&s.h[0]);
    AMP_CHECK_EQ(STAT(&v, fail_invoice_expired), before + 1);
    g_wall -= 101;
  }
  {
    amp_store_invoice_t c = add_amp(&v, 0);
    AMP_CHECK(amp_engine_invoice_cancel(v.e, c.payment_addr) == AMP_OK);
    AMP_CHECK(amp_engine_invoice_cancel(v.e, c.payment_addr) == AMP_ERR_STATE);
    NEW_T(t, 500, CLTV);
    pn = mk_payload(pl, 500, CLTV, c.payment_addr, 500, share, sid, 0);
    GO(t, fail_invoice_not_open);
  }
#undef GO
#undef NEW_T
  /* every failure here went through the store: one commit report each */
  AMP_CHECK(g_nans > 0);
  AMP_CHECK_EQ(g_commit_answers, g_nans);
  AMP_CHECK_EQ(g_ncommit, g_nans);
  env_close(&v);
}

/* Reconstruction mismatch: the whole set fails, the invoice stays open and
 * settles a later set; a late shard of the cancelled set fails. */
/* Sets completed in one burst are verified together (complete_flush_):
 * seven 1-shard sets and a 2-shard set in one amp_worker_process call, the
 * third set's share not the one its hash came from. That set alone is
 * cancelled (child_mismatch 1), every other settles with its own preimages;
 * then a burst of five good sets after it settles whole. */
static void test_mismatch_burst(void) {
  env_t v;
  env_open(&v, NULL);
  amp_store_invoice_t inv = add_amp(&v, 0);
  static aset_t s[8], t[5];
  amp_engine_in_t in[9];
  size_t k = 0;
  for (int i = 0; i < 8; i++) {
    mk_amp_set(&s[i], inv.payment_addr, i == 5 ? 2 : 1, 100, i == 5 ? 200 : 100, CLTV);
    if (i == 2) {
      uint8_t pl[256], bad[32];
      MUST(amp_random(bad, 32));
      size_t pn = mk_payload(pl, 100, CLTV, inv.payment_addr, 100, bad, s[i].set_id, 0);
      mk_add(&s[i].h[0], pl, pn);
    }
    for (size_t j = 0; j < s[i].n; j++) {
      th_t *h = &s[i].h[j];
      in[k++] = (amp_engine_in_t){h->gw, h->scid, h->msg, h->len, g_now, cookie_of(h)};
    }
  }
  amp_worker_process(v.w, in, k, &g_sink);
  pump(&v, 9);
  settle_down(&v);
  for (int i = 0; i < 8; i++)
    for (size_t j = 0; j < s[i].n; j++) {
      if (i == 2) EXPECT_DETAILS(&s[i].h[j]);
      else EXPECT_FULFILL(&s[i].h[j]);
    }
  AMP_CHECK_EQ(STAT(&v, child_mismatch), 1);
  AMP_CHECK_EQ(STAT(&v, sets_settled), 7);
  AMP_CHECK_EQ(STAT(&v, sets_cancelled), 1);
  k = 0;
  for (int i = 0; i < 5; i++) {
    mk_amp_set(&t[i], inv.payment_addr, 1, 100, 100, CLTV);
    th_t *h = &t[i].h[0];
    in[k++] = (amp_engine_in_t){h->gw, h->scid, h->msg, h->len, g_now, cookie_of(h)};
  }
  amp_worker_process(v.w, in, k, &g_sink);
  pump(&v, 14);
  settle_down(&v);
  for (int i = 0; i < 5; i++) EXPECT_FULFILL(&t[i].h[0]);
  AMP_CHECK_EQ(STAT(&v, sets_settled), 12);
  AMP_CHECK_EQ(STAT(&v, child_mismatch), 1);
  AMP_CHECK_EQ(STAT(&v, held_now), 0);
  env_close(&v);
}

static void test_mismatch(void) {
  env_t v;
  env_open(&v, NULL);
  amp_store_invoice_t inv = add_amp(&v, 0);
  static aset_t s, ok;
  mk_amp_set(&s, inv.payment_addr, 3, 100, 300, CLTV);
  /* shard 2 carries a share that is not the one its hash was derived from */
  uint8_t pl[256], bad[32];
  MUST(amp_random(bad, 32));
  size_t pn = mk_payload(pl, 100, CLTV, inv.payment_addr, 300, bad, s.set_id, 2);
  uint64_t id = s.h[2].id;
  s.h[2].id = id;
  mk_add(&s.h[2], pl, pn);
  send_set(&v, &s);
  pump(&v, 3);
  for (int i = 0; i < 3; i++) EXPECT_DETAILS(&s.h[i]);
  AMP_CHECK_EQ(STAT(&v, child_mismatch), 1);
  settle_down(&v);
  AMP_CHECK_EQ(STAT(&v, sets_cancelled), 1);
  amp_set_info_t si;
  AMP_CHECK(amp_engine_set_lookup(v.e, s.set_id, &si) == AMP_OK);
  AMP_CHECK_EQ(si.state, AMP_SET_CANCELLED);
  /* late shard of the cancelled set */
  th_t late;
  memset(&late, 0, sizeof late);
  memcpy(late.hash, s.h[0].hash, 32);
  late.amount = 100;
  late.cltv = CLTV;
  pn = mk_payload(pl, 100, CLTV, inv.payment_addr, 300, s.share[0], s.set_id, 0);
  mk_add(&late, pl, pn);
  send(&v, &late);
  pump(&v, 4);
  EXPECT_DETAILS(&late);
  AMP_CHECK_EQ(STAT(&v, fail_set_done), 1);
  /* the invoice is still open */
  mk_amp_set(&ok, inv.payment_addr, 2, 100, 200, CLTV);
  send_set(&v, &ok);
  pump(&v, 6);
  EXPECT_FULFILL(&ok.h[0]);
  EXPECT_FULFILL(&ok.h[1]);
  env_close(&v);
}

/* Hold timers: each HTLC from its own arrival; a timed-out HTLC leaves its
 * set, which stays open; the same share resent completes it. */
static void test_timers(void) {
  amp_engine_cfg_t c;
  memset(&c, 0, sizeof c);
  c.hold_timeout_ms = 1000;
  env_t v;
  env_open(&v, &c);
  amp_store_invoice_t inv = add_amp(&v, 0);
  static aset_t s;
  mk_amp_set(&s, inv.payment_addr, 3, 100, 300, CLTV);
  uint64_t t0 = g_now;
  send(&v, &s.h[0]);
  g_now = t0 + 600 * 1000000ull;
  send(&v, &s.h[1]);
  g_now = t0 + 999 * 1000000ull;
  pump(&v, 1);
  AMP_CHECK_EQ(g_nans, 0);
  g_now = t0 + 1001 * 1000000ull;
  pump(&v, 1);
  EXPECT_CODE(&s.h[0], AMP_FAIL_MPP_TIMEOUT);
  EXPECT_NONE(&s.h[1]);
  AMP_CHECK_EQ(STAT(&v, timeouts), 1);
  amp_set_info_t si;
  AMP_CHECK(amp_engine_set_lookup(v.e, s.set_id, &si) == AMP_OK);
  AMP_CHECK_EQ(si.state, AMP_SET_COLLECTING);
  AMP_CHECK_EQ(si.amount_msat, 100);
  AMP_CHECK_EQ(si.n_htlcs, 1);
  /* the sender retries shard 0 with a new HTLC, and sends shard 2 */
  th_t again = s.h[0];
  again.id = 0;
  uint8_t pl[256];
  size_t pn = mk_payload(pl, 100, CLTV, inv.payment_addr, 300, s.share[0], s.set_id, 0);
  mk_add(&again, pl, pn);
  send(&v, &again);
  send(&v, &s.h[2]);
  pump(&v, 4);
  EXPECT_FULFILL(&again);
  EXPECT_FULFILL(&s.h[1]);
  EXPECT_FULFILL(&s.h[2]);
  /* a set whose only shard times out disappears */
  static aset_t lone;
  mk_amp_set(&lone, inv.payment_addr, 2, 100, 200, CLTV);
  send(&v, &lone.h[0]);
  g_now += 2000 * 1000000ull;
  pump(&v, 5);
  EXPECT_CODE(&lone.h[0], AMP_FAIL_MPP_TIMEOUT);
  AMP_CHECK(amp_engine_set_lookup(v.e, lone.set_id, &si) == AMP_ERR_NOTFOUND);
  AMP_CHECK_EQ(STAT(&v, held_now), 0);
  env_close(&v);
}

static void test_limits(void) {
  amp_engine_cfg_t c;
  memset(&c, 0, sizeof c);
  c.max_htlcs_per_set = 2;
  c.max_held_total = 4;
  c.max_held_per_gateway = 3;
  env_t v;
  env_open(&v, &c);
  amp_store_invoice_t inv = add_amp(&v, 0);
  static aset_t a, b;
  mk_amp_set(&a, inv.payment_addr, 3, 100, 1000, CLTV); /* never completes */
  send_set(&v, &a);
  pump(&v, 1);
  EXPECT_NONE(&a.h[0]);
  EXPECT_NONE(&a.h[1]);
  EXPECT_DETAILS(&a.h[2]);
  AMP_CHECK_EQ(STAT(&v, limit_set_htlcs), 1);
  /* per gateway: gateway 1 holds 2, the third one of gateway 1 fails */
  mk_amp_set(&b, inv.payment_addr, 3, 100, 1000, CLTV);
  b.h[1].gw = 2;
  b.h[2].gw = 2;
  send(&v, &b.h[0]); /* gw 1: 3rd held */
  static aset_t c3;
  mk_amp_set(&c3, inv.payment_addr, 2, 100, 1000, CLTV);
  send(&v, &c3.h[0]); /* gw 1: 4th -> per-gateway limit */
  pump(&v, 2);
  EXPECT_NONE(&b.h[0]);
  EXPECT_DETAILS(&c3.h[0]);
  AMP_CHECK_EQ(STAT(&v, limit_held_gateway), 1);
  send(&v, &b.h[1]); /* gw 2: 4th held in total */
  send(&v, &b.h[2]); /* 5th in total -> total limit (set limit would say 2 too: b has 2 now) */
  pump(&v, 3);
  EXPECT_NONE(&b.h[1]);
  EXPECT_DETAILS(&b.h[2]);
  AMP_CHECK(STAT(&v, limit_held_total) + STAT(&v, limit_set_htlcs) == 2);
  AMP_CHECK_EQ(STAT(&v, held_now), 4);
  /* nothing held was disturbed */
  amp_held_info_t hi[8];
  AMP_CHECK_EQ(amp_engine_held_list(v.e, 0, hi, 8), 4);
  env_close(&v);
}

static void test_total_limit(void) {
  amp_engine_cfg_t c;
  memset(&c, 0, sizeof c);
  c.max_held_total = 2;
  env_t v;
  env_open(&v, &c);
  amp_store_invoice_t inv = add_amp(&v, 0);
  static aset_t a;
  mk_amp_set(&a, inv.payment_addr, 3, 100, 1000, CLTV);
  send_set(&v, &a);
  pump(&v, 1);
  EXPECT_NONE(&a.h[0]);
  EXPECT_NONE(&a.h[1]);
  EXPECT_DETAILS(&a.h[2]);
  AMP_CHECK_EQ(STAT(&v, limit_held_total), 1);
  env_close(&v);
}

/* Cancel fails the held HTLCs of the invoice, after their commits. */
static void test_cancel(void) {
  env_t v;
  env_open(&v, NULL);
  amp_store_invoice_t inv = add_amp(&v, 0);
  static aset_t a, b;
  mk_amp_set(&a, inv.payment_addr, 3, 100, 300, CLTV);
  mk_amp_set(&b, inv.payment_addr, 2, 100, 300, CLTV);
  send(&v, &a.h[0]);
  send(&v, &a.h[1]);
  send(&v, &b.h[0]);
  pump(&v, 1);
  AMP_CHECK_EQ(g_nans, 0);
  AMP_CHECK(amp_engine_invoice_cancel(v.e, inv.payment_addr) == AMP_OK);
  pump(&v, 3);
  EXPECT_DETAILS(&a.h[0]);
  EXPECT_DETAILS(&a.h[1]);
  EXPECT_DETAILS(&b.h[0]);
  AMP_CHECK_EQ(STAT(&v, held_now), 0);
  send(&v, &a.h[2]);
  pump(&v, 4);
  EXPECT_DETAILS(&a.h[2]);
  amp_store_invoice_t got;
  AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, inv.payment_addr, &got) == AMP_OK);
  AMP_CHECK_EQ(got.state, AMP_INVOICE_CANCELED);
  settle_down(&v);
  env_stop(&v);
  env_start(&v);
  AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, inv.payment_addr, &got) == AMP_OK);
  AMP_CHECK_EQ(got.state, AMP_INVOICE_CANCELED);
  amp_set_info_t si;
  AMP_CHECK(amp_engine_set_lookup(v.e, a.set_id, &si) == AMP_OK);
  AMP_CHECK_EQ(si.state, AMP_SET_CANCELLED);
  env_close(&v);
}

/* Redelivery: while held (ignored), before durability (one answer), after
 * durability (the same answer again), after a restart (from the store). */
static void test_redelivery(void) {
  env_t v;
  env_open(&v, NULL);
  amp_store_invoice_t inv = add_amp(&v, 0);
  static aset_t s;
  mk_amp_set(&s, inv.payment_addr, 2, 100, 200, CLTV);
  send(&v, &s.h[0]);
  send(&v, &s.h[0]); /* held: ignored */
  AMP_CHECK_EQ(STAT(&v, redelivery_inflight), 1);
  send(&v, &s.h[1]);
  send(&v, &s.h[1]); /* answered, not yet durable: ignored, answered once */
  pump(&v, 2);
  settle_down(&v);
  EXPECT_FULFILL(&s.h[0]);
  EXPECT_FULFILL(&s.h[1]);
  AMP_CHECK_EQ(g_nans, 2);
  /* durable: the same answer at once, with the redelivered message's own
   * cookie (not the first delivery's) */
  AMP_CHECK_EQ(g_ans[0].cookie + g_ans[1].cookie, cookie_of(&s.h[0]) + cookie_of(&s.h[1]));
  s.h[0].cookie = 0x5eed5eed;
  send(&v, &s.h[0]);
  AMP_CHECK_EQ(g_nans, 3);
  AMP_CHECK(g_ans[2].type == AMP_MSG_UPDATE_FULFILL_HTLC);
  AMP_CHECK_MEM(g_ans[2].pre, s.h[0].pre, 32);
  AMP_CHECK_EQ(g_ans[2].cookie, 0x5eed5eed);
  AMP_CHECK_EQ(STAT(&v, redelivery_durable), 1);
  /* a failed HTLC: the same failure message */
  th_t f;
  memset(&f, 0, sizeof f);
  MUST(amp_random(f.hash, 32));
  f.amount = 123;
  f.cltv = CLTV;
  uint8_t pl[256];
  size_t pn = mk_payload(pl, 123, CLTV, inv.payment_addr, 0, s.share[0], s.set_id, 0);
  mk_add(&f, pl, pn);
  send(&v, &f);
  pump(&v, 4);
  EXPECT_DETAILS(&f);
  /* the height moves on: the redelivered answer still carries the old one */
  amp_engine_set_height(v.e, 1005);
  send(&v, &f);
  AMP_CHECK_EQ(g_nans, 5);
  {
    const uint8_t *d;
    size_t dl;
    AMP_CHECK_EQ(fail_code(&g_ans[4], &f, &d, &dl), AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS);
    AMP_CHECK_EQ(amp_be32(d + 8), 1000);
  }
  /* restart: answers come from the store */
  env_stop(&v);
  env_start(&v);
  send(&v, &s.h[1]);
  AMP_CHECK_EQ(g_nans, 6);
  AMP_CHECK(g_ans[5].type == AMP_MSG_UPDATE_FULFILL_HTLC);
  AMP_CHECK_MEM(g_ans[5].pre, s.h[1].pre, 32);
  send(&v, &f);
  AMP_CHECK_EQ(g_nans, 7);
  AMP_CHECK_EQ(fail_code(&g_ans[6], &f, NULL, NULL), AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS);
  AMP_CHECK_EQ(STAT(&v, sets_settled), 0); /* never a second settlement */
  env_close(&v);
}

/* The same onion under another (scid, htlc id): in flight and durable. */
static void test_replay(void) {
  env_t v;
  env_open(&v, NULL);
  amp_store_invoice_t inv = add_amp(&v, 0);
  static aset_t s;
  mk_amp_set(&s, inv.payment_addr, 2, 100, 200, CLTV);
  send(&v, &s.h[0]);
  th_t r = s.h[0];
  r.id = 999001;
  re_encode(&r);
  send(&v, &r);
  pump(&v, 1);
  EXPECT_DETAILS(&r);
  EXPECT_NONE(&s.h[0]);
  AMP_CHECK_EQ(STAT(&v, replays), 1);
  send(&v, &s.h[1]);
  pump(&v, 3);
  EXPECT_FULFILL(&s.h[0]);
  settle_down(&v);
  th_t r2 = s.h[1];
  r2.id = 999002;
  re_encode(&r2);
  send(&v, &r2);
  pump(&v, 4);
  EXPECT_DETAILS(&r2);
  AMP_CHECK_EQ(STAT(&v, replays), 2);
  env_close(&v);
}

/* Unpeelable onions -> update_fail_malformed_htlc; a non-final onion ->
 * unknown_next_peer; an unreadable payload -> invalid_onion_payload. */
static void test_onions(void) {
  env_t v;
  env_open(&v, NULL);
  amp_store_invoice_t inv = add_amp(&v, 0);
  static aset_t s;
  mk_amp_set(&s, inv.payment_addr, 1, 100, 100, CLTV);
  th_t m = s.h[0];
  m.onion[AMP_ONION_LEN - 1] ^= 1; /* hmac */
  re_encode(&m);
  AMP_CHECK_EQ(STAT(&v, peel_curve_ns), 0);
  send(&v, &m);
  pump(&v, 1);
  /* its parse and ECDH ran (the HMAC check comes after): timed */
  uint64_t curve = STAT(&v, peel_curve_ns);
  AMP_CHECK(curve > 0);
  int c;
  const ans_t *a = find(&m, &c);
  AMP_CHECK_EQ(c, 1);
  AMP_CHECK(a && a->type == AMP_MSG_UPDATE_FAIL_MALFORMED_HTLC);
  uint8_t sha[32];
  amp_sha256(sha, m.onion, AMP_ONION_LEN);
  if (a) {
    AMP_CHECK_EQ(a->mcode, AMP_FAIL_INVALID_ONION_HMAC);
    AMP_CHECK_MEM(a->sha, sha, 32);
  }
  th_t ver = s.h[0];
  ver.id = 0;
  ver.onion[0] = 1;
  ver.id = g_next_id++;
  re_encode(&ver);
  send(&v, &ver);
  pump(&v, 2);
  a = find(&ver, &c);
  AMP_CHECK(c == 1 && a->type == AMP_MSG_UPDATE_FAIL_MALFORMED_HTLC &&
            a->mcode == AMP_FAIL_INVALID_ONION_VERSION);
  AMP_CHECK_EQ(STAT(&v, malformed_onion), 2);
  /* redelivered malformed: the same answer from the store */
  settle_down(&v);
  send(&v, &m);
  AMP_CHECK_EQ(g_nans, 3);
  AMP_CHECK(g_ans[2].type == AMP_MSG_UPDATE_FAIL_MALFORMED_HTLC && g_ans[2].mcode == AMP_FAIL_INVALID_ONION_HMAC);
  AMP_CHECK_MEM(g_ans[2].sha, sha, 32);
  /* non-final */
  th_t fw;
  memset(&fw, 0, sizeof fw);
  MUST(amp_random(fw.hash, 32));
  fw.amount = 100;
  fw.cltv = CLTV;
  uint8_t pl[256];
  amp_payload_t fp;
  memset(&fp, 0, sizeof fp);
  fp.present = AMP_PAYLOAD_AMT | AMP_PAYLOAD_CLTV | AMP_PAYLOAD_SCID;
  fp.amt_to_forward = 90;
  fp.outgoing_cltv_value = 1050;
  fp.short_channel_id = 77;
  long pn = amp_payload_encode(pl, sizeof pl, &fp);
  AMP_REQUIRE(pn > 0);
  mk_add_hops(&fw, pl, (size_t)pn, 1);
  send(&v, &fw);
  pump(&v, 4);
  EXPECT_CODE(&fw, AMP_FAIL_UNKNOWN_NEXT_PEER);
  AMP_CHECK_EQ(STAT(&v, forward_unsupported), 1);
  /* unknown even TLV type 10000 in the final payload */
  th_t bad;
  memset(&bad, 0, sizeof bad);
  MUST(amp_random(bad.hash, 32));
  bad.amount = 100;
  bad.cltv = CLTV;
  uint8_t bp[] = {0x02, 0x01, 0x64, 0x04, 0x02, 0x04, 0x4c, 0xfd, 0x27, 0x10, 0x00};
  mk_add(&bad, bp, sizeof bp);
  send(&v, &bad);
  pump(&v, 5);
  a = find(&bad, &c);
  const uint8_t *d = NULL;
  size_t dl = 0;
  AMP_CHECK_EQ(c, 1);
  AMP_CHECK_EQ(a ? fail_code(a, &bad, &d, &dl) : -9, AMP_FAIL_INVALID_ONION_PAYLOAD);
  AMP_CHECK_EQ(dl, 5); /* BigSize 10000 (3 bytes) || u16 offset */
  if (d && dl == 5) {
    AMP_CHECK_EQ(d[0], 0xfd);
    AMP_CHECK_EQ(amp_be16(d + 1), 10000);
  }
  AMP_CHECK_EQ(STAT(&v, invalid_payload), 1);
  env_close(&v);
}

/* Control and other messages: tip raises the height; forward answers are
 * counted and ignored; junk is dropped. */
static void test_messages(void) {
  env_t v;
  env_open(&v, NULL);
  uint8_t tip[16];
  long n = amp_msg_tip_encode(tip, sizeof tip, 1234);
  AMP_REQUIRE(n > 0);
  uint8_t junk[3] = {0x00, 0x80, 0x01};
  uint8_t ful[2 + 32 + 8 + 32];
  amp_msg_fulfill_t fm;
  memset(&fm, 0, sizeof fm);
  long fn = amp_msg_fulfill_encode(ful, sizeof ful, &fm);
  AMP_REQUIRE(fn > 0);
  uint8_t unk[2] = {0x12, 0x34};
  amp_engine_in_t in[4] = {{1, 1, tip, (size_t)n, g_now, 1},
                           {1, 1, junk, sizeof junk, g_now, 2},
                           {1, 1, ful, (size_t)fn, g_now, 3},
                           {1, 1, unk, sizeof unk, g_now, 4}};
  amp_worker_process(v.w, in, 4, &g_sink);
  AMP_CHECK_EQ(amp_engine_height(v.e), 1234);
  AMP_CHECK_EQ(STAT(&v, tips), 1);
  AMP_CHECK_EQ(STAT(&v, bad_msg), 1);
  AMP_CHECK_EQ(STAT(&v, fwd_answers_ignored), 1);
  AMP_CHECK_EQ(STAT(&v, unknown_msg), 1);
  AMP_CHECK_EQ(g_nans, 0);
  const char *desc = NULL;
  AMP_CHECK(amp_engine_counter_name(0, &desc) != NULL && desc != NULL);
  size_t k = 0;
  while (amp_engine_counter_name(k, NULL)) k++;
  AMP_CHECK(k > 40);
  env_close(&v);
}

/* A commit that fails: retried (nothing released meanwhile); after the last
 * retry the HTLCs fail with temporary_node_failure, and no preimage leaves. */
static void test_store_errors(void) {
  amp_engine_cfg_t c;
  memset(&c, 0, sizeof c);
  c.store_retry_max = 2;
  env_t v;
  env_open(&v, &c);
  settle_down(&v);
  amp_store_invoice_t inv = add_amp(&v, 0);
  static aset_t s;
  mk_amp_set(&s, inv.payment_addr, 2, 100, 200, CLTV);
  send(&v, &s.h[0]);
  amp_engine_test_fail_commits(v.e, 1);
  send(&v, &s.h[1]); /* completes: its SETTLE fails once */
  amp_worker_poll(v.w, g_now, &g_sink);
  AMP_CHECK_EQ(g_nans, 0);
  AMP_CHECK_EQ(STAT(&v, store_errors), 1);
  g_now += 5 * 1000000ull; /* back-off 10 ms: not yet */
  amp_worker_poll(v.w, g_now, &g_sink);
  AMP_CHECK_EQ(g_nans, 0);
  g_now += 10 * 1000000ull;
  pump(&v, 2);
  EXPECT_FULFILL(&s.h[0]);
  EXPECT_FULFILL(&s.h[1]);
  AMP_CHECK_EQ(STAT(&v, store_retries), 1);
  /* a set whose SETTLE never commits: temporary_node_failure, no preimage */
  static aset_t s2;
  mk_amp_set(&s2, inv.payment_addr, 2, 100, 200, CLTV);
  send(&v, &s2.h[0]);
  amp_engine_test_fail_commits(v.e, 3);
  send(&v, &s2.h[1]);
  for (int i = 0; i < 4 && g_nans < 4; i++) {
    amp_worker_poll(v.w, g_now, &g_sink);
    g_now += 50 * 1000000ull;
  }
  pump(&v, 4);
  EXPECT_CODE(&s2.h[0], AMP_FAIL_TEMPORARY_NODE_FAILURE);
  EXPECT_CODE(&s2.h[1], AMP_FAIL_TEMPORARY_NODE_FAILURE);
  AMP_CHECK_EQ(STAT(&v, store_gave_up), 2);
  AMP_CHECK_EQ(STAT(&v, sets_settled), 1);
  /* the settled set left memory; the one the store never recorded stays as
   * a done record (the store cannot answer for it) */
  AMP_CHECK_EQ(amp_engine_set_table_size(v.e), 1);
  amp_set_info_t si;
  AMP_CHECK(amp_engine_set_lookup(v.e, s2.set_id, &si) == AMP_OK);
  AMP_CHECK_EQ(si.state, AMP_SET_CANCELLED);
  AMP_CHECK_EQ(si.settle_index, 0);
  AMP_CHECK(amp_engine_set_lookup(v.e, s.set_id, &si) == AMP_OK);
  AMP_CHECK_EQ(si.state, AMP_SET_SETTLED);
  /* nothing durable: a redelivery is processed afresh, and this time the set
   * id is known as failed (in memory), so it fails durably */
  settle_down(&v);
  send(&v, &s2.h[0]);
  pump(&v, 5);
  int cnt;
  const ans_t *a = find(&s2.h[0], &cnt);
  AMP_CHECK_EQ(cnt, 2);
  AMP_CHECK(a && a->type == AMP_MSG_UPDATE_FAIL_HTLC);
  AMP_CHECK_EQ(a ? fail_code(a, &s2.h[0], NULL, NULL) : -9, AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS);
  env_close(&v);
}

/* ---- concurrency ------------------------------------------------------------ */

#define MT_SETS 100000
#define MT_THREADS 2

typedef struct {
  uint32_t set;                  /* index of its set */
  uint8_t shard, dup;            /* dup: also delivered by the other thread */
  uint8_t pl_len;
  uint8_t pl[160];
  uint8_t hash[32];
  uint8_t pre[32];
  uint8_t ss[32];
  uint64_t amount;
  uint8_t *msg;                  /* real-onion runs: the update_add_htlc */
  size_t len;
} mt_h_t;

typedef struct {
  env_t *v;
  unsigned idx;
  uint32_t *list;                /* indexes into g_mt */
  size_t n;
  _Atomic uint32_t *answers;     /* per HTLC: fulfills seen */
  _Atomic uint32_t *fails;
  _Atomic size_t *answered;      /* distinct HTLCs answered */
  size_t total;
  int bad;
  int real;
} mt_ctx_t;

static mt_h_t *g_mt;

static void mt_emit(void *ctx, uint64_t gw, uint64_t scid, uint64_t cookie, const uint8_t *msg,
                    size_t len) {
  (void)gw;
  mt_ctx_t *c = ctx;
  uint64_t hid = scid; /* scid = HTLC index (unique) */
  if (cookie != hid + 1) c->bad++; /* its own message's, whoever answers */
  int t = amp_msg_type(msg, len);
  if (t == AMP_MSG_UPDATE_FULFILL_HTLC) {
    amp_msg_fulfill_t m;
    if (amp_msg_fulfill_decode(&m, msg, len) != AMP_OK || m.id != hid ||
        memcmp(m.payment_preimage, g_mt[hid].pre, 32) != 0) {
      c->bad++;
      return;
    }
    if (atomic_fetch_add(&c->answers[hid], 1) == 0) atomic_fetch_add(c->answered, 1);
  } else {
    atomic_fetch_add(&c->fails[hid], 1);
    c->bad++;
  }
}

/* HTLC hid of g_mt as a pre-peeled arrival (its scid and id are hid). */
static void mt_peeled_(amp_engine_peeled_t *p, uint32_t hid, uint64_t gw, uint64_t now) {
  const mt_h_t *h = &g_mt[hid];
  memset(p, 0, sizeof *p);
  p->gateway_id = gw;
  p->scid = hid;
  p->htlc_id = hid;
  p->amount_msat = h->amount;
  p->cltv_expiry = CLTV;
  memcpy(p->payment_hash, h->hash, 32);
  memset(p->channel_id, 1, 32);
  memcpy(p->shared_secret, h->ss, 32);
  p->payload = h->pl;
  p->payload_len = h->pl_len;
  p->rx_ns = now;
  p->cookie = (uint64_t)hid + 1;
}

static void *mt_thread(void *arg) {
  mt_ctx_t *c = arg;
  amp_worker_t *w = amp_engine_worker(c->v->e, c->idx);
  amp_worker_attach(w);
  amp_engine_sink_t sink = {mt_emit, c, NULL};
  amp_engine_peeled_t in[32];
  amp_engine_in_t rin[32];
  uint64_t now = real_ns();
  for (size_t i = 0; i < c->n; i += 32) {
    size_t k = c->n - i < 32 ? c->n - i : 32;
    if (c->real) {
      for (size_t j = 0; j < k; j++) {
        uint32_t hid = c->list[i + j];
        rin[j] = (amp_engine_in_t){1 + (hid & 3), hid, g_mt[hid].msg, g_mt[hid].len, now, hid + 1};
      }
      amp_worker_process(w, rin, k, &sink);
      amp_worker_poll(w, now, &sink);
      continue;
    }
    for (size_t j = 0; j < k; j++)
      mt_peeled_(&in[j], c->list[i + j], 1 + (c->list[i + j] & 3), now);
    amp_worker_process_peeled(w, in, k, &sink);
    amp_worker_poll(w, now, &sink);
  }
  uint64_t t0 = real_ns();
  while (atomic_load(c->answered) < c->total && real_ns() - t0 < 60000000000ull) {
    amp_worker_poll(w, now, &sink);
    usleep(50);
  }
  for (int i = 0; i < 20; i++) { /* let late duplicates finish */
    amp_worker_poll(w, now, &sink);
    usleep(100);
  }
  amp_worker_detach(w);
  return NULL;
}

static void run_concurrency(uint32_t mt_sets, int real) {
  uint64_t seed = amp_test_seed();
  amp_engine_cfg_t c;
  memset(&c, 0, sizeof c);
  c.workers = MT_THREADS;
  c.max_held_total = 1u << 20;
  c.pool_htlcs = 300000;
  c.pool_sets = 120000;
  env_t v;
  env_open(&v, &c);
  amp_store_invoice_t inv = add_amp(&v, 0);
  amp_worker_detach(v.w); /* the main thread is not a worker here */
  /* build the sets: 1..4 shards each */
  size_t cap = (size_t)mt_sets * 4, n = 0;
  g_mt = calloc(cap, sizeof *g_mt);
  AMP_REQUIRE(g_mt);
  uint64_t t_build = real_ns();
  for (uint32_t s = 0; s < mt_sets; s++) {
    size_t k = 1 + amp_test_rand(&seed) % 4;
    uint8_t root[32], sid[32], share[4][32];
    rand32_(root, &seed);
    rand32_(sid, &seed);
    memset(share, 0, sizeof share);
    memcpy(share[k - 1], root, 32);
    for (size_t i = 0; i + 1 < k; i++) {
      rand32_(share[i], &seed);
      for (int j = 0; j < 32; j++) share[k - 1][j] ^= share[i][j];
    }
    for (size_t i = 0; i < k; i++) {
      mt_h_t *h = &g_mt[n++];
      amp_child_t ch;
      amp_child_derive(&ch, root, share[i], (uint32_t)i);
      h->set = s;
      h->shard = (uint8_t)i;
      h->dup = amp_test_rand(&seed) % 50 == 0;
      h->amount = 1000;
      memcpy(h->hash, ch.hash, 32);
      memcpy(h->pre, ch.preimage, 32);
      rand32_(h->ss, &seed);
      h->pl_len = (uint8_t)mk_payload(h->pl, 1000, CLTV, inv.payment_addr, 1000 * k, share[i], sid,
                                      (uint32_t)i);
      if (real) {
        th_t t;
        memset(&t, 0, sizeof t);
        t.id = n - 1;
        t.scid = n - 1;
        t.gw = 1;
        t.amount = 1000;
        t.cltv = CLTV;
        memcpy(t.hash, ch.hash, 32);
        mk_add(&t, h->pl, h->pl_len);
        t.id = n - 1; /* mk_add numbers an id of 0 */
        t.scid = n - 1;
        memset(t.chan, 1, 32);
        re_encode(&t);
        h->msg = malloc(t.len);
        AMP_REQUIRE(h->msg != NULL);
        memcpy(h->msg, t.msg, t.len);
        h->len = t.len;
      }
    }
  }
  fprintf(stderr, "concurrency (%s onions): %u sets, %zu HTLCs built in %.1f s\n",
          real ? "real" : "pre-peeled", mt_sets, n,
          (double)(real_ns() - t_build) / 1e9);
  /* split across the threads, each list in random order; duplicates go to both */
  uint32_t *lists[MT_THREADS];
  size_t ln[MT_THREADS] = {0};
  for (int t = 0; t < MT_THREADS; t++) lists[t] = malloc(cap * sizeof(uint32_t));
  for (size_t i = 0; i < n; i++) {
    int t = (int)(amp_test_rand(&seed) % MT_THREADS);
    lists[t][ln[t]++] = (uint32_t)i;
    if (g_mt[i].dup) lists[1 - t][ln[1 - t]++] = (uint32_t)i;
  }
  for (int t = 0; t < MT_THREADS; t++)
    for (size_t i = ln[t]; i > 1; i--) {
      size_t j = amp_test_rand(&seed) % i;
      uint32_t x = lists[t][i - 1];
      lists[t][i - 1] = lists[t][j];
      lists[t][j] = x;
    }
  _Atomic uint32_t *answers = calloc(n, sizeof *answers), *fails = calloc(n, sizeof *fails);
  _Atomic size_t answered = 0;
  mt_ctx_t ctx[MT_THREADS];
  pthread_t th[MT_THREADS];
  uint64_t t0 = real_ns();
  for (int t = 0; t < MT_THREADS; t++) {
    ctx[t] = (mt_ctx_t){&v, (unsigned)t, lists[t], ln[t], answers, fails, &answered, n, 0, real};
    pthread_create(&th[t], NULL, mt_thread, &ctx[t]);
  }
  for (int t = 0; t < MT_THREADS; t++) pthread_join(th[t], NULL);
  double secs = (double)(real_ns() - t0) / 1e9;
  size_t once = 0, twice = 0, none = 0, bad_dup = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t a = atomic_load(&answers[i]);
    if (a == 0) none++;
    else if (a == 1) once++;
    else {
      twice++;
      if (!g_mt[i].dup) bad_dup++;
    }
  }
  fprintf(stderr, "concurrency: %.1f s, %zu answered once, %zu again (redelivered), %zu none\n",
          secs, once, twice, none);
  if (none || ctx[0].bad || ctx[1].bad) { /* say which counters moved */
    amp_engine_stats_t st;
    amp_engine_stats(v.e, &st);
    const char *nm;
    for (size_t i = 0; (nm = amp_engine_counter_name(i, NULL)) != NULL; i++)
      if (((uint64_t *)(void *)&st)[i]) fprintf(stderr, "  %s = %llu\n", nm,
                                               (unsigned long long)((uint64_t *)(void *)&st)[i]);
  }
  AMP_CHECK_EQ(none, 0);
  AMP_CHECK_EQ(bad_dup, 0); /* only redelivered HTLCs are answered again */
  AMP_CHECK_EQ(ctx[0].bad + ctx[1].bad, 0);
  AMP_CHECK_EQ(STAT(&v, sets_settled), mt_sets);
  AMP_CHECK_EQ(STAT(&v, htlcs_settled), n);
  AMP_CHECK_EQ(STAT(&v, held_now), 0);
  amp_store_stats_t ss;
  amp_store_stats(v.st, &ss);
  AMP_CHECK_EQ(ss.settles, mt_sets);
  amp_store_invoice_t got;
  amp_worker_attach(v.w);
  AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, inv.payment_addr, &got) == AMP_OK);
  AMP_CHECK_EQ(got.amt_paid_msat, 1000 * n);
  AMP_CHECK_EQ(got.sets_settled, mt_sets);
  env_close(&v);
  free(answers);
  free(fails);
  for (int t = 0; t < MT_THREADS; t++) free(lists[t]);
  for (size_t i = 0; i < n; i++) free(g_mt[i].msg);
  free(g_mt);
}

/* Late shards against sets that complete and leave memory on the other
 * worker. Each 2-shard set has its shards on thread A (all first shards, then
 * all second shards, each half shuffled) and a copy of its second shard (a
 * new HTLC: new id, new onion secret, same share, child index and hash) on
 * thread B, shuffled: B's copy arrives before the set opens, while it
 * collects, while it settles, or after it left the engine's table (refused by
 * the store's set index). Whatever the order, a set settles once with its
 * first shard and exactly one of the two second shards; the other fails. */
#define LATE_SETS 20000

typedef struct {
  _Atomic uint32_t *ful, *fail;  /* per HTLC */
  _Atomic size_t *done;          /* HTLCs answered (either way) */
  int bad;                       /* a fulfill with a wrong preimage */
} late_ctx_t;

static void late_emit(void *ctx, uint64_t gw, uint64_t scid, uint64_t cookie, const uint8_t *msg,
                      size_t len) {
  (void)gw;
  late_ctx_t *c = ctx;
  uint64_t hid = scid;
  if (cookie != hid + 1) c->bad++;
  if (amp_msg_type(msg, len) == AMP_MSG_UPDATE_FULFILL_HTLC) {
    amp_msg_fulfill_t m;
    if (amp_msg_fulfill_decode(&m, msg, len) != AMP_OK ||
        memcmp(m.payment_preimage, g_mt[hid].pre, 32) != 0)
      c->bad++;
    atomic_fetch_add(&c->ful[hid], 1);
  } else {
    atomic_fetch_add(&c->fail[hid], 1);
  }
  atomic_fetch_add(c->done, 1);
}

typedef struct {
  env_t *v;
  unsigned idx;
  uint32_t *list;
  size_t n, total;
  late_ctx_t *lc;
} late_thr_t;

static void *late_thread(void *arg) {
  late_thr_t *t = arg;
  amp_worker_t *w = amp_engine_worker(t->v->e, t->idx);
  amp_worker_attach(w);
  amp_engine_sink_t sink = {late_emit, t->lc, NULL};
  amp_engine_peeled_t in[32];
  uint64_t now = real_ns();
  for (size_t i = 0; i < t->n; i += 32) {
    size_t k = t->n - i < 32 ? t->n - i : 32;
    for (size_t j = 0; j < k; j++) mt_peeled_(&in[j], t->list[i + j], 1, now);
    amp_worker_process_peeled(w, in, k, &sink);
    amp_worker_poll(w, now, &sink);
  }
  uint64_t t0 = real_ns();
  while (atomic_load(t->lc->done) < t->total && real_ns() - t0 < 20000000000ull) {
    amp_worker_poll(w, now, &sink);
    usleep(50);
  }
  amp_worker_detach(w);
  return NULL;
}

/* g_mt entry h: shard idx (of share, under root) of set `set`, 1000 msat,
 * paying addr with total_msat total under set_id sid. */
static void mt_fill_(mt_h_t *h, uint32_t set, const uint8_t root[32], const uint8_t share[32],
                     uint32_t idx, const uint8_t addr[32], uint64_t total, const uint8_t sid[32],
                     uint64_t *seed) {
  amp_child_t ch;
  amp_child_derive(&ch, root, share, idx);
  h->set = set;
  h->shard = (uint8_t)idx;
  h->amount = 1000;
  memcpy(h->hash, ch.hash, 32);
  memcpy(h->pre, ch.preimage, 32);
  rand32_(h->ss, seed);
  h->pl_len = (uint8_t)mk_payload(h->pl, 1000, CLTV, addr, total, share, sid, idx);
}

/* Runs two workers over lists la and lb (indexes into g_mt, n HTLCs in
 * all) until every HTLC is answered; lc gets per-HTLC answer counts
 * (allocated here, freed by late_free_). */
static void late_run_(env_t *v, uint32_t *la, size_t na, uint32_t *lb, size_t nb, size_t n,
                      late_ctx_t *lc, _Atomic size_t *done) {
  lc->ful = calloc(n, sizeof *lc->ful);
  lc->fail = calloc(n, sizeof *lc->fail);
  AMP_REQUIRE(lc->ful && lc->fail);
  lc->done = done;
  lc->bad = 0;
  late_thr_t ta = {v, 0, la, na, n, lc}, tb = {v, 1, lb, nb, n, lc};
  pthread_t tha, thb;
  pthread_create(&tha, NULL, late_thread, &ta);
  pthread_create(&thb, NULL, late_thread, &tb);
  pthread_join(tha, NULL);
  pthread_join(thb, NULL);
}

static void late_free_(env_t *v, late_ctx_t *lc, uint32_t *la, uint32_t *lb) {
  env_close(v);
  free(lc->ful);
  free(lc->fail);
  free(la);
  free(lb);
  free(g_mt);
  g_mt = NULL;
}

static void test_late_shards_mt(void) {
  uint64_t seed = amp_test_seed();
  amp_engine_cfg_t c = {.workers = 2, .pool_htlcs = 3 * LATE_SETS + 1024,
                        .pool_sets = 2 * LATE_SETS + 1024, .max_held_total = 1u << 20};
  env_t v;
  env_open(&v, &c);
  amp_store_invoice_t inv = add_amp(&v, 0);
  amp_worker_detach(v.w);
  size_t n = 3 * (size_t)LATE_SETS;
  g_mt = calloc(n, sizeof *g_mt);
  uint32_t *la = malloc(2 * LATE_SETS * sizeof *la), *lb = malloc(LATE_SETS * sizeof *lb);
  AMP_REQUIRE(g_mt && la && lb);
  for (uint32_t s = 0; s < LATE_SETS; s++) {
    uint8_t root[32], sid[32], share[2][32];
    rand32_(root, &seed);
    rand32_(sid, &seed);
    rand32_(share[0], &seed);
    for (int j = 0; j < 32; j++) share[1][j] = root[j] ^ share[0][j];
    for (int i = 0; i < 3; i++) { /* 3s: shard 0, 3s+1: shard 1, 3s+2: its copy */
      uint32_t sh = i == 0 ? 0 : 1;
      mt_fill_(&g_mt[3 * s + (uint32_t)i], s, root, share[sh], sh, inv.payment_addr, 2000, sid,
               &seed);
    }
    la[s] = 3 * s;
    la[LATE_SETS + s] = 3 * s + 1;
    lb[s] = 3 * s + 2;
  }
  for (int half = 0; half < 3; half++) { /* shuffle A's halves and B's list */
    uint32_t *l = half == 2 ? lb : la + (half ? LATE_SETS : 0);
    for (size_t i = LATE_SETS; i > 1; i--) {
      size_t j = amp_test_rand(&seed) % i;
      uint32_t x = l[i - 1];
      l[i - 1] = l[j];
      l[j] = x;
    }
  }
  _Atomic size_t done = 0;
  late_ctx_t lc;
  late_run_(&v, la, 2 * LATE_SETS, lb, LATE_SETS, n, &lc, &done);
  _Atomic uint32_t *ful = lc.ful, *fail = lc.fail;
  size_t bad_set = 0, twice = 0, copy_won = 0;
  for (uint32_t s = 0; s < LATE_SETS; s++) {
    uint32_t f0 = atomic_load(&ful[3 * s]), f1 = atomic_load(&ful[3 * s + 1]),
             f2 = atomic_load(&ful[3 * s + 2]);
    for (int i = 0; i < 3; i++)
      twice +=
          atomic_load(&ful[3 * s + (uint32_t)i]) + atomic_load(&fail[3 * s + (uint32_t)i]) != 1;
    bad_set += !(f0 == 1 && f1 + f2 == 1);
    copy_won += f2;
  }
  fprintf(stderr, "late shards: %d sets, settled with the copy in %zu; the second shards refused:"
                  " %llu while their set settled, %llu after it left memory\n",
          LATE_SETS, copy_won, (unsigned long long)STAT(&v, fail_set_closing),
          (unsigned long long)STAT(&v, fail_set_done));
  AMP_CHECK_EQ(lc.bad, 0);
  AMP_CHECK_EQ(twice, 0);   /* every HTLC answered exactly once */
  AMP_CHECK_EQ(bad_set, 0); /* shard 0 and one of the two second shards settled */
  AMP_CHECK_EQ(STAT(&v, sets_settled), LATE_SETS);
  AMP_CHECK_EQ(STAT(&v, held_now), 0);
  AMP_CHECK_EQ(STAT(&v, store_gave_up), 0);
  AMP_CHECK_EQ(amp_engine_set_table_size(v.e), 0);
  amp_worker_attach(v.w);
  amp_store_invoice_t got;
  AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, inv.payment_addr, &got) == AMP_OK);
  AMP_CHECK_EQ(got.amt_paid_msat, 2000ull * LATE_SETS);
  late_free_(&v, &lc, la, lb);
}

/* Two workers pay a few placeholders over and over, sets of 1 and 2 shards
 * (a 2-shard set's shards on both workers), in order: each placeholder's
 * sets come and go, so it leaves memory and is read back again and again
 * while the other worker holds, evicts or reads it too. */
#define PH_SETS 20000
#define PH_ADDRS 256
static void test_placeholders_mt(void) {
  uint64_t seed = amp_test_seed();
  amp_engine_cfg_t c = {.workers = 2, .accept_amp = 1, .pool_htlcs = 2 * PH_SETS + 1024,
                        .pool_sets = PH_SETS + 1024, .max_held_total = 1u << 20};
  env_t v;
  env_open(&v, &c);
  amp_worker_detach(v.w);
  uint8_t addr[PH_ADDRS][32];
  for (int i = 0; i < PH_ADDRS; i++) rand32_(addr[i], &seed);
  g_mt = calloc(2 * (size_t)PH_SETS, sizeof *g_mt);
  uint32_t *la = malloc(2 * PH_SETS * sizeof *la), *lb = malloc(2 * PH_SETS * sizeof *lb);
  AMP_REQUIRE(g_mt && la && lb);
  size_t na = 0, nb = 0, n = 0;
  uint64_t paid[PH_ADDRS] = {0}, sets[PH_ADDRS] = {0};
  for (uint32_t s = 0; s < PH_SETS; s++) {
    uint64_t r = amp_test_rand(&seed);
    /* one total per addr: a placeholder's value is its first payment's */
    unsigned ai = (unsigned)(r % PH_ADDRS), k = ai & 1 ? 2 : 1;
    uint8_t root[32], sid[32], share[2][32];
    rand32_(root, &seed);
    rand32_(sid, &seed);
    if (k == 1) {
      memcpy(share[0], root, 32);
    } else {
      rand32_(share[0], &seed);
      for (int j = 0; j < 32; j++) share[1][j] = root[j] ^ share[0][j];
    }
    for (unsigned i = 0; i < k; i++) {
      mt_fill_(&g_mt[n], s, root, share[i], i, addr[ai], 1000 * k, sid, &seed);
      if (k == 2 ? i == 0 : (r >> 9) & 1) la[na++] = (uint32_t)n;
      else lb[nb++] = (uint32_t)n;
      n++;
    }
    paid[ai] += 1000 * k;
    sets[ai]++;
  }
  _Atomic size_t done = 0;
  late_ctx_t lc;
  late_run_(&v, la, na, lb, nb, n, &lc, &done);
  _Atomic uint32_t *ful = lc.ful, *fail = lc.fail;
  size_t not_once = 0, failed = 0;
  for (size_t i = 0; i < n; i++) {
    not_once += atomic_load(&ful[i]) + atomic_load(&fail[i]) != 1;
    failed += atomic_load(&fail[i]) != 0;
  }
  fprintf(stderr, "placeholders: %d sets (%zu HTLCs) to %d addrs: %llu read back, %llu evicted\n",
          PH_SETS, n, PH_ADDRS, (unsigned long long)STAT(&v, placeholders_loaded),
          (unsigned long long)STAT(&v, placeholders_evicted));
  AMP_CHECK_EQ(lc.bad, 0);
  AMP_CHECK_EQ(not_once, 0);
  AMP_CHECK_EQ(failed, 0);
  AMP_CHECK_EQ(STAT(&v, sets_settled), PH_SETS);
  AMP_CHECK_EQ(STAT(&v, placeholder_invoices), PH_ADDRS); /* each made once */
  AMP_CHECK(STAT(&v, placeholders_loaded) > 0);
  AMP_CHECK_EQ(STAT(&v, placeholders_evicted),
               STAT(&v, placeholder_invoices) + STAT(&v, placeholders_loaded));
  AMP_CHECK_EQ(STAT(&v, invoices_now), 0);
  AMP_CHECK_EQ(STAT(&v, held_now), 0);
  amp_worker_attach(v.w);
  for (int i = 0; i < PH_ADDRS; i++) {
    amp_store_invoice_t got;
    AMP_CHECK(amp_engine_invoice_lookup_addr(v.e, addr[i], &got) == AMP_OK);
    AMP_CHECK_EQ(got.amt_paid_msat, paid[i]);
    AMP_CHECK_EQ(got.sets_settled, sets[i]);
  }
  late_free_(&v, &lc, la, lb);
}

static void test_concurrency(void) { run_concurrency(MT_SETS, 0); }
/* the same with real onions through amp_worker_process (fewer sets: ECDH) */
static void test_concurrency_onions(void) { run_concurrency(4000, 1); }

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  MUST(amp_secp_init());
  for (int i = 0; i < 32; i++) g_nk[i] = (uint8_t)(0x41 + i);
  amp_pubkey_t pk;
  MUST(amp_secp_pubkey_create(&pk, g_nk));
  amp_secp_pubkey_serialize(g_npub, &pk);
  const char *only = getenv("AMP_TEST_ONLY");
#define RUN(f)                                                                                   \
  do {                                                                                           \
    if (!only || strstr(#f, only)) {                                                             \
      fprintf(stderr, "-- %s\n", #f);                                                            \
      f();                                                                                       \
    }                                                                                            \
  } while (0)
  RUN(test_messages);
  RUN(test_amp_settle);
  RUN(test_amp_reuse);
  RUN(test_mpp);
  RUN(test_mpp_amp_keys);
  RUN(test_spontaneous);
  RUN(test_spontaneous_settle_order);
  RUN(test_placeholder_evict);
  RUN(test_placeholder_race);
  RUN(test_rules);
  RUN(test_mismatch);
  RUN(test_mismatch_burst);
  RUN(test_timers);
  RUN(test_limits);
  RUN(test_total_limit);
  RUN(test_cancel);
  RUN(test_redelivery);
  RUN(test_replay);
  RUN(test_onions);
  RUN(test_store_errors);
  RUN(test_concurrency_onions);
  RUN(test_concurrency);
  RUN(test_late_shards_mt);
  RUN(test_placeholders_mt);
  return amp_test_done();
}
