/* ampd.h: the daemon's shared state: the application (ports, gateways, the
 * engine), and one struct per worker lcore (like l3fwd's lcore_conf) that the
 * worker fetches once and never shares: its rx queues, its tx buffers, its
 * open reply frames, its counters.
 *
 * Threads: the main lcore runs control (main.c: signals, exit-idle, periodic
 * stats, shutdown); one worker per worker lcore runs ampd_worker_main
 * (worker.c); the store's writer and liburcu's threads belong to store/ and
 * engine/. Shared mutable state is only:
 *   - ampd_gateway_t: the anti-replay window and the learned addresses, under
 *     the gateway's spinlock (held for a window update or an address copy:
 *     tens of ns); the outgoing seq, an atomic counter.
 *   - ampd_app_t.stop_rx / quit: set by control, read by workers.
 *   - each worker's published fields (last_rx_ns, busy), written by it, read
 *     by control.
 * Anti-replay with several workers: a gateway's frames may arrive on any
 * queue (RSS spreads by 5-tuple, and a gateway may use several source ports),
 * so the window is shared and lock-protected rather than pinned to a worker.
 */
#ifndef AMPD_H
#define AMPD_H

#include <stdatomic.h>
#include <stdint.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_spinlock.h>

#include "amp_config.h"
#include "amp_engine.h"
#include "amp_frame.h"
#include "amp_hmac.h"

#define AMPD_BURST 32                  /* rx burst and tx buffer size */
#define AMPD_DRAIN_US 100              /* partial tx buffers drained this often */
#define AMPD_MAX_WORKERS 64
#define AMPD_MAX_RXQ 64                /* (port, queue) pairs per worker */
#define AMPD_MAX_QUEUES 64             /* queues per port */
#define AMPD_STOP_GRACE_MS 10000       /* longest a worker waits for the store at stop */

/* Dataplane counters per worker, beyond the frame drop reasons. */
#define AMPD_COUNTERS(X)                                                       \
  X(rx_pkts, "packets received")                                               \
  X(rx_bytes, "bytes received")                                                \
  X(rx_frames, "fabric frames accepted")                                       \
  X(rx_records, "records accepted")                                            \
  X(tips, "tip messages (block height)")                                       \
  X(bad_tips, "malformed tip messages")                                        \
  X(drop_not_ours, "frames to another IPv4 address")                           \
  X(tx_frames, "reply frames sent")                                            \
  X(tx_records, "reply records sent")                                          \
  X(tx_bytes, "reply bytes sent")                                              \
  X(tx_dropped, "reply frames the port refused (tx queue full)")               \
  X(tx_nombuf, "replies lost: no mbuf for a frame")                            \
  X(tx_too_big, "replies lost: larger than a frame")                           \
  X(tx_unknown_gateway, "replies to a gateway not configured")                \
  X(bench_rx_surplus, "packets past --bench-rx-packets, freed unread")

typedef struct {
#define AMPD_CNT_FIELD_(n, d) uint64_t n;
  AMPD_COUNTERS(AMPD_CNT_FIELD_)
#undef AMPD_CNT_FIELD_
  uint64_t drop[AMP_FRAME_DROP_COUNT_];  /* by amp_frame_drop_t */
} ampd_counters_t;

/* ---- Instrumentation (bench/e2e.sh reads it from --summary-json) ----------
 * Latency of an HTLC: TSC at the rx burst that brought its update_add_htlc to
 * TSC when its answer (fulfill, fail, malformed) is put into a reply frame
 * (the frame leaves at the end of that loop iteration; the tx buffer is
 * drained at least every AMPD_DRAIN_US). The rx TSC travels with the HTLC
 * through the engine as its message's cookie (amp_engine_in_t) and comes
 * back with the answer, from whichever worker answers it (the one that
 * completed the set): no side table, no cache miss per HTLC for it (the
 * 4 MB stamp table it replaced cost ~450 cycles per answer, measured, on its
 * load alone). An answer without one (cookie 0) is counted as unmatched, not
 * timed. Histograms: log2 buckets
 * with 16 linear sub-buckets (~6% resolution) of TSC cycles, per worker, no
 * allocation. */
#define AMPD_LAT_SUB_BITS 4
#define AMPD_LAT_BUCKETS ((64 - AMPD_LAT_SUB_BITS + 1) << AMPD_LAT_SUB_BITS)

typedef struct {
  uint64_t n[AMPD_LAT_BUCKETS];
  uint64_t count, sum, max;                /* cycles */
} ampd_lat_hist_t;

static inline unsigned ampd_lat_bucket(uint64_t v) {
  if (v < (1u << AMPD_LAT_SUB_BITS)) return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  unsigned e = msb - AMPD_LAT_SUB_BITS + 1;
  return (e << AMPD_LAT_SUB_BITS) |
         (unsigned)((v >> (msb - AMPD_LAT_SUB_BITS)) & ((1u << AMPD_LAT_SUB_BITS) - 1));
}

/* The lowest value of bucket b, and its width. */
static inline uint64_t ampd_lat_bucket_lo(unsigned b, uint64_t *width) {
  if (b < (1u << AMPD_LAT_SUB_BITS)) {
    *width = 1;
    return b;
  }
  unsigned e = b >> AMPD_LAT_SUB_BITS, s = b & ((1u << AMPD_LAT_SUB_BITS) - 1);
  *width = 1ULL << (e - 1);
  return (uint64_t)((1u << AMPD_LAT_SUB_BITS) + s) << (e - 1);
}

static inline void ampd_lat_add(ampd_lat_hist_t *h, uint64_t v) {
  h->n[ampd_lat_bucket(v)]++;
  h->count++;
  h->sum += v;
  if (v > h->max) h->max = v;
}

/* the same value n times (n answers that waited alike) */
static inline void ampd_lat_add_n(ampd_lat_hist_t *h, uint64_t v, uint32_t n) {
  h->n[ampd_lat_bucket(v)] += n;
  h->count += n;
  h->sum += v * n;
  if (n && v > h->max) h->max = v;
}

/* One gateway: configuration plus the state shared by workers. */
typedef struct {
  rte_spinlock_t lock;
  amp_frame_window_t win;            /* under lock */
  amp_frame_addr_t peer;             /* under lock: addresses of its last good frame */
  uint16_t peer_port;                /* under lock: port index it was heard on */
  uint8_t learned;                   /* under lock */
  _Atomic uint64_t tx_seq;           /* next seq of our frames to it */
  uint64_t id;
  amp_hmac_t kctx;                   /* keyed HMAC context; read-only after start */
  const amp_config_gateway_t *cfg;
} __rte_cache_aligned ampd_gateway_t;

/* One port as ampd uses it. */
typedef struct {
  uint16_t port_id;
  uint16_t n_rxq, n_txq;
  uint16_t tx_frame_max;             /* largest frame we send on it (MTU + 14) */
  uint8_t mac[6];                    /* our MAC on it (config or the port's) */
  uint8_t txq_shared;                /* fewer tx queues than workers: lock */
  rte_spinlock_t txq_lock[AMPD_MAX_QUEUES];
  struct rte_mempool *rx_pool;
  /* A net_af_packet port's sockets (the PMD's, found at start), whose ring
   * overflows the kernel counts and no DPDK counter shows:
   * ampd_port_kernel_drops reads them. */
  int kfd[AMPD_MAX_QUEUES];
  _Atomic unsigned n_kfd;
  _Atomic uint64_t kernel_drops;
} ampd_port_t;

typedef struct {
  uint16_t port;                     /* index into app.ports */
  uint16_t queue;
  uint64_t left;                     /* packets it may still take (--bench-rx-packets) */
} ampd_rxq_t;

typedef struct {
  struct rte_eth_dev_tx_buffer *buf;
  uint16_t queue;
} ampd_txq_t;

/* A reply frame being filled for one gateway. */
typedef struct {
  struct rte_mbuf *m;                /* NULL: none open */
  amp_frame_builder_t b;
  uint16_t port;                     /* index into app.ports */
} ampd_open_t;

typedef struct ampd_app ampd_app_t;

/* Per worker lcore. Only its worker writes it (except the published fields). */
typedef struct {
  ampd_app_t *app;
  unsigned idx;
  unsigned lcore;
  amp_worker_t *ew;
  amp_engine_sink_t sink;
  uint16_t n_rxq;
  ampd_rxq_t rxq[AMPD_MAX_RXQ];
  ampd_txq_t txq[AMP_CONFIG_MAX_PORTS];   /* by port index */
  ampd_open_t open[AMP_CONFIG_MAX_GATEWAYS];
  uint16_t n_open;
  uint16_t open_list[AMP_CONFIG_MAX_GATEWAYS];
  amp_engine_in_t *in;               /* AMPD_BURST * AMP_FRAME_MAX_RECORDS */
  uint8_t *lin;                      /* AMPD_BURST linear copies of multi-segment frames */
  amp_frame_t *fr;                   /* AMPD_BURST parsed frames of an rx burst */
  ampd_counters_t cnt;
  uint64_t first_rx_ns;              /* for the summary's rate */
  /* Instrumentation: latency (cycles) of fulfills and of fails/malformed,
   * answers without an rx TSC (cookie 0), loop iterations that did work (rx or
   * answers) or not and their cycles, TSC of the first rx and last answer. */
  ampd_lat_hist_t lat_fulfill, lat_fail;
  ampd_lat_hist_t lat_commit;        /* per answer: its store intent's wait (engine sink) */
  double tsc_per_ns;
  uint64_t lat_unmatched;
  uint64_t polls_busy, polls_idle, tsc_busy, tsc_idle;
  uint64_t first_rx_tsc, last_emit_tsc;
  uint64_t cpu_ns;                   /* the worker thread's CPU time (at its exit) */
  /* Published for control (relaxed atomics). */
  _Atomic uint64_t last_rx_ns __rte_cache_aligned;
  _Atomic uint64_t last_poll_ns;     /* the worker's clock at its latest rx poll */
  _Atomic int busy;                  /* something in flight in the engine */
  _Atomic int done;                  /* the worker has left its loop */
  unsigned test_stall_ms;            /* test only: AMPD_TEST_STALL_MS, see worker.c */
} __rte_cache_aligned ampd_worker_t;

struct ampd_app {
  amp_config_t cfg;
  amp_engine_t *engine;
  amp_store_t *store;
  unsigned n_workers;
  ampd_worker_t *workers;            /* n_workers, rte_zmalloc'd */
  unsigned n_ports;
  ampd_port_t ports[AMP_CONFIG_MAX_PORTS];
  struct rte_mempool *pool;          /* tx frames, and rx where the port scatters */
  unsigned n_gateways;
  ampd_gateway_t *gateways;          /* n_gateways, rte_zmalloc'd */
  int16_t gw_slot[256];              /* open addressing: gateway id -> index */
  _Atomic int stop_rx;               /* control: stop reading, finish, exit */
  _Atomic int stop_req;              /* admin `stop`: control begins the stop */
  uint64_t start_ns;
  uint8_t node_id[33];               /* the node's public key (not the secret) */
  struct amp_admin *admin;           /* the admin server, or NULL */
  int bench_rx_only;                 /* --bench-rx-only: frames checked, records dropped */
  uint64_t bench_rx_packets[AMP_CONFIG_MAX_PORTS]; /* --bench-rx-packets: per port's rx
                                                      queue, 0 = no limit */
  const char *summary_json;          /* --summary-json FILE, or NULL */
  int block_irq_cpu;                 /* the CPU taking the disk's interrupts, or -1 */
  unsigned workers_on_block_irq;     /* workers whose lcore may run on it (warned at start) */
};


/* ampd_log: a log line on stderr at a level (amp_config_log_t), if the
 * configured level lets it through; AMPD_LOG_NOTICE lines (start, stop,
 * reload) always go out. Never given secrets. */
#define AMPD_LOG_NOTICE 4
void ampd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
extern int ampd_log_level;

/* ampd_gateway_find: the index of the gateway with that id, or -1.
 * Lock-free (the table is read-only after start). */
static inline int ampd_gateway_find(const ampd_app_t *app, uint64_t id) {
  uint64_t h = id * 0x9E3779B97F4A7C15ULL;
  for (unsigned i = 0; i < 256; i++) {
    int16_t s = app->gw_slot[((h >> 56) + i) & 255];
    if (s < 0) return -1;
    if (app->gateways[s].id == id) return s;
  }
  return -1;
}

/* ampd_admin_start starts the admin socket server (dataplane/admin/) over the
 * engine and the counters, unless admin-socket is "none". Returns 0, or -1
 * after logging why (the socket path is in use, ...). ampd_admin_stop stops
 * it; call before the engine goes. Both on the main lcore. Without the admin
 * library they do nothing. */
#ifdef AMPD_HAVE_ADMIN
int ampd_admin_start(ampd_app_t *app);
void ampd_admin_stop(ampd_app_t *app);
#else
static inline int ampd_admin_start(ampd_app_t *app) { (void)app; return 0; }
static inline void ampd_admin_stop(ampd_app_t *app) { (void)app; }
#endif

/* ampd_worker_main: the worker lcore's loop (rte_eal_remote_launch). arg is
 * its ampd_worker_t. Returns 0. */
int ampd_worker_main(void *arg);

/* ampd_worker_txbuf_init gives worker w a tx buffer for port index pi on tx
 * queue `queue` (drops are retried briefly, then counted in w's tx_dropped).
 * Returns 0 or -1 (no memory). Called before the workers run. */
int ampd_worker_txbuf_init(ampd_worker_t *w, unsigned pi, uint16_t queue);

/* ampd_ports_setup configures and starts every port of app->cfg (or every
 * port DPDK found), with rx/tx queues for app->n_workers workers, and assigns
 * rx queues to workers and a tx buffer per (worker, port).
 * Returns 0, or -1 after logging what failed. */
int ampd_ports_setup(ampd_app_t *app);

/* ampd_port_kernel_drops returns the frames the kernel dropped because the
 * rx ring of the i-th port's packet sockets was full, since start: for a
 * net_af_packet port (frames lost before the PMD, which DPDK 22.11's
 * af_packet driver does not count in imissed); 0 for every other port.
 * Reading the kernel's counter resets it, so the total is kept here.
 * Any thread; after ampd_ports_close it returns the total so far. Cost: one
 * getsockopt per queue: not for the hot path. */
uint64_t ampd_port_kernel_drops(ampd_app_t *app, unsigned i);

/* ampd_ports_close stops and closes every port (tx_pcap files are complete
 * after this). */
void ampd_ports_close(ampd_app_t *app);

#endif /* AMPD_H */
