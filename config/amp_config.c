/* amp_config.c: ampd's options (amp_config.h). One table drives the file,
 * the flags, the defaults and the help text. */
#include "amp_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "amp_secp.h"

/* The fabric port (DESIGN.md section 2); config does not include dataplane. */
#define AMP_FRAME_UDP_PORT_DEFAULT_ 9736

/* ---- The option table --------------------------------------------------- */

typedef enum {
  OT_PATH,      /* a path (char[AMP_CONFIG_PATH_MAX]) */
  OT_BOOL,      /* uint8_t */
  OT_U16,       /* uint16_t in [min, max] */
  OT_U32,       /* uint32_t in [min, max] */
  OT_ENUM,      /* uint8_t index into names */
  OT_MAC,       /* uint8_t[6] + has flag */
  OT_IPV4,      /* uint8_t[4] + has flag */
  OT_PORTS,     /* "all" or a list of port ids */
  OT_GATEWAY,   /* flag only: --gateway NAME,id=..,key=.. */
  OT_CONFIG,    /* flag only: --config PATH */
  OT_IPADDR,    /* an IPv4 or IPv6 literal (char[64]) */
} opt_type_t;

typedef struct {
  const char *name;
  uint8_t type;
  size_t off;
  size_t has_off;              /* OT_MAC / OT_IPV4: offset of the has flag */
  uint64_t min, max;
  const char *const *names;    /* OT_ENUM */
  const char *def;             /* default, as the user would write it */
  const char *arg;             /* placeholder in --help */
  const char *help;
} opt_t;

static const char *const SYNC_NAMES[] = {"full", "meta", "none", NULL};
static const char *const LOG_NAMES[] = {"error", "warn", "info", "debug", NULL};

#define OFF(f) offsetof(amp_config_t, f)
#define NO_HAS ((size_t)-1)

static const opt_t OPTS[] = {
  {"config", OT_CONFIG, OFF(config_file), NO_HAS, 0, 0, NULL, "",
   "PATH", "INI-style config file (like lnd.conf); flag only. Flags win over it."},
  {"data-dir", OT_PATH, OFF(data_dir), NO_HAS, 0, 0, NULL, "~/.ampd",
   "PATH", "data directory: the LMDB store and, by default, the node key."},
  {"node-key-file", OT_PATH, OFF(node_key_file), NO_HAS, 0, 0, NULL, "",
   "PATH", "node secret key, 64 hex digits, mode 0600; created on first start."},
  {"accept-amp", OT_BOOL, OFF(accept_amp), NO_HAS, 0, 1, NULL, "false",
   "BOOL", "accept spontaneous AMP payments (no invoice): a placeholder invoice"
   " is made from the first HTLC."},
  {"hold-timeout-ms", OT_U32, OFF(hold_timeout_ms), NO_HAS, 1, 86400000, NULL, "120000",
   "MS", "how long each held HTLC waits for its set to complete before it fails"
   " with mpp_timeout (per HTLC, from its own arrival)."},
  {"max-htlcs-per-set", OT_U32, OFF(max_htlcs_per_set), NO_HAS, 1, 65535, NULL, "512",
   "N", "HTLCs one AMP set may have; one more fails at once."},
  {"max-held", OT_U32, OFF(max_held), NO_HAS, 1, 16777216, NULL, "100000",
   "N", "HTLCs held (waiting for their set) in total; one more fails at once."},
  {"max-held-per-gateway", OT_U32, OFF(max_held_per_gateway), NO_HAS, 0, 16777216, NULL, "0",
   "N", "HTLCs held per gateway (0: same as max-held)."},
  {"group-commit-max", OT_U32, OFF(group_commit_max), NO_HAS, 1, 65536, NULL, "512",
   "N", "store: most intents in one LMDB transaction (one sync)."},
  {"group-commit-usec", OT_U32, OFF(group_commit_usec), NO_HAS, 0, 1000000, NULL, "200",
   "USEC", "store: longest wait after the first intent before a commit."},
  {"store-index-entries", OT_U32, OFF(store_index_entries), NO_HAS, 65536, 134217728, NULL,
   "1048576", "N", "store: resolved HTLCs its in-memory indexes are sized for at open (a"
   " quarter as many sets and invoices more than it holds); past that a table doubles, a"
   " pause of the writer (~100 ns per entry). Resident from open: ~90 MiB per 1048576."},
  {"sync", OT_ENUM, OFF(sync), NO_HAS, 0, 0, SYNC_NAMES, "full",
   "MODE", "store durability. full: fsync every commit; a committed settlement"
   " survives power loss (safe). meta: the meta page is not synced; an OS crash"
   " or power loss may undo the last commits whose preimages were already"
   " released: risk of paying out twice on redelivery. none: no sync; an OS"
   " crash or power loss loses recent commits: tests and benchmarks only."},
  {"workers", OT_U32, OFF(workers), NO_HAS, 0, 128, NULL, "0",
   "N", "worker lcores to use (0: every worker lcore given to EAL with -l)."},
  {"ports", OT_PORTS, 0, NO_HAS, 0, 1023, NULL, "all",
   "LIST", "DPDK port ids to serve, comma-separated, or all."},
  {"rx-queues", OT_U16, OFF(rx_queues), NO_HAS, 0, 64, NULL, "0",
   "N", "rx/tx queue pairs per port (0: one per worker where the port has RSS,"
   " else one)."},
  {"rx-desc", OT_U16, OFF(rx_desc), NO_HAS, 64, 16384, NULL, "1024",
   "N", "rx descriptors per queue."},
  {"tx-desc", OT_U16, OFF(tx_desc), NO_HAS, 64, 16384, NULL, "1024",
   "N", "tx descriptors per queue."},
  {"mbufs", OT_U32, OFF(mbufs), NO_HAS, 0, 4194304, NULL, "0",
   "N", "mbufs in the pool (0: sized from ports, queues and descriptors)."},
  {"mac", OT_MAC, OFF(mac), OFF(has_mac), 0, 0, NULL, "",
   "MAC", "our MAC address on the fabric."},
  {"ipv4", OT_IPV4, OFF(ipv4), OFF(has_ipv4), 0, 0, NULL, "",
   "ADDR", "our IPv4 address on the fabric; frames to another address are"
   " dropped."},
  {"udp-port", OT_U16, OFF(udp_port), NO_HAS, 1, 65535, NULL, "9736",
   "PORT", "UDP port ampd listens on."},
  {"exit-idle", OT_U32, OFF(exit_idle_ms), NO_HAS, 0, 86400000, NULL, "0",
   "MS", "exit cleanly once rx has been idle MS milliseconds and nothing is in"
   " flight (0: never). For demos, tests and pcap replays."},
  {"stats-interval", OT_U32, OFF(stats_interval_ms), NO_HAS, 0, 86400000, NULL, "0",
   "MS", "log a counters line every MS milliseconds (0: only at exit)."},
  {"admin-socket", OT_PATH, OFF(admin_socket), NO_HAS, 0, 0, NULL, "",
   "PATH", "the admin socket (JSON-RPC for ampctl), mode 0600; none: no admin socket."},
  {"metrics-port", OT_U16, OFF(metrics_port), NO_HAS, 0, 65535, NULL, "0",
   "PORT", "serve Prometheus text on http://ADDR:PORT/metrics (0: off)."},
  {"metrics-addr", OT_IPADDR, OFF(metrics_addr), NO_HAS, 0, 0, NULL, "127.0.0.1",
   "ADDR", "address the metrics listener binds (an IPv4 or IPv6 literal)."},
  {"log-level", OT_ENUM, OFF(log_level), NO_HAS, 0, 0, LOG_NAMES, "info",
   "LEVEL", "error, warn, info or debug."},
  {"gateway", OT_GATEWAY, 0, NO_HAS, 0, 0, NULL, "",
   "SPEC", "a gateway: NAME,id=N,key=HEX64[,mac=MAC][,ipv4=ADDR][,udp-port=PORT];"
   " in the file a [gateway NAME] section with the same keys. Repeatable. A key"
   " given here is visible to other users in the process list: prefer the file."},
};
#define N_OPTS (sizeof OPTS / sizeof OPTS[0])

/* Where each option was last set: 0 default, > 0 file line, -1 a flag. */
typedef struct {
  int line[N_OPTS];
} origins_t;

/* ---- Errors ------------------------------------------------------------- */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return AMP_ERR_CONFIG;
}

/* A value made safe to echo: at most 64 printable characters. */
static const char *shown(char *buf, size_t cap, const char *v) {
  size_t n = 0;
  for (; v[n] && n + 4 < cap && n < 64; n++)
    buf[n] = (v[n] >= 0x20 && v[n] < 0x7f) ? v[n] : '?';
  buf[n] = 0;
  if (v[n]) snprintf(buf + n, cap - n, "...");
  return buf;
}

/* ---- Value parsers: 0 on success, -1 on a bad value --------------------- */

static int parse_u64(uint64_t *out, const char *s, uint64_t min, uint64_t max) {
  if (!*s) return -1;
  uint64_t v = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return -1;
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
  }
  if (v < min || v > max) return -1;
  *out = v;
  return 0;
}

static int parse_bool(uint8_t *out, const char *s) {
  static const char *const T[] = {"true", "yes", "on", "1"}, *const F[] = {"false", "no", "off", "0"};
  for (int i = 0; i < 4; i++) {
    if (!strcasecmp(s, T[i])) { *out = 1; return 0; }
    if (!strcasecmp(s, F[i])) { *out = 0; return 0; }
  }
  return -1;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* xx:xx:xx:xx:xx:xx (or '-'), unicast and not all zero. */
static int parse_mac(uint8_t mac[6], const char *s) {
  if (strlen(s) != 17) return -1;
  uint8_t m[6];
  for (int i = 0; i < 6; i++) {
    int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    if (i < 5 && s[3 * i + 2] != ':' && s[3 * i + 2] != '-') return -1;
    m[i] = (uint8_t)(hi << 4 | lo);
  }
  if (m[0] & 1) return -1;
  if (!(m[0] | m[1] | m[2] | m[3] | m[4] | m[5])) return -1;
  memcpy(mac, m, 6);
  return 0;
}

/* A dotted quad, unicast (not 0.0.0.0, broadcast or multicast). */
static int parse_ipv4(uint8_t ip[4], const char *s) {
  struct in_addr a;
  if (inet_pton(AF_INET, s, &a) != 1) return -1;
  uint8_t b[4];
  memcpy(b, &a, 4);
  if (!(b[0] | b[1] | b[2] | b[3])) return -1;
  if (b[0] >= 224) return -1;
  memcpy(ip, b, 4);
  return 0;
}

/* An IPv4 or IPv6 literal. */
static int parse_ipaddr(char *out, const char *s) {
  unsigned char buf[16];
  if (strlen(s) >= 64) return -1;
  if (inet_pton(AF_INET, s, buf) != 1 && inet_pton(AF_INET6, s, buf) != 1) return -1;
  strcpy(out, s);
  return 0;
}

static int parse_path(char *out, const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= AMP_CONFIG_PATH_MAX) return -1;
  memcpy(out, s, n + 1);
  return 0;
}

static int parse_ports(amp_config_t *cfg, const char *s, uint64_t max) {
  if (!strcasecmp(s, "all")) {
    cfg->n_ports = 0;
    return 0;
  }
  uint16_t ports[AMP_CONFIG_MAX_PORTS];
  unsigned n = 0;
  char buf[256];
  if (strlen(s) >= sizeof buf) return -1;
  strcpy(buf, s);
  char *save = NULL;
  for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    while (*t == ' ') t++;
    char *e = t + strlen(t);
    while (e > t && e[-1] == ' ') *--e = 0;
    uint64_t v;
    if (n == AMP_CONFIG_MAX_PORTS || parse_u64(&v, t, 0, max)) return -1;
    for (unsigned i = 0; i < n; i++)
      if (ports[i] == v) return -1;
    ports[n++] = (uint16_t)v;
  }
  if (n == 0) return -1;
  memcpy(cfg->ports, ports, sizeof ports);
  cfg->n_ports = (uint16_t)n;
  return 0;
}

/* What a type expects, for errors and --help. */
static void expected(char *buf, size_t cap, const opt_t *o) {
  switch (o->type) {
  case OT_PATH: case OT_CONFIG:
    snprintf(buf, cap, "a non-empty path shorter than %d bytes", AMP_CONFIG_PATH_MAX);
    break;
  case OT_BOOL: snprintf(buf, cap, "true or false (also yes/no, on/off, 1/0)"); break;
  case OT_U16: case OT_U32:
    snprintf(buf, cap, "an integer from %llu to %llu", (unsigned long long)o->min,
             (unsigned long long)o->max);
    break;
  case OT_ENUM: {
    size_t n = (size_t)snprintf(buf, cap, "one of");
    for (int i = 0; o->names[i] && n < cap; i++)
      n += (size_t)snprintf(buf + n, cap - n, "%s %s", i ? "," : "", o->names[i]);
    break;
  }
  case OT_MAC: snprintf(buf, cap, "a unicast MAC address like 02:00:00:00:00:01"); break;
  case OT_IPV4: snprintf(buf, cap, "a unicast IPv4 address like 10.0.0.1"); break;
  case OT_IPADDR: snprintf(buf, cap, "an IPv4 or IPv6 address like 127.0.0.1 or ::1"); break;
  case OT_PORTS:
    snprintf(buf, cap, "all, or up to %d distinct port ids from 0 to %llu separated by commas",
             AMP_CONFIG_MAX_PORTS, (unsigned long long)o->max);
    break;
  default: snprintf(buf, cap, "a value"); break;
  }
}

static const opt_t *find_opt(const char *name) {
  for (size_t i = 0; i < N_OPTS; i++)
    if (!strcmp(OPTS[i].name, name)) return &OPTS[i];
  return NULL;
}

/* Sets one table option. 0 on success, -1 on a bad value. */
static int set_value(amp_config_t *cfg, const opt_t *o, const char *v) {
  char *base = (char *)cfg;
  uint64_t u;
  switch (o->type) {
  case OT_PATH: case OT_CONFIG: return parse_path(base + o->off, v);
  case OT_BOOL: return parse_bool((uint8_t *)(base + o->off), v);
  case OT_U16:
    if (parse_u64(&u, v, o->min, o->max)) return -1;
    *(uint16_t *)(base + o->off) = (uint16_t)u;
    return 0;
  case OT_U32:
    if (parse_u64(&u, v, o->min, o->max)) return -1;
    *(uint32_t *)(base + o->off) = (uint32_t)u;
    return 0;
  case OT_ENUM:
    for (int i = 0; o->names[i]; i++) {
      if (!strcasecmp(v, o->names[i])) {
        *(uint8_t *)(base + o->off) = (uint8_t)i;
        return 0;
      }
    }
    return -1;
  case OT_MAC:
    if (parse_mac((uint8_t *)(base + o->off), v)) return -1;
    *(uint8_t *)(base + o->has_off) = 1;
    return 0;
  case OT_IPV4:
    if (parse_ipv4((uint8_t *)(base + o->off), v)) return -1;
    *(uint8_t *)(base + o->has_off) = 1;
    return 0;
  case OT_PORTS: return parse_ports(cfg, v, o->max);
  case OT_IPADDR: return parse_ipaddr(base + o->off, v);
  default: return -1;
  }
}

/* ---- Gateways ----------------------------------------------------------- */

static int valid_name(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n >= AMP_CONFIG_NAME_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '-' || c == '.'))
      return 0;
  }
  return 1;
}

static amp_config_gateway_t *gw_by_name(amp_config_t *cfg, const char *name) {
  for (unsigned i = 0; i < cfg->n_gateways; i++)
    if (!strcmp(cfg->gateways[i].name, name)) return &cfg->gateways[i];
  return NULL;
}

static amp_config_gateway_t *gw_add(amp_config_t *cfg, const char *name) {
  if (cfg->n_gateways == AMP_CONFIG_MAX_GATEWAYS) return NULL;
  amp_config_gateway_t *g = &cfg->gateways[cfg->n_gateways++];
  memset(g, 0, sizeof *g);
  snprintf(g->name, sizeof g->name, "%s", name);
  g->udp_port = AMP_FRAME_UDP_PORT_DEFAULT_;
  return g;
}

/* One key of a gateway. where: "file:line: [gateway NAME]" or "--gateway NAME".
 * Key values are never echoed. */
static int gw_set(amp_config_gateway_t *g, const char *k, const char *v, const char *where,
                  char *err, size_t errlen) {
  char sv[96];
  uint64_t u;
  if (!strcmp(k, "id")) {
    if (parse_u64(&u, v, 1, UINT64_MAX))
      return fail(err, errlen, "%s id = '%s': expected an integer from 1 to %llu", where,
                  shown(sv, sizeof sv, v), (unsigned long long)UINT64_MAX);
    g->id = u;
    g->has_id = 1;
  } else if (!strcmp(k, "key")) {
    uint8_t key[32];
    long n = strlen(v) == 64 ? amp_hex_decode_var(key, sizeof key, v) : -1;
    if (n != 32) {
      amp_wipe(key, sizeof key);
      return fail(err, errlen, "%s key: expected 64 hex digits (32 bytes); value not shown",
                  where);
    }
    if (amp_ct_is_zero(key, 32))
      return fail(err, errlen, "%s key: expected a random 32-byte key, not all zero", where);
    memcpy(g->key, key, 32);
    amp_wipe(key, sizeof key);
    g->has_key = 1;
  } else if (!strcmp(k, "mac")) {
    if (parse_mac(g->mac, v))
      return fail(err, errlen, "%s mac = '%s': expected a unicast MAC address like"
                  " 02:00:00:00:00:02", where, shown(sv, sizeof sv, v));
    g->has_mac = 1;
  } else if (!strcmp(k, "ipv4")) {
    if (parse_ipv4(g->ipv4, v))
      return fail(err, errlen, "%s ipv4 = '%s': expected a unicast IPv4 address like"
                  " 10.0.0.2", where, shown(sv, sizeof sv, v));
    g->has_ipv4 = 1;
  } else if (!strcmp(k, "udp-port") || !strcmp(k, "port")) {
    if (parse_u64(&u, v, 1, 65535))
      return fail(err, errlen, "%s udp-port = '%s': expected an integer from 1 to 65535",
                  where, shown(sv, sizeof sv, v));
    g->udp_port = (uint16_t)u;
  } else {
    return fail(err, errlen, "%s unknown key '%s': expected id, key, mac, ipv4 or udp-port",
                where, shown(sv, sizeof sv, k));
  }
  return AMP_OK;
}

/* --gateway NAME,k=v,...: replaces a file section of the same name. */
static int gw_flag(amp_config_t *cfg, const char *spec, uint8_t *flag_set, char *err,
                   size_t errlen) {
  char buf[512], sv[96], where[64];
  if (strlen(spec) >= sizeof buf)
    return fail(err, errlen, "--gateway: expected NAME,id=N,key=HEX64[,mac=MAC][,ipv4=ADDR]"
                "[,udp-port=PORT] (too long)");
  strcpy(buf, spec);
  char *save = NULL;
  char *name = strtok_r(buf, ",", &save);
  if (!name || strchr(name, '=') || !valid_name(name)) {
    amp_wipe(buf, sizeof buf);
    return fail(err, errlen, "--gateway: expected NAME,id=N,key=HEX64[,mac=MAC][,ipv4=ADDR]"
                "[,udp-port=PORT]; NAME is 1 to %d letters, digits, '_', '-' or '.'",
                AMP_CONFIG_NAME_MAX - 1);
  }
  snprintf(where, sizeof where, "--gateway %s:", name);
  amp_config_gateway_t *g = gw_by_name(cfg, name);
  if (g && flag_set[g - cfg->gateways]) {
    amp_wipe(buf, sizeof buf);
    return fail(err, errlen, "--gateway %s: given twice on the command line", shown(sv, sizeof sv, name));
  }
  if (g) {   /* a flag replaces the file's section */
    char keep[AMP_CONFIG_NAME_MAX];
    snprintf(keep, sizeof keep, "%s", g->name);
    amp_wipe(g, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", keep);
    g->udp_port = AMP_FRAME_UDP_PORT_DEFAULT_;
  } else if (!(g = gw_add(cfg, name))) {
    amp_wipe(buf, sizeof buf);
    return fail(err, errlen, "--gateway %s: too many gateways (at most %d)", name,
                AMP_CONFIG_MAX_GATEWAYS);
  }
  flag_set[g - cfg->gateways] = 1;
  snprintf(g->origin, sizeof g->origin, "--gateway %s", g->name);
  int rc = AMP_OK;
  for (char *t = strtok_r(NULL, ",", &save); t && rc == AMP_OK; t = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(t, '=');
    if (!eq) {
      /* Not echoed: it may be a key written without "key=". */
      rc = fail(err, errlen, "%s a part without '=': expected key=value pairs after NAME"
                " (id=, key=, mac=, ipv4=, udp-port=)", where);
      break;
    }
    *eq = 0;
    rc = gw_set(g, t, eq + 1, where, err, errlen);
  }
  amp_wipe(buf, sizeof buf);
  return rc;
}

/* ---- Defaults, flags, the file ----------------------------------------- */

void amp_config_defaults(amp_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  for (size_t i = 0; i < N_OPTS; i++) {
    const opt_t *o = &OPTS[i];
    if (o->def && *o->def && o->type != OT_GATEWAY && o->type != OT_CONFIG) {
      int rc = set_value(cfg, o, o->def);
      (void)rc;   /* the table's defaults are tested by test_config */
    }
  }
}

static int bad_value(const opt_t *o, const char *where_file, int line, const char *v, char *err,
                     size_t errlen) {
  char sv[96], ex[192];
  expected(ex, sizeof ex, o);
  if (where_file)
    return fail(err, errlen, "%s:%d: %s = '%s': expected %s", where_file, line, o->name,
                shown(sv, sizeof sv, v), ex);
  return fail(err, errlen, "--%s '%s': expected %s", o->name, shown(sv, sizeof sv, v), ex);
}

int amp_config_set(amp_config_t *cfg, const char *name, const char *value, const char *origin,
                   char *err, size_t errlen) {
  char sv[96];
  const opt_t *o = find_opt(name);
  if (!o)
    return fail(err, errlen, "%s: unknown option '%s' (see --help)", origin ? origin : "flag",
                shown(sv, sizeof sv, name));
  if (o->type == OT_GATEWAY) {
    uint8_t flag_set[AMP_CONFIG_MAX_GATEWAYS] = {0};
    return gw_flag(cfg, value, flag_set, err, errlen);
  }
  if (set_value(cfg, o, value)) {
    if (origin) {
      char ex[192];
      expected(ex, sizeof ex, o);
      return fail(err, errlen, "%s: %s = '%s': expected %s", origin, o->name,
                  shown(sv, sizeof sv, value), ex);
    }
    return bad_value(o, NULL, 0, value, err, errlen);
  }
  return AMP_OK;
}

/* libinih reads through this so we know each line's number: the handler is
 * called for the line read last. Lines longer than inih's buffer are errors. */
typedef struct {
  FILE *f;
  int line;
  int too_long;
} reader_t;

static char *read_line(char *str, int num, void *stream) {
  reader_t *r = stream;
  char *s = fgets(str, num, r->f);
  if (!s) return NULL;
  r->line++;
  size_t n = strlen(s);
  if (n == (size_t)num - 1 && s[n - 1] != '\n' && !feof(r->f)) {
    r->too_long = 1;
    return NULL;
  }
  return s;
}

typedef struct {
  amp_config_t *cfg;
  reader_t *rd;
  const char *path;
  char *err;
  size_t errlen;
  int failed;
  int opt_line[N_OPTS];
  int gw_line[AMP_CONFIG_MAX_GATEWAYS][5];  /* id, key, mac, ipv4, port */
  char last_section[128];
  char seen_sections[AMP_CONFIG_MAX_GATEWAYS][AMP_CONFIG_NAME_MAX];
  unsigned n_seen;
} file_ctx_t;

static int on_pair(void *user, const char *section, const char *name, const char *value) {
  file_ctx_t *c = user;
  char sv[96];
  int line = c->rd->line;
  if (c->failed) return 0;
  c->failed = 1;   /* cleared at the end when this pair was fine */
  if (!strncmp(section, "gateway", 7) && (section[7] == ' ' || section[7] == 0)) {
    const char *gname = section + 7;
    while (*gname == ' ') gname++;
    if (!valid_name(gname)) {
      fail(c->err, c->errlen, "%s:%d: section [%s]: expected [gateway NAME], NAME 1 to %d"
           " letters, digits, '_', '-' or '.'", c->path, line, shown(sv, sizeof sv, section),
           AMP_CONFIG_NAME_MAX - 1);
      return 0;
    }
    amp_config_gateway_t *g = gw_by_name(c->cfg, gname);
    if (strcmp(section, c->last_section) != 0) {
      for (unsigned i = 0; i < c->n_seen; i++) {
        if (!strcmp(c->seen_sections[i], gname)) {
          fail(c->err, c->errlen, "%s:%d: [gateway %s] appears twice in the file",
               c->path, line, gname);
          return 0;
        }
      }
      if (c->n_seen < AMP_CONFIG_MAX_GATEWAYS) snprintf(c->seen_sections[c->n_seen++],
                                                         AMP_CONFIG_NAME_MAX, "%s", gname);
      snprintf(c->last_section, sizeof c->last_section, "%s", section);
    }
    if (!g) {
      if (!(g = gw_add(c->cfg, gname))) {
        fail(c->err, c->errlen, "%s:%d: [gateway %s]: too many gateways (at most %d)", c->path,
             line, gname, AMP_CONFIG_MAX_GATEWAYS);
        return 0;
      }
      snprintf(g->origin, sizeof g->origin, "%s:%d: [gateway %s]", c->path, line, gname);
    }
    static const char *const KEYS[5] = {"id", "key", "mac", "ipv4", "udp-port"};
    int ki = -1;
    for (int i = 0; i < 5; i++)
      if (!strcmp(name, KEYS[i]) || (i == 4 && !strcmp(name, "port"))) ki = i;
    int *kl = ki >= 0 ? &c->gw_line[g - c->cfg->gateways][ki] : NULL;
    char where[AMP_CONFIG_PATH_MAX + 64];
    snprintf(where, sizeof where, "%s:%d: [gateway %s]", c->path, line, gname);
    if (kl && *kl) {
      fail(c->err, c->errlen, "%s %s: set twice (first at line %d)", where, KEYS[ki], *kl);
      return 0;
    }
    if (gw_set(g, name, value, where, c->err, c->errlen) != AMP_OK) return 0;
    if (kl) *kl = line;
    c->failed = 0;
    return 1;
  }
  if (*section && strcmp(section, "ampd") != 0) {
    fail(c->err, c->errlen, "%s:%d: unknown section [%s]: expected [ampd] or [gateway NAME]",
         c->path, line, shown(sv, sizeof sv, section));
    return 0;
  }
  const opt_t *o = find_opt(name);
  if (!o) {
    fail(c->err, c->errlen, "%s:%d: unknown option '%s' (see ampd --help)", c->path, line,
         shown(sv, sizeof sv, name));
    return 0;
  }
  if (o->type == OT_CONFIG) {
    fail(c->err, c->errlen, "%s:%d: config: can only be given as a flag (--config)", c->path,
         line);
    return 0;
  }
  if (o->type == OT_GATEWAY) {
    fail(c->err, c->errlen, "%s:%d: gateway: in a file, a gateway is a section [gateway NAME]"
         " with id, key, mac, ipv4, udp-port", c->path, line);
    return 0;
  }
  size_t idx = (size_t)(o - OPTS);
  if (c->opt_line[idx]) {
    fail(c->err, c->errlen, "%s:%d: %s: set twice (first at line %d)", c->path, line, o->name,
         c->opt_line[idx]);
    return 0;
  }
  if (set_value(c->cfg, o, value)) {
    bad_value(o, c->path, line, value, c->err, c->errlen);
    return 0;
  }
  c->opt_line[idx] = line;
  c->failed = 0;
  return 1;
}

int amp_config_load_file(amp_config_t *cfg, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) return fail(err, errlen, "%s: cannot open config file: %s", path, strerror(errno));
  file_ctx_t *c = calloc(1, sizeof *c);
  if (!c) {
    fclose(f);
    return fail(err, errlen, "%s: out of memory", path);
  }
  reader_t rd = {f, 0, 0};
  c->cfg = cfg;
  c->rd = &rd;
  c->path = path;
  c->err = err;
  c->errlen = errlen;
  ini_allow_multiline = 0;        /* an indented line is an error, not a continuation */
  ini_stop_on_first_error = 1;
  int rc = ini_parse_stream(read_line, &rd, on_pair, c);
  int ret = AMP_OK;
  if (rd.too_long) {
    ret = fail(err, errlen, "%s:%d: line too long (at most %d characters)", path, rd.line,
               ini_max_line - 3);
  } else if (c->failed) {
    ret = AMP_ERR_CONFIG;   /* err already says what */
  } else if (rc > 0) {
    ret = fail(err, errlen, "%s:%d: syntax error: expected 'name = value', '[section]' or a"
               " comment starting with ; or #", path, rc);
  } else if (rc < 0 || ferror(f)) {
    ret = fail(err, errlen, "%s: cannot read config file", path);
  }
  fclose(f);
  amp_wipe(c, sizeof *c);
  free(c);
  return ret;
}

/* ---- Whole-configuration checks ---------------------------------------- */

static int expand_home(char *path, const char *what, char *err, size_t errlen) {
  if (path[0] != '~' || (path[1] != '/' && path[1] != 0)) return AMP_OK;
  const char *home = getenv("HOME");
  if (!home || !*home)
    return fail(err, errlen, "%s '%s': HOME is not set; give an absolute path", what, path);
  char buf[AMP_CONFIG_PATH_MAX];
  int n = snprintf(buf, sizeof buf, "%s%s", home, path + 1);
  if (n < 0 || (size_t)n >= sizeof buf)
    return fail(err, errlen, "%s: path too long after expanding ~ (at most %d bytes)", what,
                AMP_CONFIG_PATH_MAX - 1);
  memcpy(path, buf, (size_t)n + 1);
  return AMP_OK;
}

int amp_config_finish(amp_config_t *cfg, char *err, size_t errlen) {
  if (expand_home(cfg->data_dir, "data-dir", err, errlen)) return AMP_ERR_CONFIG;
  if (!cfg->node_key_file[0]) {
    int n = snprintf(cfg->node_key_file, sizeof cfg->node_key_file, "%s/node.key", cfg->data_dir);
    if (n < 0 || (size_t)n >= sizeof cfg->node_key_file)
      return fail(err, errlen, "data-dir: path too long for <data-dir>/node.key (at most %d"
                  " bytes)", AMP_CONFIG_PATH_MAX - 1);
  } else if (expand_home(cfg->node_key_file, "node-key-file", err, errlen)) {
    return AMP_ERR_CONFIG;
  }
  if (!cfg->admin_socket[0]) {
    int n = snprintf(cfg->admin_socket, sizeof cfg->admin_socket, "%s/ampd.sock", cfg->data_dir);
    if (n < 0 || (size_t)n >= sizeof cfg->admin_socket)
      return fail(err, errlen, "data-dir: path too long for <data-dir>/ampd.sock");
  } else if (expand_home(cfg->admin_socket, "admin-socket", err, errlen)) {
    return AMP_ERR_CONFIG;
  }
  if (strcmp(cfg->admin_socket, "none") != 0 && strlen(cfg->admin_socket) > 107)
    return fail(err, errlen, "admin-socket %s: expected a path of at most 107 bytes (a Unix"
                " socket's limit); set --admin-socket, or none", cfg->admin_socket);
  if (cfg->max_held_per_gateway == 0) cfg->max_held_per_gateway = cfg->max_held;
  if (cfg->max_held_per_gateway > cfg->max_held)
    return fail(err, errlen, "max-held-per-gateway = %u: expected at most max-held (%u)",
                cfg->max_held_per_gateway, cfg->max_held);
  if (cfg->n_gateways == 0)
    return fail(err, errlen, "no gateway configured: expected at least one [gateway NAME]"
                " section in the config file or a --gateway flag");
  for (unsigned i = 0; i < cfg->n_gateways; i++) {
    const amp_config_gateway_t *g = &cfg->gateways[i];
    if (!g->has_id)
      return fail(err, errlen, "%s: missing id: expected id = an integer from 1 to %llu",
                  g->origin, (unsigned long long)UINT64_MAX);
    if (!g->has_key)
      return fail(err, errlen, "%s: missing key: expected key = 64 hex digits (32 bytes)",
                  g->origin);
    for (unsigned j = 0; j < i; j++) {
      if (cfg->gateways[j].id == g->id)
        return fail(err, errlen, "%s: id %llu: expected a unique id (also used by %s)",
                    g->origin, (unsigned long long)g->id, cfg->gateways[j].origin);
    }
  }
  return AMP_OK;
}

/* Finds the value of a flag at argv[*i]: "--name=value" or "--name value".
 * Returns the value, or NULL when a value is missing. */
static const char *flag_value(int argc, char **argv, int *i, const char *eq) {
  if (eq) return eq + 1;
  if (*i + 1 >= argc) return NULL;
  return argv[++*i];
}

int amp_config_parse(amp_config_t *cfg, int argc, char **argv, char *err, size_t errlen) {
  char sv[96];
  amp_config_defaults(cfg);
  /* Pass 1: --help and --config. */
  const char *config = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      cfg->help = 1;
      return AMP_OK;
    }
    if (!strncmp(a, "--config", 8) && (a[8] == 0 || a[8] == '=')) {
      const char *v = flag_value(argc, argv, &i, a[8] == '=' ? a + 8 : NULL);
      if (!v || !*v) return fail(err, errlen, "--config: expected a path to a config file");
      if (config) return fail(err, errlen, "--config: given twice");
      config = v;
    }
  }
  if (config) {
    if (parse_path(cfg->config_file, config))
      return fail(err, errlen, "--config '%s': expected a path shorter than %d bytes",
                  shown(sv, sizeof sv, config), AMP_CONFIG_PATH_MAX);
    int rc = amp_config_load_file(cfg, cfg->config_file, err, errlen);
    if (rc) return rc;
  }
  /* Pass 2: every other flag, over the file. */
  uint8_t gw_flag_set[AMP_CONFIG_MAX_GATEWAYS] = {0};
  uint8_t seen[N_OPTS] = {0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strncmp(a, "--", 2) != 0 || !a[2])
      return fail(err, errlen, "unexpected argument '%s': ampd options start with -- (see"
                  " --help)", shown(sv, sizeof sv, a));
    char name[64];
    const char *eq = strchr(a, '=');
    size_t nlen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
    if (nlen >= sizeof name)
      return fail(err, errlen, "unknown option '%s' (see --help)", shown(sv, sizeof sv, a));
    memcpy(name, a + 2, nlen);
    name[nlen] = 0;
    const opt_t *o = find_opt(name);
    int negate = 0;
    if (!o && !strncmp(name, "no-", 3) && !eq) {
      o = find_opt(name + 3);
      if (o && o->type != OT_BOOL) o = NULL;
      negate = 1;
    }
    if (!o) return fail(err, errlen, "unknown option '--%s' (see --help)", shown(sv, sizeof sv, name));
    size_t idx = (size_t)(o - OPTS);
    if (o->type == OT_CONFIG) {
      if (!eq) i++;
      continue;
    }
    if (o->type == OT_GATEWAY) {
      const char *v = flag_value(argc, argv, &i, eq);
      if (!v) return fail(err, errlen, "--gateway: expected NAME,id=N,key=HEX64[,mac=MAC]"
                          "[,ipv4=ADDR][,udp-port=PORT]");
      int rc = gw_flag(cfg, v, gw_flag_set, err, errlen);
      if (rc) return rc;
      continue;
    }
    if (seen[idx]) return fail(err, errlen, "--%s: given twice", o->name);
    seen[idx] = 1;
    if (o->type == OT_BOOL && !eq) {
      *((uint8_t *)cfg + o->off) = negate ? 0 : 1;
      continue;
    }
    const char *v = flag_value(argc, argv, &i, eq);
    if (!v) {
      char ex[192];
      expected(ex, sizeof ex, o);
      return fail(err, errlen, "--%s: missing value: expected %s", o->name, ex);
    }
    if (set_value(cfg, o, v)) return bad_value(o, NULL, 0, v, err, errlen);
  }
  return amp_config_finish(cfg, err, errlen);
}

/* ---- Output ------------------------------------------------------------ */

/* Prints text wrapped at width, each line indented by indent. */
static void wrap(FILE *out, const char *text, int indent, int width) {
  const char *p = text;
  while (*p) {
    int room = width - indent;
    int n = (int)strlen(p);
    if (n > room) {
      n = room;
      while (n > 0 && p[n] != ' ') n--;
      if (n == 0) n = room;
    }
    fprintf(out, "%*s%.*s\n", indent, "", n, p);
    p += n;
    while (*p == ' ') p++;
  }
}

void amp_config_usage(FILE *out, const char *prog) {
  fprintf(out,
          "Usage: %s [EAL options] -- [ampd options]\n"
          "\n"
          "ampd settles Lightning AMP payments received as HTLCs over the gateway fabric\n"
          "(Ethernet/IPv4/UDP frames, DESIGN.md section 2) on DPDK ports.\n"
          "EAL options come first (e.g. -l 0-2 --no-huge --no-pci --vdev net_pcap0,...);\n"
          "see the DPDK EAL documentation. ampd options follow the --.\n"
          "\n"
          "Every option below is also a `name = value` line in the --config file (top\n"
          "level or under [ampd]); flags win over the file. Booleans as flags: --NAME,\n"
          "--no-NAME or --NAME=BOOL.\n"
          "\n",
          prog);
  for (size_t i = 0; i < N_OPTS; i++) {
    const opt_t *o = &OPTS[i];
    char head[64], ex[192];
    snprintf(head, sizeof head, "--%s %s", o->name, o->arg);
    fprintf(out, "  %s\n", head);
    wrap(out, o->help, 6, 79);
    if (o->type != OT_GATEWAY && o->type != OT_CONFIG) {
      expected(ex, sizeof ex, o);
      char line[320];
      const char *def = o->def;
      if (!*def && !strcmp(o->name, "admin-socket")) def = "<data-dir>/ampd.sock";
      if (!*def) def = o->type == OT_PATH ? "<data-dir>/node.key"
                       : o->type == OT_MAC ? "the port's MAC" : "any";
      snprintf(line, sizeof line, "takes %s; default: %s", ex, def);
      wrap(out, line, 6, 79);
    } else {
      fprintf(out, "      default: none\n");
    }
  }
  fprintf(out,
          "  --help\n"
          "      this text.\n"
          "\n"
          "Signals: SIGTERM or SIGINT stop rx, finish the bursts in hand, commit, flush\n"
          "tx and exit 0. SIGHUP re-reads the config file and flags: log-level,\n"
          "stats-interval and exit-idle change at once, other changes at the next start.\n");
}

static void dump_mac(FILE *out, const uint8_t m[6]) {
  fprintf(out, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

void amp_config_dump(FILE *out, const amp_config_t *cfg) {
  const char *base = (const char *)cfg;
  for (size_t i = 0; i < N_OPTS; i++) {
    const opt_t *o = &OPTS[i];
    switch (o->type) {
    case OT_CONFIG:
      fprintf(out, "config = %s\n", cfg->config_file[0] ? cfg->config_file : "(none)");
      break;
    case OT_PATH: case OT_IPADDR: fprintf(out, "%s = %s\n", o->name, base + o->off); break;
    case OT_BOOL: fprintf(out, "%s = %s\n", o->name, base[o->off] ? "true" : "false"); break;
    case OT_U16: fprintf(out, "%s = %u\n", o->name, *(const uint16_t *)(base + o->off)); break;
    case OT_U32: fprintf(out, "%s = %u\n", o->name, *(const uint32_t *)(base + o->off)); break;
    case OT_ENUM: fprintf(out, "%s = %s\n", o->name, o->names[(uint8_t)base[o->off]]); break;
    case OT_MAC:
      fprintf(out, "%s = ", o->name);
      if (base[o->has_off]) dump_mac(out, (const uint8_t *)base + o->off);
      else fprintf(out, "(port's)");
      fprintf(out, "\n");
      break;
    case OT_IPV4: {
      const uint8_t *ip = (const uint8_t *)base + o->off;
      if (base[o->has_off]) fprintf(out, "%s = %u.%u.%u.%u\n", o->name, ip[0], ip[1], ip[2], ip[3]);
      else fprintf(out, "%s = (any)\n", o->name);
      break;
    }
    case OT_PORTS:
      fprintf(out, "ports = ");
      if (!cfg->n_ports) fprintf(out, "all");
      for (unsigned k = 0; k < cfg->n_ports; k++) fprintf(out, "%s%u", k ? "," : "", cfg->ports[k]);
      fprintf(out, "\n");
      break;
    case OT_GATEWAY:
      for (unsigned k = 0; k < cfg->n_gateways; k++) {
        const amp_config_gateway_t *g = &cfg->gateways[k];
        fprintf(out, "[gateway %s] id = %llu, key = (set), mac = ", g->name,
                (unsigned long long)g->id);
        if (g->has_mac) dump_mac(out, g->mac);
        else fprintf(out, "(learned)");
        if (g->has_ipv4)
          fprintf(out, ", ipv4 = %u.%u.%u.%u", g->ipv4[0], g->ipv4[1], g->ipv4[2], g->ipv4[3]);
        else
          fprintf(out, ", ipv4 = (learned)");
        fprintf(out, ", udp-port = %u\n", g->udp_port);
      }
      break;
    default: break;
    }
  }
}

const amp_config_gateway_t *amp_config_find_gateway(const amp_config_t *cfg, uint64_t id) {
  for (unsigned i = 0; i < cfg->n_gateways; i++)
    if (cfg->gateways[i].id == id) return &cfg->gateways[i];
  return NULL;
}

void amp_config_wipe(amp_config_t *cfg) {
  for (unsigned i = 0; i < AMP_CONFIG_MAX_GATEWAYS; i++)
    amp_wipe(cfg->gateways[i].key, sizeof cfg->gateways[i].key);
}

const char *amp_config_sync_str(int sync) {
  return sync >= 0 && sync <= 2 ? SYNC_NAMES[sync] : "?";
}

const char *amp_config_log_str(int level) {
  return level >= 0 && level <= 3 ? LOG_NAMES[level] : "?";
}

/* ---- The node key ------------------------------------------------------ */

static int mkdir_parent(const char *path) {
  char dir[AMP_CONFIG_PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir) return 0;
  *slash = 0;
  struct stat st;
  if (stat(dir, &st) == 0) return 0;
  /* Create each missing component, mode 0700. */
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) return -1;
  return 0;
}

static int write_new_key(uint8_t key[32], const char *path, char *err, size_t errlen) {
  for (int tries = 0;; tries++) {
    if (amp_random(key, 32) != AMP_OK)
      return fail(err, errlen, "%s: cannot make a node key: no system randomness", path);
    if (amp_secp_seckey_verify(key) == AMP_OK) break;
    if (tries > 8) return fail(err, errlen, "%s: cannot make a valid node key", path);
  }
  if (mkdir_parent(path) != 0)
    return fail(err, errlen, "%s: cannot create its directory: %s", path, strerror(errno));
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return fail(err, errlen, "%s: cannot create node key file: %s", path, strerror(errno));
  char hex[66];
  amp_hex_encode(hex, key, 32);
  hex[64] = '\n';
  ssize_t w = write(fd, hex, 65);
  amp_wipe(hex, sizeof hex);
  if (w != 65 || fsync(fd) != 0) {
    int e = errno;
    close(fd);
    unlink(path);
    return fail(err, errlen, "%s: cannot write node key file: %s", path,
                w != 65 && w >= 0 ? "short write" : strerror(e));
  }
  close(fd);
  return AMP_OK;
}

int amp_config_node_key(uint8_t key[32], int *created, const char *path, int create, char *err,
                        size_t errlen) {
  if (created) *created = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0 && errno == ENOENT && create) {
    int rc = write_new_key(key, path, err, errlen);
    if (rc == AMP_OK && created) *created = 1;
    if (rc != AMP_OK) amp_wipe(key, 32);
    return rc;
  }
  if (fd < 0) return fail(err, errlen, "%s: cannot open node key file: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return fail(err, errlen, "%s: cannot stat node key file: %s", path, strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return fail(err, errlen, "%s: node key file is not a regular file", path);
  }
  if (st.st_mode & 077) {
    close(fd);
    return fail(err, errlen, "%s: node key file has mode %04o: group or others may access it;"
                " expected mode 0600 (chmod 600 %s)", path, (unsigned)(st.st_mode & 07777), path);
  }
  char buf[130];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n < 0) return fail(err, errlen, "%s: cannot read node key file: %s", path, strerror(errno));
  size_t len = (size_t)n;
  while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) len--;
  buf[len] = 0;
  int rc = AMP_OK;
  if (len != 64 || amp_hex_decode_var(key, 32, buf) != 32)
    rc = fail(err, errlen, "%s: node key file: expected 64 hex digits (32 bytes) and an optional"
              " newline", path);
  else if (amp_secp_seckey_verify(key) != AMP_OK)
    rc = fail(err, errlen, "%s: node key file: not a valid secp256k1 secret key (zero or not"
              " below the group order)", path);
  amp_wipe(buf, sizeof buf);
  if (rc != AMP_OK) amp_wipe(key, 32);
  return rc;
}
