/* ampd_app.c: the daemon's wiring (like l3fwd's main): options, node key,
 * EAL, store, engine, gateways, ports, workers; then the control loop on the
 * main lcore (signals, exit-idle, periodic stats) and an orderly stop.
 *
 * Order matters: every option and the node key are checked before EAL starts
 * and before the store is touched, so a bad configuration changes nothing.
 * Stop (SIGTERM, SIGINT, or --exit-idle): workers stop rx, finish what they
 * hold in hand, wait for the store to commit and hand back what is in flight,
 * answer it, flush tx; then the engine and the store close, the ports close
 * (tx pcap files are complete), and a summary is printed.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>

#include "amp_irq.h"
#include "amp_secp.h"
#include "ampd.h"
#include "ampd_app.h"

int ampd_log_level = AMP_LOG_INFO;

/* DPDK's rte_log with a log type of ampd's own, "ampd" (EAL's
 * --log-level=ampd:debug works; the admin's setloglevel changes it at run
 * time). Lines go where EAL sends its log (stderr). */
RTE_LOG_REGISTER(ampd_logtype, ampd, INFO);

static uint32_t rte_level_of(int level) {
  return level == AMP_LOG_ERROR ? RTE_LOG_ERR
       : level == AMP_LOG_WARN ? RTE_LOG_WARNING
       : level == AMP_LOG_DEBUG ? RTE_LOG_DEBUG
       : level == AMPD_LOG_NOTICE ? RTE_LOG_NOTICE : RTE_LOG_INFO;
}

/* The configured level (amp_config_log_t) onto the log type. */
static void log_level_apply(int level) {
  ampd_log_level = level;
  rte_log_set_level(ampd_logtype, rte_level_of(level));
}

void ampd_log(int level, const char *fmt, ...) {
  uint32_t rl = rte_level_of(level);
  int pass = rte_log_can_log(ampd_logtype, rl);
  if (!pass && level != AMPD_LOG_NOTICE) return;
  static const char *const tag[] = {"error", "warn", "info", "debug", "notice"};
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  const char *t = tag[level < 0 ? 0 : level > 4 ? 4 : level];
  if (pass) {
    rte_log(rl, ampd_logtype, "ampd: %s: %s\n", t, line);
  } else {   /* start, stop, reload: always, whatever the level */
    FILE *f = rte_log_get_stream();
    fprintf(f ? f : stderr, "ampd: %s: %s\n", t, line);
    fflush(f ? f : stderr);
  }
}

static volatile sig_atomic_t got_signal;
static volatile sig_atomic_t got_hup;

static void on_signal(int sig) { got_signal = sig; }
static void on_hup(int sig) { got_hup = sig; }

/* ---- SIGHUP: reload what can change while running ----------------------- */

/* The options as ampd_run was given them, for a reload. */
static int opt_argc;
static char **opt_argv;

/* Writes the dump of cfg into a malloc'd string (NULL on failure). */
static char *dump_str(const amp_config_t *cfg) {
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  if (!m) return NULL;
  amp_config_dump(m, cfg);
  fclose(m);
  return buf;
}

/* Re-reads the config file and the same flags. Applies log-level,
 * stats-interval and exit-idle at once; names every other option that changed
 * (those take effect at the next start). A bad file changes nothing. */
static void reload(ampd_app_t *app) {
  static amp_config_t next;   /* large: not on the stack */
  char err[AMP_CONFIG_ERR_MAX + AMP_CONFIG_PATH_MAX];
  if (amp_config_parse(&next, opt_argc, opt_argv, err, sizeof err) != AMP_OK) {
    ampd_log(AMPD_LOG_NOTICE, "SIGHUP: configuration not reloaded: %s", err);
    amp_config_wipe(&next);
    return;
  }
  amp_config_t *cur = &app->cfg;
  cur->log_level = next.log_level;
  log_level_apply(next.log_level);
  cur->stats_interval_ms = next.stats_interval_ms;
  cur->exit_idle_ms = next.exit_idle_ms;
  char *a = dump_str(cur), *b = dump_str(&next);
  int keys_differ = 0;
  for (unsigned i = 0; i < cur->n_gateways && i < next.n_gateways; i++)
    keys_differ |= !amp_ct_eq(cur->gateways[i].key, next.gateways[i].key, 32);
  char pending[512] = "";
  size_t n = 0;
  if (a && b) {
    /* Line by line: "name = value"; a differing line names its option. */
    char *sa = NULL, *sb = NULL;
    char *la = strtok_r(a, "\n", &sa), *lb = strtok_r(b, "\n", &sb);
    for (; la || lb; la = strtok_r(NULL, "\n", &sa), lb = strtok_r(NULL, "\n", &sb)) {
      if (la && lb && !strcmp(la, lb)) continue;
      const char *l = lb ? lb : la;
      size_t k = strcspn(l, "=");
      while (k && l[k - 1] == ' ') k--;
      if (n < sizeof pending - 40)
        n += (size_t)snprintf(pending + n, sizeof pending - n, "%s%.*s", n ? ", " : "", (int)k, l);
    }
  }
  if (keys_differ && n < sizeof pending - 40)
    n += (size_t)snprintf(pending + n, sizeof pending - n, "%sgateway keys", n ? ", " : "");
  free(a);
  free(b);
  amp_config_wipe(&next);
  ampd_log(AMPD_LOG_NOTICE, "SIGHUP: reloaded log-level (%s), stats-interval (%u ms), exit-idle"
           " (%u ms)%s%s%s", amp_config_log_str(cur->log_level), cur->stats_interval_ms,
           cur->exit_idle_ms, n ? "; changed but applied only at the next start: " : "",
           pending, n ? "" : "; nothing else changed");
}

/* ---- The data directory: one ampd at a time ----------------------------- */

/* Creates dir (0700, parents too) if missing and takes an exclusive lock on
 * dir/ampd.lock, kept until the process ends (a crash releases it). Two
 * daemons on one store would each believe their in-memory indexes.
 * Returns the lock's fd, or -1 with err set. */
static int lock_data_dir(const char *dir, char *err, size_t errlen) {
  char path[AMP_CONFIG_PATH_MAX + 16];
  snprintf(path, sizeof path, "%s", dir);
  for (char *p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(path, 0700) != 0 && errno != EEXIST) break;
    *p = '/';
  }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "data-dir %s: cannot create it: %s", dir, strerror(errno));
    return -1;
  }
  snprintf(path, sizeof path, "%s/ampd.lock", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = "?";
    ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
    if (n > 0) {
      pid[n] = 0;
      pid[strcspn(pid, "\n")] = 0;
    }
    snprintf(err, errlen, "data-dir %s is in use by another ampd (pid %s)", dir, pid);
    close(fd);
    return -1;
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
    /* The lock holds even if the pid cannot be written. */
  }
  return fd;
}

/* ---- Gateways ----------------------------------------------------------- */

static int gateways_init(ampd_app_t *app) {
  const amp_config_t *cfg = &app->cfg;
  app->n_gateways = cfg->n_gateways;
  app->gateways = rte_zmalloc("ampd_gateways", sizeof(ampd_gateway_t) * cfg->n_gateways,
                              RTE_CACHE_LINE_SIZE);
  if (!app->gateways) return -1;
  memset(app->gw_slot, 0xff, sizeof app->gw_slot);
  /* Our seq toward each gateway must keep rising across restarts (its
   * anti-replay window survives us): start from the wall clock in ns. */
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t seq0 = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
  for (unsigned i = 0; i < cfg->n_gateways; i++) {
    ampd_gateway_t *g = &app->gateways[i];
    const amp_config_gateway_t *c = &cfg->gateways[i];
    rte_spinlock_init(&g->lock);
    g->id = c->id;
    g->cfg = c;
    atomic_init(&g->tx_seq, seq0);
    amp_hmac_init(&g->kctx, c->key, 32);
    uint64_t h = c->id * 0x9E3779B97F4A7C15ULL;
    for (unsigned k = 0; k < 256; k++) {
      unsigned s = ((unsigned)(h >> 56) + k) & 255;
      if (app->gw_slot[s] < 0) {
        app->gw_slot[s] = (int16_t)i;
        break;
      }
    }
  }
  return 0;
}

/* ---- Workers and the disk's interrupts ---------------------------------- */

/* The CPU of an lcore whose set is one CPU, else -1. */
static int lcore_single_cpu(unsigned lcore) {
  rte_cpuset_t set = rte_lcore_cpuset(lcore);
  if (CPU_COUNT(&set) != 1) return -1;
  for (int c = 0; c < CPU_SETSIZE; c++)
    if (CPU_ISSET(c, &set)) return c;
  return -1;
}

/* What to do about workers on the IRQ's CPU, into fix: an --lcores line that
 * puts the main lcore (it sleeps in the control loop; the store writer
 * starts from it and so completes its syncs beside the IRQ) on that CPU and
 * each worker there on a CPU no other worker has: the main lcore's first,
 * then any other the header lists. Without such a CPU: move the IRQ. */
static void block_irq_fix(const ampd_app_t *app, const amp_irq_pick_t *irq, char *fix,
                          size_t cap) {
  char where[64] = "/proc/irq/N/smp_affinity";
  size_t ld = strspn(irq->irq, "0123456789");
  if (ld && !irq->irq[ld]) snprintf(where, sizeof where, "/proc/irq/%s/smp_affinity", irq->irq);
  unsigned main_lc = rte_get_main_lcore();
  int main_cpu = lcore_single_cpu(main_lc), cpu_of[AMPD_MAX_WORKERS];
  int concrete = main_cpu >= 0, stuck = 0;
  uint64_t taken[AMP_IRQ_MAX_CPUS / 64];   /* CPUs running a worker */
  memset(taken, 0, sizeof taken);
  for (unsigned i = 0; i < app->n_workers; i++) {
    cpu_of[i] = lcore_single_cpu(app->workers[i].lcore);
    if (cpu_of[i] < 0) concrete = 0;
    else if (cpu_of[i] != irq->cpu && cpu_of[i] < AMP_IRQ_MAX_CPUS)
      taken[cpu_of[i] / 64] |= 1ULL << (cpu_of[i] % 64);
  }
  for (unsigned i = 0; concrete && i < app->n_workers; i++) {
    if (cpu_of[i] != irq->cpu) continue;
    int to = -1;
    if (main_cpu != irq->cpu && !amp_irq_has_cpu(taken, main_cpu)) to = main_cpu;
    for (int c = 0; to < 0 && c < AMP_IRQ_MAX_CPUS; c++)
      if (c != irq->cpu && amp_irq_has_cpu(irq->cpus, c) && !amp_irq_has_cpu(taken, c)) to = c;
    if (to < 0) {
      stuck = 1;
      break;
    }
    cpu_of[i] = to;
    taken[to / 64] |= 1ULL << (to % 64);
  }
  if (stuck) {
    snprintf(fix, cap, "Every other CPU already runs a worker: move the IRQ where the kernel"
             " allows it (%s) or run fewer workers", where);
    return;
  }
  if (!concrete) {
    snprintf(fix, cap, "Put workers on other CPUs (--lcores) or move the IRQ where the kernel"
             " allows it (%s)", where);
    return;
  }
  char lc[640];   /* 64 workers; a longer line is cut */
  size_t n = (size_t)snprintf(lc, sizeof lc, "%u@%d", main_lc, irq->cpu);
  for (unsigned i = 0; i < app->n_workers && n < sizeof lc; i++)
    n += (size_t)snprintf(lc + n, sizeof lc - n, ",%u@%d", app->workers[i].lcore, cpu_of[i]);
  snprintf(fix, cap, "Put workers on other CPUs (--lcores %s) or move the IRQ where the kernel"
           " allows it (%s)", lc, where);
}

/* Warns once per worker whose lcore may run on the CPU that takes most of
 * the block devices' interrupts (amp_irq.h): each store commit's fdatasync
 * completes there by interrupt and softirq, taken from the worker (measured
 * on a 2-vCPU VM: 15.1k HTLC/s there, 18.6k on the other CPU). Nothing is
 * said on a machine of one CPU, or when the file shows no block device.
 * AMPD_PROC_INTERRUPTS in the environment reads another file than
 * /proc/interrupts (tests give fixtures; not an operator's setting). */
static void warn_block_irq(ampd_app_t *app) {
  const char *path = getenv("AMPD_PROC_INTERRUPTS");
  amp_irq_pick_t irq;
  app->block_irq_cpu = amp_irq_read(&irq, path);
  app->workers_on_block_irq = 0;
  if (app->block_irq_cpu < 0) {
    ampd_log(AMP_LOG_DEBUG, "%s: no CPU takes most block-device interrupts (%s)",
             path ? path : AMP_IRQ_DEFAULT_PATH, irq.err ? strerror(irq.err)
             : irq.ncpu < 2 ? "fewer than two CPUs" : "no block device's interrupts counted");
    return;
  }
  char fix[800], line[128];
  fix[0] = 0;
  size_t ld = strspn(irq.irq, "0123456789");
  if (ld && !irq.irq[ld]) snprintf(line, sizeof line, "IRQ %s, %s", irq.irq, irq.name);
  else snprintf(line, sizeof line, "%s", irq.name);
  for (unsigned i = 0; i < app->n_workers; i++) {
    const ampd_worker_t *w = &app->workers[i];
    rte_cpuset_t set = rte_lcore_cpuset(w->lcore);
    if (app->block_irq_cpu >= CPU_SETSIZE || !CPU_ISSET(app->block_irq_cpu, &set)) continue;
    if (!app->workers_on_block_irq++) block_irq_fix(app, &irq, fix, sizeof fix);
    ampd_log(AMP_LOG_WARN, "worker %u (lcore %u) %s CPU %d, which takes the block device's"
             " interrupts (%s: %" PRIu64 " so far); each store commit's completion interrupts"
             " it. %s", i, w->lcore, CPU_COUNT(&set) == 1 ? "runs on" : "may run on",
             app->block_irq_cpu, line, irq.irq_count, fix);
  }
  if (!app->workers_on_block_irq)
    ampd_log(AMP_LOG_DEBUG, "CPU %d takes the block device's interrupts (%s: %" PRIu64
             "); no worker runs there", app->block_irq_cpu, irq.name, irq.irq_count);
}

/* ---- Summary ------------------------------------------------------------ */

static void sum_counters(const ampd_app_t *app, ampd_counters_t *t, uint64_t *first_rx,
                         uint64_t *last_rx) {
  memset(t, 0, sizeof *t);
  *first_rx = 0;
  *last_rx = 0;
  for (unsigned i = 0; i < app->n_workers; i++) {
    const ampd_worker_t *w = &app->workers[i];
#define AMPD_SUM_(n, d) t->n += w->cnt.n;
    AMPD_COUNTERS(AMPD_SUM_)
#undef AMPD_SUM_
    for (int r = 0; r < AMP_FRAME_DROP_COUNT_; r++) t->drop[r] += w->cnt.drop[r];
    if (w->first_rx_ns && (!*first_rx || w->first_rx_ns < *first_rx)) *first_rx = w->first_rx_ns;
    uint64_t l = atomic_load_explicit(&w->last_rx_ns, memory_order_relaxed);
    if (w->first_rx_ns && l > *last_rx) *last_rx = l;
  }
}

/* The engine's counters by name, as an array in list order. */
static uint64_t engine_counter(const amp_engine_stats_t *st, size_t i) {
  size_t k = 0;
#define AMPD_ENG_AT_(n, d) if (k++ == i) return st->n;
  AMP_ENGINE_COUNTERS(AMPD_ENG_AT_)
#undef AMPD_ENG_AT_
  return 0;
}

static int is_failure_reason(const char *name) {
  static const char *const fails[] = {"malformed_onion", "invalid_payload", "forward_unsupported",
                                      "replays", "timeouts", "store_gave_up",
                                      "invoice_cancel_fails", NULL};
  if (!strncmp(name, "fail_", 5) || !strncmp(name, "limit_", 6)) return 1;
  for (int i = 0; fails[i]; i++)
    if (!strcmp(name, fails[i])) return 1;
  return 0;
}

static double lat_pct_ns(const ampd_lat_hist_t *h, double p, double ns_per_cycle);
static void lat_merge(ampd_lat_hist_t *to, const ampd_lat_hist_t *from);

static void print_summary(ampd_app_t *app, FILE *out) {
  ampd_counters_t t;
  uint64_t first_rx, last_rx;
  sum_counters(app, &t, &first_rx, &last_rx);
  amp_engine_stats_t st;
  memset(&st, 0, sizeof st);
  if (app->engine) amp_engine_stats(app->engine, &st);
  double run_s = (double)(amp_mono_ns() - app->start_ns) / 1e9;
  double rx_s = last_rx > first_rx && first_rx ? (double)(last_rx - first_rx) / 1e9 : 0;
  uint64_t drops = 0;
  for (int r = 1; r < AMP_FRAME_DROP_COUNT_; r++) drops += t.drop[r];
  drops += t.drop_not_ours;

  fprintf(out, "ampd summary (%.1f s, %u worker(s), %u port(s))\n", run_s, app->n_workers,
          app->n_ports);
  fprintf(out, "  in:      %" PRIu64 " packets, %" PRIu64 " frames accepted, %" PRIu64
          " records, %" PRIu64 " tips (height %" PRIu64 ")\n",
          t.rx_pkts, t.rx_frames, t.rx_records, t.tips, st.height);
  fprintf(out, "  HTLCs:   %" PRIu64 " in, %" PRIu64 " settled in %" PRIu64 " sets, %" PRIu64
          " failed (%" PRIu64 " fail, %" PRIu64 " malformed), %" PRIu64 " still held\n",
          st.htlcs_in, st.htlcs_settled, st.sets_settled, st.answers_fail + st.answers_malformed,
          st.answers_fail, st.answers_malformed, st.held_now);
  if (rx_s > 0)
    fprintf(out, "  rate:    %.0f HTLCs/s taken in (%" PRIu64 " over %.3f s, first to last frame;"
            " rx waits for each burst to be processed)\n", (double)st.htlcs_in / rx_s,
            st.htlcs_in, rx_s);
  int any = 0;
  const char *desc;
  const char *name;
  for (size_t i = 0; (name = amp_engine_counter_name(i, &desc)) != NULL; i++) {
    uint64_t v = engine_counter(&st, i);
    if (!v || !is_failure_reason(name)) continue;
    fprintf(out, "%s %10" PRIu64 "  %s\n", any ? "          " : "  failed by reason:\n          ",
            v, desc ? desc : name);
    any = 1;
  }
  if (st.sets_cancelled || st.child_mismatch)
    fprintf(out, "  sets:    %" PRIu64 " cancelled (%" PRIu64 " reconstruction mismatches)\n",
            st.sets_cancelled, st.child_mismatch);
  if (st.redelivery_durable || st.redelivery_inflight)
    fprintf(out, "  redeliveries: %" PRIu64 " answered again from the store, %" PRIu64
            " ignored while in flight\n", st.redelivery_durable, st.redelivery_inflight);
  fprintf(out, "  dropped: %" PRIu64 " frames", drops);
  for (int r = 1; r < AMP_FRAME_DROP_COUNT_; r++)
    if (t.drop[r]) fprintf(out, ", %s %" PRIu64, amp_frame_drop_str(r), t.drop[r]);
  if (t.drop_not_ours) fprintf(out, ", not our IPv4 %" PRIu64, t.drop_not_ours);
  if (t.drop[0]) fprintf(out, " (and %" PRIu64 " ok?)", t.drop[0]);
  fprintf(out, "\n");
  fprintf(out, "  out:     %" PRIu64 " answers in %" PRIu64 " frames (%" PRIu64 " fulfill, %" PRIu64
          " fail, %" PRIu64 " malformed)\n", t.tx_records, t.tx_frames, st.answers_fulfill,
          st.answers_fail, st.answers_malformed);
  {
    static ampd_lat_hist_t all;   /* 8 kB */
    memset(&all, 0, sizeof all);
    uint64_t busy = 0, cyc = 0;
    for (unsigned i = 0; i < app->n_workers; i++) {
      lat_merge(&all, &app->workers[i].lat_fulfill);
      lat_merge(&all, &app->workers[i].lat_fail);
      busy += app->workers[i].tsc_busy;
      cyc += app->workers[i].tsc_busy + app->workers[i].tsc_idle;
    }
    double npc = 1e9 / (double)rte_get_tsc_hz();
    if (all.count)
      fprintf(out, "  latency: rx to answer p50 %.0f us, p99 %.0f us, max %.0f us (%" PRIu64
              " answers); workers busy %.0f%% of their loop, %.0f%% of that in the peels' "
              "parse + ECDH\n", lat_pct_ns(&all, 0.5, npc) / 1e3,
              lat_pct_ns(&all, 0.99, npc) / 1e3, (double)all.max * npc / 1e3, all.count,
              cyc ? 100.0 * (double)busy / (double)cyc : 0,
              busy ? 100.0 * (double)st.peel_curve_ns / ((double)busy * npc) : 0);
    memset(&all, 0, sizeof all);
    for (unsigned i = 0; i < app->n_workers; i++) lat_merge(&all, &app->workers[i].lat_commit);
    if (all.count)
      fprintf(out, "           of which the store commit (intent made to committed) p50 %.0f us, "
              "p99 %.0f us, max %.0f us\n", lat_pct_ns(&all, 0.5, npc) / 1e3,
              lat_pct_ns(&all, 0.99, npc) / 1e3, (double)all.max * npc / 1e3);
  }
  uint64_t lost = t.tx_dropped + t.tx_nombuf + t.tx_too_big + t.tx_unknown_gateway;
  if (lost)
    fprintf(out, "  LOST:    %" PRIu64 " reply frames refused by the port, %" PRIu64
            " answers without an mbuf, %" PRIu64 " too big, %" PRIu64 " to unknown gateways\n",
            t.tx_dropped, t.tx_nombuf, t.tx_too_big, t.tx_unknown_gateway);
  if (st.bad_msg || st.unknown_msg || t.bad_tips)
    fprintf(out, "  ignored: %" PRIu64 " undecodable, %" PRIu64 " unknown-type messages, %" PRIu64
            " bad tips\n", st.bad_msg, st.unknown_msg, t.bad_tips);
  for (unsigned pi = 0; pi < app->n_ports; pi++) {
    struct rte_eth_stats es;
    if (rte_eth_stats_get(app->ports[pi].port_id, &es) != 0) continue;
    char kd[64] = "";
    if (atomic_load(&app->ports[pi].n_kfd))
      snprintf(kd, sizeof kd, ", dropped by the kernel's af_packet ring %" PRIu64,
               ampd_port_kernel_drops(app, pi));
    fprintf(out, "  port %u:  rx %" PRIu64 " (missed %" PRIu64 "%s, errors %" PRIu64 ", no mbuf %"
            PRIu64 "), tx %" PRIu64 " (errors %" PRIu64 ")\n", app->ports[pi].port_id,
            es.ipackets, es.imissed, kd, es.ierrors, es.rx_nombuf, es.opackets, es.oerrors);
  }
  if (app->store) {
    amp_store_stats_t ss;
    amp_store_stats(app->store, &ss);
    fprintf(out, "  store:   %s (sync %s): %" PRIu64 " commits, %" PRIu64 " intents, %" PRIu64
            " settles, %" PRIu64 " errors\n", app->cfg.data_dir,
            amp_config_sync_str(app->cfg.sync), ss.commits, ss.intents, ss.settles,
            ss.commit_errors);
  }
  fflush(out);
}

/* ---- Machine-readable summary (--summary-json FILE) --------------------- */

/* Percentile p (0..1) of a histogram in ns: the middle of its bucket. */
static double lat_pct_ns(const ampd_lat_hist_t *h, double p, double ns_per_cycle) {
  if (!h->count) return 0;
  uint64_t want = (uint64_t)(p * (double)(h->count - 1)) + 1, acc = 0;
  for (unsigned b = 0; b < AMPD_LAT_BUCKETS; b++) {
    acc += h->n[b];
    if (acc >= want) {
      uint64_t width, lo = ampd_lat_bucket_lo(b, &width);
      double v = (double)lo + (double)(width - 1) / 2;
      if (v > (double)h->max) v = (double)h->max;
      return v * ns_per_cycle;
    }
  }
  return (double)h->max * ns_per_cycle;
}

static void lat_json(FILE *f, const char *name, const ampd_lat_hist_t *h, double npc) {
  fprintf(f, "\"%s\": {\"count\": %" PRIu64 ", \"mean\": %.0f, \"p50\": %.0f, \"p90\": %.0f,"
          " \"p99\": %.0f, \"p999\": %.0f, \"max\": %.0f}", name, h->count,
          h->count ? (double)h->sum / (double)h->count * npc : 0, lat_pct_ns(h, 0.50, npc),
          lat_pct_ns(h, 0.90, npc), lat_pct_ns(h, 0.99, npc), lat_pct_ns(h, 0.999, npc),
          (double)h->max * npc);
}

static void lat_merge(ampd_lat_hist_t *to, const ampd_lat_hist_t *from) {
  for (unsigned b = 0; b < AMPD_LAT_BUCKETS; b++) to->n[b] += from->n[b];
  to->count += from->count;
  to->sum += from->sum;
  if (from->max > to->max) to->max = from->max;
}

/* Everything the summary says, and the instrumentation, as one JSON object.
 * Latencies in ns; times in s. */
static void write_summary_json(ampd_app_t *app, const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) {
    ampd_log(AMP_LOG_ERROR, "--summary-json %s: %s", path, strerror(errno));
    return;
  }
  double hz = (double)rte_get_tsc_hz(), npc = 1e9 / hz;
  ampd_counters_t t;
  uint64_t first_rx, last_rx;
  sum_counters(app, &t, &first_rx, &last_rx);
  amp_engine_stats_t st;
  memset(&st, 0, sizeof st);
  if (app->engine) amp_engine_stats(app->engine, &st);
  /* static: the merged histograms are 8 kB each */
  static ampd_lat_hist_t ful, fai, all, com;
  memset(&ful, 0, sizeof ful);
  memset(&fai, 0, sizeof fai);
  memset(&all, 0, sizeof all);
  memset(&com, 0, sizeof com);
  uint64_t unmatched = 0, t0 = 0, t1 = 0;
  for (unsigned i = 0; i < app->n_workers; i++) {
    const ampd_worker_t *w = &app->workers[i];
    lat_merge(&ful, &w->lat_fulfill);
    lat_merge(&fai, &w->lat_fail);
    lat_merge(&com, &w->lat_commit);
    unmatched += w->lat_unmatched;
    if (w->first_rx_tsc && (!t0 || w->first_rx_tsc < t0)) t0 = w->first_rx_tsc;
    if (w->last_emit_tsc > t1) t1 = w->last_emit_tsc;
  }
  lat_merge(&all, &ful);
  lat_merge(&all, &fai);
  fprintf(f, "{\n  \"workers\": %u, \"ports\": %u, \"tsc_hz\": %.0f, \"sync\": \"%s\","
          " \"bench_rx_only\": %s,\n", app->n_workers, app->n_ports, hz,
          amp_config_sync_str(app->cfg.sync), app->bench_rx_only ? "true" : "false");
  fprintf(f, "  \"block_irq_cpu\": %d, \"workers_on_block_irq_cpu\": %u,\n", app->block_irq_cpu,
          app->workers_on_block_irq);
  fprintf(f, "  \"run_s\": %.6f, \"rx_s\": %.6f, \"rx_to_last_answer_s\": %.6f,\n",
          (double)(amp_mono_ns() - app->start_ns) / 1e9,
          last_rx > first_rx && first_rx ? (double)(last_rx - first_rx) / 1e9 : 0,
          t1 > t0 && t0 ? (double)(t1 - t0) / hz : 0);
  fprintf(f, "  \"dataplane\": {");
#define AMPD_JS_(n, d) fprintf(f, "\"%s\": %" PRIu64 ", ", #n, t.n);
  AMPD_COUNTERS(AMPD_JS_)
#undef AMPD_JS_
  fprintf(f, "\"drop\": {");
  for (int r = 1; r < AMP_FRAME_DROP_COUNT_; r++)
    fprintf(f, "%s\"%s\": %" PRIu64, r > 1 ? ", " : "", amp_frame_drop_str(r), t.drop[r]);
  fprintf(f, "}},\n  \"engine\": {");
  const char *desc, *name;
  for (size_t i = 0; (name = amp_engine_counter_name(i, &desc)) != NULL; i++)
    fprintf(f, "\"%s\": %" PRIu64 ", ", name, engine_counter(&st, i));
  fprintf(f, "\"held_now\": %" PRIu64 ", \"invoices_now\": %" PRIu64 ", \"height\": %" PRIu64 "},\n",
          st.held_now, st.invoices_now, st.height);
  if (app->store) {
    amp_store_stats_t ss;
    amp_store_stats(app->store, &ss);
    fprintf(f, "  \"store\": {\"commits\": %" PRIu64 ", \"intents\": %" PRIu64 ", \"settles\": %"
            PRIu64 ", \"commit_errors\": %" PRIu64 ", \"group_max_seen\": %" PRIu64
            ", \"sync_ns_total\": %" PRIu64 ", \"puts\": %" PRIu64 ", \"commit_p50_ns\": %" PRIu64
            ", \"commit_p99_ns\": %" PRIu64 ", \"commit_max_ns\": %" PRIu64
            ", \"replay_live\": %" PRIu64 ", \"resolutions_live\": %" PRIu64
            ", \"writer_sleeps\": %" PRIu64 ", \"wakes\": %" PRIu64
            ", \"index_rehashes\": %" PRIu64 "},\n",
            ss.commits, ss.intents, ss.settles, ss.commit_errors, ss.group_max_seen,
            ss.sync_ns_total, ss.puts, ss.commit_p50_ns, ss.commit_p99_ns, ss.commit_max_ns,
            ss.replay_live, ss.resolutions_live, ss.writer_sleeps, ss.wakes, ss.index_rehashes);
  }
  fprintf(f, "  \"latency_ns\": {");
  lat_json(f, "all", &all, npc);
  fprintf(f, ", ");
  lat_json(f, "fulfill", &ful, npc);
  fprintf(f, ", ");
  lat_json(f, "fail", &fai, npc);
  fprintf(f, ", ");
  lat_json(f, "commit", &com, npc);
  fprintf(f, ", \"unmatched\": %" PRIu64 "},\n  \"per_worker\": [", unmatched);
  for (unsigned i = 0; i < app->n_workers; i++) {
    const ampd_worker_t *w = &app->workers[i];
    double cyc = (double)(w->tsc_busy + w->tsc_idle);
    amp_engine_stats_t ws;
    if (amp_engine_worker_stats(app->engine, i, &ws) != AMP_OK) memset(&ws, 0, sizeof ws);
    /* curve_share: of the busy loop time, the part in the peels' parse and
     * ECDH, timed in place over the same seconds (the in-place ratio) */
    double busy_s = (double)w->tsc_busy / hz;
    fprintf(f, "%s\n    {\"lcore\": %u, \"rx_pkts\": %" PRIu64 ", \"rx_records\": %" PRIu64
            ", \"tx_records\": %" PRIu64 ", \"polls_busy\": %" PRIu64 ", \"polls_idle\": %" PRIu64
            ", \"busy_s\": %.6f, \"idle_s\": %.6f, \"busy_share\": %.4f, \"cpu_s\": %.6f"
            ", \"curve_s\": %.6f, \"curve_share\": %.4f}",
            i ? "," : "", w->lcore, w->cnt.rx_pkts, w->cnt.rx_records, w->cnt.tx_records,
            w->polls_busy, w->polls_idle, busy_s, (double)w->tsc_idle / hz,
            cyc > 0 ? (double)w->tsc_busy / cyc : 0, (double)w->cpu_ns / 1e9,
            (double)ws.peel_curve_ns / 1e9,
            busy_s > 0 ? (double)ws.peel_curve_ns / 1e9 / busy_s : 0);
  }
  fprintf(f, "\n  ],\n  \"port_stats\": [");
  for (unsigned pi = 0; pi < app->n_ports; pi++) {
    struct rte_eth_stats es;
    if (rte_eth_stats_get(app->ports[pi].port_id, &es) != 0) memset(&es, 0, sizeof es);
    fprintf(f, "%s{\"port\": %u, \"ipackets\": %" PRIu64 ", \"imissed\": %" PRIu64
            ", \"kernel_drops\": %" PRIu64 ", \"ierrors\": %" PRIu64 ", \"rx_nombuf\": %" PRIu64
            ", \"opackets\": %" PRIu64 ", \"oerrors\": %" PRIu64 "}", pi ? ", " : "",
            app->ports[pi].port_id, es.ipackets, es.imissed, ampd_port_kernel_drops(app, pi),
            es.ierrors, es.rx_nombuf, es.opackets, es.oerrors);
  }
  fprintf(f, "]\n}\n");
  if (fclose(f) != 0) ampd_log(AMP_LOG_ERROR, "--summary-json %s: write failed", path);
}

static void print_stats_line(ampd_app_t *app) {
  ampd_counters_t t;
  uint64_t a, b;
  sum_counters(app, &t, &a, &b);   /* racy by a few increments: a log line */
  amp_engine_stats_t st;
  amp_engine_stats(app->engine, &st);
  uint64_t drops = t.drop_not_ours;
  for (int r = 1; r < AMP_FRAME_DROP_COUNT_; r++) drops += t.drop[r];
  amp_store_stats_t ss;
  memset(&ss, 0, sizeof ss);
  if (app->store) amp_store_stats(app->store, &ss);
  ampd_log(AMP_LOG_INFO, "stats: frames in %" PRIu64 ", htlcs in %" PRIu64 ", settled %" PRIu64
           ", failed %" PRIu64 ", held %" PRIu64 ", dropped frames %" PRIu64 ", answers out %"
           PRIu64 ", replay entries %" PRIu64 ", resolutions %" PRIu64, t.rx_frames,
           st.htlcs_in, st.htlcs_settled, st.answers_fail + st.answers_malformed, st.held_now,
           drops, t.tx_records, ss.replay_live, ss.resolutions_live);
}

/* ---- Control loop ------------------------------------------------------- */

static void control_loop(ampd_app_t *app, const ampd_hooks_t *hooks) {
  const amp_config_t *cfg = &app->cfg;
  uint64_t last_stats = amp_mono_ns();
  for (;;) {
    usleep(2000);
    uint64_t now = amp_mono_ns();
    if (got_signal) {
      ampd_log(AMPD_LOG_NOTICE, "%s: stopping", got_signal == SIGINT ? "SIGINT" : "SIGTERM");
      break;
    }
    if (got_hup) {
      got_hup = 0;
      reload(app);
    }
    if (atomic_load(&app->stop_req)) {
      ampd_log(AMPD_LOG_NOTICE, "admin: stop requested: stopping");
      break;
    }
    if (hooks && hooks->poll && hooks->poll(hooks->arg, app)) {
      ampd_log(AMP_LOG_INFO, "stop requested");
      break;
    }
    if (cfg->stats_interval_ms && now - last_stats >= (uint64_t)cfg->stats_interval_ms * 1000000) {
      print_stats_line(app);
      last_stats = now;
    }
    if (cfg->exit_idle_ms) {
      /* Idle on the workers' own clocks: every worker has polled rx and found
       * nothing for exit-idle ms after the last frame any of them took.
       * Control's clock would count a worker that is not running as idle. */
      uint64_t last_rx = app->start_ns, polled = UINT64_MAX;
      int busy = 0;
      for (unsigned i = 0; i < app->n_workers; i++) {
        uint64_t l = atomic_load_explicit(&app->workers[i].last_rx_ns, memory_order_relaxed);
        uint64_t p = atomic_load_explicit(&app->workers[i].last_poll_ns, memory_order_relaxed);
        if (l > last_rx) last_rx = l;
        if (p < polled) polled = p;
        busy |= atomic_load_explicit(&app->workers[i].busy, memory_order_relaxed);
      }
      if (polled != UINT64_MAX && polled > last_rx &&
          polled - last_rx >= (uint64_t)cfg->exit_idle_ms * 1000000 && !busy) {
        amp_engine_stats_t st;
        amp_engine_stats(app->engine, &st);
        if (st.held_now == 0) {
          ampd_log(AMPD_LOG_NOTICE, "rx idle for %u ms and nothing in flight: stopping",
                   cfg->exit_idle_ms);
          break;
        }
      }
    }
  }
}

/* ---- Start and stop ----------------------------------------------------- */

/* Frees what ampd_run kept before EAL started; returns code. */
static int early_exit(int code) {
  free(opt_argv);
  opt_argv = NULL;
  return code;
}

/* Splits argv at "--": EAL's part before, ours after (argv[0] kept first). */
static int split_args(int argc, char **argv, int *eal_argc, int *our_argc, char ***our_argv) {
  int dd = -1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--")) {
      dd = i;
      break;
    }
  }
  *eal_argc = dd < 0 ? argc : dd;
  int n = dd < 0 ? 1 : argc - dd;
  char **v = calloc((size_t)n + 1, sizeof *v);
  if (!v) return -1;
  v[0] = argv[0];
  for (int i = 1; i < n; i++) v[i] = argv[dd + i];
  *our_argc = n;
  *our_argv = v;
  return 0;
}

/* Benchmark flags, taken out of our options before the config parser sees
 * them (they are not configuration): --summary-json FILE writes the summary
 * and the instrumentation as JSON at exit; --bench-rx-only checks frames
 * (parse, tag, window) and drops their records (the rx path's own rate);
 * --bench-rx-packets N[,N...]: each rx queue of the i-th port takes the i-th
 * N packets (the last N for the ports after), then is no longer polled
 * (net_pcap's infinite_rx=1 replays its file from memory without end: N =
 * the file's packets makes that one pass, with no file reads in the workers'
 * time). Packets a burst brings beyond N are freed unread and counted
 * (bench_rx_surplus). */
static int rx_packets_arg(ampd_app_t *app, const char *arg) {
  const char *s = arg;
  unsigned n = 0;
  for (;;) {
    char *end;
    errno = 0;
    unsigned long long v = (*s >= '0' && *s <= '9') ? strtoull(s, &end, 10) : 0;
    if (errno || !v || n == AMP_CONFIG_MAX_PORTS || (*end && (*end != ',' || !end[1]))) {
      fprintf(stderr, "--bench-rx-packets: '%s' is not a list of up to %d positive packet"
              " counts\n", arg, AMP_CONFIG_MAX_PORTS);
      return -1;
    }
    app->bench_rx_packets[n++] = v;
    if (!*end) break;
    s = end + 1;
  }
  for (unsigned i = n; i < AMP_CONFIG_MAX_PORTS; i++)
    app->bench_rx_packets[i] = app->bench_rx_packets[n - 1];
  return 0;
}

static int take_bench_flags(ampd_app_t *app, int *argc, char **argv) {
  int o = 1;
  for (int i = 1; i < *argc; i++) {
    if (!strcmp(argv[i], "--summary-json") && i + 1 < *argc) {
      app->summary_json = argv[++i];
    } else if (!strncmp(argv[i], "--summary-json=", 15)) {
      app->summary_json = argv[i] + 15;
    } else if (!strcmp(argv[i], "--bench-rx-only")) {
      app->bench_rx_only = 1;
    } else if (!strcmp(argv[i], "--bench-rx-packets") && i + 1 < *argc) {
      if (rx_packets_arg(app, argv[++i])) return -1;
    } else {
      argv[o++] = argv[i];
    }
  }
  argv[o] = NULL;
  *argc = o;
  return 0;
}

int ampd_run(int argc, char **argv, const ampd_hooks_t *hooks) {
  static ampd_app_t app_;   /* large (config, ports): not on the stack */
  ampd_app_t *app = &app_;
  char err[AMP_CONFIG_ERR_MAX + AMP_CONFIG_PATH_MAX];
  int eal_argc, our_argc;
  char **our_argv;
  const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];

  /* --help anywhere: EAL would take it for its own. */
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      amp_config_usage(stdout, prog);
      return 0;
    }
  }
  /* From here a SIGTERM or SIGINT is an orderly stop, even during start. */
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGHUP, on_hup);
  if (split_args(argc, argv, &eal_argc, &our_argc, &our_argv)) return 1;
  if (take_bench_flags(app, &our_argc, our_argv)) {
    free(our_argv);
    return 2;
  }
  int rc = amp_config_parse(&app->cfg, our_argc, our_argv, err, sizeof err);
  opt_argc = our_argc;
  opt_argv = our_argv;   /* kept for SIGHUP */
  if (rc != AMP_OK) {
    fprintf(stderr, "%s: %s\n", prog, err);
    return early_exit(2);
  }
  amp_config_t *cfg = &app->cfg;
  log_level_apply(cfg->log_level);

  /* The node key, before anything touches the store. */
  uint8_t node_key[32];
  int created = 0;
  if (amp_secp_init() != AMP_OK) {
    fprintf(stderr, "%s: cannot initialize secp256k1\n", prog);
    return early_exit(1);
  }
  if (amp_config_node_key(node_key, &created, cfg->node_key_file, 1, err, sizeof err)) {
    fprintf(stderr, "%s: %s\n", prog, err);
    amp_config_wipe(cfg);
    return early_exit(2);
  }
  if (created) ampd_log(AMP_LOG_INFO, "made a new node key in %s (mode 0600)", cfg->node_key_file);
  amp_pubkey_t node_pub;
  if (amp_secp_pubkey_create(&node_pub, node_key) != AMP_OK) {
    fprintf(stderr, "%s: %s: not a valid node key\n", prog, cfg->node_key_file);
    amp_wipe(node_key, sizeof node_key);
    amp_config_wipe(cfg);
    return early_exit(2);
  }
  amp_secp_pubkey_serialize(app->node_id, &node_pub);
  int lock_fd = lock_data_dir(cfg->data_dir, err, sizeof err);
  if (lock_fd < 0) {
    fprintf(stderr, "%s: %s\n", prog, err);
    amp_wipe(node_key, sizeof node_key);
    amp_config_wipe(cfg);
    return early_exit(1);
  }

  /* EAL. */
  rc = rte_eal_init(eal_argc, argv);
  if (rc < 0) {
    fprintf(stderr, "%s: EAL init failed: %s\n", prog, rte_strerror(rte_errno));
    amp_wipe(node_key, sizeof node_key);
    amp_config_wipe(cfg);
    return early_exit(1);
  }
  int exit_code = 1;
  app->start_ns = amp_mono_ns();
  if (hooks && hooks->after_eal && hooks->after_eal(hooks->arg) != 0) goto out_eal;

  /* Workers: one per worker lcore (or --workers of them). */
  unsigned lcores[AMPD_MAX_WORKERS], n = 0, lc;
  RTE_LCORE_FOREACH_WORKER(lc) {
    if (n < AMPD_MAX_WORKERS && (!cfg->workers || n < cfg->workers)) lcores[n++] = lc;
  }
  if (!n) {
    ampd_log(AMP_LOG_ERROR, "no worker lcore: give EAL at least two (e.g. -l 0-1): the main"
             " lcore runs control, the others run workers");
    goto out_eal;
  }
  if (cfg->workers && n < cfg->workers)
    ampd_log(AMP_LOG_WARN, "workers = %u but only %u worker lcore(s): using %u", cfg->workers, n,
             n);
  app->n_workers = n;
  app->workers = rte_zmalloc("ampd_workers", sizeof(ampd_worker_t) * n, RTE_CACHE_LINE_SIZE);
  if (!app->workers) goto out_nomem;
  for (unsigned i = 0; i < n; i++) {
    ampd_worker_t *w = &app->workers[i];
    w->app = app;
    w->idx = i;
    w->lcore = lcores[i];
    int socket = (int)rte_lcore_to_socket_id(lcores[i]);
    w->in = rte_malloc_socket("ampd_in", sizeof(amp_engine_in_t) * AMPD_BURST *
                              AMP_FRAME_MAX_RECORDS, RTE_CACHE_LINE_SIZE, socket);
    w->lin = rte_malloc_socket("ampd_lin", (size_t)AMPD_BURST * AMP_FRAME_MAX_LEN,
                               RTE_CACHE_LINE_SIZE, socket);
    w->fr = rte_malloc_socket("ampd_fr", sizeof(amp_frame_t) * AMPD_BURST, RTE_CACHE_LINE_SIZE,
                              socket);
    if (!w->in || !w->lin || !w->fr) goto out_nomem;
  }
  warn_block_irq(app);
  if (gateways_init(app)) goto out_nomem;

  /* Store, then engine (which recovers from the store). */
  amp_store_cfg_t scfg;
  memset(&scfg, 0, sizeof scfg);
  scfg.dir = cfg->data_dir;
  scfg.group_max = cfg->group_commit_max;
  scfg.group_usec = cfg->group_commit_usec;
  scfg.filter_entries = cfg->store_index_entries;
  scfg.sync = (amp_store_sync_t)cfg->sync;
  scfg.producers = n + 1;
  rc = amp_store_open(&app->store, &scfg);
  if (rc != AMP_OK) {
    ampd_log(AMP_LOG_ERROR, "store in %s: %s", cfg->data_dir, amp_strerror(rc));
    app->store = NULL;
    goto out_eal;
  }
  amp_engine_cfg_t ecfg;
  memset(&ecfg, 0, sizeof ecfg);
  memcpy(ecfg.node_key, node_key, 32);
  ecfg.store = app->store;
  ecfg.workers = n;
  ecfg.accept_amp = cfg->accept_amp;
  ecfg.hold_timeout_ms = cfg->hold_timeout_ms;
  ecfg.max_htlcs_per_set = cfg->max_htlcs_per_set;
  ecfg.max_held_total = cfg->max_held;
  ecfg.max_held_per_gateway = cfg->max_held_per_gateway;
  rc = amp_engine_new(&app->engine, &ecfg);
  amp_wipe(&ecfg, sizeof ecfg);
  amp_wipe(node_key, sizeof node_key);
  if (rc != AMP_OK) {
    ampd_log(AMP_LOG_ERROR, "engine: %s", amp_strerror(rc));
    app->engine = NULL;
    goto out_store;
  }
  for (unsigned i = 0; i < n; i++) app->workers[i].ew = amp_engine_worker(app->engine, i);

  if (ampd_ports_setup(app)) goto out_engine;
  if (cfg->log_level >= AMP_LOG_DEBUG) amp_config_dump(stderr, cfg);
  ampd_log(AMP_LOG_INFO, "serving %u gateway(s) on UDP port %u with %u worker(s); store in %s",
           app->n_gateways, cfg->udp_port, n, cfg->data_dir);

  for (unsigned i = 0; i < n; i++) {
    atomic_store(&app->workers[i].last_rx_ns, app->start_ns);
    atomic_store(&app->workers[i].last_poll_ns, app->start_ns);
    rc = rte_eal_remote_launch(ampd_worker_main, &app->workers[i], app->workers[i].lcore);
    if (rc) {
      ampd_log(AMP_LOG_ERROR, "cannot launch worker %u: %s", i, rte_strerror(-rc));
      atomic_store(&app->stop_rx, 1);
      rte_eal_mp_wait_lcore();
      goto out_ports;
    }
  }
  if (ampd_admin_start(app) != 0) {
    atomic_store(&app->stop_rx, 1);
    rte_eal_mp_wait_lcore();
    goto out_ports;
  }
  if (hooks && hooks->started && hooks->started(hooks->arg, app) != 0) {
    atomic_store(&app->stop_rx, 1);
  } else {
    control_loop(app, hooks);
  }
  ampd_admin_stop(app);

  /* Stop: workers finish, commit, answer, flush. */
  atomic_store(&app->stop_rx, 1);
  rte_eal_mp_wait_lcore();
  if (hooks && hooks->stopped) hooks->stopped(hooks->arg, app);
  exit_code = 0;
  print_summary(app, stdout);
  if (app->summary_json) write_summary_json(app, app->summary_json);

out_ports:
  ampd_ports_close(app);
out_engine:
  amp_engine_delete(app->engine);
  app->engine = NULL;
out_store:
  amp_store_close(app->store);
  app->store = NULL;
  goto out_eal;
out_nomem:
  ampd_log(AMP_LOG_ERROR, "out of memory at start (give EAL more with -m)");
out_eal:
  amp_wipe(node_key, sizeof node_key);
  for (unsigned i = 0; app->gateways && i < app->n_gateways; i++)
    amp_wipe(&app->gateways[i].kctx, sizeof app->gateways[i].kctx);
  amp_config_wipe(cfg);
  rte_eal_cleanup();
  close(lock_fd);
  free(opt_argv);
  opt_argv = NULL;
  return exit_code;
}
