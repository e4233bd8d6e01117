/* ampd-onion: build, peel and answer BOLT #4 onions from the command line,
 * over the same crypto/ code the daemon runs. For tests, vectors and
 * operators poking at an HTLC by hand.
 *
 *   ampd-onion build --session-key HEX --assoc-data HEX --hop PUBKEY:PAYLOAD ...
 *   ampd-onion peel --node-key HEX --assoc-data HEX --onion HEX
 *   ampd-onion fail --shared-secret HEX --failure HEX
 *   ampd-onion wrap --shared-secret HEX --packet HEX
 *   ampd-onion decode-fail --shared-secret HEX ... --packet HEX
 *   ampd-onion amp-derive --root HEX --share HEX --index N
 *
 * Exit status: 0 done, 1 the input was well-formed but the operation failed
 * (an onion that does not peel, a key off the curve, a packet no hop
 * authenticates), 2 usage error (unknown or missing argument, bad hex, wrong
 * length). Secrets given as arguments (node key, session key) are never
 * printed, not even in error messages, and are wiped after use.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp_child.h"
#include "amp_secp.h"
#include "amp_sphinx.h"
#include "amp_tlv.h"
#include "amp_util.h"

#define MAX_HOPS 27
#define MAX_ASSOC 4096
#define MAX_SECRETS 64

static const char usage_text[] =
    "usage: ampd-onion COMMAND [OPTIONS]\n"
    "\n"
    "  build --session-key HEX --assoc-data HEX --hop PUBKEY_HEX:PAYLOAD_HEX [--hop ...]\n"
    "      Print the 1366-byte onion as hex. PAYLOAD_HEX is the hop's TLV stream\n"
    "      (the BigSize length is added here). 1 to 27 hops, in route order.\n"
    "  peel --node-key HEX --assoc-data HEX --onion HEX\n"
    "      Print {payload, final, next_onion, shared_secret} as JSON. On failure\n"
    "      exit 1 with {error, failure_code, sha256_of_onion}.\n"
    "  fail --shared-secret HEX --failure HEX\n"
    "      Print the failure packet the erring hop sends (FAILURE = code || data).\n"
    "  wrap --shared-secret HEX --packet HEX\n"
    "      Print the packet after this hop's obfuscation (a forwarding hop).\n"
    "  decode-fail --shared-secret HEX [--shared-secret HEX ...] --packet HEX\n"
    "      Sender side: hops' secrets in route order. Print {hop_index,\n"
    "      failure_code, failure_message}; exit 1 if no hop authenticates it.\n"
    "  amp-derive --root HEX --share HEX --index N\n"
    "      Print the AMP child {preimage, hash} as JSON.\n"
    "\n"
    "Exit status: 0 ok, 1 operation failed, 2 usage error.\n";

static int usage_error(const char *fmt, const char *arg) {
  fputs("ampd-onion: ", stderr);
  fprintf(stderr, fmt, arg);
  fputs("\n(ampd-onion --help for usage)\n", stderr);
  return 2;
}

/* Decodes hex of an option into out; exact > 0 demands that many bytes.
 * Returns the byte count or -1 after printing a usage error (the value is
 * never echoed: it may be a secret). */
static long opt_hex(uint8_t *out, size_t cap, const char *opt, const char *hex, size_t exact) {
  long n = amp_hex_decode_var(out, cap, hex);
  if (n < 0) {
    usage_error(n == AMP_ERR_OVERFLOW ? "%s: value too long" : "%s: not valid hex", opt);
    return -1;
  }
  if (exact && (size_t)n != exact) {
    fprintf(stderr, "ampd-onion: %s: want %zu bytes, got %ld\n(ampd-onion --help for usage)\n",
            opt, exact, n);
    return -1;
  }
  return n;
}

static void print_hex(const uint8_t *p, size_t n) {
  static char buf[2 * (AMP_FAIL_MAX_LEN + AMP_ONION_LEN) + 1];
  fputs(amp_hex_encode(buf, p, n), stdout);
}

/* The options of one command: a name and where its value(s) go. */
typedef struct {
  const char *name;
  int repeat;          /* may be given more than once */
  const char **val;    /* single */
  const char **vals;   /* repeatable: array of cap entries */
  size_t cap;
  size_t *count;
} opt_t;

/* Parses argv[2..] against opts. Returns 0 or 2 (usage error printed). */
static int parse_opts(int argc, char **argv, opt_t *opts, size_t n_opts) {
  for (int i = 2; i < argc; i++) {
    opt_t *o = NULL;
    for (size_t k = 0; k < n_opts; k++)
      if (!strcmp(argv[i], opts[k].name)) o = &opts[k];
    if (!o) {
      /* Echo option names only: a stray word may be a secret. */
      if (strncmp(argv[i], "--", 2)) return usage_error("unexpected value (options are --name VALUE)", NULL);
      return usage_error("unknown option '%s'", argv[i]);
    }
    if (i + 1 >= argc) return usage_error("%s needs a value", o->name);
    const char *v = argv[++i];
    if (o->repeat) {
      if (*o->count >= o->cap) return usage_error("too many %s", o->name);
      o->vals[(*o->count)++] = v;
    } else {
      if (*o->val) return usage_error("%s given twice", o->name);
      *o->val = v;
    }
  }
  for (size_t k = 0; k < n_opts; k++) {
    if (opts[k].repeat ? *opts[k].count == 0 : *opts[k].val == NULL)
      return usage_error("missing %s", opts[k].name);
  }
  return 0;
}

static int cmd_build(int argc, char **argv) {
  const char *sk_hex = NULL, *ad_hex = NULL, *hop_arg[MAX_HOPS + 1];
  size_t n_hops = 0;
  opt_t opts[] = {
      {"--session-key", 0, &sk_hex, NULL, 0, NULL},
      {"--assoc-data", 0, &ad_hex, NULL, 0, NULL},
      {"--hop", 1, NULL, hop_arg, MAX_HOPS + 1, &n_hops},
  };
  int rc = parse_opts(argc, argv, opts, 3);
  if (rc) return rc;
  if (n_hops > MAX_HOPS) return usage_error("%s: at most 27 hops", "--hop");

  static uint8_t payload[MAX_HOPS][AMP_ONION_PAYLOADS_LEN];
  static uint8_t pub[MAX_HOPS][AMP_PUBKEY_LEN];
  const uint8_t *pl[MAX_HOPS];
  size_t len[MAX_HOPS];
  uint8_t sk[32], ad[MAX_ASSOC], onion[AMP_ONION_LEN];
  long ad_len;
  if (opt_hex(sk, sizeof sk, "--session-key", sk_hex, 32) < 0) return 2;
  if ((ad_len = opt_hex(ad, sizeof ad, "--assoc-data", ad_hex, 0)) < 0) goto usage;
  for (size_t i = 0; i < n_hops; i++) {
    char pk_hex[2 * AMP_PUBKEY_LEN + 1];
    const char *colon = strchr(hop_arg[i], ':');
    size_t pk_len = colon ? (size_t)(colon - hop_arg[i]) : 0;
    if (!colon || pk_len != 2 * AMP_PUBKEY_LEN) {
      usage_error("--hop '%s': want PUBKEY_HEX(33 bytes):PAYLOAD_HEX", hop_arg[i]);
      goto usage;
    }
    memcpy(pk_hex, hop_arg[i], pk_len);
    pk_hex[pk_len] = 0;
    long n;
    if (opt_hex(pub[i], AMP_PUBKEY_LEN, "--hop pubkey", pk_hex, AMP_PUBKEY_LEN) < 0) goto usage;
    if ((n = opt_hex(payload[i], AMP_ONION_PAYLOADS_LEN, "--hop payload", colon + 1, 0)) < 0)
      goto usage;
    pl[i] = payload[i];
    len[i] = (size_t)n;
  }
  rc = amp_sphinx_build(onion, sk, (const uint8_t(*)[AMP_PUBKEY_LEN])pub, pl, len, n_hops, ad,
                        (size_t)ad_len, NULL);
  amp_wipe(sk, sizeof sk);
  if (rc != AMP_OK) {
    fprintf(stderr, "ampd-onion: build: %s\n", amp_strerror(rc));
    return 1;
  }
  print_hex(onion, sizeof onion);
  putchar('\n');
  return 0;
usage:
  amp_wipe(sk, sizeof sk);
  return 2;
}

static int cmd_peel(int argc, char **argv) {
  const char *nk_hex = NULL, *ad_hex = NULL, *on_hex = NULL;
  opt_t opts[] = {
      {"--node-key", 0, &nk_hex, NULL, 0, NULL},
      {"--assoc-data", 0, &ad_hex, NULL, 0, NULL},
      {"--onion", 0, &on_hex, NULL, 0, NULL},
  };
  int rc = parse_opts(argc, argv, opts, 3);
  if (rc) return rc;
  static amp_sphinx_hop_t hop;
  uint8_t nk[32], ad[MAX_ASSOC], onion[AMP_ONION_LEN];
  long ad_len;
  if (opt_hex(nk, sizeof nk, "--node-key", nk_hex, 32) < 0) return 2;
  if ((ad_len = opt_hex(ad, sizeof ad, "--assoc-data", ad_hex, 0)) < 0 ||
      opt_hex(onion, sizeof onion, "--onion", on_hex, AMP_ONION_LEN) < 0) {
    amp_wipe(nk, sizeof nk);
    return 2;
  }
  if (amp_secp_seckey_verify(nk) != AMP_OK) {
    amp_wipe(nk, sizeof nk);
    return usage_error("%s: not a valid secret key", "--node-key");
  }
  rc = amp_sphinx_peel(&hop, nk, ad, (size_t)ad_len, onion);
  amp_wipe(nk, sizeof nk);
  if (rc != AMP_OK) {
    /* A payload failure is answered with invalid_onion_payload inside a
     * failure onion; the others with update_fail_malformed_htlc. */
    unsigned code = rc == AMP_ERR_PAYLOAD ? AMP_FAIL_INVALID_ONION_PAYLOAD : hop.failure_code;
    printf("{\"error\": \"%s\", \"failure_code\": %u, \"sha256_of_onion\": \"", amp_strerror(rc),
           code);
    print_hex(hop.sha256_of_onion, 32);
    printf("\"}\n");
    amp_wipe(&hop, sizeof hop);
    return 1;
  }
  printf("{\"payload\": \"");
  print_hex(hop.payload, hop.payload_len);
  printf("\", \"final\": %s, \"next_onion\": ", hop.is_final ? "true" : "false");
  if (hop.is_final) {
    printf("null");
  } else {
    uint8_t next[AMP_ONION_LEN];
    amp_sphinx_next_onion(next, &hop);
    putchar('"');
    print_hex(next, sizeof next);
    putchar('"');
  }
  printf(", \"shared_secret\": \"");
  print_hex(hop.shared_secret, 32);
  printf("\"}\n");
  amp_wipe(&hop, sizeof hop);
  return 0;
}

static int cmd_fail(int argc, char **argv) {
  const char *ss_hex = NULL, *f_hex = NULL;
  opt_t opts[] = {
      {"--shared-secret", 0, &ss_hex, NULL, 0, NULL},
      {"--failure", 0, &f_hex, NULL, 0, NULL},
  };
  int rc = parse_opts(argc, argv, opts, 2);
  if (rc) return rc;
  uint8_t ss[32], msg[AMP_FAIL_MAX_LEN], pkt[AMP_FAIL_MAX_LEN];
  long msg_len;
  if ((msg_len = opt_hex(msg, sizeof msg, "--failure", f_hex, 0)) < 0) return 2;
  if (msg_len < 2) return usage_error("%s: want at least the 2-byte failure code", "--failure");
  if (opt_hex(ss, sizeof ss, "--shared-secret", ss_hex, 32) < 0) return 2;
  long len = amp_sphinx_fail_create(pkt, sizeof pkt, ss, msg, (size_t)msg_len);
  amp_wipe(ss, sizeof ss);
  if (len < 0) {
    fprintf(stderr, "ampd-onion: fail: %s\n", amp_strerror((int)len));
    return 1;
  }
  print_hex(pkt, (size_t)len);
  putchar('\n');
  return 0;
}

static int cmd_wrap(int argc, char **argv) {
  const char *ss_hex = NULL, *p_hex = NULL;
  opt_t opts[] = {
      {"--shared-secret", 0, &ss_hex, NULL, 0, NULL},
      {"--packet", 0, &p_hex, NULL, 0, NULL},
  };
  int rc = parse_opts(argc, argv, opts, 2);
  if (rc) return rc;
  uint8_t ss[32], pkt[AMP_FAIL_MAX_LEN];
  long len;
  if ((len = opt_hex(pkt, sizeof pkt, "--packet", p_hex, 0)) < 0) return 2;
  if (len == 0) return usage_error("%s: empty", "--packet");
  if (opt_hex(ss, sizeof ss, "--shared-secret", ss_hex, 32) < 0) return 2;
  amp_sphinx_fail_wrap(pkt, (size_t)len, ss);
  amp_wipe(ss, sizeof ss);
  print_hex(pkt, (size_t)len);
  putchar('\n');
  return 0;
}

static int cmd_decode_fail(int argc, char **argv) {
  const char *ss_hex[MAX_SECRETS + 1], *p_hex = NULL;
  size_t n = 0;
  opt_t opts[] = {
      {"--shared-secret", 1, NULL, ss_hex, MAX_SECRETS + 1, &n},
      {"--packet", 0, &p_hex, NULL, 0, NULL},
  };
  int rc = parse_opts(argc, argv, opts, 2);
  if (rc) return rc;
  if (n > MAX_SECRETS) return usage_error("%s: too many", "--shared-secret");
  static uint8_t ss[MAX_SECRETS][32];
  uint8_t pkt[AMP_FAIL_MAX_LEN];
  long len;
  if ((len = opt_hex(pkt, sizeof pkt, "--packet", p_hex, 0)) < 0) return 2;
  for (size_t i = 0; i < n; i++) {
    if (opt_hex(ss[i], 32, "--shared-secret", ss_hex[i], 32) < 0) {
      amp_wipe(ss, sizeof ss);
      return 2;
    }
  }
  size_t hop = 0, msg_len = 0;
  const uint8_t *msg = NULL;
  rc = amp_sphinx_fail_decode_var(&hop, &msg, &msg_len, pkt, (size_t)len,
                                  (const uint8_t(*)[32])ss, n);
  amp_wipe(ss, sizeof ss);
  if (rc != AMP_OK) {
    printf("{\"error\": \"%s\"}\n", amp_strerror(rc));
    return 1;
  }
  printf("{\"hop_index\": %zu, \"failure_code\": ", hop);
  if (msg_len >= 2) printf("%u", (unsigned)amp_be16(msg));
  else printf("null");
  printf(", \"failure_message\": \"");
  print_hex(msg, msg_len);
  printf("\"}\n");
  return 0;
}

static int cmd_amp_derive(int argc, char **argv) {
  const char *r_hex = NULL, *s_hex = NULL, *i_str = NULL;
  opt_t opts[] = {
      {"--root", 0, &r_hex, NULL, 0, NULL},
      {"--share", 0, &s_hex, NULL, 0, NULL},
      {"--index", 0, &i_str, NULL, 0, NULL},
  };
  int rc = parse_opts(argc, argv, opts, 3);
  if (rc) return rc;
  uint8_t root[32], share[32];
  char *end;
  errno = 0;
  unsigned long long idx = strtoull(i_str, &end, 10);
  if (errno || end == i_str || *end || i_str[0] == '-' || i_str[0] == '+' || idx > 0xffffffffULL)
    return usage_error("--index '%s': want a decimal 0..4294967295", i_str);
  if (opt_hex(root, 32, "--root", r_hex, 32) < 0) return 2;
  if (opt_hex(share, 32, "--share", s_hex, 32) < 0) {
    amp_wipe(root, sizeof root);
    return 2;
  }
  amp_child_t c;
  amp_child_derive(&c, root, share, (uint32_t)idx);
  printf("{\"preimage\": \"");
  print_hex(c.preimage, 32);
  printf("\", \"hash\": \"");
  print_hex(c.hash, 32);
  printf("\"}\n");
  amp_wipe(root, sizeof root);
  amp_wipe(share, sizeof share);
  amp_wipe(&c, sizeof c);
  return 0;
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*fn)(int, char **);
  } cmds[] = {
      {"build", cmd_build},   {"peel", cmd_peel},
      {"fail", cmd_fail},     {"wrap", cmd_wrap},
      {"decode-fail", cmd_decode_fail}, {"amp-derive", cmd_amp_derive},
  };
  if (argc < 2) {
    fputs(usage_text, stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    fputs(usage_text, stdout);
    return 0;
  }
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    if (strcmp(argv[1], cmds[i].name)) continue;
    for (int k = 2; k < argc; k++) {
      if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
        fputs(usage_text, stdout);
        return 0;
      }
    }
    int rc = amp_secp_init();
    if (rc != AMP_OK) {
      fprintf(stderr, "ampd-onion: secp256k1 init: %s\n", amp_strerror(rc));
      return 1;
    }
    rc = cmds[i].fn(argc, argv);
    if (fflush(stdout) != 0) return 1;
    return rc;
  }
  return usage_error("unknown command '%s'", argv[1]);
}
