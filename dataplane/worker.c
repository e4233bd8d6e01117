/* worker.c: the worker lcore's run-to-completion loop.
 *
 *   loop:
 *     every ~100 us (TSC): drain the partial tx buffers
 *     for each of its rx queues: rx burst of 32
 *       frame: parse, authenticate, anti-replay      (per frame, at the edge)
 *       records -> one amp_worker_process per burst  (the engine peels in batch)
 *     amp_worker_poll: timers, commits done -> answers out through the sink
 *     close the reply frames opened during this iteration -> tx buffers
 *
 * Answers go to the gateway that sent the HTLC: each gateway has at most one
 * open reply frame per worker, so several small answers share a frame (and
 * one seq). Nothing here blocks or allocates except mbufs from the pool.
 * Cost per frame before the engine: parse ~50 ns, HMAC ~0.45 us for 1.5 kB
 * (a burst's frames sixteen at a time on AVX-512; ~0.55 us in SHA-NI pairs,
 * ~0.75 us alone), window ~20 ns under an uncontended lock.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_pause.h>

#include "amp_msg.h"
#include "ampd.h"

/* ---- tx ------------------------------------------------------------------ */

static void tx_lock(ampd_port_t *p, uint16_t q) {
  if (p->txq_shared) rte_spinlock_lock(&p->txq_lock[q]);
}
static void tx_unlock(ampd_port_t *p, uint16_t q) {
  if (p->txq_shared) rte_spinlock_unlock(&p->txq_lock[q]);
}

/* Hands a finished frame to the worker's tx buffer for its port. */
static void tx_frame(ampd_worker_t *w, uint16_t pi, struct rte_mbuf *m) {
  ampd_port_t *p = &w->app->ports[pi];
  ampd_txq_t *t = &w->txq[pi];
  w->cnt.tx_frames++;
  w->cnt.tx_bytes += m->pkt_len;
  tx_lock(p, t->queue);
  rte_eth_tx_buffer(p->port_id, t->queue, t->buf, m);
  tx_unlock(p, t->queue);
}

static void tx_drain(ampd_worker_t *w) {
  for (unsigned pi = 0; pi < w->app->n_ports; pi++) {
    ampd_port_t *p = &w->app->ports[pi];
    ampd_txq_t *t = &w->txq[pi];
    if (!t->buf || !t->buf->length) continue;
    tx_lock(p, t->queue);
    rte_eth_tx_buffer_flush(p->port_id, t->queue, t->buf);
    tx_unlock(p, t->queue);
  }
}

/* Finishes gateway gi's open frame (tag, lengths) and queues it for tx. */
static void frame_close(ampd_worker_t *w, int gi) {
  ampd_open_t *o = &w->open[gi];
  if (!o->m) return;
  size_t len = amp_frame_finish_hmac(&o->b, &w->app->gateways[gi].kctx);
  struct rte_mbuf *m = o->m;
  o->m = NULL;
  if (len == 0) {   /* cannot happen: begin checked the capacity */
    rte_pktmbuf_free(m);
    return;
  }
  m->data_len = (uint16_t)len;
  m->pkt_len = (uint32_t)len;
  tx_frame(w, o->port, m);
}

static void frames_close_all(ampd_worker_t *w) {
  for (uint16_t k = 0; k < w->n_open; k++) frame_close(w, w->open_list[k]);
  w->n_open = 0;
}

/* Opens a reply frame to gateway gi. Addresses: the swap of its last good
 * frame's (so a reply goes back the way the HTLC came), or, before ampd has
 * heard from it, the configured ones. Returns 0 or -1 (no mbuf). */
static int frame_open(ampd_worker_t *w, int gi) {
  ampd_app_t *app = w->app;
  ampd_gateway_t *g = &app->gateways[gi];
  ampd_open_t *o = &w->open[gi];
  struct rte_mbuf *m = rte_pktmbuf_alloc(app->pool);
  if (!m) return -1;
  amp_frame_addr_t a;
  uint16_t pi = 0;
  rte_spinlock_lock(&g->lock);
  int learned = g->learned;
  if (learned) {
    amp_frame_addr_reply(&a, &g->peer);
    pi = g->peer_port;
  }
  rte_spinlock_unlock(&g->lock);
  if (!learned) {
    const amp_config_gateway_t *c = g->cfg;
    memset(&a, 0, sizeof a);
    if (c->has_mac) memcpy(a.dst_mac, c->mac, 6);
    else memset(a.dst_mac, 0xff, 6);
    if (c->has_ipv4) memcpy(a.dst_ip, c->ipv4, 4);
    if (app->cfg.has_ipv4) memcpy(a.src_ip, app->cfg.ipv4, 4);
    memcpy(a.src_mac, app->ports[0].mac, 6);
    a.src_port = app->cfg.udp_port;
    a.dst_port = c->udp_port;
  }
  uint64_t seq = atomic_fetch_add_explicit(&g->tx_seq, 1, memory_order_relaxed);
  size_t cap = rte_pktmbuf_tailroom(m);
  if (cap > app->ports[pi].tx_frame_max) cap = app->ports[pi].tx_frame_max;
  amp_frame_begin(&o->b, rte_pktmbuf_mtod(m, uint8_t *), cap, &a, g->id, seq);
  o->m = m;
  o->port = pi;
  w->open_list[w->n_open++] = (uint16_t)gi;
  return 0;
}

/* Instrumentation: an answer is out; its latency from its HTLC's rx TSC,
 * which came back with it as the engine's cookie (ampd.h). None (0), or a
 * TSC ahead of this core's: not timed, counted. */
static void lat_answer(ampd_worker_t *w, uint64_t rx_tsc, const uint8_t *msg, size_t len) {
  if (len < 2) return;
  uint64_t now = rte_rdtsc();
  w->last_emit_tsc = now;
  if (!rx_tsc || rx_tsc > now) {
    w->lat_unmatched++;
    return;
  }
  ampd_lat_add(amp_be16(msg) == AMP_MSG_UPDATE_FULFILL_HTLC ? &w->lat_fulfill : &w->lat_fail,
               now - rx_tsc);
}

/* The engine's commit report: the answers about to go out waited wait_ns
 * for their intent's commit (the store's share of their latency). */
static void sink_committed(void *ctx, uint64_t wait_ns, uint32_t answers) {
  ampd_worker_t *w = ctx;
  ampd_lat_add_n(&w->lat_commit, (uint64_t)((double)wait_ns * w->tsc_per_ns), answers);
}

/* The engine's sink: one answer for gateway_id. */
static void sink_emit(void *ctx, uint64_t gateway_id, uint64_t scid, uint64_t cookie,
                      const uint8_t *msg, size_t len) {
  ampd_worker_t *w = ctx;
  lat_answer(w, cookie, msg, len);
  int gi = ampd_gateway_find(w->app, gateway_id);
  if (gi < 0) {
    w->cnt.tx_unknown_gateway++;
    return;
  }
  if (len > UINT16_MAX) {
    w->cnt.tx_too_big++;
    return;
  }
  ampd_open_t *o = &w->open[gi];
  if (!o->m && frame_open(w, gi) != 0) {
    w->cnt.tx_nombuf++;
    return;
  }
  if (amp_frame_add(&o->b, scid, msg, (uint16_t)len) != AMP_OK) {
    if (o->b.count == 0) {   /* does not fit even an empty frame */
      w->cnt.tx_too_big++;
      return;
    }
    /* Full: close this frame and start the gateway's next one. */
    frame_close(w, gi);
    for (uint16_t k = 0; k < w->n_open; k++) {
      if (w->open_list[k] == gi) {
        w->open_list[k] = w->open_list[--w->n_open];
        break;
      }
    }
    if (frame_open(w, gi) != 0) {
      w->cnt.tx_nombuf++;
      return;
    }
    if (amp_frame_add(&o->b, scid, msg, (uint16_t)len) != AMP_OK) {
      w->cnt.tx_too_big++;
      return;
    }
  }
  w->cnt.tx_records++;
}

/* A frame the port would not take after a few tries: counted and freed. */
typedef struct {
  uint16_t port_id, queue;
  uint64_t *dropped;
} tx_err_ctx_t;

static void tx_error_cb(struct rte_mbuf **unsent, uint16_t count, void *userdata) {
  tx_err_ctx_t *c = userdata;
  uint16_t sent = 0;
  /* A short bounded retry (tx ring momentarily full); then drop. */
  for (int tries = 0; tries < 16 && sent < count; tries++) {
    if (tries) rte_delay_us_block(2);
    sent += rte_eth_tx_burst(c->port_id, c->queue, unsent + sent, (uint16_t)(count - sent));
  }
  if (sent < count) {
    *c->dropped += (uint64_t)(count - sent);
    rte_pktmbuf_free_bulk(unsent + sent, (unsigned)(count - sent));
  }
}

int ampd_worker_txbuf_init(ampd_worker_t *w, unsigned pi, uint16_t queue) {
  ampd_port_t *p = &w->app->ports[pi];
  int socket = rte_eth_dev_socket_id(p->port_id);
  w->txq[pi].queue = queue;
  w->txq[pi].buf = rte_zmalloc_socket("ampd_txbuf", RTE_ETH_TX_BUFFER_SIZE(AMPD_BURST), 0,
                                      socket < 0 ? (int)SOCKET_ID_ANY : socket);
  tx_err_ctx_t *c = rte_zmalloc("ampd_txerr", sizeof *c, 0);
  if (!w->txq[pi].buf || !c) return -1;
  c->port_id = p->port_id;
  c->queue = queue;
  c->dropped = &w->cnt.tx_dropped;
  rte_eth_tx_buffer_init(w->txq[pi].buf, AMPD_BURST);
  rte_eth_tx_buffer_set_err_callback(w->txq[pi].buf, tx_error_cb, c);
  return 0;
}

/* ---- rx ------------------------------------------------------------------ */

/* Frame checks before the tag: parse, address, gateway. Returns the
 * gateway's index, or -1 (the drop counted). */
static int rx_parse(ampd_worker_t *w, amp_frame_t *f, const uint8_t *data, size_t len) {
  ampd_app_t *app = w->app;
  int r = amp_frame_parse_port(f, data, len, app->cfg.udp_port);
  if (r != AMP_FRAME_OK) {
    w->cnt.drop[r]++;
    return -1;
  }
  if (app->cfg.has_ipv4 && memcmp(f->addr.dst_ip, app->cfg.ipv4, 4) != 0) {
    w->cnt.drop_not_ours++;
    return -1;
  }
  int gi = ampd_gateway_find(app, f->gateway_id);
  if (gi < 0) w->cnt.drop[AMP_FRAME_DROP_UNKNOWN_GATEWAY]++;
  return gi;
}

/* The rest of a parsed frame from gateway gi whose tag check gave tag_ok:
 * anti-replay, then its records appended to w->in (tips are handled here).
 * The frame's data must stay valid until the engine returns. */
static void rx_accept(ampd_worker_t *w, uint16_t pi, const amp_frame_t *f, int gi, int tag_ok,
                      size_t *n_in, uint64_t now, uint64_t tsc) {
  ampd_app_t *app = w->app;
  ampd_gateway_t *g = &app->gateways[gi];
  if (!tag_ok) {
    w->cnt.drop[AMP_FRAME_DROP_BAD_TAG]++;
    return;
  }
  rte_spinlock_lock(&g->lock);
  int fresh = amp_frame_window_accept(&g->win, f->seq);
  if (fresh) {
    g->peer = f->addr;
    g->peer_port = pi;
    g->learned = 1;
  }
  rte_spinlock_unlock(&g->lock);
  if (!fresh) {
    w->cnt.drop[AMP_FRAME_DROP_REPLAYED_SEQ]++;
    return;
  }
  w->cnt.rx_frames++;
  for (uint16_t i = 0; i < f->count; i++) {
    const amp_frame_rec_t *rec = &f->rec[i];
    if (amp_be16(rec->msg) == AMP_MSG_TIP) {
      uint32_t h;
      if (amp_msg_tip_decode(&h, rec->msg, rec->len) != AMP_OK) {
        w->cnt.bad_tips++;
        continue;
      }
      w->cnt.tips++;
      /* The height only rises (a late tip from a slower gateway must not
       * lower it). Two workers racing may leave the lower of two new tips
       * until the next one: harmless. */
      if (h > amp_engine_height(app->engine)) amp_engine_set_height(app->engine, h);
      continue;
    }
    amp_engine_in_t *in = &w->in[(*n_in)++];
    in->gateway_id = f->gateway_id;
    in->scid = rec->scid;
    in->msg = rec->msg;
    in->len = rec->len;
    in->rx_ns = now;
    in->cookie = tsc; /* the rx TSC: back with the answer (lat_answer) */
    w->cnt.rx_records++;
  }
}

/* The burst's frames are parsed, then their tags checked together
 * (amp_frame_verify_hmac_n: sixteen 1.5 kB frames at a time on AVX-512, ~0.3
 * us less per frame than one at a time, ~0.12 less than pairs; pairs on
 * SHA-NI alone), then accepted in arrival order. */
static void rx_burst(ampd_worker_t *w, struct rte_mbuf **pkts, uint16_t nb, uint16_t pi,
                     uint64_t now, uint64_t tsc) {
  size_t n_in = 0, nf = 0;
  amp_frame_t *f = w->fr;
  const amp_frame_t *fp[AMPD_BURST];
  const amp_hmac_t *kp[AMPD_BURST];
  int gi[AMPD_BURST], ok[AMPD_BURST];
  for (uint16_t i = 0; i < nb; i++) {
    struct rte_mbuf *m = pkts[i];
    if (i + 1 < nb) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
    w->cnt.rx_pkts++;
    w->cnt.rx_bytes += m->pkt_len;
    const uint8_t *data;
    if (m->nb_segs == 1) {
      /* A driver's word on a one-segment packet's length is checked: net_pcap
       * with infinite_rx=1 hands a frame longer than an mbuf over as its
       * first segment with the whole length. */
      if (unlikely(m->pkt_len != m->data_len)) {
        w->cnt.drop[AMP_FRAME_DROP_MALFORMED]++;
        continue;
      }
      data = rte_pktmbuf_mtod(m, const uint8_t *);
    } else if (m->pkt_len > AMP_FRAME_MAX_LEN) {
      w->cnt.drop[AMP_FRAME_DROP_MALFORMED]++;
      continue;
    } else {
      data = rte_pktmbuf_read(m, 0, m->pkt_len, w->lin + (size_t)i * AMP_FRAME_MAX_LEN);
      if (!data) {
        w->cnt.drop[AMP_FRAME_DROP_MALFORMED]++;
        continue;
      }
    }
    if ((gi[nf] = rx_parse(w, &f[nf], data, m->pkt_len)) < 0) continue;
    fp[nf] = &f[nf];
    kp[nf] = &w->app->gateways[gi[nf]].kctx;
    nf++;
  }
  amp_frame_verify_hmac_n(fp, kp, nf, ok);
  for (size_t j = 0; j < nf; j++) rx_accept(w, pi, &f[j], gi[j], ok[j], &n_in, now, tsc);
  /* ---- The engine hookup: one call per burst. ---- */
  if (n_in && likely(!w->app->bench_rx_only)) amp_worker_process(w->ew, w->in, n_in, &w->sink);
  rte_pktmbuf_free_bulk(pkts, nb);
}

/* ---- the loop ------------------------------------------------------------ */

int ampd_worker_main(void *arg) {
  ampd_worker_t *w = arg;
  ampd_app_t *app = w->app;
  struct rte_mbuf *pkts[AMPD_BURST];
  const uint64_t drain_tsc = (rte_get_tsc_hz() + 1000000 - 1) / 1000000 * AMPD_DRAIN_US;
  uint64_t prev_tsc = rte_rdtsc();
  uint64_t stop_deadline = 0;
  uint64_t iter_tsc = prev_tsc;
  int was_busy = 0;

  w->sink.emit = sink_emit;
  w->sink.ctx = w;
  w->sink.committed = sink_committed;
  w->tsc_per_ns = (double)rte_get_tsc_hz() / 1e9;
  const char *stall = getenv("AMPD_TEST_STALL_MS");
  w->test_stall_ms = stall ? (unsigned)strtoul(stall, NULL, 10) : 0;
  amp_worker_attach(w->ew);
  ampd_log(AMP_LOG_INFO, "worker %u on lcore %u: %u rx queue(s)", w->idx, w->lcore, w->n_rxq);
  for (;;) {
    uint64_t cur_tsc = rte_rdtsc();
    /* Busy vs idle: the previous iteration's cycles, by whether it did work. */
    if (was_busy) {
      w->polls_busy++;
      w->tsc_busy += cur_tsc - iter_tsc;
    } else {
      w->polls_idle++;
      w->tsc_idle += cur_tsc - iter_tsc;
    }
    iter_tsc = cur_tsc;
    if (unlikely(cur_tsc - prev_tsc > drain_tsc)) {
      tx_drain(w);
      prev_tsc = cur_tsc;
    }
    int stopping = atomic_load_explicit(&app->stop_rx, memory_order_relaxed);
    uint64_t now = amp_mono_ns();
    int got = 0;
    if (likely(!stopping)) {
      for (uint16_t q = 0; q < w->n_rxq; q++) {
        ampd_rxq_t *rq = &w->rxq[q];
        if (unlikely(!rq->left)) continue;
        uint16_t nb = rte_eth_rx_burst(app->ports[rq->port].port_id, rq->queue, pkts, AMPD_BURST);
        if (!nb) continue;
        if (unlikely(nb > rq->left)) {   /* --bench-rx-packets reached */
          w->cnt.bench_rx_surplus += nb - rq->left;
          rte_pktmbuf_free_bulk(pkts + rq->left, nb - (uint16_t)rq->left);
          nb = (uint16_t)rq->left;
        }
        rq->left -= nb;
        if (unlikely(!w->first_rx_ns)) {
          w->first_rx_ns = now;
          w->first_rx_tsc = cur_tsc;
        }
        atomic_store_explicit(&w->last_rx_ns, now, memory_order_relaxed);
        rx_burst(w, pkts, nb, rq->port, now, cur_tsc);
        got = 1;
      }
      /* exit-idle compares this with last_rx_ns: both on this worker\'s clock,
       * so a worker that is not running (descheduled, blocked in a write)
       * never looks idle to control. */
      atomic_store_explicit(&w->last_poll_ns, now, memory_order_relaxed);
    }
    /* A burst takes a while (an ECDH per HTLC): read the clock again then. */
    was_busy = amp_worker_poll(w->ew, got ? amp_mono_ns() : now, &w->sink) > 0 || got;
    frames_close_all(w);
    int idle = amp_worker_idle(w->ew);
    atomic_store_explicit(&w->busy, !idle, memory_order_relaxed);
    if (unlikely(w->test_stall_ms) && idle && w->first_rx_ns && !stopping) {
      /* Test only (AMPD_TEST_STALL_MS): the worker stops running once, with
       * nothing in flight and frames still unread, as on a loaded machine. */
      rte_delay_us_sleep(w->test_stall_ms * 1000u);
      w->test_stall_ms = 0;
    }
    if (unlikely(stopping)) {
      /* Stop: no more rx; let the store commit and hand back what is in
       * flight, answer it, then leave. */
      if (!stop_deadline) stop_deadline = now + (uint64_t)AMPD_STOP_GRACE_MS * 1000000ULL;
      if (idle) break;
      if (now > stop_deadline) {
        ampd_log(AMP_LOG_WARN, "worker %u: store still busy after %d ms at stop; leaving",
                 w->idx, AMPD_STOP_GRACE_MS);
        break;
      }
      rte_pause();
    }
  }
  frames_close_all(w);
  tx_drain(w);
  amp_worker_detach(w->ew);
  struct timespec cpu;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu) == 0)
    w->cpu_ns = (uint64_t)cpu.tv_sec * 1000000000ULL + (uint64_t)cpu.tv_nsec;
  atomic_store_explicit(&w->done, 1, memory_order_release);
  return 0;
}
