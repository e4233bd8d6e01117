/* test_config.c: options from files and flags, every bad-value class, and
 * the node key file (creation, mode, content). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "amp_config.h"
#include "amp_secp.h"
#include "amp_test.h"

static char dir[256];
static char err[AMP_CONFIG_ERR_MAX];
static amp_config_t cfg;

#define KEY1 "0101010101010101010101010101010101010101010101010101010101010101"
#define KEY2 "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
#define GW1 "--gateway=gw1,id=1,key=" KEY1

/* Writes text to dir/name; returns the path (static buffer, one at a time). */
static const char *write_file(const char *name, const char *text) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  AMP_REQUIRE(f != NULL);
  fputs(text, f);
  fclose(f);
  return path;
}

/* Runs amp_config_parse on a NULL-terminated list of flags. */
static int parse(const char *first, ...) {
  char *argv[64];
  int argc = 0;
  argv[argc++] = (char *)"ampd";
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a && argc < 63; a = va_arg(ap, const char *)) argv[argc++] = (char *)a;
  va_end(ap);
  argv[argc] = NULL;
  err[0] = 0;
  return amp_config_parse(&cfg, argc, argv, err, sizeof err);
}

static int contains(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* A flag that must fail, with the error naming the option and what is expected. */
static void bad_flag(const char *flag, const char *value, const char *want) {
  char a[600];
  snprintf(a, sizeof a, "--%s=%s", flag, value);
  int rc = parse(GW1, a, NULL);
  AMP_CHECK_EQ(rc, AMP_ERR_CONFIG);
  char opt[80];
  snprintf(opt, sizeof opt, "--%s", flag);
  if (!contains(err, opt) || !contains(err, "expected") || (want && !contains(err, want))) {
    fprintf(stderr, "FAIL bad flag %s=%s: error was: %s\n", flag, value, err);
    AMP_CHECK(0);
  }
}

/* A file line that must fail with file:line, the option and what is expected. */
static void bad_line(const char *text, int line, const char *opt, const char *want) {
  const char *path = write_file("bad.conf", text);
  char cf[600];
  snprintf(cf, sizeof cf, "--config=%s", path);
  int rc = parse(cf, GW1, NULL);
  AMP_CHECK_EQ(rc, AMP_ERR_CONFIG);
  char where[600];
  snprintf(where, sizeof where, "%s:%d:", path, line);
  if (!contains(err, where) || (opt && !contains(err, opt)) || !contains(err, want)) {
    fprintf(stderr, "FAIL bad line (want '%s' line %d, '%s'): error was: %s\n", opt ? opt : "",
            line, want, err);
    AMP_CHECK(0);
  }
  if (contains(err, KEY2) || contains(err, "a1b2c3d4e5f6")) {
    fprintf(stderr, "FAIL a key was echoed: %s\n", err);
    AMP_CHECK(0);
  }
}

static void test_defaults(void) {
  setenv("HOME", "/home/op", 1);
  AMP_CHECK_EQ(parse(GW1, NULL), AMP_OK);
  AMP_CHECK(!strcmp(cfg.data_dir, "/home/op/.ampd"));
  AMP_CHECK(!strcmp(cfg.node_key_file, "/home/op/.ampd/node.key"));
  AMP_CHECK_EQ(cfg.accept_amp, 0);
  AMP_CHECK_EQ(cfg.hold_timeout_ms, 120000);
  AMP_CHECK_EQ(cfg.max_htlcs_per_set, 512);
  AMP_CHECK_EQ(cfg.max_held, 100000);
  AMP_CHECK_EQ(cfg.max_held_per_gateway, 100000);
  AMP_CHECK_EQ(cfg.group_commit_max, 512);
  AMP_CHECK_EQ(cfg.group_commit_usec, 200);
  AMP_CHECK_EQ(cfg.store_index_entries, 1048576);
  AMP_CHECK_EQ(cfg.sync, AMP_CONFIG_SYNC_FULL);
  AMP_CHECK_EQ(cfg.workers, 0);
  AMP_CHECK_EQ(cfg.n_ports, 0);
  AMP_CHECK_EQ(cfg.rx_queues, 0);
  AMP_CHECK_EQ(cfg.rx_desc, 1024);
  AMP_CHECK_EQ(cfg.tx_desc, 1024);
  AMP_CHECK_EQ(cfg.udp_port, 9736);
  AMP_CHECK_EQ(cfg.exit_idle_ms, 0);
  AMP_CHECK_EQ(cfg.log_level, AMP_LOG_INFO);
  AMP_CHECK_EQ(cfg.has_mac, 0);
  AMP_CHECK_EQ(cfg.has_ipv4, 0);
  AMP_CHECK_EQ(cfg.n_gateways, 1);
  AMP_CHECK_EQ(cfg.gateways[0].id, 1);
  AMP_CHECK_EQ(cfg.gateways[0].udp_port, 9736);
  AMP_CHECK_EQ(cfg.gateways[0].key[0], 1);
  AMP_CHECK_EQ(cfg.help, 0);
  AMP_CHECK(!strcmp(cfg.admin_socket, "/home/op/.ampd/ampd.sock"));
  AMP_CHECK_EQ(cfg.metrics_port, 0);
  AMP_CHECK(!strcmp(cfg.metrics_addr, "127.0.0.1"));
  /* --help stops there, whatever follows. */
  AMP_CHECK_EQ(parse("--bogus", "--help", NULL), AMP_OK);
  AMP_CHECK_EQ(cfg.help, 1);
  AMP_CHECK_EQ(parse("-h", NULL), AMP_OK);
  AMP_CHECK_EQ(cfg.help, 1);
}

static void test_flags(void) {
  AMP_CHECK_EQ(parse(GW1, "--data-dir", "/tmp/x", "--accept-amp", "--hold-timeout-ms=5000",
                     "--max-htlcs-per-set", "16", "--max-held=1000", "--max-held-per-gateway=10",
                     "--group-commit-max=64", "--group-commit-usec=50", "--sync=none",
                     "--store-index-entries=65536",
                     "--workers=2", "--ports=0,2", "--rx-queues=2", "--rx-desc=512",
                     "--tx-desc=256", "--mbufs=4096", "--mac=02:00:00:00:00:01",
                     "--ipv4=10.0.0.1", "--udp-port=9000", "--exit-idle=300",
                     "--log-level=debug", "--stats-interval=1000",
                     "--node-key-file=/tmp/k", NULL), AMP_OK);
  AMP_CHECK(!strcmp(cfg.data_dir, "/tmp/x"));
  AMP_CHECK(!strcmp(cfg.node_key_file, "/tmp/k"));
  AMP_CHECK_EQ(cfg.accept_amp, 1);
  AMP_CHECK_EQ(cfg.hold_timeout_ms, 5000);
  AMP_CHECK_EQ(cfg.max_htlcs_per_set, 16);
  AMP_CHECK_EQ(cfg.max_held, 1000);
  AMP_CHECK_EQ(cfg.max_held_per_gateway, 10);
  AMP_CHECK_EQ(cfg.group_commit_max, 64);
  AMP_CHECK_EQ(cfg.group_commit_usec, 50);
  AMP_CHECK_EQ(cfg.store_index_entries, 65536);
  AMP_CHECK_EQ(cfg.sync, AMP_CONFIG_SYNC_NONE);
  AMP_CHECK_EQ(cfg.workers, 2);
  AMP_CHECK_EQ(cfg.n_ports, 2);
  AMP_CHECK_EQ(cfg.ports[0], 0);
  AMP_CHECK_EQ(cfg.ports[1], 2);
  AMP_CHECK_EQ(cfg.rx_queues, 2);
  AMP_CHECK_EQ(cfg.rx_desc, 512);
  AMP_CHECK_EQ(cfg.tx_desc, 256);
  AMP_CHECK_EQ(cfg.mbufs, 4096);
  AMP_CHECK_EQ(cfg.has_mac, 1);
  AMP_CHECK_EQ(cfg.mac[5], 1);
  AMP_CHECK_EQ(cfg.has_ipv4, 1);
  AMP_CHECK_EQ(cfg.ipv4[0], 10);
  AMP_CHECK_EQ(cfg.ipv4[3], 1);
  AMP_CHECK_EQ(cfg.udp_port, 9000);
  AMP_CHECK_EQ(cfg.exit_idle_ms, 300);
  AMP_CHECK_EQ(cfg.log_level, AMP_LOG_DEBUG);
  AMP_CHECK_EQ(cfg.stats_interval_ms, 1000);
  /* Booleans. */
  AMP_CHECK_EQ(parse(GW1, "--accept-amp=yes", NULL), AMP_OK);
  AMP_CHECK_EQ(cfg.accept_amp, 1);
  AMP_CHECK_EQ(parse(GW1, "--no-accept-amp", NULL), AMP_OK);
  AMP_CHECK_EQ(cfg.accept_amp, 0);
  AMP_CHECK_EQ(parse(GW1, "--accept-amp=OFF", NULL), AMP_OK);
  AMP_CHECK_EQ(cfg.accept_amp, 0);
  AMP_CHECK_EQ(parse(GW1, "--sync", "META", NULL), AMP_OK);
  AMP_CHECK_EQ(cfg.sync, AMP_CONFIG_SYNC_META);
  AMP_CHECK_EQ(parse(GW1, "--ports=all", NULL), AMP_OK);
  AMP_CHECK_EQ(cfg.n_ports, 0);
  AMP_CHECK_EQ(parse(GW1, "--data-dir=~/d", NULL), AMP_OK);
  AMP_CHECK(!strcmp(cfg.data_dir, "/home/op/d"));
  /* Gateways by flag. */
  AMP_CHECK_EQ(parse(GW1, "--gateway", "g2,id=77,key=" KEY2 ",mac=02:aa:bb:cc:dd:ee,ipv4=10.1.2.3,"
                     "udp-port=4000", NULL), AMP_OK);
  AMP_CHECK_EQ(cfg.n_gateways, 2);
  const amp_config_gateway_t *g = amp_config_find_gateway(&cfg, 77);
  AMP_REQUIRE(g != NULL);
  AMP_CHECK(!strcmp(g->name, "g2"));
  AMP_CHECK_EQ(g->key[0], 0xa1);
  AMP_CHECK_EQ(g->has_mac, 1);
  AMP_CHECK_EQ(g->mac[1], 0xaa);
  AMP_CHECK_EQ(g->ipv4[3], 3);
  AMP_CHECK_EQ(g->udp_port, 4000);
  AMP_CHECK(amp_config_find_gateway(&cfg, 78) == NULL);
}

static void test_bad_flags(void) {
  /* Integers: not a number, sign, empty, overflow, below, above. */
  bad_flag("hold-timeout-ms", "abc", "an integer from 1 to 86400000");
  bad_flag("hold-timeout-ms", "-5", "an integer");
  bad_flag("hold-timeout-ms", "", "an integer");
  bad_flag("hold-timeout-ms", "0", "an integer from 1");
  bad_flag("hold-timeout-ms", "86400001", "86400000");
  bad_flag("hold-timeout-ms", "99999999999999999999999", "an integer");
  bad_flag("hold-timeout-ms", "12ms", "an integer");
  bad_flag("hold-timeout-ms", " 12", "an integer");
  bad_flag("max-htlcs-per-set", "0", "from 1 to 65535");
  bad_flag("max-htlcs-per-set", "65536", "from 1 to 65535");
  bad_flag("max-held", "0", "from 1");
  bad_flag("max-held-per-gateway", "x", "an integer");
  bad_flag("group-commit-max", "0", "from 1 to 65536");
  bad_flag("group-commit-usec", "1000001", "from 0 to 1000000");
  bad_flag("store-index-entries", "65535", "from 65536 to 134217728");
  bad_flag("store-index-entries", "134217729", "from 65536 to 134217728");
  bad_flag("workers", "129", "from 0 to 128");
  bad_flag("rx-queues", "65", "from 0 to 64");
  bad_flag("rx-desc", "32", "from 64 to 16384");
  bad_flag("tx-desc", "70000", "from 64 to 16384");
  bad_flag("mbufs", "4194305", "an integer");
  bad_flag("udp-port", "0", "from 1 to 65535");
  bad_flag("udp-port", "65536", "from 1 to 65535");
  bad_flag("exit-idle", "1.5", "an integer");
  bad_flag("metrics-port", "65536", "from 0 to 65535");
  bad_flag("metrics-addr", "localhost", "an IPv4 or IPv6 address");
  bad_flag("metrics-addr", "1.2.3", "an IPv4 or IPv6 address");
  bad_flag("stats-interval", "-1", "an integer");
  /* Booleans and enums. */
  bad_flag("accept-amp", "maybe", "true or false");
  bad_flag("accept-amp", "", "true or false");
  bad_flag("sync", "fsync", "one of full, meta, none");
  bad_flag("sync", "", "one of full");
  bad_flag("log-level", "verbose", "one of error, warn, info, debug");
  /* Addresses. */
  bad_flag("mac", "02:00:00:00:00", "MAC address");
  bad_flag("mac", "02:00:00:00:00:0g", "MAC address");
  bad_flag("mac", "02:00:00:00:00:001", "MAC address");
  bad_flag("mac", "01:00:5e:00:00:01", "unicast MAC");    /* multicast */
  bad_flag("mac", "ff:ff:ff:ff:ff:ff", "unicast MAC");    /* broadcast */
  bad_flag("mac", "00:00:00:00:00:00", "unicast MAC");
  bad_flag("ipv4", "10.0.0", "IPv4 address");
  bad_flag("ipv4", "10.0.0.256", "IPv4 address");
  bad_flag("ipv4", "10.0.0.1/24", "IPv4 address");
  bad_flag("ipv4", "0.0.0.0", "unicast IPv4");
  bad_flag("ipv4", "224.0.0.1", "unicast IPv4");
  bad_flag("ipv4", "255.255.255.255", "unicast IPv4");
  bad_flag("ipv4", "::1", "IPv4 address");
  /* Ports. */
  bad_flag("ports", "0,0", "distinct port ids");
  bad_flag("ports", "1024", "from 0 to 1023");
  bad_flag("ports", "a", "port ids");
  bad_flag("ports", "", "port ids");
  bad_flag("ports", ",", "port ids");
  bad_flag("ports", "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,"
           "28,29,30,31,32", "up to 32");
  /* Paths. */
  char longpath[700];
  memset(longpath, 'a', sizeof longpath - 1);
  longpath[sizeof longpath - 1] = 0;
  bad_flag("data-dir", "", "non-empty path");
  bad_flag("data-dir", longpath, "shorter than 512");
  bad_flag("node-key-file", longpath, "shorter than 512");
  /* A value with control characters is not echoed raw. */
  bad_flag("sync", "a\033[2Jb", "one of");
  AMP_CHECK(!contains(err, "\033"));

  /* Flag syntax. */
  AMP_CHECK_EQ(parse(GW1, "--bogus=1", NULL), AMP_ERR_CONFIG);
  AMP_CHECK(contains(err, "unknown option '--bogus'"));
  AMP_CHECK_EQ(parse(GW1, "stray", NULL), AMP_ERR_CONFIG);
  AMP_CHECK(contains(err, "unexpected argument 'stray'"));
  AMP_CHECK_EQ(parse(GW1, "--", NULL), AMP_ERR_CONFIG);
  AMP_CHECK_EQ(parse(GW1, "--sync", NULL), AMP_ERR_CONFIG);
  AMP_CHECK(contains(err, "--sync: missing value: expected one of"));
  AMP_CHECK_EQ(parse(GW1, "--sync=full", "--sync=none", NULL), AMP_ERR_CONFIG);
  AMP_CHECK(contains(err, "--sync: given twice"));
  AMP_CHECK_EQ(parse(GW1, "--no-sync", NULL), AMP_ERR_CONFIG);   /* not a boolean */
  AMP_CHECK(contains(err, "unknown option"));
  AMP_CHECK_EQ(parse(GW1, "--config", NULL), AMP_ERR_CONFIG);
  AMP_CHECK(contains(err, "--config: expected a path"));
  AMP_CHECK_EQ(parse(GW1, "--config=/nonexistent/ampd.conf", NULL), AMP_ERR_CONFIG);
  AMP_CHECK(contains(err, "/nonexistent/ampd.conf: cannot open config file"));

  /* Gateways by flag: every bad class, keys never echoed. */
  struct { const char *spec; const char *want; } gw[] = {
    {"", "expected NAME,id=N"},
    {"id=1,key=" KEY2, "expected NAME,id=N"},
    {"bad name,id=1,key=" KEY2, "NAME is 1 to 31"},
    {"g2,id=0,key=" KEY2, "id = '0': expected an integer from 1"},
    {"g2,id=x,key=" KEY2, "id = 'x': expected an integer"},
    {"g2,id=2,key=" KEY2 "00", "key: expected 64 hex digits"},
    {"g2,id=2,key=a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9", "64 hex"},
    {"g2,id=2,key=a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9z", "64 hex"},
    {"g2,id=2,key=0000000000000000000000000000000000000000000000000000000000000000", "not all zero"},
    {"g2,id=2,key=" KEY2 ",mac=01:00:00:00:00:01", "mac = '01:00:00:00:00:01': expected a unicast"},
    {"g2,id=2,key=" KEY2 ",ipv4=300.1.1.1", "ipv4 = '300.1.1.1': expected a unicast IPv4"},
    {"g2,id=2,key=" KEY2 ",udp-port=0", "udp-port = '0': expected an integer from 1 to 65535"},
    {"g2,id=2,key=" KEY2 ",colour=red", "unknown key 'colour'"},
    {"g2,id=2," KEY2, "a part without '='"},
    {"g2,id=2", "[missing key]"},
    {"g2,key=" KEY2, "[missing id]"},
    {"g2,id=1,key=" KEY2, "expected a unique id"},
  };
  for (size_t i = 0; i < sizeof gw / sizeof gw[0]; i++) {
    char a[700];
    snprintf(a, sizeof a, "--gateway=%s", gw[i].spec);
    AMP_CHECK_EQ(parse(GW1, a, NULL), AMP_ERR_CONFIG);
    const char *want = gw[i].want;
    if (!strcmp(want, "[missing key]")) want = "missing key: expected key = 64 hex digits";
    if (!strcmp(want, "[missing id]")) want = "missing id: expected id = an integer";
    if (!contains(err, want) || !contains(err, "--gateway") || contains(err, "a1b2c3d4e5f6")) {
      fprintf(stderr, "FAIL --gateway=%s: error was: %s\n", gw[i].spec, err);
      AMP_CHECK(0);
    }
  }
  AMP_CHECK_EQ(parse(GW1, GW1, NULL), AMP_ERR_CONFIG);
  AMP_CHECK(contains(err, "given twice"));
  AMP_CHECK_EQ(parse("--gateway", NULL), AMP_ERR_CONFIG);
  AMP_CHECK(contains(err, "--gateway: expected NAME"));
  /* Whole-configuration checks. */
  {
    char sock[200];
    memset(sock, 's', sizeof sock - 1);
    sock[0] = '/';
    sock[sizeof sock - 1] = 0;
    char a[300];
    snprintf(a, sizeof a, "--admin-socket=%s", sock);
    AMP_CHECK_EQ(parse(GW1, a, NULL), AMP_ERR_CONFIG);
    AMP_CHECK(contains(err, "expected a path of at most 107 bytes"));
    AMP_CHECK_EQ(parse(GW1, "--admin-socket=none", "--metrics-port=9100", "--metrics-addr=::1",
                       NULL), AMP_OK);
    AMP_CHECK(!strcmp(cfg.admin_socket, "none"));
    AMP_CHECK_EQ(cfg.metrics_port, 9100);
    AMP_CHECK(!strcmp(cfg.metrics_addr, "::1"));
  }
  AMP_CHECK_EQ(parse(NULL), AMP_ERR_CONFIG);
  AMP_CHECK(contains(err, "no gateway configured"));
  AMP_CHECK_EQ(parse(GW1, "--max-held=10", "--max-held-per-gateway=11", NULL), AMP_ERR_CONFIG);
  AMP_CHECK(contains(err, "max-held-per-gateway = 11: expected at most max-held (10)"));
  unsetenv("HOME");
  AMP_CHECK_EQ(parse(GW1, "--data-dir=~/x", NULL), AMP_ERR_CONFIG);
  AMP_CHECK(contains(err, "HOME is not set"));
  setenv("HOME", "/home/op", 1);
}

static void test_file(void) {
  const char *path = write_file("good.conf",
    "; ampd test config\n"
    "# comments both ways\n"
    "data-dir = /srv/ampd\n"
    "accept-amp = true\n"
    "hold-timeout-ms = 60000   ; inline comment\n"
    "sync = meta\n"
    "ports = 0, 1\n"
    "\n"
    "[ampd]\n"
    "workers = 3\n"
    "\n"
    "[gateway alpha]\n"
    "id = 10\n"
    "key = " KEY2 "\n"
    "mac = 02:00:00:00:00:0a\n"
    "ipv4 = 10.0.0.10\n"
    "udp-port = 5000\n"
    "\n"
    "[gateway beta]\n"
    "id = 11\n"
    "key = " KEY1 "\n"
    "port = 5001\n");
  char cf[600];
  snprintf(cf, sizeof cf, "--config=%s", path);
  AMP_CHECK_EQ(parse(cf, NULL), AMP_OK);
  if (err[0]) fprintf(stderr, "unexpected: %s\n", err);
  AMP_CHECK(!strcmp(cfg.data_dir, "/srv/ampd"));
  AMP_CHECK(!strcmp(cfg.config_file, path));
  AMP_CHECK_EQ(cfg.accept_amp, 1);
  AMP_CHECK_EQ(cfg.hold_timeout_ms, 60000);
  AMP_CHECK_EQ(cfg.sync, AMP_CONFIG_SYNC_META);
  AMP_CHECK_EQ(cfg.n_ports, 2);
  AMP_CHECK_EQ(cfg.ports[1], 1);
  AMP_CHECK_EQ(cfg.workers, 3);
  AMP_CHECK_EQ(cfg.n_gateways, 2);
  const amp_config_gateway_t *a = amp_config_find_gateway(&cfg, 10);
  AMP_REQUIRE(a != NULL);
  AMP_CHECK(!strcmp(a->name, "alpha"));
  AMP_CHECK_EQ(a->key[0], 0xa1);
  AMP_CHECK_EQ(a->udp_port, 5000);
  AMP_CHECK_EQ(a->ipv4[3], 10);
  AMP_CHECK_EQ(a->mac[5], 0x0a);
  const amp_config_gateway_t *b = amp_config_find_gateway(&cfg, 11);
  AMP_REQUIRE(b != NULL);
  AMP_CHECK_EQ(b->udp_port, 5001);
  AMP_CHECK_EQ(b->has_mac, 0);
  /* Flags win over the file, wherever they are on the line. */
  AMP_CHECK_EQ(parse("--sync=full", cf, "--hold-timeout-ms=7", "--no-accept-amp", NULL), AMP_OK);
  AMP_CHECK_EQ(cfg.sync, AMP_CONFIG_SYNC_FULL);
  AMP_CHECK_EQ(cfg.hold_timeout_ms, 7);
  AMP_CHECK_EQ(cfg.accept_amp, 0);
  AMP_CHECK(!strcmp(cfg.data_dir, "/srv/ampd"));
  /* --gateway NAME replaces the file's section of that name. */
  AMP_CHECK_EQ(parse(cf, "--gateway=alpha,id=12,key=" KEY1, NULL), AMP_OK);
  AMP_CHECK_EQ(cfg.n_gateways, 2);
  AMP_CHECK(amp_config_find_gateway(&cfg, 10) == NULL);
  a = amp_config_find_gateway(&cfg, 12);
  AMP_REQUIRE(a != NULL);
  AMP_CHECK_EQ(a->udp_port, 9736);
  AMP_CHECK_EQ(a->has_mac, 0);
  AMP_CHECK_EQ(a->key[0], 1);
  /* The dump never shows a key. */
  char *buf = NULL;
  size_t blen = 0;
  FILE *m = open_memstream(&buf, &blen);
  amp_config_dump(m, &cfg);
  fclose(m);
  AMP_CHECK(contains(buf, "sync = meta"));
  AMP_CHECK(contains(buf, "[gateway beta] id = 11, key = (set)"));
  AMP_CHECK(!contains(buf, "0101010101") && !contains(buf, "a1b2c3"));
  free(buf);
}

static void test_bad_file(void) {
  /* Every bad value class in a file: file, line, option, expectation. */
  bad_line("sync = full\nhold-timeout-ms = soon\n", 2, "hold-timeout-ms = 'soon'",
           "expected an integer from 1 to 86400000");
  bad_line("\n\n\nmax-held = 0\n", 4, "max-held", "expected an integer from 1");
  bad_line("accept-amp = perhaps\n", 1, "accept-amp", "expected true or false");
  bad_line("sync = sometimes\n", 1, "sync", "expected one of full, meta, none");
  bad_line("log-level = loud\n", 1, "log-level", "expected one of error");
  bad_line("mac = 02:00\n", 1, "mac", "expected a unicast MAC");
  bad_line("ipv4 = 1.2.3\n", 1, "ipv4", "expected a unicast IPv4");
  bad_line("ports = 1,1\n", 1, "ports", "distinct port ids");
  bad_line("rx-desc = 1\n", 1, "rx-desc", "from 64 to 16384");
  bad_line("data-dir =\n", 1, "data-dir", "non-empty path");
  bad_line("colour = red\n", 1, "'colour'", "unknown option");
  bad_line("sync = full\nsync = none\n", 2, "sync", "set twice (first at line 1)");
  bad_line("config = other.conf\n", 1, "config", "only be given as a flag");
  bad_line("gateway = x\n", 1, "gateway", "section [gateway NAME]");
  bad_line("[server]\nx = 1\n", 2, "[server]", "unknown section");
  bad_line("this is not ini\n", 1, NULL, "syntax error");
  bad_line("sync = full\n[unclosed\n", 2, NULL, "syntax error");
  bad_line("sync = full\n   indented = 1\n", 2, NULL, "");
  {
    char text[400];
    memset(text, 'x', sizeof text);
    memcpy(text, "data-dir = ", 11);
    text[sizeof text - 2] = '\n';
    text[sizeof text - 1] = 0;
    bad_line(text, 1, NULL, "line too long");
  }
  /* Gateway sections. */
  bad_line("[gateway]\nid = 2\n", 2, "[gateway]", "expected [gateway NAME]");
  bad_line("[gateway a b]\nid = 2\n", 2, "gateway a b", "expected [gateway NAME]");
  bad_line("[gateway g2]\nid = two\nkey = " KEY2 "\n", 2, "[gateway g2] id = 'two'",
           "expected an integer from 1");
  bad_line("[gateway g2]\nid = 2\nkey = " KEY2 "ff\n", 3, "[gateway g2] key",
           "expected 64 hex digits (32 bytes); value not shown");
  bad_line("[gateway g2]\nid = 2\nkey = zz" KEY2 "\n", 3, "[gateway g2] key", "64 hex digits");
  bad_line("[gateway g2]\nid = 2\nkey = " KEY2 "\nmac = 03:00:00:00:00:01\n", 4,
           "[gateway g2] mac", "expected a unicast MAC");
  bad_line("[gateway g2]\nid = 2\nkey = " KEY2 "\nipv4 = 10.0.0.0.1\n", 4,
           "[gateway g2] ipv4", "expected a unicast IPv4");
  bad_line("[gateway g2]\nid = 2\nkey = " KEY2 "\nudp-port = 70000\n", 4,
           "[gateway g2] udp-port", "from 1 to 65535");
  bad_line("[gateway g2]\nid = 2\nsecret = 1\n", 3, "[gateway g2] unknown key 'secret'",
           "expected id, key, mac, ipv4 or udp-port");
  bad_line("[gateway g2]\nid = 2\nid = 3\n", 3, "[gateway g2] id", "set twice (first at line 2)");
  bad_line("[gateway g2]\nid = 2\nkey = " KEY2 "\n[gateway g3]\nid = 3\nkey = " KEY2
           "\n[gateway g2]\nmac = 02:00:00:00:00:01\n", 8, "[gateway g2]", "appears twice");
  /* Missing fields are reported where the section is. */
  bad_line("sync = full\n[gateway g2]\nid = 2\n", 3, "[gateway g2]", "missing key");
  bad_line("[gateway g2]\nkey = " KEY2 "\n", 2, "[gateway g2]", "missing id");
  bad_line("[gateway g2]\nid = 1\nkey = " KEY2 "\n", 2, "[gateway g2]",
           "expected a unique id");
  /* An unreadable file. */
  const char *p = write_file("unreadable.conf", "sync = full\n");
  if (geteuid() != 0) {
    chmod(p, 0);
    AMP_CHECK_EQ(amp_config_load_file(&cfg, p, err, sizeof err), AMP_ERR_CONFIG);
    AMP_CHECK(contains(err, "cannot open config file"));
  }
}

static void test_node_key(void) {
  char path[512], sub[512];
  uint8_t key[32], again[32];
  int created = -1;
  snprintf(path, sizeof path, "%s/nk/deeper/node.key", dir);
  /* Absent and not to be created. */
  AMP_CHECK_EQ(amp_config_node_key(key, &created, path, 0, err, sizeof err), AMP_ERR_CONFIG);
  AMP_CHECK(contains(err, "cannot open node key file"));
  /* Created on first start: mode 0600, 64 hex digits, directories 0700. */
  AMP_CHECK_EQ(amp_config_node_key(key, &created, path, 1, err, sizeof err), AMP_OK);
  AMP_CHECK_EQ(created, 1);
  struct stat st;
  AMP_REQUIRE(stat(path, &st) == 0);
  AMP_CHECK_EQ(st.st_mode & 0777, 0600);
  snprintf(sub, sizeof sub, "%s/nk/deeper", dir);
  AMP_REQUIRE(stat(sub, &st) == 0);
  AMP_CHECK_EQ(st.st_mode & 0777, 0700);
  size_t len;
  char *text = amp_test_read_file(path, &len);
  AMP_CHECK_EQ(len, 65);
  uint8_t fromfile[32];
  text[64] = 0;
  AMP_CHECK_EQ(amp_test_unhex(fromfile, 32, text), 32);
  AMP_CHECK_MEM(fromfile, key, 32);
  AMP_CHECK_EQ(amp_secp_seckey_verify(key), AMP_OK);
  /* Second start: the same key, not created again. */
  AMP_CHECK_EQ(amp_config_node_key(again, &created, path, 1, err, sizeof err), AMP_OK);
  AMP_CHECK_EQ(created, 0);
  AMP_CHECK_MEM(again, key, 32);
  /* Readable or writable by group or others: refused, key not printed. */
  static const mode_t bad_modes[] = {0640, 0604, 0660, 0602, 0620, 0644, 0700 | 0004, 0610};
  for (size_t i = 0; i < sizeof bad_modes / sizeof bad_modes[0]; i++) {
    AMP_REQUIRE(chmod(path, bad_modes[i]) == 0);
    int rc = amp_config_node_key(again, &created, path, 1, err, sizeof err);
    AMP_CHECK_EQ(rc, AMP_ERR_CONFIG);
    AMP_CHECK(contains(err, "group or others may access it"));
    AMP_CHECK(contains(err, path));
    AMP_CHECK(!contains(err, text));
  }
  AMP_REQUIRE(chmod(path, 0400) == 0);   /* owner read-only is fine */
  AMP_CHECK_EQ(amp_config_node_key(again, &created, path, 1, err, sizeof err), AMP_OK);
  free(text);
  /* Bad content. */
  struct { const char *text; const char *want; } bad[] = {
    {"", "expected 64 hex digits"},
    {"abcd\n", "expected 64 hex digits"},
    {KEY1 "00\n", "expected 64 hex digits"},
    {"zz" KEY1 "\n", "expected 64 hex digits"},
    {"0000000000000000000000000000000000000000000000000000000000000000\n", "not a valid secp256k1"},
    {"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n", "not a valid secp256k1"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char p2[512];
    snprintf(p2, sizeof p2, "%s/badkey%zu", dir, i);
    int fd = open(p2, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    AMP_REQUIRE(fd >= 0);
    ssize_t w = write(fd, bad[i].text, strlen(bad[i].text));
    AMP_REQUIRE(w == (ssize_t)strlen(bad[i].text));
    close(fd);
    AMP_CHECK_EQ(amp_config_node_key(key, &created, p2, 1, err, sizeof err), AMP_ERR_CONFIG);
    if (!contains(err, bad[i].want)) {
      fprintf(stderr, "FAIL node key case %zu: %s\n", i, err);
      AMP_CHECK(0);
    }
    AMP_CHECK(!contains(err, "ffffffff"));
  }
  /* A key with CRLF and without a newline are both fine. */
  char p3[512];
  snprintf(p3, sizeof p3, "%s/crlf.key", dir);
  int fd = open(p3, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  AMP_REQUIRE(fd >= 0);
  ssize_t w = write(fd, KEY1 "\r\n", 66);
  AMP_REQUIRE(w == 66);
  close(fd);
  AMP_CHECK_EQ(amp_config_node_key(key, &created, p3, 0, err, sizeof err), AMP_OK);
  AMP_CHECK_EQ(key[31], 1);
  /* A directory is not a key file. */
  AMP_CHECK_EQ(amp_config_node_key(key, &created, sub, 1, err, sizeof err), AMP_ERR_CONFIG);
  AMP_CHECK(contains(err, "not a regular file") || contains(err, "mode"));
}

static void test_usage(void) {
  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  amp_config_usage(m, "ampd");
  fclose(m);
  static const char *const names[] = {
    "--config", "--data-dir", "--node-key-file", "--accept-amp", "--hold-timeout-ms",
    "--max-htlcs-per-set", "--max-held ", "--max-held-per-gateway", "--group-commit-max",
    "--group-commit-usec", "--store-index-entries", "--sync", "--workers", "--ports",
    "--rx-queues", "--rx-desc", "--tx-desc", "--mbufs", "--mac", "--ipv4", "--udp-port",
    "--exit-idle", "--log-level", "--gateway", "--stats-interval", "--admin-socket",
    "--metrics-port", "--metrics-addr", "--help"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (!contains(buf, names[i])) {
      fprintf(stderr, "FAIL --help lacks %s\n", names[i]);
      AMP_CHECK(0);
    }
  }
  AMP_CHECK(contains(buf, "default: 120000"));
  AMP_CHECK(contains(buf, "default: full"));
  AMP_CHECK(contains(buf, "risk of paying out twice"));
  AMP_CHECK(contains(buf, "only."));
  AMP_CHECK(contains(buf, "<data-dir>/node.key"));
  free(buf);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/test_config.XXXXXX");
  char *made = mkdtemp(dir);   /* AMP_REQUIRE evaluates twice */
  AMP_REQUIRE(made != NULL);
  AMP_REQUIRE(amp_secp_init() == AMP_OK);
  test_defaults();
  test_flags();
  test_bad_flags();
  test_file();
  test_bad_file();
  test_node_key();
  test_usage();
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return amp_test_done();
}
