/* amp_metrics.c: latency histograms and the Prometheus text exposition. */
#include "amp_metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "amp_sbuf.h"

const double amp_metrics_lat_bounds[AMP_METRICS_LAT_BUCKETS] = {
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
  0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
};

/* The same bounds in nanoseconds, so the hot path compares integers. */
static const uint64_t lat_bounds_ns[AMP_METRICS_LAT_BUCKETS] = {
  10000ull, 25000ull, 50000ull, 100000ull, 250000ull, 500000ull, 1000000ull, 2500000ull,
  5000000ull, 10000000ull, 25000000ull, 50000000ull, 100000000ull, 250000000ull,
  500000000ull, 1000000000ull, 2500000000ull, 5000000000ull, 10000000000ull,
};

void amp_metrics_lat_observe_ns(amp_metrics_lat_t *h, uint64_t ns) {
  size_t i = 0;
  while (i < AMP_METRICS_LAT_BUCKETS && ns > lat_bounds_ns[i]) i++;
  uint64_t c = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
  atomic_store_explicit(&h->bucket[i], c + 1, memory_order_relaxed);
  uint64_t s = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
  atomic_store_explicit(&h->sum_ns, s + ns, memory_order_relaxed);
}

void amp_metrics_lat_merge(amp_metrics_lat_t *dst, const amp_metrics_lat_t *src) {
  for (size_t i = 0; i <= AMP_METRICS_LAT_BUCKETS; i++) {
    uint64_t v = atomic_load_explicit(&src->bucket[i], memory_order_relaxed);
    uint64_t d = atomic_load_explicit(&dst->bucket[i], memory_order_relaxed);
    atomic_store_explicit(&dst->bucket[i], d + v, memory_order_relaxed);
  }
  uint64_t v = atomic_load_explicit(&src->sum_ns, memory_order_relaxed);
  uint64_t d = atomic_load_explicit(&dst->sum_ns, memory_order_relaxed);
  atomic_store_explicit(&dst->sum_ns, d + v, memory_order_relaxed);
}

void amp_metrics_lat_add_log2(amp_metrics_lat_t *dst, const uint64_t *n, size_t n_buckets,
                              unsigned sub_bits, double unit_ns, uint64_t sum_units) {
  uint64_t add[AMP_METRICS_LAT_BUCKETS + 1] = {0};
  size_t i = 0;                   /* bucket highs rise with b: one pass */
  for (size_t b = 0; b < n_buckets; b++) {
    if (!n[b]) continue;
    double hi;                    /* the bucket's highest value, in units */
    if (b < ((size_t)1 << sub_bits)) {
      hi = (double)b;
    } else {
      size_t e = b >> sub_bits, s = b & (((size_t)1 << sub_bits) - 1);
      if (e > 64 - sub_bits) {    /* past 64-bit values: none can be there */
        add[AMP_METRICS_LAT_BUCKETS] += n[b];
        continue;
      }
      hi = ldexp((double)(((size_t)1 << sub_bits) + s + 1), (int)e - 1) - 1;
    }
    double ns = hi * unit_ns;
    while (i < AMP_METRICS_LAT_BUCKETS && ns > (double)lat_bounds_ns[i]) i++;
    add[i] += n[b];
  }
  for (size_t k = 0; k <= AMP_METRICS_LAT_BUCKETS; k++) {
    uint64_t d = atomic_load_explicit(&dst->bucket[k], memory_order_relaxed);
    atomic_store_explicit(&dst->bucket[k], d + add[k], memory_order_relaxed);
  }
  double sum = (double)sum_units * unit_ns;
  uint64_t d = atomic_load_explicit(&dst->sum_ns, memory_order_relaxed);
  atomic_store_explicit(&dst->sum_ns, d + (sum >= 1.8e19 ? UINT64_MAX - d : (uint64_t)(sum + 0.5)),
                        memory_order_relaxed);
}

int amp_metrics_name_ok(const char *s) {
  if (!s || !*s) return 0;
  size_t n = 0;
  for (const char *p = s; *p; p++, n++) {
    char c = *p;
    int ok = (c >= 'a' && c <= 'z') || c == '_' || (p != s && c >= '0' && c <= '9');
    if (!ok || n >= 100) return 0;
  }
  return 1;
}

char *amp_metrics_fmt_double(char out[32], double v) {
  if (isnan(v)) { strcpy(out, "NaN"); return out; }
  if (isinf(v)) { strcpy(out, v > 0 ? "+Inf" : "-Inf"); return out; }
  if (v == 0) { strcpy(out, "0"); return out; }
  /* The fewest significant digits that read back as v; then fixed notation
   * for moderate exponents ("10", "0.00125") and exponent notation beyond
   * them ("1e-05"), as Prometheus' own clients print. */
  char e[40];
  int prec = 1;
  for (; prec <= 17; prec++) {
    snprintf(e, sizeof e, "%.*e", prec - 1, v);
    if (strtod(e, NULL) == v) break;
  }
  if (prec > 17) prec = 17;
  int x = atoi(strchr(e, 'e') + 1);
  if (x >= -4 && x < 15) {
    int decimals = prec - 1 - x;
    snprintf(out, 32, "%.*f", decimals > 0 ? decimals : 0, v);
  } else {
    snprintf(out, 32, "%.*g", prec, v);
  }
  return out;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Labels a caller may not use: reserved by the format or by this module, or
 * ones whose values would identify a payment. */
static int label_ok(const char *label) {
  static const char *const bad[] = {
    "worker", "le", "quantile", "set_id", "payment_hash", "payment_addr", "preimage",
    "share", "root", "key",
  };
  if (!amp_metrics_name_ok(label) || strncmp(label, "__", 2) == 0) return 0;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (strcmp(label, bad[i]) == 0) return 0;
  return 1;
}

static void put_escaped(amp_sbuf_t *b, const char *s, int quote) {
  for (; *s; s++) {
    if (*s == '\\') amp_sbuf_add(b, "\\\\", 2);
    else if (*s == '\n') amp_sbuf_add(b, "\\n", 2);
    else if (quote && *s == '"') amp_sbuf_add(b, "\\\"", 2);
    else amp_sbuf_add(b, s, 1);
  }
}

static void put_head(amp_sbuf_t *b, const char *family, const char *help, const char *type) {
  amp_sbuf_printf(b, "# HELP %s ", family);
  put_escaped(b, help && *help ? help : "(no description)", 0);
  amp_sbuf_printf(b, "\n# TYPE %s %s\n", family, type);
}

/* Writes the label set {worker="w",label="value"} (any part may be absent). */
static void put_labels(amp_sbuf_t *b, long worker, const char *label, const char *value) {
  if (worker < 0 && !label) return;
  amp_sbuf_add(b, "{", 1);
  if (worker >= 0) amp_sbuf_printf(b, "worker=\"%ld\"", worker);
  if (label) {
    if (worker >= 0) amp_sbuf_add(b, ",", 1);
    amp_sbuf_printf(b, "%s=\"", label);
    put_escaped(b, value ? value : "", 1);
    amp_sbuf_add(b, "\"", 1);
  }
  amp_sbuf_add(b, "}", 1);
}

static int same_str(const char *a, const char *b) {
  return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Family names already written, to refuse a second family of the same name
 * (e.g. a gauge "x_total" beside a counter "x"). */
typedef struct {
  char (*names)[128];
  size_t n, cap;
} famset_t;

static int fam_claim(famset_t *f, const char *name) {
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->names[i], name) == 0) return 0;
  if (f->n == f->cap) {
    size_t cap = f->cap ? f->cap * 2 : 32;
    void *p = realloc(f->names, cap * sizeof f->names[0]);
    if (!p) return 0;
    f->names = p;
    f->cap = cap;
  }
  snprintf(f->names[f->n++], sizeof f->names[0], "%s", name);
  return 1;
}

/* Entry j of a family is written if its label is allowed and its series is
 * not a repeat of an earlier written entry of the same family. */
static int counter_ok(const amp_metrics_stats_t *st, size_t first, size_t j) {
  const amp_metrics_counter_t *e = &st->counters[j];
  if (e->label && !label_ok(e->label)) return 0;
  for (size_t k = first; k < j; k++) {
    const amp_metrics_counter_t *o = &st->counters[k];
    if (o->name && strcmp(o->name, e->name) == 0 && !(o->label && !label_ok(o->label)) &&
        same_str(o->label, e->label) &&
        same_str(o->label ? o->label_value : NULL, e->label ? e->label_value : NULL))
      return 0;
  }
  return 1;
}

static int gauge_ok(const amp_metrics_stats_t *st, size_t first, size_t j) {
  const amp_metrics_gauge_t *e = &st->gauges[j];
  if (e->label && !label_ok(e->label)) return 0;
  for (size_t k = first; k < j; k++) {
    const amp_metrics_gauge_t *o = &st->gauges[k];
    if (o->name && strcmp(o->name, e->name) == 0 && !(o->label && !label_ok(o->label)) &&
        same_str(o->label, e->label) &&
        same_str(o->label ? o->label_value : NULL, e->label ? e->label_value : NULL))
      return 0;
  }
  return 1;
}

static void render_counters(amp_sbuf_t *b, famset_t *fam, const amp_metrics_stats_t *st) {
  for (size_t i = 0; i < st->n_counters; i++) {
    const amp_metrics_counter_t *c = &st->counters[i];
    int first = 1;
    for (size_t k = 0; k < i; k++)
      if (st->counters[k].name && c->name && strcmp(st->counters[k].name, c->name) == 0) first = 0;
    if (!first) continue;
    char family[128];
    if (!amp_metrics_name_ok(c->name)) {
      amp_sbuf_puts(b, "# ampd: skipped a counter with an invalid name\n");
      continue;
    }
    snprintf(family, sizeof family, "ampd_%s%s", c->name, ends_with(c->name, "_total") ? "" : "_total");
    size_t n_ok = 0, n_all = 0;
    for (size_t j = i; j < st->n_counters; j++)
      if (st->counters[j].name && strcmp(st->counters[j].name, c->name) == 0) {
        n_all++;
        n_ok += (size_t)counter_ok(st, i, j);
      }
    if (n_ok < n_all)
      amp_sbuf_printf(b, "# ampd: skipped %zu %s series: reserved label or duplicate\n", n_all - n_ok, family);
    if (!n_ok) continue;
    if (!fam_claim(fam, family)) {
      amp_sbuf_printf(b, "# ampd: skipped counter %s: name already used\n", family);
      continue;
    }
    put_head(b, family, c->help, "counter");
    for (size_t j = i; j < st->n_counters; j++) {
      const amp_metrics_counter_t *e = &st->counters[j];
      if (!e->name || strcmp(e->name, c->name) != 0 || !counter_ok(st, i, j)) continue;
      if (e->per_worker && st->n_workers > 0) {
        for (uint32_t w = 0; w < st->n_workers; w++) {
          amp_sbuf_puts(b, family);
          put_labels(b, (long)w, e->label, e->label_value);
          amp_sbuf_printf(b, " %" PRIu64 "\n", e->per_worker[w]);
        }
      } else {
        amp_sbuf_puts(b, family);
        put_labels(b, -1, e->label, e->label_value);
        amp_sbuf_printf(b, " %" PRIu64 "\n", e->total);
      }
    }
  }
}

static void render_gauges(amp_sbuf_t *b, famset_t *fam, const amp_metrics_stats_t *st) {
  char num[32];
  for (size_t i = 0; i < st->n_gauges; i++) {
    const amp_metrics_gauge_t *g = &st->gauges[i];
    int first = 1;
    for (size_t k = 0; k < i; k++)
      if (st->gauges[k].name && g->name && strcmp(st->gauges[k].name, g->name) == 0) first = 0;
    if (!first) continue;
    char family[128];
    if (!amp_metrics_name_ok(g->name)) {
      amp_sbuf_puts(b, "# ampd: skipped a gauge with an invalid name\n");
      continue;
    }
    snprintf(family, sizeof family, "ampd_%s", g->name);
    size_t n_ok = 0, n_all = 0;
    for (size_t j = i; j < st->n_gauges; j++)
      if (st->gauges[j].name && strcmp(st->gauges[j].name, g->name) == 0) {
        n_all++;
        n_ok += (size_t)gauge_ok(st, i, j);
      }
    if (n_ok < n_all)
      amp_sbuf_printf(b, "# ampd: skipped %zu %s series: reserved label or duplicate\n", n_all - n_ok, family);
    if (!n_ok) continue;
    if (ends_with(family, "_total") || !fam_claim(fam, family)) {
      amp_sbuf_printf(b, "# ampd: skipped gauge %s: name already used or ends in _total\n", family);
      continue;
    }
    put_head(b, family, g->help, "gauge");
    for (size_t j = i; j < st->n_gauges; j++) {
      const amp_metrics_gauge_t *e = &st->gauges[j];
      if (!e->name || strcmp(e->name, g->name) != 0 || !gauge_ok(st, i, j)) continue;
      amp_sbuf_puts(b, family);
      put_labels(b, -1, e->label, e->label_value);
      amp_sbuf_printf(b, " %s\n", amp_metrics_fmt_double(num, e->value));
    }
  }
}

static void render_hists(amp_sbuf_t *b, famset_t *fam, const amp_metrics_stats_t *st) {
  char num[32];
  for (size_t i = 0; i < st->n_hists; i++) {
    const amp_metrics_hist_t *h = &st->hists[i];
    char family[128];
    if (!amp_metrics_name_ok(h->name) || !ends_with(h->name, "_seconds") || !h->h) {
      amp_sbuf_puts(b, "# ampd: skipped a histogram: invalid name (must end in _seconds) or no data\n");
      continue;
    }
    snprintf(family, sizeof family, "ampd_%s", h->name);
    if (!fam_claim(fam, family)) {
      amp_sbuf_printf(b, "# ampd: skipped histogram %s: name already used\n", family);
      continue;
    }
    /* One snapshot, so the buckets, +Inf and _count agree. */
    uint64_t snap[AMP_METRICS_LAT_BUCKETS + 1];
    for (size_t k = 0; k <= AMP_METRICS_LAT_BUCKETS; k++)
      snap[k] = atomic_load_explicit(&h->h->bucket[k], memory_order_relaxed);
    uint64_t sum_ns = atomic_load_explicit(&h->h->sum_ns, memory_order_relaxed);
    put_head(b, family, h->help, "histogram");
    uint64_t cum = 0;
    for (size_t k = 0; k < AMP_METRICS_LAT_BUCKETS; k++) {
      cum += snap[k];
      amp_sbuf_printf(b, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", family,
                      amp_metrics_fmt_double(num, amp_metrics_lat_bounds[k]), cum);
    }
    cum += snap[AMP_METRICS_LAT_BUCKETS];
    amp_sbuf_printf(b, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", family, cum);
    amp_sbuf_printf(b, "%s_sum %s\n", family, amp_metrics_fmt_double(num, (double)sum_ns / 1e9));
    amp_sbuf_printf(b, "%s_count %" PRIu64 "\n", family, cum);
  }
}

char *amp_metrics_render(const amp_metrics_stats_t *st, const amp_metrics_proc_t *proc,
                         size_t *len) {
  amp_sbuf_t b = {0};
  famset_t fam = {0};
  char num[32];
  if (proc && proc->version) {
    fam_claim(&fam, "ampd_build_info");
    put_head(&b, "ampd_build_info", "ampd version; the value is always 1", "gauge");
    amp_sbuf_puts(&b, "ampd_build_info{version=\"");
    put_escaped(&b, proc->version, 1);
    amp_sbuf_puts(&b, "\"} 1\n");
  }
  if (proc && proc->uptime_seconds >= 0) {
    fam_claim(&fam, "ampd_uptime_seconds");
    put_head(&b, "ampd_uptime_seconds", "seconds since ampd started", "gauge");
    amp_sbuf_printf(&b, "ampd_uptime_seconds %s\n", amp_metrics_fmt_double(num, proc->uptime_seconds));
  }
  if (st) {
    render_counters(&b, &fam, st);
    render_gauges(&b, &fam, st);
    render_hists(&b, &fam, st);
  }
  free(fam.names);
  return amp_sbuf_take(&b, len);
}

/* ---- HTTP/1.0 responder ---- */

int amp_metrics_http_parse(const char *req, size_t len, int *head_only) {
  *head_only = 0;
  size_t end = 0;
  int complete = 0;
  for (size_t i = 0; i + 1 < len; i++) {
    if (req[i] == '\n' && req[i + 1] == '\n') { end = i; complete = 1; break; }
    if (i + 3 < len && memcmp(req + i, "\r\n\r\n", 4) == 0) { end = i; complete = 1; break; }
  }
  if (!complete) return len >= AMP_METRICS_HTTP_MAX ? 400 : 0;
  (void)end;
  /* Request line: METHOD SP TARGET SP HTTP/1.x */
  size_t eol = 0;
  while (eol < len && req[eol] != '\n') eol++;
  size_t line_len = eol;
  if (line_len > 0 && req[line_len - 1] == '\r') line_len--;
  const char *sp1 = memchr(req, ' ', line_len);
  if (!sp1 || sp1 == req) return 400;
  const char *target = sp1 + 1;
  const char *sp2 = memchr(target, ' ', line_len - (size_t)(target - req));
  if (!sp2 || sp2 == target) return 400;
  const char *version = sp2 + 1;
  size_t vlen = line_len - (size_t)(version - req);
  if (vlen != 8 || memcmp(version, "HTTP/1.", 7) != 0 || version[7] < '0' || version[7] > '9')
    return 400;
  size_t mlen = (size_t)(sp1 - req);
  for (size_t i = 0; i < mlen; i++)
    if (req[i] < 'A' || req[i] > 'Z') return 400;
  if (*target != '/') return 400;
  size_t tlen = (size_t)(sp2 - target);
  const char *q = memchr(target, '?', tlen);
  size_t plen = q ? (size_t)(q - target) : tlen;
  int is_get = mlen == 3 && memcmp(req, "GET", 3) == 0;
  int is_head = mlen == 4 && memcmp(req, "HEAD", 4) == 0;
  if (!is_get && !is_head) return 405;
  *head_only = is_head;
  if (plen == 8 && memcmp(target, "/metrics", 8) == 0) return 200;
  return 404;
}

char *amp_metrics_http_response(int status, int head_only, const char *body, size_t body_len,
                                size_t *len) {
  const char *reason, *ctype = "text/plain; charset=utf-8", *extra = "";
  if (status == 200 && !body) status = 503;
  switch (status) {
  case 200:
    reason = "OK";
    ctype = "text/plain; version=0.0.4; charset=utf-8";
    break;
  case 404:
    reason = "Not Found";
    body = "not found: ampd serves its metrics at /metrics\n";
    break;
  case 405:
    reason = "Method Not Allowed";
    extra = "Allow: GET, HEAD\r\n";
    body = "method not allowed: use GET /metrics\n";
    break;
  case 503:
    reason = "Service Unavailable";
    body = "metrics unavailable (out of memory)\n";
    break;
  default:
    status = 400;
    reason = "Bad Request";
    body = "bad request: send GET /metrics HTTP/1.0\n";
    break;
  }
  if (status != 200) body_len = strlen(body);
  amp_sbuf_t b = {0};
  amp_sbuf_printf(&b, "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                  "Connection: close\r\n\r\n", status, reason, ctype, body_len, extra);
  if (!head_only) amp_sbuf_add(&b, body, body_len);
  return amp_sbuf_take(&b, len);
}
