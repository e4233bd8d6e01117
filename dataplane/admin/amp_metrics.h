/* amp_metrics.h: ampd's counters as plain C views, latency histograms, and
 * their Prometheus text exposition (format 0.0.4).
 *
 * The daemon owns the numbers; this module only reads them. A scrape (the
 * `metrics` admin method, `ampctl metrics`, HTTP GET /metrics, DPDK
 * telemetry) asks the daemon for an amp_metrics_stats_t through the admin
 * ops interface (amp_admin.h) and renders it here.
 *
 * Naming rules (checked by amp_metrics_render; an entry that breaks them is
 * left out with a "# ampd: skipped" comment line, never a broken exposition):
 * - name matches [a-z_][a-z0-9_]* and carries no "ampd_" prefix: the renderer
 *   adds it. Counters get "_total" appended unless the name already ends in it.
 * - base units in the name: seconds, bytes (`commit_latency_seconds`,
 *   `replay_log_bytes`), never milliseconds.
 * - label: at most one extra label per entry (e.g. reason="bad_tag"); its
 *   name matches [a-z_][a-z0-9_]* and is not "worker", "le", "set_id",
 *   "payment_hash", "payment_addr" or "preimage"; its value is any UTF-8 text
 *   of a bounded set (a drop reason, an outcome), never a set_id, a hash or
 *   anything with unbounded cardinality.
 * - entries sharing a name form one family (one HELP, one TYPE line); they
 *   must then differ in their label value. The help text of the first wins.
 *
 * Histograms: fixed buckets in seconds (amp_metrics_lat_bounds), one writer
 * per amp_metrics_lat_t (a worker, or the store writer), any number of
 * readers. The writer records with amp_metrics_lat_observe_ns; a reader merges
 * several into a private one with amp_metrics_lat_merge. Reads are relaxed: a
 * scrape racing an observation may miss it, never sees a torn count, and the
 * exposition is always self-consistent (the +Inf bucket equals _count because
 * both come from the same snapshot).
 */
#ifndef AMP_METRICS_H
#define AMP_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Latency histogram: AMP_METRICS_LAT_BUCKETS finite upper bounds, in seconds:
 * 10us 25us 50us 100us 250us 500us 1ms 2.5ms 5ms 10ms 25ms 50ms 100ms 250ms
 * 500ms 1s 2.5s 5s 10s, and +Inf above. Covers a batched settlement (tens of
 * microseconds) through a slow fsync (seconds). */
#define AMP_METRICS_LAT_BUCKETS 19
extern const double amp_metrics_lat_bounds[AMP_METRICS_LAT_BUCKETS];

typedef struct {
  /* bucket[i] counts observations <= bound i and > bound i-1 (not
   * cumulative); bucket[AMP_METRICS_LAT_BUCKETS] counts those above the last
   * bound. */
  _Atomic uint64_t bucket[AMP_METRICS_LAT_BUCKETS + 1];
  _Atomic uint64_t sum_ns;    /* sum of all observations, nanoseconds */
} amp_metrics_lat_t;

/* amp_metrics_lat_observe_ns records one observation of ns nanoseconds.
 * Single writer per h (it uses load+store, not a locked add: ~2 ns, no
 * cache-line bouncing when each writer has its own h). Readers may run
 * concurrently. Does no input validation. */
void amp_metrics_lat_observe_ns(amp_metrics_lat_t *h, uint64_t ns);

/* amp_metrics_lat_merge adds src's counts and sum into dst. dst must be
 * private to the caller (not being observed into); src may be live. */
void amp_metrics_lat_merge(amp_metrics_lat_t *dst, const amp_metrics_lat_t *src);

/* amp_metrics_lat_add_log2 adds a histogram kept in another layout into dst
 * (private to the caller): the log2 layout with 2^sub_bits linear
 * sub-buckets per power of two that ampd's workers (TSC cycles, sub_bits 4)
 * and the store's writer (nanoseconds, sub_bits 3) keep. Bucket b holds the
 * value b when b < 2^sub_bits; else, with e = b >> sub_bits and
 * s = b & (2^sub_bits - 1), the values [(2^sub_bits + s) << (e - 1),
 * (2^sub_bits + s + 1) << (e - 1)). n[0..n_buckets) are the counts (a
 * snapshot: plain reads), unit_ns the length of one unit in nanoseconds
 * (1e9 / tsc_hz for cycles, 1 for ns), sum_units the sum of all values in
 * units (added to dst's sum).
 * Each source bucket goes whole into the fixed bucket of its highest value:
 * an observation is never counted below a bound it may exceed; one whose
 * source bucket straddles a bound is counted in the next fixed bucket (an
 * error of at most 1/2^sub_bits of the value, ~6% for sub_bits 4). Buckets
 * beyond 64-bit values count in +Inf. Cost: one pass over n_buckets. */
void amp_metrics_lat_add_log2(amp_metrics_lat_t *dst, const uint64_t *n, size_t n_buckets,
                              unsigned sub_bits, double unit_ns, uint64_t sum_units);

/* A counter: monotonically increasing count of events. */
typedef struct {
  const char *name;          /* e.g. "htlcs_failed" -> ampd_htlcs_failed_total */
  const char *help;          /* one line; may be NULL */
  const char *label;         /* extra label name (e.g. "reason"), or NULL */
  const char *label_value;   /* its value; ignored when label is NULL */
  const uint64_t *per_worker;/* n_workers values (amp_metrics_stats_t), or NULL
                              * for a counter kept outside the workers */
  uint64_t total;            /* the sum; must equal the sum of per_worker when
                              * per_worker is given (Prometheus then gets only
                              * the per-worker series, worker="0".., and
                              * sum() gives the total; JSON stats gets both) */
} amp_metrics_counter_t;

/* A gauge: a value that goes up and down (held HTLCs, open sets, bytes). */
typedef struct {
  const char *name;          /* e.g. "held_htlcs" -> ampd_held_htlcs */
  const char *help;
  const char *label;         /* extra label name, or NULL */
  const char *label_value;
  double value;
} amp_metrics_gauge_t;

/* A latency histogram view. */
typedef struct {
  const char *name;          /* must end in "_seconds", e.g.
                              * "settlement_latency_seconds" */
  const char *help;
  const amp_metrics_lat_t *h;/* read during the render only */
} amp_metrics_hist_t;

/* Everything one scrape shows. Pointers need to stay valid only while the
 * stats are being rendered or emitted (see amp_admin_reply_stats). */
typedef struct {
  uint32_t n_workers;
  const amp_metrics_counter_t *counters;
  size_t n_counters;
  const amp_metrics_gauge_t *gauges;
  size_t n_gauges;
  const amp_metrics_hist_t *hists;
  size_t n_hists;
} amp_metrics_stats_t;

/* Optional process facts for the exposition (ampd_build_info, ampd_uptime_seconds). */
typedef struct {
  const char *version;       /* may be NULL */
  double uptime_seconds;     /* < 0: not shown */
} amp_metrics_proc_t;

/* amp_metrics_render writes the Prometheus text exposition (format 0.0.4) of
 * st (and proc, which may be NULL) into a new malloc'd NUL-terminated buffer
 * and stores its length in *len (len may be NULL). Families appear in the
 * order of their first entry: process facts, counters, gauges, histograms.
 * Returns the buffer (caller frees), or NULL when out of memory.
 * Thread-safe (reads st only). Cost: linear in the entries and workers, plus
 * a quadratic grouping pass over entries of the same kind (tens of entries). */
char *amp_metrics_render(const amp_metrics_stats_t *st, const amp_metrics_proc_t *proc,
                         size_t *len);

/* amp_metrics_name_ok returns 1 if s matches [a-z_][a-z0-9_]* (and is at
 * most 100 bytes), 0 otherwise. */
int amp_metrics_name_ok(const char *s);

/* amp_metrics_fmt_double writes v the way Prometheus reads it: the shortest
 * decimal that round-trips, "+Inf", "-Inf" or "NaN". out needs 32 bytes.
 * Returns out. */
char *amp_metrics_fmt_double(char out[32], double v);

/* The HTTP/1.0 responder for --metrics-port, as a pure function so it is
 * testable without sockets.
 *
 * amp_metrics_http_parse looks at the first len bytes a client sent.
 * Returns 0 while the request head is incomplete (no blank line yet and
 * len < AMP_METRICS_HTTP_MAX), else the status to answer: 200 for GET or HEAD
 * of /metrics (a query string is ignored), 404 for any other path, 405 for
 * another method, 400 for a malformed or oversized head. *head_only is set to
 * 1 for HEAD. */
#define AMP_METRICS_HTTP_MAX 8192
int amp_metrics_http_parse(const char *req, size_t len, int *head_only);

/* amp_metrics_http_response builds the full response for status (as returned
 * by amp_metrics_http_parse) with body (the exposition for 200, ignored
 * otherwise; may be NULL for 200 only when out of memory: then 503). The
 * response closes the connection. Returns a malloc'd buffer and its length in
 * *len, or NULL when out of memory. */
char *amp_metrics_http_response(int status, int head_only, const char *body, size_t body_len,
                                size_t *len);

#endif /* AMP_METRICS_H */
