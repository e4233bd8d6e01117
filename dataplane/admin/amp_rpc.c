/* amp_rpc.c: JSON-RPC 2.0 requests in, replies out, ops in between. */
#include "amp_rpc.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- small helpers ---- */

static const char *amp_err_text(int rc) {
  switch (rc) {
#define AMP_RPC_ERR_CASE_(name, val, str) case val: return str;
  AMP_ERR_LIST(AMP_RPC_ERR_CASE_)
#undef AMP_RPC_ERR_CASE_
  default: return "unknown error";
  }
}

static void hex_encode(char *out, const uint8_t *in, size_t n) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = d[in[i] >> 4];
    out[2 * i + 1] = d[in[i] & 15];
  }
  out[2 * n] = 0;
}

static int hex_val(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes exactly 2n hex digits; returns 0 or -1. */
static int hex_decode(uint8_t *out, const char *hex, size_t n) {
  for (size_t i = 0; i < n; i++) {
    int hi = hex_val(hex[2 * i]), lo = hex_val(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

/* A printable, bounded copy of n bytes of text from a client, for echoing in
 * a message. */
static const char *clean(char *out, size_t cap, const char *s, size_t n) {
  size_t j = 0, i = 0;
  for (; i < n && j + 4 < cap; i++)
    out[j++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\') ? s[i] : '?';
  if (i < n) { out[j++] = '.'; out[j++] = '.'; out[j++] = '.'; }
  out[j] = 0;
  return out;
}

/* A JSON string without an embedded NUL (the parser allows them so that the
 * error can name the parameter). */
static int jstr_plain(const json_t *v) {
  return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

static void wipe(void *p, size_t n) {
  volatile unsigned char *v = p;
  while (n--) *v++ = 0;
}

/* A JSON string of s; invalid UTF-8 from the daemon becomes '?' rather than
 * a broken reply. */
static json_t *jstr(const char *s) {
  if (!s) s = "";
  json_t *j = json_string(s);
  if (j) return j;
  size_t n = strlen(s);
  char *t = malloc(n + 1);
  if (!t) return NULL;
  for (size_t i = 0; i <= n; i++) t[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
  j = json_string(t);
  free(t);
  return j;
}

static json_t *ju64(uint64_t v) {
  if (v <= (uint64_t)INT64_MAX) return json_integer((json_int_t)v);
  char b[24];
  snprintf(b, sizeof b, "%" PRIu64, v);
  return json_string(b);
}

static json_t *jhex(const uint8_t *p, size_t n) {
  char b[2 * 64 + 1];
  if (n > 64) return NULL;
  hex_encode(b, p, n);
  return json_string(b);
}

/* Sets key to v in o (v owned); records an out-of-memory in *oom. */
static void jset(json_t *o, const char *key, json_t *v, int *oom) {
  if (!v || json_object_set_new(o, key, v) != 0) *oom = 1;
}

static void jpush(json_t *a, json_t *v, int *oom) {
  if (!v || json_array_append_new(a, v) != 0) *oom = 1;
}

const char *amp_admin_inv_state_str(amp_admin_inv_state_t s) {
  switch (s) {
  case AMP_ADMIN_INV_OPEN: return "open";
  case AMP_ADMIN_INV_SETTLED: return "settled";
  case AMP_ADMIN_INV_CANCELLED: return "cancelled";
  case AMP_ADMIN_INV_EXPIRED: return "expired";
  }
  return NULL;
}

const char *amp_admin_set_state_str(amp_admin_set_state_t s) {
  switch (s) {
  case AMP_ADMIN_SET_HELD: return "held";
  case AMP_ADMIN_SET_SETTLED: return "settled";
  case AMP_ADMIN_SET_CANCELLED: return "cancelled";
  case AMP_ADMIN_SET_SETTLING: return "settling";
  }
  return NULL;
}

static const char *const log_levels[] = {
  NULL, "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
};

int amp_admin_log_level(const char *name) {
  if (!name) return -1;
  for (int i = 1; i <= 8; i++)
    if (strcasecmp(name, log_levels[i]) == 0) return i;
  if (strcasecmp(name, "error") == 0) return 4;
  if (strcasecmp(name, "warn") == 0) return 5;
  return -1;
}

const char *amp_admin_log_level_str(int level) {
  return level >= 1 && level <= 8 ? log_levels[level] : "unknown";
}

/* ---- views to JSON ---- */

static json_t *scid_json(uint64_t scid) {
  char b[48];
  snprintf(b, sizeof b, "%" PRIu64 "x%" PRIu64 "x%" PRIu64, scid >> 40, (scid >> 16) & 0xffffff,
           scid & 0xffff);
  return json_string(b);
}

static json_t *htlc_json(const amp_admin_htlc_t *h, int amp, int held, int *oom) {
  json_t *o = json_object();
  if (!o) { *oom = 1; return NULL; }
  jset(o, "scid", scid_json(h->scid), oom);
  jset(o, "htlc_id", ju64(h->htlc_id), oom);
  jset(o, "amt_msat", ju64(h->amt_msat), oom);
  if (amp) jset(o, "child_index", ju64(h->child_index), oom);
  jset(o, "cltv_expiry", ju64(h->cltv_expiry), oom);
  if (held) {
    jset(o, "age_ms", ju64(h->age_ms), oom);
    jset(o, "left_ms", ju64(h->left_ms), oom);
  }
  return o;
}

/* Returns the set's JSON, or NULL with *rc = AMP_ERR_STATE (bad view) or
 * AMP_ERR_NOMEM. with_addr: print payment_addr (not inside its invoice). */
static json_t *set_json(const amp_admin_set_t *s, int with_addr, int *rc) {
  const char *state = amp_admin_set_state_str(s->state);
  if (!state || (s->n_htlcs && !s->htlcs)) { *rc = AMP_ERR_STATE; return NULL; }
  int oom = 0;
  json_t *o = json_object();
  if (!o) { *rc = AMP_ERR_NOMEM; return NULL; }
  if (s->amp) jset(o, "set_id", jhex(s->set_id, 32), &oom);
  else jset(o, "payment_hash", jhex(s->payment_hash, 32), &oom);
  if (with_addr) jset(o, "payment_addr", jhex(s->payment_addr, 32), &oom);
  jset(o, "state", json_string(state), &oom);
  if (s->state == AMP_ADMIN_SET_CANCELLED && s->cancel_reason)
    jset(o, "cancel_reason", jstr(s->cancel_reason), &oom);
  if (s->index) jset(o, "index", ju64(s->index), &oom);
  if (s->settle_index) jset(o, "settle_index", ju64(s->settle_index), &oom);
  if (s->time) jset(o, "time", ju64(s->time), &oom);
  jset(o, "total_msat", ju64(s->total_msat), &oom);
  jset(o, "amt_msat", ju64(s->amt_msat), &oom);
  json_t *a = json_array();
  for (size_t i = 0; a && i < s->n_htlcs; i++)
    jpush(a, htlc_json(&s->htlcs[i], s->amp, s->state == AMP_ADMIN_SET_HELD, &oom), &oom);
  jset(o, "htlcs", a, &oom);
  if (oom) { json_decref(o); *rc = AMP_ERR_NOMEM; return NULL; }
  return o;
}

static json_t *invoice_json(const amp_admin_invoice_t *inv, int *rc) {
  const char *state = amp_admin_inv_state_str(inv->state);
  if (!state || (inv->n_sets && !inv->sets)) { *rc = AMP_ERR_STATE; return NULL; }
  int oom = 0;
  json_t *o = json_object();
  if (!o) { *rc = AMP_ERR_NOMEM; return NULL; }
  jset(o, "amp", json_boolean(inv->amp), &oom);
  if (inv->placeholder) jset(o, "placeholder", json_true(), &oom);
  jset(o, "state", json_string(state), &oom);
  jset(o, "payment_addr", jhex(inv->payment_addr, 32), &oom);
  if (!inv->amp) jset(o, "payment_hash", jhex(inv->payment_hash, 32), &oom);
  jset(o, "value_msat", ju64(inv->value_msat), &oom);
  jset(o, "amt_paid_msat", ju64(inv->amt_paid_msat), &oom);
  jset(o, "created", ju64(inv->created), &oom);
  jset(o, "expiry", ju64(inv->expiry), &oom);
  if (inv->cltv_delta) jset(o, "cltv_delta", ju64(inv->cltv_delta), &oom);
  jset(o, "memo", jstr(inv->memo), &oom);
  jset(o, "add_index", ju64(inv->add_index), &oom);
  if (inv->settle_index) jset(o, "settle_index", ju64(inv->settle_index), &oom);
  json_t *a = json_array();
  if (inv->amp) {
    for (size_t i = 0; a && i < inv->n_sets; i++) {
      int r2 = 0;
      json_t *s = set_json(&inv->sets[i], 0, &r2);
      if (!s) { json_decref(a); json_decref(o); *rc = r2; return NULL; }
      jpush(a, s, &oom);
    }
    jset(o, "sets", a, &oom);
  } else {
    /* An MPP invoice shows the HTLCs that paid it. */
    for (size_t i = 0; a && i < inv->n_sets; i++) {
      const amp_admin_set_t *s = &inv->sets[i];
      if (s->n_htlcs && !s->htlcs) { json_decref(a); json_decref(o); *rc = AMP_ERR_STATE; return NULL; }
      for (size_t k = 0; k < s->n_htlcs; k++)
        jpush(a, htlc_json(&s->htlcs[k], 0, s->state == AMP_ADMIN_SET_HELD, &oom), &oom);
    }
    jset(o, "htlcs", a, &oom);
  }
  if (oom) { json_decref(o); *rc = AMP_ERR_NOMEM; return NULL; }
  return o;
}

static json_t *labels_json(const char *label, const char *value, int *oom) {
  json_t *l = json_object();
  if (!l) { *oom = 1; return NULL; }
  jset(l, label, jstr(value), oom);
  return l;
}

static json_t *stats_json(const amp_metrics_stats_t *st, int *rc) {
  int oom = 0;
  char num[32];
  json_t *o = json_object();
  if (!o) { *rc = AMP_ERR_NOMEM; return NULL; }
  jset(o, "workers", ju64(st->n_workers), &oom);
  json_t *ca = json_array();
  for (size_t i = 0; ca && i < st->n_counters; i++) {
    const amp_metrics_counter_t *c = &st->counters[i];
    if (!c->name) continue;
    json_t *e = json_object();
    if (!e) { oom = 1; break; }
    jset(e, "name", jstr(c->name), &oom);
    if (c->label) jset(e, "labels", labels_json(c->label, c->label_value, &oom), &oom);
    jset(e, "total", ju64(c->total), &oom);
    if (c->per_worker && st->n_workers) {
      json_t *w = json_array();
      for (uint32_t k = 0; w && k < st->n_workers; k++) jpush(w, ju64(c->per_worker[k]), &oom);
      jset(e, "per_worker", w, &oom);
    }
    jpush(ca, e, &oom);
  }
  jset(o, "counters", ca, &oom);
  json_t *ga = json_array();
  for (size_t i = 0; ga && i < st->n_gauges; i++) {
    const amp_metrics_gauge_t *g = &st->gauges[i];
    if (!g->name) continue;
    json_t *e = json_object();
    if (!e) { oom = 1; break; }
    jset(e, "name", jstr(g->name), &oom);
    if (g->label) jset(e, "labels", labels_json(g->label, g->label_value, &oom), &oom);
    json_t *v = (g->value == g->value && g->value - g->value == 0) ? json_real(g->value) : NULL;
    if (!v) v = json_string(amp_metrics_fmt_double(num, g->value));   /* NaN, Inf */
    else if (g->value == (double)(int64_t)g->value && g->value < 9e15 && g->value > -9e15) {
      json_decref(v);
      v = json_integer((json_int_t)g->value);
    }
    jset(e, "value", v, &oom);
    jpush(ga, e, &oom);
  }
  jset(o, "gauges", ga, &oom);
  json_t *ha = json_array();
  for (size_t i = 0; ha && i < st->n_hists; i++) {
    const amp_metrics_hist_t *h = &st->hists[i];
    if (!h->name || !h->h) continue;
    json_t *e = json_object();
    if (!e) { oom = 1; break; }
    uint64_t cum = 0;
    json_t *b = json_array();
    for (size_t k = 0; b && k <= AMP_METRICS_LAT_BUCKETS; k++) {
      cum += atomic_load_explicit(&h->h->bucket[k], memory_order_relaxed);
      json_t *bk = json_object();
      if (!bk) { oom = 1; break; }
      jset(bk, "le", k < AMP_METRICS_LAT_BUCKETS ? json_real(amp_metrics_lat_bounds[k])
                                                 : json_string("+Inf"), &oom);
      jset(bk, "count", ju64(cum), &oom);
      jpush(b, bk, &oom);
    }
    jset(e, "name", jstr(h->name), &oom);
    jset(e, "count", ju64(cum), &oom);
    jset(e, "sum", json_real((double)atomic_load_explicit(&h->h->sum_ns, memory_order_relaxed) / 1e9),
         &oom);
    jset(e, "buckets", b, &oom);
    jpush(ha, e, &oom);
  }
  jset(o, "histograms", ha, &oom);
  if (oom) { json_decref(o); *rc = AMP_ERR_NOMEM; return NULL; }
  return o;
}

/* ---- the reply an op emits into ---- */

enum { RK_NONE, RK_INVOICE_ONE, RK_INVOICE_LIST, RK_SET_ONE, RK_SET_LIST, RK_STATS_JSON,
       RK_STATS_FN, RK_CONFIG };

typedef struct {
  uint64_t key;
  json_t *j;
} item_t;

struct amp_admin_reply {
  int kind;
  const amp_rpc_env_t *env;
  json_t *one;
  item_t *items;
  size_t n_items, cap_items;
  uint32_t max;
  json_t *config;
  int stats_given;
  void (*stats_fn)(void *arg, const amp_metrics_stats_t *st);
  void *stats_arg;
  int has_msg;
  char msg[512];
};

static void reply_init(amp_admin_reply_t *r, const amp_rpc_env_t *env, int kind) {
  memset(r, 0, sizeof *r);
  r->env = env;
  r->kind = kind;
}

static void reply_free(amp_admin_reply_t *r) {
  json_decref(r->one);
  for (size_t i = 0; i < r->n_items; i++) json_decref(r->items[i].j);
  free(r->items);
  json_decref(r->config);
  memset(r, 0, sizeof *r);
}

void amp_admin_reply_errorf(amp_admin_reply_t *r, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->msg, sizeof r->msg, fmt, ap);
  va_end(ap);
  r->has_msg = 1;
}

static int reply_item(amp_admin_reply_t *r, uint64_t key, json_t *j) {
  if (r->n_items == r->cap_items) {
    size_t cap = r->cap_items ? r->cap_items * 2 : 16;
    item_t *p = realloc(r->items, cap * sizeof *p);
    if (!p) { json_decref(j); return AMP_ERR_NOMEM; }
    r->items = p;
    r->cap_items = cap;
  }
  r->items[r->n_items].key = key;
  r->items[r->n_items].j = j;
  r->n_items++;
  return AMP_OK;
}

int amp_admin_reply_invoice(amp_admin_reply_t *r, const amp_admin_invoice_t *inv) {
  if (r->kind == RK_INVOICE_ONE && r->one) return AMP_ERR_STATE;
  if (r->kind == RK_INVOICE_LIST && r->n_items >= r->max) return AMP_ERR_FULL;
  if (r->kind != RK_INVOICE_ONE && r->kind != RK_INVOICE_LIST) return AMP_ERR_STATE;
  int rc = AMP_OK;
  json_t *j = invoice_json(inv, &rc);
  if (!j) return rc;
  if (r->kind == RK_INVOICE_ONE) { r->one = j; return AMP_OK; }
  return reply_item(r, inv->add_index, j);
}

int amp_admin_reply_set(amp_admin_reply_t *r, const amp_admin_set_t *set) {
  if (r->kind == RK_SET_ONE && r->one) return AMP_ERR_STATE;
  if (r->kind == RK_SET_LIST && r->n_items >= r->max) return AMP_ERR_FULL;
  if (r->kind != RK_SET_ONE && r->kind != RK_SET_LIST) return AMP_ERR_STATE;
  int rc = AMP_OK;
  json_t *j = set_json(set, 1, &rc);
  if (!j) return rc;
  if (r->kind == RK_SET_ONE) { r->one = j; return AMP_OK; }
  return reply_item(r, set->index, j);
}

/* The daemon's stats with the server's own counters and gauges appended. */
static int merge_stats(const amp_rpc_env_t *env, const amp_metrics_stats_t *st,
                       amp_metrics_stats_t *out, void **mem1, void **mem2) {
  *out = *st;
  *mem1 = *mem2 = NULL;
  if (env->n_own_counters) {
    amp_metrics_counter_t *c = malloc((st->n_counters + env->n_own_counters) * sizeof *c);
    if (!c) return AMP_ERR_NOMEM;
    if (st->n_counters) memcpy(c, st->counters, st->n_counters * sizeof *c);
    memcpy(c + st->n_counters, env->own_counters, env->n_own_counters * sizeof *c);
    out->counters = c;
    out->n_counters = st->n_counters + env->n_own_counters;
    *mem1 = c;
  }
  if (env->n_own_gauges) {
    amp_metrics_gauge_t *g = malloc((st->n_gauges + env->n_own_gauges) * sizeof *g);
    if (!g) { free(*mem1); *mem1 = NULL; return AMP_ERR_NOMEM; }
    if (st->n_gauges) memcpy(g, st->gauges, st->n_gauges * sizeof *g);
    memcpy(g + st->n_gauges, env->own_gauges, env->n_own_gauges * sizeof *g);
    out->gauges = g;
    out->n_gauges = st->n_gauges + env->n_own_gauges;
    *mem2 = g;
  }
  return AMP_OK;
}

int amp_admin_reply_stats(amp_admin_reply_t *r, const amp_metrics_stats_t *st) {
  if ((r->kind != RK_STATS_JSON && r->kind != RK_STATS_FN) || r->stats_given) return AMP_ERR_STATE;
  if ((st->n_counters && !st->counters) || (st->n_gauges && !st->gauges) ||
      (st->n_hists && !st->hists))
    return AMP_ERR_STATE;
  amp_metrics_stats_t all;
  void *m1, *m2;
  int rc = merge_stats(r->env, st, &all, &m1, &m2);
  if (rc != AMP_OK) return rc;
  if (r->kind == RK_STATS_FN) {
    r->stats_fn(r->stats_arg, &all);
  } else {
    r->one = stats_json(&all, &rc);
  }
  free(m1);
  free(m2);
  if (rc == AMP_OK) r->stats_given = 1;
  return rc;
}

/* Option names whose values are secrets: never shown. */
static int secret_option(const char *key) {
  char k[128];
  size_t n = strlen(key);
  if (n >= sizeof k) n = sizeof k - 1;
  for (size_t i = 0; i < n; i++) k[i] = (char)tolower((unsigned char)key[i]);
  k[n] = 0;
  if (strstr(k, "secret") || strstr(k, "seed") || strstr(k, "preimage") || strstr(k, "password") ||
      strstr(k, "passphrase"))
    return 1;
  return (n >= 3 && strcmp(k + n - 3, "key") == 0) || (n >= 4 && strcmp(k + n - 4, "keys") == 0);
}

static int config_put(amp_admin_reply_t *r, const char *key, json_t *v) {
  if (r->kind != RK_CONFIG) { json_decref(v); return AMP_ERR_STATE; }
  if (!key || !*key) { json_decref(v); return AMP_ERR_STATE; }
  if (!v) return AMP_ERR_NOMEM;
  if (secret_option(key)) {
    json_decref(v);
    v = json_string("(hidden)");
    if (!v) return AMP_ERR_NOMEM;
  }
  if (!r->config && !(r->config = json_object())) { json_decref(v); return AMP_ERR_NOMEM; }
  return json_object_set_new(r->config, key, v) == 0 ? AMP_OK : AMP_ERR_NOMEM;
}

int amp_admin_reply_config_str(amp_admin_reply_t *r, const char *key, const char *value) {
  return config_put(r, key, jstr(value));
}

int amp_admin_reply_config_u64(amp_admin_reply_t *r, const char *key, uint64_t value) {
  return config_put(r, key, ju64(value));
}

int amp_admin_reply_config_bool(amp_admin_reply_t *r, const char *key, int value) {
  return config_put(r, key, json_boolean(value));
}

/* ---- calls and parameter checks ---- */

typedef struct {
  const amp_rpc_env_t *env;
  const char *method;
  json_t *params;
  amp_admin_reply_t r;
  int code;
  char msg[768];
} call_t;

__attribute__((format(printf, 3, 4)))
static json_t *fail(call_t *c, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->msg, sizeof c->msg, fmt, ap);
  va_end(ap);
  c->code = code;
  return NULL;
}

typedef enum { P_BOOL, P_INT, P_STR, P_HEX32, P_ENUM } ptype_t;

typedef struct {
  const char *name;
  ptype_t type;
  uint64_t min, max;            /* P_INT range; P_STR max bytes */
  const char *unit;             /* P_INT: what the number counts */
  const char *const *choices;   /* P_ENUM: NULL-terminated */
} pspec_t;

static const char *describe(char *out, size_t cap, const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_INTEGER: snprintf(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
  case JSON_REAL: snprintf(out, cap, "a real number (%g)", json_real_value(v)); break;
  case JSON_STRING: snprintf(out, cap, "a string of %zu characters", json_string_length(v)); break;
  case JSON_TRUE: snprintf(out, cap, "true"); break;
  case JSON_FALSE: snprintf(out, cap, "false"); break;
  case JSON_NULL: snprintf(out, cap, "null"); break;
  case JSON_OBJECT: snprintf(out, cap, "an object"); break;
  case JSON_ARRAY: snprintf(out, cap, "an array"); break;
  }
  return out;
}

static const json_t *param(const call_t *c, const char *name) {
  const json_t *v = json_object_get(c->params, name);
  return v && !json_is_null(v) ? v : NULL;
}

/* Refuses unknown names and values of the wrong type or range. */
static int check_params(call_t *c, const pspec_t *spec, size_t n) {
  const char *key;
  json_t *v;
  char got[96], kb[64];
  json_object_foreach(c->params, key, v) {
    const pspec_t *s = NULL;
    for (size_t i = 0; i < n; i++)
      if (strcmp(spec[i].name, key) == 0) s = &spec[i];
    if (!s) {
      if (n == 0) {
        fail(c, AMP_ADMIN_ERR_INVALID_PARAMS, "unknown parameter '%s': %s takes no parameters",
             clean(kb, sizeof kb, key, strlen(key)), c->method);
        return -1;
      }
      char names[256] = "";
      for (size_t i = 0; i < n; i++) {
        strncat(names, spec[i].name, sizeof names - strlen(names) - 1);
        if (i + 1 < n) strncat(names, ", ", sizeof names - strlen(names) - 1);
      }
      fail(c, AMP_ADMIN_ERR_INVALID_PARAMS, "unknown parameter '%s' for %s (it takes: %s)",
           clean(kb, sizeof kb, key, strlen(key)), c->method, names);
      return -1;
    }
    if (json_is_null(v)) continue;   /* null: the same as absent */
    switch (s->type) {
    case P_BOOL:
      if (!json_is_boolean(v)) {
        fail(c, AMP_ADMIN_ERR_INVALID_PARAMS, "invalid parameter '%s': expected true or false, got %s",
             s->name, describe(got, sizeof got, v));
        return -1;
      }
      break;
    case P_INT:
      if (!json_is_integer(v) || json_integer_value(v) < 0 ||
          (uint64_t)json_integer_value(v) < s->min || (uint64_t)json_integer_value(v) > s->max) {
        fail(c, AMP_ADMIN_ERR_INVALID_PARAMS,
             "invalid parameter '%s': expected an integer from %" PRIu64 " to %" PRIu64 " (%s), got %s",
             s->name, s->min, s->max, s->unit, describe(got, sizeof got, v));
        return -1;
      }
      break;
    case P_STR:
      if (!json_is_string(v) || json_string_length(v) > s->max) {
        fail(c, AMP_ADMIN_ERR_INVALID_PARAMS,
             "invalid parameter '%s': expected a string of at most %" PRIu64 " bytes, got %s", s->name,
             s->max, describe(got, sizeof got, v));
        return -1;
      }
      if (strlen(json_string_value(v)) != json_string_length(v)) {
        fail(c, AMP_ADMIN_ERR_INVALID_PARAMS, "invalid parameter '%s': must not contain a NUL character",
             s->name);
        return -1;
      }
      break;
    case P_HEX32: {
      uint8_t tmp[32];
      if (!json_is_string(v) || json_string_length(v) != 64) {
        fail(c, AMP_ADMIN_ERR_INVALID_PARAMS,
             "invalid parameter '%s': expected 32 bytes as 64 hex digits, got %s", s->name,
             describe(got, sizeof got, v));
        return -1;
      }
      if (hex_decode(tmp, json_string_value(v), 32) != 0) {
        wipe(tmp, sizeof tmp);
        fail(c, AMP_ADMIN_ERR_INVALID_PARAMS,
             "invalid parameter '%s': expected 32 bytes as 64 hex digits, got a string with "
             "characters that are not hex digits", s->name);
        return -1;
      }
      wipe(tmp, sizeof tmp);
      break;
    }
    case P_ENUM: {
      int ok = 0;
      char list[160] = "";
      for (size_t i = 0; s->choices[i]; i++) {
        if (jstr_plain(v) && strcmp(json_string_value(v), s->choices[i]) == 0) ok = 1;
        strncat(list, s->choices[i], sizeof list - strlen(list) - 1);
        if (s->choices[i + 1]) strncat(list, ", ", sizeof list - strlen(list) - 1);
      }
      if (!ok) {
        char vb[48];
        if (json_is_string(v)) snprintf(got, sizeof got, "\"%s\"", clean(vb, sizeof vb, json_string_value(v), json_string_length(v)));
        else describe(got, sizeof got, v);
        fail(c, AMP_ADMIN_ERR_INVALID_PARAMS, "invalid parameter '%s': expected one of %s; got %s",
             s->name, list, got);
        return -1;
      }
      break;
    }
    }
  }
  return 0;
}

static int get_bool(const call_t *c, const char *name, int def) {
  const json_t *v = param(c, name);
  return v ? json_is_true(v) : def;
}

static uint64_t get_u64(const call_t *c, const char *name, uint64_t def) {
  const json_t *v = param(c, name);
  return v ? (uint64_t)json_integer_value(v) : def;
}

static int get_hex32(const call_t *c, const char *name, uint8_t out[32]) {
  const json_t *v = param(c, name);
  if (!v) return 0;
  return hex_decode(out, json_string_value(v), 32) == 0;
}

static json_t *missing(call_t *c, const char *name, const char *expect) {
  return fail(c, AMP_ADMIN_ERR_INVALID_PARAMS, "missing parameter '%s': %s", name, expect);
}

/* Maps an op's error to a reply. subject names what the call was about. */
static json_t *op_failed(call_t *c, int rc, const char *subject) {
  int code;
  char def[512];
  switch (rc) {
  case AMP_ERR_NOTFOUND:
    code = AMP_ADMIN_ERR_NOT_FOUND;
    snprintf(def, sizeof def, "no %s", subject);
    break;
  case AMP_ERR_EXISTS:
    code = AMP_ADMIN_ERR_EXISTS;
    snprintf(def, sizeof def, "%s already exists", subject);
    break;
  case AMP_ERR_STATE:
    code = AMP_ADMIN_ERR_STATE;
    snprintf(def, sizeof def, "%s: not allowed in its current state", subject);
    break;
  case AMP_ERR_FULL:
    code = AMP_ADMIN_ERR_LIMIT;
    snprintf(def, sizeof def, "%s: a limit of ampd was reached", subject);
    break;
  case AMP_ERR_RANGE:
  case AMP_ERR_LENGTH:
  case AMP_ERR_CONFIG:
    code = AMP_ADMIN_ERR_INVALID_PARAMS;
    snprintf(def, sizeof def, "%s: refused: %s", subject, amp_err_text(rc));
    break;
  default:
    code = AMP_ADMIN_ERR_INTERNAL;
    snprintf(def, sizeof def, "%s failed inside ampd: %s", c->method, amp_err_text(rc));
    break;
  }
  return fail(c, code, "%s", c->r.has_msg ? c->r.msg : def);
}

static json_t *unavailable(call_t *c) {
  return fail(c, AMP_ADMIN_ERR_UNAVAILABLE,
              "method '%s' is not available in this ampd (the daemon does not provide it)", c->method);
}

static json_t *nomem(call_t *c) {
  return fail(c, AMP_ADMIN_ERR_INTERNAL, "%s: out of memory", c->method);
}

static json_t *simple_result(call_t *c, const char *key, json_t *v) {
  json_t *o = json_object();
  if (!o || !v || json_object_set_new(o, key, v) != 0) {
    json_decref(o);
    return nomem(c);
  }
  return o;
}

/* ---- methods ---- */

static const pspec_t no_params[1] = {{0}};

static json_t *m_getinfo(call_t *c) {
  if (check_params(c, no_params, 0)) return NULL;
  if (!c->env->ops->getinfo) return unavailable(c);
  amp_admin_info_t *in = calloc(1, sizeof *in);
  if (!in) return nomem(c);
  int rc = c->env->ops->getinfo(c->env->ctx, in, &c->r);
  if (rc != AMP_OK) { free(in); return op_failed(c, rc, "getinfo"); }
  in->version[sizeof in->version - 1] = 0;
  in->data_dir[sizeof in->data_dir - 1] = 0;
  int oom = 0;
  json_t *o = json_object();
  if (!o) { free(in); return nomem(c); }
  jset(o, "version", jstr(in->version), &oom);
  if (in->has_node_id) jset(o, "node_id", jhex(in->node_id, 33), &oom);
  jset(o, "block_height", ju64(in->block_height), &oom);
  jset(o, "uptime_s", ju64(in->uptime_s), &oom);
  jset(o, "workers", ju64(in->workers), &oom);
  json_t *ports = json_array();
  uint32_t np = in->n_ports > AMP_ADMIN_MAX_PORTS ? AMP_ADMIN_MAX_PORTS : in->n_ports;
  for (uint32_t i = 0; ports && i < np; i++) {
    const amp_admin_port_t *p = &in->ports[i];
    char name[sizeof p->name], mac[18];
    memcpy(name, p->name, sizeof name);
    name[sizeof name - 1] = 0;
    snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", p->mac[0], p->mac[1], p->mac[2],
             p->mac[3], p->mac[4], p->mac[5]);
    json_t *e = json_object();
    if (!e) { oom = 1; break; }
    jset(e, "port_id", ju64(p->port_id), &oom);
    jset(e, "name", jstr(name), &oom);
    jset(e, "mac", json_string(mac), &oom);
    jset(e, "rx_queues", ju64(p->rx_queues), &oom);
    jset(e, "tx_queues", ju64(p->tx_queues), &oom);
    jset(e, "link_up", json_boolean(p->link_up), &oom);
    jpush(ports, e, &oom);
  }
  jset(o, "ports", ports, &oom);
  jset(o, "data_dir", jstr(in->data_dir), &oom);
  jset(o, "pid", ju64((uint64_t)getpid()), &oom);
  free(in);
  if (oom) { json_decref(o); return nomem(c); }
  return o;
}

static json_t *m_stats(call_t *c) {
  if (check_params(c, no_params, 0)) return NULL;
  if (!c->env->ops->stats) return unavailable(c);
  c->r.kind = RK_STATS_JSON;
  int rc = c->env->ops->stats(c->env->ctx, &c->r);
  if (rc != AMP_OK) return op_failed(c, rc, "stats");
  if (!c->r.one) return fail(c, AMP_ADMIN_ERR_INTERNAL, "stats: the daemon returned no statistics");
  json_t *o = c->r.one;
  c->r.one = NULL;
  return o;
}

static const pspec_t addinvoice_params[] = {
  {"amp", P_BOOL, 0, 0, NULL, NULL},
  {"amt_msat", P_INT, 1, AMP_ADMIN_MSAT_MAX, "millisatoshis; leave it out for an any-amount AMP invoice", NULL},
  {"memo", P_STR, 0, AMP_ADMIN_MEMO_MAX, NULL, NULL},
  {"expiry", P_INT, 1, AMP_ADMIN_EXPIRY_MAX, "seconds", NULL},
  {"cltv_delta", P_INT, 18, 2016, "blocks", NULL},
  {"preimage", P_HEX32, 0, 0, NULL, NULL},
};

static json_t *m_addinvoice(call_t *c) {
  if (check_params(c, addinvoice_params, sizeof addinvoice_params / sizeof addinvoice_params[0]))
    return NULL;
  amp_admin_addinvoice_t in;
  memset(&in, 0, sizeof in);
  in.amp = get_bool(c, "amp", 0);
  in.amt_msat = get_u64(c, "amt_msat", 0);
  const json_t *memo = param(c, "memo");
  in.memo = memo ? json_string_value(memo) : "";
  in.expiry = (uint32_t)get_u64(c, "expiry", AMP_ADMIN_EXPIRY_DEFAULT);
  in.cltv_delta = (uint32_t)get_u64(c, "cltv_delta", 0);
  if (!in.amp && !param(c, "amt_msat"))
    return missing(c, "amt_msat", "an MPP invoice (amp false) needs an amount, an integer of "
                   "millisatoshis from 1 to 2100000000000000000 (or set amp true)");
  if (param(c, "preimage")) {
    if (in.amp)
      return fail(c, AMP_ADMIN_ERR_INVALID_PARAMS,
                  "invalid parameter 'preimage': only an MPP invoice (amp false) takes a preimage; "
                  "an AMP payment carries its own per HTLC");
    in.has_preimage = get_hex32(c, "preimage", in.preimage);
  }
  if (!c->env->ops->addinvoice) { wipe(in.preimage, sizeof in.preimage); return unavailable(c); }
  amp_admin_addinvoice_res_t res;
  memset(&res, 0, sizeof res);
  int rc = c->env->ops->addinvoice(c->env->ctx, &in, &res, &c->r);
  wipe(in.preimage, sizeof in.preimage);
  if (rc != AMP_OK) return op_failed(c, rc, in.amp ? "AMP invoice" : "an invoice with this payment_hash");
  const char *state = amp_admin_inv_state_str(res.state);
  int oom = 0;
  json_t *o = json_object();
  if (!o) return nomem(c);
  jset(o, "amp", json_boolean(in.amp), &oom);
  jset(o, "payment_addr", jhex(res.payment_addr, 32), &oom);
  if (!in.amp) jset(o, "payment_hash", jhex(res.payment_hash, 32), &oom);
  jset(o, "add_index", ju64(res.add_index), &oom);
  jset(o, "created", ju64(res.created), &oom);
  jset(o, "expiry", ju64(res.expiry ? res.expiry : in.expiry), &oom);
  jset(o, "state", json_string(state ? state : "open"), &oom);
  if (oom) { json_decref(o); return nomem(c); }
  return o;
}

static const pspec_t invoice_ref_params[] = {
  {"payment_addr", P_HEX32, 0, 0, NULL, NULL},
  {"payment_hash", P_HEX32, 0, 0, NULL, NULL},
};

/* Reads payment_addr or payment_hash (exactly one) into ref and a subject. */
static int invoice_ref(call_t *c, amp_admin_invoice_ref_t *ref, char *subject, size_t cap) {
  if (check_params(c, invoice_ref_params, 2)) return -1;
  int a = param(c, "payment_addr") != NULL, h = param(c, "payment_hash") != NULL;
  if (a == h) {
    fail(c, AMP_ADMIN_ERR_INVALID_PARAMS,
         a ? "invalid parameters: give 'payment_addr' or 'payment_hash', not both"
           : "missing parameter 'payment_addr' or 'payment_hash': 32 bytes as 64 hex digits "
             "(an AMP invoice is found by payment_addr only)");
    return -1;
  }
  ref->by_hash = h;
  get_hex32(c, h ? "payment_hash" : "payment_addr", ref->key);
  char hex[65];
  hex_encode(hex, ref->key, 32);
  snprintf(subject, cap, "invoice with %s %s", h ? "payment_hash" : "payment_addr", hex);
  return 0;
}

static json_t *m_lookupinvoice(call_t *c) {
  amp_admin_invoice_ref_t ref;
  char subject[160];
  if (invoice_ref(c, &ref, subject, sizeof subject)) return NULL;
  if (!c->env->ops->lookupinvoice) return unavailable(c);
  c->r.kind = RK_INVOICE_ONE;
  int rc = c->env->ops->lookupinvoice(c->env->ctx, &ref, &c->r);
  if (rc != AMP_OK) return op_failed(c, rc, subject);
  if (!c->r.one) return op_failed(c, AMP_ERR_NOTFOUND, subject);
  json_t *o = c->r.one;
  c->r.one = NULL;
  return o;
}

static int item_cmp(const void *a, const void *b) {
  uint64_t x = ((const item_t *)a)->key, y = ((const item_t *)b)->key;
  return x < y ? -1 : x > y;
}

/* {"<name>": [sorted items], first_index_offset, last_index_offset} */
static json_t *list_result(call_t *c, const char *name, uint64_t offset) {
  size_t n = c->r.n_items;
  if (n) qsort(c->r.items, n, sizeof c->r.items[0], item_cmp);
  uint64_t first = n ? c->r.items[0].key : offset, last = n ? c->r.items[n - 1].key : offset;
  int oom = 0;
  json_t *o = json_object(), *a = json_array();
  if (!o || !a) { json_decref(o); json_decref(a); return nomem(c); }
  for (size_t i = 0; i < c->r.n_items; i++) {
    jpush(a, c->r.items[i].j, &oom);
    c->r.items[i].j = NULL;
  }
  c->r.n_items = 0;
  jset(o, name, a, &oom);
  jset(o, "first_index_offset", ju64(first), &oom);
  jset(o, "last_index_offset", ju64(last), &oom);
  if (oom) { json_decref(o); return nomem(c); }
  return o;
}

static const pspec_t listinvoices_params[] = {
  {"index_offset", P_INT, 0, UINT64_MAX >> 1, "an add_index", NULL},
  {"num_max_invoices", P_INT, 1, AMP_ADMIN_LIST_MAX, "invoices", NULL},
  {"reversed", P_BOOL, 0, 0, NULL, NULL},
  {"pending_only", P_BOOL, 0, 0, NULL, NULL},
};

static json_t *m_listinvoices(call_t *c) {
  if (check_params(c, listinvoices_params, 4)) return NULL;
  if (!c->env->ops->listinvoices) return unavailable(c);
  amp_admin_list_invoices_t q = {
    .index_offset = get_u64(c, "index_offset", 0),
    .max = (uint32_t)get_u64(c, "num_max_invoices", AMP_ADMIN_LIST_DEFAULT),
    .reversed = get_bool(c, "reversed", 0),
    .pending_only = get_bool(c, "pending_only", 0),
  };
  c->r.kind = RK_INVOICE_LIST;
  c->r.max = q.max;
  int rc = c->env->ops->listinvoices(c->env->ctx, &q, &c->r);
  if (rc != AMP_OK && rc != AMP_ERR_FULL) return op_failed(c, rc, "listinvoices");
  return list_result(c, "invoices", q.index_offset);
}

static json_t *m_cancelinvoice(call_t *c) {
  amp_admin_invoice_ref_t ref;
  char subject[160];
  if (invoice_ref(c, &ref, subject, sizeof subject)) return NULL;
  if (!c->env->ops->cancelinvoice) return unavailable(c);
  int rc = c->env->ops->cancelinvoice(c->env->ctx, &ref, &c->r);
  if (rc != AMP_OK) return op_failed(c, rc, subject);
  int oom = 0;
  json_t *o = json_object();
  if (!o) return nomem(c);
  jset(o, ref.by_hash ? "payment_hash" : "payment_addr", jhex(ref.key, 32), &oom);
  jset(o, "state", json_string("cancelled"), &oom);
  if (oom) { json_decref(o); return nomem(c); }
  return o;
}

static const pspec_t lookupset_params[] = {
  {"set_id", P_HEX32, 0, 0, NULL, NULL},
};

static json_t *m_lookupset(call_t *c) {
  if (check_params(c, lookupset_params, 1)) return NULL;
  uint8_t set_id[32];
  if (!get_hex32(c, "set_id", set_id)) return missing(c, "set_id", "32 bytes as 64 hex digits");
  if (!c->env->ops->lookupset) return unavailable(c);
  char subject[100], hex[65];
  hex_encode(hex, set_id, 32);
  snprintf(subject, sizeof subject, "set with set_id %s", hex);
  c->r.kind = RK_SET_ONE;
  int rc = c->env->ops->lookupset(c->env->ctx, set_id, &c->r);
  if (rc != AMP_OK) return op_failed(c, rc, subject);
  if (!c->r.one) return op_failed(c, AMP_ERR_NOTFOUND, subject);
  json_t *o = c->r.one;
  c->r.one = NULL;
  return o;
}

static const char *const set_states[] = {"settled", "cancelled", NULL};

static const pspec_t listsets_params[] = {
  {"index_offset", P_INT, 0, UINT64_MAX >> 1, "a set index", NULL},
  {"max", P_INT, 1, AMP_ADMIN_LIST_MAX, "sets", NULL},
  {"reversed", P_BOOL, 0, 0, NULL, NULL},
  {"state", P_ENUM, 0, 0, NULL, set_states},
};

static json_t *m_listsets(call_t *c) {
  if (check_params(c, listsets_params, 4)) return NULL;
  if (!c->env->ops->listsets) return unavailable(c);
  const json_t *st = param(c, "state");
  amp_admin_list_sets_t q = {
    .index_offset = get_u64(c, "index_offset", 0),
    .max = (uint32_t)get_u64(c, "max", AMP_ADMIN_LIST_DEFAULT),
    .reversed = get_bool(c, "reversed", 0),
    .state = !st ? -1 : strcmp(json_string_value(st), "settled") == 0 ? AMP_ADMIN_SET_SETTLED
                                                                      : AMP_ADMIN_SET_CANCELLED,
  };
  c->r.kind = RK_SET_LIST;
  c->r.max = q.max;
  int rc = c->env->ops->listsets(c->env->ctx, &q, &c->r);
  if (rc != AMP_OK && rc != AMP_ERR_FULL) return op_failed(c, rc, "listsets");
  return list_result(c, "sets", q.index_offset);
}

static json_t *m_listheld(call_t *c) {
  if (check_params(c, no_params, 0)) return NULL;
  if (!c->env->ops->listheld) return unavailable(c);
  c->r.kind = RK_SET_LIST;
  c->r.max = UINT32_MAX;
  int rc = c->env->ops->listheld(c->env->ctx, &c->r);
  if (rc != AMP_OK) return op_failed(c, rc, "listheld");
  /* Oldest first: the daemon gives them in any order, by set index 0. */
  int oom = 0;
  uint64_t nh = 0, msat = 0;
  json_t *o = json_object(), *a = json_array();
  if (!o || !a) { json_decref(o); json_decref(a); return nomem(c); }
  for (size_t i = 0; i < c->r.n_items; i++) {
    json_t *s = c->r.items[i].j;
    nh += json_array_size(json_object_get(s, "htlcs"));
    msat += (uint64_t)json_integer_value(json_object_get(s, "amt_msat"));
    jpush(a, s, &oom);
    c->r.items[i].j = NULL;
  }
  c->r.n_items = 0;
  jset(o, "sets", a, &oom);
  jset(o, "held_htlcs", ju64(nh), &oom);
  jset(o, "held_msat", ju64(msat), &oom);
  if (oom) { json_decref(o); return nomem(c); }
  return o;
}

static const pspec_t settip_params[] = {
  {"height", P_INT, 1, 10000000, "a block height", NULL},
};

static json_t *m_settip(call_t *c) {
  if (check_params(c, settip_params, 1)) return NULL;
  if (!param(c, "height")) return missing(c, "height", "a block height, an integer from 1 to 10000000");
  if (!c->env->ops->settip) return unavailable(c);
  uint32_t h = (uint32_t)get_u64(c, "height", 0);
  char subject[64];
  snprintf(subject, sizeof subject, "block height %" PRIu32, h);
  int rc = c->env->ops->settip(c->env->ctx, h, &c->r);
  if (rc != AMP_OK) return op_failed(c, rc, subject);
  return simple_result(c, "block_height", ju64(h));
}

static const char *const level_names[] = {
  "emerg", "alert", "crit", "err", "error", "warning", "warn", "notice", "info", "debug", NULL,
};

static const pspec_t setloglevel_params[] = {
  {"level", P_ENUM, 0, 0, NULL, level_names},
};

static json_t *m_setloglevel(call_t *c) {
  if (check_params(c, setloglevel_params, 1)) return NULL;
  const json_t *v = param(c, "level");
  if (!v) return missing(c, "level", "one of emerg, alert, crit, err, warning, notice, info, debug");
  if (!c->env->ops->setloglevel) return unavailable(c);
  int level = amp_admin_log_level(json_string_value(v));
  int rc = c->env->ops->setloglevel(c->env->ctx, level, &c->r);
  if (rc != AMP_OK) return op_failed(c, rc, "setloglevel");
  return simple_result(c, "level", json_string(amp_admin_log_level_str(level)));
}

static json_t *m_getconfig(call_t *c) {
  if (check_params(c, no_params, 0)) return NULL;
  if (!c->env->ops->getconfig) return unavailable(c);
  c->r.kind = RK_CONFIG;
  int rc = c->env->ops->getconfig(c->env->ctx, &c->r);
  if (rc != AMP_OK) return op_failed(c, rc, "getconfig");
  json_t *o = c->r.config ? c->r.config : json_object();
  c->r.config = NULL;
  return o ? o : nomem(c);
}

static json_t *m_stop(call_t *c) {
  if (check_params(c, no_params, 0)) return NULL;
  if (!c->env->ops->stop) return unavailable(c);
  int rc = c->env->ops->stop(c->env->ctx, &c->r);
  if (rc != AMP_OK) return op_failed(c, rc, "stop");
  return simple_result(c, "message", json_string("ampd is stopping"));
}

static json_t *m_metrics(call_t *c) {
  if (check_params(c, no_params, 0)) return NULL;
  if (!c->env->ops->stats) return unavailable(c);
  int rc = AMP_OK;
  size_t len = 0;
  char *text = amp_rpc_metrics_text(c->env, &len, &rc);
  if (!text) return op_failed(c, rc, "metrics");
  json_t *s = json_stringn(text, len);
  free(text);
  return s ? s : nomem(c);
}

typedef struct {
  const char *name;
  json_t *(*fn)(call_t *c);
} method_t;

static const method_t methods[] = {
  {"getinfo", m_getinfo},
  {"stats", m_stats},
  {"addinvoice", m_addinvoice},
  {"lookupinvoice", m_lookupinvoice},
  {"listinvoices", m_listinvoices},
  {"cancelinvoice", m_cancelinvoice},
  {"lookupset", m_lookupset},
  {"listsets", m_listsets},
  {"listheld", m_listheld},
  {"settip", m_settip},
  {"setloglevel", m_setloglevel},
  {"getconfig", m_getconfig},
  {"stop", m_stop},
  {"metrics", m_metrics},
};

/* ---- the envelope ---- */

static char *dump_line(json_t *j) {
  size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
  if (n == 0) return NULL;
  char *buf = malloc(n + 1);
  if (!buf) return NULL;
  if (json_dumpb(j, buf, n, JSON_COMPACT) != n) { free(buf); return NULL; }
  buf[n] = 0;
  return buf;
}

static char *respond(json_t *id, json_t *result, int code, const char *msg) {
  json_t *o = json_object();
  int oom = 0;
  if (!o) { json_decref(result); return NULL; }
  jset(o, "jsonrpc", json_string("2.0"), &oom);
  jset(o, "id", id ? json_incref(id) : json_null(), &oom);
  if (result) {
    jset(o, "result", result, &oom);
  } else {
    json_t *e = json_object();
    if (e) {
      jset(e, "code", json_integer(code), &oom);
      jset(e, "message", jstr(msg), &oom);
    }
    jset(o, "error", e, &oom);
  }
  char *line = oom ? NULL : dump_line(o);
  json_decref(o);
  return line;
}

char *amp_rpc_error_line(int code, const char *message) {
  return respond(NULL, NULL, code, message);
}

char *amp_rpc_handle(const amp_rpc_env_t *env, const char *req, size_t len, int *code) {
  json_error_t jerr;
  char kb[64], msg[600];
  int dummy;
  if (!code) code = &dummy;
  json_t *root = json_loadb(req, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
  if (!root) {
    *code = AMP_ADMIN_ERR_PARSE;
    snprintf(msg, sizeof msg, "parse error: %s (at byte %d); send one JSON object per line",
             jerr.text, jerr.position);
    return respond(NULL, NULL, *code, msg);
  }
  char *line = NULL;
  json_t *id = NULL;
  *code = AMP_ADMIN_ERR_INVALID_REQUEST;
  if (json_is_array(root)) {
    line = respond(NULL, NULL, *code, "invalid request: batch requests (JSON arrays) are not "
                   "supported; send one request object per line");
    goto out;
  }
  if (!json_is_object(root)) {
    line = respond(NULL, NULL, *code, "invalid request: a request must be a JSON object");
    goto out;
  }
  id = json_object_get(root, "id");
  if (!id) {
    line = respond(NULL, NULL, *code, "invalid request: missing \"id\" (notifications are not "
                   "served; give every request an id, a string or an integer)");
    goto out;
  }
  if (!json_is_string(id) && !json_is_integer(id)) {
    line = respond(NULL, NULL, *code, "invalid request: \"id\" must be a string or an integer");
    goto out;
  }
  const json_t *ver = json_object_get(root, "jsonrpc");
  if (!ver || !jstr_plain(ver) || strcmp(json_string_value(ver), "2.0") != 0) {
    line = respond(id, NULL, *code, "invalid request: \"jsonrpc\" must be \"2.0\"");
    goto out;
  }
  const json_t *m = json_object_get(root, "method");
  if (!m || !json_is_string(m)) {
    line = respond(id, NULL, *code, m ? "invalid request: \"method\" must be a string"
                                      : "invalid request: missing \"method\"");
    goto out;
  }
  const char *key;
  json_t *v;
  json_object_foreach(root, key, v) {
    if (strcmp(key, "jsonrpc") && strcmp(key, "id") && strcmp(key, "method") && strcmp(key, "params")) {
      snprintf(msg, sizeof msg, "invalid request: unknown member \"%s\" (a request has jsonrpc, id, "
               "method and params)", clean(kb, sizeof kb, key, strlen(key)));
      line = respond(id, NULL, *code, msg);
      goto out;
    }
  }
  const method_t *meth = NULL;
  for (size_t i = 0; jstr_plain(m) && i < sizeof methods / sizeof methods[0]; i++)
    if (strcmp(methods[i].name, json_string_value(m)) == 0) meth = &methods[i];
  if (!meth) {
    *code = AMP_ADMIN_ERR_METHOD_NOT_FOUND;
    snprintf(msg, sizeof msg, "method not found: \"%s\" (ampctl help lists the methods)",
             clean(kb, sizeof kb, json_string_value(m), json_string_length(m)));
    line = respond(id, NULL, *code, msg);
    goto out;
  }
  json_t *params = json_object_get(root, "params");
  json_t *empty = NULL;
  if (!params || json_is_null(params)) {
    params = empty = json_object();
    if (!params) goto out;
  } else if (!json_is_object(params)) {
    *code = AMP_ADMIN_ERR_INVALID_PARAMS;
    line = respond(id, NULL, *code, json_is_array(params)
                   ? "invalid params: params must be an object of named parameters, not an array"
                   : "invalid params: params must be an object of named parameters");
    goto out;
  }
  call_t *c = calloc(1, sizeof *c);
  if (!c) { json_decref(empty); goto out; }
  c->env = env;
  c->method = meth->name;
  c->params = params;
  reply_init(&c->r, env, RK_NONE);
  json_t *res = meth->fn(c);
  *code = res ? 0 : c->code;
  line = respond(id, res, c->code, c->msg);
  reply_free(&c->r);
  free(c);
  json_decref(empty);
out:
  /* The parsed copy of a preimage goes before jansson frees it. */
  {
    json_t *p = json_is_object(root) ? json_object_get(root, "params") : NULL;
    json_t *pre = json_is_object(p) ? json_object_get(p, "preimage") : NULL;
    if (json_is_string(pre)) wipe((void *)json_string_value(pre), json_string_length(pre));
  }
  json_decref(root);
  return line;
}

/* ---- stats for Prometheus and telemetry ---- */

int amp_rpc_with_stats(const amp_rpc_env_t *env,
                       void (*fn)(void *arg, const amp_metrics_stats_t *st), void *arg) {
  if (!env->ops->stats) return AMP_ERR_STATE;
  amp_admin_reply_t r;
  reply_init(&r, env, RK_STATS_FN);
  r.stats_fn = fn;
  r.stats_arg = arg;
  int rc = env->ops->stats(env->ctx, &r);
  if (rc == AMP_OK && !r.stats_given) rc = AMP_ERR_NOTFOUND;
  reply_free(&r);
  return rc;
}

typedef struct {
  amp_metrics_proc_t proc;
  int have_proc;
  char *text;
  size_t len;
} metrics_job_t;

static void render_cb(void *arg, const amp_metrics_stats_t *st) {
  metrics_job_t *j = arg;
  j->text = amp_metrics_render(st, j->have_proc ? &j->proc : NULL, &j->len);
}

int amp_rpc_getinfo(const amp_rpc_env_t *env, amp_admin_info_t *out) {
  memset(out, 0, sizeof *out);
  if (!env->ops->getinfo) return AMP_ERR_STATE;
  amp_admin_reply_t r;
  reply_init(&r, env, RK_NONE);
  int rc = env->ops->getinfo(env->ctx, out, &r);
  reply_free(&r);
  out->version[sizeof out->version - 1] = 0;
  out->data_dir[sizeof out->data_dir - 1] = 0;
  for (size_t i = 0; i < AMP_ADMIN_MAX_PORTS; i++) out->ports[i].name[sizeof out->ports[i].name - 1] = 0;
  return rc;
}

char *amp_rpc_metrics_text(const amp_rpc_env_t *env, size_t *len, int *rc) {
  metrics_job_t job;
  memset(&job, 0, sizeof job);
  amp_admin_info_t *info = NULL;
  if (env->ops->getinfo && (info = malloc(sizeof *info)) && amp_rpc_getinfo(env, info) == AMP_OK) {
    job.proc.version = info->version[0] ? info->version : NULL;
    job.proc.uptime_seconds = (double)info->uptime_s;
    job.have_proc = 1;
  }
  *rc = amp_rpc_with_stats(env, render_cb, &job);
  free(info);
  if (*rc != AMP_OK) {
    free(job.text);
    return NULL;
  }
  if (!job.text) { *rc = AMP_ERR_NOMEM; return NULL; }
  if (len) *len = job.len;
  return job.text;
}
