/* test_telemetry.c: /ampd/stats and /ampd/info through DPDK's telemetry
 * socket, as dpdk-telemetry.py would ask. Runs EAL with no hugepages and no
 * devices; skips (exit 77) if EAL cannot start here. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>

#include "amp_telemetry.h"
#include "amp_test.h"

static uint64_t per_worker[2] = {5, 6}, reasons[2] = {1, 2};
static amp_metrics_lat_t lat;

static int t_getinfo(void *ctx, amp_admin_info_t *out, amp_admin_reply_t *r) {
  (void)ctx; (void)r;
  snprintf(out->version, sizeof out->version, "0.1.0-tel");
  out->has_node_id = 1;
  out->node_id[0] = 3;
  out->block_height = 812345;
  out->workers = 2;
  out->uptime_s = 99;
  snprintf(out->data_dir, sizeof out->data_dir, "/tmp/x");
  return AMP_OK;
}

static int t_stats(void *ctx, amp_admin_reply_t *r) {
  (void)ctx;
  amp_metrics_counter_t c[] = {
    {"htlcs_settled", "settled", NULL, NULL, per_worker, 11},
    {"htlcs_failed", "failed", "reason", "bad tag!", reasons, 3},
    {"store_commits", "commits", NULL, NULL, NULL, 4},
  };
  amp_metrics_gauge_t g[] = {{"held_htlcs", "held", NULL, NULL, 8}, {"ratio", "r", NULL, NULL, 0.5}};
  amp_metrics_hist_t h[] = {{"commit_latency_seconds", "c", &lat}};
  amp_metrics_stats_t st = {2, c, 3, g, 2, h, 1};
  return amp_admin_reply_stats(r, &st);
}

static json_t *ask(const char *sock, const char *cmd) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    fprintf(stderr, "connect %s: %s\n", sock, strerror(errno));
    close(fd);
    return NULL;
  }
  static char buf[65536];
  ssize_t n = recv(fd, buf, sizeof buf - 1, 0);   /* the greeting */
  if (n <= 0) { close(fd); return NULL; }
  send(fd, cmd, strlen(cmd), 0);
  n = recv(fd, buf, sizeof buf - 1, 0);
  close(fd);
  if (n <= 0) return NULL;
  buf[n] = 0;
  return json_loads(buf, 0, NULL);
}

int main(int argc, char **argv) {
  (void)argc;
  char *eal[] = {argv[0], "--no-huge", "--no-pci", "-m", "64", "--file-prefix=ampd_admin_tel",
                 "--log-level=lib.*:error", "-l", "0", NULL};
  if (rte_eal_init(9, eal) < 0) {
    printf("SKIP telemetry: EAL cannot start here (%s)\n", strerror(rte_errno));
    return 77;
  }
  char dir[64] = "/tmp/ampd-tel-XXXXXX";
  char *made = mkdtemp(dir);
  AMP_REQUIRE(made != NULL);
  amp_metrics_lat_observe_ns(&lat, 2000000);
  amp_admin_ops_t ops = {.getinfo = t_getinfo, .stats = t_stats};
  amp_admin_cfg_t cfg = {.data_dir = dir};
  amp_admin_t *a = amp_admin_new(&cfg, &ops, NULL);
  AMP_REQUIRE(a != NULL);
  AMP_CHECK_EQ(amp_admin_telemetry_register(a), 0);
  AMP_CHECK_EQ(amp_admin_telemetry_register(a), 0);   /* again: harmless */

  char sock[512];
  snprintf(sock, sizeof sock, "%s/dpdk_telemetry.v2", rte_eal_get_runtime_dir());
  json_t *j = ask(sock, "/ampd/stats");
  AMP_REQUIRE(j != NULL);
  json_t *d = json_object_get(j, "/ampd/stats");
  AMP_CHECK_EQ(json_integer_value(json_object_get(d, "htlcs_settled")), 11);
  AMP_CHECK_EQ(json_integer_value(json_object_get(d, "htlcs_failed/bad_tag_")), 3);
  AMP_CHECK_EQ(json_integer_value(json_object_get(d, "store_commits")), 4);
  AMP_CHECK_EQ(json_integer_value(json_object_get(d, "held_htlcs")), 8);
  AMP_CHECK(!strcmp(json_string_value(json_object_get(d, "ratio")), "0.5"));
  AMP_CHECK_EQ(json_integer_value(json_object_get(d, "commit_latency_seconds/count")), 1);
  AMP_CHECK_EQ(json_integer_value(json_object_get(d, "commit_latency_seconds/sum_ns")), 2000000);
  AMP_CHECK(json_object_get(d, "admin_requests") != NULL);   /* the server's own */
  json_decref(j);

  j = ask(sock, "/ampd/stats,1");
  d = json_object_get(j, "/ampd/stats");
  AMP_CHECK_EQ(json_integer_value(json_object_get(d, "htlcs_settled")), 6);
  AMP_CHECK_EQ(json_integer_value(json_object_get(d, "htlcs_failed/bad_tag_")), 2);
  AMP_CHECK(json_object_get(d, "store_commits") == NULL);
  json_decref(j);
  j = ask(sock, "/ampd/stats,7");   /* no such worker: an error, i.e. null */
  AMP_CHECK(j && json_is_null(json_object_get(j, "/ampd/stats")));
  json_decref(j);

  j = ask(sock, "/ampd/info");
  d = json_object_get(j, "/ampd/info");
  AMP_CHECK(!strcmp(json_string_value(json_object_get(d, "version")), "0.1.0-tel"));
  AMP_CHECK_EQ(json_integer_value(json_object_get(d, "block_height")), 812345);
  AMP_CHECK_EQ(strlen(json_string_value(json_object_get(d, "node_id"))), 66);
  json_decref(j);

  j = ask(sock, "/");   /* the commands are listed */
  char *all = json_dumps(j, 0);
  AMP_CHECK(all && strstr(all, "/ampd/stats") && strstr(all, "/ampd/info"));
  free(all);
  json_decref(j);

  amp_admin_telemetry_unregister();
  j = ask(sock, "/ampd/info");
  AMP_CHECK(j && json_is_null(json_object_get(j, "/ampd/info")));
  json_decref(j);
  amp_admin_delete(a);
  rmdir(dir);
  rte_eal_cleanup();
  return amp_test_done();
}
