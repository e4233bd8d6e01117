/* test_gen.c: the AMP traffic generator and the reply checker.
 *
 * Generates a small run with every bad-traffic class (seed printed), writes
 * it as ampd-pktgen does, reads the pcap back and checks every frame the way
 * ampd will: parse + verify (bad tags fail, unknown gateways are unknown),
 * seq per gateway, each update_add_htlc decoded, each onion peeled with the
 * node key (flipped bits fail with invalid_onion_hmac), each payload parsed
 * (malformed ones fail), then the AMP math per payment: the shares of a set
 * XOR to a root whose children's hashes are the HTLCs' payment hashes
 * (amp_child_verify), except for wrong_share sets. The expectations file
 * must list every HTLC once. Then the checker against synthetic replies
 * built from the expectations: all correct passes; a wrong preimage, a
 * missing answer, a duplicate, a wrong code, an answer to a dropped frame, a
 * bad reply tag each fail. The wire latency (ampd-check --sent): requests
 * matched to answers on a known vector (latencies 1..1000 us, fed out of
 * order, with a repeated request, a foreign frame, an unknown HTLC, an
 * answer without its request and one without a time), then on the generated
 * traffic (every answered HTLC matched, by kind, mpp_timeout apart; stamps
 * out of order counted as negative). Finally the two programs themselves. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include "amp_child.h"
#include "amp_frame.h"
#include "amp_gen.h"
#include "amp_gen_check.h"
#include "amp_msg.h"
#include "amp_payload.h"
#include "amp_secp.h"
#include "amp_sha256.h"
#include "amp_sphinx.h"
#include "amp_test.h"

/* AMP_REQUIRE evaluates its argument twice; MUST evaluates it once. */
#define MUST(cond)                                                             \
  do {                                                                         \
    int must_ok_ = !!(cond);                                                   \
    AMP_REQUIRE(must_ok_ && #cond);                                            \
  } while (0)

#define N_PAY 200
#define HEIGHT 812345

static uint8_t node_key[32];
static char dir[256];

typedef struct {
  uint8_t *pkt;
  size_t len;
} blob_t;

typedef struct {
  blob_t *f;
  size_t n, cap;
} blobs_t;

static void blobs_add(blobs_t *b, const uint8_t *p, size_t len) {
  if (b->n == b->cap) {
    b->cap = b->cap ? 2 * b->cap : 256;
    b->f = realloc(b->f, b->cap * sizeof *b->f);
    MUST(b->f != NULL);
  }
  b->f[b->n].pkt = malloc(len);
  MUST(b->f[b->n].pkt != NULL);
  memcpy(b->f[b->n].pkt, p, len);
  b->f[b->n++].len = len;
}

static void blobs_free(blobs_t *b) {
  for (size_t i = 0; i < b->n; i++) free(b->f[i].pkt);
  free(b->f);
  memset(b, 0, sizeof *b);
}

static void make_cfg(amp_gen_cfg_t *cfg, uint64_t seed) {
  amp_gen_cfg_default(cfg);
  amp_pubkey_t pk;
  MUST(amp_secp_pubkey_create(&pk, node_key) == AMP_OK);
  amp_secp_pubkey_serialize(cfg->node_pubkey, &pk);
  cfg->n_gw = 3;
  for (size_t i = 0; i < cfg->n_gw; i++) {
    char spec[128];
    snprintf(spec, sizeof spec, "%zu:%064x", 100 + i, (unsigned)(0x5a + i));
    MUST(amp_gen_parse_gateway(&cfg->gw[i], i, spec, NULL, 0) == AMP_OK);
  }
  cfg->channels_per_gw = 3;
  cfg->payments = N_PAY;
  MUST(amp_gen_parse_shards_dist(cfg, "1:2,2:2,3:3,5:2,8:1", NULL, 0) == AMP_OK);
  cfg->amt_min = 1000;
  cfg->amt_max = 5000000;
  cfg->height = HEIGHT;
  cfg->seed = seed;
  cfg->records_per_frame = 3;
  cfg->interleave = 4;
  cfg->t0_usec = 1700000000000000ull;
  for (int k = 1; k < AMP_GEN_CLASS_COUNT; k++) cfg->rate[k] = 0.06;
}

/* run generates everything: frames into fr, HTLCs into xs (in frame order),
 * and, when paths are given, the pcap and expectations files. */
static void run(const amp_gen_cfg_t *cfg, blobs_t *fr, amp_gen_htlc_t **xs, size_t *nx,
                const char *pcap_path, const char *expect_path) {
  amp_gen_t *g;
  char err[200];
  MUST(amp_gen_new(&g, cfg, err, sizeof err) == AMP_OK);
  pcap_t *pd = NULL;
  pcap_dumper_t *d = NULL;
  FILE *ef = NULL;
  if (pcap_path) {
    pd = pcap_open_dead(DLT_EN10MB, 65535);
    d = pcap_dump_open(pd, pcap_path);
    ef = fopen(expect_path, "w");
    MUST(d && ef);
    amp_gen_expect_write_meta(ef, cfg);
  }
  size_t cap = 0;
  *xs = NULL;
  *nx = 0;
  amp_gen_frame_t f;
  int rc;
  while ((rc = amp_gen_next(g, &f)) == 1) {
    blobs_add(fr, f.pkt, f.len);
    for (size_t i = 0; i < f.n_htlc; i++) {
      if (*nx == cap) {
        cap = cap ? 2 * cap : 512;
        *xs = realloc(*xs, cap * sizeof **xs);
        MUST(*xs != NULL);
      }
      (*xs)[(*nx)++] = f.htlc[i];
      if (ef) amp_gen_expect_write(ef, &f.htlc[i]);
    }
    if (d) {
      struct pcap_pkthdr h;
      h.ts.tv_sec = (time_t)(f.usec / 1000000u);
      h.ts.tv_usec = (suseconds_t)(f.usec % 1000000u);
      h.caplen = h.len = (bpf_u_int32)f.len;
      pcap_dump((u_char *)d, &h, f.pkt);
    }
  }
  AMP_CHECK_EQ(rc, 0);
  AMP_CHECK_EQ(amp_gen_next(g, &f), 0); /* stays at the end */
  amp_gen_stats_t st;
  amp_gen_stats(g, &st);
  AMP_CHECK_EQ(st.payments_done, cfg->payments);
  AMP_CHECK_EQ(st.htlcs, *nx);
  AMP_CHECK_EQ(st.frames, fr->n);
  amp_gen_delete(g);
  if (d) {
    pcap_dump_close(d);
    pcap_close(pd);
    MUST(fclose(ef) == 0);
  }
}

static const amp_gen_gateway_t *find_gw(const amp_gen_cfg_t *cfg, uint64_t id) {
  for (size_t i = 0; i < cfg->n_gw; i++)
    if (cfg->gw[i].id == id) return &cfg->gw[i];
  return NULL;
}

static int is_extra(int cls) {
  return cls == AMP_GEN_FLIPPED || cls == AMP_GEN_BAD_TAG || cls == AMP_GEN_UNKNOWN_GW ||
         cls == AMP_GEN_MISMATCHED || cls == AMP_GEN_EXPIRED || cls == AMP_GEN_MALFORMED_TLV;
}

/* What the onion and payload of one HTLC really held, from peeling it. */
typedef struct {
  int peeled, parsed;
  uint8_t share[32];
  uint32_t index;
  uint64_t total;
  size_t order;                  /* position among all HTLCs, in frame order */
} seen_t;

/* check_frames: everything ampd would see, checked against the expectations. */
static void check_frames(const amp_gen_cfg_t *cfg, const blobs_t *fr, const amp_gen_htlc_t *xs,
                         size_t nx, seen_t *seen) {
  static amp_frame_t f;
  static amp_sphinx_hop_t hop;
  uint64_t last_seq[AMP_GEN_MAX_GATEWAYS] = {0};
  size_t xi = 0;
  unsigned long peel_fail = 0, payload_fail = 0, bad_tags = 0, unknown = 0;
  for (size_t i = 0; i < fr->n; i++) {
    MUST(amp_frame_parse(&f, fr->f[i].pkt, fr->f[i].len) == AMP_FRAME_OK);
    const amp_gen_gateway_t *gw = find_gw(cfg, f.gateway_id);
    if (i == 0) {
      /* the tip, first, from the first gateway */
      AMP_CHECK(gw == &cfg->gw[0]);
      AMP_CHECK_EQ(f.count, 1);
      uint32_t h = 0;
      AMP_CHECK(amp_msg_tip_decode(&h, f.rec[0].msg, f.rec[0].len) == AMP_OK);
      AMP_CHECK_EQ(h, HEIGHT);
      AMP_CHECK(amp_frame_verify(&f, gw->key));
      last_seq[0] = f.seq;
      continue;
    }
    MUST(xi + f.count <= nx);
    if (!gw) {
      unknown++;
      for (unsigned r = 0; r < f.count; r++) AMP_CHECK_EQ(xs[xi + r].cls, AMP_GEN_UNKNOWN_GW);
      AMP_CHECK_EQ(f.count, 1);
    } else {
      size_t gi = (size_t)(gw - cfg->gw);
      AMP_CHECK(f.seq > last_seq[gi]);
      last_seq[gi] = f.seq;
      if (xs[xi].cls == AMP_GEN_BAD_TAG) {
        bad_tags++;
        AMP_CHECK_EQ(f.count, 1);
        AMP_CHECK(!amp_frame_verify(&f, gw->key));
      } else {
        AMP_CHECK(amp_frame_verify(&f, gw->key));
      }
      AMP_CHECK(f.count <= cfg->records_per_frame);
    }
    for (unsigned r = 0; r < f.count; r++, xi++) {
      const amp_gen_htlc_t *x = &xs[xi];
      seen_t *s = &seen[xi];
      s->order = xi;
      AMP_CHECK_EQ(f.gateway_id, x->gateway_id);
      AMP_CHECK_EQ(f.rec[r].scid, x->scid);
      amp_msg_add_t m;
      memset(&m, 0, sizeof m);
      MUST(amp_msg_add_decode(&m, f.rec[r].msg, f.rec[r].len) == AMP_OK);
      uint8_t cid[32], h[32];
      amp_gen_channel_id(cid, x->scid);
      AMP_CHECK_MEM(m.channel_id, cid, 32);
      AMP_CHECK_EQ(m.id, x->htlc_id);
      AMP_CHECK_EQ(m.amount_msat, x->amount_msat);
      AMP_CHECK_EQ(m.cltv_expiry, x->cltv_expiry);
      AMP_CHECK_MEM(m.payment_hash, x->payment_hash, 32);
      amp_sha256(h, m.onion, AMP_ONION_LEN);
      AMP_CHECK_MEM(h, x->onion_sha256, 32);
      int rc = amp_sphinx_peel(&hop, node_key, m.payment_hash, 32, m.onion);
      if (x->cls == AMP_GEN_FLIPPED) {
        peel_fail++;
        AMP_CHECK(rc != AMP_OK);
        AMP_CHECK_EQ(hop.failure_code, AMP_FAIL_INVALID_ONION_HMAC);
        AMP_CHECK_MEM(hop.sha256_of_onion, x->onion_sha256, 32);
        AMP_CHECK_EQ(x->expect, AMP_GEN_X_MALFORMED);
        AMP_CHECK_EQ(x->code, AMP_FAIL_INVALID_ONION_HMAC);
        continue;
      }
      if (x->cls == AMP_GEN_MALFORMED_TLV && rc == AMP_ERR_PAYLOAD) {
        payload_fail++;
        AMP_CHECK_EQ(hop.failure_code, 0);
        AMP_CHECK_MEM(hop.shared_secret, x->ss[0], 32);
        continue;
      }
      AMP_CHECK_EQ(rc, AMP_OK);
      if (rc != AMP_OK) continue;
      s->peeled = 1;
      AMP_CHECK(hop.is_final);
      AMP_CHECK_EQ(x->n_hops, 1);
      AMP_CHECK_MEM(hop.shared_secret, x->ss[0], 32);
      amp_payload_t pl;
      uint64_t bad_type = 0;
      int prc = amp_payload_parse(&pl, hop.payload, hop.payload_len, &bad_type);
      if (prc == AMP_OK) prc = amp_payload_check_final(&pl, &bad_type);
      if (x->cls == AMP_GEN_MALFORMED_TLV) {
        payload_fail++;
        AMP_CHECK(prc != AMP_OK);
        AMP_CHECK_EQ(x->expect, AMP_GEN_X_FAIL);
        AMP_CHECK_EQ(x->code, AMP_FAIL_INVALID_ONION_PAYLOAD);
        continue;
      }
      AMP_CHECK_EQ(prc, AMP_OK);
      if (prc != AMP_OK) continue;
      s->parsed = 1;
      AMP_CHECK(pl.present & AMP_PAYLOAD_MPP);
      AMP_CHECK(pl.present & AMP_PAYLOAD_AMP);
      AMP_CHECK_EQ(pl.amt_to_forward, x->amount_msat);
      AMP_CHECK_EQ(pl.outgoing_cltv_value, x->cltv_expiry);
      AMP_CHECK_EQ(pl.total_msat, x->total_msat);
      AMP_CHECK_MEM(pl.amp_set_id, x->set_id, 32);
      AMP_CHECK_EQ(pl.amp_child_index, x->child_index);
      memcpy(s->share, pl.amp_share, 32);
      s->index = pl.amp_child_index;
      s->total = pl.total_msat;
      amp_wipe(&pl, sizeof pl);
      if (x->cls == AMP_GEN_EXPIRED) {
        AMP_CHECK(x->cltv_expiry < HEIGHT + 19);
        AMP_CHECK_EQ(x->code, AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS);
      } else {
        AMP_CHECK_EQ(x->cltv_expiry, HEIGHT + cfg->cltv_delta);
      }
    }
  }
  AMP_CHECK_EQ(xi, nx);
  AMP_CHECK(peel_fail > 0);
  AMP_CHECK(payload_fail > 0);
  AMP_CHECK(bad_tags > 0);
  AMP_CHECK(unknown > 0);
}

/* check_amp: the AMP math and the classes' promises, per payment. */
static void check_amp(const amp_gen_cfg_t *cfg, const amp_gen_htlc_t *xs, size_t nx,
                      const seen_t *seen) {
  unsigned long per_class[AMP_GEN_CLASS_COUNT] = {0};
  unsigned long verified_sets = 0, mismatched_sets = 0;
  for (uint64_t p = 0; p < cfg->payments; p++) {
    size_t own[AMP_GEN_MAX_SHARDS], n_own = 0, extra = SIZE_MAX, replay = SIZE_MAX;
    int cls = AMP_GEN_GOOD;
    for (size_t i = 0; i < nx; i++) {
      if (xs[i].payment != p) continue;
      if (is_extra(xs[i].cls)) {
        AMP_CHECK(extra == SIZE_MAX);
        extra = i;
        cls = xs[i].cls;
      } else if (xs[i].cls == AMP_GEN_REPLAY) {
        AMP_CHECK(replay == SIZE_MAX);
        replay = i;
        cls = AMP_GEN_REPLAY;
      } else {
        MUST(n_own < AMP_GEN_MAX_SHARDS);
        own[n_own++] = i;
        if (xs[i].cls != AMP_GEN_GOOD) cls = xs[i].cls;
      }
    }
    MUST(n_own > 0);
    per_class[cls]++;
    uint32_t n = xs[own[0]].n_shards;
    uint64_t total = xs[own[0]].total_msat, sum = 0;
    uint8_t share[AMP_GEN_MAX_SHARDS][32], hash[AMP_GEN_MAX_SHARDS][32],
        pre[AMP_GEN_MAX_SHARDS][32];
    uint32_t index[AMP_GEN_MAX_SHARDS];
    for (size_t k = 0; k < n_own; k++) {
      const amp_gen_htlc_t *x = &xs[own[k]];
      AMP_CHECK_EQ(x->cls, cls == AMP_GEN_MISSING || cls == AMP_GEN_WRONG_SHARE ||
                               cls == AMP_GEN_UNDERPAID ? cls : AMP_GEN_GOOD);
      AMP_CHECK_EQ(x->n_shards, n);
      AMP_CHECK_EQ(x->total_msat, total);
      AMP_CHECK(seen[own[k]].parsed);
      AMP_CHECK(x->amount_msat >= 1);
      memcpy(share[k], seen[own[k]].share, 32);
      memcpy(hash[k], x->payment_hash, 32);
      index[k] = seen[own[k]].index;
      sum += x->amount_msat;
      /* every HTLC of a set has its own hash */
      for (size_t j = 0; j < k; j++) AMP_CHECK(memcmp(hash[j], hash[k], 32) != 0);
      uint8_t h[32];
      amp_sha256(h, x->preimage, 32);
      AMP_CHECK_MEM(h, x->payment_hash, 32);
      switch (cls) {
      case AMP_GEN_MISSING:
      case AMP_GEN_UNDERPAID:
        AMP_CHECK_EQ(x->expect, AMP_GEN_X_FAIL);
        AMP_CHECK_EQ(x->code, AMP_FAIL_MPP_TIMEOUT);
        break;
      case AMP_GEN_WRONG_SHARE:
        AMP_CHECK_EQ(x->expect, AMP_GEN_X_FAIL);
        AMP_CHECK_EQ(x->code, AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS);
        break;
      default:
        AMP_CHECK_EQ(x->expect, AMP_GEN_X_FULFILL);
      }
    }
    if (cls == AMP_GEN_MISSING) {
      AMP_CHECK_EQ(n_own, n - 1);
      AMP_CHECK(sum < total);
      continue; /* the root cannot be rebuilt without the missing share */
    }
    AMP_CHECK_EQ(n_own, n);
    if (cls == AMP_GEN_UNDERPAID) AMP_CHECK(sum < total);
    else AMP_CHECK_EQ(sum, total);
    int rc = amp_child_verify(pre, (const uint8_t(*)[32])share, index,
                              (const uint8_t(*)[32])hash, n_own);
    if (cls == AMP_GEN_WRONG_SHARE) {
      AMP_CHECK_EQ(rc, AMP_ERR_MISMATCH);
      mismatched_sets++;
      continue;
    }
    AMP_CHECK_EQ(rc, AMP_OK);
    verified_sets++;
    for (size_t k = 0; k < n_own; k++) AMP_CHECK_MEM(pre[k], xs[own[k]].preimage, 32);
    uint8_t root[32];
    amp_child_root(root, (const uint8_t(*)[32])share, n_own);
    if (extra != SIZE_MAX) {
      const amp_gen_htlc_t *x = &xs[extra];
      AMP_CHECK_EQ(x->child_index, n);
      amp_child_t ch;
      if (seen[extra].parsed) {
        amp_child_derive(&ch, root, seen[extra].share, seen[extra].index);
        AMP_CHECK_MEM(ch.hash, x->payment_hash, 32);
      }
      switch (cls) {
      case AMP_GEN_BAD_TAG:
      case AMP_GEN_UNKNOWN_GW:
        AMP_CHECK_EQ(x->expect, AMP_GEN_X_NONE);
        break;
      case AMP_GEN_MISMATCHED:
        AMP_CHECK(seen[extra].total != total);
        AMP_CHECK(extra > own[0]);         /* after the first sibling... */
        AMP_CHECK(extra < own[n_own - 1]); /* ...and before the last */
        AMP_CHECK_EQ(x->code, AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS);
        break;
      default:
        break;
      }
    }
    if (replay != SIZE_MAX) {
      const amp_gen_htlc_t *x = &xs[replay];
      size_t k;
      for (k = 0; k < n_own && memcmp(xs[own[k]].onion_sha256, x->onion_sha256, 32); k++) {
      }
      AMP_CHECK(k < n_own);
      if (k < n_own) {
        AMP_CHECK(own[k] < replay);
        AMP_CHECK_MEM(xs[own[k]].payment_hash, x->payment_hash, 32);
        AMP_CHECK(xs[own[k]].scid != x->scid || xs[own[k]].htlc_id != x->htlc_id);
      }
      AMP_CHECK_EQ(x->expect, AMP_GEN_X_FAIL);
      AMP_CHECK_EQ(x->code, AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS);
    }
    amp_wipe(root, sizeof root);
  }
  for (int k = 0; k < AMP_GEN_CLASS_COUNT; k++) {
    if (!per_class[k]) fprintf(stderr, "class %s never drawn\n", amp_gen_class_name(k));
    AMP_CHECK(per_class[k] > 0);
  }
  AMP_CHECK(verified_sets > 0);
  AMP_CHECK(mismatched_sets > 0);
  fprintf(stderr, "%lu sets verified, %lu wrong-share sets mismatch as they should\n",
          verified_sets, mismatched_sets);
}

/* htlc ids grow by one per channel; no (gateway, scid, id) twice. */
static void check_ids(const amp_gen_htlc_t *xs, size_t nx) {
  for (size_t i = 0; i < nx; i++) {
    uint64_t prev = UINT64_MAX;
    int found = 0;
    for (size_t j = 0; j < i; j++) {
      if (xs[j].scid != xs[i].scid) continue;
      AMP_CHECK(xs[j].htlc_id != xs[i].htlc_id);
      prev = xs[j].htlc_id;
      found = 1;
    }
    if (found) AMP_CHECK_EQ(xs[i].htlc_id, prev + 1);
    else AMP_CHECK_EQ(xs[i].htlc_id, 0);
  }
}

static void check_pcap_file(const char *path, const blobs_t *fr) {
  char eb[PCAP_ERRBUF_SIZE];
  pcap_t *p = pcap_open_offline(path, eb);
  MUST(p != NULL);
  AMP_CHECK_EQ(pcap_datalink(p), DLT_EN10MB);
  struct pcap_pkthdr *h;
  const u_char *d;
  size_t i = 0;
  uint64_t last = 0;
  while (pcap_next_ex(p, &h, &d) == 1) {
    MUST(i < fr->n);
    AMP_CHECK_EQ(h->caplen, fr->f[i].len);
    AMP_CHECK_EQ(h->len, fr->f[i].len);
    if (h->caplen == fr->f[i].len) AMP_CHECK_MEM(d, fr->f[i].pkt, h->caplen);
    uint64_t t = (uint64_t)h->ts.tv_sec * 1000000u + (uint64_t)h->ts.tv_usec;
    AMP_CHECK(t > last);
    last = t;
    i++;
  }
  AMP_CHECK_EQ(i, fr->n);
  pcap_close(p);
}

/* same_htlc: every field written to the file came back. */
static void same_htlc(const amp_gen_htlc_t *a, const amp_gen_htlc_t *b) {
  AMP_CHECK_EQ(a->payment, b->payment);
  AMP_CHECK_EQ(a->gateway_id, b->gateway_id);
  AMP_CHECK_EQ(a->scid, b->scid);
  AMP_CHECK_EQ(a->htlc_id, b->htlc_id);
  AMP_CHECK_EQ(a->cls, b->cls);
  AMP_CHECK_EQ(a->expect, b->expect);
  AMP_CHECK_EQ(a->code, b->code);
  AMP_CHECK_EQ(a->child_index, b->child_index);
  AMP_CHECK_EQ(a->n_shards, b->n_shards);
  AMP_CHECK_EQ(a->amount_msat, b->amount_msat);
  AMP_CHECK_EQ(a->total_msat, b->total_msat);
  AMP_CHECK_EQ(a->cltv_expiry, b->cltv_expiry);
  AMP_CHECK_MEM(a->payment_hash, b->payment_hash, 32);
  AMP_CHECK_MEM(a->preimage, b->preimage, 32);
  AMP_CHECK_MEM(a->set_id, b->set_id, 32);
  AMP_CHECK_MEM(a->onion_sha256, b->onion_sha256, 32);
  AMP_CHECK_EQ(a->n_hops, b->n_hops);
  AMP_CHECK_MEM(a->ss, b->ss, 32 * (size_t)a->n_hops);
}

static void check_expect_file(const char *path, const amp_gen_cfg_t *cfg,
                              const amp_gen_htlc_t *xs, size_t nx) {
  FILE *f = fopen(path, "r");
  MUST(f != NULL);
  char *line = NULL;
  size_t cap = 0, n = 0, metas = 0;
  amp_gen_gateway_t gw[AMP_GEN_MAX_GATEWAYS];
  size_t n_gw = 0;
  uint32_t height = 0;
  amp_gen_htlc_t x;
  char err[200];
  while (getline(&line, &cap, f) >= 0) {
    int r = amp_gen_expect_parse_line(&x, gw, &n_gw, &height, line, err, sizeof err);
    AMP_CHECK(r == 1 || r == 2);
    if (r == 2) {
      metas++;
      continue;
    }
    if (r != 1) {
      fprintf(stderr, "line: %s: %s\n", line, err);
      continue;
    }
    MUST(n < nx);
    same_htlc(&x, &xs[n]);
    n++;
  }
  AMP_CHECK_EQ(metas, 1);
  AMP_CHECK_EQ(n, nx);
  AMP_CHECK_EQ(height, HEIGHT);
  AMP_CHECK_EQ(n_gw, cfg->n_gw);
  for (size_t i = 0; i < n_gw && i < cfg->n_gw; i++) {
    AMP_CHECK_EQ(gw[i].id, cfg->gw[i].id);
    AMP_CHECK_MEM(gw[i].key, cfg->gw[i].key, 32);
  }
  /* malformed lines are refused with a message */
  AMP_CHECK(amp_gen_expect_parse_line(&x, NULL, NULL, NULL, "{\"gw\":\"1\"}", err, sizeof err) < 0);
  AMP_CHECK(amp_gen_expect_parse_line(&x, NULL, NULL, NULL, "nonsense", err, sizeof err) < 0);
  AMP_CHECK_EQ(amp_gen_expect_parse_line(&x, NULL, NULL, NULL, "  \n", err, sizeof err), 0);
  free(line);
  fclose(f);
}

/* ---------------------------------------------------------------- replies */

enum {
  MUT_NONE, MUT_BAD_PREIMAGE, MUT_DROP_TIMEOUT, MUT_DUP, MUT_WRONG_CODE, MUT_ANSWER_DROPPED,
  MUT_BAD_TAG, MUT_WRONG_AMOUNT, MUT_COUNT
};

/* replies builds what a correct ampd would send for xs, with one mutation. */
static void replies(blobs_t *out, const amp_gen_cfg_t *cfg, const amp_gen_htlc_t *xs, size_t nx,
                    int mut) {
  static uint8_t buf[AMP_FRAME_MAX_LEN];
  uint64_t seq[AMP_GEN_MAX_GATEWAYS];
  int done = 0;
  for (size_t g = 0; g < cfg->n_gw; g++) seq[g] = 1;
  for (size_t g = 0; g < cfg->n_gw; g++) {
    amp_frame_builder_t b;
    amp_frame_addr_t a;
    memcpy(a.src_mac, cfg->ampd_mac, 6);
    memcpy(a.dst_mac, cfg->gw[g].mac, 6);
    memcpy(a.src_ip, cfg->ampd_ip, 4);
    memcpy(a.dst_ip, cfg->gw[g].ip, 4);
    a.src_port = a.dst_port = AMP_FRAME_UDP_PORT;
    int open = 0;
    for (size_t i = 0; i < nx; i++) {
      const amp_gen_htlc_t *x = &xs[i];
      if (x->gateway_id != cfg->gw[g].id) continue;
      uint8_t msg[1024];
      long len = -1;
      uint8_t cid[32];
      amp_gen_channel_id(cid, x->scid);
      int copies = 1;
      int expect = x->expect;
      uint16_t code = x->code;
      if (expect == AMP_GEN_X_FAIL_ANY) {
        expect = AMP_GEN_X_FAIL;
        code = AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS;
      }
      if (expect == AMP_GEN_X_NONE) {
        if (mut != MUT_ANSWER_DROPPED || done) continue;
        expect = AMP_GEN_X_FAIL;
        code = AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS;
        done = 1;
      }
      uint64_t amount = x->amount_msat;
      if (mut == MUT_DROP_TIMEOUT && !done && code == AMP_FAIL_MPP_TIMEOUT) {
        done = 1;
        continue;
      }
      if (mut == MUT_DUP && !done && expect == AMP_GEN_X_FULFILL) {
        done = 1;
        copies = 2;
      }
      if (mut == MUT_WRONG_CODE && !done && x->cls == AMP_GEN_EXPIRED) {
        done = 1;
        code = AMP_FAIL_TEMPORARY_NODE_FAILURE;
      }
      if (mut == MUT_WRONG_AMOUNT && !done && x->cls == AMP_GEN_WRONG_SHARE) {
        done = 1;
        amount++;
      }
      if (expect == AMP_GEN_X_FULFILL) {
        amp_msg_fulfill_t m;
        memset(&m, 0, sizeof m);
        memcpy(m.channel_id, cid, 32);
        m.id = x->htlc_id;
        memcpy(m.payment_preimage, x->preimage, 32);
        if (mut == MUT_BAD_PREIMAGE && !done) {
          m.payment_preimage[7] ^= 0x10;
          done = 1;
        }
        len = amp_msg_fulfill_encode(msg, sizeof msg, &m);
      } else if (expect == AMP_GEN_X_FAIL) {
        uint8_t fm[16], reason[AMP_FAIL_MAX_LEN];
        size_t fl = 2;
        amp_put_be16(fm, code);
        if (code == AMP_FAIL_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS) {
          amp_put_be64(fm + 2, amount);
          amp_put_be32(fm + 10, HEIGHT);
          fl = 14;
        } else if (code == AMP_FAIL_INVALID_ONION_PAYLOAD) {
          fm[2] = 2;
          amp_put_be16(fm + 3, 0);
          fl = 5;
        }
        long rl = amp_sphinx_fail_create(reason, sizeof reason, x->ss[0], fm, fl);
        MUST(rl > 0);
        amp_msg_fail_t m;
        memset(&m, 0, sizeof m);
        memcpy(m.channel_id, cid, 32);
        m.id = x->htlc_id;
        m.reason = reason;
        m.reason_len = (uint16_t)rl;
        len = amp_msg_fail_encode(msg, sizeof msg, &m);
      } else if (expect == AMP_GEN_X_MALFORMED) {
        amp_msg_fail_malformed_t m;
        memset(&m, 0, sizeof m);
        memcpy(m.channel_id, cid, 32);
        m.id = x->htlc_id;
        memcpy(m.sha256_of_onion, x->onion_sha256, 32);
        m.failure_code = code;
        len = amp_msg_fail_malformed_encode(msg, sizeof msg, &m);
      }
      MUST(len > 0);
      for (int c = 0; c < copies; c++) {
        if (open && (b.count == 5 || amp_frame_room(&b) < (size_t)len)) {
          blobs_add(out, buf, amp_frame_finish(&b, cfg->gw[g].key));
          open = 0;
        }
        if (!open) {
          amp_frame_begin(&b, buf, sizeof buf, &a, cfg->gw[g].id, seq[g]++);
          open = 1;
        }
        MUST(amp_frame_add(&b, x->scid, msg, (uint16_t)len) == AMP_OK);
      }
    }
    if (open) {
      size_t fl = amp_frame_finish(&b, cfg->gw[g].key);
      blobs_add(out, buf, fl);
    }
  }
  if (mut == MUT_BAD_TAG) {
    out->f[0].pkt[out->f[0].len - 3] ^= 1;
    done = 1;
  }
  AMP_CHECK(mut == MUT_NONE || done);
}

/* write_pcap_at writes frames stamped sec0 + i seconds; write_pcap from
 * 1700000000. */
static void write_pcap_at(const char *path, const blobs_t *b, long sec0) {
  pcap_t *pd = pcap_open_dead(DLT_EN10MB, 65535);
  pcap_dumper_t *d = pcap_dump_open(pd, path);
  MUST(d != NULL);
  for (size_t i = 0; i < b->n; i++) {
    struct pcap_pkthdr h;
    h.ts.tv_sec = (time_t)(sec0 + (long)i);
    h.ts.tv_usec = 0;
    h.caplen = h.len = (bpf_u_int32)b->f[i].len;
    pcap_dump((u_char *)d, &h, b->f[i].pkt);
  }
  pcap_dump_close(d);
  pcap_close(pd);
}

static void write_pcap(const char *path, const blobs_t *b) {
  write_pcap_at(path, b, 1700000000);
}

static int run_cmd(const char *cmd) {
  int st = system(cmd);
  if (st == -1 || !WIFEXITED(st)) return -1;
  return WEXITSTATUS(st);
}

static void check_checker(const amp_gen_cfg_t *cfg, const amp_gen_htlc_t *xs, size_t nx,
                          const char *expect_path) {
  FILE *devnull = fopen("/dev/null", "w");
  MUST(devnull != NULL);
  for (int mut = 0; mut < MUT_COUNT; mut++) {
    for (int tok = 0; tok < 2; tok++) {
      if (tok && mut != MUT_NONE && mut != MUT_DROP_TIMEOUT) continue;
      blobs_t rep = {0};
      replies(&rep, cfg, xs, nx, mut);
      amp_check_opts_t o = {.timeouts_ok = tok, .log = devnull};
      amp_check_t *c = amp_check_new(&o);
      MUST(c != NULL);
      MUST(amp_check_load(c, expect_path) == AMP_OK);
      for (size_t i = 0; i < rep.n; i++) amp_check_frame(c, rep.f[i].pkt, rep.f[i].len);
      amp_check_stats_t st;
      amp_check_finish(c, &st);
      int rc = amp_check_result(c);
      uint64_t ok = 0, none = 0, wrong = 0, dup = 0, waited = 0, all = 0;
      for (int k = 0; k < AMP_GEN_CLASS_COUNT; k++) {
        all += st.htlcs[k];
        ok += st.outcome[k][AMP_CHECK_OK];
        none += st.outcome[k][AMP_CHECK_NONE];
        wrong += st.outcome[k][AMP_CHECK_WRONG];
        dup += st.outcome[k][AMP_CHECK_DUP];
        waited += st.outcome[k][AMP_CHECK_WAITED];
      }
      AMP_CHECK_EQ(all, nx);
      switch (mut) {
      case MUT_NONE:
        AMP_CHECK_EQ(rc, 0);
        AMP_CHECK_EQ(ok, nx);
        for (int k = 0; k < AMP_GEN_CLASS_COUNT; k++)
          AMP_CHECK_EQ(st.outcome[k][AMP_CHECK_OK], st.htlcs[k]);
        AMP_CHECK_EQ(st.unmatched + st.bad_frames + st.bad_tag_frames + st.dup_seq_frames, 0);
        if (!tok) {
          /* the same through the report functions and the real program */
          FILE *mem = fopen("/dev/null", "w");
          AMP_CHECK_EQ(amp_check_report(c, mem), 0);
          AMP_CHECK_EQ(amp_check_report_json(c, mem), 0);
          fclose(mem);
        }
        break;
      case MUT_BAD_PREIMAGE:
        AMP_CHECK_EQ(rc, 1);
        AMP_CHECK_EQ(wrong, 1);
        AMP_CHECK_EQ(ok, nx - 1);
        break;
      case MUT_DROP_TIMEOUT:
        AMP_CHECK_EQ(rc, tok ? 0 : 1);
        AMP_CHECK_EQ(tok ? waited : none, 1);
        break;
      case MUT_DUP:
        AMP_CHECK_EQ(rc, 1);
        AMP_CHECK_EQ(dup, 1);
        break;
      case MUT_WRONG_CODE:
        AMP_CHECK_EQ(rc, 1);
        AMP_CHECK_EQ(st.outcome[AMP_GEN_EXPIRED][AMP_CHECK_WRONG], 1);
        break;
      case MUT_WRONG_AMOUNT:
        AMP_CHECK_EQ(rc, 1);
        AMP_CHECK_EQ(st.outcome[AMP_GEN_WRONG_SHARE][AMP_CHECK_WRONG], 1);
        break;
      case MUT_ANSWER_DROPPED:
        AMP_CHECK_EQ(rc, 1);
        AMP_CHECK_EQ(wrong, 1);
        break;
      case MUT_BAD_TAG:
        AMP_CHECK_EQ(rc, 1);
        AMP_CHECK_EQ(st.bad_tag_frames, 1);
        AMP_CHECK(none >= 1);
        break;
      }
      if (mut == MUT_NONE && !tok) {
        char pc[512], cmd[2048];
        snprintf(pc, sizeof pc, "%s/replies.pcap", dir);
        write_pcap(pc, &rep);
        const char *bd = getenv("AMP_BUILD");
        if (bd) {
          snprintf(cmd, sizeof cmd, "%s/bench/ampd-check -q --expect %s %s --json %s/r.json", bd,
                   expect_path, pc, dir);
          AMP_CHECK_EQ(run_cmd(cmd), 0);
        }
      }
      if (mut == MUT_BAD_PREIMAGE) {
        char pc[512], cmd[2048];
        snprintf(pc, sizeof pc, "%s/replies-bad.pcap", dir);
        write_pcap(pc, &rep);
        const char *bd = getenv("AMP_BUILD");
        if (bd) {
          snprintf(cmd, sizeof cmd, "%s/bench/ampd-check -q --expect %s --pcap %s 2>/dev/null",
                   bd, expect_path, pc);
          AMP_CHECK_EQ(run_cmd(cmd), 1);
        }
      }
      amp_check_free(c);
      blobs_free(&rep);
    }
  }
  /* a restart: the same answers twice (two captures) pass with repeats_ok
   * only; a different second answer never does */
  for (int round = 0; round < 3; round++) {
    blobs_t r1 = {0}, r2 = {0};
    replies(&r1, cfg, xs, nx, MUT_NONE);
    replies(&r2, cfg, xs, nx, round == 2 ? MUT_BAD_PREIMAGE : MUT_NONE);
    amp_check_opts_t o = {.repeats_ok = round > 0, .log = devnull};
    amp_check_t *c = amp_check_new(&o);
    MUST(c != NULL);
    MUST(amp_check_load(c, expect_path) == AMP_OK);
    for (size_t i = 0; i < r1.n; i++) amp_check_frame(c, r1.f[i].pkt, r1.f[i].len);
    amp_check_new_capture(c);
    for (size_t i = 0; i < r2.n; i++) amp_check_frame(c, r2.f[i].pkt, r2.f[i].len);
    amp_check_stats_t st;
    amp_check_finish(c, &st);
    uint64_t dup = 0, answered = 0;
    for (int k = 0; k < AMP_GEN_CLASS_COUNT; k++) {
      dup += st.outcome[k][AMP_CHECK_DUP];
      answered += st.htlcs[k] - st.outcome[k][AMP_CHECK_NONE];
    }
    if (round == 0) {
      AMP_CHECK_EQ(amp_check_result(c), 1);
      AMP_CHECK(dup > 0);
    } else if (round == 1) {
      AMP_CHECK_EQ(amp_check_result(c), 0);
      AMP_CHECK_EQ(dup, 0);
      AMP_CHECK(st.repeats > 0);
      AMP_CHECK_EQ(st.dup_seq_frames, 0);
    } else {
      AMP_CHECK_EQ(amp_check_result(c), 1);
      AMP_CHECK_EQ(dup, 1);
    }
    amp_check_free(c);
    blobs_free(&r1);
    blobs_free(&r2);
  }
  fclose(devnull);
}

/* frame1 builds one frame of gateway gw carrying one message. */
static size_t frame1(uint8_t *buf, uint64_t gw, const uint8_t key[32], uint64_t seq,
                     uint64_t scid, const uint8_t *msg, long len) {
  MUST(len > 0);
  amp_frame_builder_t b;
  amp_frame_addr_t a;
  memset(&a, 0, sizeof a);
  a.src_port = a.dst_port = AMP_FRAME_UDP_PORT;
  amp_frame_begin(&b, buf, AMP_FRAME_MAX_LEN, &a, gw, seq);
  MUST(amp_frame_add(&b, scid, msg, (uint16_t)len) == AMP_OK);
  return amp_frame_finish(&b, key);
}

/* Wire latency on a known vector: N fulfilled HTLCs, HTLC j answered j+1 us
 * after its request; replies fed newest first, requests after them. N = 999
 * tells the nearest rank from its neighbours (0.5 * 999 = 499.5: rank 500). */
static void check_latency_known(void) {
  enum { N = 999 };
  static uint8_t buf[AMP_FRAME_MAX_LEN], onion[AMP_ONION_LEN];
  uint8_t key[32], msg[AMP_MSG_ADD_LEN + 16];
  memset(key, 0x3c, 32);
  FILE *devnull = fopen("/dev/null", "w");
  MUST(devnull != NULL);
  amp_check_opts_t o = {.log = devnull};
  amp_check_t *c = amp_check_new(&o);
  MUST(c != NULL);
  MUST(amp_check_gateway(c, 9, key) == AMP_OK);
  /* HTLC N: answered, its request never seen; N + 1: answered without a time */
  amp_gen_htlc_t xs[N + 2];
  memset(xs, 0, sizeof xs);
  for (unsigned j = 0; j < N + 2; j++) {
    amp_gen_htlc_t *x = &xs[j];
    x->gateway_id = 9;
    x->scid = (700000ull << 40) | ((uint64_t)(j % 3) << 16);
    x->htlc_id = j / 3;
    x->cls = AMP_GEN_GOOD;
    x->expect = AMP_GEN_X_FULFILL;
    x->amount_msat = 1000;
    memset(x->preimage, 0, 32);
    amp_put_be32(x->preimage, j);
    amp_sha256(x->payment_hash, x->preimage, 32);
    MUST(amp_check_expect(c, x) == AMP_OK);
  }
  const int64_t t0 = 1700000000000000ll;
  for (unsigned k = 0; k < N + 2; k++) {
    unsigned j = N + 1 - k;
    amp_msg_fulfill_t m;
    memset(&m, 0, sizeof m);
    amp_gen_channel_id(m.channel_id, xs[j].scid);
    m.id = xs[j].htlc_id;
    memcpy(m.payment_preimage, xs[j].preimage, 32);
    size_t fl = frame1(buf, 9, key, k + 1, xs[j].scid, msg,
                       amp_msg_fulfill_encode(msg, sizeof msg, &m));
    if (j == N + 1) amp_check_frame(c, buf, fl);
    else amp_check_frame_at(c, buf, fl, t0 + 37 * (int64_t)j + (int64_t)j + 1);
  }
  amp_msg_add_t a;
  memset(&a, 0, sizeof a);
  a.amount_msat = 1000;
  a.cltv_expiry = 800144;
  a.onion = onion;
  for (unsigned j = 0; j <= N + 2; j++) {
    if (j == N) continue;                             /* never sent */
    unsigned h = j == N + 2 ? 0 : j;                  /* HTLC 0 again, later: a repeat */
    amp_gen_channel_id(a.channel_id, xs[h].scid);
    a.id = xs[h].htlc_id;
    memcpy(a.payment_hash, xs[h].payment_hash, 32);
    size_t fl = frame1(buf, 9, key, j + 1, xs[h].scid, msg,
                       amp_msg_add_encode(msg, sizeof msg, &a));
    amp_check_sent_frame(c, buf, fl, t0 + 37 * (int64_t)j);
  }
  a.id = 99999;                                       /* no such HTLC */
  size_t fl = frame1(buf, 9, key, 1, xs[0].scid, msg, amp_msg_add_encode(msg, sizeof msg, &a));
  amp_check_sent_frame(c, buf, fl, t0);
  memset(buf, 0, 64);                                 /* not a fabric frame */
  amp_check_sent_frame(c, buf, 64, t0);
  amp_check_lat_t l;
  MUST(amp_check_latency(c, &l) == AMP_OK);
  AMP_CHECK_EQ(amp_check_result(c), 0);
  AMP_CHECK_EQ(l.sent_frames, N + 4);
  AMP_CHECK_EQ(l.sent_not_fabric, 1);
  AMP_CHECK_EQ(l.sent_requests, N + 2);
  AMP_CHECK_EQ(l.sent_repeats, 1);
  AMP_CHECK_EQ(l.sent_unknown, 1);
  AMP_CHECK_EQ(l.answered, N + 1);
  AMP_CHECK_EQ(l.matched, N);
  AMP_CHECK_EQ(l.answered_unsent, 1);
  AMP_CHECK_EQ(l.negative, 0);
  for (int k = AMP_CHECK_LAT_ALL; k <= AMP_CHECK_LAT_FULFILL; k++) {
    const amp_check_pct_t *p = &l.lat[k];
    AMP_CHECK_EQ(p->n, N);
    AMP_CHECK_EQ(p->min, 1);
    AMP_CHECK_EQ(p->p50, 500);
    AMP_CHECK_EQ(p->p99, 990);
    AMP_CHECK_EQ(p->p999, 999);
    AMP_CHECK_EQ(p->max, 999);
    AMP_CHECK(p->mean > 499.99 && p->mean < 500.01);
  }
  for (int k = AMP_CHECK_LAT_FAIL; k < AMP_CHECK_LAT_KINDS; k++) AMP_CHECK_EQ(l.lat[k].n, 0);
  /* the report and the JSON carry it */
  char *text = NULL;
  size_t tlen = 0;
  FILE *mem = open_memstream(&text, &tlen);
  MUST(mem != NULL);
  AMP_CHECK_EQ(amp_check_report(c, mem), 0);
  AMP_CHECK_EQ(amp_check_report_json(c, mem), 0);
  fclose(mem);
  AMP_CHECK(strstr(text, "matched 999 of 1000 answered HTLCs") != NULL);
  AMP_CHECK(strstr(text, "\"all\":{\"n\":999,\"min\":1,\"p50\":500,\"p99\":990,\"p999\":999,"
                         "\"max\":999,") != NULL);
  free(text);
  amp_check_free(c);
  fclose(devnull);
}

/* Wire latency on the generated traffic: every answered HTLC matched to its
 * request, each in the kind of its answer. With the requests stamped after
 * the replies every sample is negative (counted), and the check's result
 * does not change. */
static void check_latency_gen(const amp_gen_cfg_t *cfg, const blobs_t *fr,
                              const amp_gen_htlc_t *xs, size_t nx, const char *expect_path) {
  uint64_t want[AMP_CHECK_LAT_KINDS] = {0}, answered = 0;
  for (size_t i = 0; i < nx; i++) {
    int k = xs[i].expect == AMP_GEN_X_FULFILL ? AMP_CHECK_LAT_FULFILL
            : xs[i].expect == AMP_GEN_X_FORWARD ? AMP_CHECK_LAT_FORWARD
            : xs[i].expect == AMP_GEN_X_FAIL && xs[i].code == AMP_FAIL_MPP_TIMEOUT
                ? AMP_CHECK_LAT_TIMEOUT : AMP_CHECK_LAT_FAIL;
    if (xs[i].expect == AMP_GEN_X_NONE) continue;
    want[k]++;
    answered++;
  }
  want[AMP_CHECK_LAT_ALL] = answered;
  AMP_CHECK(want[AMP_CHECK_LAT_TIMEOUT] > 0 && want[AMP_CHECK_LAT_FAIL] > 0);
  FILE *devnull = fopen("/dev/null", "w");
  MUST(devnull != NULL);
  blobs_t rep = {0};
  replies(&rep, cfg, xs, nx, MUT_NONE);
  for (int late = 0; late < 2; late++) {
    amp_check_opts_t o = {.log = devnull};
    amp_check_t *c = amp_check_new(&o);
    MUST(c != NULL);
    MUST(amp_check_load(c, expect_path) == AMP_OK);
    for (size_t i = 0; i < rep.n; i++)
      amp_check_frame_at(c, rep.f[i].pkt, rep.f[i].len, 2000000000 + (int64_t)i);
    for (size_t i = 0; i < fr->n; i++)
      amp_check_sent_frame(c, fr->f[i].pkt, fr->f[i].len, (late ? 3000000000 : 1000000000) +
                           (int64_t)i);
    amp_check_lat_t l;
    MUST(amp_check_latency(c, &l) == AMP_OK);
    AMP_CHECK_EQ(amp_check_result(c), 0);
    AMP_CHECK_EQ(l.sent_frames, fr->n);
    AMP_CHECK_EQ(l.sent_requests, nx);
    AMP_CHECK_EQ(l.sent_unknown + l.sent_repeats + l.sent_not_fabric, 0);
    AMP_CHECK_EQ(l.answered, answered);
    AMP_CHECK_EQ(l.matched, answered);
    AMP_CHECK_EQ(l.negative, late ? answered : 0);
    for (int k = 0; k < AMP_CHECK_LAT_KINDS; k++) {
      AMP_CHECK_EQ(l.lat[k].n, want[k]);
      if (!l.lat[k].n) continue;
      AMP_CHECK(l.lat[k].min <= l.lat[k].p50 && l.lat[k].p50 <= l.lat[k].p99 &&
                l.lat[k].p99 <= l.lat[k].p999 && l.lat[k].p999 <= l.lat[k].max);
      AMP_CHECK(late ? l.lat[k].max < 0 : l.lat[k].min > 0);
    }
    amp_check_free(c);
  }
  blobs_free(&rep);
  fclose(devnull);
}

/* ampd-check --sent: the program prints the table and the JSON field. */
static void check_latency_program(const amp_gen_cfg_t *cfg, const amp_gen_htlc_t *xs, size_t nx,
                                  const char *pcap_path, const char *expect_path) {
  const char *bd = getenv("AMP_BUILD");
  if (!bd) return;
  blobs_t rep = {0};
  replies(&rep, cfg, xs, nx, MUT_NONE);
  char pc[512], js[512], cmd[4096];
  snprintf(pc, sizeof pc, "%s/replies-lat.pcap", dir);
  snprintf(js, sizeof js, "%s/lat.json", dir);
  write_pcap_at(pc, &rep, 1800000000);   /* after the run's requests (t0_usec 1.7e15) */
  snprintf(cmd, sizeof cmd, "%s/bench/ampd-check --expect %s %s --sent %s --json %s | "
           "grep -q '^  matched [0-9]* of [0-9]* answered HTLCs'", bd, expect_path, pc,
           pcap_path, js);
  AMP_CHECK_EQ(run_cmd(cmd), 0);
  FILE *f = fopen(js, "r");
  MUST(f != NULL);
  char j[8192];
  size_t n = fread(j, 1, sizeof j - 1, f);
  j[n] = 0;
  fclose(f);
  const char *w = strstr(j, "\"wire_latency_us\":{");
  AMP_CHECK(w != NULL);
  if (w) {
    unsigned long long answered = 0, matched = 1;
    AMP_CHECK(sscanf(strstr(w, "\"answered\":"), "\"answered\":%llu", &answered) == 1);
    AMP_CHECK(sscanf(strstr(w, "\"matched\":"), "\"matched\":%llu", &matched) == 1);
    AMP_CHECK(answered > 0 && answered == matched);
    AMP_CHECK(strstr(w, "\"negative\":0,") != NULL);
  }
  blobs_free(&rep);
}

/* The programs: pktgen writes both files with the options it documents; a
 * bad option exits 2. */
static void check_programs(void) {
  const char *bd = getenv("AMP_BUILD");
  if (!bd) {
    fprintf(stderr, "AMP_BUILD not set: skipping the program runs\n");
    return;
  }
  char cmd[4096], kf[512], pc[512];
  snprintf(kf, sizeof kf, "%s/node.key", dir);
  FILE *f = fopen(kf, "w");
  MUST(f != NULL);
  char hex[65];
  fprintf(f, "%s\n", amp_hex_encode(hex, node_key, 32));
  fclose(f);
  chmod(kf, 0600);
  snprintf(pc, sizeof pc, "%s/prog.pcap", dir);
  snprintf(cmd, sizeof cmd,
           "%s/bench/ampd-pktgen -q --node-key-file %s --gateway 7:%064x "
           "--gateway 0x8:%064x:02:11:22:33:44:55:198.18.7.7 -n 30 --shards-dist 1:1,4:1 "
           "--amount 5000-9000 --records 2 --interleave 3 --seed 99 --bad-mix 0.5 -o %s",
           bd, kf, 1u, 2u, pc);
  AMP_CHECK_EQ(run_cmd(cmd), 0);
  struct stat sb;
  char ep[600];
  snprintf(ep, sizeof ep, "%s.expect", pc);
  AMP_CHECK(stat(pc, &sb) == 0 && sb.st_size > 0);
  AMP_CHECK(stat(ep, &sb) == 0 && (sb.st_mode & 077) == 0);
  snprintf(cmd, sizeof cmd, "%s/bench/ampd-pktgen -q --node-key-file %s --gateway 7:zz -o %s "
                            "2>/dev/null", bd, kf, pc);
  AMP_CHECK_EQ(run_cmd(cmd), 2);
  snprintf(cmd, sizeof cmd, "%s/bench/ampd-pktgen -q --node-key-file %s --gateway 7:%064x "
                            "--wrong-share 0.7 --underpaid 0.7 -o %s 2>/dev/null", bd, kf, 1u, pc);
  AMP_CHECK_EQ(run_cmd(cmd), 2);
  snprintf(cmd, sizeof cmd, "%s/bench/ampd-pktgen --help >/dev/null", bd);
  AMP_CHECK_EQ(run_cmd(cmd), 0);
  /* no replies at all: every expectation but the dropped ones unmet */
  snprintf(cmd, sizeof cmd, "%s/bench/ampd-check -q --expect %s %s 2>/dev/null", bd, ep, pc);
  AMP_CHECK_EQ(run_cmd(cmd), 1);
}

static void check_config_errors(void) {
  amp_gen_cfg_t c;
  amp_gen_t *g;
  char err[200];
  amp_gen_cfg_default(&c);
  AMP_CHECK(amp_gen_new(&g, &c, err, sizeof err) == AMP_ERR_CONFIG); /* no gateway */
  make_cfg(&c, 1);
  c.rate[AMP_GEN_MISSING] = 0.9;
  c.rate[AMP_GEN_EXPIRED] = 0.9;
  AMP_CHECK(amp_gen_new(&g, &c, err, sizeof err) == AMP_ERR_CONFIG); /* rates > 1 */
  make_cfg(&c, 1);
  c.route_len = 3;
  AMP_CHECK(amp_gen_new(&g, &c, err, sizeof err) == AMP_ERR_CONFIG); /* final-hop classes */
  make_cfg(&c, 1);
  c.node_pubkey[0] = 0x05;
  AMP_CHECK(amp_gen_new(&g, &c, err, sizeof err) == AMP_ERR_BAD_KEY);
  make_cfg(&c, 1);
  c.gw[1].id = c.gw[0].id;
  AMP_CHECK(amp_gen_new(&g, &c, err, sizeof err) == AMP_ERR_CONFIG);
  AMP_CHECK(amp_gen_parse_shards(&c, "0", err, sizeof err) == AMP_ERR_CONFIG);
  AMP_CHECK(amp_gen_parse_shards(&c, "5-2", err, sizeof err) == AMP_ERR_CONFIG);
  AMP_CHECK(amp_gen_parse_shards(&c, "2-4", err, sizeof err) == AMP_OK);
  AMP_CHECK_EQ(c.n_shard_dist, 3);
  AMP_CHECK(amp_gen_parse_shards_dist(&c, "1:0", err, sizeof err) == AMP_ERR_CONFIG);
  AMP_CHECK(amp_gen_parse_shards_dist(&c, "1:5,x", err, sizeof err) == AMP_ERR_CONFIG);
  amp_gen_gateway_t gw;
  AMP_CHECK(amp_gen_parse_gateway(&gw, 0, "1:abcd", err, sizeof err) == AMP_ERR_CONFIG);
  AMP_CHECK(amp_gen_parse_gateway(&gw, 4, "0x10:" "0101010101010101010101010101010101010101010101010101010101010101",
                                  err, sizeof err) == AMP_OK);
  AMP_CHECK_EQ(gw.id, 16);
  AMP_CHECK_EQ(gw.ip[3], 5);
  AMP_CHECK_EQ(gw.ip[0], 198);
}

/* Forwards: route_len 3, the node is hop 0 and must forward. */
static void check_forwards(uint64_t seed) {
  amp_gen_cfg_t c;
  make_cfg(&c, seed);
  for (int k = 1; k < AMP_GEN_CLASS_COUNT; k++) c.rate[k] = 0;
  c.rate[AMP_GEN_FLIPPED] = 0.2;
  c.rate[AMP_GEN_REPLAY] = 0.2;
  c.route_len = 3;
  c.payments = 20;
  blobs_t fr = {0};
  amp_gen_htlc_t *xs;
  size_t nx;
  run(&c, &fr, &xs, &nx, NULL, NULL);
  static amp_frame_t f;
  static amp_sphinx_hop_t hop;
  size_t xi = 0, fwd = 0;
  for (size_t i = 1; i < fr.n; i++) {
    MUST(amp_frame_parse(&f, fr.f[i].pkt, fr.f[i].len) == AMP_FRAME_OK);
    for (unsigned r = 0; r < f.count; r++, xi++) {
      const amp_gen_htlc_t *x = &xs[xi];
      amp_msg_add_t m;
      memset(&m, 0, sizeof m);
      MUST(amp_msg_add_decode(&m, f.rec[r].msg, f.rec[r].len) == AMP_OK);
      int rc = amp_sphinx_peel(&hop, node_key, m.payment_hash, 32, m.onion);
      if (x->cls == AMP_GEN_FLIPPED) {
        AMP_CHECK(rc != AMP_OK);
        continue;
      }
      AMP_CHECK_EQ(rc, AMP_OK);
      AMP_CHECK(!hop.is_final);
      AMP_CHECK_EQ(x->n_hops, 3);
      AMP_CHECK_MEM(hop.shared_secret, x->ss[0], 32);
      amp_payload_t pl;
      AMP_CHECK_EQ(amp_payload_parse(&pl, hop.payload, hop.payload_len, NULL), AMP_OK);
      AMP_CHECK_EQ(amp_payload_check_forward(&pl, NULL), AMP_OK);
      AMP_CHECK_EQ(pl.short_channel_id, x->fwd_scid);
      AMP_CHECK_EQ(pl.amt_to_forward, x->fwd_amount_msat);
      AMP_CHECK_EQ(pl.outgoing_cltv_value, x->fwd_cltv);
      AMP_CHECK_EQ(x->amount_msat, x->fwd_amount_msat + c.fwd_fee_msat);
      AMP_CHECK_EQ(x->cltv_expiry, x->fwd_cltv + c.fwd_cltv_delta);
      AMP_CHECK(x->scid != x->fwd_scid);
      if (x->cls == AMP_GEN_GOOD) {
        AMP_CHECK_EQ(x->expect, AMP_GEN_X_FORWARD);
        fwd++;
      }
    }
  }
  AMP_CHECK_EQ(xi, nx);
  AMP_CHECK(fwd > 0);

  /* the checker accepts the forwards a correct node would send */
  amp_check_opts_t o = {.log = stderr};
  amp_check_t *ck = amp_check_new(&o);
  for (size_t g = 0; g < c.n_gw; g++) AMP_CHECK(amp_check_gateway(ck, c.gw[g].id, c.gw[g].key) == 0);
  for (size_t i = 0; i < nx; i++) AMP_CHECK_EQ(amp_check_expect(ck, &xs[i]), AMP_OK);
  AMP_CHECK_EQ(amp_check_expect(ck, &xs[0]), AMP_ERR_EXISTS);
  static uint8_t buf[AMP_FRAME_MAX_LEN];
  static uint8_t onion[AMP_ONION_LEN];
  uint64_t seq = 1;
  for (size_t i = 0; i < nx; i++) {
    const amp_gen_htlc_t *x = &xs[i];
    uint8_t msg[AMP_MSG_ADD_LEN + 16];
    long len;
    if (x->expect == AMP_GEN_X_FORWARD) {
      amp_msg_add_t m;
      memset(&m, 0, sizeof m);
      amp_gen_channel_id(m.channel_id, x->fwd_scid);
      m.id = i;
      m.amount_msat = x->fwd_amount_msat;
      memcpy(m.payment_hash, x->payment_hash, 32);
      m.cltv_expiry = x->fwd_cltv;
      m.onion = onion;
      len = amp_msg_add_encode(msg, sizeof msg, &m);
    } else if (x->expect == AMP_GEN_X_FAIL) {
      uint8_t fm[14], reason[AMP_FAIL_MAX_LEN];
      amp_put_be16(fm, x->code);
      amp_put_be64(fm + 2, x->amount_msat);
      amp_put_be32(fm + 10, HEIGHT);
      long rl = amp_sphinx_fail_create(reason, sizeof reason, x->ss[0], fm, sizeof fm);
      MUST(rl > 0);
      amp_msg_fail_t m;
      memset(&m, 0, sizeof m);
      amp_gen_channel_id(m.channel_id, x->scid);
      m.id = x->htlc_id;
      m.reason = reason;
      m.reason_len = (uint16_t)rl;
      len = amp_msg_fail_encode(msg, sizeof msg, &m);
    } else if (x->expect == AMP_GEN_X_MALFORMED || x->expect == AMP_GEN_X_FAIL_ANY) {
      amp_msg_fail_malformed_t m;
      memset(&m, 0, sizeof m);
      amp_gen_channel_id(m.channel_id, x->scid);
      m.id = x->htlc_id;
      memcpy(m.sha256_of_onion, x->onion_sha256, 32);
      m.failure_code = AMP_FAIL_INVALID_ONION_HMAC;
      len = amp_msg_fail_malformed_encode(msg, sizeof msg, &m);
    } else {
      continue;
    }
    MUST(len > 0);
    const amp_gen_gateway_t *gw = find_gw(&c, x->gateway_id);
    MUST(gw != NULL);
    amp_frame_builder_t b;
    amp_frame_addr_t a;
    memset(&a, 0, sizeof a);
    a.src_port = a.dst_port = AMP_FRAME_UDP_PORT;
    amp_frame_begin(&b, buf, sizeof buf, &a, gw->id, seq++);
    MUST(amp_frame_add(&b, x->expect == AMP_GEN_X_FORWARD ? x->fwd_scid : x->scid, msg,
                              (uint16_t)len) == AMP_OK);
    size_t fl = amp_frame_finish(&b, gw->key);
    amp_check_frame(ck, buf, fl);
  }
  AMP_CHECK_EQ(amp_check_result(ck), 0);
  amp_check_free(ck);
  free(xs);
  blobs_free(&fr);
}

int main(void) {
  uint64_t seed = amp_test_seed();
  MUST(amp_secp_init() == AMP_OK);
  memset(node_key, 0x41, 32);
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/test_gen.XXXXXX", tmp ? tmp : "/tmp");
  MUST(mkdtemp(dir) != NULL);
  char pcap_path[512], expect_path[512];
  snprintf(pcap_path, sizeof pcap_path, "%s/run.pcap", dir);
  snprintf(expect_path, sizeof expect_path, "%s/run.expect", dir);

  amp_gen_cfg_t cfg;
  make_cfg(&cfg, seed);
  blobs_t fr = {0};
  amp_gen_htlc_t *xs;
  size_t nx;
  run(&cfg, &fr, &xs, &nx, pcap_path, expect_path);
  fprintf(stderr, "%zu frames, %zu HTLCs\n", fr.n, nx);
  seen_t *seen = calloc(nx, sizeof *seen);
  MUST(seen != NULL);
  check_pcap_file(pcap_path, &fr);
  check_frames(&cfg, &fr, xs, nx, seen);
  check_amp(&cfg, xs, nx, seen);
  check_ids(xs, nx);
  check_expect_file(expect_path, &cfg, xs, nx);

  /* the same seed gives the same bytes; another seed does not */
  blobs_t fr2 = {0};
  amp_gen_htlc_t *xs2;
  size_t nx2;
  run(&cfg, &fr2, &xs2, &nx2, NULL, NULL);
  AMP_CHECK_EQ(fr2.n, fr.n);
  for (size_t i = 0; i < fr.n && i < fr2.n; i++) {
    AMP_CHECK_EQ(fr2.f[i].len, fr.f[i].len);
    if (fr2.f[i].len == fr.f[i].len) AMP_CHECK(memcmp(fr.f[i].pkt, fr2.f[i].pkt, fr.f[i].len) == 0);
  }
  free(xs2);
  blobs_free(&fr2);
  /* ...whatever the number of threads making payments */
  amp_gen_cfg_t threaded = cfg;
  threaded.threads = 3;
  run(&threaded, &fr2, &xs2, &nx2, NULL, NULL);
  AMP_CHECK_EQ(fr2.n, fr.n);
  for (size_t i = 0; i < fr.n && i < fr2.n; i++) {
    AMP_CHECK_EQ(fr2.f[i].len, fr.f[i].len);
    if (fr2.f[i].len == fr.f[i].len) AMP_CHECK(memcmp(fr.f[i].pkt, fr2.f[i].pkt, fr.f[i].len) == 0);
  }
  free(xs2);
  blobs_free(&fr2);
  amp_gen_cfg_t other = cfg;
  other.seed = seed + 1;
  run(&other, &fr2, &xs2, &nx2, NULL, NULL);
  AMP_CHECK(fr2.n < 2 || fr2.f[1].len != fr.f[1].len ||
            memcmp(fr2.f[1].pkt, fr.f[1].pkt, fr.f[1].len) != 0);
  free(xs2);
  blobs_free(&fr2);

  check_checker(&cfg, xs, nx, expect_path);
  check_latency_known();
  check_latency_gen(&cfg, &fr, xs, nx, expect_path);
  check_latency_program(&cfg, xs, nx, pcap_path, expect_path);
  check_forwards(seed);
  check_config_errors();
  check_programs();

  free(seen);
  free(xs);
  blobs_free(&fr);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (run_cmd(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return amp_test_done();
}
