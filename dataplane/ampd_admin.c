/* ampd_admin.c: the daemon's side of the admin socket (dataplane/admin/):
 * amp_admin_ops_t over the engine, the workers' counters and the ports.
 *
 * Every op runs on the admin server's own thread (or DPDK's telemetry thread),
 * one at a time; never on a worker. Engine admin calls take the engine's
 * admin mutex and wait for their own commits; worker counters are read
 * without locks (a scrape may miss the last few increments). Nothing here
 * returns a secret: node id is the public key; invoices carry no preimage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_log.h>

#include "amp_admin.h"
#include "ampd.h"
#ifdef AMPD_HAVE_TELEMETRY
#include "amp_telemetry.h"
#endif

#ifndef AMPD_VERSION
#define AMPD_VERSION "unknown"
#endif

static uint64_t unix_now(void) { return (uint64_t)time(NULL); }

/* ---- views -------------------------------------------------------------- */

static void invoice_view(amp_admin_invoice_t *v, const amp_store_invoice_t *in) {
  memset(v, 0, sizeof *v);
  v->amp = in->type == AMP_INVOICE_AMP;
  v->placeholder = in->placeholder;
  if (in->state == AMP_INVOICE_SETTLED) v->state = AMP_ADMIN_INV_SETTLED;
  else if (in->state == AMP_INVOICE_CANCELED) v->state = AMP_ADMIN_INV_CANCELLED;
  else if (in->expiry && unix_now() > in->created + in->expiry) v->state = AMP_ADMIN_INV_EXPIRED;
  else v->state = AMP_ADMIN_INV_OPEN;
  memcpy(v->payment_addr, in->payment_addr, 32);
  if (!v->amp) memcpy(v->payment_hash, in->payment_hash, 32);
  v->value_msat = in->value_msat;
  v->amt_paid_msat = in->amt_paid_msat;
  v->created = in->created;
  v->expiry = (uint32_t)(in->expiry > UINT32_MAX ? UINT32_MAX : in->expiry);
  v->cltv_delta = in->cltv_delta;
  v->memo = in->memo[0] ? in->memo : NULL;
  v->add_index = in->add_index;
}

static void set_view(amp_admin_set_t *v, const amp_set_info_t *in) {
  memset(v, 0, sizeof *v);
  v->amp = in->is_amp;
  if (in->is_amp) memcpy(v->set_id, in->set_id, 32);
  else memcpy(v->payment_hash, in->set_id, 32);
  memcpy(v->payment_addr, in->payment_addr, 32);
  switch (in->state) {
  case AMP_SET_SETTLING: v->state = AMP_ADMIN_SET_SETTLING; break;
  case AMP_SET_SETTLED: v->state = AMP_ADMIN_SET_SETTLED; break;
  case AMP_SET_CANCELLED: v->state = AMP_ADMIN_SET_CANCELLED; break;
  default: v->state = AMP_ADMIN_SET_HELD; break;
  }
  v->index = in->settle_index;
  if (in->state == AMP_SET_SETTLED) v->settle_index = in->settle_index;
  v->total_msat = in->total_msat;
  v->amt_msat = in->amount_msat;
}

/* A resolved set as its settle-log record has it: time and HTLCs (amount,
 * child index, cltv; never the preimage). */
typedef struct {
  uint64_t want;                 /* settle index */
  int found;
  uint64_t time;                 /* unix seconds */
  uint64_t total;                /* sum of the HTLCs */
  amp_admin_htlc_t *htlcs;       /* malloc'd (NULL when there are none) */
  size_t n;
  int with_htlcs;
  int err;
} logset_t;

static int logset_cb(void *ctx, const amp_store_set_t *st) {
  logset_t *l = ctx;
  if (st->settle_index != l->want) return 1;
  l->found = 1;
  l->time = st->time_ns / 1000000000ULL;
  for (uint32_t i = 0; i < st->n_htlcs; i++) l->total += st->htlcs[i].amount_msat;
  if (!l->with_htlcs || !st->n_htlcs) return 1;
  l->htlcs = calloc(st->n_htlcs, sizeof *l->htlcs);
  if (!l->htlcs) {
    l->err = AMP_ERR_NOMEM;
    return 1;
  }
  for (uint32_t i = 0; i < st->n_htlcs; i++) {
    const amp_store_htlc_t *h = &st->htlcs[i];
    l->htlcs[i] = (amp_admin_htlc_t){h->scid, h->htlc_id, h->amount_msat, h->child_index,
                                     h->cltv_expiry, 0, 0};
  }
  l->n = st->n_htlcs;
  return 1;
}

/* Completes v (a settled or cancelled set) from the store's settle log:
 * its time and, with_htlcs, its HTLCs (v->htlcs then points into *l; free
 * l->htlcs after use). */
static int logset_fill(ampd_app_t *app, amp_admin_set_t *v, logset_t *l, int with_htlcs) {
  memset(l, 0, sizeof *l);
  if (!v->index) return AMP_OK;
  l->want = v->index;
  l->with_htlcs = with_htlcs;
  int rc = amp_store_set_foreach(app->store, v->index, logset_cb, l);
  if (rc == AMP_OK) rc = l->err;
  if (rc != AMP_OK || !l->found) return rc;
  v->time = l->time;
  v->htlcs = l->htlcs;
  v->n_htlcs = l->n;
  if (!v->amt_msat) v->amt_msat = l->total;
  if (!v->total_msat && v->state == AMP_ADMIN_SET_SETTLED) v->total_msat = l->total;
  return AMP_OK;
}

/* ---- ops ---------------------------------------------------------------- */

static int op_getinfo(void *ctx, amp_admin_info_t *out, amp_admin_reply_t *r) {
  ampd_app_t *app = ctx;
  (void)r;
  ampd_log(AMP_LOG_DEBUG, "admin: getinfo");
  snprintf(out->version, sizeof out->version, "%s", AMPD_VERSION);
  out->has_node_id = 1;
  memcpy(out->node_id, app->node_id, 33);
  out->block_height = amp_engine_height(app->engine);
  out->uptime_s = (amp_mono_ns() - app->start_ns) / 1000000000ULL;
  out->workers = app->n_workers;
  out->n_ports = app->n_ports > AMP_ADMIN_MAX_PORTS ? AMP_ADMIN_MAX_PORTS : app->n_ports;
  for (unsigned i = 0; i < out->n_ports; i++) {
    amp_admin_port_t *p = &out->ports[i];
    const ampd_port_t *ap = &app->ports[i];
    p->port_id = ap->port_id;
    if (rte_eth_dev_get_name_by_port(ap->port_id, p->name) != 0) p->name[0] = 0;
    memcpy(p->mac, ap->mac, 6);
    p->rx_queues = ap->n_rxq;
    p->tx_queues = ap->n_txq;
    struct rte_eth_link link;
    p->link_up = rte_eth_link_get_nowait(ap->port_id, &link) == 0 && link.link_status;
  }
  snprintf(out->data_dir, sizeof out->data_dir, "%s", app->cfg.data_dir);
  return AMP_OK;
}

/* Counter names of the frame drop reasons, as Prometheus label values. */
static const char *const DROP_LABEL[AMP_FRAME_DROP_COUNT_] = {
  "ok",
#define AMPD_DROP_LABEL_(n, s) #n,
  AMP_FRAME_DROP_LIST(AMPD_DROP_LABEL_)
#undef AMPD_DROP_LABEL_
};

static int op_stats(void *ctx, amp_admin_reply_t *r) {
  ampd_app_t *app = ctx;
  ampd_log(AMP_LOG_DEBUG, "admin: stats");
  unsigned nw = app->n_workers;
  enum { N_DP = 0
#define AMPD_CNT_ONE_(n, d) + 1
    AMPD_COUNTERS(AMPD_CNT_ONE_)
#undef AMPD_CNT_ONE_
  };
  size_t n_eng = 0;
  while (amp_engine_counter_name(n_eng, NULL)) n_eng++;
  enum { N_PORT_CNT = 7 };
  unsigned np = app->n_ports;
  size_t max = N_DP + AMP_FRAME_DROP_COUNT_ + n_eng + 10 + (size_t)N_PORT_CNT * np;
  amp_metrics_counter_t *c = calloc(max, sizeof *c);
  char(*pname)[RTE_ETH_NAME_MAX_LEN] = calloc(np ? np : 1, sizeof *pname);
  uint64_t(*pval)[N_PORT_CNT] = calloc(np ? np : 1, sizeof *pval);
  uint64_t *pw = calloc((N_DP + AMP_FRAME_DROP_COUNT_ + n_eng + 1) * (size_t)nw, sizeof *pw);
  amp_engine_stats_t *ew = calloc(nw + 1, sizeof *ew);
  char(*labels)[48] = calloc(AMP_FRAME_DROP_COUNT_, sizeof *labels);
  if (!c || !pw || !labels || !ew || !pname || !pval) {
    free(c);
    free(pw);
    free(labels);
    free(ew);
    free(pname);
    free(pval);
    return AMP_ERR_NOMEM;
  }
  size_t n = 0;
  /* The dataplane's own counters, per worker. */
  size_t k = 0;
#define AMPD_CNT_VIEW_(name_, desc_)                                           \
  do {                                                                         \
    uint64_t *v = pw + k * nw, t = 0;                                          \
    for (unsigned w = 0; w < nw; w++) t += v[w] = app->workers[w].cnt.name_;   \
    c[n++] = (amp_metrics_counter_t){"dp_" #name_, desc_, NULL, NULL, v, t};   \
    k++;                                                                       \
  } while (0);
  AMPD_COUNTERS(AMPD_CNT_VIEW_)
#undef AMPD_CNT_VIEW_
  for (int d = 1; d < AMP_FRAME_DROP_COUNT_; d++, k++) {
    uint64_t *v = pw + k * nw, t = 0;
    for (unsigned w = 0; w < nw; w++) t += v[w] = app->workers[w].cnt.drop[d];
    size_t L = 0;
    for (const char *s = DROP_LABEL[d]; *s && L < 47; s++)
      labels[d][L++] = (char)(*s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s);
    labels[d][L] = 0;
    c[n++] = (amp_metrics_counter_t){"frames_dropped", "fabric frames dropped, by reason",
                                     "reason", labels[d], v, t};
  }
  /* The engine's counters, per worker; the admin path's own (none count
   * today) go into the total, and then no per-worker series is shown. */
  for (unsigned w = 0; w <= nw; w++)
    if (amp_engine_worker_stats(app->engine, w, &ew[w]) != AMP_OK) memset(&ew[w], 0, sizeof ew[w]);
  amp_engine_stats_t es = ew[0];
  for (size_t i = 0; i < n_eng; i++, k++) {
    const char *desc = NULL;
    const char *name = amp_engine_counter_name(i, &desc);
    uint64_t *v = pw + k * nw, t = 0;
    for (unsigned w = 0; w < nw; w++) t += v[w] = ((const uint64_t *)(const void *)&ew[w])[i];
    uint64_t adm = ((const uint64_t *)(const void *)&ew[nw])[i];
    if (!strcmp(name, "held")) continue;   /* a gauge below would share the name */
    c[n++] = (amp_metrics_counter_t){name, desc, NULL, NULL, adm ? NULL : v, t + adm};
  }
  amp_store_stats_t ss;
  amp_store_stats(app->store, &ss);
  c[n++] = (amp_metrics_counter_t){"store_commits", "LMDB commits", NULL, NULL, NULL, ss.commits};
  c[n++] = (amp_metrics_counter_t){"store_intents", "intents committed", NULL, NULL, NULL,
                                   ss.intents};
  c[n++] = (amp_metrics_counter_t){"store_commit_errors", "failed commits", NULL, NULL, NULL,
                                   ss.commit_errors};
  c[n++] = (amp_metrics_counter_t){"store_writer_sleeps",
                                   "store writer idle past its naps, asleep on its futex", NULL,
                                   NULL, NULL, ss.writer_sleeps};
  c[n++] = (amp_metrics_counter_t){"store_wakes", "submits that woke the store writer (a syscall)",
                                   NULL, NULL, NULL, ss.wakes};
  c[n++] = (amp_metrics_counter_t){"store_index_rehashes",
                                   "store index tables doubled past their sizing (a writer pause)",
                                   NULL, NULL, NULL, ss.index_rehashes};
  /* The ports' counters, labelled by port name: DPDK's (rte_eth_stats) and
   * the frames an af_packet port's kernel ring dropped before the PMD, which
   * no DPDK counter of that driver shows (ampd_port_kernel_drops). One
   * family after another, each with every port. */
  static const char *const port_cnt[N_PORT_CNT][2] = {
      {"port_rx_packets", "frames the port received"},
      {"port_rx_missed", "frames the port's rx queues had no room for (imissed)"},
      {"port_rx_kernel_drops", "frames an af_packet port's kernel rx ring dropped before ampd"},
      {"port_rx_errors", "frames the port received in error"},
      {"port_rx_nombuf", "frames lost for want of an mbuf"},
      {"port_tx_packets", "frames the port sent"},
      {"port_tx_errors", "frames the port failed to send"}};
  for (unsigned pi = 0; pi < np; pi++) {
    uint16_t id = app->ports[pi].port_id;
    struct rte_eth_stats e;
    if (rte_eth_dev_get_name_by_port(id, pname[pi]) != 0)
      snprintf(pname[pi], sizeof pname[pi], "port%u", id);
    if (rte_eth_stats_get(id, &e) != 0) memset(&e, 0, sizeof e);
    uint64_t v[N_PORT_CNT] = {e.ipackets, e.imissed, ampd_port_kernel_drops(app, pi),
                              e.ierrors, e.rx_nombuf, e.opackets, e.oerrors};
    memcpy(pval[pi], v, sizeof v);
  }
  for (int kind = 0; kind < N_PORT_CNT; kind++)
    for (unsigned pi = 0; pi < np; pi++)
      c[n++] = (amp_metrics_counter_t){port_cnt[kind][0], port_cnt[kind][1], "port", pname[pi],
                                       NULL, pval[pi][kind]};
  /* Latency histograms (amp_metrics_lat_t, 10 us .. 10 s), built here from
   * the raw ones. Settlement: every worker's lat_fulfill (ampd.h: TSC cycles
   * from the rx burst of an update_add_htlc to its fulfill entering a reply
   * frame), merged. The worker writes it with plain stores and no lock; this
   * thread reads it with relaxed 64-bit loads (never torn on the targets),
   * so a scrape racing a fulfill may miss it or see its bucket without the
   * sum; nothing is added to the hot path. Answers the worker could not
   * time (ampd.h: no rx TSC came back with them) are not in it but counted
   * in latency_samples_lost (fulfills and fails), so
   * answers_fulfill - latency_samples_lost <= _count <= answers_fulfill.
   * Commit: the store writer's commit-duration histogram (write + sync of a
   * group), with sync_ns_total as its sum. */
  {
    uint64_t *v = pw + k * nw, t = 0;
    for (unsigned w = 0; w < nw; w++)
      t += v[w] = __atomic_load_n(&app->workers[w].lat_unmatched, __ATOMIC_RELAXED);
    c[n++] = (amp_metrics_counter_t){"latency_samples_lost",
                                     "answers left out of settlement_latency_seconds (no rx time)",
                                     NULL, NULL, v, t};
    k++;
  }
  amp_metrics_lat_t lat_settle, lat_commit;
  memset(&lat_settle, 0, sizeof lat_settle);
  memset(&lat_commit, 0, sizeof lat_commit);
  amp_metrics_hist_t h[2];
  size_t nh = 0;
  uint64_t *snap = malloc(sizeof(uint64_t) *
                          (AMPD_LAT_BUCKETS > AMP_STORE_COMMIT_HIST_BUCKETS
                               ? AMPD_LAT_BUCKETS : AMP_STORE_COMMIT_HIST_BUCKETS));
  uint64_t hz = rte_get_tsc_hz();
  if (snap && hz) {
    for (unsigned w = 0; w < nw; w++) {
      const ampd_lat_hist_t *lh = &app->workers[w].lat_fulfill;
      for (unsigned b = 0; b < AMPD_LAT_BUCKETS; b++)
        snap[b] = __atomic_load_n(&lh->n[b], __ATOMIC_RELAXED);
      amp_metrics_lat_add_log2(&lat_settle, snap, AMPD_LAT_BUCKETS, AMPD_LAT_SUB_BITS,
                               1e9 / (double)hz, __atomic_load_n(&lh->sum, __ATOMIC_RELAXED));
    }
    h[nh++] = (amp_metrics_hist_t){"settlement_latency_seconds",
                                   "HTLC rx to its fulfill in a reply frame", &lat_settle};
  }
  if (snap) {
    amp_store_commit_hist(app->store, snap);
    amp_metrics_lat_add_log2(&lat_commit, snap, AMP_STORE_COMMIT_HIST_BUCKETS,
                             AMP_STORE_COMMIT_HIST_SUB_BITS, 1.0, ss.sync_ns_total);
    h[nh++] = (amp_metrics_hist_t){"commit_latency_seconds",
                                   "store group commit, write and sync", &lat_commit};
  }
  free(snap);
  amp_metrics_gauge_t g[] = {
    {"held_htlcs", "HTLCs held now, waiting for their set", NULL, NULL, (double)es.held_now},
    {"block_height", "block height in use", NULL, NULL, (double)es.height},
    {"invoices_in_memory", "invoices in memory (spontaneous placeholders only while in use)",
     NULL, NULL, (double)es.invoices_now},
    {"workers", "worker lcores", NULL, NULL, (double)nw},
  };
  amp_metrics_stats_t st = {nw, c, n, g, sizeof g / sizeof g[0], h, nh};
  int rc = amp_admin_reply_stats(r, &st);
  free(c);
  free(pw);
  free(labels);
  free(ew);
  free(pname);
  free(pval);
  return rc;
}

static int op_addinvoice(void *ctx, const amp_admin_addinvoice_t *in,
                         amp_admin_addinvoice_res_t *out, amp_admin_reply_t *r) {
  ampd_app_t *app = ctx;
  amp_store_invoice_t probe;
  if (strlen(in->memo) >= sizeof probe.memo) {
    amp_admin_reply_errorf(r, "memo: ampd keeps at most %zu bytes", sizeof probe.memo - 1);
    return AMP_ERR_RANGE;
  }
  amp_invoice_add_t req;
  memset(&req, 0, sizeof req);
  req.amp = in->amp;
  req.value_msat = in->amt_msat;
  req.expiry_s = in->expiry;
  req.cltv_delta = in->cltv_delta;
  req.preimage = in->has_preimage ? in->preimage : NULL;
  req.memo = in->memo;
  amp_store_invoice_t inv;
  int rc = amp_engine_invoice_add(app->engine, &req, &inv);
  if (rc == AMP_OK) {
    memcpy(out->payment_addr, inv.payment_addr, 32);
    if (!in->amp) memcpy(out->payment_hash, inv.payment_hash, 32);
    out->add_index = inv.add_index;
    out->created = inv.created;
    out->expiry = (uint32_t)inv.expiry;
    out->state = AMP_ADMIN_INV_OPEN;
    ampd_log(AMP_LOG_INFO, "admin: %s invoice added (add_index %" PRIu64 ")", in->amp ? "AMP" : "MPP",
             inv.add_index);
  }
  amp_wipe(&inv, sizeof inv);
  return rc;
}

static int lookup(ampd_app_t *app, const amp_admin_invoice_ref_t *ref, amp_store_invoice_t *inv) {
  return ref->by_hash ? amp_engine_invoice_lookup_hash(app->engine, ref->key, inv)
                      : amp_engine_invoice_lookup_addr(app->engine, ref->key, inv);
}

static int op_lookupinvoice(void *ctx, const amp_admin_invoice_ref_t *ref, amp_admin_reply_t *r) {
  ampd_app_t *app = ctx;
  amp_store_invoice_t inv;
  int rc = lookup(app, ref, &inv);
  if (rc != AMP_OK) return rc;
  amp_admin_invoice_t v;
  invoice_view(&v, &inv);
  /* Its sets: settled and cancelled ones with index, amount, time and
   * HTLCs (from the settle log), live ones with what they hold. */
  enum { MAX_SETS = 1024 };
  amp_set_info_t *si = malloc(MAX_SETS * sizeof *si);
  amp_admin_set_t *sv = calloc(MAX_SETS, sizeof *sv);
  logset_t *ls = calloc(MAX_SETS, sizeof *ls);
  size_t n = 0;
  if (!si || !sv || !ls) rc = AMP_ERR_NOMEM;
  else n = amp_engine_invoice_sets(app->engine, inv.payment_addr, si, MAX_SETS);
  for (size_t i = 0; i < n && rc == AMP_OK; i++) {
    set_view(&sv[i], &si[i]);
    rc = logset_fill(app, &sv[i], &ls[i], 1);
    if (inv.type == AMP_INVOICE_MPP && sv[i].state == AMP_ADMIN_SET_SETTLED)
      v.settle_index = sv[i].settle_index;
  }
  if (rc == AMP_OK) {
    v.sets = sv;
    v.n_sets = n;
    rc = amp_admin_reply_invoice(r, &v);
  }
  for (size_t i = 0; ls && i < n; i++) free(ls[i].htlcs);
  free(si);
  free(sv);
  free(ls);
  amp_wipe(&inv, sizeof inv);
  return rc;
}

static int op_listinvoices(void *ctx, const amp_admin_list_invoices_t *q, amp_admin_reply_t *r) {
  ampd_app_t *app = ctx;
  if (!q->max) return AMP_OK;
  amp_store_invoice_t *page = malloc(q->max * sizeof *page);
  if (!page) return AMP_ERR_NOMEM;
  /* one pass over the store's invoices (the engine keeps the max nearest the
   * offset); reversed: the newest below index_offset */
  unsigned flags = (q->reversed ? AMP_INVOICE_LIST_REVERSED : 0u) |
                   (q->pending_only ? AMP_INVOICE_LIST_OPEN : 0u);
  size_t got = amp_engine_invoice_list(app->engine, q->index_offset, flags, page, q->max);
  int rc = AMP_OK;
  for (size_t i = 0; i < got && rc == AMP_OK; i++) {
    amp_admin_invoice_t v;
    invoice_view(&v, &page[i]);
    rc = amp_admin_reply_invoice(r, &v);
  }
  if (rc == AMP_ERR_FULL) rc = AMP_OK;
  amp_wipe(page, q->max * sizeof *page);
  free(page);
  return rc;
}

static int op_cancelinvoice(void *ctx, const amp_admin_invoice_ref_t *ref, amp_admin_reply_t *r) {
  ampd_app_t *app = ctx;
  (void)r;
  amp_store_invoice_t inv;
  int rc = lookup(app, ref, &inv);
  if (rc == AMP_OK) rc = amp_engine_invoice_cancel(app->engine, inv.payment_addr);
  if (rc == AMP_OK)
    ampd_log(AMP_LOG_INFO, "admin: invoice cancelled (add_index %" PRIu64 ")", inv.add_index);
  amp_wipe(&inv, sizeof inv);
  return rc;
}

static int op_lookupset(void *ctx, const uint8_t set_id[32], amp_admin_reply_t *r) {
  ampd_app_t *app = ctx;
  amp_set_info_t info;
  int rc = amp_engine_set_lookup(app->engine, set_id, &info);
  if (rc != AMP_OK) return rc;
  amp_admin_set_t v;
  set_view(&v, &info);
  logset_t l;
  memset(&l, 0, sizeof l);
  amp_admin_htlc_t *x = NULL;
  if (v.index) {
    rc = logset_fill(app, &v, &l, 1);
  } else {
    /* held: its HTLCs from the held list */
    enum { PAGE = 4096 };
    amp_held_info_t *h = malloc(PAGE * sizeof *h);
    x = malloc(PAGE * sizeof *x);
    if (!h || !x) rc = AMP_ERR_NOMEM;
    size_t n = rc == AMP_OK ? amp_engine_held_list(app->engine, 0, h, PAGE) : 0;
    uint64_t now_ms = amp_mono_ns() / 1000000ULL, hold = app->cfg.hold_timeout_ms, m = 0;
    for (size_t j = 0; j < n; j++) {
      if (memcmp(h[j].set_id, set_id, 32) != 0) continue;
      uint64_t left = h[j].deadline_ms > now_ms ? h[j].deadline_ms - now_ms : 0;
      x[m++] = (amp_admin_htlc_t){h[j].scid, h[j].htlc_id, h[j].amount_msat, h[j].child_index,
                                  h[j].cltv_expiry, hold > left ? hold - left : 0, left};
    }
    v.htlcs = x;
    v.n_htlcs = m;
    free(h);
  }
  if (rc == AMP_OK) rc = amp_admin_reply_set(r, &v);
  free(l.htlcs);
  free(x);
  return rc;
}

static int cmp_index_up(const void *a, const void *b) {
  const amp_set_info_t *x = a, *y = b;
  return x->settle_index < y->settle_index ? -1 : x->settle_index > y->settle_index;
}
static int cmp_index_down(const void *a, const void *b) { return cmp_index_up(b, a); }

/* The engine lists sets in table order and the server takes the first max it
 * is given, so the op keeps the max best by index itself (a buffer of 2 max,
 * sorted and cut whenever it fills: O(sets log max)) and emits them in order. */
static int op_listsets(void *ctx, const amp_admin_list_sets_t *q, amp_admin_reply_t *r) {
  ampd_app_t *app = ctx;
  enum { PAGE = 512 };
  size_t keep = q->max ? q->max : 1, cap = 2 * keep, n = 0;
  amp_set_info_t *page = malloc(PAGE * sizeof *page);
  amp_set_info_t *best = malloc(cap * sizeof *best);
  if (!page || !best) {
    free(page);
    free(best);
    return AMP_ERR_NOMEM;
  }
  int (*cmp)(const void *, const void *) = q->reversed ? cmp_index_down : cmp_index_up;
  for (size_t skip = 0;;) {
    size_t got = amp_engine_set_list(app->engine, skip, page, PAGE);
    for (size_t i = 0; i < got; i++) {
      const amp_set_info_t *s = &page[i];
      if (s->state != AMP_SET_SETTLED && s->state != AMP_SET_CANCELLED) continue;
      if (q->state == AMP_ADMIN_SET_SETTLED && s->state != AMP_SET_SETTLED) continue;
      if (q->state == AMP_ADMIN_SET_CANCELLED && s->state != AMP_SET_CANCELLED) continue;
      if (!q->reversed && s->settle_index <= q->index_offset) continue;
      if (q->reversed && q->index_offset && s->settle_index >= q->index_offset) continue;
      if (n == cap) {
        qsort(best, n, sizeof *best, cmp);
        n = keep;
      }
      best[n++] = *s;
    }
    if (got < PAGE) break;
    skip += got;
  }
  qsort(best, n, sizeof *best, cmp);
  int rc = AMP_OK;
  for (size_t i = 0; i < n && i < keep && rc == AMP_OK; i++) {
    amp_admin_set_t v;
    set_view(&v, &best[i]);
    logset_t l;
    rc = logset_fill(app, &v, &l, 0);   /* its time */
    if (rc == AMP_OK) rc = amp_admin_reply_set(r, &v);
  }
  free(page);
  free(best);
  return rc == AMP_ERR_FULL ? AMP_OK : rc;
}

static int op_listheld(void *ctx, amp_admin_reply_t *r) {
  ampd_app_t *app = ctx;
  enum { PAGE = 4096 };
  amp_held_info_t *h = malloc(PAGE * sizeof *h);
  amp_admin_htlc_t *x = malloc(PAGE * sizeof *x);
  if (!h || !x) {
    free(h);
    free(x);
    return AMP_ERR_NOMEM;
  }
  size_t n = amp_engine_held_list(app->engine, 0, h, PAGE);
  uint64_t now_ms = amp_mono_ns() / 1000000ULL;
  uint64_t hold = app->cfg.hold_timeout_ms;
  int rc = AMP_OK;
  /* Group by set_id: each set once, with its HTLCs. */
  uint8_t *done = calloc(n ? n : 1, 1);
  if (!done) rc = AMP_ERR_NOMEM;
  for (size_t i = 0; i < n && rc == AMP_OK; i++) {
    if (done[i]) continue;
    size_t m = 0;
    uint64_t amt = 0;
    for (size_t j = i; j < n; j++) {
      if (done[j] || memcmp(h[j].set_id, h[i].set_id, 32) != 0) continue;
      done[j] = 1;
      uint64_t left = h[j].deadline_ms > now_ms ? h[j].deadline_ms - now_ms : 0;
      x[m] = (amp_admin_htlc_t){h[j].scid, h[j].htlc_id, h[j].amount_msat, h[j].child_index,
                                h[j].cltv_expiry, hold > left ? hold - left : 0, left};
      amt += h[j].amount_msat;
      m++;
    }
    amp_set_info_t info;
    amp_admin_set_t v;
    if (amp_engine_set_lookup(app->engine, h[i].set_id, &info) == AMP_OK) {
      set_view(&v, &info);
    } else {
      memset(&v, 0, sizeof v);
      v.amp = 1;
      memcpy(v.set_id, h[i].set_id, 32);
    }
    v.state = AMP_ADMIN_SET_HELD;
    v.amt_msat = amt;
    v.htlcs = x;
    v.n_htlcs = m;
    rc = amp_admin_reply_set(r, &v);
  }
  free(done);
  free(h);
  free(x);
  return rc == AMP_ERR_FULL ? AMP_OK : rc;
}

static int op_settip(void *ctx, uint32_t height, amp_admin_reply_t *r) {
  ampd_app_t *app = ctx;
  (void)r;
  amp_engine_set_height(app->engine, height);
  ampd_log(AMPD_LOG_NOTICE, "admin: block height set to %u", height);
  return AMP_OK;
}

static int op_setloglevel(void *ctx, int level, amp_admin_reply_t *r) {
  ampd_app_t *app = ctx;
  int ours = level <= AMP_ADMIN_LOG_ERR ? AMP_LOG_ERROR
           : level == AMP_ADMIN_LOG_WARNING ? AMP_LOG_WARN
           : level <= AMP_ADMIN_LOG_INFO ? AMP_LOG_INFO : AMP_LOG_DEBUG;
  /* The ampd log type takes the exact level (notice, crit... too); the
   * config keeps the nearest of its own four. */
  int type = rte_log_register("ampd");   /* the existing type */
  if (type < 0 || rte_log_set_level((uint32_t)type, (uint32_t)level) != 0) {
    amp_admin_reply_errorf(r, "level: DPDK refused log level %d for the ampd log type", level);
    return AMP_ERR_STATE;
  }
  app->cfg.log_level = (uint8_t)ours;
  ampd_log_level = ours;
  ampd_log(AMPD_LOG_NOTICE, "admin: log level %s", amp_admin_log_level_str(level));
  return AMP_OK;
}

static int op_getconfig(void *ctx, amp_admin_reply_t *r) {
  ampd_app_t *app = ctx;
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  if (!m) return AMP_ERR_NOMEM;
  amp_config_dump(m, &app->cfg);   /* keys show as "(set)" */
  fclose(m);
  int rc = AMP_OK;
  char *save = NULL;
  for (char *l = strtok_r(buf, "\n", &save); l && rc == AMP_OK; l = strtok_r(NULL, "\n", &save)) {
    char *eq = strstr(l, " = ");
    if (!eq) continue;
    *eq = 0;
    char key[96];
    if (!strncmp(l, "[gateway ", 9)) {   /* "[gateway NAME] id = ..." */
      snprintf(key, sizeof key, "gateway.%.*s", (int)strcspn(l + 9, "]"), l + 9);
      rc = amp_admin_reply_config_str(r, key, l + strcspn(l, "]") + 2);
      continue;
    }
    rc = amp_admin_reply_config_str(r, l, eq + 3);
  }
  free(buf);
  return rc;
}

static int op_stop(void *ctx, amp_admin_reply_t *r) {
  ampd_app_t *app = ctx;
  (void)r;
  atomic_store(&app->stop_req, 1);
  return AMP_OK;
}

static const amp_admin_ops_t OPS = {
  .getinfo = op_getinfo,
  .stats = op_stats,
  .addinvoice = op_addinvoice,
  .lookupinvoice = op_lookupinvoice,
  .listinvoices = op_listinvoices,
  .cancelinvoice = op_cancelinvoice,
  .lookupset = op_lookupset,
  .listsets = op_listsets,
  .listheld = op_listheld,
  .settip = op_settip,
  .setloglevel = op_setloglevel,
  .getconfig = op_getconfig,
  .stop = op_stop,
};

static void admin_log(void *ctx, int level, const char *msg) {
  (void)ctx;
  ampd_log(level <= AMP_ADMIN_LOG_ERR ? AMP_LOG_ERROR
           : level == AMP_ADMIN_LOG_WARNING ? AMP_LOG_WARN : AMP_LOG_INFO, "admin: %s", msg);
}

int ampd_admin_start(ampd_app_t *app) {
  const amp_config_t *cfg = &app->cfg;
  if (!strcmp(cfg->admin_socket, "none")) {
    if (cfg->metrics_port)
      ampd_log(AMP_LOG_WARN, "metrics-port is served by the admin server: off with"
               " admin-socket = none");
    return 0;
  }
  amp_admin_cfg_t ac;
  memset(&ac, 0, sizeof ac);
  ac.data_dir = cfg->data_dir;
  ac.socket_path = cfg->admin_socket;
  ac.metrics_port = cfg->metrics_port;
  ac.metrics_addr = cfg->metrics_addr;
  ac.log = admin_log;
  amp_admin_t *a = amp_admin_new(&ac, &OPS, app);
  if (!a) {
    ampd_log(AMP_LOG_ERROR, "admin socket: %s", amp_admin_error());
    return -1;
  }
  app->admin = a;
#ifdef AMPD_HAVE_TELEMETRY
  if (amp_admin_telemetry_register(a) != 0)
    ampd_log(AMP_LOG_WARN, "DPDK telemetry: the /ampd commands could not be registered");
#endif
  ampd_log(AMP_LOG_INFO, "admin socket %s%s", amp_admin_socket_path(a),
           cfg->metrics_port ? ", metrics over HTTP" : "");
  return 0;
}

void ampd_admin_stop(ampd_app_t *app) {
  if (!app->admin) return;
#ifdef AMPD_HAVE_TELEMETRY
  amp_admin_telemetry_unregister();
#endif
  amp_admin_delete(app->admin);
  app->admin = NULL;
}
