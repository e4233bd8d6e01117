/* amp_telemetry.c: /ampd/stats and /ampd/info for DPDK telemetry. */
#include "amp_telemetry.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_telemetry.h>

static pthread_mutex_t tel_lock = PTHREAD_MUTEX_INITIALIZER;
static amp_admin_t *tel_admin;
static int tel_registered;

/* A dict key from name and an optional label value: [A-Za-z0-9_/] only. */
static void key_of(char *out, size_t cap, const char *name, const char *suffix) {
  snprintf(out, cap, suffix ? "%s/%s" : "%s", name, suffix);
  for (char *p = out; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '/'))
      *p = '_';
  }
}

typedef struct {
  struct rte_tel_data *d;
  long worker;        /* -1: totals */
  int rc;
} stats_job_t;

static void stats_cb(void *arg, const amp_metrics_stats_t *st) {
  stats_job_t *j = arg;
  char key[RTE_TEL_MAX_STRING_LEN];
  char num[32];
  int n = 0;
  if (j->worker >= 0 && (uint64_t)j->worker >= st->n_workers) { j->rc = -EINVAL; return; }
  rte_tel_data_start_dict(j->d);
  for (size_t i = 0; i < st->n_counters && n < RTE_TEL_MAX_DICT_ENTRIES; i++) {
    const amp_metrics_counter_t *c = &st->counters[i];
    if (!c->name) continue;
    if (j->worker >= 0 && !c->per_worker) continue;
    key_of(key, sizeof key, c->name, c->label ? c->label_value : NULL);
    rte_tel_data_add_dict_u64(j->d, key, j->worker >= 0 ? c->per_worker[j->worker] : c->total);
    n++;
  }
  if (j->worker >= 0) return;
  for (size_t i = 0; i < st->n_gauges && n < RTE_TEL_MAX_DICT_ENTRIES; i++) {
    const amp_metrics_gauge_t *g = &st->gauges[i];
    if (!g->name) continue;
    key_of(key, sizeof key, g->name, g->label ? g->label_value : NULL);
    if (g->value >= 0 && g->value < 1.8e19 && g->value == (double)(uint64_t)g->value)
      rte_tel_data_add_dict_u64(j->d, key, (uint64_t)g->value);
    else
      rte_tel_data_add_dict_string(j->d, key, amp_metrics_fmt_double(num, g->value));
    n++;
  }
  for (size_t i = 0; i < st->n_hists && n + 1 < RTE_TEL_MAX_DICT_ENTRIES; i++) {
    const amp_metrics_hist_t *h = &st->hists[i];
    if (!h->name || !h->h) continue;
    uint64_t cnt = 0;
    for (size_t k = 0; k <= AMP_METRICS_LAT_BUCKETS; k++)
      cnt += atomic_load_explicit(&h->h->bucket[k], memory_order_relaxed);
    key_of(key, sizeof key, h->name, "count");
    rte_tel_data_add_dict_u64(j->d, key, cnt);
    key_of(key, sizeof key, h->name, "sum_ns");
    rte_tel_data_add_dict_u64(j->d, key, atomic_load_explicit(&h->h->sum_ns, memory_order_relaxed));
    n += 2;
  }
}

static int tel_stats(const char *cmd, const char *params, struct rte_tel_data *d) {
  (void)cmd;
  stats_job_t job = {.d = d, .worker = -1, .rc = 0};
  if (params && *params) {
    char *end;
    long w = strtol(params, &end, 10);
    if (end == params || *end || w < 0) return -EINVAL;
    job.worker = w;
  }
  pthread_mutex_lock(&tel_lock);
  int rc = tel_admin ? amp_admin_with_stats(tel_admin, stats_cb, &job) : AMP_ERR_STATE;
  pthread_mutex_unlock(&tel_lock);
  if (rc != AMP_OK) return -ENODATA;
  return job.rc;
}

static int tel_info(const char *cmd, const char *params, struct rte_tel_data *d) {
  (void)cmd;
  (void)params;
  amp_admin_info_t *info = malloc(sizeof *info);
  if (!info) return -ENOMEM;
  pthread_mutex_lock(&tel_lock);
  int rc = tel_admin ? amp_admin_with_info(tel_admin, info) : AMP_ERR_STATE;
  pthread_mutex_unlock(&tel_lock);
  if (rc != AMP_OK) { free(info); return -ENODATA; }
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_string(d, "version", info->version);
  if (info->has_node_id) {
    char hex[67];
    for (int i = 0; i < 33; i++) snprintf(hex + 2 * i, 3, "%02x", info->node_id[i]);
    rte_tel_data_add_dict_string(d, "node_id", hex);
  }
  rte_tel_data_add_dict_u64(d, "block_height", info->block_height);
  rte_tel_data_add_dict_u64(d, "uptime_s", info->uptime_s);
  rte_tel_data_add_dict_u64(d, "workers", info->workers);
  rte_tel_data_add_dict_u64(d, "ports", info->n_ports);
  rte_tel_data_add_dict_string(d, "data_dir", info->data_dir);
  free(info);
  return 0;
}

int amp_admin_telemetry_register(amp_admin_t *admin) {
  pthread_mutex_lock(&tel_lock);
  tel_admin = admin;
  int rc = 0;
  if (!tel_registered) {
    rc = rte_telemetry_register_cmd("/ampd/stats", tel_stats,
        "ampd counters (totals), gauges and latency counts. Parameters: int worker_id (optional)");
    if (rc == 0)
      rc = rte_telemetry_register_cmd("/ampd/info", tel_info,
          "ampd version, node id, block height, uptime, workers, ports. Takes no parameters");
    if (rc == 0) tel_registered = 1;
  }
  pthread_mutex_unlock(&tel_lock);
  return rc;
}

void amp_admin_telemetry_unregister(void) {
  pthread_mutex_lock(&tel_lock);
  tel_admin = NULL;
  pthread_mutex_unlock(&tel_lock);
}
