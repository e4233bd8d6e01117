/* ampctl: the command-line client of ampd's admin socket.
 *
 *   ampctl [--socket PATH | --data-dir DIR] [--timeout SEC] COMMAND [ARGS]
 *
 * Commands are named like lncli's; each sends one JSON-RPC request and prints
 * the result as indented JSON (`metrics` prints the Prometheus text as is).
 * Exit status: 0 on a result, 1 on an error reply or when ampd cannot be
 * reached (the message on stderr), 2 on bad usage.
 * Flags take `--flag VALUE` or `--flag=VALUE`; `-` and `_` are the same in
 * flag names (--amt_msat, --amt-msat).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_DATA_DIR "~/.ampd"   /* as ampd's data-dir default */
#define SOCKET_NAME "ampd.sock"
#define MAX_REPLY (512u << 20)

typedef enum { T_FLAG, T_U64, T_STR, T_HEX, T_SAT } atype_t;

typedef struct {
  const char *flag;       /* without "--", with '_' */
  const char *param;      /* JSON parameter it sets */
  atype_t type;
  const char *help;
} opt_t;

typedef struct {
  const char *name;
  const char *method;
  const char *summary;
  const char *args;       /* usage after the command name */
  const opt_t *opts;
  const char *positional; /* a flag name one positional argument stands for */
} cmd_t;

static const opt_t o_addinvoice[] = {
  {"amp", "amp", T_FLAG, "an AMP invoice (reusable; the amount is optional)"},
  {"amt", "amt_msat", T_SAT, "amount in SATOSHIS, as lncli (--amt 1000 = 1000000 msat)"},
  {"amt_msat", "amt_msat", T_U64, "amount in millisatoshis (--amt_msat 1000 = 1 sat)"},
  {"memo", "memo", T_STR, "description; ampd keeps up to 127 bytes and refuses a longer one"},
  {"expiry", "expiry", T_U64, "seconds until it expires, 1 to 31536000 (default 2592000: 30 days)"},
  {"cltv_delta", "cltv_delta", T_U64, "min final CLTV delta in blocks"},
  {"preimage", "preimage", T_HEX, "MPP only: 32-byte preimage in hex (random if absent, never shown)"},
  {0},
};
static const opt_t o_invref[] = {
  {"payment_addr", "payment_addr", T_HEX, "the invoice's payment address (AMP or MPP)"},
  {"payment_hash", "payment_hash", T_HEX, "the invoice's payment hash (MPP)"},
  {0},
};
static const opt_t o_listinvoices[] = {
  {"index_offset", "index_offset", T_U64, "start after this add_index (before it with --reversed)"},
  {"max_invoices", "num_max_invoices", T_U64, "at most this many (default 100)"},
  {"max", "num_max_invoices", T_U64, "same as --max_invoices"},
  {"reversed", "reversed", T_FLAG, "the newest invoices before --index_offset"},
  {"pending_only", "pending_only", T_FLAG, "open invoices only"},
  {0},
};
static const opt_t o_lookupset[] = {
  {"set_id", "set_id", T_HEX, "the AMP set id in hex"},
  {0},
};
static const opt_t o_listsets[] = {
  {"state", "state", T_STR, "settled or cancelled (default both)"},
  {"max", "max", T_U64, "at most this many (default 100)"},
  {"index_offset", "index_offset", T_U64, "start after this set index (before it with --reversed)"},
  {"reversed", "reversed", T_FLAG, "the newest sets before --index_offset"},
  {0},
};
static const opt_t o_settip[] = {
  {"height", "height", T_U64, "block height"},
  {0},
};
static const opt_t o_setloglevel[] = {
  {"level", "level", T_STR, "emerg alert crit err warning notice info debug"},
  {0},
};
static const opt_t o_none[] = {{0}};

static const cmd_t cmds[] = {
  {"getinfo", "getinfo", "version, node id, block height, uptime, workers, ports, data dir", "", o_none, NULL},
  {"stats", "stats", "counters per outcome and drop reason, per worker and summed; gauges; latencies",
   "", o_none, NULL},
  {"addinvoice", "addinvoice", "add an invoice: AMP (--amp) or MPP; prints payment_addr (and payment_hash)",
   "[--amp] [--amt SAT | --amt_msat MSAT] [--memo TEXT] [--expiry SEC] [--cltv_delta N] [--preimage HEX]",
   o_addinvoice, NULL},
  {"lookupinvoice", "lookupinvoice", "show an invoice with its sets and the amount paid",
   "--payment_addr HEX | --payment_hash HEX", o_invref, NULL},
  {"listinvoices", "listinvoices", "list invoices by add index, a page at a time",
   "[--index_offset N] [--max_invoices N] [--reversed] [--pending_only]", o_listinvoices, NULL},
  {"cancelinvoice", "cancelinvoice", "cancel an open invoice (its held HTLCs fail)",
   "--payment_addr HEX | --payment_hash HEX", o_invref, NULL},
  {"lookupset", "lookupset", "show an AMP set: state, HTLCs with amounts and child indexes, settle index",
   "--set_id HEX | SET_ID", o_lookupset, "set_id"},
  {"listsets", "listsets", "list settled and cancelled sets, a page at a time",
   "[--state settled|cancelled] [--max N] [--index_offset N] [--reversed]", o_listsets, NULL},
  {"listheld", "listheld", "HTLCs held now, per set, with age and time left", "", o_none, NULL},
  {"settip", "settip", "set the block height", "HEIGHT | --height HEIGHT", o_settip, "height"},
  {"setloglevel", "setloglevel", "change the log level at run time", "LEVEL | --level LEVEL",
   o_setloglevel, "level"},
  {"getconfig", "getconfig", "the configuration in effect (secrets hidden)", "", o_none, NULL},
  {"stop", "stop", "stop ampd gracefully (as SIGTERM)", "", o_none, NULL},
  {"metrics", "metrics", "print the Prometheus text exposition", "", o_none, NULL},
  {"call", NULL, "send any method with JSON params: ampctl call METHOD '{\"k\":v}'",
   "METHOD [JSON-PARAMS]", o_none, NULL},
  {"help", NULL, "list the commands, or show one: ampctl help COMMAND", "[COMMAND]", o_none, NULL},
};
#define NCMDS (sizeof cmds / sizeof cmds[0])

static const char *prog = "ampctl";

__attribute__((format(printf, 1, 2), noreturn))
static void usage_fail(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n(%s help lists the commands)\n", prog);
  exit(2);
}

static void print_help(FILE *f) {
  fprintf(f, "usage: %s [--socket PATH | --data-dir DIR] [--timeout SEC] COMMAND [ARGS]\n\n"
             "  --socket PATH    the admin socket (default DIR/" SOCKET_NAME ")\n"
             "  --data-dir DIR   ampd's data directory (default $AMPD_DATA_DIR or " DEFAULT_DATA_DIR ")\n"
             "  --timeout SEC    give up waiting for a reply after SEC seconds (default 60)\n\n"
             "commands:\n", prog);
  for (size_t i = 0; i < NCMDS; i++) fprintf(f, "  %-14s %s\n", cmds[i].name, cmds[i].summary);
}

static void print_cmd_help(const cmd_t *c) {
  printf("%s %s %s\n  %s\n", prog, c->name, c->args, c->summary);
  for (const opt_t *o = c->opts; o->flag; o++)
    printf("  --%-14s %s\n", o->flag, o->help);
}

static const cmd_t *find_cmd(const char *name) {
  for (size_t i = 0; i < NCMDS; i++)
    if (strcmp(cmds[i].name, name) == 0) return &cmds[i];
  return NULL;
}

static int parse_u64(const char *s, uint64_t *out) {
  if (!*s || *s == '-' || *s == '+') return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return -1;
  *out = v;
  return 0;
}

/* Builds the params object of a command from its arguments. */
static json_t *build_params(const cmd_t *c, int argc, char **argv) {
  json_t *p = json_object();
  int positional_used = 0;
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    const char *val = NULL;
    char flag[64];
    const opt_t *o = NULL;
    if (strncmp(arg, "--", 2) == 0) {
      const char *eq = strchr(arg + 2, '=');
      size_t n = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
      if (n == 0 || n >= sizeof flag) usage_fail("%s: bad flag '%s'", c->name, arg);
      memcpy(flag, arg + 2, n);
      flag[n] = 0;
      for (char *q = flag; *q; q++)
        if (*q == '-') *q = '_';
      for (const opt_t *k = c->opts; k->flag; k++)
        if (strcmp(k->flag, flag) == 0) o = k;
      if (!o) usage_fail("%s: unknown flag --%s", c->name, flag);
      if (o->type == T_FLAG) {
        if (eq) usage_fail("%s: --%s takes no value", c->name, flag);
      } else if (eq) {
        val = eq + 1;
      } else {
        if (i + 1 >= argc) usage_fail("%s: --%s needs a value", c->name, flag);
        val = argv[++i];
      }
    } else if (c->positional && !positional_used) {
      positional_used = 1;
      for (const opt_t *k = c->opts; k->flag; k++)
        if (strcmp(k->flag, c->positional) == 0) o = k;
      val = arg;
    } else {
      usage_fail("%s: unexpected argument '%s'", c->name, arg);
    }
    if (json_object_get(p, o->param))
      usage_fail("%s: --%s given twice (or with another flag for the same value)", c->name, o->flag);
    json_t *v = NULL;
    uint64_t u = 0;
    switch (o->type) {
    case T_FLAG: v = json_true(); break;
    case T_STR:
    case T_HEX: v = json_string(val); break;
    case T_U64:
      if (parse_u64(val, &u) || u > (uint64_t)INT64_MAX)
        usage_fail("%s: --%s expects a non-negative integer, got '%s'", c->name, o->flag, val);
      v = json_integer((json_int_t)u);
      break;
    case T_SAT:
      if (parse_u64(val, &u) || u > (uint64_t)INT64_MAX / 1000)
        usage_fail("%s: --%s expects a non-negative integer of satoshis, got '%s'", c->name, o->flag, val);
      v = json_integer((json_int_t)(u * 1000));
      break;
    }
    if (!v) usage_fail("%s: --%s: the value is not valid UTF-8", c->name, o->flag);
    json_object_set_new(p, o->param, v);
  }
  return p;
}

/* Sends one request and returns the parsed reply, or NULL (message printed). */
static json_t *rpc(const char *path, int timeout_s, const char *method, json_t *params) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sa.sun_path) {
    fprintf(stderr, "%s: socket path too long: %s\n", prog, path);
    return NULL;
  }
  strcpy(sa.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) { fprintf(stderr, "%s: socket: %s\n", prog, strerror(errno)); return NULL; }
  struct timeval tv = {.tv_sec = timeout_s};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    fprintf(stderr, "%s: cannot connect to %s: %s (is ampd running? use --socket or --data-dir)\n",
            prog, path, strerror(errno));
    close(fd);
    return NULL;
  }
  json_t *req = json_pack("{s:s, s:I, s:s, s:O}", "jsonrpc", "2.0", "id", (json_int_t)getpid(),
                          "method", method, "params", params);
  char *line = req ? json_dumps(req, JSON_COMPACT) : NULL;
  json_decref(req);
  if (!line) { fprintf(stderr, "%s: out of memory\n", prog); close(fd); return NULL; }
  size_t len = strlen(line), off = 0;
  line[len] = 0;
  while (off < len + 1) {
    const char *p = off < len ? line + off : "\n";
    size_t n = off < len ? len - off : 1;
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      fprintf(stderr, "%s: sending to %s: %s\n", prog, path, strerror(errno));
      free(line);
      close(fd);
      return NULL;
    }
    off += (size_t)w;
  }
  free(line);
  size_t cap = 65536, got = 0;
  char *buf = malloc(cap);
  char *nl = NULL;
  while (buf && !nl) {
    if (got + 1 >= cap) {
      if (cap >= MAX_REPLY) { fprintf(stderr, "%s: reply too large\n", prog); break; }
      char *q = realloc(buf, cap * 2);
      if (!q) break;
      buf = q;
      cap *= 2;
    }
    ssize_t r = recv(fd, buf + got, cap - 1 - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      fprintf(stderr, "%s: no reply from ampd: %s\n", prog,
              errno == EAGAIN ? "timed out (see --timeout)" : strerror(errno));
      break;
    }
    if (r == 0) {
      fprintf(stderr, "%s: ampd closed the connection without a reply\n", prog);
      break;
    }
    nl = memchr(buf + got, '\n', (size_t)r);
    got += (size_t)r;
  }
  close(fd);
  if (!nl) { free(buf); return NULL; }
  json_error_t err;
  json_t *reply = json_loadb(buf, (size_t)(nl - buf), 0, &err);
  free(buf);
  if (!reply) fprintf(stderr, "%s: ampd sent a reply that is not JSON: %s\n", prog, err.text);
  return reply;
}

int main(int argc, char **argv) {
  const char *socket_path = NULL, *data_dir = NULL;
  int timeout_s = 60;
  int i = 1;
  for (; i < argc && strncmp(argv[i], "-", 1) == 0; i++) {
    const char *a = argv[i];
    const char *eq = strchr(a, '=');
    size_t n = eq ? (size_t)(eq - a) : strlen(a);
    const char **dst = NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { print_help(stdout); return 0; }
    if (n == 8 && strncmp(a, "--socket", n) == 0) dst = &socket_path;
    else if (n == 10 && (strncmp(a, "--data-dir", n) == 0 || strncmp(a, "--data_dir", n) == 0)) dst = &data_dir;
    else if (n == 9 && strncmp(a, "--timeout", n) == 0) {
      const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
      uint64_t t;
      if (!v || parse_u64(v, &t) || t == 0 || t > 86400) usage_fail("--timeout expects seconds, 1 to 86400");
      timeout_s = (int)t;
      continue;
    } else {
      usage_fail("unknown option '%s'", a);
    }
    const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
    if (!v || !*v) usage_fail("%.*s needs a value", (int)n, a);
    *dst = v;
  }
  if (i >= argc) {
    print_help(stderr);
    return 2;
  }
  if (socket_path && data_dir) usage_fail("give --socket or --data-dir, not both");
  const char *name = argv[i++];
  const cmd_t *c = find_cmd(name);
  if (!c) usage_fail("unknown command '%s'", name);

  if (strcmp(c->name, "help") == 0) {
    if (i < argc) {
      const cmd_t *h = find_cmd(argv[i]);
      if (!h) usage_fail("unknown command '%s'", argv[i]);
      print_cmd_help(h);
    } else {
      print_help(stdout);
    }
    return 0;
  }

  const char *method;
  json_t *params;
  if (!c->method) {   /* call METHOD [JSON] */
    if (i >= argc) usage_fail("call: which method?");
    method = argv[i++];
    if (i < argc) {
      json_error_t err;
      params = json_loads(argv[i++], 0, &err);
      if (!params) usage_fail("call: the params are not JSON: %s", err.text);
    } else {
      params = json_object();
    }
    if (i < argc) usage_fail("call: unexpected argument '%s'", argv[i]);
  } else {
    method = c->method;
    params = build_params(c, argc - i, argv + i);
  }

  char pathbuf[4096];
  if (!socket_path) {
    if (!data_dir) data_dir = getenv("AMPD_DATA_DIR");
    if (!data_dir || !*data_dir) data_dir = DEFAULT_DATA_DIR;
    const char *home = getenv("HOME");
    if (data_dir[0] == '~' && (data_dir[1] == '/' || !data_dir[1]) && home && *home)
      snprintf(pathbuf, sizeof pathbuf, "%s%s/%s", home, data_dir + 1, SOCKET_NAME);
    else
      snprintf(pathbuf, sizeof pathbuf, "%s/%s", data_dir, SOCKET_NAME);
    socket_path = pathbuf;
  }
  json_t *reply = rpc(socket_path, timeout_s, method, params);
  json_decref(params);
  if (!reply) return 1;
  json_t *err = json_object_get(reply, "error");
  json_t *res = json_object_get(reply, "result");
  int rc = 0;
  if (err) {
    json_t *code = json_object_get(err, "code"), *msg = json_object_get(err, "message");
    fprintf(stderr, "%s: error %" JSON_INTEGER_FORMAT ": %s\n", prog, json_integer_value(code),
            json_is_string(msg) ? json_string_value(msg) : "(no message)");
    rc = 1;
  } else if (!res) {
    fprintf(stderr, "%s: ampd sent a reply with neither result nor error\n", prog);
    rc = 1;
  } else if (strcmp(method, "metrics") == 0 && c->method && json_is_string(res)) {
    fputs(json_string_value(res), stdout);
  } else {
    char *out = json_dumps(res, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (out) {
      puts(out);
      free(out);
    }
  }
  json_decref(reply);
  if (fflush(stdout) != 0) rc = 1;
  return rc;
}
