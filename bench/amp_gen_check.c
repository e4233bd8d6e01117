/* amp_gen_check.c: ampd's replies against the expectations (amp_gen_check.h). */
#include "amp_gen_check.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#include "amp_frame.h"
#include "amp_msg.h"
#include "amp_sha256.h"
#include "amp_sphinx.h"

/* What the checker keeps of one expectation: ~150 bytes, plus 32 per hop in
 * the shared-secret arena (a fulfill is checked by SHA256(preimage) ==
 * payment_hash, which is the same check without storing the preimage). */
typedef struct {
  uint64_t payment, gateway_id, scid, htlc_id, amount_msat;
  uint64_t fwd_scid, fwd_amount_msat;
  size_t ss_off;                 /* n_hops * 32 bytes at c->ss + ss_off */
  int64_t t_sent_us;             /* request's capture time (have & HAVE_SENT) */
  int64_t t_ans_us;              /* first answer's capture time (have & HAVE_ANS) */
  uint32_t fwd_cltv;
  uint32_t answers;
  uint16_t code;
  uint16_t ans_code;             /* first answer's failure code (fail, malformed) */
  uint8_t cls, expect, n_hops, outcome;
  uint8_t ans_kind;              /* first answer's AMP_CHECK_LAT_* kind */
  uint8_t have;                  /* HAVE_SENT | HAVE_ANS */
  uint8_t payment_hash[32];
  uint8_t onion_sha256[32];
  uint8_t fp[16];                /* fingerprint of the first answer */
} entry_t;

/* Open addressing tables of entry indexes + 1 (0: empty). */
typedef struct {
  uint32_t *slot;
  size_t cap;                    /* power of two */
} table_t;

#define MAX_CODES 32
#define HAVE_SENT 1
#define HAVE_ANS 2

struct amp_check {
  amp_check_opts_t o;
  amp_gen_gateway_t gw[AMP_GEN_MAX_GATEWAYS];
  uint64_t gw_seq_max[AMP_GEN_MAX_GATEWAYS];
  size_t n_gw;
  entry_t *e;
  size_t n, cap;
  table_t by_key, by_hash;
  uint64_t *seqs;                /* set of (gateway index << 56 ^ seq) + 1, open addressing */
  size_t seq_cap, seq_n;
  uint16_t codes[MAX_CODES];
  uint64_t code_n[MAX_CODES];
  size_t n_codes;
  uint64_t logged;
  uint8_t cur_fp[32];            /* fingerprint of the answer being judged */
  int64_t cur_t_us;              /* capture time of the reply frame being read */
  uint8_t cur_kind;              /* AMP_CHECK_LAT_* kind of the answer being judged */
  uint16_t cur_code;             /* its failure code (0: none) */
  amp_check_lat_t lat;           /* sent-frame counters (percentiles: amp_check_latency) */
  uint8_t *ss;                   /* shared secrets of every HTLC */
  size_t ss_len, ss_cap;
  int finished;
  amp_check_stats_t st;
};

static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

static uint64_t key_hash(uint64_t gw, uint64_t scid, uint64_t id) {
  return mix(gw ^ mix(scid ^ mix(id)));
}

static uint64_t entry_key_hash(const entry_t *e) {
  return key_hash(e->gateway_id, e->scid, e->htlc_id);
}

static uint64_t entry_pay_hash(const entry_t *e) { return amp_be64(e->payment_hash); }

static void vlog(amp_check_t *c, const entry_t *e, const char *fmt, ...) {
  if (!c->o.verbose && c->logged >= 20) {
    if (c->logged++ == 20) fprintf(c->o.log, "(more mismatches not shown; --verbose shows all)\n");
    return;
  }
  c->logged++;
  if (e)
    fprintf(c->o.log, "payment %" PRIu64 " gw %" PRIu64 " scid %" PRIu64 " id %" PRIu64
                      " (%s, expect %s): ",
            e->payment, e->gateway_id, e->scid, e->htlc_id, amp_gen_class_name(e->cls),
            amp_gen_expect_name(e->expect));
  va_list ap;
  va_start(ap, fmt);
  vfprintf(c->o.log, fmt, ap);
  va_end(ap);
  fputc('\n', c->o.log);
}

amp_check_t *amp_check_new(const amp_check_opts_t *opts) {
  amp_check_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  if (opts) c->o = *opts;
  if (!c->o.log) c->o.log = stderr;
  return c;
}

void amp_check_free(amp_check_t *c) {
  if (!c) return;
  free(c->e);
  if (c->ss) amp_wipe(c->ss, c->ss_cap);
  free(c->ss);
  free(c->by_key.slot);
  free(c->by_hash.slot);
  free(c->seqs);
  free(c);
}

int amp_check_gateway(amp_check_t *c, uint64_t id, const uint8_t key[32]) {
  for (size_t i = 0; i < c->n_gw; i++)
    if (c->gw[i].id == id) {
      memcpy(c->gw[i].key, key, 32);
      return AMP_OK;
    }
  if (c->n_gw == AMP_GEN_MAX_GATEWAYS) return AMP_ERR_FULL;
  memset(&c->gw[c->n_gw], 0, sizeof c->gw[0]);
  c->gw[c->n_gw].id = id;
  memcpy(c->gw[c->n_gw].key, key, 32);
  c->n_gw++;
  return AMP_OK;
}

/* ---------------------------------------------------------------- tables */

static int table_rebuild(amp_check_t *c, table_t *t, size_t cap, int by_hash) {
  uint32_t *s = calloc(cap, sizeof *s);
  if (!s) return AMP_ERR_NOMEM;
  free(t->slot);
  t->slot = s;
  t->cap = cap;
  for (size_t i = 0; i < c->n; i++) {
    if (by_hash && c->e[i].expect != AMP_GEN_X_FORWARD) continue;
    uint64_t h = by_hash ? entry_pay_hash(&c->e[i]) : entry_key_hash(&c->e[i]);
    size_t k = (size_t)h & (cap - 1);
    while (s[k]) k = (k + 1) & (cap - 1);
    s[k] = (uint32_t)(i + 1);
  }
  return AMP_OK;
}

static entry_t *find_key(amp_check_t *c, uint64_t gw, uint64_t scid, uint64_t id) {
  if (!c->by_key.cap) return NULL;
  size_t m = c->by_key.cap - 1, k = (size_t)key_hash(gw, scid, id) & m;
  for (; c->by_key.slot[k]; k = (k + 1) & m) {
    entry_t *e = &c->e[c->by_key.slot[k] - 1];
    if (e->gateway_id == gw && e->scid == scid && e->htlc_id == id) return e;
  }
  return NULL;
}

static entry_t *find_hash(amp_check_t *c, const uint8_t hash[32]) {
  if (!c->by_hash.cap) return NULL;
  size_t m = c->by_hash.cap - 1, k = (size_t)amp_be64(hash) & m;
  for (; c->by_hash.slot[k]; k = (k + 1) & m) {
    entry_t *e = &c->e[c->by_hash.slot[k] - 1];
    if (memcmp(e->payment_hash, hash, 32) == 0) return e;
  }
  return NULL;
}

int amp_check_expect(amp_check_t *c, const amp_gen_htlc_t *x) {
  if (find_key(c, x->gateway_id, x->scid, x->htlc_id)) return AMP_ERR_EXISTS;
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 1024;
    if (cap > UINT32_MAX / 2) return AMP_ERR_NOMEM;
    entry_t *e = realloc(c->e, cap * sizeof *e);
    if (!e) return AMP_ERR_NOMEM;
    c->e = e;
    c->cap = cap;
  }
  size_t need = (size_t)x->n_hops * 32;
  if (c->ss_len + need > c->ss_cap) {
    size_t cap = c->ss_cap ? 2 * c->ss_cap : 65536;
    while (cap < c->ss_len + need) cap *= 2;
    uint8_t *ss = realloc(c->ss, cap);
    if (!ss) return AMP_ERR_NOMEM;
    c->ss = ss;
    c->ss_cap = cap;
  }
  entry_t *e = &c->e[c->n++];
  memset(e, 0, sizeof *e);
  e->payment = x->payment;
  e->gateway_id = x->gateway_id;
  e->scid = x->scid;
  e->htlc_id = x->htlc_id;
  e->amount_msat = x->amount_msat;
  e->fwd_scid = x->fwd_scid;
  e->fwd_amount_msat = x->fwd_amount_msat;
  e->fwd_cltv = x->fwd_cltv;
  e->code = x->code;
  e->cls = x->cls;
  e->expect = x->expect;
  e->n_hops = x->n_hops;
  memcpy(e->payment_hash, x->payment_hash, 32);
  memcpy(e->onion_sha256, x->onion_sha256, 32);
  e->ss_off = c->ss_len;
  if (need) memcpy(c->ss + c->ss_len, x->ss, need);   /* no hops: c->ss may be NULL */
  c->ss_len += need;
  /* tables at most half full */
  if (2 * c->n > c->by_key.cap) {
    size_t cap = 2048;
    while (cap < 4 * c->n) cap *= 2;
    if (table_rebuild(c, &c->by_key, cap, 0) || table_rebuild(c, &c->by_hash, cap, 1)) {
      c->n--;
      return AMP_ERR_NOMEM;
    }
    return AMP_OK;
  }
  size_t m = c->by_key.cap - 1, k = (size_t)entry_key_hash(e) & m;
  while (c->by_key.slot[k]) k = (k + 1) & m;
  c->by_key.slot[k] = (uint32_t)c->n;
  if (x->expect == AMP_GEN_X_FORWARD) {
    k = (size_t)entry_pay_hash(e) & m;
    while (c->by_hash.slot[k]) k = (k + 1) & m;
    c->by_hash.slot[k] = (uint32_t)c->n;
  }
  return AMP_OK;
}

int amp_check_load(amp_check_t *c, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "ampd-check: cannot open %s\n", path);
    return AMP_ERR_IO;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  unsigned long lineno = 0;
  int rc = AMP_OK;
  amp_gen_gateway_t gw[AMP_GEN_MAX_GATEWAYS];
  amp_gen_htlc_t x;
  while ((len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    size_t n_gw = 0;
    char err[200];
    int r = amp_gen_expect_parse_line(&x, gw, &n_gw, NULL, line, err, sizeof err);
    if (r < 0) {
      fprintf(stderr, "ampd-check: %s:%lu: %s\n", path, lineno, err);
      rc = AMP_ERR_CONFIG;
      break;
    }
    if (r == 2) {
      for (size_t i = 0; i < n_gw; i++) {
        /* flags given before the file win: only add unknown gateways */
        size_t j;
        for (j = 0; j < c->n_gw && c->gw[j].id != gw[i].id; j++) {
        }
        if (j == c->n_gw && amp_check_gateway(c, gw[i].id, gw[i].key) != AMP_OK) {
          fprintf(stderr, "ampd-check: %s:%lu: too many gateways\n", path, lineno);
          rc = AMP_ERR_CONFIG;
        }
      }
    } else if (r == 1) {
      int e = amp_check_expect(c, &x);
      if (e != AMP_OK) {
        fprintf(stderr, "ampd-check: %s:%lu: %s\n", path, lineno,
                e == AMP_ERR_EXISTS ? "the same gateway, scid and htlc id twice" : amp_strerror(e));
        rc = AMP_ERR_CONFIG;
        break;
      }
    }
  }
  amp_wipe(&x, sizeof x);
  free(line);
  if (ferror(f)) {
    fprintf(stderr, "ampd-check: read error on %s\n", path);
    rc = AMP_ERR_IO;
  }
  fclose(f);
  return rc;
}

/* ---------------------------------------------------------------- replies */

/* fingerprint: what makes two answers the same answer (the failure onion
 * around a failure message is made afresh each time, so fails compare by
 * their decoded message). */
static void fingerprint(amp_check_t *c, uint16_t type, const uint8_t *a, size_t alen) {
  amp_sha256_t h;
  uint8_t t[2];
  amp_put_be16(t, type);
  amp_sha256_init(&h);
  amp_sha256_update(&h, t, 2);
  amp_sha256_update(&h, a, alen);
  amp_sha256_final(&h, c->cur_fp);
}

static void answered(amp_check_t *c, entry_t *e, int ok, const char *fmt, ...) {
  if (e->answers && c->o.repeats_ok && memcmp(e->fp, c->cur_fp, sizeof e->fp) == 0) {
    c->st.repeats++; /* the same answer again: a redelivery's */
    return;
  }
  e->answers++;
  if (e->answers == 1) {
    e->outcome = ok ? AMP_CHECK_OK : AMP_CHECK_WRONG;
    memcpy(e->fp, c->cur_fp, sizeof e->fp);
    e->ans_kind = c->cur_kind;
    e->ans_code = c->cur_code;
    if (c->cur_t_us != AMP_CHECK_NO_TIME) {
      e->t_ans_us = c->cur_t_us;
      e->have |= HAVE_ANS;
    }
  } else {
    e->outcome = AMP_CHECK_DUP;
  }
  if (ok && e->answers == 1) return;
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  vlog(c, e, "%s%s", e->answers > 1 ? "another answer: " : "", buf);
}

static void count_code(amp_check_t *c, uint16_t code) {
  switch (code) {
  case AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS: c->st.fail_code_count[0]++; break;
  case AMP_FAIL_MPP_TIMEOUT: c->st.fail_code_count[1]++; break;
  case AMP_FAIL_INVALID_ONION_PAYLOAD: c->st.fail_code_count[2]++; break;
  default: c->st.fail_code_count[3]++;
  }
  for (size_t i = 0; i < c->n_codes; i++)
    if (c->codes[i] == code) {
      c->code_n[i]++;
      return;
    }
  if (c->n_codes < MAX_CODES) {
    c->codes[c->n_codes] = code;
    c->code_n[c->n_codes++] = 1;
  }
}

static void on_fulfill(amp_check_t *c, uint64_t gw, uint64_t scid, const uint8_t *msg,
                       size_t len) {
  amp_msg_fulfill_t m;
  memset(&m, 0, sizeof m);
  if (amp_msg_fulfill_decode(&m, msg, len) != AMP_OK) {
    c->st.bad_msgs++;
    vlog(c, NULL, "undecodable update_fulfill_htlc on gw %" PRIu64 " scid %" PRIu64, gw, scid);
    return;
  }
  c->st.fulfilled++;
  entry_t *e = find_key(c, gw, scid, m.id);
  if (!e) {
    c->st.unmatched++;
    vlog(c, NULL, "update_fulfill_htlc for unknown HTLC gw %" PRIu64 " scid %" PRIu64
                  " id %" PRIu64, gw, scid, m.id);
    return;
  }
  uint8_t cid[32], h[32];
  amp_gen_channel_id(cid, scid);
  amp_sha256(h, m.payment_preimage, 32);
  fingerprint(c, AMP_MSG_UPDATE_FULFILL_HTLC, m.payment_preimage, 32);
  c->cur_kind = AMP_CHECK_LAT_FULFILL;
  c->cur_code = 0;
  if (e->expect != AMP_GEN_X_FULFILL)
    answered(c, e, 0, "got update_fulfill_htlc");
  else if (memcmp(h, e->payment_hash, 32) != 0)
    answered(c, e, 0, "fulfilled with a wrong preimage");
  else if (memcmp(m.channel_id, cid, 32) != 0)
    answered(c, e, 0, "fulfill: channel_id not echoed");
  else answered(c, e, 1, "fulfill");
  amp_wipe(&m, sizeof m);
}

static void on_fail(amp_check_t *c, uint64_t gw, uint64_t scid, const uint8_t *msg, size_t len) {
  amp_msg_fail_t m;
  memset(&m, 0, sizeof m);
  if (amp_msg_fail_decode(&m, msg, len) != AMP_OK) {
    c->st.bad_msgs++;
    vlog(c, NULL, "undecodable update_fail_htlc on gw %" PRIu64 " scid %" PRIu64, gw, scid);
    return;
  }
  c->st.failed++;
  entry_t *e = find_key(c, gw, scid, m.id);
  if (!e) {
    c->st.unmatched++;
    vlog(c, NULL, "update_fail_htlc for unknown HTLC gw %" PRIu64 " scid %" PRIu64
                  " id %" PRIu64, gw, scid, m.id);
    return;
  }
  uint8_t pkt[AMP_MSG_MAX_LEN];
  memcpy(pkt, m.reason, m.reason_len);
  size_t hop = 0, fl = 0;
  const uint8_t *fm = NULL;
  int rc = e->n_hops ? amp_sphinx_fail_decode_var(&hop, &fm, &fl, pkt, m.reason_len,
                                                    (const uint8_t(*)[32])(c->ss + e->ss_off),
                                                    e->n_hops)
                       : AMP_ERR_FAIL_HMAC;
  int decoded = rc == AMP_OK && fl >= 2;
  uint16_t code = decoded ? amp_be16(fm) : 0;
  if (decoded) count_code(c, code);
  if (decoded) fingerprint(c, AMP_MSG_UPDATE_FAIL_HTLC, fm, fl);
  else fingerprint(c, AMP_MSG_UPDATE_FAIL_HTLC, m.reason, m.reason_len);
  c->cur_kind = code == AMP_FAIL_MPP_TIMEOUT ? AMP_CHECK_LAT_TIMEOUT : AMP_CHECK_LAT_FAIL;
  c->cur_code = code;
  uint8_t cid[32];
  amp_gen_channel_id(cid, scid);
  if (memcmp(m.channel_id, cid, 32) != 0) {
    answered(c, e, 0, "fail: channel_id not echoed");
  } else if (e->expect == AMP_GEN_X_FAIL_ANY) {
    answered(c, e, 1, "fail");
  } else if (e->expect != AMP_GEN_X_FAIL) {
    if (decoded) answered(c, e, 0, "got update_fail_htlc with code 0x%04x", code);
    else answered(c, e, 0, "got update_fail_htlc (failure onion does not decode: %s)",
                  amp_strerror(rc));
  } else if (!decoded) {
    answered(c, e, 0, "failure onion does not decode with the HTLC's shared secret: %s",
             rc == AMP_OK ? "message too short" : amp_strerror(rc));
  } else if (hop != 0) {
    answered(c, e, 0, "failure made by hop %zu, not by the node", hop);
  } else if (code != e->code) {
    answered(c, e, 0, "failure code 0x%04x, expected 0x%04x", code, e->code);
  } else if (code == AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS &&
             (fl < 2 + 8 || amp_be64(fm + 2) != e->amount_msat)) {
    if (fl < 2 + 8) answered(c, e, 0, "incorrect_or_unknown_payment_details without htlc_msat");
    else answered(c, e, 0, "htlc_msat %" PRIu64 ", expected %" PRIu64, amp_be64(fm + 2),
                  e->amount_msat);
  } else {
    answered(c, e, 1, "fail");
  }
}

static void on_malformed(amp_check_t *c, uint64_t gw, uint64_t scid, const uint8_t *msg,
                         size_t len) {
  amp_msg_fail_malformed_t m;
  memset(&m, 0, sizeof m);
  if (amp_msg_fail_malformed_decode(&m, msg, len) != AMP_OK) {
    c->st.bad_msgs++;
    vlog(c, NULL, "undecodable update_fail_malformed_htlc on gw %" PRIu64 " scid %" PRIu64, gw,
         scid);
    return;
  }
  c->st.malformed++;
  entry_t *e = find_key(c, gw, scid, m.id);
  if (!e) {
    c->st.unmatched++;
    vlog(c, NULL, "update_fail_malformed_htlc for unknown HTLC gw %" PRIu64 " scid %" PRIu64
                  " id %" PRIu64, gw, scid, m.id);
    return;
  }
  uint8_t cid[32], fpin[34];
  amp_gen_channel_id(cid, scid);
  amp_put_be16(fpin, m.failure_code);
  memcpy(fpin + 2, m.sha256_of_onion, 32);
  fingerprint(c, AMP_MSG_UPDATE_FAIL_MALFORMED_HTLC, fpin, sizeof fpin);
  c->cur_kind = AMP_CHECK_LAT_FAIL;
  c->cur_code = m.failure_code;
  if (memcmp(m.channel_id, cid, 32) != 0)
    answered(c, e, 0, "fail_malformed: channel_id not echoed");
  else if (e->expect == AMP_GEN_X_FAIL_ANY) answered(c, e, 1, "malformed");
  else if (e->expect != AMP_GEN_X_MALFORMED)
    answered(c, e, 0, "got update_fail_malformed_htlc code 0x%04x", m.failure_code);
  else if (m.failure_code != e->code)
    answered(c, e, 0, "fail_malformed code 0x%04x, expected 0x%04x", m.failure_code, e->code);
  else if (memcmp(m.sha256_of_onion, e->onion_sha256, 32) != 0)
    answered(c, e, 0, "fail_malformed: sha256_of_onion is not the onion's");
  else answered(c, e, 1, "malformed");
}

static void on_add(amp_check_t *c, uint64_t gw, uint64_t scid, const uint8_t *msg, size_t len) {
  amp_msg_add_t m;
  memset(&m, 0, sizeof m);
  if (amp_msg_add_decode(&m, msg, len) != AMP_OK) {
    c->st.bad_msgs++;
    vlog(c, NULL, "undecodable update_add_htlc on gw %" PRIu64 " scid %" PRIu64, gw, scid);
    return;
  }
  c->st.forwarded++;
  entry_t *e = find_hash(c, m.payment_hash);
  if (!e) {
    c->st.unmatched++;
    vlog(c, NULL, "update_add_htlc (forward) with an unknown payment_hash on gw %" PRIu64, gw);
    return;
  }
  uint8_t fpin[20];
  amp_put_be64(fpin, scid);
  amp_put_be64(fpin + 8, m.amount_msat);
  amp_put_be32(fpin + 16, m.cltv_expiry);
  fingerprint(c, AMP_MSG_UPDATE_ADD_HTLC, fpin, sizeof fpin);
  c->cur_kind = AMP_CHECK_LAT_FORWARD;
  c->cur_code = 0;
  if (scid != e->fwd_scid)
    answered(c, e, 0, "forwarded on scid %" PRIu64 ", expected %" PRIu64, scid, e->fwd_scid);
  else if (m.amount_msat != e->fwd_amount_msat || m.cltv_expiry != e->fwd_cltv)
    answered(c, e, 0, "forwarded %" PRIu64 " msat cltv %" PRIu32 ", expected %" PRIu64
                      " msat cltv %" PRIu32,
             m.amount_msat, m.cltv_expiry, e->fwd_amount_msat, e->fwd_cltv);
  else answered(c, e, 1, "forward");
}

/* seq_seen records (gateway index, seq); returns 1 if it was there already. */
static int seq_seen(amp_check_t *c, size_t gi, uint64_t seq) {
  if (2 * (c->seq_n + 1) > c->seq_cap) {
    size_t cap = c->seq_cap ? 2 * c->seq_cap : 4096;
    uint64_t *s = calloc(cap, sizeof *s);
    if (!s) return 0; /* cannot tell: do not accuse */
    for (size_t i = 0; i < c->seq_cap; i++)
      if (c->seqs[i]) {
        size_t k = (size_t)mix(c->seqs[i]) & (cap - 1);
        while (s[k]) k = (k + 1) & (cap - 1);
        s[k] = c->seqs[i];
      }
    free(c->seqs);
    c->seqs = s;
    c->seq_cap = cap;
  }
  uint64_t v = (((uint64_t)gi << 56) ^ seq) + 1;
  size_t m = c->seq_cap - 1, k = (size_t)mix(v) & m;
  for (; c->seqs[k]; k = (k + 1) & m)
    if (c->seqs[k] == v) return 1;
  c->seqs[k] = v;
  c->seq_n++;
  return 0;
}

void amp_check_frame(amp_check_t *c, const uint8_t *pkt, size_t len) {
  amp_check_frame_at(c, pkt, len, AMP_CHECK_NO_TIME);
}

void amp_check_frame_at(amp_check_t *c, const uint8_t *pkt, size_t len, int64_t t_us) {
  static amp_frame_t f; /* large; the checker is single-threaded */
  c->st.frames++;
  c->cur_t_us = t_us;
  int r = amp_frame_parse(&f, pkt, len);
  if (r != AMP_FRAME_OK) {
    c->st.bad_frames++;
    vlog(c, NULL, "reply frame %" PRIu64 " dropped: %s", c->st.frames, amp_frame_drop_str(r));
    return;
  }
  size_t gi;
  for (gi = 0; gi < c->n_gw && c->gw[gi].id != f.gateway_id; gi++) {
  }
  if (gi == c->n_gw) {
    c->st.unknown_gateway_frames++;
    vlog(c, NULL, "reply frame %" PRIu64 " to unknown gateway %" PRIu64, c->st.frames,
         f.gateway_id);
    return;
  }
  if (!amp_frame_verify(&f, c->gw[gi].key)) {
    c->st.bad_tag_frames++;
    vlog(c, NULL, "reply frame %" PRIu64 " to gateway %" PRIu64 ": bad tag", c->st.frames,
         f.gateway_id);
    return;
  }
  if (seq_seen(c, gi, f.seq)) {
    c->st.dup_seq_frames++;
    vlog(c, NULL, "reply frame %" PRIu64 " to gateway %" PRIu64 ": seq %" PRIu64 " repeated",
         c->st.frames, f.gateway_id, f.seq);
  } else if (f.seq < c->gw_seq_max[gi]) {
    c->st.reordered_seq_frames++;
  }
  if (f.seq > c->gw_seq_max[gi]) c->gw_seq_max[gi] = f.seq;
  for (unsigned i = 0; i < f.count; i++) {
    const amp_frame_rec_t *rec = &f.rec[i];
    c->st.records++;
    switch (amp_msg_type(rec->msg, rec->len)) {
    case AMP_MSG_UPDATE_FULFILL_HTLC: on_fulfill(c, f.gateway_id, rec->scid, rec->msg, rec->len); break;
    case AMP_MSG_UPDATE_FAIL_HTLC: on_fail(c, f.gateway_id, rec->scid, rec->msg, rec->len); break;
    case AMP_MSG_UPDATE_FAIL_MALFORMED_HTLC:
      on_malformed(c, f.gateway_id, rec->scid, rec->msg, rec->len);
      break;
    case AMP_MSG_UPDATE_ADD_HTLC: on_add(c, f.gateway_id, rec->scid, rec->msg, rec->len); break;
    case AMP_MSG_TIP: c->st.tips++; break;
    default:
      c->st.bad_msgs++;
      vlog(c, NULL, "reply frame %" PRIu64 ": message type %d ampd must not send", c->st.frames,
           amp_msg_type(rec->msg, rec->len));
    }
  }
}

void amp_check_new_capture(amp_check_t *c) {
  /* a restarted ampd may count its seqs from the start again */
  if (c->seqs) memset(c->seqs, 0, c->seq_cap * sizeof *c->seqs);
  c->seq_n = 0;
  memset(c->gw_seq_max, 0, sizeof c->gw_seq_max);
}

static int64_t pcap_us(const struct pcap_pkthdr *h) {
  return (int64_t)h->ts.tv_sec * 1000000 + (int64_t)h->ts.tv_usec;
}

/* pcap_open_eth opens a pcap of Ethernet frames, or says why not on stderr. */
static pcap_t *pcap_open_eth(const char *path) {
  char eb[PCAP_ERRBUF_SIZE];
  pcap_t *p = pcap_open_offline(path, eb);
  if (!p) {
    fprintf(stderr, "ampd-check: %s: %s\n", path, eb);
    return NULL;
  }
  if (pcap_datalink(p) != DLT_EN10MB) {
    fprintf(stderr, "ampd-check: %s: link type %d, want Ethernet\n", path, pcap_datalink(p));
    pcap_close(p);
    return NULL;
  }
  return p;
}

int amp_check_pcap(amp_check_t *c, const char *path) {
  pcap_t *p = pcap_open_eth(path);
  if (!p) return AMP_ERR_IO;
  if (c->o.repeats_ok) amp_check_new_capture(c);
  struct pcap_pkthdr *h;
  const u_char *d;
  int r;
  while ((r = pcap_next_ex(p, &h, &d)) == 1) {
    if (h->caplen < h->len) {
      c->st.frames++;
      c->st.bad_frames++;
      vlog(c, NULL, "reply frame %" PRIu64 " truncated in the capture (%u of %u bytes)",
           c->st.frames, h->caplen, h->len);
      continue;
    }
    amp_check_frame_at(c, d, h->caplen, pcap_us(h));
  }
  int rc = AMP_OK;
  if (r == -1) {
    fprintf(stderr, "ampd-check: %s: %s\n", path, pcap_geterr(p));
    rc = AMP_ERR_IO;
  }
  pcap_close(p);
  return rc;
}

/* ---------------------------------------------------------------- sent frames */

void amp_check_sent_frame(amp_check_t *c, const uint8_t *pkt, size_t len, int64_t t_us) {
  static amp_frame_t f; /* large; the checker is single-threaded */
  c->lat.sent_frames++;
  if (amp_frame_parse(&f, pkt, len) != AMP_FRAME_OK) {
    c->lat.sent_not_fabric++;
    return;
  }
  for (unsigned i = 0; i < f.count; i++) {
    const amp_frame_rec_t *rec = &f.rec[i];
    if (amp_msg_type(rec->msg, rec->len) != AMP_MSG_UPDATE_ADD_HTLC) continue;
    amp_msg_add_t m;
    memset(&m, 0, sizeof m);
    entry_t *e = amp_msg_add_decode(&m, rec->msg, rec->len) == AMP_OK
                     ? find_key(c, f.gateway_id, rec->scid, m.id) : NULL;
    if (!e) {
      c->lat.sent_unknown++;
      continue;
    }
    c->lat.sent_requests++;
    if (e->have & HAVE_SENT) {
      c->lat.sent_repeats++;
      continue;
    }
    e->t_sent_us = t_us;
    e->have |= HAVE_SENT;
  }
}

int amp_check_sent_pcap(amp_check_t *c, const char *path) {
  pcap_t *p = pcap_open_eth(path);
  if (!p) return AMP_ERR_IO;
  struct pcap_pkthdr *h;
  const u_char *d;
  int r;
  while ((r = pcap_next_ex(p, &h, &d)) == 1) amp_check_sent_frame(c, d, h->caplen, pcap_us(h));
  int rc = AMP_OK;
  if (r == -1) {
    fprintf(stderr, "ampd-check: %s: %s\n", path, pcap_geterr(p));
    rc = AMP_ERR_IO;
  }
  pcap_close(p);
  return rc;
}

const char *amp_check_lat_kind_name(int kind) {
  static const char *const n[AMP_CHECK_LAT_KINDS] = {"all", "fulfill", "fail", "mpp_timeout",
                                                     "forward"};
  return kind >= 0 && kind < AMP_CHECK_LAT_KINDS ? n[kind] : "?";
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

/* pct fills p from n sorted samples: nearest rank, the smallest sample with
 * at least q of all samples at or below it. */
static void pct(amp_check_pct_t *p, const int64_t *v, size_t n) {
  memset(p, 0, sizeof *p);
  p->n = n;
  if (!n) return;
  const double q[3] = {0.50, 0.99, 0.999};
  int64_t *out[3] = {&p->p50, &p->p99, &p->p999};
  for (int k = 0; k < 3; k++) {
    double r = q[k] * (double)n;
    size_t rank = (size_t)r;
    if ((double)rank < r) rank++;           /* ceil */
    *out[k] = v[(rank ? rank : 1) - 1];
  }
  p->min = v[0];
  p->max = v[n - 1];
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)v[i];
  p->mean = sum / (double)n;
}

int amp_check_latency(amp_check_t *c, amp_check_lat_t *out) {
  amp_check_finish(c, NULL);
  amp_check_lat_t *l = &c->lat;
  l->answered = l->matched = l->answered_unsent = l->negative = 0;
  memset(l->lat, 0, sizeof l->lat);
  size_t n[AMP_CHECK_LAT_KINDS] = {0};
  for (size_t i = 0; i < c->n; i++) {
    const entry_t *e = &c->e[i];
    if (!(e->have & HAVE_ANS)) continue;
    l->answered++;
    if (!(e->have & HAVE_SENT)) {
      l->answered_unsent++;
      continue;
    }
    l->matched++;
    n[AMP_CHECK_LAT_ALL]++;
    n[e->ans_kind]++;
  }
  int rc = AMP_OK;
  int64_t *v[AMP_CHECK_LAT_KINDS];
  for (int k = 0; k < AMP_CHECK_LAT_KINDS; k++) {
    v[k] = malloc((n[k] ? n[k] : 1) * sizeof *v[k]);
    if (!v[k]) rc = AMP_ERR_NOMEM;
    n[k] = 0;
  }
  for (size_t i = 0; rc == AMP_OK && i < c->n; i++) {
    const entry_t *e = &c->e[i];
    if ((e->have & (HAVE_ANS | HAVE_SENT)) != (HAVE_ANS | HAVE_SENT)) continue;
    int64_t d = e->t_ans_us - e->t_sent_us;
    l->negative += d < 0;
    v[AMP_CHECK_LAT_ALL][n[AMP_CHECK_LAT_ALL]++] = d;
    v[e->ans_kind][n[e->ans_kind]++] = d;
  }
  for (int k = 0; k < AMP_CHECK_LAT_KINDS; k++) {
    if (rc == AMP_OK) {
      qsort(v[k], n[k], sizeof *v[k], cmp_i64);
      pct(&l->lat[k], v[k], n[k]);
    }
    free(v[k]);
  }
  if (out) *out = *l;
  return rc;
}

/* ---------------------------------------------------------------- report */

void amp_check_finish(amp_check_t *c, amp_check_stats_t *st) {
  if (!c->finished) {
    c->finished = 1;
    for (size_t i = 0; i < c->n; i++) {
      entry_t *e = &c->e[i];
      if (e->answers) continue;
      if (e->expect == AMP_GEN_X_NONE) {
        e->outcome = AMP_CHECK_OK;
      } else if (c->o.timeouts_ok && e->expect == AMP_GEN_X_FAIL &&
                 e->code == AMP_FAIL_MPP_TIMEOUT) {
        e->outcome = AMP_CHECK_WAITED;
      } else {
        e->outcome = AMP_CHECK_NONE;
        vlog(c, e, "no answer");
      }
    }
    for (size_t i = 0; i < c->n; i++) {
      c->st.htlcs[c->e[i].cls]++;
      c->st.outcome[c->e[i].cls][c->e[i].outcome]++;
    }
  }
  if (st) *st = c->st;
}

static int failed(const amp_check_stats_t *s) {
  uint64_t bad = s->bad_frames + s->unknown_gateway_frames + s->bad_tag_frames +
                 s->dup_seq_frames + s->unmatched + s->bad_msgs;
  for (int k = 0; k < AMP_GEN_CLASS_COUNT; k++)
    bad += s->outcome[k][AMP_CHECK_NONE] + s->outcome[k][AMP_CHECK_WRONG] +
           s->outcome[k][AMP_CHECK_DUP];
  return bad != 0;
}

static const char *code_name(uint16_t code) {
  switch (code) {
  case AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS: return "incorrect_or_unknown_payment_details";
  case AMP_FAIL_MPP_TIMEOUT: return "mpp_timeout";
  case AMP_FAIL_INVALID_ONION_PAYLOAD: return "invalid_onion_payload";
  case AMP_FAIL_TEMPORARY_NODE_FAILURE: return "temporary_node_failure";
  case AMP_FAIL_INVALID_ONION_HMAC: return "invalid_onion_hmac";
  case AMP_FAIL_INVALID_ONION_KEY: return "invalid_onion_key";
  case AMP_FAIL_INVALID_ONION_VERSION: return "invalid_onion_version";
  default: return "other";
  }
}

/* report_latency prints the wire latency table (sent frames were given). */
static void report_latency(amp_check_t *c, FILE *out) {
  amp_check_lat_t l;
  if (amp_check_latency(c, &l) != AMP_OK) {
    fprintf(out, "wire latency: out of memory\n");
    return;
  }
  fprintf(out, "wire latency (request frame sent -> the frame of its first answer, capture "
               "timestamps), us:\n");
  fprintf(out, "  %-12s %9s %9s %9s %9s %9s %9s\n", "answer", "htlcs", "min", "p50", "p99",
          "p99.9", "max");
  for (int k = 0; k < AMP_CHECK_LAT_KINDS; k++) {
    const amp_check_pct_t *p = &l.lat[k];
    if (!p->n && k != AMP_CHECK_LAT_ALL) continue;
    fprintf(out, "  %-12s %9" PRIu64 " %9" PRId64 " %9" PRId64 " %9" PRId64 " %9" PRId64
                 " %9" PRId64 "%s\n", amp_check_lat_kind_name(k), p->n, p->min, p->p50, p->p99,
            p->p999, p->max,
            k == AMP_CHECK_LAT_TIMEOUT ? "  (held until the hold timer: in \"all\" too)" : "");
  }
  fprintf(out, "  matched %" PRIu64 " of %" PRIu64 " answered HTLCs to their request (%" PRIu64
               " answered, request not seen; %" PRIu64 " negative); sent: %" PRIu64
               " frames, %" PRIu64 " requests, %" PRIu64 " repeated, %" PRIu64
               " of no known HTLC, %" PRIu64 " not fabric frames\n",
          l.matched, l.answered, l.answered_unsent, l.negative, l.sent_frames, l.sent_requests,
          l.sent_repeats, l.sent_unknown, l.sent_not_fabric);
}

int amp_check_result(amp_check_t *c) {
  amp_check_stats_t s;
  amp_check_finish(c, &s);
  return failed(&s);
}

int amp_check_report(amp_check_t *c, FILE *out) {
  amp_check_stats_t s;
  amp_check_finish(c, &s);
  fprintf(out, "%-20s %9s %9s %9s %9s %9s %9s\n", "class", "htlcs", "ok", "none", "wrong", "dup",
          "waited");
  uint64_t tot[AMP_CHECK_OUTCOMES] = {0}, all = 0;
  for (int k = 0; k < AMP_GEN_CLASS_COUNT; k++) {
    if (!s.htlcs[k]) continue;
    fprintf(out, "%-20s %9" PRIu64, amp_gen_class_name(k), s.htlcs[k]);
    for (int o = 0; o < AMP_CHECK_OUTCOMES; o++) {
      fprintf(out, " %9" PRIu64, s.outcome[k][o]);
      tot[o] += s.outcome[k][o];
    }
    fputc('\n', out);
    all += s.htlcs[k];
  }
  fprintf(out, "%-20s %9" PRIu64, "total", all);
  for (int o = 0; o < AMP_CHECK_OUTCOMES; o++) fprintf(out, " %9" PRIu64, tot[o]);
  fputc('\n', out);
  fprintf(out, "answers: %" PRIu64 " fulfill, %" PRIu64 " fail, %" PRIu64 " fail_malformed, %" PRIu64
               " forward; in %" PRIu64 " frames, %" PRIu64 " records\n",
          s.fulfilled, s.failed, s.malformed, s.forwarded, s.frames, s.records);
  if (c->n_codes) {
    fprintf(out, "failure codes in update_fail_htlc:");
    for (size_t i = 0; i < c->n_codes; i++)
      fprintf(out, " %s(0x%04x)=%" PRIu64, code_name(c->codes[i]), c->codes[i], c->code_n[i]);
    fputc('\n', out);
  }
  uint64_t ferr = s.bad_frames + s.unknown_gateway_frames + s.bad_tag_frames + s.dup_seq_frames +
                  s.unmatched + s.bad_msgs;
  if (ferr || s.reordered_seq_frames)
    fprintf(out, "frame errors: %" PRIu64 " unparseable, %" PRIu64 " unknown gateway, %" PRIu64
                 " bad tag, %" PRIu64 " repeated seq, %" PRIu64 " unmatched replies, %" PRIu64
                 " bad messages; %" PRIu64 " frames with a lower seq than an earlier one "
                 "(warning)\n",
            s.bad_frames, s.unknown_gateway_frames, s.bad_tag_frames, s.dup_seq_frames,
            s.unmatched, s.bad_msgs, s.reordered_seq_frames);
  if (s.repeats)
    fprintf(out, "%" PRIu64 " answers repeated an HTLC's earlier answer exactly (allowed by "
                 "--repeats-ok)\n", s.repeats);
  if (tot[AMP_CHECK_WAITED])
    fprintf(out, "%" PRIu64 " HTLCs expecting mpp_timeout had no answer (allowed by "
                 "--timeouts-ok)\n", tot[AMP_CHECK_WAITED]);
  if (c->lat.sent_frames) report_latency(c, out);
  int bad = failed(&s);
  fprintf(out, "result: %s\n", bad ? "MISMATCH" : "PASS");
  return bad;
}

int amp_check_report_json(amp_check_t *c, FILE *out) {
  static const char *const on[] = {"ok", "none", "wrong", "dup", "waited"};
  amp_check_stats_t s;
  amp_check_finish(c, &s);
  int bad = failed(&s);
  fprintf(out, "{\"pass\":%s,\"classes\":{", bad ? "false" : "true");
  int first = 1;
  for (int k = 0; k < AMP_GEN_CLASS_COUNT; k++) {
    if (!s.htlcs[k]) continue;
    fprintf(out, "%s\"%s\":{\"htlcs\":%" PRIu64, first ? "" : ",", amp_gen_class_name(k),
            s.htlcs[k]);
    for (int o = 0; o < AMP_CHECK_OUTCOMES; o++)
      fprintf(out, ",\"%s\":%" PRIu64, on[o], s.outcome[k][o]);
    fputc('}', out);
    first = 0;
  }
  fprintf(out, "},\"answers\":{\"fulfill\":%" PRIu64 ",\"fail\":%" PRIu64
               ",\"fail_malformed\":%" PRIu64 ",\"forward\":%" PRIu64 "},\"fail_codes\":{",
          s.fulfilled, s.failed, s.malformed, s.forwarded);
  for (size_t i = 0; i < c->n_codes; i++) {
    /* known codes by name, others by number: keys stay unique */
    char k[16];
    const char *name = code_name(c->codes[i]);
    if (strcmp(name, "other") == 0) {
      snprintf(k, sizeof k, "0x%04x", c->codes[i]);
      name = k;
    }
    fprintf(out, "%s\"%s\":%" PRIu64, i ? "," : "", name, c->code_n[i]);
  }
  fprintf(out, "},\"frames\":%" PRIu64 ",\"records\":%" PRIu64 ",\"frame_errors\":{"
               "\"unparseable\":%" PRIu64 ",\"unknown_gateway\":%" PRIu64 ",\"bad_tag\":%" PRIu64
               ",\"repeated_seq\":%" PRIu64 ",\"unmatched\":%" PRIu64 ",\"bad_messages\":%" PRIu64
               "},\"reordered_seq\":%" PRIu64 ",\"repeats\":%" PRIu64,
          s.frames, s.records, s.bad_frames, s.unknown_gateway_frames, s.bad_tag_frames,
          s.dup_seq_frames, s.unmatched, s.bad_msgs, s.reordered_seq_frames, s.repeats);
  amp_check_lat_t l;
  if (c->lat.sent_frames && amp_check_latency(c, &l) == AMP_OK) {
    fprintf(out, ",\"wire_latency_us\":{\"sent_frames\":%" PRIu64 ",\"sent_not_fabric\":%" PRIu64
                 ",\"sent_requests\":%" PRIu64 ",\"sent_unknown\":%" PRIu64
                 ",\"sent_repeats\":%" PRIu64 ",\"answered\":%" PRIu64 ",\"matched\":%" PRIu64
                 ",\"answered_unsent\":%" PRIu64 ",\"negative\":%" PRIu64,
            l.sent_frames, l.sent_not_fabric, l.sent_requests, l.sent_unknown, l.sent_repeats,
            l.answered, l.matched, l.answered_unsent, l.negative);
    for (int k = 0; k < AMP_CHECK_LAT_KINDS; k++) {
      const amp_check_pct_t *p = &l.lat[k];
      fprintf(out, ",\"%s\":{\"n\":%" PRIu64 ",\"min\":%" PRId64 ",\"p50\":%" PRId64
                   ",\"p99\":%" PRId64 ",\"p999\":%" PRId64 ",\"max\":%" PRId64
                   ",\"mean\":%.1f}", amp_check_lat_kind_name(k), p->n, p->min, p->p50, p->p99,
              p->p999, p->max, p->mean);
    }
    fputc('}', out);
  }
  fputs("}\n", out);
  return bad;
}
