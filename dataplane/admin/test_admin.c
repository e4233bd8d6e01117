/* test_admin.c: the admin socket against a fake ops backend, every method
 * with good and bad parameters, ampctl end to end, hostile clients, and the
 * socket's file rules and permissions.
 *
 * Usage: test_admin PATH-TO-AMPCTL (meson passes the built binary). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "amp_admin.h"
#include "amp_test.h"

/* ---- the fake daemon ---- */

#define FAKE_MAX_INV 64

typedef struct {
  amp_admin_invoice_t inv;
  char memo[AMP_ADMIN_MEMO_MAX + 1];
  uint8_t preimage[32];      /* MPP: the secret that must never show */
} fake_inv_t;

typedef struct {
  fake_inv_t inv[FAKE_MAX_INV];
  size_t n_inv;
  uint64_t next_add;
  amp_admin_set_t sets[3];   /* 0 settled, 1 cancelled (both of invoice 0), 2 held */
  amp_admin_htlc_t htlcs[3][3];
  uint32_t height;
  int level;
  int stopped;
  uint64_t last_amt;
  int last_has_preimage;
  uint8_t last_preimage[32];
  amp_metrics_lat_t settle_lat, commit_lat;
  uint64_t settled[2], failed_expired[2], failed_tag[2];
} fake_t;

static fake_t fake;
static char secret_hex[65];  /* the MPP preimage of invoice 1: must never be in a reply */

static void fill(uint8_t *p, size_t n, uint8_t seed) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(seed + i * 7);
}

static void hex(char *out, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
}

/* The fake's "hash": not SHA-256, just a visible function of the preimage. */
static void fake_hash(uint8_t out[32], const uint8_t pre[32]) {
  for (int i = 0; i < 32; i++) out[i] = (uint8_t)(pre[31 - i] ^ 0x5a);
}

static fake_inv_t *fake_add(int amp, uint64_t value, const char *memo) {
  fake_inv_t *f = &fake.inv[fake.n_inv++];
  memset(f, 0, sizeof *f);
  f->inv.amp = amp;
  f->inv.state = AMP_ADMIN_INV_OPEN;
  fill(f->inv.payment_addr, 32, (uint8_t)(0x10 + fake.n_inv));
  f->inv.value_msat = value;
  f->inv.created = 1700000000 + fake.n_inv;
  f->inv.expiry = 3600;
  snprintf(f->memo, sizeof f->memo, "%s", memo);
  f->inv.memo = f->memo;
  f->inv.add_index = ++fake.next_add;
  return f;
}

static void fake_init(void) {
  memset(&fake, 0, sizeof fake);
  fake.height = 800000;
  fake.level = 7;
  /* invoice 0: AMP, a settled set and a cancelled set */
  fake_inv_t *a = fake_add(1, 0, "amp donations");
  for (int s = 0; s < 3; s++) {
    amp_admin_set_t *set = &fake.sets[s];
    set->amp = 1;
    fill(set->set_id, 32, (uint8_t)(0xa0 + s));
    memcpy(set->payment_addr, a->inv.payment_addr, 32);
    set->state = s == 0 ? AMP_ADMIN_SET_SETTLED : s == 1 ? AMP_ADMIN_SET_CANCELLED : AMP_ADMIN_SET_HELD;
    set->index = s < 2 ? (uint64_t)s + 1 : 0;
    set->settle_index = s == 0 ? 1 : 0;
    set->time = s < 2 ? 1700000100 + (uint64_t)s : 0;
    set->cancel_reason = s == 1 ? "child hash mismatch" : NULL;
    set->total_msat = 3000;
    for (int h = 0; h < 3; h++) {
      amp_admin_htlc_t *x = &fake.htlcs[s][h];
      x->scid = (700000ull << 40) | ((uint64_t)(h + 1) << 16) | (uint64_t)s;
      x->htlc_id = (uint64_t)(10 * s + h);
      x->amt_msat = 1000;
      x->child_index = (uint32_t)h;
      x->cltv_expiry = 800100;
      x->age_ms = 1500;
      x->left_ms = 118500;
    }
    set->htlcs = fake.htlcs[s];
    set->n_htlcs = s == 2 ? 2 : 3;
    set->amt_msat = 1000 * set->n_htlcs;
  }
  a->inv.amt_paid_msat = 3000;
  a->inv.placeholder = 1;
  /* invoice 1: MPP, settled, its preimage a secret */
  fake_inv_t *m = fake_add(0, 5000, "a book");
  fill(m->preimage, 32, 0xe0);
  fake_hash(m->inv.payment_hash, m->preimage);
  m->inv.state = AMP_ADMIN_INV_SETTLED;
  m->inv.amt_paid_msat = 5000;
  m->inv.settle_index = 2;
  hex(secret_hex, m->preimage, 32);
  /* invoice 2: MPP, open */
  fake_inv_t *o = fake_add(0, 7000, "open one");
  fill(o->preimage, 32, 0x33);
  fake_hash(o->inv.payment_hash, o->preimage);
  fake.settled[0] = 3;
  fake.settled[1] = 4;
  fake.failed_expired[0] = 1;
  fake.failed_tag[1] = 2;
  amp_metrics_lat_observe_ns(&fake.settle_lat, 40000);
  amp_metrics_lat_observe_ns(&fake.settle_lat, 2000000);
  amp_metrics_lat_observe_ns(&fake.commit_lat, 3000000);
}

static fake_inv_t *fake_find(const amp_admin_invoice_ref_t *ref) {
  for (size_t i = 0; i < fake.n_inv; i++) {
    amp_admin_invoice_t *v = &fake.inv[i].inv;
    if (ref->by_hash ? (!v->amp && !memcmp(v->payment_hash, ref->key, 32))
                     : !memcmp(v->payment_addr, ref->key, 32))
      return &fake.inv[i];
  }
  return NULL;
}

/* Emits an invoice with its sets attached (invoice 0 has the AMP sets; MPP
 * invoice 1 has one payment). */
static int emit_inv(amp_admin_reply_t *r, fake_inv_t *f) {
  amp_admin_invoice_t v = f->inv;
  amp_admin_set_t mpp;
  if (f == &fake.inv[0]) {
    v.sets = fake.sets;
    v.n_sets = 2;
  } else if (f == &fake.inv[1]) {
    memset(&mpp, 0, sizeof mpp);
    memcpy(mpp.payment_hash, v.payment_hash, 32);
    mpp.state = AMP_ADMIN_SET_SETTLED;
    mpp.htlcs = fake.htlcs[0];
    mpp.n_htlcs = 2;
    v.sets = &mpp;
    v.n_sets = 1;
  }
  return amp_admin_reply_invoice(r, &v);
}

static int f_getinfo(void *ctx, amp_admin_info_t *out, amp_admin_reply_t *r) {
  (void)ctx; (void)r;
  snprintf(out->version, sizeof out->version, "0.1.0-test");
  out->has_node_id = 1;
  out->node_id[0] = 0x02;
  fill(out->node_id + 1, 32, 0x42);
  out->block_height = fake.height;
  out->uptime_s = 42;
  out->workers = 2;
  out->n_ports = 1;
  out->ports[0].port_id = 0;
  snprintf(out->ports[0].name, sizeof out->ports[0].name, "net_ring0");
  memcpy(out->ports[0].mac, "\x02\x00\x00\x00\x00\x01", 6);
  out->ports[0].rx_queues = out->ports[0].tx_queues = 2;
  out->ports[0].link_up = 1;
  snprintf(out->data_dir, sizeof out->data_dir, "/var/lib/ampd");
  return AMP_OK;
}

static int f_stats(void *ctx, amp_admin_reply_t *r) {
  (void)ctx;
  amp_metrics_counter_t c[] = {
    {"htlcs_settled", "HTLCs settled", NULL, NULL, fake.settled, fake.settled[0] + fake.settled[1]},
    {"htlcs_failed", "HTLCs failed, by reason", "reason", "expired", fake.failed_expired, 1},
    {"htlcs_failed", "HTLCs failed, by reason", "reason", "bad_tag", fake.failed_tag, 2},
    {"store_commits", "LMDB commits", NULL, NULL, NULL, 5},
  };
  amp_metrics_gauge_t g[] = {
    {"held_htlcs", "HTLCs held now", NULL, NULL, 2},
    {"replay_log_bytes", "replay log size", NULL, NULL, 1048576},
  };
  amp_metrics_hist_t h[] = {
    {"settlement_latency_seconds", "last shard to fulfill", &fake.settle_lat},
    {"commit_latency_seconds", "group commit", &fake.commit_lat},
  };
  amp_metrics_stats_t st = {2, c, 4, g, 2, h, 2};
  return amp_admin_reply_stats(r, &st);
}

static int f_addinvoice(void *ctx, const amp_admin_addinvoice_t *in, amp_admin_addinvoice_res_t *out,
                        amp_admin_reply_t *r) {
  (void)ctx; (void)r;
  fake.last_amt = in->amt_msat;
  fake.last_has_preimage = in->has_preimage;
  memcpy(fake.last_preimage, in->preimage, 32);
  uint8_t pre[32], hash[32];
  if (in->has_preimage) memcpy(pre, in->preimage, 32);
  else fill(pre, 32, (uint8_t)(0x77 + fake.n_inv));
  fake_hash(hash, pre);
  if (!in->amp)
    for (size_t i = 0; i < fake.n_inv; i++)
      if (!fake.inv[i].inv.amp && !memcmp(fake.inv[i].inv.payment_hash, hash, 32)) return AMP_ERR_EXISTS;
  if (fake.n_inv == FAKE_MAX_INV) return AMP_ERR_FULL;
  fake_inv_t *f = fake_add(in->amp, in->amt_msat, in->memo);
  f->inv.expiry = in->expiry;
  f->inv.cltv_delta = in->cltv_delta;
  memcpy(f->preimage, pre, 32);
  if (!in->amp) memcpy(f->inv.payment_hash, hash, 32);
  memcpy(out->payment_addr, f->inv.payment_addr, 32);
  memcpy(out->payment_hash, f->inv.payment_hash, 32);
  out->add_index = f->inv.add_index;
  out->created = f->inv.created;
  out->expiry = in->expiry;
  out->state = AMP_ADMIN_INV_OPEN;
  return AMP_OK;
}

static int f_lookupinvoice(void *ctx, const amp_admin_invoice_ref_t *ref, amp_admin_reply_t *r) {
  (void)ctx;
  fake_inv_t *f = fake_find(ref);
  return f ? emit_inv(r, f) : AMP_ERR_NOTFOUND;
}

static int f_listinvoices(void *ctx, const amp_admin_list_invoices_t *q, amp_admin_reply_t *r) {
  (void)ctx;
  /* Reversed: walk from the newest down, as an index would. */
  for (size_t k = 0; k < fake.n_inv; k++) {
    fake_inv_t *f = &fake.inv[q->reversed ? fake.n_inv - 1 - k : k];
    uint64_t ai = f->inv.add_index;
    if (q->reversed ? (q->index_offset && ai >= q->index_offset) : ai <= q->index_offset) continue;
    if (q->pending_only && f->inv.state != AMP_ADMIN_INV_OPEN) continue;
    int rc = emit_inv(r, f);
    if (rc == AMP_ERR_FULL) return AMP_OK;
    if (rc != AMP_OK) return rc;
  }
  return AMP_OK;
}

static int f_cancelinvoice(void *ctx, const amp_admin_invoice_ref_t *ref, amp_admin_reply_t *r) {
  (void)ctx;
  fake_inv_t *f = fake_find(ref);
  if (!f) return AMP_ERR_NOTFOUND;
  if (f->inv.state != AMP_ADMIN_INV_OPEN) {
    amp_admin_reply_errorf(r, "invoice %" PRIu64 " is %s; only an open invoice can be cancelled",
                           f->inv.add_index, amp_admin_inv_state_str(f->inv.state));
    return AMP_ERR_STATE;
  }
  f->inv.state = AMP_ADMIN_INV_CANCELLED;
  return AMP_OK;
}

static int f_lookupset(void *ctx, const uint8_t set_id[32], amp_admin_reply_t *r) {
  (void)ctx;
  for (int s = 0; s < 3; s++)
    if (!memcmp(fake.sets[s].set_id, set_id, 32)) return amp_admin_reply_set(r, &fake.sets[s]);
  return AMP_ERR_NOTFOUND;
}

static int f_listsets(void *ctx, const amp_admin_list_sets_t *q, amp_admin_reply_t *r) {
  (void)ctx;
  for (int k = 0; k < 2; k++) {
    const amp_admin_set_t *s = &fake.sets[q->reversed ? 1 - k : k];
    if (q->state >= 0 && (int)s->state != q->state) continue;
    if (q->reversed ? (q->index_offset && s->index >= q->index_offset) : s->index <= q->index_offset)
      continue;
    int rc = amp_admin_reply_set(r, s);
    if (rc == AMP_ERR_FULL) break;
    if (rc != AMP_OK) return rc;
  }
  return AMP_OK;
}

static int f_listheld(void *ctx, amp_admin_reply_t *r) {
  (void)ctx;
  return amp_admin_reply_set(r, &fake.sets[2]);
}

static int f_settip(void *ctx, uint32_t height, amp_admin_reply_t *r) {
  (void)ctx;
  if (height < fake.height) {
    amp_admin_reply_errorf(r, "invalid parameter 'height': %" PRIu32 " is below the current tip %" PRIu32,
                           height, fake.height);
    return AMP_ERR_RANGE;
  }
  fake.height = height;
  return AMP_OK;
}

static int f_setloglevel(void *ctx, int level, amp_admin_reply_t *r) {
  (void)ctx; (void)r;
  fake.level = level;
  return AMP_OK;
}

static int f_getconfig(void *ctx, amp_admin_reply_t *r) {
  (void)ctx;
  int rc = amp_admin_reply_config_str(r, "data-dir", "/var/lib/ampd");
  if (!rc) rc = amp_admin_reply_config_u64(r, "workers", 2);
  if (!rc) rc = amp_admin_reply_config_bool(r, "accept-amp", 1);
  if (!rc) rc = amp_admin_reply_config_str(r, "node-key", secret_hex);
  if (!rc) rc = amp_admin_reply_config_str(r, "gateway-keys-file", "/etc/ampd/gateways");
  return rc;
}

static int f_stop(void *ctx, amp_admin_reply_t *r) {
  (void)ctx; (void)r;
  fake.stopped = 1;
  return AMP_OK;
}

static const amp_admin_ops_t fake_ops = {
  f_getinfo, f_stats, f_addinvoice, f_lookupinvoice, f_listinvoices, f_cancelinvoice,
  f_lookupset, f_listsets, f_listheld, f_settip, f_setloglevel, f_getconfig, f_stop,
};

/* ---- a client ---- */

static char dir[64];
static char sock[128];
static const char *ampctl_path;

static int client(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return -1;
  }
  struct timeval tv = {.tv_sec = 10};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static int send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads one line (malloc'd, without '\n'), or NULL on EOF/error/timeout. */
static char *read_line(int fd) {
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    char ch;
    ssize_t r = recv(fd, &ch, 1, 0);
    if (r <= 0) { free(buf); return NULL; }
    if (ch == '\n') break;
    if (n + 1 >= cap) {
      char *q = realloc(buf, cap *= 2);
      if (!q) { free(buf); return NULL; }
      buf = q;
    }
    buf[n++] = ch;
  }
  buf[n] = 0;
  return buf;
}

/* Checks a reply line never carries the secret preimage. */
static void check_no_secret(const char *line) {
  AMP_CHECK(strstr(line, secret_hex) == NULL);
  AMP_CHECK(strstr(line, "\"preimage\"") == NULL);   /* as a member */
}

/* Sends a request line on fd and returns the parsed reply. */
static json_t *ask_fd(int fd, const char *req) {
  if (send_all(fd, req, strlen(req)) != 0 || send_all(fd, "\n", 1) != 0) return NULL;
  char *rep = read_line(fd);
  if (!rep) return NULL;
  check_no_secret(rep);
  json_t *j = json_loads(rep, 0, NULL);
  AMP_CHECK(j != NULL);
  free(rep);
  return j;
}

/* One request on a new connection. */
static json_t *ask(const char *fmt, ...) {
  char req[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(req, sizeof req, fmt, ap);
  va_end(ap);
  int fd = client(sock);
  AMP_REQUIRE(fd >= 0);
  json_t *j = ask_fd(fd, req);
  close(fd);
  AMP_REQUIRE(j != NULL);
  return j;
}

/* A method call: {"jsonrpc":"2.0","id":7,"method":m,"params":p} */
static json_t *call(const char *method, const char *params) {
  return ask("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"%s\",\"params\":%s}", method, params);
}

static json_t *result_of(json_t *j) {
  json_t *r = json_object_get(j, "result");
  if (!r) {
    char *s = json_dumps(j, JSON_COMPACT);
    fprintf(stderr, "  expected a result, got %s\n", s);
    free(s);
  }
  return r;
}

static long long err_code(json_t *j) {
  return json_integer_value(json_object_get(json_object_get(j, "error"), "code"));
}

static const char *err_msg(json_t *j) {
  const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
  return m ? m : "";
}

/* Expects an error with code; the message must contain `word`. */
#define EXPECT_ERR(j, code, word)                                                  \
  do {                                                                             \
    json_t *e_ = (j);                                                              \
    AMP_CHECK_EQ(err_code(e_), (code));                                            \
    AMP_CHECK(strstr(err_msg(e_), (word)) != NULL);                                \
    if (err_code(e_) != (code) || !strstr(err_msg(e_), (word)))                    \
      fprintf(stderr, "  message: %s\n", err_msg(e_));                             \
    json_decref(e_);                                                               \
  } while (0)

static const char *jstr_at(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static long long jint_at(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

static uint64_t ms_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- methods, good and bad ---- */

static void test_methods(void) {
  char addr0[65], addr2[65], hash1[65], hash2[65], set0[65], set2[65], req[2048];
  hex(addr0, fake.inv[0].inv.payment_addr, 32);
  hex(addr2, fake.inv[2].inv.payment_addr, 32);
  hex(hash1, fake.inv[1].inv.payment_hash, 32);
  hex(hash2, fake.inv[2].inv.payment_hash, 32);
  hex(set0, fake.sets[0].set_id, 32);
  hex(set2, fake.sets[2].set_id, 32);

  /* getinfo */
  json_t *j = call("getinfo", "{}"), *r = result_of(j);
  AMP_CHECK(!strcmp(jstr_at(r, "version"), "0.1.0-test"));
  AMP_CHECK_EQ(strlen(jstr_at(r, "node_id")), 66);
  AMP_CHECK(!strncmp(jstr_at(r, "node_id"), "02424950", 8));
  AMP_CHECK_EQ(jint_at(r, "block_height"), 800000);
  AMP_CHECK_EQ(jint_at(r, "workers"), 2);
  AMP_CHECK_EQ(jint_at(r, "pid"), getpid());
  json_t *p0 = json_array_get(json_object_get(r, "ports"), 0);
  AMP_CHECK(!strcmp(jstr_at(p0, "mac"), "02:00:00:00:00:01"));
  AMP_CHECK(!strcmp(jstr_at(p0, "name"), "net_ring0"));
  AMP_CHECK(json_is_true(json_object_get(p0, "link_up")));
  AMP_CHECK(!strcmp(jstr_at(j, "jsonrpc"), "2.0"));
  AMP_CHECK_EQ(jint_at(j, "id"), 7);
  json_decref(j);
  EXPECT_ERR(call("getinfo", "{\"verbose\":true}"), -32602, "'verbose'");
  EXPECT_ERR(call("getinfo", "[1]"), -32602, "params must be an object");
  j = ask("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getinfo\",\"params\":null}");
  AMP_CHECK(result_of(j) != NULL);
  json_decref(j);
  j = ask("{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"getinfo\"}");
  AMP_CHECK(result_of(j) != NULL);
  AMP_CHECK(!strcmp(jstr_at(j, "id"), "abc"));
  json_decref(j);

  /* stats */
  j = call("stats", "{}");
  r = result_of(j);
  AMP_CHECK_EQ(jint_at(r, "workers"), 2);
  json_t *c0 = json_array_get(json_object_get(r, "counters"), 0);
  AMP_CHECK(!strcmp(jstr_at(c0, "name"), "htlcs_settled"));
  AMP_CHECK_EQ(jint_at(c0, "total"), 7);
  AMP_CHECK_EQ(json_integer_value(json_array_get(json_object_get(c0, "per_worker"), 1)), 4);
  json_t *c1 = json_array_get(json_object_get(r, "counters"), 1);
  AMP_CHECK(!strcmp(jstr_at(json_object_get(c1, "labels"), "reason"), "expired"));
  int saw_admin = 0;
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(r, "counters"), i, v)
    if (!strcmp(jstr_at(v, "name"), "admin_requests") && jint_at(v, "total") > 0) saw_admin = 1;
  AMP_CHECK(saw_admin);
  json_t *h0 = json_array_get(json_object_get(r, "histograms"), 0);
  AMP_CHECK_EQ(jint_at(h0, "count"), 2);
  AMP_CHECK_EQ(json_array_size(json_object_get(h0, "buckets")), AMP_METRICS_LAT_BUCKETS + 1);
  json_decref(j);
  EXPECT_ERR(call("stats", "{\"worker\":1}"), -32602, "'worker'");

  /* addinvoice: AMP */
  j = call("addinvoice", "{\"amp\":true,\"amt_msat\":1000,\"memo\":\"coffee\"}");
  r = result_of(j);
  AMP_CHECK_EQ(strlen(jstr_at(r, "payment_addr")), 64);
  AMP_CHECK(json_object_get(r, "payment_hash") == NULL);
  AMP_CHECK(!strcmp(jstr_at(r, "state"), "open"));
  AMP_CHECK_EQ(jint_at(r, "expiry"), AMP_ADMIN_EXPIRY_DEFAULT);
  AMP_CHECK(json_is_true(json_object_get(r, "amp")));
  AMP_CHECK_EQ(jint_at(r, "add_index"), 4);
  AMP_CHECK_EQ(fake.last_amt, 1000);
  AMP_CHECK(!strcmp(fake.inv[3].memo, "coffee"));
  json_decref(j);
  /* AMP without an amount */
  j = call("addinvoice", "{\"amp\":true}");
  AMP_CHECK(result_of(j) != NULL);
  AMP_CHECK_EQ(fake.last_amt, 0);
  json_decref(j);
  /* MPP with the caller's preimage: hash back, preimage never */
  uint8_t pre[32], want_hash[32];
  char pre_hex[65], want_hex[65];
  fill(pre, 32, 0x99);
  hex(pre_hex, pre, 32);
  fake_hash(want_hash, pre);
  hex(want_hex, want_hash, 32);
  snprintf(req, sizeof req, "{\"amt_msat\":25000,\"expiry\":600,\"cltv_delta\":40,\"preimage\":\"%s\"}", pre_hex);
  j = call("addinvoice", req);
  r = result_of(j);
  AMP_CHECK(!strcmp(jstr_at(r, "payment_hash"), want_hex));
  AMP_CHECK_EQ(jint_at(r, "expiry"), 600);
  AMP_CHECK(fake.last_has_preimage);
  AMP_CHECK_MEM(fake.last_preimage, pre, 32);
  char *dump = json_dumps(j, JSON_COMPACT);
  AMP_CHECK(strstr(dump, pre_hex) == NULL);
  free(dump);
  json_decref(j);
  /* the same preimage again: exists */
  EXPECT_ERR(call("addinvoice", req), 1002, "already exists");
  /* MPP without a preimage: ampd draws one */
  j = call("addinvoice", "{\"amt_msat\":1}");
  AMP_CHECK(result_of(j) != NULL);
  AMP_CHECK(!fake.last_has_preimage);
  json_decref(j);
  /* bad addinvoice params */
  EXPECT_ERR(call("addinvoice", "{\"amp\":true,\"amt_msat\":\"1000\"}"), -32602, "'amt_msat'");
  EXPECT_ERR(call("addinvoice", "{\"amp\":true,\"amt_msat\":-5}"), -32602, "'amt_msat'");
  EXPECT_ERR(call("addinvoice", "{\"amp\":true,\"amt_msat\":0}"), -32602, "'amt_msat'");
  EXPECT_ERR(call("addinvoice", "{\"amp\":true,\"amt_msat\":1.5}"), -32602, "'amt_msat'");
  EXPECT_ERR(call("addinvoice", "{\"amp\":true,\"amt_msat\":2100000000000000001}"), -32602, "'amt_msat'");
  EXPECT_ERR(call("addinvoice", "{}"), -32602, "'amt_msat'");
  EXPECT_ERR(call("addinvoice", "{\"amp\":\"yes\"}"), -32602, "'amp'");
  EXPECT_ERR(call("addinvoice", "{\"amp\":1}"), -32602, "'amp'");
  char memo[700];
  memset(memo, 'm', 640);
  memo[640] = 0;
  snprintf(req, sizeof req, "{\"amp\":true,\"memo\":\"%.640s\"}", memo);
  EXPECT_ERR(call("addinvoice", req), -32602, "'memo'");
  EXPECT_ERR(call("addinvoice", "{\"amp\":true,\"memo\":\"a\\u0000b\"}"), -32602, "'memo'");
  EXPECT_ERR(call("addinvoice", "{\"amp\":true,\"memo\":5}"), -32602, "'memo'");
  EXPECT_ERR(call("listsets", "{\"state\":\"settled\\u0000x\"}"), -32602, "'state'");
  EXPECT_ERR(ask("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getinfo\\u0000x\"}"), -32601, "getinfo?x");
  EXPECT_ERR(ask("{\"jsonrpc\":\"2.0\\u0000\",\"id\":1,\"method\":\"getinfo\"}"), -32600, "\"jsonrpc\"");
  EXPECT_ERR(ask("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getinfo\",\"params\":{\"a\\u0000b\":1}}"), -32700, "parse error");
  EXPECT_ERR(call("addinvoice", "{\"amp\":true,\"expiry\":0}"), -32602, "'expiry'");
  EXPECT_ERR(call("addinvoice", "{\"amp\":true,\"expiry\":31536001}"), -32602, "'expiry'");
  EXPECT_ERR(call("addinvoice", "{\"amp\":true,\"cltv_delta\":5}"), -32602, "'cltv_delta'");
  EXPECT_ERR(call("addinvoice", "{\"amt_msat\":5,\"preimage\":\"abcd\"}"), -32602, "'preimage'");
  snprintf(req, sizeof req, "{\"amt_msat\":5,\"preimage\":\"%.62szz\"}", pre_hex);
  EXPECT_ERR(call("addinvoice", req), -32602, "'preimage'");
  snprintf(req, sizeof req, "{\"amp\":true,\"preimage\":\"%s\"}", pre_hex);
  EXPECT_ERR(call("addinvoice", req), -32602, "'preimage'");
  EXPECT_ERR(call("addinvoice", "{\"amp\":true,\"label\":\"x\"}"), -32602, "'label'");

  /* lookupinvoice */
  snprintf(req, sizeof req, "{\"payment_addr\":\"%s\"}", addr0);
  j = call("lookupinvoice", req);
  r = result_of(j);
  AMP_CHECK(json_is_true(json_object_get(r, "amp")));
  AMP_CHECK(json_is_true(json_object_get(r, "placeholder")));
  AMP_CHECK_EQ(jint_at(r, "amt_paid_msat"), 3000);
  AMP_CHECK(!strcmp(jstr_at(r, "memo"), "amp donations"));
  json_t *sets = json_object_get(r, "sets");
  AMP_CHECK_EQ(json_array_size(sets), 2);
  json_t *s0 = json_array_get(sets, 0);
  AMP_CHECK(!strcmp(jstr_at(s0, "set_id"), set0));
  AMP_CHECK(!strcmp(jstr_at(s0, "state"), "settled"));
  AMP_CHECK_EQ(jint_at(s0, "settle_index"), 1);
  AMP_CHECK_EQ(json_array_size(json_object_get(s0, "htlcs")), 3);
  json_t *h1 = json_array_get(json_object_get(s0, "htlcs"), 1);
  AMP_CHECK(!strcmp(jstr_at(h1, "scid"), "700000x2x0"));
  AMP_CHECK_EQ(jint_at(h1, "child_index"), 1);
  AMP_CHECK(json_object_get(h1, "age_ms") == NULL);
  AMP_CHECK(!strcmp(jstr_at(json_array_get(sets, 1), "cancel_reason"), "child hash mismatch"));
  json_decref(j);
  snprintf(req, sizeof req, "{\"payment_hash\":\"%s\"}", hash1);
  j = call("lookupinvoice", req);
  r = result_of(j);
  AMP_CHECK(!strcmp(jstr_at(r, "state"), "settled"));
  AMP_CHECK(!strcmp(jstr_at(r, "payment_hash"), hash1));
  AMP_CHECK_EQ(json_array_size(json_object_get(r, "htlcs")), 2);
  AMP_CHECK(json_object_get(json_array_get(json_object_get(r, "htlcs"), 0), "child_index") == NULL);
  json_decref(j);
  EXPECT_ERR(call("lookupinvoice", "{\"payment_addr\":\"" "0000000000000000000000000000000000000000000000000000000000000000" "\"}"),
             1001, "no invoice with payment_addr 0000");
  EXPECT_ERR(call("lookupinvoice", "{}"), -32602, "'payment_addr'");
  snprintf(req, sizeof req, "{\"payment_addr\":\"%s\",\"payment_hash\":\"%s\"}", addr0, hash1);
  EXPECT_ERR(call("lookupinvoice", req), -32602, "not both");
  EXPECT_ERR(call("lookupinvoice", "{\"payment_addr\":\"abc\"}"), -32602, "'payment_addr'");
  EXPECT_ERR(call("lookupinvoice", "{\"payment_hash\":42}"), -32602, "'payment_hash'");
  EXPECT_ERR(call("lookupinvoice", "{\"r_hash\":\"00\"}"), -32602, "'r_hash'");

  /* listinvoices */
  j = call("listinvoices", "{}");
  r = result_of(j);
  size_t n_all = json_array_size(json_object_get(r, "invoices"));
  AMP_CHECK_EQ(n_all, fake.n_inv);
  AMP_CHECK_EQ(jint_at(r, "first_index_offset"), 1);
  AMP_CHECK_EQ(jint_at(r, "last_index_offset"), (long long)fake.n_inv);
  json_decref(j);
  j = call("listinvoices", "{\"index_offset\":1,\"num_max_invoices\":2}");
  r = result_of(j);
  AMP_CHECK_EQ(json_array_size(json_object_get(r, "invoices")), 2);
  AMP_CHECK_EQ(jint_at(r, "first_index_offset"), 2);
  AMP_CHECK_EQ(jint_at(r, "last_index_offset"), 3);
  json_decref(j);
  j = call("listinvoices", "{\"reversed\":true,\"num_max_invoices\":2}");
  r = result_of(j);
  AMP_CHECK_EQ(json_array_size(json_object_get(r, "invoices")), 2);
  AMP_CHECK_EQ(jint_at(r, "first_index_offset"), (long long)fake.n_inv - 1);   /* oldest first */
  AMP_CHECK_EQ(jint_at(r, "last_index_offset"), (long long)fake.n_inv);
  json_decref(j);
  j = call("listinvoices", "{\"index_offset\":1000}");
  r = result_of(j);
  AMP_CHECK_EQ(json_array_size(json_object_get(r, "invoices")), 0);
  AMP_CHECK_EQ(jint_at(r, "first_index_offset"), 1000);
  json_decref(j);
  EXPECT_ERR(call("listinvoices", "{\"num_max_invoices\":0}"), -32602, "'num_max_invoices'");
  EXPECT_ERR(call("listinvoices", "{\"num_max_invoices\":10001}"), -32602, "'num_max_invoices'");
  EXPECT_ERR(call("listinvoices", "{\"reversed\":\"x\"}"), -32602, "'reversed'");
  EXPECT_ERR(call("listinvoices", "{\"index_offset\":-1}"), -32602, "'index_offset'");

  /* cancelinvoice */
  snprintf(req, sizeof req, "{\"payment_hash\":\"%s\"}", hash2);
  j = call("cancelinvoice", req);
  r = result_of(j);
  AMP_CHECK(!strcmp(jstr_at(r, "state"), "cancelled"));
  AMP_CHECK_EQ(fake.inv[2].inv.state, AMP_ADMIN_INV_CANCELLED);
  json_decref(j);
  EXPECT_ERR(call("cancelinvoice", req), 1003, "only an open invoice");
  snprintf(req, sizeof req, "{\"payment_addr\":\"%s\"}", addr2);
  EXPECT_ERR(call("cancelinvoice", req), 1003, "cancelled");
  EXPECT_ERR(call("cancelinvoice", "{\"payment_addr\":\"" "1111111111111111111111111111111111111111111111111111111111111111" "\"}"),
             1001, "no invoice");
  EXPECT_ERR(call("cancelinvoice", "{}"), -32602, "'payment_hash'");

  /* lookupset */
  snprintf(req, sizeof req, "{\"set_id\":\"%s\"}", set0);
  j = call("lookupset", req);
  r = result_of(j);
  AMP_CHECK(!strcmp(jstr_at(r, "state"), "settled"));
  AMP_CHECK(!strcmp(jstr_at(r, "payment_addr"), addr0));
  AMP_CHECK_EQ(jint_at(r, "settle_index"), 1);
  AMP_CHECK_EQ(jint_at(r, "time"), 1700000100);
  AMP_CHECK_EQ(jint_at(r, "amt_msat"), 3000);
  AMP_CHECK_EQ(jint_at(json_array_get(json_object_get(r, "htlcs"), 2), "child_index"), 2);
  json_decref(j);
  snprintf(req, sizeof req, "{\"set_id\":\"%s\"}", set2);
  j = call("lookupset", req);
  r = result_of(j);
  AMP_CHECK(!strcmp(jstr_at(r, "state"), "held"));
  AMP_CHECK_EQ(jint_at(json_array_get(json_object_get(r, "htlcs"), 0), "left_ms"), 118500);
  json_decref(j);
  EXPECT_ERR(call("lookupset", "{\"set_id\":\"" "2222222222222222222222222222222222222222222222222222222222222222" "\"}"),
             1001, "no set with set_id 2222");
  EXPECT_ERR(call("lookupset", "{}"), -32602, "'set_id'");
  AMP_CHECK(!strcmp(amp_admin_set_state_str(AMP_ADMIN_SET_SETTLING), "settling"));
  EXPECT_ERR(call("lookupset", "{\"set_id\":\"xyz\"}"), -32602, "'set_id'");

  /* listsets */
  j = call("listsets", "{\"state\":\"settled\",\"max\":20}");
  r = result_of(j);
  AMP_CHECK_EQ(json_array_size(json_object_get(r, "sets")), 1);
  AMP_CHECK(!strcmp(jstr_at(json_array_get(json_object_get(r, "sets"), 0), "set_id"), set0));
  json_decref(j);
  j = call("listsets", "{}");
  r = result_of(j);
  AMP_CHECK_EQ(json_array_size(json_object_get(r, "sets")), 2);
  AMP_CHECK_EQ(jint_at(r, "last_index_offset"), 2);
  json_decref(j);
  j = call("listsets", "{\"max\":1,\"reversed\":true}");
  r = result_of(j);
  AMP_CHECK_EQ(json_array_size(json_object_get(r, "sets")), 1);
  AMP_CHECK_EQ(jint_at(r, "first_index_offset"), 2);
  json_decref(j);
  j = call("listsets", "{\"state\":\"cancelled\",\"index_offset\":1}");
  r = result_of(j);
  AMP_CHECK_EQ(json_array_size(json_object_get(r, "sets")), 1);
  json_decref(j);
  EXPECT_ERR(call("listsets", "{\"state\":\"pending\"}"), -32602, "'state'");
  EXPECT_ERR(call("listsets", "{\"state\":\"settled\",\"max\":0}"), -32602, "'max'");
  EXPECT_ERR(call("listsets", "{\"num_max_sets\":3}"), -32602, "'num_max_sets'");

  /* listheld */
  j = call("listheld", "{}");
  r = result_of(j);
  AMP_CHECK_EQ(json_array_size(json_object_get(r, "sets")), 1);
  AMP_CHECK_EQ(jint_at(r, "held_htlcs"), 2);
  AMP_CHECK_EQ(jint_at(r, "held_msat"), 2000);
  json_t *hh = json_array_get(json_object_get(json_array_get(json_object_get(r, "sets"), 0), "htlcs"), 1);
  AMP_CHECK_EQ(jint_at(hh, "age_ms"), 1500);
  json_decref(j);
  EXPECT_ERR(call("listheld", "{\"max\":1}"), -32602, "'max'");

  /* settip */
  j = call("settip", "{\"height\":800010}");
  AMP_CHECK_EQ(jint_at(result_of(j), "block_height"), 800010);
  AMP_CHECK_EQ(fake.height, 800010);
  json_decref(j);
  EXPECT_ERR(call("settip", "{\"height\":5}"), -32602, "below the current tip");
  EXPECT_ERR(call("settip", "{}"), -32602, "'height'");
  EXPECT_ERR(call("settip", "{\"height\":0}"), -32602, "'height'");
  EXPECT_ERR(call("settip", "{\"height\":\"800000\"}"), -32602, "'height'");
  EXPECT_ERR(call("settip", "{\"height\":10000001}"), -32602, "'height'");

  /* setloglevel */
  j = call("setloglevel", "{\"level\":\"debug\"}");
  AMP_CHECK(!strcmp(jstr_at(result_of(j), "level"), "debug"));
  AMP_CHECK_EQ(fake.level, 8);
  json_decref(j);
  j = call("setloglevel", "{\"level\":\"warn\"}");
  AMP_CHECK(!strcmp(jstr_at(result_of(j), "level"), "warning"));
  AMP_CHECK_EQ(fake.level, 5);
  json_decref(j);
  EXPECT_ERR(call("setloglevel", "{\"level\":\"loud\"}"), -32602, "'level'");
  EXPECT_ERR(call("setloglevel", "{\"level\":8}"), -32602, "'level'");
  EXPECT_ERR(call("setloglevel", "{}"), -32602, "'level'");

  /* getconfig: a key is hidden, a key file is not */
  j = call("getconfig", "{}");
  r = result_of(j);
  AMP_CHECK(!strcmp(jstr_at(r, "node-key"), "(hidden)"));
  AMP_CHECK(!strcmp(jstr_at(r, "gateway-keys-file"), "/etc/ampd/gateways"));
  AMP_CHECK_EQ(jint_at(r, "workers"), 2);
  AMP_CHECK(json_is_true(json_object_get(r, "accept-amp")));
  json_decref(j);
  EXPECT_ERR(call("getconfig", "{\"key\":1}"), -32602, "'key'");

  /* metrics */
  j = call("metrics", "{}");
  r = result_of(j);
  AMP_CHECK(json_is_string(r));
  AMP_CHECK(r && strstr(json_string_value(r), "# TYPE ampd_htlcs_settled_total counter\n") != NULL);
  AMP_CHECK(r && strstr(json_string_value(r), "ampd_build_info{version=\"0.1.0-test\"} 1\n") != NULL);
  json_decref(j);
  EXPECT_ERR(call("metrics", "{\"format\":\"json\"}"), -32602, "'format'");
}

/* ---- the envelope ---- */

static void test_envelope(void) {
  EXPECT_ERR(ask("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getinfo\""), -32700, "parse error");
  EXPECT_ERR(ask("not json at all"), -32700, "parse error");
  EXPECT_ERR(ask("{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"getinfo\"}"), -32700, "duplicate");
  EXPECT_ERR(ask("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getinfo\"}]"), -32600, "batch");
  EXPECT_ERR(ask("42"), -32600, "JSON object");
  EXPECT_ERR(ask("{\"jsonrpc\":\"2.0\",\"method\":\"getinfo\"}"), -32600, "\"id\"");
  EXPECT_ERR(ask("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"getinfo\"}"), -32600, "\"id\"");
  EXPECT_ERR(ask("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"getinfo\"}"), -32600, "\"id\"");
  EXPECT_ERR(ask("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"getinfo\"}"), -32600, "\"jsonrpc\"");
  EXPECT_ERR(ask("{\"id\":1,\"method\":\"getinfo\"}"), -32600, "\"jsonrpc\"");
  EXPECT_ERR(ask("{\"jsonrpc\":\"2.0\",\"id\":1}"), -32600, "\"method\"");
  EXPECT_ERR(ask("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}"), -32600, "\"method\"");
  EXPECT_ERR(ask("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getinfo\",\"extra\":1}"), -32600, "\"extra\"");
  EXPECT_ERR(ask("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getinf0\"}"), -32601, "getinf0");
  EXPECT_ERR(ask("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getinfo\",\"params\":3}"), -32602, "params");
  json_t *j = ask("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"nope\"}");
  AMP_CHECK_EQ(jint_at(j, "id"), 1);   /* the id is echoed on errors too */
  json_decref(j);

  /* Invalid JSON leaves the connection usable; pipelined requests are
   * answered in order; CRLF is accepted; blank lines are ignored. */
  int fd = client(sock);
  AMP_REQUIRE(fd >= 0);
  const char *batch = "{oops\n\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getinfo\"}\r\n"
                      "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"stats\"}\n"
                      "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"listheld\"}\n";
  AMP_CHECK(send_all(fd, batch, strlen(batch)) == 0);
  for (int k = 0; k < 4; k++) {
    char *line = read_line(fd);
    AMP_CHECK(line != NULL);
    if (!line) break;
    json_t *r = json_loads(line, 0, NULL);
    if (k == 0) AMP_CHECK_EQ(err_code(r), -32700);
    else AMP_CHECK_EQ(jint_at(r, "id"), k);
    if (k > 0) AMP_CHECK(json_object_get(r, "result") != NULL);
    json_decref(r);
    free(line);
  }
  close(fd);

  /* A request without a newline, then the client shuts down its side. */
  fd = client(sock);
  const char *req = "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"getinfo\"}";
  AMP_CHECK(send_all(fd, req, strlen(req)) == 0);
  shutdown(fd, SHUT_WR);
  char *line = read_line(fd);
  AMP_CHECK(line && strstr(line, "\"id\":9") && strstr(line, "result"));
  free(line);
  close(fd);
}

/* Every op NULL: methods answer "not available". */
static void test_unavailable(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/empty.sock", dir);
  amp_admin_ops_t none;
  memset(&none, 0, sizeof none);
  amp_admin_cfg_t cfg = {.socket_path = path};
  amp_admin_t *a = amp_admin_new(&cfg, &none, NULL);
  AMP_REQUIRE(a != NULL);
  const char *req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getinfo\"}";
  char *rep = amp_admin_call(a, req, strlen(req));
  json_t *j = json_loads(rep, 0, NULL);
  EXPECT_ERR(j, 1005, "not available");
  free(rep);
  req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"metrics\"}";
  rep = amp_admin_call(a, req, strlen(req));
  j = json_loads(rep, 0, NULL);
  EXPECT_ERR(j, 1005, "not available");
  free(rep);
  size_t len;
  AMP_CHECK(amp_admin_metrics_text(a, &len) == NULL);
  amp_admin_delete(a);
}

/* ---- ampctl end to end ---- */

typedef struct {
  int status;
  char out[65536];
  char err[4096];
} run_t;

static void drain(int fd, char *buf, size_t cap) {
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
    if (n == cap - 1) {
      char sink[4096];
      while (read(fd, sink, sizeof sink) > 0) {}
      break;
    }
  }
  buf[n] = 0;
}

/* Runs ampctl with args (NULL-terminated). */
static void run_ampctl(run_t *rr, ...) {
  char *argv[32];
  int argc = 0;
  argv[argc++] = (char *)ampctl_path;
  va_list ap;
  va_start(ap, rr);
  for (char *a; (a = va_arg(ap, char *)) && argc < 31;) argv[argc++] = a;
  va_end(ap);
  argv[argc] = NULL;
  int po[2], pe[2];
  int piped = pipe(po) == 0 && pipe(pe) == 0;
  AMP_REQUIRE(piped);
  pid_t pid = fork();
  AMP_REQUIRE(pid >= 0);
  if (pid == 0) {
    dup2(po[1], 1);
    dup2(pe[1], 2);
    close(po[0]); close(pe[0]); close(po[1]); close(pe[1]);
    execv(ampctl_path, argv);
    _exit(127);
  }
  close(po[1]);
  close(pe[1]);
  /* stderr is small; read stdout first, then stderr. */
  drain(po[0], rr->out, sizeof rr->out);
  drain(pe[0], rr->err, sizeof rr->err);
  close(po[0]);
  close(pe[0]);
  int st;
  waitpid(pid, &st, 0);
  rr->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  if (strstr(rr->out, secret_hex)) AMP_CHECK(!"ampctl printed the secret");
}

static json_t *ampctl_json(run_t *rr) {
  json_t *j = json_loads(rr->out, 0, NULL);
  if (!j) fprintf(stderr, "  ampctl output is not JSON: %.200s / %.200s\n", rr->out, rr->err);
  return j;
}

static void test_ampctl(void) {
  static run_t rr;
  char addr0[65], set0[65];
  hex(addr0, fake.inv[0].inv.payment_addr, 32);
  hex(set0, fake.sets[0].set_id, 32);
  json_t *j;

  run_ampctl(&rr, "--socket", sock, "getinfo", NULL);
  AMP_CHECK_EQ(rr.status, 0);
  j = ampctl_json(&rr);
  AMP_CHECK(!strcmp(jstr_at(j, "version"), "0.1.0-test"));
  json_decref(j);
  AMP_CHECK(strchr(rr.out, '\n') != strrchr(rr.out, '\n'));   /* pretty: many lines */

  run_ampctl(&rr, "--data-dir", dir, "getinfo", NULL);
  AMP_CHECK_EQ(rr.status, 0);
  setenv("AMPD_DATA_DIR", dir, 1);
  run_ampctl(&rr, "getinfo", NULL);
  AMP_CHECK_EQ(rr.status, 0);
  unsetenv("AMPD_DATA_DIR");
  run_ampctl(&rr, "--data-dir=/nonexistent-ampd", "getinfo", NULL);
  AMP_CHECK_EQ(rr.status, 1);
  AMP_CHECK(strstr(rr.err, "cannot connect") != NULL);

  run_ampctl(&rr, "--socket", sock, "stats", NULL);
  AMP_CHECK_EQ(rr.status, 0);
  j = ampctl_json(&rr);
  AMP_CHECK(json_array_size(json_object_get(j, "counters")) > 4);
  json_decref(j);

  /* --amt is satoshis, as lncli */
  run_ampctl(&rr, "--socket", sock, "addinvoice", "--amp", "--amt", "1000", "--memo", "tea", NULL);
  AMP_CHECK_EQ(rr.status, 0);
  AMP_CHECK_EQ(fake.last_amt, 1000000);
  j = ampctl_json(&rr);
  AMP_CHECK_EQ(strlen(jstr_at(j, "payment_addr")), 64);
  json_decref(j);
  run_ampctl(&rr, "--socket", sock, "addinvoice", "--amt-msat=1234", NULL);
  AMP_CHECK_EQ(rr.status, 0);
  AMP_CHECK_EQ(fake.last_amt, 1234);
  run_ampctl(&rr, "--socket", sock, "addinvoice", "--amt", "1", "--amt_msat", "5", NULL);
  AMP_CHECK_EQ(rr.status, 2);

  run_ampctl(&rr, "--socket", sock, "lookupinvoice", "--payment-addr", addr0, NULL);
  AMP_CHECK_EQ(rr.status, 0);
  j = ampctl_json(&rr);
  AMP_CHECK_EQ(json_array_size(json_object_get(j, "sets")), 2);
  json_decref(j);
  run_ampctl(&rr, "--socket", sock, "lookupinvoice", "--payment_addr",
             "0000000000000000000000000000000000000000000000000000000000000000", NULL);
  AMP_CHECK_EQ(rr.status, 1);
  AMP_CHECK(strstr(rr.err, "error 1001") && strstr(rr.err, "no invoice"));
  AMP_CHECK_EQ(rr.out[0], 0);

  run_ampctl(&rr, "--socket", sock, "listinvoices", "--index-offset", "1", "--max", "2", NULL);
  AMP_CHECK_EQ(rr.status, 0);
  j = ampctl_json(&rr);
  AMP_CHECK_EQ(json_array_size(json_object_get(j, "invoices")), 2);
  json_decref(j);

  run_ampctl(&rr, "--socket", sock, "cancelinvoice", "--payment_addr", addr0, NULL);
  AMP_CHECK_EQ(rr.status, 0);
  run_ampctl(&rr, "--socket", sock, "cancelinvoice", "--payment_addr", addr0, NULL);
  AMP_CHECK_EQ(rr.status, 1);
  AMP_CHECK(strstr(rr.err, "error 1003") != NULL);

  run_ampctl(&rr, "--socket", sock, "lookupset", "--set-id", set0, NULL);
  AMP_CHECK_EQ(rr.status, 0);
  run_ampctl(&rr, "--socket", sock, "lookupset", set0, NULL);
  AMP_CHECK_EQ(rr.status, 0);
  j = ampctl_json(&rr);
  AMP_CHECK(!strcmp(jstr_at(j, "state"), "settled"));
  json_decref(j);

  run_ampctl(&rr, "--socket", sock, "listsets", "--state", "settled", "--max", "20", NULL);
  AMP_CHECK_EQ(rr.status, 0);
  j = ampctl_json(&rr);
  AMP_CHECK_EQ(json_array_size(json_object_get(j, "sets")), 1);
  json_decref(j);
  run_ampctl(&rr, "--socket", sock, "listsets", "--state", "pending", NULL);
  AMP_CHECK_EQ(rr.status, 1);
  AMP_CHECK(strstr(rr.err, "error -32602") && strstr(rr.err, "'state'"));

  run_ampctl(&rr, "--socket", sock, "listheld", NULL);
  AMP_CHECK_EQ(rr.status, 0);
  run_ampctl(&rr, "--socket", sock, "settip", "800100", NULL);
  AMP_CHECK_EQ(rr.status, 0);
  AMP_CHECK_EQ(fake.height, 800100);
  run_ampctl(&rr, "--socket", sock, "settip", "--height", "12", NULL);
  AMP_CHECK_EQ(rr.status, 1);
  run_ampctl(&rr, "--socket", sock, "setloglevel", "info", NULL);
  AMP_CHECK_EQ(rr.status, 0);
  AMP_CHECK_EQ(fake.level, 7);
  run_ampctl(&rr, "--socket", sock, "getconfig", NULL);
  AMP_CHECK_EQ(rr.status, 0);
  AMP_CHECK(strstr(rr.out, "(hidden)") != NULL);

  run_ampctl(&rr, "--socket", sock, "metrics", NULL);
  AMP_CHECK_EQ(rr.status, 0);
  AMP_CHECK(!strncmp(rr.out, "# HELP ampd_", 12));   /* text, not JSON */

  run_ampctl(&rr, "--socket", sock, "call", "addinvoice", "{\"amp\":true,\"amt_msat\":\"x\"}", NULL);
  AMP_CHECK_EQ(rr.status, 1);
  AMP_CHECK(strstr(rr.err, "'amt_msat'") != NULL);
  run_ampctl(&rr, "--socket", sock, "call", "getinfo", NULL);
  AMP_CHECK_EQ(rr.status, 0);

  /* help and bad usage */
  run_ampctl(&rr, "help", NULL);
  AMP_CHECK_EQ(rr.status, 0);
  static const char *const names[] = {"getinfo", "stats", "addinvoice", "lookupinvoice", "listinvoices",
    "cancelinvoice", "lookupset", "listsets", "listheld", "settip", "setloglevel", "getconfig", "stop",
    "metrics"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char needle[32];
    snprintf(needle, sizeof needle, "  %s ", names[i]);
    AMP_CHECK(strstr(rr.out, needle) != NULL);
  }
  run_ampctl(&rr, "help", "addinvoice", NULL);
  AMP_CHECK_EQ(rr.status, 0);
  AMP_CHECK(strstr(rr.out, "--amt_msat") != NULL);
  run_ampctl(&rr, NULL);
  AMP_CHECK_EQ(rr.status, 2);
  run_ampctl(&rr, "--socket", sock, "frobnicate", NULL);
  AMP_CHECK_EQ(rr.status, 2);
  AMP_CHECK(strstr(rr.err, "unknown command") != NULL);
  run_ampctl(&rr, "--socket", sock, "addinvoice", "--amt", "abc", NULL);
  AMP_CHECK_EQ(rr.status, 2);
  run_ampctl(&rr, "--socket", sock, "addinvoice", "--bogus", NULL);
  AMP_CHECK_EQ(rr.status, 2);
  run_ampctl(&rr, "--socket", sock, "settip", NULL);
  AMP_CHECK_EQ(rr.status, 1);
  AMP_CHECK(strstr(rr.err, "'height'") != NULL);
  run_ampctl(&rr, "--socket", sock, "getinfo", "extra", NULL);
  AMP_CHECK_EQ(rr.status, 2);
  run_ampctl(&rr, "--socket", sock, "--data-dir", dir, "getinfo", NULL);
  AMP_CHECK_EQ(rr.status, 2);
  run_ampctl(&rr, "--frob", "getinfo", NULL);
  AMP_CHECK_EQ(rr.status, 2);
  run_ampctl(&rr, "--socket", sock, "listinvoices", "--max", NULL);
  AMP_CHECK_EQ(rr.status, 2);

  /* stop last */
  run_ampctl(&rr, "--socket", sock, "stop", NULL);
  AMP_CHECK_EQ(rr.status, 0);
  AMP_CHECK(fake.stopped);
  AMP_CHECK(strstr(rr.out, "stopping") != NULL);
}

/* ---- hostile clients ---- */

static void test_half_request(void) {
  /* The server of this test closes silent half requests after 1500 ms. */
  int slow = client(sock);
  AMP_REQUIRE(slow >= 0);
  AMP_CHECK(send_all(slow, "{\"jsonrpc\":\"2.0\",", 17) == 0);
  uint64_t t0 = ms_now();
  /* others are served meanwhile, while the slow one is still pending */
  for (int k = 0; k < 5; k++) {
    json_t *j = call("getinfo", "{}");
    AMP_CHECK(json_object_get(j, "result") != NULL);
    json_decref(j);
  }
  struct pollfd p = {.fd = slow, .events = POLLIN};
  AMP_CHECK(ms_now() - t0 < 1400 && poll(&p, 1, 0) == 0);
  char *line = read_line(slow);   /* blocks until the server gives up */
  uint64_t waited = ms_now() - t0;
  AMP_CHECK(line != NULL);
  if (line) {
    json_t *j = json_loads(line, 0, NULL);
    EXPECT_ERR(j, -32600, "incomplete");
    free(line);
  }
  char ch;
  AMP_CHECK(recv(slow, &ch, 1, 0) <= 0);   /* then closed */
  AMP_CHECK(waited >= 1400 && waited < 6000);
  if (waited < 1400 || waited >= 6000) fprintf(stderr, "  closed after %llu ms\n", (unsigned long long)waited);
  close(slow);
}

typedef struct {
  int fd;
  size_t sent;
  int err;
} flood_t;

static void *flood(void *arg) {
  flood_t *f = arg;
  static char chunk[65536];
  memset(chunk, 'a', sizeof chunk);
  while (f->sent < 10u * 1024 * 1024) {
    ssize_t w = send(f->fd, chunk, sizeof chunk, MSG_NOSIGNAL);
    if (w <= 0) { f->err = errno; break; }
    f->sent += (size_t)w;
  }
  return NULL;
}

static void test_huge_line(void) {
  flood_t f = {.fd = client(sock)};
  AMP_REQUIRE(f.fd >= 0);
  pthread_t t;
  pthread_create(&t, NULL, flood, &f);
  json_t *j = call("getinfo", "{}");   /* served while the flood goes on */
  AMP_CHECK(json_object_get(j, "result") != NULL);
  json_decref(j);
  char *line = read_line(f.fd);
  AMP_CHECK(line != NULL);
  if (line) {
    EXPECT_ERR(json_loads(line, 0, NULL), -32600, "at most 1048576 bytes");
    free(line);
  }
  char ch;
  AMP_CHECK(recv(f.fd, &ch, 1, 0) <= 0);
  pthread_join(t, NULL);
  AMP_CHECK(f.sent < 10u * 1024 * 1024);   /* the server stopped taking it */
  AMP_CHECK(f.err == EPIPE || f.err == ECONNRESET);
  close(f.fd);
  /* A 10 MB line that does end in a newline: the same. Written without
   * blocking, so the reply is read as soon as it comes. */
  int fd = client(sock);
  size_t n = 10u * 1024 * 1024;
  char *big = malloc(n + 1);
  memset(big, ' ', n);
  big[n] = '\n';
  fcntl(fd, F_SETFL, O_NONBLOCK);
  size_t off = 0;
  char *reply = NULL;
  for (int spins = 0; spins < 20000 && !reply; spins++) {
    if (off <= n) {
      ssize_t w = send(fd, big + off, n + 1 - off, MSG_NOSIGNAL);
      if (w > 0) off += (size_t)w;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 1) == 1) {
      fcntl(fd, F_SETFL, 0);
      reply = read_line(fd);
    }
  }
  AMP_CHECK(reply != NULL);
  AMP_CHECK(off < n);
  if (reply) EXPECT_ERR(json_loads(reply, 0, NULL), -32600, "at most");
  free(reply);
  free(big);
  close(fd);
  j = call("getinfo", "{}");   /* the server is fine */
  AMP_CHECK(json_object_get(j, "result") != NULL);
  json_decref(j);
}

static void test_thousand(void) {
  enum { N = 1000 };
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 4096) {
    rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < 2 * N + 64) {
    printf("SKIP 1000 connections: RLIMIT_NOFILE is %llu and cannot be raised\n",
           (unsigned long long)rl.rlim_cur);
    return;
  }
  static int fds[N];
  int ok = 0;
  for (int k = 0; k < N; k++) fds[k] = client(sock);
  for (int k = 0; k < N; k++) AMP_CHECK(fds[k] >= 0);
  /* all of them send at once, then all read */
  const char *req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getinfo\"}\n";
  for (int k = 0; k < N; k++)
    if (fds[k] >= 0) send_all(fds[k], req, strlen(req));
  /* a well-formed newcomer is answered meanwhile */
  json_t *j = call("listheld", "{}");
  AMP_CHECK(json_object_get(j, "result") != NULL);
  json_decref(j);
  for (int k = 0; k < N; k++) {
    if (fds[k] < 0) continue;
    char *line = read_line(fds[k]);
    if (line && strstr(line, "\"result\"")) ok++;
    free(line);
    close(fds[k]);
  }
  AMP_CHECK_EQ(ok, N);
}

static void test_client_limit(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/limit.sock", dir);
  amp_admin_cfg_t cfg = {.socket_path = path, .max_clients = 5};
  amp_admin_t *a = amp_admin_new(&cfg, &fake_ops, NULL);
  AMP_REQUIRE(a != NULL);
  int fds[5];
  for (int k = 0; k < 5; k++) {
    fds[k] = client(path);
    json_t *j = ask_fd(fds[k], "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getinfo\"}");
    AMP_CHECK(j && json_object_get(j, "result"));
    json_decref(j);
  }
  int extra = client(path);
  AMP_REQUIRE(extra >= 0);
  char *line = read_line(extra);
  AMP_CHECK(line != NULL);
  if (line) EXPECT_ERR(json_loads(line, 0, NULL), 1006, "too many admin clients (limit 5)");
  free(line);
  char ch;
  AMP_CHECK(recv(extra, &ch, 1, 0) <= 0);
  close(extra);
  close(fds[0]);
  usleep(100000);
  int again = client(path);   /* a slot is free again */
  json_t *j = ask_fd(again, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getinfo\"}");
  AMP_CHECK(j && json_object_get(j, "result"));
  json_decref(j);
  close(again);
  for (int k = 1; k < 5; k++) close(fds[k]);
  /* the refusals are counted */
  size_t len;
  char *text = amp_admin_metrics_text(a, &len);
  AMP_CHECK(text && strstr(text, "ampd_admin_connections_closed_total{reason=\"too_many_clients\"} 1\n"));
  free(text);
  amp_admin_delete(a);
}

/* A quiet client (nothing pending) is closed after quiet_timeout_ms. */
static void test_quiet(void) {
  char path[128];
  snprintf(path, sizeof path, "%s/quiet.sock", dir);
  amp_admin_cfg_t cfg = {.socket_path = path, .quiet_timeout_ms = 200};
  amp_admin_t *a = amp_admin_new(&cfg, &fake_ops, NULL);
  AMP_REQUIRE(a != NULL);
  int fd = client(path);
  uint64_t t0 = ms_now();
  char ch;
  AMP_CHECK(recv(fd, &ch, 1, 0) == 0);
  AMP_CHECK(ms_now() - t0 >= 150);
  close(fd);
  amp_admin_delete(a);
}

/* ---- the socket file ---- */

static void test_socket_file(void) {
  struct stat st;
  int have = lstat(sock, &st) == 0;
  AMP_REQUIRE(have);
  AMP_CHECK(S_ISSOCK(st.st_mode));
  AMP_CHECK_EQ(st.st_mode & 07777, 0600);
  AMP_CHECK_EQ(st.st_uid, geteuid());

  amp_admin_cfg_t cfg = {.socket_path = sock};
  /* a live socket: refused, and left alone */
  AMP_CHECK(amp_admin_new(&cfg, &fake_ops, NULL) == NULL);
  AMP_CHECK(strstr(amp_admin_error(), "another process") != NULL);
  json_t *j = call("getinfo", "{}");
  AMP_CHECK(json_object_get(j, "result") != NULL);
  json_decref(j);

  /* a regular file: refused, untouched */
  char path[128];
  snprintf(path, sizeof path, "%s/file.sock", dir);
  FILE *f = fopen(path, "w");
  fputs("keep me", f);
  fclose(f);
  cfg.socket_path = path;
  AMP_CHECK(amp_admin_new(&cfg, &fake_ops, NULL) == NULL);
  AMP_CHECK(strstr(amp_admin_error(), "not a socket") != NULL);
  AMP_CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 7);
  unlink(path);
  /* a directory: refused */
  mkdir(path, 0700);
  AMP_CHECK(amp_admin_new(&cfg, &fake_ops, NULL) == NULL);
  AMP_CHECK(strstr(amp_admin_error(), "not a socket") != NULL);
  rmdir(path);
  /* a symlink to a socket is not a socket: refused */
  symlink(sock, path);
  AMP_CHECK(amp_admin_new(&cfg, &fake_ops, NULL) == NULL);
  unlink(path);

  /* a stale socket (bound, nobody listening): reused */
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  int bound = bind(s, (struct sockaddr *)&sa, sizeof sa) == 0;
  AMP_REQUIRE(bound);
  close(s);
  AMP_CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode));
  amp_admin_t *a = amp_admin_new(&cfg, &fake_ops, NULL);
  AMP_CHECK(a != NULL);
  if (!a) fprintf(stderr, "  %s\n", amp_admin_error());
  int fd = client(path);
  j = ask_fd(fd, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getinfo\"}");
  AMP_CHECK(j && json_object_get(j, "result"));
  json_decref(j);
  close(fd);
  AMP_CHECK(lstat(path, &st) == 0 && (st.st_mode & 07777) == 0600);
  amp_admin_delete(a);
  AMP_CHECK(lstat(path, &st) != 0 && errno == ENOENT);   /* removed on delete */

  /* a missing directory and a path too long: clear errors */
  cfg.socket_path = "/nonexistent-ampd-dir/ampd.sock";
  AMP_CHECK(amp_admin_new(&cfg, &fake_ops, NULL) == NULL);
  AMP_CHECK(strstr(amp_admin_error(), "/nonexistent-ampd-dir/ampd.sock") != NULL);
  char longp[300];
  memset(longp, 'x', sizeof longp - 1);
  longp[0] = '/';
  longp[sizeof longp - 1] = 0;
  cfg.socket_path = longp;
  AMP_CHECK(amp_admin_new(&cfg, &fake_ops, NULL) == NULL);
  AMP_CHECK(strstr(amp_admin_error(), "too long") != NULL);
}

/* Another user cannot connect: a child as uid/gid 65534 tries. The directory
 * is opened up for the check, so only the socket's own mode protects it. */
static void test_other_user(void) {
  if (geteuid() != 0) {
    printf("SKIP other-user check: not root, cannot switch to uid 65534\n");
    return;
  }
  chmod(dir, 0755);
  int results[2];
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) chmod(sock, 0666);   /* control: then it can */
    pid_t pid = fork();
    if (pid == 0) {
      if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(3);
      int fd = socket(AF_UNIX, SOCK_STREAM, 0);
      struct sockaddr_un sa = {.sun_family = AF_UNIX};
      snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
      if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) _exit(0);
      _exit(errno == EACCES ? 1 : 2);
    }
    int st;
    waitpid(pid, &st, 0);
    results[pass] = WIFEXITED(st) ? WEXITSTATUS(st) : 4;
  }
  chmod(sock, 0600);
  chmod(dir, 0700);
  if (results[0] == 3) {
    printf("SKIP other-user check: cannot switch to uid 65534 here\n");
    return;
  }
  AMP_CHECK_EQ(results[0], 1);   /* EACCES at mode 0600 */
  AMP_CHECK_EQ(results[1], 0);   /* the control: connects at 0666 */
}

/* Mutated requests in process: every one gets a well-formed reply line
 * (a result or an error), nothing crashes or leaks (run under ASan). */
static void test_mutations(amp_admin_t *a) {
  static const char *const seeds[] = {
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"addinvoice\",\"params\":{\"amp\":true,\"amt_msat\":1000,\"memo\":\"x\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":\"q\",\"method\":\"listinvoices\",\"params\":{\"index_offset\":1,\"num_max_invoices\":2,\"reversed\":true}}",
    "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"listsets\",\"params\":{\"state\":\"settled\",\"max\":3}}",
    "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"lookupinvoice\",\"params\":{\"payment_hash\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}}",
    "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"settip\",\"params\":{\"height\":900000}}",
    "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"setloglevel\",\"params\":{\"level\":\"info\"}}",
  };
  static const char alphabet[] = "{}[]\":,0123456789-.eE truefalsenull\\u00\x01\xff";
  uint64_t seed = amp_test_seed();
  char buf[512];
  int bad = 0;
  for (int it = 0; it < 20000; it++) {
    const char *src = seeds[amp_test_rand(&seed) % (sizeof seeds / sizeof seeds[0])];
    size_t n = strlen(src);
    memcpy(buf, src, n);
    int muts = 1 + (int)(amp_test_rand(&seed) % 4);
    for (int m = 0; m < muts; m++) {
      size_t pos = amp_test_rand(&seed) % n;
      switch (amp_test_rand(&seed) % 3) {
      case 0: buf[pos] = alphabet[amp_test_rand(&seed) % (sizeof alphabet - 1)]; break;
      case 1: if (n > 1) { memmove(buf + pos, buf + pos + 1, n - pos - 1); n--; } break;
      default:
        if (n + 1 < sizeof buf) {
          memmove(buf + pos + 1, buf + pos, n - pos);
          buf[pos] = alphabet[amp_test_rand(&seed) % (sizeof alphabet - 1)];
          n++;
        }
      }
    }
    char *rep = amp_admin_call(a, buf, n);
    json_t *j = rep ? json_loads(rep, 0, NULL) : NULL;
    int ok = j && (json_object_get(j, "result") != NULL) != (json_object_get(j, "error") != NULL) &&
             !strchr(rep, '\n');
    if (!ok && bad++ < 3) fprintf(stderr, "  bad reply to %.*s: %s\n", (int)n, buf, rep ? rep : "(null)");
    json_decref(j);
    free(rep);
  }
  AMP_CHECK_EQ(bad, 0);
}

/* The admin counters show what happened. */
static void test_counters(amp_admin_t *a) {
  size_t len;
  char *text = amp_admin_metrics_text(a, &len);
  AMP_REQUIRE(text != NULL);
  AMP_CHECK(strstr(text, "ampd_admin_connections_closed_total{reason=\"request_too_large\"} 2\n") != NULL);
  AMP_CHECK(strstr(text, "ampd_admin_connections_closed_total{reason=\"idle_timeout\"} 1\n") != NULL);
  AMP_CHECK(strstr(text, "# TYPE ampd_admin_clients gauge\n") != NULL);
  free(text);
}

static void log_cb(void *ctx, int level, const char *msg) {
  (void)ctx;
  (void)level;
  AMP_CHECK(strstr(msg, secret_hex) == NULL);
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  ampctl_path = argc > 1 ? argv[1] : getenv("AMPCTL");
  fake_init();
  snprintf(dir, sizeof dir, "/tmp/ampd-admin-XXXXXX");
  char *made = mkdtemp(dir);
  AMP_REQUIRE(made != NULL);
  snprintf(sock, sizeof sock, "%s/%s", dir, AMP_ADMIN_SOCKET_NAME);
  amp_admin_cfg_t cfg = {.data_dir = dir, .idle_timeout_ms = 1500, .log = log_cb};
  amp_admin_t *a = amp_admin_new(&cfg, &fake_ops, NULL);
  if (!a) fprintf(stderr, "amp_admin_new: %s\n", amp_admin_error());
  AMP_REQUIRE(a != NULL);
  AMP_CHECK(!strcmp(amp_admin_socket_path(a), sock));
  AMP_CHECK_EQ(amp_admin_metrics_port(a), 0);

  test_socket_file();
  test_other_user();
  test_envelope();
  test_methods();
  test_unavailable();
  test_half_request();
  test_huge_line();
  test_thousand();
  test_client_limit();
  test_quiet();
  test_counters(a);
  if (ampctl_path) test_ampctl();
  else printf("SKIP ampctl end to end: no path (argv[1] or $AMPCTL)\n");
  test_mutations(a);   /* last: it changes the fake's state */

  amp_admin_delete(a);
  struct stat st;
  AMP_CHECK(lstat(sock, &st) != 0);
  rmdir(dir);
  return amp_test_done();
}
