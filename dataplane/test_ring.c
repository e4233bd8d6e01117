/* test_ring.c (ampd-ring): ampd end to end over net_ring, in one process.
 *
 * The real daemon (ampd_run) runs on ring ports this program makes after EAL
 * init (rte_eth_from_rings); a generator thread builds AMP traffic with the
 * packet generator's library (bench/amp_gen), every bad class mixed in,
 * enqueues the frames on ampd's rx rings, one queue per gateway as RSS would
 * (a gateway's flow keeps its order), sends some frames twice on ANOTHER
 * queue (replays: the other worker must drop them through the shared
 * anti-replay window), and
 * drains ampd's tx rings into the checker (bench/amp_gen_check). The daemon
 * stops like under SIGTERM once the traffic is out and the replies have been
 * quiet for a while; then every HTLC must have had exactly its expected
 * answer and every drop counter its expected value.
 *
 *   ampd-ring [--workers N] [--payments N] [--records R] [--keep DIR]
 *
 * With several workers, HTLCs that come from different gateways are processed
 * in parallel, so their relative order is not kept; two bad classes depend on
 * that order by their definition (mismatched_total: which total comes first;
 * replayed_onion: which copy is the first use) and are left out then. One
 * worker (one queue) runs every class.
 *
 * Exit 0 on success, 1 on any mismatch, 77 when ring ports cannot be made.
 *
 *   ampd-ring --bench --payments N --shards K [--workers W] [--lcores SPEC]
 *             [--sync full|meta|none] [--summary-json FILE] [--keep DIR]
 *             [--rate FRAMES_PER_S]
 *
 * Benchmark mode: the same daemon over net_ring, fed by a generator LCORE
 * (the EAL lcore after ampd's W workers, launched by the started hook) with
 * good traffic only, AMP sets of K shards, one HTLC per frame, two gateways
 * (one rx queue each with two workers). Every frame is built before EAL
 * starts (onions are the cost: amp_gen with a thread per CPU); the generator
 * lcore only copies prebuilt frames into mbufs and keeps each rx ring topped
 * up (it wakes every BENCH_WAKE_US, refills below half), and copies ampd's
 * replies out of the tx rings; they are checked after the run (it stops when
 * every HTLC has an answer, or ampd has taken every frame and answered
 * nothing for BENCH_QUIET_MS, or at DEADLINE_S). The tip frame
 * goes first; the other queue's traffic starts once the engine has the
 * height (no worker waits for it). ampd's figures come from its own summary (--summary-json, the same
 * file as `ampd --summary-json`: the rate is HTLCs in over the workers' first
 * to last rx, as with net_pcap); this program adds the generator's: enqueue
 * rate (per second of its own work, and over the wall clock), the lowest
 * rx-ring fill it saw while traffic remained, the times it found a ring
 * empty (starved) or the mbuf pool empty (blocked). One machine-readable
 * line at the end: `ampd-ring-bench {JSON}`. Exit 0 when every answer was
 * the expected one, nothing was lost and every set settled. --rate paces
 * the generator (each queue gets its share of FRAMES_PER_S, in proportion to
 * its frames, topped up at every wake to what is due by then): latency below capacity; the rings run
 * dry between frames by design, so a paced run is never called starved.
 *
 * --lcores is EAL's (default: main lcore on CPU 0, workers 1..W on CPUs
 * w % ncpu, the generator with the main lcore); it must name W + 1 lcores
 * besides the main one: ampd takes the first W (--workers), the generator
 * the next.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <rte_cycles.h>
#include <rte_eth_ring.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "amp_config.h"
#include "amp_gen.h"
#include "amp_gen_check.h"
#include "amp_secp.h"
#include "ampd.h"
#include "ampd_app.h"

#define MAX_Q 8
#define RING_SIZE 4096
#define QUIET_MS 1500          /* replies quiet this long after the last frame: stop */
#define HOLD_MS 400
#define DEADLINE_S 120

typedef struct {
  amp_gen_t *gen;
  amp_check_t *chk;
  unsigned n_rxq, n_txq;
  struct rte_ring *rx[MAX_Q], *tx[MAX_Q];
  struct rte_mempool *pool;
  pthread_t th;
  int th_started;
  _Atomic int stop;
  _Atomic int gen_done;
  _Atomic uint64_t last_reply_ns;
  uint64_t start_ns;
  uint64_t busy_ns;            /* hook_poll: when ampd last had work in hand */
  int gen_error;
  int no_rings;                /* rte_eth_from_rings failed: skip */
  char runtime_dir[512];       /* EAL's, removed at the end */
  /* what ampd must count */
  uint64_t frames, dups, cut, bad_tag_frames, unknown_gw_frames, replies;
  ampd_counters_t seen;        /* ampd's counters, summed in the stopped hook */
  uint64_t settled_sets;
} inj_t;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void drain_tx(inj_t *j) {
  static uint8_t lin[AMP_FRAME_MAX_LEN + 64];
  void *objs[64];
  for (unsigned q = 0; q < j->n_txq; q++) {
    unsigned n = rte_ring_dequeue_burst(j->tx[q], objs, 64, NULL);
    for (unsigned i = 0; i < n; i++) {
      struct rte_mbuf *m = objs[i];
      const uint8_t *p = m->pkt_len <= sizeof lin ? rte_pktmbuf_read(m, 0, m->pkt_len, lin) : NULL;
      if (p) amp_check_frame(j->chk, p, m->pkt_len);
      j->replies++;
      rte_pktmbuf_free(m);
    }
    if (n) atomic_store(&j->last_reply_ns, now_ns());
  }
}

static void inject(inj_t *j, unsigned q, const uint8_t *pkt, size_t len) {
  struct rte_mbuf *m;
  while ((m = rte_pktmbuf_alloc(j->pool)) == NULL) {
    drain_tx(j);
    usleep(50);
  }
  uint8_t *d = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)len);
  memcpy(d, pkt, len);
  while (rte_ring_enqueue(j->rx[q], m) != 0) {
    drain_tx(j);
    usleep(50);
  }
}

/* A copy of a frame in an mbuf whose lengths disagree: one segment, data_len
 * half the frame (the rest of its room zeroed), pkt_len the whole frame, as
 * net_pcap's infinite_rx hands over a frame longer than an mbuf. ampd must
 * count it malformed, not read past data_len. */
static void inject_cut(inj_t *j, unsigned q, const uint8_t *pkt, size_t len) {
  struct rte_mbuf *m;
  while ((m = rte_pktmbuf_alloc(j->pool)) == NULL) {
    drain_tx(j);
    usleep(50);
  }
  uint8_t *d = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)len);
  memcpy(d, pkt, len / 2);
  memset(d + len / 2, 0, len - len / 2);
  m->data_len = (uint16_t)(len / 2);
  while (rte_ring_enqueue(j->rx[q], m) != 0) {
    drain_tx(j);
    usleep(50);
  }
}

static void *injector(void *arg) {
  inj_t *j = arg;
  amp_gen_frame_t f;
  unsigned k = 0;
  for (;;) {
    int rc = amp_gen_next(j->gen, &f);
    if (rc == 0) break;
    if (rc < 0) {
      fprintf(stderr, "ampd-ring: generator: %s\n", amp_strerror(rc));
      j->gen_error = 1;
      break;
    }
    int bad_tag = 0, unknown = 0;
    for (size_t i = 0; i < f.n_htlc; i++) {
      if (amp_check_expect(j->chk, &f.htlc[i]) != AMP_OK) j->gen_error = 1;
      bad_tag |= f.htlc[i].cls == AMP_GEN_BAD_TAG;
      unknown |= f.htlc[i].cls == AMP_GEN_UNKNOWN_GW;
    }
    j->bad_tag_frames += (uint64_t)bad_tag;
    j->unknown_gw_frames += (uint64_t)unknown;
    unsigned q = (unsigned)(f.gateway_id % j->n_rxq);   /* RSS-like: per flow */
    k++;
    inject(j, q, f.pkt, f.len);
    j->frames++;
    /* Every 23rd good frame again, on another queue: a replay, to be dropped. */
    if (!bad_tag && !unknown && j->frames % 23 == 5) {
      inject(j, (q + 1) % j->n_rxq, f.pkt, f.len);
      j->dups++;
    }
    if (j->frames % 29 == 11) {
      inject_cut(j, q, f.pkt, f.len);
      j->cut++;
    }
    if (k % 8 == 0) drain_tx(j);
  }
  atomic_store(&j->gen_done, 1);
  atomic_store(&j->last_reply_ns, now_ns());
  while (!atomic_load(&j->stop)) {
    drain_tx(j);
    usleep(200);
  }
  drain_tx(j);
  return NULL;
}

/* ring_port makes the rx and tx rings (size each) and ampd's port on them.
 * Returns 0, or -1 (*no_rings set when the port itself could not be made:
 * the caller skips). */
static int ring_port(struct rte_ring **rx, unsigned n_rx, struct rte_ring **tx, unsigned n_tx,
                     unsigned size, int *no_rings) {
  char name[32];
  for (unsigned q = 0; q < n_rx; q++) {
    snprintf(name, sizeof name, "ring_rx%u", q);
    rx[q] = rte_ring_create(name, size, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (!rx[q]) return -1;
  }
  for (unsigned q = 0; q < n_tx; q++) {
    snprintf(name, sizeof name, "ring_tx%u", q);
    tx[q] = rte_ring_create(name, size, SOCKET_ID_ANY, RING_F_SC_DEQ);
    if (!tx[q]) return -1;
  }
  if (rte_eth_from_rings("net_ring_ampd", rx, n_rx, tx, n_tx, SOCKET_ID_ANY) < 0) {
    fprintf(stderr, "ampd-ring: rte_eth_from_rings: %s\n", rte_strerror(rte_errno));
    *no_rings = 1;
    return -1;
  }
  return 0;
}

static int hook_after_eal(void *arg) {
  inj_t *j = arg;
  snprintf(j->runtime_dir, sizeof j->runtime_dir, "%s", rte_eal_get_runtime_dir());
  j->pool = rte_pktmbuf_pool_create("ring_inj", 8191, 0, 0,
                                    RTE_PKTMBUF_HEADROOM + AMP_FRAME_MAX_LEN + 64, SOCKET_ID_ANY);
  if (!j->pool) {
    fprintf(stderr, "ampd-ring: cannot make the injection pool: %s\n", rte_strerror(rte_errno));
    return -1;
  }
  return ring_port(j->rx, j->n_rxq, j->tx, j->n_txq, RING_SIZE, &j->no_rings);
}

static int hook_started(void *arg, ampd_app_t *app) {
  inj_t *j = arg;
  (void)app;
  j->start_ns = now_ns();
  if (pthread_create(&j->th, NULL, injector, j) != 0) return -1;
  j->th_started = 1;
  return 0;
}

static int hook_poll(void *arg, ampd_app_t *app) {
  inj_t *j = arg;
  uint64_t now = now_ns();
  if (now - j->start_ns > (uint64_t)DEADLINE_S * 1000000000ULL) {
    fprintf(stderr, "ampd-ring: deadline of %d s reached\n", DEADLINE_S);
    return 1;
  }
  if (!atomic_load(&j->gen_done)) return 0;
  /* Quiet counts only once ampd has taken every frame and has nothing in
   * flight: on a loaded machine a commit can hold replies back for longer
   * than QUIET_MS (seen: 65 s) with frames still in the rx rings. */
  int busy = 0;
  for (unsigned q = 0; q < j->n_rxq; q++) busy |= rte_ring_count(j->rx[q]) != 0;
  for (unsigned i = 0; i < app->n_workers; i++) busy |= atomic_load(&app->workers[i].busy);
  if (busy) j->busy_ns = now;
  uint64_t last = atomic_load(&j->last_reply_ns);
  if (j->busy_ns > last) last = j->busy_ns;
  return now - last > (uint64_t)QUIET_MS * 1000000ULL;
}

static void hook_stopped(void *arg, ampd_app_t *app) {
  inj_t *j = arg;
  atomic_store(&j->stop, 1);
  if (j->th_started) pthread_join(j->th, NULL);
  memset(&j->seen, 0, sizeof j->seen);
  for (unsigned i = 0; i < app->n_workers; i++) {
    const ampd_counters_t *c = &app->workers[i].cnt;
    for (int r = 0; r < AMP_FRAME_DROP_COUNT_; r++) j->seen.drop[r] += c->drop[r];
    j->seen.rx_frames += c->rx_frames;
    j->seen.tx_records += c->tx_records;
    j->seen.tx_dropped += c->tx_dropped + c->tx_nombuf + c->tx_too_big;
  }
  amp_engine_stats_t st;
  amp_engine_stats(app->engine, &st);
  j->settled_sets = st.sets_settled;
}

/* traffic_cfg makes the node key in dir/node.key and fills gc with the
 * defaults, the node's public key and two gateways with random keys.
 * Returns 0, or 1 with a message on stderr. */
/* The run's directory: keep (made if absent) or a fresh one under /tmp.
 * Returns 0, or -1 (reported) when no directory could be made. */
static int run_dir(char *dir, size_t n, const char *keep) {
  if (keep) {
    snprintf(dir, n, "%s", keep);
    mkdir(dir, 0700);
    return 0;
  }
  snprintf(dir, n, "/tmp/ampd-ring.XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return -1;
  }
  return 0;
}

static int traffic_cfg(amp_gen_cfg_t *gc, const char *dir) {
  if (amp_secp_init() != AMP_OK) return 1;
  char keyfile[300], err[AMP_CONFIG_ERR_MAX];
  snprintf(keyfile, sizeof keyfile, "%s/node.key", dir);
  uint8_t nk[32];
  if (amp_config_node_key(nk, NULL, keyfile, 1, err, sizeof err) != AMP_OK) {
    fprintf(stderr, "ampd-ring: %s\n", err);
    return 1;
  }
  amp_gen_cfg_default(gc);
  amp_pubkey_t pk;
  int rc = amp_secp_pubkey_create(&pk, nk);
  amp_wipe(nk, sizeof nk);
  if (rc != AMP_OK) return 1;
  amp_secp_pubkey_serialize(gc->node_pubkey, &pk);
  gc->n_gw = 2;
  for (size_t g = 0; g < gc->n_gw; g++) {
    gc->gw[g].id = 100 + g;
    if (amp_random(gc->gw[g].key, 32) != AMP_OK) return 1;
    gc->gw[g].mac[0] = 0x02;
    gc->gw[g].mac[5] = (uint8_t)(g + 1);
    gc->gw[g].ip[0] = 198;
    gc->gw[g].ip[1] = 18;
    gc->gw[g].ip[3] = (uint8_t)(g + 1);
  }
  return 0;
}

/* gateway_args writes ampd's --gateway option for each of gc's two gateways. */
static void gateway_args(char gws[2][200], const amp_gen_cfg_t *gc) {
  for (size_t g = 0; g < gc->n_gw && g < 2; g++) {
    char hex[65];
    amp_hex_encode(hex, gc->gw[g].key, 32);
    snprintf(gws[g], sizeof gws[g], "--gateway=gw%zu,id=%llu,key=%s", g,
             (unsigned long long)gc->gw[g].id, hex);
  }
}

/* remove_runtime_dir removes EAL's runtime directory of this process. */
static void remove_runtime_dir(const char *rd) {
  if (!rd[0] || !strstr(rd, "ampd-ring-")) return;
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", rd);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", rd);
}

/* ---- --bench: throughput with a generator lcore ------------------------- */

#define BENCH_RING 4096        /* rx and tx rings per queue (4095 frames each) */
#define BENCH_WAKE_US 200      /* the generator lcore's sleep between top-ups */
#define BENCH_TIP_WAIT_S 10    /* longest wait for the engine to take the tip */
#define BENCH_QUIET_MS 5000    /* no answer this long, all frames taken: give up */
#define BENCH_HOLD_MS 30000    /* ampd's --hold-timeout-ms */

/* Frames back to back, each a u16 length then its bytes. */
typedef struct {
  uint8_t *buf;
  size_t len, cap;
  size_t n;                    /* frames */
} arena_t;

static int arena_add(arena_t *a, const uint8_t *p, size_t len) {
  if (a->len + len + 2 > a->cap) {
    size_t cap = a->cap ? 2 * a->cap : 1 << 20;
    while (cap < a->len + len + 2) cap *= 2;
    uint8_t *b = realloc(a->buf, cap);
    if (!b) return -1;
    a->buf = b;
    a->cap = cap;
  }
  a->buf[a->len] = (uint8_t)(len >> 8);
  a->buf[a->len + 1] = (uint8_t)len;
  memcpy(a->buf + a->len + 2, p, len);
  a->len += len + 2;
  a->n++;
  return 0;
}

/* arena_next returns the frame at *pos (and its length) and moves past it. */
static const uint8_t *arena_next(const arena_t *a, size_t *pos, size_t *len) {
  if (*pos >= a->len) return NULL;
  *len = (size_t)a->buf[*pos] << 8 | a->buf[*pos + 1];
  const uint8_t *p = a->buf + *pos + 2;
  *pos += *len + 2;
  return p;
}

typedef struct {
  unsigned n_q;                /* rx and tx queues: one per worker */
  struct rte_ring *rx[MAX_Q], *tx[MAX_Q];
  struct rte_mempool *pool;
  uint16_t data_room;
  arena_t req[MAX_Q];          /* the traffic of each rx queue, in order */
  size_t req_pos[MAX_Q];
  uint64_t req_sent[MAX_Q];    /* frames enqueued per rx queue */
  double rate;                 /* --rate: frames/s over all queues; 0: as fast as taken */
  arena_t tip;                 /* the tip frame, sent first, alone */
  unsigned tip_q;
  uint32_t height;
  arena_t rep;                 /* ampd's replies, copied out of the tx rings */
  uint64_t htlcs, answers;     /* HTLCs sent; answer records seen */
  ampd_app_t *app;
  unsigned gen_lcore;
  _Atomic int stop, done;
  int error, no_rings;
  char runtime_dir[512];
  /* the generator's figures */
  uint64_t t_first_enq, t_last_enq, t_last_reply;   /* ns */
  uint64_t fill_tsc, drain_tsc, wakes, frames_enq;
  uint64_t ring_empty, pool_empty, tip_wait_ns;
  int ring_min_fill;           /* -1: never measured (all traffic fit at once) */
  double tsc_hz;
  /* ampd's counters, summed in the stopped hook */
  uint64_t tx_lost, rx_frames;
} bench_t;

/* bench_drain copies every reply waiting in the tx rings into b->rep and
 * counts its records. */
static void bench_drain(bench_t *b) {
  static uint8_t lin[AMP_FRAME_MAX_LEN + 64];
  static amp_frame_t f;
  void *objs[64];
  for (unsigned q = 0; q < b->n_q; q++) {
    unsigned n;
    while ((n = rte_ring_dequeue_burst(b->tx[q], objs, 64, NULL)) > 0) {
      for (unsigned i = 0; i < n; i++) {
        struct rte_mbuf *m = objs[i];
        const uint8_t *p =
            m->pkt_len <= sizeof lin ? rte_pktmbuf_read(m, 0, m->pkt_len, lin) : NULL;
        if (p && arena_add(&b->rep, p, m->pkt_len) == 0) {
          if (amp_frame_parse(&f, p, m->pkt_len) == AMP_FRAME_OK) b->answers += f.count;
        } else {
          b->error = 1;
        }
      }
      rte_pktmbuf_free_bulk((struct rte_mbuf **)objs, n);
      b->t_last_reply = now_ns();
    }
  }
}

/* bench_fill tops rx queue q up with its next frames, as many as fit and
 * at most max. Returns the frames enqueued. */
static unsigned bench_fill(bench_t *b, unsigned q, const arena_t *a, size_t *pos, uint64_t max) {
  unsigned done = 0;
  struct rte_mbuf *m[32];
  while (*pos < a->len && done < max) {
    unsigned room = rte_ring_free_count(b->rx[q]);
    if (room == 0) break;
    if (room > 32) room = 32;
    if (room > max - done) room = (unsigned)(max - done);
    if (rte_pktmbuf_alloc_bulk(b->pool, m, room) != 0) {
      b->pool_empty++;
      break;
    }
    unsigned k = 0;
    size_t len;
    const uint8_t *p;
    while (k < room && (p = arena_next(a, pos, &len)) != NULL) {
      uint8_t *d = (uint8_t *)rte_pktmbuf_append(m[k], (uint16_t)len);
      if (!d) {                                        /* data_room fits every frame */
        b->error = 1;
        continue;
      }
      memcpy(d, p, len);
      k++;
    }
    if (k < room) rte_pktmbuf_free_bulk(m + k, room - k);
    unsigned e = rte_ring_enqueue_burst(b->rx[q], (void **)m, k, NULL);   /* SP: all fit */
    if (e < k) {
      b->error = 1;
      rte_pktmbuf_free_bulk(m + e, k - e);
    }
    done += e;
  }
  return done;
}

/* The generator lcore: the tip, then every queue kept topped up until the
 * traffic is out and every HTLC has its answer (or replies stop coming). The
 * tip's own queue starts right behind it (a queue keeps its order); the
 * others once the engine has the height (another worker could otherwise
 * take HTLCs before the tip): no worker waits for it. */
static int bench_gen_main(void *arg) {
  bench_t *b = arg;
  b->tsc_hz = (double)rte_get_tsc_hz();
  size_t tpos = 0;
  uint64_t t0 = now_ns();
  if (bench_fill(b, b->tip_q, &b->tip, &tpos, 1) != 1) b->error = 1;
  b->ring_min_fill = -1;
  int started[MAX_Q] = {0}, have_height = 0;
  for (;;) {
    if (!have_height) {
      have_height = amp_engine_height(b->app->engine) == b->height;
      if (have_height) {
        b->tip_wait_ns = now_ns() - t0;
      } else if (now_ns() - t0 > (uint64_t)BENCH_TIP_WAIT_S * 1000000000ULL) {
        fprintf(stderr, "ampd-ring: the engine never took the tip frame\n");
        b->error = 1;
        break;
      }
    }
    int remaining = 0;
    uint64_t c0 = rte_rdtsc();
    for (unsigned q = 0; q < b->n_q; q++) {
      if (b->req_pos[q] >= b->req[q].len) continue;
      remaining = 1;
      if (q != b->tip_q && !have_height) continue;
      if (started[q]) {
        /* the ring only drains between two wakes: this is its lowest fill */
        int fill = (int)rte_ring_count(b->rx[q]);
        if (b->ring_min_fill < 0 || fill < b->ring_min_fill) b->ring_min_fill = fill;
        if (fill == 0) b->ring_empty++;
        if (fill > BENCH_RING / 2) continue;
      }
      started[q] = 1;
      if (!b->t_first_enq) b->t_first_enq = now_ns();
      uint64_t max = UINT64_MAX;   /* paced: this queue's share of rate x time so far */
      if (b->rate > 0) {
        /* shares by frames, not equal: a set's shards go to both queues in
         * the order they were built, and the queues must keep step */
        size_t all = 0;
        for (unsigned k = 0; k < b->n_q; k++) all += b->req[k].n;
        double share = all ? (double)b->req[q].n / (double)all : 1;
        double due = b->rate * share * (double)(now_ns() - b->t_first_enq) / 1e9 + 1;
        max = due > (double)b->req_sent[q] ? (uint64_t)due - b->req_sent[q] : 0;
      }
      unsigned e = bench_fill(b, q, &b->req[q], &b->req_pos[q], max);
      b->req_sent[q] += e;
      b->frames_enq += e;
      if (b->req_pos[q] >= b->req[q].len) b->t_last_enq = now_ns();
    }
    uint64_t c1 = rte_rdtsc();
    bench_drain(b);
    b->fill_tsc += c1 - c0;
    b->drain_tsc += rte_rdtsc() - c1;
    b->wakes++;
    if (!remaining && b->answers >= b->htlcs) break;
    /* Answers missing: give up only once ampd has taken every frame and
     * said nothing for BENCH_QUIET_MS (a loaded disk can hold commits, and
     * so the answers, for seconds). */
    unsigned queued = 0;
    for (unsigned q = 0; q < b->n_q; q++) queued += rte_ring_count(b->rx[q]);
    uint64_t last = b->t_last_reply > b->t_last_enq ? b->t_last_reply : b->t_last_enq;
    if (!remaining && !queued && now_ns() - last > (uint64_t)BENCH_QUIET_MS * 1000000ULL) break;
    if (atomic_load(&b->stop)) break;
    rte_delay_us_sleep(have_height ? BENCH_WAKE_US : 10);
  }
  atomic_store(&b->done, 1);
  return 0;
}

static int bench_after_eal(void *arg) {
  bench_t *b = arg;
  snprintf(b->runtime_dir, sizeof b->runtime_dir, "%s", rte_eal_get_runtime_dir());
  /* every rx ring full, a burst in each worker's hands, and slack */
  unsigned n_mbufs = b->n_q * BENCH_RING + 1024;
  b->pool = rte_pktmbuf_pool_create("ring_bench", n_mbufs, 256, 0, b->data_room, SOCKET_ID_ANY);
  if (!b->pool) {
    fprintf(stderr, "ampd-ring: cannot make the generator's pool (%u mbufs): %s\n", n_mbufs,
            rte_strerror(rte_errno));
    return -1;
  }
  return ring_port(b->rx, b->n_q, b->tx, b->n_q, BENCH_RING, &b->no_rings);
}

static int bench_started(void *arg, ampd_app_t *app) {
  bench_t *b = arg;
  b->app = app;
  /* the generator: the first worker lcore ampd did not take */
  unsigned lc, n = 0;
  b->gen_lcore = RTE_MAX_LCORE;
  RTE_LCORE_FOREACH_WORKER(lc) {
    if (n++ == app->n_workers) {
      b->gen_lcore = lc;
      break;
    }
  }
  if (b->gen_lcore == RTE_MAX_LCORE) {
    fprintf(stderr, "ampd-ring: no lcore left for the generator: give EAL one more than the"
                    " workers (--lcores)\n");
    return -1;
  }
  int rc = rte_eal_remote_launch(bench_gen_main, b, b->gen_lcore);
  if (rc) {
    fprintf(stderr, "ampd-ring: cannot launch the generator: %s\n", rte_strerror(-rc));
    return -1;
  }
  return 0;
}

static int bench_poll(void *arg, ampd_app_t *app) {
  bench_t *b = arg;
  (void)app;
  static uint64_t t0;
  if (!t0) t0 = now_ns();
  if (now_ns() - t0 > (uint64_t)DEADLINE_S * 1000000000ULL) {
    fprintf(stderr, "ampd-ring: deadline of %d s reached\n", DEADLINE_S);
    atomic_store(&b->stop, 1);
    b->error = 1;
    return 1;
  }
  return atomic_load(&b->done);
}

static void bench_stopped(void *arg, ampd_app_t *app) {
  bench_t *b = arg;
  bench_drain(b);       /* what the workers flushed at stop */
  for (unsigned i = 0; i < app->n_workers; i++) {
    const ampd_counters_t *c = &app->workers[i].cnt;
    b->tx_lost += c->tx_dropped + c->tx_nombuf + c->tx_too_big;
    b->rx_frames += c->rx_frames;
  }
}

/* jnum reads a number at a path of object keys (NULL-terminated), or -1. */
static double jnum(json_t *o, ...) {
  va_list ap;
  va_start(ap, o);
  const char *k;
  while (o && (k = va_arg(ap, const char *)) != NULL) o = json_object_get(o, k);
  va_end(ap);
  return o && json_is_number(o) ? json_number_value(o) : -1;
}

static int bench_main(int argc, char **argv) {
  unsigned workers = 1;
  uint64_t payments = 1000;
  const char *shards = "3", *lcores_arg = NULL, *sync = "full", *summary = NULL, *keep = NULL;
  double offered = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--bench")) continue;
    if (!strcmp(argv[i], "--workers") && i + 1 < argc) workers = (unsigned)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--payments") && i + 1 < argc) payments = strtoull(argv[++i], 0, 10);
    else if (!strcmp(argv[i], "--shards") && i + 1 < argc) shards = argv[++i];
    else if (!strcmp(argv[i], "--lcores") && i + 1 < argc) lcores_arg = argv[++i];
    else if (!strcmp(argv[i], "--sync") && i + 1 < argc) sync = argv[++i];
    else if (!strcmp(argv[i], "--summary-json") && i + 1 < argc) summary = argv[++i];
    else if (!strcmp(argv[i], "--keep") && i + 1 < argc) keep = argv[++i];
    else if (!strcmp(argv[i], "--rate") && i + 1 < argc) offered = strtod(argv[++i], NULL);
    else {
      fprintf(stderr, "ampd-ring --bench: unknown or incomplete option %s\n", argv[i]);
      return 2;
    }
  }
  if (workers < 1 || workers > 2 || !payments || !(offered >= 0)) {
    fprintf(stderr, "ampd-ring --bench: --workers 1 or 2 (one gateway per queue),"
                    " --payments >= 1, --rate >= 0 frames/s (0: as fast as ampd takes them)\n");
    return 2;
  }
  char dir[256], sum_path[300];
  if (run_dir(dir, sizeof dir, keep) != 0) return 1;
  snprintf(sum_path, sizeof sum_path, "%s/summary.json", dir);
  if (!summary) summary = sum_path;

  /* Traffic: good only, K shards, built before anything starts. */
  amp_gen_cfg_t gc;
  char err[AMP_CONFIG_ERR_MAX];
  if (traffic_cfg(&gc, dir)) return 1;
  gc.payments = payments;
  if (amp_gen_parse_shards(&gc, shards, err, sizeof err) != AMP_OK) {
    fprintf(stderr, "ampd-ring --bench: --shards: %s\n", err);
    return 2;
  }
  gc.seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpu < 1) ncpu = 1;
  gc.threads = (uint32_t)ncpu;
  static bench_t b;
  b.n_q = workers;
  b.rate = offered;
  b.height = gc.height;
  amp_gen_t *gen;
  if (amp_gen_new(&gen, &gc, err, sizeof err) != AMP_OK) {
    fprintf(stderr, "ampd-ring: generator: %s\n", err);
    return 1;
  }
  amp_check_opts_t co = {0};
  amp_check_t *chk = amp_check_new(&co);
  if (!chk) return 1;
  for (size_t g = 0; g < gc.n_gw; g++)
    if (amp_check_gateway(chk, gc.gw[g].id, gc.gw[g].key) != AMP_OK) return 1;
  uint64_t t_build = now_ns();
  size_t max_len = 0;
  amp_gen_frame_t f;
  int rc;
  while ((rc = amp_gen_next(gen, &f)) == 1) {
    unsigned q = (unsigned)(f.gateway_id % b.n_q);   /* RSS-like: per gateway */
    arena_t *a = f.n_htlc ? &b.req[q] : &b.tip;
    if (!f.n_htlc) b.tip_q = q;
    if ((!f.n_htlc && b.tip.n) || arena_add(a, f.pkt, f.len) != 0) return 1;
    for (size_t i = 0; i < f.n_htlc; i++)
      if (amp_check_expect(chk, &f.htlc[i]) != AMP_OK) return 1;
    b.htlcs += f.n_htlc;
    if (f.len > max_len) max_len = f.len;
  }
  if (rc < 0 || b.tip.n != 1) {
    fprintf(stderr, "ampd-ring: generator: %s\n", rc < 0 ? amp_strerror(rc) : "no tip frame");
    return 1;
  }
  double build_s = (double)(now_ns() - t_build) / 1e9;
  amp_gen_stats_t gs;
  amp_gen_stats(gen, &gs);
  amp_gen_delete(gen);
  b.data_room = (uint16_t)(RTE_PKTMBUF_HEADROOM + max_len + 64);
  fprintf(stderr, "ampd-ring --bench: %llu payments of %s shard(s), %llu HTLCs in %llu frames"
          " built in %.1f s; %u worker(s), sync %s, dir %s\n", (unsigned long long)payments, shards,
          (unsigned long long)b.htlcs, (unsigned long long)gs.frames, build_s, workers, sync, dir);

  /* ampd's argv */
  char lcores[256], prefix[64], ddir[300], nkf[300], rxq[32], wk[32], hold[32], syncopt[32];
  char sj[320];
  char gws[2][200];
  if (lcores_arg) {
    snprintf(lcores, sizeof lcores, "--lcores=%s", lcores_arg);
  } else {
    int n = snprintf(lcores, sizeof lcores, "--lcores=0@0");
    for (unsigned w = 1; w <= workers; w++)
      n += snprintf(lcores + n, sizeof lcores - (size_t)n, ",%u@%ld", w, (long)(w % ncpu));
    snprintf(lcores + n, sizeof lcores - (size_t)n, ",%u@0", workers + 1);
  }
  snprintf(prefix, sizeof prefix, "--file-prefix=ampd-ring-%d", (int)getpid());
  snprintf(ddir, sizeof ddir, "--data-dir=%s/data", dir);
  snprintf(nkf, sizeof nkf, "--node-key-file=%s/node.key", dir);
  snprintf(rxq, sizeof rxq, "--rx-queues=%u", workers);
  snprintf(wk, sizeof wk, "--workers=%u", workers);
  /* good traffic only: no set should ever wait for its hold timer, even
   * when a loaded disk holds the commits (and the workers) for seconds */
  snprintf(hold, sizeof hold, "--hold-timeout-ms=%d", BENCH_HOLD_MS);
  snprintf(syncopt, sizeof syncopt, "--sync=%s", sync);
  snprintf(sj, sizeof sj, "--summary-json=%s", summary);
  gateway_args(gws, &gc);
  char *av[] = {"ampd-ring", lcores, "--no-huge", "--no-pci", "-m", "512", prefix,
                "--log-level=lib.eal:error", "--", ddir, nkf, gws[0], gws[1], "--accept-amp",
                hold, syncopt, rxq, wk, "--admin-socket=none", "--log-level=warn", sj, NULL};
  int ac = (int)(sizeof av / sizeof av[0]) - 1;
  ampd_hooks_t hooks = {bench_after_eal, bench_started, bench_poll, bench_stopped, &b};
  fflush(stdout);
  rc = ampd_run(ac, av, &hooks);
  remove_runtime_dir(b.runtime_dir);
  if (rc != 0) {
    fprintf(stderr, "ampd-ring: ampd exited with %d\n", rc);
    if (b.no_rings) {
      fprintf(stderr, "ampd-ring: SKIP: ring ports cannot be made here\n");
      return 77;
    }
    return 1;
  }

  /* Every answer checked, after the clock. */
  size_t pos = 0, len;
  const uint8_t *p;
  while ((p = arena_next(&b.rep, &pos, &len)) != NULL) amp_check_frame(chk, p, len);
  int fail = amp_check_report(chk, stdout) != 0 || b.error;
  json_error_t je;
  json_t *s = json_load_file(summary, 0, &je);
  if (!s) {
    fprintf(stderr, "ampd-ring: %s: %s\n", summary, je.text);
    return 1;
  }
  double rx_s = jnum(s, "rx_s", NULL), in = jnum(s, "engine", "htlcs_in", NULL);
  double sets = jnum(s, "engine", "sets_settled", NULL);
  double settled = jnum(s, "engine", "htlcs_settled", NULL);
  if (b.tx_lost) {
    printf("FAIL replies lost by ampd's tx: %llu\n", (unsigned long long)b.tx_lost);
    fail = 1;
  }
  if (sets != (double)payments) {
    printf("FAIL sets settled: %.0f, expected %llu\n", sets, (unsigned long long)payments);
    fail = 1;
  }
  const double hz = b.tsc_hz > 0 ? b.tsc_hz : 1, fill_s = (double)b.fill_tsc / hz;
  const double enq_s =
      b.t_last_enq > b.t_first_enq ? (double)(b.t_last_enq - b.t_first_enq) / 1e9 : 0;
  const double rate = rx_s > 0 ? in / rx_s : 0, sets_rate = rx_s > 0 ? sets / rx_s : 0;
  const double enq_rate = enq_s > 0 ? (double)b.frames_enq / enq_s : 0;
  const double enq_cap = fill_s > 0 ? (double)b.frames_enq / fill_s : 0;
  /* paced (--rate): the rings run dry between frames by design */
  const int starved = b.rate == 0 && (b.ring_empty || b.pool_empty);
  double lat[4];
  const char *const lat_k[4] = {"p50", "p99", "p999", "max"};
  for (int i = 0; i < 4; i++) lat[i] = jnum(s, "latency_ns", "fulfill", lat_k[i], NULL) / 1e3;
  printf("ampd: %.0f HTLCs/s (%.0f per worker), %.0f sets/s over %.3f s of rx; fulfill latency"
         " p50 %.0f us, p99 %.0f us\n", rate, rate / workers, sets_rate, rx_s, lat[0], lat[1]);
  printf("generator (lcore %u): %llu frames enqueued, %.0f frames/s from its first to its last"
         " enqueue, %.0f per second of its own work (copy + enqueue); lowest rx-ring fill while"
         " traffic remained %d of %u (-1: it all fit at once); a ring found empty %llu times, the"
         " pool %llu times: %s\n", b.gen_lcore, (unsigned long long)b.frames_enq, enq_rate,
         enq_cap, b.ring_min_fill, BENCH_RING - 1, (unsigned long long)b.ring_empty,
         (unsigned long long)b.pool_empty,
         starved ? "ampd may have waited for traffic" : "never starved or blocked");
  json_t *gen_j = json_pack("{s:I, s:f, s:I, s:f, s:f, s:f, s:I, s:f, s:i, s:i, s:I, s:I, s:b}",
      "lcore", (json_int_t)b.gen_lcore, "build_s", build_s, "frames", (json_int_t)b.frames_enq,
      "enqueue_per_s", enq_rate, "enqueue_per_work_s", enq_cap,
      "work_s", (double)(b.fill_tsc + b.drain_tsc) / hz, "wakes", (json_int_t)b.wakes,
      "tip_wait_us", (double)b.tip_wait_ns / 1e3, "rx_ring_min_fill", b.ring_min_fill,
      "rx_ring_capacity", BENCH_RING - 1, "rx_ring_empty", (json_int_t)b.ring_empty,
      "pool_empty", (json_int_t)b.pool_empty, "starved", starved);
  if (gen_j) json_object_set_new(gen_j, "rate", json_real(b.rate));
  json_t *lat_j = json_pack("{s:f, s:f, s:f, s:f}", lat_k[0], lat[0], lat_k[1], lat[1],
                            lat_k[2], lat[2], lat_k[3], lat[3]);
  json_t *out = json_pack("{s:b, s:I, s:s, s:I, s:I, s:s, s:f, s:f, s:f, s:f, s:f, s:f, s:f,"
                          " s:o, s:o}",
      "pass", !fail, "workers", (json_int_t)workers, "shards", shards,
      "payments", (json_int_t)payments, "htlcs", (json_int_t)b.htlcs, "sync", sync,
      "htlcs_in", in, "htlcs_settled", settled, "sets_settled", sets, "rx_s", rx_s,
      "htlc_per_s", rate, "htlc_per_s_per_worker", rate / workers, "sets_per_s", sets_rate,
      "latency_fulfill_us", lat_j, "generator", gen_j);
  if (out && summary != sum_path) json_object_set_new(out, "summary_json", json_string(summary));
  char *line = out ? json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
  if (!line) {
    fprintf(stderr, "ampd-ring: cannot make the result line\n");
    fail = 1;
  } else {
    printf("ampd-ring-bench %s\n", line);
    free(line);
  }
  json_decref(out);
  printf("%s\n", fail ? "ampd-ring: FAIL" : "ampd-ring: PASS");
  json_decref(s);
  amp_check_free(chk);
  for (unsigned q = 0; q < b.n_q; q++) free(b.req[q].buf);
  free(b.tip.buf);
  free(b.rep.buf);
  if (!keep && !fail) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  }
  return fail;
}

int main(int argc, char **argv) {
  unsigned workers = 2, records = 1;
  uint64_t payments = 400;
  const char *keep = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--workers") && i + 1 < argc) workers = (unsigned)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--payments") && i + 1 < argc) payments = strtoull(argv[++i], 0, 10);
    else if (!strcmp(argv[i], "--records") && i + 1 < argc) records = (unsigned)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--keep") && i + 1 < argc) keep = argv[++i];
    else if (!strcmp(argv[i], "--bench")) return bench_main(argc, argv);
    else {
      fprintf(stderr, "usage: ampd-ring [--workers N] [--payments N] [--records R] [--keep DIR]\n"
                      "       ampd-ring --bench --payments N --shards K [--workers W]"
                      " [--lcores SPEC]\n"
                      "                 [--sync MODE] [--summary-json FILE] [--keep DIR]"
                      " [--rate FRAMES_PER_S]\n");
      return 2;
    }
  }
  if (workers < 1 || workers > MAX_Q) workers = 2;

  char dir[256];
  if (run_dir(dir, sizeof dir, keep) != 0) return 1;
  /* Traffic: two gateways, every bad class. */
  amp_gen_cfg_t gc;
  char err[AMP_CONFIG_ERR_MAX];
  if (traffic_cfg(&gc, dir)) return 1;
  gc.payments = payments;
  if (amp_gen_parse_shards(&gc, "1-6", err, sizeof err) != AMP_OK) return 1;
  gc.records_per_frame = records;
  gc.interleave = 4;
  gc.seed = (uint64_t)time(NULL) ^ (uint64_t)getpid();
  for (int c = 1; c < AMP_GEN_CLASS_COUNT; c++) gc.rate[c] = 0.012;
  if (workers > 1) gc.rate[AMP_GEN_MISMATCHED] = gc.rate[AMP_GEN_REPLAY] = 0;
  fprintf(stderr, "ampd-ring: seed %llu, %u worker(s), %llu payments, %u record(s) per frame,"
          " dir %s\n", (unsigned long long)gc.seed, workers, (unsigned long long)payments,
          records, dir);

  inj_t j;
  memset(&j, 0, sizeof j);
  j.n_rxq = workers;
  j.n_txq = workers;
  if (amp_gen_new(&j.gen, &gc, err, sizeof err) != AMP_OK) {
    fprintf(stderr, "ampd-ring: generator: %s\n", err);
    return 1;
  }
  amp_check_opts_t co = {0};
  j.chk = amp_check_new(&co);
  if (!j.chk) return 1;
  for (size_t g = 0; g < gc.n_gw; g++)
    if (amp_check_gateway(j.chk, gc.gw[g].id, gc.gw[g].key) != AMP_OK) return 1;

  /* ampd's argv: EAL (one main lcore + the workers, on whatever CPUs exist),
   * then ampd's options. */
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  if (ncpu < 1) ncpu = 1;
  char lcores[256], prefix[64], ddir[300], rxq[16], gws[2][200];
  int n = snprintf(lcores, sizeof lcores, "--lcores=0@0");
  for (unsigned w = 1; w <= workers; w++)
    n += snprintf(lcores + n, sizeof lcores - (size_t)n, ",%u@%ld", w, (long)(w % ncpu));
  snprintf(prefix, sizeof prefix, "--file-prefix=ampd-ring-%d", (int)getpid());
  snprintf(ddir, sizeof ddir, "--data-dir=%s", dir);
  snprintf(rxq, sizeof rxq, "--rx-queues=%u", workers);
  gateway_args(gws, &gc);
  char hold[32];
  snprintf(hold, sizeof hold, "--hold-timeout-ms=%d", HOLD_MS);
  char *av[] = {"ampd-ring", lcores, "--no-huge", "--no-pci", "-m", "512", prefix,
                "--log-level=lib.eal:error", "--", ddir, gws[0], gws[1], "--accept-amp", hold,
                "--sync=none", rxq, "--log-level=warn", NULL};
  int ac = (int)(sizeof av / sizeof av[0]) - 1;
  ampd_hooks_t hooks = {hook_after_eal, hook_started, hook_poll, hook_stopped, &j};
  int rc = ampd_run(ac, av, &hooks);
  remove_runtime_dir(j.runtime_dir);
  if (rc != 0) {
    fprintf(stderr, "ampd-ring: ampd exited with %d\n", rc);
    if (j.no_rings) {
      fprintf(stderr, "ampd-ring: SKIP: ring ports cannot be made here\n");
      return 77;
    }
    return 1;
  }

  int fail = amp_check_report(j.chk, stdout) != 0 || j.gen_error;
  printf("frames injected %llu (+%llu replays, +%llu cut), replies %llu frames\n",
         (unsigned long long)j.frames, (unsigned long long)j.dups, (unsigned long long)j.cut,
         (unsigned long long)j.replies);
#define EXPECT_EQ(what, got, want)                                                   \
  do {                                                                               \
    if ((got) != (want)) {                                                           \
      printf("FAIL %s: %llu, expected %llu\n", what, (unsigned long long)(got),      \
             (unsigned long long)(want));                                            \
      fail = 1;                                                                      \
    }                                                                                \
  } while (0)
  EXPECT_EQ("replayed-seq drops", j.seen.drop[AMP_FRAME_DROP_REPLAYED_SEQ], j.dups);
  EXPECT_EQ("bad-tag drops", j.seen.drop[AMP_FRAME_DROP_BAD_TAG], j.bad_tag_frames);
  EXPECT_EQ("unknown-gateway drops", j.seen.drop[AMP_FRAME_DROP_UNKNOWN_GATEWAY],
            j.unknown_gw_frames);
  EXPECT_EQ("malformed drops (cut frames)", j.seen.drop[AMP_FRAME_DROP_MALFORMED], j.cut);
  EXPECT_EQ("frames accepted", j.seen.rx_frames, j.frames - j.bad_tag_frames - j.unknown_gw_frames);
  EXPECT_EQ("replies lost", j.seen.tx_dropped, 0);
  amp_gen_stats_t gs;
  amp_gen_stats(j.gen, &gs);
  uint64_t settling = 0;
  for (int c = 0; c < AMP_GEN_CLASS_COUNT; c++)
    if (c != AMP_GEN_MISSING && c != AMP_GEN_WRONG_SHARE && c != AMP_GEN_UNDERPAID)
      settling += gs.payments_class[c];
  EXPECT_EQ("sets settled", j.settled_sets, settling);
  printf("%s\n", fail ? "ampd-ring: FAIL" : "ampd-ring: PASS");
  amp_check_free(j.chk);
  amp_gen_delete(j.gen);
  if (!keep && !fail) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  }
  return fail;
}
