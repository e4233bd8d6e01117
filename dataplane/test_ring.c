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
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_eth_ring.h>
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
  int gen_error;
  int no_rings;                /* rte_eth_from_rings failed: skip */
  char runtime_dir[512];       /* EAL's, removed at the end */
  /* what ampd must count */
  uint64_t frames, dups, bad_tag_frames, unknown_gw_frames, replies;
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

static int hook_after_eal(void *arg) {
  inj_t *j = arg;
  char name[32];
  snprintf(j->runtime_dir, sizeof j->runtime_dir, "%s", rte_eal_get_runtime_dir());
  j->pool = rte_pktmbuf_pool_create("ring_inj", 8191, 0, 0,
                                    RTE_PKTMBUF_HEADROOM + AMP_FRAME_MAX_LEN + 64, SOCKET_ID_ANY);
  if (!j->pool) {
    fprintf(stderr, "ampd-ring: cannot make the injection pool: %s\n", rte_strerror(rte_errno));
    return -1;
  }
  for (unsigned q = 0; q < j->n_rxq; q++) {
    snprintf(name, sizeof name, "ring_rx%u", q);
    j->rx[q] = rte_ring_create(name, RING_SIZE, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (!j->rx[q]) return -1;
  }
  for (unsigned q = 0; q < j->n_txq; q++) {
    snprintf(name, sizeof name, "ring_tx%u", q);
    j->tx[q] = rte_ring_create(name, RING_SIZE, SOCKET_ID_ANY, RING_F_SC_DEQ);
    if (!j->tx[q]) return -1;
  }
  int port = rte_eth_from_rings("net_ring_ampd", j->rx, j->n_rxq, j->tx, j->n_txq, SOCKET_ID_ANY);
  if (port < 0) {
    fprintf(stderr, "ampd-ring: rte_eth_from_rings: %s\n", rte_strerror(rte_errno));
    j->no_rings = 1;
    return -1;
  }
  return 0;
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
  (void)app;
  uint64_t now = now_ns();
  if (now - j->start_ns > (uint64_t)DEADLINE_S * 1000000000ULL) {
    fprintf(stderr, "ampd-ring: deadline of %d s reached\n", DEADLINE_S);
    return 1;
  }
  if (!atomic_load(&j->gen_done)) return 0;
  return now - atomic_load(&j->last_reply_ns) > (uint64_t)QUIET_MS * 1000000ULL;
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

int main(int argc, char **argv) {
  unsigned workers = 2, records = 1;
  uint64_t payments = 400;
  const char *keep = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--workers") && i + 1 < argc) workers = (unsigned)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--payments") && i + 1 < argc) payments = strtoull(argv[++i], 0, 10);
    else if (!strcmp(argv[i], "--records") && i + 1 < argc) records = (unsigned)atoi(argv[++i]);
    else if (!strcmp(argv[i], "--keep") && i + 1 < argc) keep = argv[++i];
    else {
      fprintf(stderr, "usage: ampd-ring [--workers N] [--payments N] [--records R] [--keep DIR]\n");
      return 2;
    }
  }
  if (workers < 1 || workers > MAX_Q) workers = 2;

  char dir[256];
  if (keep) {
    snprintf(dir, sizeof dir, "%s", keep);
    mkdir(dir, 0700);
  } else {
    snprintf(dir, sizeof dir, "/tmp/ampd-ring.XXXXXX");
    if (!mkdtemp(dir)) {
      perror("mkdtemp");
      return 1;
    }
  }
  if (amp_secp_init() != AMP_OK) return 1;
  char keyfile[300], err[AMP_CONFIG_ERR_MAX];
  snprintf(keyfile, sizeof keyfile, "%s/node.key", dir);
  uint8_t nk[32];
  if (amp_config_node_key(nk, NULL, keyfile, 1, err, sizeof err) != AMP_OK) {
    fprintf(stderr, "ampd-ring: %s\n", err);
    return 1;
  }

  /* Traffic: two gateways, every bad class. */
  amp_gen_cfg_t gc;
  amp_gen_cfg_default(&gc);
  amp_pubkey_t pk;
  if (amp_secp_pubkey_create(&pk, nk) != AMP_OK) return 1;
  amp_secp_pubkey_serialize(gc.node_pubkey, &pk);
  amp_wipe(nk, sizeof nk);
  gc.n_gw = 2;
  for (size_t g = 0; g < gc.n_gw; g++) {
    gc.gw[g].id = 100 + g;
    if (amp_random(gc.gw[g].key, 32) != AMP_OK) return 1;
    gc.gw[g].mac[0] = 0x02;
    gc.gw[g].mac[5] = (uint8_t)(g + 1);
    gc.gw[g].ip[0] = 198;
    gc.gw[g].ip[1] = 18;
    gc.gw[g].ip[3] = (uint8_t)(g + 1);
  }
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
  for (size_t g = 0; g < gc.n_gw; g++) {
    char hex[65];
    amp_hex_encode(hex, gc.gw[g].key, 32);
    snprintf(gws[g], sizeof gws[g], "--gateway=gw%zu,id=%llu,key=%s", g,
             (unsigned long long)gc.gw[g].id, hex);
  }
  char hold[32];
  snprintf(hold, sizeof hold, "--hold-timeout-ms=%d", HOLD_MS);
  char *av[] = {"ampd-ring", lcores, "--no-huge", "--no-pci", "-m", "512", prefix,
                "--log-level=lib.eal:error", "--", ddir, gws[0], gws[1], "--accept-amp", hold,
                "--sync=none", rxq, "--log-level=warn", NULL};
  int ac = (int)(sizeof av / sizeof av[0]) - 1;
  ampd_hooks_t hooks = {hook_after_eal, hook_started, hook_poll, hook_stopped, &j};
  int rc = ampd_run(ac, av, &hooks);
  if (j.runtime_dir[0] && strstr(j.runtime_dir, "ampd-ring-")) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", j.runtime_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", j.runtime_dir);
  }
  if (rc != 0) {
    fprintf(stderr, "ampd-ring: ampd exited with %d\n", rc);
    if (j.no_rings) {
      fprintf(stderr, "ampd-ring: SKIP: ring ports cannot be made here\n");
      return 77;
    }
    return 1;
  }

  int fail = amp_check_report(j.chk, stdout) != 0 || j.gen_error;
  printf("frames injected %llu (+%llu replays), replies %llu frames\n",
         (unsigned long long)j.frames, (unsigned long long)j.dups, (unsigned long long)j.replies);
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
  EXPECT_EQ("malformed drops", j.seen.drop[AMP_FRAME_DROP_MALFORMED], 0);
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
