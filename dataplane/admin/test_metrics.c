/* test_metrics.c: the Prometheus exposition parses against the text format
 * 0.0.4 grammar (a validator written here), its values match the counters
 * given and `stats`, histograms are consistent, and HTTP GET /metrics works on
 * 127.0.0.1 with an ephemeral port. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "amp_admin.h"
#include "amp_metrics.h"
#include "amp_test.h"

#include "amp_promcheck.h"

/* The value of the sample line starting with `series ` (exact), or NAN. */
static double sample(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (!strncmp(p, series, n) && p[n] == ' ') return strtod(p + n + 1, NULL);
  return NAN;
}

/* ---- fixtures ---- */

static uint64_t settled[3] = {10, 20, 30}, expired[3] = {1, 0, 2}, weird[3] = {0, 0, 7};
static amp_metrics_lat_t lat_settle, lat_commit;

static void fixture(amp_metrics_stats_t *st) {
  static amp_metrics_counter_t c[6];
  static amp_metrics_gauge_t g[3];
  static amp_metrics_hist_t h[2];
  c[0] = (amp_metrics_counter_t){"htlcs_settled", "HTLCs settled", NULL, NULL, settled, 60};
  c[1] = (amp_metrics_counter_t){"htlcs_failed", "HTLCs failed, by reason", "reason", "expired", expired, 3};
  c[2] = (amp_metrics_counter_t){"store_commits", "LMDB commits\\with a backslash\nand a newline", NULL, NULL,
                                 NULL, 9};
  c[3] = (amp_metrics_counter_t){"htlcs_failed", NULL, "reason", "odd \"quoted\\ value\nx", weird, 7};
  c[4] = (amp_metrics_counter_t){"frames_dropped_total", "already ends in _total", NULL, NULL, NULL, 4};
  c[5] = (amp_metrics_counter_t){"bytes_total", "total bytes", NULL, NULL, NULL, 123456789012345ull};
  g[0] = (amp_metrics_gauge_t){"held_htlcs", "HTLCs held now", NULL, NULL, 12};
  g[1] = (amp_metrics_gauge_t){"store_sync_seconds", "last sync", NULL, NULL, 0.00125};
  g[2] = (amp_metrics_gauge_t){"open_sets", "sets open, by kind", "kind", "amp", 3};
  h[0] = (amp_metrics_hist_t){"settlement_latency_seconds", "last shard to fulfill", &lat_settle};
  h[1] = (amp_metrics_hist_t){"commit_latency_seconds", "group commit latency", &lat_commit};
  *st = (amp_metrics_stats_t){3, c, 6, g, 3, h, 2};
}

static void test_render(void) {
  amp_metrics_lat_observe_ns(&lat_settle, 5000);          /* <= 10us */
  amp_metrics_lat_observe_ns(&lat_settle, 10000);         /* exactly 10us: same bucket */
  amp_metrics_lat_observe_ns(&lat_settle, 10001);         /* 25us */
  amp_metrics_lat_observe_ns(&lat_settle, 1000000);       /* 1ms */
  amp_metrics_lat_observe_ns(&lat_settle, 20000000000ull);/* 20 s: +Inf only */
  amp_metrics_lat_t w1 = {0}, w2 = {0};
  amp_metrics_lat_observe_ns(&w1, 3000000);
  amp_metrics_lat_observe_ns(&w2, 3000000);
  amp_metrics_lat_observe_ns(&w2, 70000000);
  amp_metrics_lat_merge(&lat_commit, &w1);
  amp_metrics_lat_merge(&lat_commit, &w2);

  amp_metrics_stats_t st;
  fixture(&st);
  amp_metrics_proc_t proc = {"0.1.0 \"test\"", 12.5};
  size_t len = 0;
  char *t = amp_metrics_render(&st, &proc, &len);
  AMP_REQUIRE(t != NULL);
  AMP_CHECK_EQ(len, strlen(t));
  char why[256];
  int ok = validate(t, why, sizeof why) == 0;
  AMP_CHECK(ok);
  if (!ok) fprintf(stderr, "  invalid exposition: %s\n%s", why, t);

  /* values match what was given */
  AMP_CHECK_EQ(sample(t, "ampd_htlcs_settled_total{worker=\"0\"}"), 10);
  AMP_CHECK_EQ(sample(t, "ampd_htlcs_settled_total{worker=\"2\"}"), 30);
  AMP_CHECK_EQ(sample(t, "ampd_htlcs_failed_total{worker=\"2\",reason=\"expired\"}"), 2);
  AMP_CHECK_EQ(sample(t, "ampd_htlcs_failed_total{worker=\"2\",reason=\"odd \\\"quoted\\\\ value\\nx\"}"), 7);
  AMP_CHECK_EQ(sample(t, "ampd_store_commits_total"), 9);
  AMP_CHECK_EQ(sample(t, "ampd_frames_dropped_total"), 4);   /* no _total_total */
  AMP_CHECK(strstr(t, "_total_total") == NULL);
  AMP_CHECK(strstr(t, "ampd_bytes_total 123456789012345\n") != NULL);
  AMP_CHECK_EQ(sample(t, "ampd_held_htlcs"), 12);
  AMP_CHECK(strstr(t, "ampd_store_sync_seconds 0.00125\n") != NULL);
  AMP_CHECK_EQ(sample(t, "ampd_open_sets{kind=\"amp\"}"), 3);
  AMP_CHECK(strstr(t, "ampd_build_info{version=\"0.1.0 \\\"test\\\"\"} 1\n") != NULL);
  AMP_CHECK(strstr(t, "ampd_uptime_seconds 12.5\n") != NULL);
  AMP_CHECK(strstr(t, "# HELP ampd_store_commits_total LMDB commits\\\\with a backslash\\nand a newline\n") != NULL);
  /* one HELP/TYPE per family even with several entries */
  const char *p = strstr(t, "# TYPE ampd_htlcs_failed_total counter\n");
  AMP_CHECK(p && !strstr(p + 1, "# TYPE ampd_htlcs_failed_total"));
  /* histograms: cumulative buckets, +Inf == count, sum in seconds */
  AMP_CHECK_EQ(sample(t, "ampd_settlement_latency_seconds_bucket{le=\"1e-05\"}"), 2);
  AMP_CHECK_EQ(sample(t, "ampd_settlement_latency_seconds_bucket{le=\"2.5e-05\"}"), 3);
  AMP_CHECK_EQ(sample(t, "ampd_settlement_latency_seconds_bucket{le=\"0.001\"}"), 4);
  AMP_CHECK_EQ(sample(t, "ampd_settlement_latency_seconds_bucket{le=\"10\"}"), 4);
  AMP_CHECK_EQ(sample(t, "ampd_settlement_latency_seconds_bucket{le=\"+Inf\"}"), 5);
  AMP_CHECK_EQ(sample(t, "ampd_settlement_latency_seconds_count"), 5);
  AMP_CHECK(fabs(sample(t, "ampd_settlement_latency_seconds_sum") - 20.001025001) < 1e-9);
  AMP_CHECK_EQ(sample(t, "ampd_commit_latency_seconds_bucket{le=\"0.005\"}"), 2);
  AMP_CHECK_EQ(sample(t, "ampd_commit_latency_seconds_count"), 3);
  AMP_CHECK(fabs(sample(t, "ampd_commit_latency_seconds_sum") - 0.076) < 1e-12);
  free(t);

  /* bad entries are left out; the rest stays valid */
  amp_metrics_counter_t bad[] = {
    {"Bad-Name", "x", NULL, NULL, NULL, 1},
    {"by_set", "x", "set_id", "abcd", NULL, 1},
    {"by_worker", "x", "worker", "9", NULL, 1},
    {"good", "x", NULL, NULL, NULL, 2},
    {"good", "x", NULL, NULL, NULL, 3},          /* a duplicate series */
    {"x", "x", NULL, NULL, NULL, 1},
  };
  amp_metrics_gauge_t badg[] = {
    {"x_total", "collides with the counter x", NULL, NULL, 1},
    {"nan_gauge", "NaN is fine", NULL, NULL, NAN},
    {"inf_gauge", "so is +Inf", NULL, NULL, INFINITY},
  };
  amp_metrics_hist_t badh[] = {
    {"latency_ms", "not seconds", &lat_commit},
    {"good_seconds", "fine", &lat_commit},
    {"good_seconds", "twice", &lat_commit},
  };
  amp_metrics_stats_t bst = {1, bad, 6, badg, 3, badh, 3};
  t = amp_metrics_render(&bst, NULL, NULL);
  AMP_REQUIRE(t != NULL);
  ok = validate(t, why, sizeof why) == 0;
  AMP_CHECK(ok);
  if (!ok) fprintf(stderr, "  invalid exposition: %s\n%s", why, t);
  AMP_CHECK(strstr(t, "set_id") == NULL);
  AMP_CHECK(strstr(t, "Bad-Name") == NULL);
  AMP_CHECK(strstr(t, "latency_ms") == NULL);
  AMP_CHECK_EQ(sample(t, "ampd_good_total"), 2);
  AMP_CHECK(strstr(t, "ampd_nan_gauge NaN\n") && strstr(t, "ampd_inf_gauge +Inf\n"));
  AMP_CHECK(strstr(t, "# TYPE ampd_x_total gauge") == NULL);
  free(t);

  /* empty stats: an empty, valid exposition */
  amp_metrics_stats_t empty = {0};
  t = amp_metrics_render(&empty, NULL, &len);
  AMP_CHECK(t && len == 0);
  free(t);

  char num[32];
  AMP_CHECK(!strcmp(amp_metrics_fmt_double(num, 0.1), "0.1"));
  AMP_CHECK(!strcmp(amp_metrics_fmt_double(num, 1e-05), "1e-05"));
  AMP_CHECK(!strcmp(amp_metrics_fmt_double(num, 2.5), "2.5"));
  AMP_CHECK(!strcmp(amp_metrics_fmt_double(num, -INFINITY), "-Inf"));
  AMP_CHECK(!strcmp(amp_metrics_fmt_double(num, 1.0 / 3), "0.3333333333333333"));
  AMP_CHECK(amp_metrics_name_ok("a_b9") && !amp_metrics_name_ok("9a") && !amp_metrics_name_ok("") &&
            !amp_metrics_name_ok("a-b") && !amp_metrics_name_ok("A"));
}

/* The validator itself rejects what it should. */
static void test_validator(void) {
  static const char *const bad[] = {
    "ampd_x_total 1\n",                                                         /* no HELP/TYPE */
    "# HELP ampd_x_total h\n# TYPE ampd_x_total counter\nampd_x_total 1",       /* no final newline */
    "# HELP ampd_x h\n# TYPE ampd_x counter\nampd_x 1\n",                       /* counter without _total */
    "# HELP x_total h\n# TYPE x_total counter\nx_total 1\n",                    /* no prefix */
    "# HELP ampd_a h\n# TYPE ampd_a gauge\nampd_a 1\n# HELP ampd_b h\n# TYPE ampd_b gauge\nampd_b 1\nampd_a 2\n",
    "# HELP ampd_a h\n# TYPE ampd_a gauge\nampd_a{set_id=\"ab\"} 1\n",
    "# HELP ampd_a h\n# TYPE ampd_a gauge\nampd_a{x=\"1\"} 1\nampd_a{x=\"1\"} 2\n",
    "# HELP ampd_a h\n# TYPE ampd_a gauge\nampd_a 1x\n",
    "# HELP ampd_a h\n# TYPE ampd_a gauge\nampd_a{x=\"1} 1\n",
    "# HELP ampd_h h\n# TYPE ampd_h histogram\nampd_h_bucket{le=\"1\"} 2\nampd_h_bucket{le=\"0.5\"} 2\n"
      "ampd_h_bucket{le=\"+Inf\"} 2\nampd_h_sum 1\nampd_h_count 2\n",
    "# HELP ampd_h h\n# TYPE ampd_h histogram\nampd_h_bucket{le=\"1\"} 2\nampd_h_sum 1\nampd_h_count 2\n",
    "# HELP ampd_h h\n# TYPE ampd_h histogram\nampd_h_bucket{le=\"1\"} 2\nampd_h_bucket{le=\"+Inf\"} 3\n"
      "ampd_h_sum 1\nampd_h_count 2\n",
    "# HELP ampd_h h\n# TYPE ampd_h histogram\nampd_h_bucket{le=\"1\"} 3\nampd_h_bucket{le=\"+Inf\"} 2\n"
      "ampd_h_sum 1\nampd_h_count 2\n",
    "# HELP ampd_a h\n# TYPE ampd_a gauge\n\nampd_a 1\n",
  };
  char why[256];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int r = validate(bad[i], why, sizeof why);
    AMP_CHECK(r != 0);
    if (r == 0) fprintf(stderr, "  validator accepted bad case %zu\n", i);
  }
  AMP_CHECK(validate("# HELP ampd_h h\n# TYPE ampd_h histogram\nampd_h_bucket{le=\"1\"} 2\n"
                     "ampd_h_bucket{le=\"+Inf\"} 2\nampd_h_sum 1\nampd_h_count 2\n", why, sizeof why) == 0);
}

/* ---- through the admin server: stats vs metrics, and HTTP ---- */

static int t_getinfo(void *ctx, amp_admin_info_t *out, amp_admin_reply_t *r) {
  (void)ctx; (void)r;
  snprintf(out->version, sizeof out->version, "9.9.9");
  out->uptime_s = 7;
  return AMP_OK;
}

static int t_stats(void *ctx, amp_admin_reply_t *r) {
  (void)ctx;
  amp_metrics_stats_t st;
  fixture(&st);
  return amp_admin_reply_stats(r, &st);
}

static const amp_admin_ops_t ops = {.getinfo = t_getinfo, .stats = t_stats};

/* Each counter of `stats` equals the sum of its Prometheus samples. */
static void test_stats_match(amp_admin_t *a) {
  const char *req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"stats\"}";
  char *line = amp_admin_call(a, req, strlen(req));
  json_t *j = json_loads(line, 0, NULL);
  free(line);
  size_t len;
  char *text = amp_admin_metrics_text(a, &len);
  AMP_REQUIRE(j && text);
  char why[256];
  AMP_CHECK(validate(text, why, sizeof why) == 0);
  size_t i;
  json_t *c;
  int checked = 0;
  json_array_foreach(json_object_get(json_object_get(j, "result"), "counters"), i, c) {
    const char *name = json_string_value(json_object_get(c, "name"));
    json_t *labels = json_object_get(c, "labels");
    const char *lk = NULL;
    json_t *lv = NULL;
    if (labels) {
      void *it = json_object_iter(labels);
      lk = json_object_iter_key(it);
      lv = json_object_iter_value(it);
    }
    if (lv && strchr(json_string_value(lv), '"')) continue;   /* escaped: checked above */
    if (!strcmp(name, "admin_requests")) continue;   /* the stats call itself counts after its reply */
    char fam[160];
    size_t nl = strlen(name);
    snprintf(fam, sizeof fam, "ampd_%s%s", name, nl > 6 && !strcmp(name + nl - 6, "_total") ? "" : "_total");
    double sum = 0;
    json_t *pw = json_object_get(c, "per_worker");
    if (pw) {
      for (size_t w = 0; w < json_array_size(pw); w++) {
        char series[256];
        if (lk) snprintf(series, sizeof series, "%s{worker=\"%zu\",%s=\"%s\"}", fam, w, lk, json_string_value(lv));
        else snprintf(series, sizeof series, "%s{worker=\"%zu\"}", fam, w);
        sum += sample(text, series);
      }
    } else {
      char series[256];
      if (lk) snprintf(series, sizeof series, "%s{%s=\"%s\"}", fam, lk, json_string_value(lv));
      else snprintf(series, sizeof series, "%s", fam);
      sum = sample(text, series);
    }
    AMP_CHECK_EQ(sum, json_integer_value(json_object_get(c, "total")));
    if (sum != json_integer_value(json_object_get(c, "total"))) fprintf(stderr, "  counter %s\n", name);
    checked++;
  }
  AMP_CHECK(checked >= 8);   /* the fixture's and the admin server's own */
  AMP_CHECK(strstr(text, "ampd_build_info{version=\"9.9.9\"} 1\n") != NULL);
  AMP_CHECK(strstr(text, "ampd_uptime_seconds 7\n") != NULL);
  json_decref(j);
  free(text);
}

static char *http(int port, const char *request, size_t *len) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) { close(fd); return NULL; }
  send(fd, request, strlen(request), MSG_NOSIGNAL);
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (n + 1 >= cap) buf = realloc(buf, cap *= 2);
    ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
    if (r <= 0) break;
    n += (size_t)r;
  }
  buf[n] = 0;
  close(fd);
  *len = n;
  return buf;
}

static void test_http(amp_admin_t *a) {
  int port = amp_admin_metrics_port(a);
  AMP_REQUIRE(port > 0);
  size_t len;
  char *r = http(port, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n", &len);
  AMP_REQUIRE(r != NULL);
  AMP_CHECK(!strncmp(r, "HTTP/1.0 200 OK\r\n", 17));
  AMP_CHECK(strstr(r, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != NULL);
  char *body = strstr(r, "\r\n\r\n");
  AMP_REQUIRE(body != NULL);
  body += 4;
  long clen = strtol(strstr(r, "Content-Length: ") + 16, NULL, 10);
  AMP_CHECK_EQ(clen, (long)strlen(body));
  char why[256];
  int ok = validate(body, why, sizeof why) == 0;
  AMP_CHECK(ok);
  if (!ok) fprintf(stderr, "  %s\n", why);
  AMP_CHECK_EQ(sample(body, "ampd_store_commits_total"), 9);
  free(r);

  r = http(port, "GET /metrics?x=1 HTTP/1.1\nHost: x\n\n", &len);
  AMP_CHECK(r && !strncmp(r, "HTTP/1.0 200 ", 13));
  free(r);
  r = http(port, "HEAD /metrics HTTP/1.1\r\n\r\n", &len);
  AMP_CHECK(r && !strncmp(r, "HTTP/1.0 200 ", 13));
  AMP_CHECK(r && strlen(strstr(r, "\r\n\r\n")) == 4);   /* no body */
  free(r);
  r = http(port, "GET / HTTP/1.0\r\n\r\n", &len);
  AMP_CHECK(r && !strncmp(r, "HTTP/1.0 404 ", 13));
  free(r);
  r = http(port, "GET /metricsx HTTP/1.0\r\n\r\n", &len);
  AMP_CHECK(r && !strncmp(r, "HTTP/1.0 404 ", 13));
  free(r);
  r = http(port, "POST /metrics HTTP/1.0\r\n\r\n", &len);
  AMP_CHECK(r && !strncmp(r, "HTTP/1.0 405 ", 13) && strstr(r, "Allow: GET, HEAD"));
  free(r);
  r = http(port, "hello there\r\n\r\n", &len);
  AMP_CHECK(r && !strncmp(r, "HTTP/1.0 400 ", 13));
  free(r);
  /* a head that never ends: 400 at 8 KiB, not a stall */
  char *big = malloc(20000);
  memset(big, 'a', 19999);
  big[19999] = 0;
  memcpy(big, "GET /metrics HTTP/1.0\r\nX: ", 26);
  r = http(port, big, &len);
  AMP_CHECK(r && !strncmp(r, "HTTP/1.0 400 ", 13));
  free(r);
  free(big);
  /* another address of this host does not answer: bound to loopback only */
  struct ifaddrs *ifs = NULL, *it;
  int tried = 0;
  if (getifaddrs(&ifs) == 0) {
    for (it = ifs; it && !tried; it = it->ifa_next) {
      if (!it->ifa_addr || it->ifa_addr->sa_family != AF_INET) continue;
      struct sockaddr_in sa = *(struct sockaddr_in *)it->ifa_addr;
      if ((ntohl(sa.sin_addr.s_addr) >> 24) == 127) continue;
      sa.sin_port = htons((uint16_t)port);
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      AMP_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno == ECONNREFUSED);
      close(fd);
      tried = 1;
    }
    freeifaddrs(ifs);
  }
  if (!tried) printf("SKIP loopback-only check: no other IPv4 address here\n");
  /* the count of HTTP requests shows */
  char *text = amp_admin_metrics_text(a, &len);
  AMP_CHECK(text && sample(text, "ampd_admin_http_requests_total") >= 8);
  free(text);
}

static void test_http_parse(void) {
  int h;
  AMP_CHECK_EQ(amp_metrics_http_parse("GET /metrics HTTP/1.0\r\n", 23, &h), 0);   /* incomplete */
  AMP_CHECK_EQ(amp_metrics_http_parse("GET /metrics HTTP/1.0\r\n\r\n", 25, &h), 200);
  AMP_CHECK_EQ(amp_metrics_http_parse("HEAD /metrics HTTP/1.1\n\n", 24, &h), 200);
  AMP_CHECK_EQ(h, 1);
  AMP_CHECK_EQ(amp_metrics_http_parse("GET /metrics HTTP/2.0\r\n\r\n", 25, &h), 400);
  AMP_CHECK_EQ(amp_metrics_http_parse("GET metrics HTTP/1.0\r\n\r\n", 24, &h), 400);
  AMP_CHECK_EQ(amp_metrics_http_parse("get /metrics HTTP/1.0\r\n\r\n", 25, &h), 400);
  AMP_CHECK_EQ(amp_metrics_http_parse("DELETE /metrics HTTP/1.0\r\n\r\n", 28, &h), 405);
  AMP_CHECK_EQ(amp_metrics_http_parse("GET /metrics/ HTTP/1.0\r\n\r\n", 26, &h), 404);
  size_t len;
  char *resp = amp_metrics_http_response(200, 0, NULL, 0, &len);   /* no body: 503 */
  AMP_CHECK(resp && !strncmp(resp, "HTTP/1.0 503 ", 13));
  free(resp);
}

/* Binding another address than loopback must be asked for; a bad one fails clearly. */
static void test_http_cfg(void) {
  char dir[64] = "/tmp/ampd-metrics-XXXXXX";
  char *made = mkdtemp(dir);
  AMP_REQUIRE(made != NULL);
  amp_admin_cfg_t cfg = {.data_dir = dir, .metrics_port = AMP_ADMIN_METRICS_ANY_PORT,
                         .metrics_addr = "localhost"};
  AMP_CHECK(amp_admin_new(&cfg, &ops, NULL) == NULL);
  AMP_CHECK(strstr(amp_admin_error(), "not an IP address") != NULL);
  cfg.metrics_addr = "::1";
  amp_admin_t *a = amp_admin_new(&cfg, &ops, NULL);
  if (a) {
    AMP_CHECK(amp_admin_metrics_port(a) > 0);
    amp_admin_delete(a);
  } else {
    printf("SKIP IPv6 loopback metrics: %s\n", amp_admin_error());
  }
  cfg.metrics_port = 70000;
  cfg.metrics_addr = NULL;
  AMP_CHECK(amp_admin_new(&cfg, &ops, NULL) == NULL);
  AMP_CHECK(strstr(amp_admin_error(), "metrics port") != NULL);
  rmdir(dir);
}

/* The log2 layout of ampd's workers and the store (amp_metrics_lat_add_log2). */
static size_t log2_bucket(uint64_t v, unsigned sub) {
  if (v < (1ull << sub)) return (size_t)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  return ((size_t)(msb - sub + 1) << sub) | (size_t)((v >> (msb - sub)) & ((1ull << sub) - 1));
}

/* The fixed bucket observe_ns puts ns into. */
static size_t fixed_bucket(double ns) {
  size_t i = 0;
  while (i < AMP_METRICS_LAT_BUCKETS && ns > amp_metrics_lat_bounds[i] * 1e9) i++;
  return i;
}

static uint64_t hcount(const amp_metrics_lat_t *h, size_t i) {
  return atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
}

static void test_add_log2(void) {
  /* Store layout (ns, 3 sub bits): 9000 ns lies in [8192, 9215], all <= 10us;
   * 10000 ns in [9216, 10239], which straddles 10us: counted in 25us. */
  static uint64_t n[512];
  amp_metrics_lat_t h;
  memset(&h, 0, sizeof h);
  n[log2_bucket(9000, 3)] = 2;
  n[log2_bucket(10000, 3)] = 1;
  n[log2_bucket(5, 3)] = 4;                    /* direct buckets below 8 */
  n[log2_bucket(20000000000ull, 3)] = 1;       /* 20 s: +Inf */
  n[511] = 1;                                  /* past 64-bit values: +Inf */
  amp_metrics_lat_add_log2(&h, n, 512, 3, 1.0, 12345);
  AMP_CHECK_EQ(hcount(&h, 0), 6);
  AMP_CHECK_EQ(hcount(&h, 1), 1);
  AMP_CHECK_EQ(hcount(&h, AMP_METRICS_LAT_BUCKETS), 2);
  AMP_CHECK_EQ(atomic_load(&h.sum_ns), 12345);
  /* Added, not replaced: a second source doubles it. */
  amp_metrics_lat_add_log2(&h, n, 512, 3, 1.0, 5);
  AMP_CHECK_EQ(hcount(&h, 0), 12);
  AMP_CHECK_EQ(atomic_load(&h.sum_ns), 12350);

  /* Worker layout (TSC cycles, 4 sub bits, 976 buckets) at 2.5 GHz: every
   * value lands in its own fixed bucket or the next one, never lower; counts
   * and the sum carry over. */
  enum { NB = (64 - 4 + 1) << 4 };
  static uint64_t w[NB];
  const double unit = 1e9 / 2.5e9;
  uint64_t want[AMP_METRICS_LAT_BUCKETS + 1] = {0}, sum = 0, total = 0;
  uint64_t x = 88172645463325252ull;
  size_t exact = 0;
  for (int k = 0; k < 20000; k++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    /* mostly 1 .. 2^36 cycles spread over the octaves, a few below 64 */
    double mant = 1.0 + (double)(x % 1000) / 1000.0;
    uint64_t cyc = (x % 60) < 58 ? (uint64_t)(ldexp(mant, (int)(x >> 58) % 36)) : (x >> 20) % 64;
    w[log2_bucket(cyc, 4)]++;
    want[fixed_bucket((double)cyc * unit)]++;
    sum += cyc;
    total++;
    memset(&h, 0, sizeof h);
    uint64_t one[NB];
    memset(one, 0, sizeof one);
    one[log2_bucket(cyc, 4)] = 1;
    amp_metrics_lat_add_log2(&h, one, NB, 4, unit, cyc);
    size_t f = fixed_bucket((double)cyc * unit), got = AMP_METRICS_LAT_BUCKETS + 1;
    for (size_t i = 0; i <= AMP_METRICS_LAT_BUCKETS; i++)
      if (hcount(&h, i)) got = i;
    AMP_CHECK(got == f || got == f + 1);
    exact += got == f;
    /* next bucket only when the source bucket straddles the bound */
    if (got == f + 1)
      AMP_CHECK((double)cyc * unit * (1.0 + 1.0 / 16) > amp_metrics_lat_bounds[f] * 1e9);
  }
  AMP_CHECK(exact > 19000);
  memset(&h, 0, sizeof h);
  amp_metrics_lat_add_log2(&h, w, NB, 4, unit, sum);
  uint64_t got_total = 0, cum_got = 0, cum_want = 0;
  for (size_t i = 0; i <= AMP_METRICS_LAT_BUCKETS; i++) {
    got_total += hcount(&h, i);
    cum_got += hcount(&h, i);
    cum_want += want[i];
    AMP_CHECK(cum_got <= cum_want);     /* never shown below a bound it exceeds */
  }
  AMP_CHECK_EQ(got_total, total);
  double s = (double)atomic_load(&h.sum_ns), ws = (double)sum * unit;
  AMP_CHECK(fabs(s - ws) <= 1.0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  test_validator();
  test_render();
  test_add_log2();
  test_http_parse();

  char dir[64] = "/tmp/ampd-metrics-XXXXXX";
  char *made = mkdtemp(dir);
  AMP_REQUIRE(made != NULL);
  amp_admin_cfg_t cfg = {.data_dir = dir, .metrics_port = AMP_ADMIN_METRICS_ANY_PORT};
  amp_admin_t *a = amp_admin_new(&cfg, &ops, NULL);
  if (!a) fprintf(stderr, "amp_admin_new: %s\n", amp_admin_error());
  AMP_REQUIRE(a != NULL);
  test_stats_match(a);
  test_http(a);
  amp_admin_delete(a);
  rmdir(dir);
  test_http_cfg();
  return amp_test_done();
}
