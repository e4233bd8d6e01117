/* amp_gen.c: AMP traffic generation (see amp_gen.h for what and why).
 *
 * Structure: payments are made whole into a per-payment list of items (one
 * item = one update_add_htlc with its expectation and how to frame it), up
 * to cfg.interleave payments at a time; each step picks one of those
 * payments at random and emits its next item. Channel and htlc id are chosen
 * at emission (they are patched into the encoded message: the onion does not
 * depend on them), so htlc ids grow per channel in the order frames leave.
 * Emitted items join their gateway's open frame; a frame leaves when it holds
 * records_per_frame records or has no room. Frames wait in a small ready
 * queue until amp_gen_next hands them out one by one.
 *
 * Ordering: an item marked flush_before (a replayed onion, a mismatched
 * total) first flushes every open frame and then closes its own, so it
 * leaves after everything made before it and before everything made after
 * it, even with several records per frame. Other items may overtake each
 * other across gateways when records_per_frame > 1 (frames leave when full). Bad-tag and unknown-gateway
 * items go alone in their own frame (after flushing their gateway's open
 * frame, so seq stays increasing in the order frames leave).
 */
#include "amp_gen.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <jansson.h>

#include "amp_chacha20.h"
#include "amp_child.h"
#include "amp_msg.h"
#include "amp_payload.h"
#include "amp_sha256.h"
#include "amp_sphinx.h"
#include "amp_tlv.h"

/* ---------------------------------------------------------------- names */

static const char *const class_names[] = {
#define AMP_GEN_CLASS_NAME_(n, s, f) s,
    AMP_GEN_CLASS_LIST(AMP_GEN_CLASS_NAME_)
#undef AMP_GEN_CLASS_NAME_
};
static const char *const class_flags[] = {
#define AMP_GEN_CLASS_FLAG_(n, s, f) f,
    AMP_GEN_CLASS_LIST(AMP_GEN_CLASS_FLAG_)
#undef AMP_GEN_CLASS_FLAG_
};

const char *amp_gen_class_name(int cls) {
  return cls >= 0 && cls < AMP_GEN_CLASS_COUNT ? class_names[cls] : "?";
}

const char *amp_gen_class_flag(int cls) {
  return cls >= 0 && cls < AMP_GEN_CLASS_COUNT ? class_flags[cls] : NULL;
}

int amp_gen_class_parse(const char *s) {
  for (int i = 0; i < AMP_GEN_CLASS_COUNT; i++)
    if (strcmp(s, class_names[i]) == 0 || (class_flags[i] && strcmp(s, class_flags[i]) == 0))
      return i;
  return -1;
}

static const char *const expect_names[] = {NULL, "fulfill", "fail", "fail_any",
                                           "malformed", "none", "forward"};

const char *amp_gen_expect_name(int x) { return x >= 1 && x <= 6 ? expect_names[x] : "?"; }

int amp_gen_expect_parse(const char *s) {
  for (int i = 1; i <= 6; i++)
    if (strcmp(s, expect_names[i]) == 0) return i;
  return -1;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* ---------------------------------------------------------------- config */

void amp_gen_cfg_default(amp_gen_cfg_t *c) {
  memset(c, 0, sizeof *c);
  static const uint8_t mac[6] = {0x02, 0xa0, 0, 0, 0, 0x01};
  static const uint8_t ip[4] = {198, 19, 0, 1};
  memcpy(c->ampd_mac, mac, 6);
  memcpy(c->ampd_ip, ip, 4);
  c->channels_per_gw = 8;
  c->scid_block = 700000;
  c->htlc_id_base = 0;
  c->seq_base = 1;
  c->payments = 1000;
  c->shard_val[0] = 3;
  c->shard_weight[0] = 1;
  c->n_shard_dist = 1;
  c->amt_min = 10000;
  c->amt_max = 10000000;
  c->height = 800000;
  c->cltv_delta = 144;
  c->records_per_frame = 1;
  c->route_len = 1;
  c->fwd_fee_msat = 1000;
  c->fwd_cltv_delta = 40;
  c->interleave = 1;
}

/* parse_u64 reads a whole decimal or 0x-hex number. */
static int parse_u64(uint64_t *v, const char *s, const char **end) {
  if (!s || !isdigit((unsigned char)*s)) return -1;
  char *e;
  errno = 0;
  unsigned long long x = strtoull(s, &e, 0);
  if (errno || e == s) return -1;
  *v = x;
  if (end) *end = e;
  else if (*e) return -1;
  return 0;
}

int amp_gen_parse_range(uint64_t *lo, uint64_t *hi, const char *s) {
  const char *e;
  if (parse_u64(lo, s, &e)) return AMP_ERR_CONFIG;
  if (*e == 0) {
    *hi = *lo;
    return AMP_OK;
  }
  if (*e != '-' || parse_u64(hi, e + 1, NULL) || *hi < *lo) return AMP_ERR_CONFIG;
  return AMP_OK;
}

int amp_gen_parse_shards(amp_gen_cfg_t *cfg, const char *s, char *err, size_t errlen) {
  uint64_t lo, hi;
  if (amp_gen_parse_range(&lo, &hi, s) || lo < 1 || hi > AMP_GEN_MAX_SHARDS ||
      hi - lo + 1 > AMP_GEN_MAX_DIST) {
    set_err(err, errlen, "shards '%s': want N or A-B with 1 <= A <= B <= %d, at most %d values",
            s, AMP_GEN_MAX_SHARDS, AMP_GEN_MAX_DIST);
    return AMP_ERR_CONFIG;
  }
  cfg->n_shard_dist = 0;
  for (uint64_t v = lo; v <= hi; v++) {
    cfg->shard_val[cfg->n_shard_dist] = (uint32_t)v;
    cfg->shard_weight[cfg->n_shard_dist++] = 1;
  }
  return AMP_OK;
}

int amp_gen_parse_shards_dist(amp_gen_cfg_t *cfg, const char *s, char *err, size_t errlen) {
  size_t n = 0;
  const char *p = s;
  while (*p) {
    uint64_t v, w;
    const char *e;
    if (n == AMP_GEN_MAX_DIST || parse_u64(&v, p, &e) || *e != ':' || parse_u64(&w, e + 1, &e) ||
        (*e && *e != ',') || v < 1 || v > AMP_GEN_MAX_SHARDS || w > 1000000) {
      set_err(err, errlen,
              "shards-dist '%s': want N:W[,N:W...] with 1 <= N <= %d, W <= 1000000, "
              "at most %d entries",
              s, AMP_GEN_MAX_SHARDS, AMP_GEN_MAX_DIST);
      return AMP_ERR_CONFIG;
    }
    cfg->shard_val[n] = (uint32_t)v;
    cfg->shard_weight[n++] = (uint32_t)w;
    p = *e ? e + 1 : e;
  }
  uint64_t sum = 0;
  for (size_t i = 0; i < n; i++) sum += cfg->shard_weight[i];
  if (n == 0 || sum == 0) {
    set_err(err, errlen, "shards-dist '%s': no entry with a positive weight", s);
    return AMP_ERR_CONFIG;
  }
  cfg->n_shard_dist = n;
  return AMP_OK;
}

int amp_gen_parse_mac(uint8_t mac[6], const char *s) {
  unsigned v[6];
  char tail;
  if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
    return AMP_ERR_CONFIG;
  for (int i = 0; i < 6; i++) {
    if (v[i] > 255) return AMP_ERR_CONFIG;
    mac[i] = (uint8_t)v[i];
  }
  return AMP_OK;
}

int amp_gen_parse_ipv4(uint8_t ip[4], const char *s) {
  unsigned v[4];
  char tail;
  if (sscanf(s, "%u.%u.%u.%u%c", &v[0], &v[1], &v[2], &v[3], &tail) != 4) return AMP_ERR_CONFIG;
  for (int i = 0; i < 4; i++) {
    if (v[i] > 255) return AMP_ERR_CONFIG;
    ip[i] = (uint8_t)v[i];
  }
  return AMP_OK;
}

int amp_gen_parse_gateway(amp_gen_gateway_t *gw, size_t idx, const char *s, char *err,
                          size_t errlen) {
  char buf[256];
  if (strlen(s) >= sizeof buf) {
    set_err(err, errlen, "gateway '%.32s...': too long", s);
    return AMP_ERR_CONFIG;
  }
  strcpy(buf, s);
  memset(gw, 0, sizeof *gw);
  gw->mac[0] = 0x02;
  gw->mac[5] = (uint8_t)(idx + 1);
  gw->ip[0] = 198;
  gw->ip[1] = 18;
  gw->ip[2] = (uint8_t)((idx + 1) >> 8);
  gw->ip[3] = (uint8_t)(idx + 1);
  /* ID:KEY[:MAC[:IP]]: the MAC itself has colons, so split by position. */
  char *key = strchr(buf, ':');
  if (!key) goto bad;
  *key++ = 0;
  if (parse_u64(&gw->id, buf, NULL)) goto bad;
  char *rest = strchr(key, ':');
  if (rest) *rest++ = 0;
  if (strlen(key) != 64 || amp_hex_decode_var(gw->key, 32, key) != 32) goto bad;
  if (rest) {
    if (strlen(rest) < 17) goto bad;
    char mac[18];
    memcpy(mac, rest, 17);
    mac[17] = 0;
    if (amp_gen_parse_mac(gw->mac, mac)) goto bad;
    rest += 17;
    if (*rest) {
      if (*rest != ':' || amp_gen_parse_ipv4(gw->ip, rest + 1)) goto bad;
    }
  }
  return AMP_OK;
bad:
  set_err(err, errlen, "gateway '%s': want ID:KEY[:MAC[:IPV4]] (ID decimal or 0x hex, "
          "KEY 64 hex digits, MAC aa:bb:cc:dd:ee:ff, IPv4 a.b.c.d)", s);
  return AMP_ERR_CONFIG;
}

void amp_gen_channel_id(uint8_t out[32], uint64_t scid) {
  static const char tag[] = "ampd-pktgen channel";
  uint8_t buf[sizeof tag - 1 + 8];
  memcpy(buf, tag, sizeof tag - 1);
  amp_put_be64(buf + sizeof tag - 1, scid);
  amp_sha256(out, buf, sizeof buf);
}

/* ---------------------------------------------------------------- RNG */

/* A ChaCha20 keystream keyed by SHA256(tag || be64 seed): deterministic. */
typedef struct {
  uint8_t key[32];
  uint8_t nonce[12];
  uint32_t ctr;
  uint8_t buf[64];
  unsigned pos;
} rng_t;

/* rng_init keys a stream by (seed, stream, index): the frame stream (channel
 * and interleave choices) is stream 0; payment i has stream 1, index i, so
 * payments can be made in any order, by any thread, with the same bytes. */
static void rng_init(rng_t *r, uint64_t seed, uint8_t stream, uint64_t index) {
  static const char tag[] = "ampd-pktgen rng v2";
  uint8_t in[sizeof tag - 1 + 17];
  memcpy(in, tag, sizeof tag - 1);
  amp_put_be64(in + sizeof tag - 1, seed);
  in[sizeof tag - 1 + 8] = stream;
  amp_put_be64(in + sizeof tag - 1 + 9, index);
  amp_sha256(r->key, in, sizeof in);
  memset(r->nonce, 0, sizeof r->nonce);
  r->ctr = 0;
  r->pos = 64;
}

static void rng_bytes(rng_t *r, void *out, size_t n) {
  uint8_t *o = out;
  while (n) {
    if (r->pos == 64) {
      amp_chacha20_block(r->buf, r->key, r->ctr, r->nonce);
      if (++r->ctr == 0) r->nonce[0]++;
      r->pos = 0;
    }
    size_t k = 64 - r->pos < n ? 64 - r->pos : n;
    memcpy(o, r->buf + r->pos, k);
    r->pos += (unsigned)k;
    o += k;
    n -= k;
  }
}

static uint64_t rng_u64(rng_t *r) {
  uint8_t b[8];
  rng_bytes(r, b, 8);
  return amp_be64(b);
}

/* rng_below returns a uniform value in [0, n); n > 0. */
static uint64_t rng_below(rng_t *r, uint64_t n) {
  uint64_t lim = (0 - n) % n; /* values below lim would bias */
  for (;;) {
    uint64_t x = rng_u64(r);
    if (x >= lim) return x % n;
  }
}

static double rng_unit(rng_t *r) { return (double)(rng_u64(r) >> 11) * 0x1p-53; }

/* ---------------------------------------------------------------- state */

enum { FRAME_NORMAL = 0, FRAME_BAD_TAG = 1, FRAME_UNKNOWN = 2 };

typedef struct {
  amp_gen_htlc_t x;
  uint8_t kind;                  /* FRAME_* */
  uint8_t flush_before;
  uint16_t msg_len;
  uint8_t msg[AMP_MSG_ADD_LEN];
} item_t;

typedef struct {
  size_t n_items, next;
  item_t *items;
  uint8_t cls;                   /* the payment's class */
  uint32_t missing;              /* shards never sent */
} pay_t;

typedef struct {
  uint8_t *buf;
  size_t len;
  amp_frame_builder_t b;
  amp_gen_htlc_t *htlc;          /* records_per_frame entries */
  size_t n_htlc;
  uint64_t gateway_id, seq, usec;
} fslot_t;

#define HOP_POOL 8

struct amp_gen {
  amp_gen_cfg_t cfg;
  rng_t rng;
  size_t n_chan;
  uint64_t *htlc_next;           /* per channel */
  uint64_t *seq_next;            /* per gateway */
  amp_gen_gateway_t unk;         /* the unknown gateway */
  uint64_t unk_seq, unk_scid, unk_htlc_next;

  pay_t *pay;                    /* interleave active payments */
  size_t n_active;
  size_t item_cap;
  uint64_t next_payment;

  fslot_t *slot;
  size_t n_slot;
  size_t *free_stack;
  size_t n_free;
  int open[AMP_GEN_MAX_GATEWAYS];/* open frame slot per gateway, -1: none */
  size_t *ready;                 /* ring of slot indexes */
  size_t ready_head, ready_n;
  int returned;                  /* slot handed out by the last amp_gen_next */
  int started, finished;
  int err;
  uint64_t t0;

  double cum[AMP_GEN_CLASS_COUNT];
  uint64_t dist_sum;
  uint32_t max_shards;
  uint8_t hop_pub[HOP_POOL][AMP_PUBKEY_LEN];
  amp_gen_stats_t st;

  /* Makers: cfg.threads threads make payments ahead into a ring of q_cap
   * slots, payment i in slot i % q_cap; the caller takes them in order. */
  pthread_t *th;
  size_t n_th;
  pthread_mutex_t mu;
  pthread_cond_t cv_ready, cv_free;
  int sync_ok;                   /* mu and the condvars exist */
  pay_t *q;
  uint8_t *q_ready;
  int *q_rc;
  size_t q_cap;
  uint64_t q_claim, q_take;      /* next payment to make / to take */
  int q_stop;
};

static int makers_start(amp_gen_t *g);
static void makers_stop(amp_gen_t *g);

/* ---------------------------------------------------------------- frames */

static size_t slot_alloc(amp_gen_t *g) {
  /* Sized so this never runs dry: see amp_gen_new. */
  return g->free_stack[--g->n_free];
}

static void slot_free(amp_gen_t *g, size_t s) { g->free_stack[g->n_free++] = s; }

static void frame_addr(const amp_gen_t *g, const amp_gen_gateway_t *gw, amp_frame_addr_t *a) {
  memcpy(a->dst_mac, g->cfg.ampd_mac, 6);
  memcpy(a->src_mac, gw->mac, 6);
  memcpy(a->src_ip, gw->ip, 4);
  memcpy(a->dst_ip, g->cfg.ampd_ip, 4);
  a->src_port = AMP_FRAME_UDP_PORT;
  a->dst_port = AMP_FRAME_UDP_PORT;
}

static size_t frame_open(amp_gen_t *g, const amp_gen_gateway_t *gw, uint64_t seq) {
  size_t s = slot_alloc(g);
  fslot_t *f = &g->slot[s];
  amp_frame_addr_t a;
  frame_addr(g, gw, &a);
  amp_frame_begin(&f->b, f->buf, AMP_FRAME_MAX_LEN, &a, gw->id, seq);
  f->n_htlc = 0;
  f->gateway_id = gw->id;
  f->seq = seq;
  return s;
}

static void ready_push(amp_gen_t *g, size_t s) {
  fslot_t *f = &g->slot[s];
  f->usec = g->t0 + g->st.frames;
  g->st.frames++;
  g->st.bytes += f->len;
  g->ready[(g->ready_head + g->ready_n++) % g->n_slot] = s;
}

static void frame_close(amp_gen_t *g, size_t s, const uint8_t key[32]) {
  fslot_t *f = &g->slot[s];
  if (f->b.err && !g->err) g->err = f->b.err;
  f->len = amp_frame_finish(&f->b, key);
  ready_push(g, s);
}

static void flush_gw(amp_gen_t *g, size_t gi) {
  if (g->open[gi] < 0) return;
  frame_close(g, (size_t)g->open[gi], g->cfg.gw[gi].key);
  g->open[gi] = -1;
}

static void flush_all(amp_gen_t *g) {
  for (size_t i = 0; i < g->cfg.n_gw; i++) flush_gw(g, i);
}

static void patch_msg(item_t *it, uint64_t scid, uint64_t id) {
  amp_gen_channel_id(it->msg + 2, scid);
  amp_put_be64(it->msg + 2 + 32, id);
  it->x.scid = scid;
  it->x.htlc_id = id;
}

static uint64_t chan_scid(const amp_gen_t *g, size_t c) {
  uint64_t gi = c / g->cfg.channels_per_gw, ch = c % g->cfg.channels_per_gw;
  return ((uint64_t)(g->cfg.scid_block + gi) << 40) | (ch << 16);
}

static void count_htlc(amp_gen_t *g, const amp_gen_htlc_t *x) {
  g->st.htlcs++;
  g->st.htlcs_class[x->cls]++;
  g->st.htlcs_expect[x->expect]++;
}

/* emit frames one item. */
static void emit(amp_gen_t *g, item_t *it) {
  amp_gen_htlc_t *x = &it->x;
  if (it->kind == FRAME_UNKNOWN) {
    patch_msg(it, g->unk_scid, g->unk_htlc_next++);
    x->gateway_id = g->unk.id;
    size_t s = frame_open(g, &g->unk, g->unk_seq++);
    fslot_t *f = &g->slot[s];
    if (amp_frame_add(&f->b, x->scid, it->msg, it->msg_len) != AMP_OK && !g->err)
      g->err = AMP_ERR_OVERFLOW;
    f->htlc[f->n_htlc++] = *x;
    frame_close(g, s, g->unk.key);
    count_htlc(g, x);
    return;
  }
  size_t c = (size_t)rng_below(&g->rng, g->n_chan);
  if (g->cfg.route_len > 1 && g->n_chan > 1 && chan_scid(g, c) == x->fwd_scid)
    c = (c + 1) % g->n_chan; /* do not come in on the channel it must leave by */
  size_t gi = c / g->cfg.channels_per_gw;
  const amp_gen_gateway_t *gw = &g->cfg.gw[gi];
  patch_msg(it, chan_scid(g, c), g->htlc_next[c]++);
  x->gateway_id = gw->id;
  count_htlc(g, x);

  if (it->kind == FRAME_BAD_TAG) {
    flush_gw(g, gi);
    size_t s = frame_open(g, gw, g->seq_next[gi]++);
    fslot_t *f = &g->slot[s];
    if (amp_frame_add(&f->b, x->scid, it->msg, it->msg_len) != AMP_OK && !g->err)
      g->err = AMP_ERR_OVERFLOW;
    f->htlc[f->n_htlc++] = *x;
    if (f->b.err && !g->err) g->err = f->b.err;
    f->len = amp_frame_finish(&f->b, gw->key);
    f->buf[f->len - 1 - rng_below(&g->rng, AMP_FRAME_TAG_LEN)] ^=
        (uint8_t)(1u << rng_below(&g->rng, 8));
    ready_push(g, s);
    return;
  }

  if (it->flush_before) flush_all(g);
  for (int attempt = 0; attempt < 2; attempt++) {
    if (g->open[gi] < 0) g->open[gi] = (int)frame_open(g, gw, g->seq_next[gi]++);
    fslot_t *f = &g->slot[g->open[gi]];
    if (amp_frame_add(&f->b, x->scid, it->msg, it->msg_len) == AMP_OK) {
      f->htlc[f->n_htlc++] = *x;
      if (f->n_htlc >= g->cfg.records_per_frame || it->flush_before) flush_gw(g, gi);
      return;
    }
    if (f->b.count == 0) break; /* does not fit an empty frame */
    flush_gw(g, gi);
  }
  if (!g->err) g->err = AMP_ERR_OVERFLOW;
}

/* ---------------------------------------------------------------- payloads */

static size_t put_rec(uint8_t *out, uint64_t type, const uint8_t *v, size_t n) {
  size_t k = amp_bigsize_write(out, type);
  k += amp_bigsize_write(out + k, n);
  memcpy(out + k, v, n);
  return k + n;
}

/* final_payload writes the final hop's TLV stream. bad selects a
 * malformed_tlv variant (-1: a good payload). Returns its length or < 0. */
static long final_payload(uint8_t *out, size_t cap, uint64_t amt, uint32_t cltv,
                          const uint8_t addr[32], uint64_t total, const uint8_t share[32],
                          const uint8_t set_id[32], uint32_t index, int bad) {
  if (bad < 0) {
    amp_payload_t pl;
    memset(&pl, 0, sizeof pl);
    pl.present = AMP_PAYLOAD_AMT | AMP_PAYLOAD_CLTV | AMP_PAYLOAD_MPP | AMP_PAYLOAD_AMP;
    pl.amt_to_forward = amt;
    pl.outgoing_cltv_value = cltv;
    memcpy(pl.payment_addr, addr, 32);
    pl.total_msat = total;
    memcpy(pl.amp_share, share, 32);
    memcpy(pl.amp_set_id, set_id, 32);
    pl.amp_child_index = index;
    long n = amp_payload_encode(out, cap, &pl);
    amp_wipe(&pl, sizeof pl);
    return n;
  }
  if (cap < 256) return AMP_ERR_OVERFLOW;
  uint8_t v_amt[9], v_cltv[8], v_mpp[40], v_amp[68];
  size_t n_amt = amp_tu64_write(v_amt, amt);
  size_t n_cltv = amp_tu64_write(v_cltv, cltv);
  memcpy(v_mpp, addr, 32);
  size_t n_mpp = 32 + amp_tu64_write(v_mpp + 32, total);
  memcpy(v_amp, share, 32);
  memcpy(v_amp + 32, set_id, 32);
  size_t n_amp = 64 + amp_tu64_write(v_amp + 64, index);
  size_t n = 0;
  switch (bad) {
  case 0: /* an unknown even type (100) after the known records */
    n += put_rec(out + n, 2, v_amt, n_amt);
    n += put_rec(out + n, 4, v_cltv, n_cltv);
    n += put_rec(out + n, 8, v_mpp, n_mpp);
    n += put_rec(out + n, 14, v_amp, n_amp);
    n += put_rec(out + n, 100, (const uint8_t *)"\x01", 1);
    break;
  case 1: /* amt_to_forward with a leading zero byte: not minimal */
    memmove(v_amt + 1, v_amt, n_amt);
    v_amt[0] = 0;
    n += put_rec(out + n, 2, v_amt, n_amt + 1);
    n += put_rec(out + n, 4, v_cltv, n_cltv);
    n += put_rec(out + n, 8, v_mpp, n_mpp);
    n += put_rec(out + n, 14, v_amp, n_amp);
    break;
  case 2: /* types out of order: 4 before 2 */
    n += put_rec(out + n, 4, v_cltv, n_cltv);
    n += put_rec(out + n, 2, v_amt, n_amt);
    n += put_rec(out + n, 8, v_mpp, n_mpp);
    n += put_rec(out + n, 14, v_amp, n_amp);
    break;
  case 3: /* amp record of 63 bytes */
    n += put_rec(out + n, 2, v_amt, n_amt);
    n += put_rec(out + n, 4, v_cltv, n_cltv);
    n += put_rec(out + n, 8, v_mpp, n_mpp);
    n += put_rec(out + n, 14, v_amp, 63);
    break;
  default: /* payment_data of 31 bytes */
    n += put_rec(out + n, 2, v_amt, n_amt);
    n += put_rec(out + n, 4, v_cltv, n_cltv);
    n += put_rec(out + n, 8, v_mpp, 31);
    n += put_rec(out + n, 14, v_amp, n_amp);
    break;
  }
  amp_wipe(v_amp, sizeof v_amp);
  return (long)n;
}
#define MALFORMED_VARIANTS 5

static long fwd_payload(uint8_t *out, size_t cap, uint64_t amt, uint32_t cltv, uint64_t scid) {
  amp_payload_t pl;
  memset(&pl, 0, sizeof pl);
  pl.present = AMP_PAYLOAD_AMT | AMP_PAYLOAD_CLTV | AMP_PAYLOAD_SCID;
  pl.amt_to_forward = amt;
  pl.outgoing_cltv_value = cltv;
  pl.short_channel_id = scid;
  return amp_payload_encode(out, cap, &pl);
}

/* A shard's description, from which build_item makes the onion and message. */
typedef struct {
  uint64_t amount;               /* what the final hop receives */
  uint32_t cltv;                 /* the final hop's cltv */
  uint64_t total;
  const uint8_t *addr, *share, *set_id;
  uint32_t index;
  int malformed;                 /* -1 or a variant */
  int flip;
} shard_t;

static int build_item(const amp_gen_t *g, rng_t *r, item_t *it, const shard_t *sh,
                      const amp_child_t *child) {
  const amp_gen_cfg_t *c = &g->cfg;
  uint32_t K = c->route_len;
  uint8_t pay[AMP_GEN_MAX_HOPS][256];
  const uint8_t *pp[AMP_GEN_MAX_HOPS];
  size_t pl[AMP_GEN_MAX_HOPS];
  uint8_t pub[AMP_GEN_MAX_HOPS][AMP_PUBKEY_LEN];
  amp_gen_htlc_t *x = &it->x;

  long n = final_payload(pay[K - 1], sizeof pay[0], sh->amount, sh->cltv, sh->addr, sh->total,
                         sh->share, sh->set_id, sh->index, sh->malformed);
  if (n < 0) return (int)n;
  pl[K - 1] = (size_t)n;
  memcpy(pub[0], c->node_pubkey, AMP_PUBKEY_LEN);
  for (uint32_t h = 1; h < K; h++)
    memcpy(pub[h], g->hop_pub[rng_below(r, HOP_POOL)], AMP_PUBKEY_LEN);
  for (uint32_t h = 0; h + 1 < K; h++) {
    /* hop h forwards to hop h+1 what hop h+1 is paid, plus its own fees */
    uint64_t fwd_amt = sh->amount + c->fwd_fee_msat * (K - 2 - h);
    uint32_t fwd_cltv = sh->cltv + c->fwd_cltv_delta * (K - 2 - h);
    uint64_t scid = h == 0 ? x->fwd_scid : rng_u64(r) >> 1;
    n = fwd_payload(pay[h], sizeof pay[0], fwd_amt, fwd_cltv, scid);
    if (n < 0) return (int)n;
    pl[h] = (size_t)n;
    if (h == 0) {
      x->fwd_amount_msat = fwd_amt;
      x->fwd_cltv = fwd_cltv;
    }
  }
  for (uint32_t h = 0; h < K; h++) pp[h] = pay[h];

  uint8_t session[32];
  do rng_bytes(r, session, 32);
  while (amp_secp_seckey_verify(session) != AMP_OK);
  uint8_t onion[AMP_ONION_LEN];
  int rc = amp_sphinx_build(onion, session, (const uint8_t(*)[AMP_PUBKEY_LEN])pub, pp, pl, K,
                            child->hash, 32, x->ss);
  amp_wipe(session, sizeof session);
  amp_wipe(pay[K - 1], sizeof pay[0]);
  if (rc != AMP_OK) return rc;
  if (sh->flip) {
    size_t at = 1 + AMP_PUBKEY_LEN + (size_t)rng_below(r, AMP_ONION_PAYLOADS_LEN);
    onion[at] ^= (uint8_t)(1u << rng_below(r, 8));
  }
  x->n_hops = (uint8_t)K;
  amp_sha256(x->onion_sha256, onion, sizeof onion);
  memcpy(x->payment_hash, child->hash, 32);
  memcpy(x->preimage, child->preimage, 32);
  memcpy(x->set_id, sh->set_id, 32);
  x->child_index = sh->index;
  x->total_msat = sh->total;
  x->amount_msat = sh->amount + (K > 1 ? c->fwd_fee_msat * (K - 1) : 0);
  x->cltv_expiry = sh->cltv + (K > 1 ? c->fwd_cltv_delta * (K - 1) : 0);

  amp_msg_add_t m;
  memset(&m, 0, sizeof m);
  m.amount_msat = x->amount_msat;
  memcpy(m.payment_hash, child->hash, 32);
  m.cltv_expiry = x->cltv_expiry;
  m.onion = onion;
  long len = amp_msg_add_encode(it->msg, sizeof it->msg, &m);
  if (len < 0) return (int)len;
  it->msg_len = (uint16_t)len;
  return AMP_OK;
}

static void set_expect(amp_gen_htlc_t *x, int cls, int expect, uint16_t code) {
  x->cls = (uint8_t)cls;
  x->expect = (uint8_t)expect;
  x->code = code;
}

static int draw_class(const amp_gen_t *g, rng_t *r) {
  double u = rng_unit(r);
  for (int k = 1; k < AMP_GEN_CLASS_COUNT; k++)
    if (u < g->cum[k]) return k;
  return AMP_GEN_GOOD;
}

static uint32_t draw_shards(const amp_gen_t *g, rng_t *r) {
  uint64_t u = rng_below(r, g->dist_sum);
  for (size_t i = 0; i < g->cfg.n_shard_dist; i++) {
    if (u < g->cfg.shard_weight[i]) return g->cfg.shard_val[i];
    u -= g->cfg.shard_weight[i];
  }
  return g->cfg.shard_val[g->cfg.n_shard_dist - 1];
}

/* insert_at opens a hole at position pos of p's items. */
static item_t *insert_at(pay_t *p, size_t pos) {
  memmove(&p->items[pos + 1], &p->items[pos], (p->n_items - pos) * sizeof(item_t));
  p->n_items++;
  return &p->items[pos];
}

/* make_payment fills p with the items of payment number index. Reads g's
 * configuration only: safe from several threads for different payments. */
static int make_payment(const amp_gen_t *g, pay_t *p, uint64_t index) {
  const amp_gen_cfg_t *c = &g->cfg;
  rng_t rng, *r = &rng;
  rng_init(r, c->seed, 1, index);
  int cls = draw_class(g, r);
  uint32_t n = draw_shards(g, r);
  if ((cls == AMP_GEN_MISSING || cls == AMP_GEN_MISMATCHED) && n < 2) n = 2;
  uint64_t total = c->amt_min + (c->amt_max > c->amt_min ? rng_below(r, c->amt_max - c->amt_min + 1) : 0);
  if (total < (uint64_t)n + 1) total = (uint64_t)n + 1;

  uint8_t root[32], set_id[32], addr[32];
  uint8_t(*share)[32] = malloc((size_t)(n + 1) * 32);
  amp_child_t *child = malloc((size_t)(n + 1) * sizeof *child);
  if (!share || !child) {
    free(share);
    free(child);
    return AMP_ERR_NOMEM;
  }
  rng_bytes(r, root, 32);
  rng_bytes(r, set_id, 32);
  if (c->fixed_addr) memcpy(addr, c->payment_addr, 32);
  else rng_bytes(r, addr, 32);
  /* XOR split: n-1 random shares, the last one closes the XOR to root */
  memcpy(share[n - 1], root, 32);
  for (uint32_t i = 0; i + 1 < n; i++) {
    rng_bytes(r, share[i], 32);
    for (int b = 0; b < 32; b++) share[n - 1][b] ^= share[i][b];
  }
  rng_bytes(r, share[n], 32); /* the extra shard's (bad classes), index n */
  for (uint32_t i = 0; i <= n; i++) amp_child_derive(&child[i], root, share[i], i);

  /* amounts: n parts >= 1 of sum (underpaid: below total) */
  uint64_t sum = total;
  if (cls == AMP_GEN_UNDERPAID) sum = total - 1 - rng_below(r, total - n);
  uint64_t left = sum - n;
  uint32_t cltv = c->height + c->cltv_delta;
  int missing = cls == AMP_GEN_MISSING ? (int)rng_below(r, n) : -1;
  int wrong = cls == AMP_GEN_WRONG_SHARE ? (int)rng_below(r, n) : -1;
  uint64_t fwd_scid = c->route_len > 1 ? chan_scid(g, (size_t)rng_below(r, g->n_chan)) : 0;
  int rc = AMP_OK;
  p->n_items = 0;
  p->next = 0;
  p->cls = (uint8_t)cls;
  p->missing = 0;
  for (uint32_t i = 0; i < n && rc == AMP_OK; i++) {
    uint64_t part = 1;
    if (i + 1 == n) part += left;
    else if (left) {
      uint64_t take = rng_below(r, 2 * (left / (n - i)) + 1);
      if (take > left) take = left;
      part += take;
      left -= take;
    }
    if ((int)i == missing) {
      p->missing++;
      continue;
    }
    uint8_t bogus[32];
    rng_bytes(r, bogus, 32);
    shard_t sh = {part, cltv, total, addr, (int)i == wrong ? bogus : share[i], set_id, i, -1, 0};
    item_t *it = &p->items[p->n_items++];
    memset(&it->x, 0, sizeof it->x);
    it->kind = FRAME_NORMAL;
    it->flush_before = 0;
    it->x.payment = index;
    it->x.n_shards = n;
    it->x.fwd_scid = fwd_scid;
    rc = build_item(g, r, it, &sh, &child[i]);
    switch (cls) {
    case AMP_GEN_MISSING:
    case AMP_GEN_UNDERPAID:
      set_expect(&it->x, cls, AMP_GEN_X_FAIL, AMP_FAIL_MPP_TIMEOUT);
      break;
    case AMP_GEN_WRONG_SHARE:
      set_expect(&it->x, cls, AMP_GEN_X_FAIL, AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS);
      break;
    default:
      set_expect(&it->x, AMP_GEN_GOOD,
                 c->route_len > 1 ? AMP_GEN_X_FORWARD : AMP_GEN_X_FULFILL, 0);
    }
    amp_wipe(bogus, sizeof bogus);
  }

  if (rc == AMP_OK && cls == AMP_GEN_REPLAY) {
    size_t j = n >= 2 ? (size_t)rng_below(r, n - 1) : 0;
    item_t *it = insert_at(p, j + 1);
    *it = p->items[j];
    it->flush_before = 1;
    /* ampd's engine answers a replay like a receive-rule failure */
    set_expect(&it->x, cls, AMP_GEN_X_FAIL, AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS);
  } else if (rc == AMP_OK && cls >= AMP_GEN_FLIPPED && cls != AMP_GEN_UNDERPAID) {
    /* one extra shard, index n, bad in one way */
    size_t pos = cls == AMP_GEN_MISMATCHED ? 1 + (size_t)rng_below(r, n - 1)
                                           : 1 + (size_t)rng_below(r, n);
    shard_t sh = {total / n ? total / n : 1, cltv, total, addr, share[n], set_id, n, -1, 0};
    item_t *it = insert_at(p, pos);
    memset(&it->x, 0, sizeof it->x);
    it->kind = FRAME_NORMAL;
    it->flush_before = 0;
    it->x.payment = index;
    it->x.n_shards = n;
    it->x.fwd_scid = fwd_scid;
    int x = AMP_GEN_X_FAIL;
    uint16_t code = AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS;
    switch (cls) {
    case AMP_GEN_FLIPPED:
      sh.flip = 1;
      x = AMP_GEN_X_MALFORMED;
      code = AMP_FAIL_INVALID_ONION_HMAC;
      break;
    case AMP_GEN_BAD_TAG:
      it->kind = FRAME_BAD_TAG;
      x = AMP_GEN_X_NONE;
      code = 0;
      break;
    case AMP_GEN_UNKNOWN_GW:
      it->kind = FRAME_UNKNOWN;
      x = AMP_GEN_X_NONE;
      code = 0;
      break;
    case AMP_GEN_MISMATCHED:
      sh.total = total + sh.amount;
      it->flush_before = 1;
      break;
    case AMP_GEN_EXPIRED:
      sh.cltv = c->height + AMP_GEN_EXPIRED_DELTA;
      break;
    case AMP_GEN_MALFORMED_TLV:
      sh.malformed = (int)rng_below(r, MALFORMED_VARIANTS);
      code = AMP_FAIL_INVALID_ONION_PAYLOAD;
      break;
    }
    rc = build_item(g, r, it, &sh, &child[n]);
    set_expect(&it->x, cls, x, code);
  }
  amp_wipe(r, sizeof *r);
  amp_wipe(root, sizeof root);
  amp_wipe(share, (size_t)(n + 1) * 32);
  amp_wipe(child, (size_t)(n + 1) * sizeof *child);
  free(share);
  free(child);
  return rc;
}

/* ---------------------------------------------------------------- API */

int amp_gen_new(amp_gen_t **out, const amp_gen_cfg_t *cfg, char *err, size_t errlen) {
  *out = NULL;
  const amp_gen_cfg_t *c = cfg;
  if (c->n_gw < 1 || c->n_gw > AMP_GEN_MAX_GATEWAYS) {
    set_err(err, errlen, "need 1 to %d gateways", AMP_GEN_MAX_GATEWAYS);
    return AMP_ERR_CONFIG;
  }
  for (size_t i = 0; i < c->n_gw; i++)
    for (size_t j = 0; j < i; j++)
      if (c->gw[i].id == c->gw[j].id) {
        set_err(err, errlen, "gateway id %" PRIu64 " given twice", c->gw[i].id);
        return AMP_ERR_CONFIG;
      }
  if (c->channels_per_gw < 1 || c->channels_per_gw > 65536) {
    set_err(err, errlen, "channels per gateway: 1 to 65536");
    return AMP_ERR_CONFIG;
  }
  if ((uint64_t)c->scid_block + c->n_gw >= (1u << 24)) {
    set_err(err, errlen, "scid block + gateways must stay below 2^24");
    return AMP_ERR_CONFIG;
  }
  if (c->n_shard_dist < 1 || c->n_shard_dist > AMP_GEN_MAX_DIST) {
    set_err(err, errlen, "empty shard distribution");
    return AMP_ERR_CONFIG;
  }
  if (c->amt_min < 1 || c->amt_max < c->amt_min || c->amt_max > (1ull << 62)) {
    set_err(err, errlen, "amounts: 1 <= min <= max <= 2^62 msat");
    return AMP_ERR_CONFIG;
  }
  if (c->records_per_frame < 1 || c->records_per_frame > AMP_FRAME_MAX_RECORDS) {
    set_err(err, errlen, "records per frame: 1 to %d", AMP_FRAME_MAX_RECORDS);
    return AMP_ERR_CONFIG;
  }
  if (c->route_len < 1 || c->route_len > AMP_GEN_MAX_HOPS) {
    set_err(err, errlen, "route length: 1 to %d", AMP_GEN_MAX_HOPS);
    return AMP_ERR_CONFIG;
  }
  if (c->threads > 256) {
    set_err(err, errlen, "threads: 0 to 256");
    return AMP_ERR_CONFIG;
  }
  if (c->interleave < 1 || c->interleave > 65536) {
    set_err(err, errlen, "interleave: 1 to 65536");
    return AMP_ERR_CONFIG;
  }
  if (c->cltv_delta < 1 || (uint64_t)c->height + c->cltv_delta +
                               (uint64_t)c->fwd_cltv_delta * c->route_len > UINT32_MAX) {
    set_err(err, errlen, "height + cltv deltas overflow 32 bits or cltv delta is 0");
    return AMP_ERR_CONFIG;
  }
  double sum = 0;
  for (int k = 1; k < AMP_GEN_CLASS_COUNT; k++) {
    if (!(c->rate[k] >= 0 && c->rate[k] <= 1)) {
      set_err(err, errlen, "rate of %s: 0 to 1", amp_gen_class_name(k));
      return AMP_ERR_CONFIG;
    }
    if (c->route_len > 1 && c->rate[k] > 0 && k != AMP_GEN_REPLAY && k != AMP_GEN_FLIPPED &&
        k != AMP_GEN_BAD_TAG && k != AMP_GEN_UNKNOWN_GW) {
      set_err(err, errlen, "%s concerns the final hop: not with route length > 1",
              amp_gen_class_name(k));
      return AMP_ERR_CONFIG;
    }
    sum += c->rate[k];
  }
  if (sum > 1.0 + 1e-9) {
    set_err(err, errlen, "bad-traffic rates sum to %.3f > 1", sum);
    return AMP_ERR_CONFIG;
  }
  int rc = amp_secp_init();
  if (rc != AMP_OK) return rc;
  amp_pubkey_t pk;
  if (amp_secp_pubkey_parse(&pk, c->node_pubkey) != AMP_OK) {
    set_err(err, errlen, "node public key is not a valid compressed point");
    return AMP_ERR_BAD_KEY;
  }

  amp_gen_t *g = calloc(1, sizeof *g);
  if (!g) return AMP_ERR_NOMEM;
  g->cfg = *c;
  g->returned = -1;
  rng_init(&g->rng, c->seed, 0, 0);
  for (size_t i = 0; i < AMP_GEN_MAX_GATEWAYS; i++) g->open[i] = -1;
  g->cum[1] = c->rate[1];
  for (int k = 2; k < AMP_GEN_CLASS_COUNT; k++) g->cum[k] = g->cum[k - 1] + c->rate[k];
  for (size_t i = 0; i < c->n_shard_dist; i++) {
    g->dist_sum += c->shard_weight[i];
    if (c->shard_val[i] > g->max_shards) g->max_shards = c->shard_val[i];
  }
  if (g->max_shards < 2) g->max_shards = 2;
  g->n_chan = c->n_gw * c->channels_per_gw;
  g->item_cap = g->max_shards + 2;
  g->n_slot = 2 * c->n_gw + 6;
  g->htlc_next = calloc(g->n_chan, sizeof *g->htlc_next);
  g->seq_next = calloc(c->n_gw, sizeof *g->seq_next);
  g->pay = calloc(c->interleave, sizeof *g->pay);
  g->slot = calloc(g->n_slot, sizeof *g->slot);
  g->free_stack = calloc(g->n_slot, sizeof *g->free_stack);
  g->ready = calloc(g->n_slot, sizeof *g->ready);
  if (!g->htlc_next || !g->seq_next || !g->pay || !g->slot || !g->free_stack || !g->ready)
    goto nomem;
  for (size_t i = 0; i < c->interleave; i++) {
    g->pay[i].items = malloc(g->item_cap * sizeof(item_t));
    if (!g->pay[i].items) goto nomem;
  }
  for (size_t i = 0; i < g->n_slot; i++) {
    g->slot[i].buf = malloc(AMP_FRAME_MAX_LEN);
    g->slot[i].htlc = malloc(c->records_per_frame * sizeof(amp_gen_htlc_t));
    if (!g->slot[i].buf || !g->slot[i].htlc) goto nomem;
    g->free_stack[g->n_free++] = g->n_slot - 1 - i;
  }
  for (size_t i = 0; i < g->n_chan; i++) g->htlc_next[i] = c->htlc_id_base;
  for (size_t i = 0; i < c->n_gw; i++) g->seq_next[i] = c->seq_base;

  /* the unknown gateway: an id no configured gateway has, a random key */
  for (;;) {
    g->unk.id = 0xbad0000000000000ull | (rng_u64(&g->rng) >> 16);
    size_t i;
    for (i = 0; i < c->n_gw && c->gw[i].id != g->unk.id; i++) {
    }
    if (i == c->n_gw) break;
  }
  rng_bytes(&g->rng, g->unk.key, 32);
  static const uint8_t unk_mac[6] = {0x02, 0, 0, 0, 0xff, 0xff};
  static const uint8_t unk_ip[4] = {198, 18, 255, 254};
  memcpy(g->unk.mac, unk_mac, 6);
  memcpy(g->unk.ip, unk_ip, 4);
  g->unk_seq = c->seq_base;
  g->unk_scid = (uint64_t)0xffffff << 40;
  g->unk_htlc_next = c->htlc_id_base;

  for (int h = 0; h < HOP_POOL; h++) {
    uint8_t sk[32];
    amp_pubkey_t hp;
    do rng_bytes(&g->rng, sk, 32);
    while (amp_secp_pubkey_create(&hp, sk) != AMP_OK);
    amp_secp_pubkey_serialize(g->hop_pub[h], &hp);
    amp_wipe(sk, sizeof sk);
  }
  if (c->t0_usec) g->t0 = c->t0_usec;
  else {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    g->t0 = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
  }
  if (makers_start(g) != AMP_OK) goto nomem;
  *out = g;
  return AMP_OK;
nomem:
  amp_gen_delete(g);
  return AMP_ERR_NOMEM;
}

static void *maker(void *arg) {
  amp_gen_t *g = arg;
  pthread_mutex_lock(&g->mu);
  for (;;) {
    while (!g->q_stop && g->q_claim < g->cfg.payments && g->q_claim - g->q_take >= g->q_cap)
      pthread_cond_wait(&g->cv_free, &g->mu);
    if (g->q_stop || g->q_claim >= g->cfg.payments) break;
    uint64_t idx = g->q_claim++;
    size_t s = (size_t)(idx % g->q_cap);
    pthread_mutex_unlock(&g->mu);
    int rc = make_payment(g, &g->q[s], idx);
    pthread_mutex_lock(&g->mu);
    g->q_rc[s] = rc;
    g->q_ready[s] = 1;
    pthread_cond_broadcast(&g->cv_ready);
  }
  pthread_mutex_unlock(&g->mu);
  return NULL;
}

/* next_pay puts the next payment into p: made here, or taken from the
 * makers' ring (swapping item buffers, no copy). */
static int next_pay(amp_gen_t *g, pay_t *p) {
  uint64_t idx = g->next_payment++;
  int rc;
  if (!g->n_th) {
    rc = make_payment(g, p, idx);
  } else {
    size_t s = (size_t)(idx % g->q_cap);
    pthread_mutex_lock(&g->mu);
    while (!g->q_ready[s]) pthread_cond_wait(&g->cv_ready, &g->mu);
    pay_t tmp = *p;
    *p = g->q[s];
    g->q[s] = tmp;
    rc = g->q_rc[s];
    g->q_ready[s] = 0;
    g->q_take = idx + 1;
    pthread_cond_broadcast(&g->cv_free);
    pthread_mutex_unlock(&g->mu);
  }
  if (rc == AMP_OK) {
    g->st.payments_class[p->cls]++;
    g->st.shards_missing += p->missing;
  }
  return rc;
}

static int makers_start(amp_gen_t *g) {
  size_t n = g->cfg.threads;
  if (!n || g->cfg.payments < 2) return AMP_OK;
  if (pthread_mutex_init(&g->mu, NULL)) return AMP_ERR_NOMEM;
  if (pthread_cond_init(&g->cv_ready, NULL)) {
    pthread_mutex_destroy(&g->mu);
    return AMP_ERR_NOMEM;
  }
  if (pthread_cond_init(&g->cv_free, NULL)) {
    pthread_cond_destroy(&g->cv_ready);
    pthread_mutex_destroy(&g->mu);
    return AMP_ERR_NOMEM;
  }
  g->sync_ok = 1;
  g->q_cap = 8 * n + g->cfg.interleave;
  g->q = calloc(g->q_cap, sizeof *g->q);
  g->q_ready = calloc(g->q_cap, 1);
  g->q_rc = calloc(g->q_cap, sizeof *g->q_rc);
  g->th = calloc(n, sizeof *g->th);
  if (!g->q || !g->q_ready || !g->q_rc || !g->th) return AMP_ERR_NOMEM;
  for (size_t i = 0; i < g->q_cap; i++) {
    g->q[i].items = malloc(g->item_cap * sizeof(item_t));
    if (!g->q[i].items) return AMP_ERR_NOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    if (pthread_create(&g->th[i], NULL, maker, g)) return AMP_ERR_NOMEM;
    g->n_th++;
  }
  return AMP_OK;
}

static void makers_stop(amp_gen_t *g) {
  if (g->sync_ok) {
    pthread_mutex_lock(&g->mu);
    g->q_stop = 1;
    pthread_cond_broadcast(&g->cv_free);
    pthread_mutex_unlock(&g->mu);
  }
  for (size_t i = 0; i < g->n_th; i++) pthread_join(g->th[i], NULL);
  g->n_th = 0;
  if (g->q)
    for (size_t i = 0; i < g->q_cap; i++) {
      if (g->q[i].items) amp_wipe(g->q[i].items, g->item_cap * sizeof(item_t));
      free(g->q[i].items);
    }
  free(g->q);
  free(g->q_ready);
  free(g->q_rc);
  free(g->th);
  g->q = NULL;
  g->q_ready = NULL;
  g->q_rc = NULL;
  g->th = NULL;
  if (g->sync_ok) {
    pthread_cond_destroy(&g->cv_free);
    pthread_cond_destroy(&g->cv_ready);
    pthread_mutex_destroy(&g->mu);
    g->sync_ok = 0;
  }
}

/* step makes progress: emits one item (or the tip, or the final flush). */
static int step(amp_gen_t *g) {
  if (!g->started) {
    g->started = 1;
    uint8_t msg[AMP_MSG_TIP_LEN];
    long n = amp_msg_tip_encode(msg, sizeof msg, g->cfg.height);
    if (n < 0) return (int)n;
    size_t s = frame_open(g, &g->cfg.gw[0], g->seq_next[0]++);
    if (amp_frame_add(&g->slot[s].b, 0, msg, (uint16_t)n) != AMP_OK) return AMP_ERR_OVERFLOW;
    frame_close(g, s, g->cfg.gw[0].key);
    /* fill the window of payments in flight */
    while (g->n_active < g->cfg.interleave && g->next_payment < g->cfg.payments) {
      int rc = next_pay(g, &g->pay[g->n_active]);
      if (rc != AMP_OK) return rc;
      g->n_active++;
    }
    return AMP_OK;
  }
  if (g->n_active == 0) {
    flush_all(g);
    g->finished = 1;
    return AMP_OK;
  }
  size_t k = g->n_active > 1 ? (size_t)rng_below(&g->rng, g->n_active) : 0;
  pay_t *p = &g->pay[k];
  emit(g, &p->items[p->next++]);
  if (p->next == p->n_items) {
    g->st.payments_done++;
    if (g->next_payment < g->cfg.payments) {
      int rc = next_pay(g, p);
      if (rc != AMP_OK) return rc;
    } else {
      /* swap the last active payment into k */
      pay_t tmp = g->pay[k];
      g->pay[k] = g->pay[g->n_active - 1];
      g->pay[g->n_active - 1] = tmp;
      g->n_active--;
    }
  }
  return g->err;
}

int amp_gen_next(amp_gen_t *g, amp_gen_frame_t *f) {
  if (g->returned >= 0) {
    slot_free(g, (size_t)g->returned);
    g->returned = -1;
  }
  while (g->ready_n == 0) {
    if (g->finished) return 0;
    int rc = step(g);
    if (rc != AMP_OK) return rc;
  }
  size_t s = g->ready[g->ready_head];
  g->ready_head = (g->ready_head + 1) % g->n_slot;
  g->ready_n--;
  g->returned = (int)s;
  const fslot_t *fs = &g->slot[s];
  f->pkt = fs->buf;
  f->len = fs->len;
  f->usec = fs->usec;
  f->gateway_id = fs->gateway_id;
  f->seq = fs->seq;
  f->htlc = fs->htlc;
  f->n_htlc = fs->n_htlc;
  return 1;
}

void amp_gen_stats(const amp_gen_t *g, amp_gen_stats_t *out) { *out = g->st; }

void amp_gen_delete(amp_gen_t *g) {
  if (!g) return;
  makers_stop(g);
  if (g->pay)
    for (size_t i = 0; i < g->cfg.interleave; i++) {
      if (g->pay[i].items) amp_wipe(g->pay[i].items, g->item_cap * sizeof(item_t));
      free(g->pay[i].items);
    }
  if (g->slot)
    for (size_t i = 0; i < g->n_slot; i++) {
      free(g->slot[i].buf);
      free(g->slot[i].htlc);
    }
  free(g->pay);
  free(g->slot);
  free(g->free_stack);
  free(g->ready);
  free(g->htlc_next);
  free(g->seq_next);
  amp_wipe(g, sizeof *g);
  free(g);
}

/* ---------------------------------------------------------------- files */

static void hex_field(FILE *f, const char *name, const uint8_t *p, size_t n) {
  char h[2 * 64 + 1];
  fprintf(f, ",\"%s\":\"%s\"", name, amp_hex_encode(h, p, n));
}

void amp_gen_expect_write_meta(FILE *f, const amp_gen_cfg_t *cfg) {
  char h[2 * AMP_PUBKEY_LEN + 1];
  fprintf(f, "{\"meta\":\"ampd-pktgen\",\"version\":1,\"node\":\"%s\",\"height\":%" PRIu32
             ",\"seed\":\"%" PRIu64 "\",\"payments\":%" PRIu64 ",\"route_len\":%" PRIu32
             ",\"gateways\":[",
          amp_hex_encode(h, cfg->node_pubkey, AMP_PUBKEY_LEN), cfg->height, cfg->seed,
          cfg->payments, cfg->route_len);
  for (size_t i = 0; i < cfg->n_gw; i++) {
    char k[65];
    fprintf(f, "%s{\"id\":\"%" PRIu64 "\",\"key\":\"%s\"}", i ? "," : "", cfg->gw[i].id,
            amp_hex_encode(k, cfg->gw[i].key, 32));
  }
  fprintf(f, "]}\n");
}

void amp_gen_expect_write(FILE *f, const amp_gen_htlc_t *x) {
  fprintf(f,
          "{\"payment\":%" PRIu64 ",\"gw\":\"%" PRIu64 "\",\"scid\":\"%" PRIu64
          "\",\"id\":\"%" PRIu64 "\",\"class\":\"%s\",\"expect\":\"%s\",\"code\":%u"
          ",\"child\":%" PRIu32 ",\"shards\":%" PRIu32 ",\"amount\":%" PRIu64
          ",\"total\":%" PRIu64 ",\"cltv\":%" PRIu32,
          x->payment, x->gateway_id, x->scid, x->htlc_id, amp_gen_class_name(x->cls),
          amp_gen_expect_name(x->expect), x->code, x->child_index, x->n_shards, x->amount_msat,
          x->total_msat, x->cltv_expiry);
  hex_field(f, "hash", x->payment_hash, 32);
  hex_field(f, "preimage", x->preimage, 32);
  hex_field(f, "set_id", x->set_id, 32);
  hex_field(f, "onion_sha256", x->onion_sha256, 32);
  fprintf(f, ",\"ss\":[");
  for (unsigned h = 0; h < x->n_hops; h++) {
    char s[65];
    fprintf(f, "%s\"%s\"", h ? "," : "", amp_hex_encode(s, x->ss[h], 32));
  }
  fprintf(f, "]");
  if (x->expect == AMP_GEN_X_FORWARD)
    fprintf(f, ",\"fwd_scid\":\"%" PRIu64 "\",\"fwd_amount\":%" PRIu64 ",\"fwd_cltv\":%" PRIu32,
            x->fwd_scid, x->fwd_amount_msat, x->fwd_cltv);
  fprintf(f, "}\n");
}

/* JSON helpers: each returns 0 on success, -1 when the field is missing or
 * has the wrong form (optional fields: missing leaves the value alone). */
static int j_u64str(const json_t *o, const char *k, uint64_t *v, int required) {
  json_t *e = json_object_get(o, k);
  if (!e) return required ? -1 : 0;
  if (json_is_integer(e)) {
    if (json_integer_value(e) < 0) return -1;
    *v = (uint64_t)json_integer_value(e);
    return 0;
  }
  if (!json_is_string(e)) return -1;
  return parse_u64(v, json_string_value(e), NULL);
}

static int j_hex(const json_t *o, const char *k, uint8_t *out, size_t n, int required) {
  json_t *e = json_object_get(o, k);
  if (!e) return required ? -1 : 0;
  if (!json_is_string(e) || strlen(json_string_value(e)) != 2 * n) return -1;
  return amp_hex_decode_var(out, n, json_string_value(e)) == (long)n ? 0 : -1;
}

int amp_gen_expect_parse_line(amp_gen_htlc_t *x, amp_gen_gateway_t *gw, size_t *n_gw,
                              uint32_t *height, const char *line, char *err, size_t errlen) {
  const char *p = line;
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
  if (!*p) return 0;
  json_error_t je;
  json_t *o = json_loads(p, JSON_REJECT_DUPLICATES, &je);
  if (!o || !json_is_object(o)) {
    set_err(err, errlen, "not a JSON object: %s", o ? "" : je.text);
    json_decref(o);
    return AMP_ERR_CONFIG;
  }
  int rc = AMP_ERR_CONFIG;
  const char *what = "";
  if (json_object_get(o, "meta")) {
    uint64_t h = 0;
    json_t *gws = json_object_get(o, "gateways");
    what = "meta: height or gateways";
    if (j_u64str(o, "height", &h, 0) || h > UINT32_MAX || (gws && !json_is_array(gws))) goto out;
    if (height) *height = (uint32_t)h;
    size_t i;
    json_t *e;
    json_array_foreach(gws, i, e) {
      amp_gen_gateway_t g;
      memset(&g, 0, sizeof g);
      what = "meta: gateway id or key";
      if (j_u64str(e, "id", &g.id, 1) || j_hex(e, "key", g.key, 32, 1)) goto out;
      if (gw && n_gw && *n_gw < AMP_GEN_MAX_GATEWAYS) gw[(*n_gw)++] = g;
    }
    rc = 2;
    goto out;
  }
  memset(x, 0, sizeof *x);
  uint64_t v = 0;
  what = "gw, scid or id";
  if (j_u64str(o, "gw", &x->gateway_id, 1) || j_u64str(o, "scid", &x->scid, 1) ||
      j_u64str(o, "id", &x->htlc_id, 1))
    goto out;
  what = "class or expect";
  json_t *cl = json_object_get(o, "class"), *ex = json_object_get(o, "expect");
  int ci = json_is_string(cl) ? amp_gen_class_parse(json_string_value(cl)) : -1;
  int xi = json_is_string(ex) ? amp_gen_expect_parse(json_string_value(ex)) : -1;
  if (ci < 0 || xi < 0) goto out;
  x->cls = (uint8_t)ci;
  x->expect = (uint8_t)xi;
  what = "a numeric field";
  if (j_u64str(o, "payment", &x->payment, 0) || j_u64str(o, "code", &v, 0) || v > 0xffff) goto out;
  x->code = (uint16_t)v;
  v = 0;
  if (j_u64str(o, "child", &v, 0) || v > UINT32_MAX) goto out;
  x->child_index = (uint32_t)v;
  v = 0;
  if (j_u64str(o, "shards", &v, 0) || v > UINT32_MAX) goto out;
  x->n_shards = (uint32_t)v;
  v = 0;
  if (j_u64str(o, "cltv", &v, 0) || v > UINT32_MAX) goto out;
  x->cltv_expiry = (uint32_t)v;
  v = 0;
  if (j_u64str(o, "fwd_cltv", &v, 0) || v > UINT32_MAX) goto out;
  x->fwd_cltv = (uint32_t)v;
  if (j_u64str(o, "amount", &x->amount_msat, 0) || j_u64str(o, "total", &x->total_msat, 0) ||
      j_u64str(o, "fwd_scid", &x->fwd_scid, 0) ||
      j_u64str(o, "fwd_amount", &x->fwd_amount_msat, 0))
    goto out;
  what = "a hex field";
  if (j_hex(o, "hash", x->payment_hash, 32, 0) || j_hex(o, "preimage", x->preimage, 32, 0) ||
      j_hex(o, "set_id", x->set_id, 32, 0) || j_hex(o, "onion_sha256", x->onion_sha256, 32, 0))
    goto out;
  json_t *ss = json_object_get(o, "ss");
  if (ss) {
    what = "ss";
    if (!json_is_array(ss) || json_array_size(ss) > AMP_GEN_MAX_HOPS) goto out;
    for (size_t h = 0; h < json_array_size(ss); h++) {
      json_t *e = json_array_get(ss, h);
      if (!json_is_string(e) || strlen(json_string_value(e)) != 64 ||
          amp_hex_decode_var(x->ss[h], 32, json_string_value(e)) != 32)
        goto out;
    }
    x->n_hops = (uint8_t)json_array_size(ss);
  }
  rc = 1;
out:
  if (rc < 0) set_err(err, errlen, "bad or missing %s", what);
  json_decref(o);
  return rc;
}
