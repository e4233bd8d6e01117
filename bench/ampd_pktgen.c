/* ampd-pktgen: builds AMP traffic for ampd as a pcap of fabric frames, and
 * the expectations file that ampd-check holds ampd's replies against.
 * The work is done by amp_gen (amp_gen.h); this file is options and files. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include "amp_gen.h"
#include "amp_secp.h"

static void usage(FILE *f) {
  fprintf(f,
"usage: ampd-pktgen --node-pubkey HEX | --node-key-file PATH\n"
"                   --gateway ID:KEY[:MAC[:IPV4]] [--gateway ...] --pcap OUT.pcap [options]\n"
"\n"
"Builds N AMP payments to the node as fabric frames (DESIGN.md section 2: Ethernet /\n"
"IPv4 / UDP 9736 / AMPF header, records, HMAC tag) in a classic pcap (LINKTYPE_ETHERNET)\n"
"for net_pcap, tcpreplay or any pcap replayer, and an expectations file (JSON lines:\n"
"per HTLC the gateway, scid, htlc id, class and the answer ampd must give) for\n"
"ampd-check. The first frame is a `tip` (block height) from the first gateway.\n"
"\n"
"Node and gateways:\n"
"  --node-pubkey HEX        the node's 33-byte compressed public key\n"
"  --node-key-file PATH     or the node key file (32 bytes hex) to derive it from\n"
"  --gateway ID:KEY[:MAC[:IPV4]]  a gateway (repeat for several; HTLCs are spread over\n"
"                           all gateways' channels). ID decimal or 0x hex, KEY 64 hex\n"
"                           digits. MAC and IPv4 default to 02:00:00:00:00:NN and\n"
"                           198.18.0.NN (NN = 1, 2, ... in order): addresses of the\n"
"                           198.18.0.0/15 benchmarking range, only ever inside frames.\n"
"  --ampd-mac MAC           destination MAC (default 02:a0:00:00:00:01)\n"
"  --ampd-ip IPV4           destination IPv4 (default 198.19.0.1)\n"
"  --channels N             channels per gateway (default 8); channel c of gateway g\n"
"                           has scid (BLOCK+g)x(c)x0, i.e. (BLOCK+g)<<40 | c<<16\n"
"  --scid-block N           BLOCK above (default 700000)\n"
"  --htlc-id-base N         first htlc id of every channel (default 0); ids grow by one\n"
"                           per HTLC per channel, in the order frames leave\n"
"  --seq-base N             first frame seq of every gateway (default 1); raise it to\n"
"                           replay into an ampd that has seen earlier seqs\n"
"\n"
"Payments:\n"
"  -n, --payments N         number of payments (default 1000)\n"
"  --shards N | A-B         shards per payment, fixed or uniform in [A, B] (default 3)\n"
"  --shards-dist N:W,...    shards drawn with weights, e.g. 1:50,3:30,16:20\n"
"  --amount MSAT | A-B      total_msat per payment, fixed or uniform\n"
"                           (default 10000-10000000); split at random over the shards\n"
"  --payment-addr HEX       pay this AMP invoice (32 bytes) with every payment; by\n"
"                           default each payment has its own random payment_addr and\n"
"                           relies on ampd's accept-amp (spontaneous AMP)\n"
"  --height H               block height sent in the tip frame (default 800000)\n"
"  --cltv-delta D           final cltv_expiry = H + D (default 144; ampd rejects < 19)\n"
"  --route-len K            K = 1 (default): one-hop onions to the node. K > 1: the node\n"
"                           is the first of K hops (the others random keys), so ampd\n"
"                           must forward; expectation `forward`. Forward tests only.\n"
"  --fwd-fee-msat F         fee per forwarding hop for K > 1 (default 1000)\n"
"  --fwd-cltv-delta D       cltv delta per forwarding hop for K > 1 (default 40)\n"
"  --seed S                 seed of every random value (default: random, printed);\n"
"                           the same options and seed give the same bytes\n"
"\n"
"Frames:\n"
"  --records R              update_add_htlc records per frame (default 1, at most 64;\n"
"                           a frame also ends when the 9000-byte MTU is reached)\n"
"  --interleave W           W payments in flight whose HTLCs interleave (default 1:\n"
"                           one payment's shards back to back)\n"
"  --threads T              threads building onions (default: one per online CPU;\n"
"                           0: none besides the main one). The output does not\n"
"                           depend on T\n"
"\n"
"Bad traffic (RATE = fraction of payments, 0..1; the rates sum to at most 1; each\n"
"payment gets at most one class). Expected answers follow DESIGN.md section 1:\n"
"  --missing-shard RATE     one shard (of n >= 2) is never sent: the others are held\n"
"                           and each fails on its hold timer with mpp_timeout (23)\n"
"  --wrong-share RATE       one shard carries a random share: the set completes,\n"
"                           reconstruction fails, every HTLC of the set fails with\n"
"                           incorrect_or_unknown_payment_details (PERM|15)\n"
"  --underpaid RATE         the shards sum to less than total_msat: all held, each\n"
"                           fails with mpp_timeout (23)\n"
"  --replayed-onion RATE    a shard's update_add_htlc again (same onion and hash) under\n"
"                           a new htlc id, right after the original: the copy fails\n"
"                           with incorrect_or_unknown_payment_details, the set settles\n"
"  The next classes add one extra shard (a valid child of the payment's root, index n)\n"
"  that is bad in one way; the payment's own shards settle. The extra one gets:\n"
"  --flipped-bit RATE       one bit of its onion flipped: update_fail_malformed_htlc,\n"
"                           invalid_onion_hmac (BADONION|PERM|5), sha256_of_onion\n"
"  --bad-tag RATE           alone in a frame with a corrupted tag: dropped, no answer\n"
"  --unknown-gateway RATE   alone in a frame from an unconfigured gateway id: dropped,\n"
"                           no answer\n"
"  --mismatched-total RATE  a larger total_msat than its siblings', sent between them:\n"
"                           incorrect_or_unknown_payment_details (rule 6)\n"
"  --expired-cltv RATE      cltv_expiry = H + 2, below H + 19: incorrect_or_unknown_\n"
"                           payment_details (rule 7)\n"
"  --malformed-tlv RATE     a final-hop payload that breaks the TLV rules (unknown even\n"
"                           type, non-minimal integer, order, record length) inside a\n"
"                           good onion: invalid_onion_payload (PERM|22) in a failure onion\n"
"  --bad-mix RATE           RATE spread evenly over all ten classes\n"
"  mpp_timeout answers come only after ampd's hold timeout (default 120 s): run ampd\n"
"  with a short --hold-timeout-ms, or check with ampd-check --timeouts-ok.\n"
"\n"
"Output:\n"
"  -o, --pcap PATH          the pcap to write (required)\n"
"  --expect PATH            the expectations file (default PATH.expect); mode 0600:\n"
"                           it holds the gateway keys and every preimage\n"
"  -q, --quiet              no progress (otherwise every second on stderr) or summary\n"
"  -h, --help               this text\n");
}

enum {
  OPT_NODE_PUBKEY = 256, OPT_NODE_KEY_FILE, OPT_GATEWAY, OPT_AMPD_MAC, OPT_AMPD_IP, OPT_CHANNELS,
  OPT_SCID_BLOCK, OPT_HTLC_ID_BASE, OPT_SEQ_BASE, OPT_SHARDS, OPT_SHARDS_DIST, OPT_AMOUNT,
  OPT_PAYMENT_ADDR, OPT_HEIGHT, OPT_CLTV_DELTA, OPT_ROUTE_LEN, OPT_FWD_FEE, OPT_FWD_CLTV,
  OPT_SEED, OPT_RECORDS, OPT_INTERLEAVE, OPT_THREADS, OPT_EXPECT, OPT_BAD_MIX,
  OPT_CLASS_BASE = 512, /* + class */
};

static int die(const char *fmt, const char *a) {
  fprintf(stderr, "ampd-pktgen: ");
  fprintf(stderr, fmt, a);
  fprintf(stderr, "\n");
  return 2;
}

static int num(uint64_t *v, const char *s, uint64_t max) {
  char *e;
  errno = 0;
  if (!s || *s == '-' || !*s) return -1;
  unsigned long long x = strtoull(s, &e, 0);
  if (errno || *e || x > max) return -1;
  *v = x;
  return 0;
}

static int rate(double *r, const char *s) {
  char *e;
  errno = 0;
  double x = strtod(s, &e);
  if (errno || *e || !(x >= 0 && x <= 1)) return -1;
  *r = x;
  return 0;
}

/* read_key_file reads 64 hex digits (surrounding whitespace allowed). */
static int read_key_file(uint8_t key[32], const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char buf[160];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = buf;
  while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
  char *e = p;
  while (*e && *e != ' ' && *e != '\n' && *e != '\t' && *e != '\r') e++;
  char *t = e;
  while (*t == ' ' || *t == '\n' || *t == '\t' || *t == '\r') t++;
  *e = 0;
  int ok = !*t && strlen(p) == 64 && amp_hex_decode_var(key, 32, p) == 32;
  amp_wipe(buf, sizeof buf);
  return ok ? 0 : -1;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  amp_gen_cfg_t cfg;
  amp_gen_cfg_default(&cfg);
  const char *pcap_path = NULL, *expect_path = NULL;
  int have_node = 0, have_seed = 0, have_threads = 0, quiet = 0;
  char err[256];
  uint64_t v, lo, hi;

  struct option opts[64 + AMP_GEN_CLASS_COUNT];
  size_t no = 0;
#define OPT_(name, has, val) opts[no++] = (struct option){name, has, NULL, val}
  OPT_("node-pubkey", 1, OPT_NODE_PUBKEY);
  OPT_("node-key-file", 1, OPT_NODE_KEY_FILE);
  OPT_("gateway", 1, OPT_GATEWAY);
  OPT_("ampd-mac", 1, OPT_AMPD_MAC);
  OPT_("ampd-ip", 1, OPT_AMPD_IP);
  OPT_("channels", 1, OPT_CHANNELS);
  OPT_("scid-block", 1, OPT_SCID_BLOCK);
  OPT_("htlc-id-base", 1, OPT_HTLC_ID_BASE);
  OPT_("seq-base", 1, OPT_SEQ_BASE);
  OPT_("payments", 1, 'n');
  OPT_("shards", 1, OPT_SHARDS);
  OPT_("shards-dist", 1, OPT_SHARDS_DIST);
  OPT_("amount", 1, OPT_AMOUNT);
  OPT_("payment-addr", 1, OPT_PAYMENT_ADDR);
  OPT_("height", 1, OPT_HEIGHT);
  OPT_("cltv-delta", 1, OPT_CLTV_DELTA);
  OPT_("route-len", 1, OPT_ROUTE_LEN);
  OPT_("fwd-fee-msat", 1, OPT_FWD_FEE);
  OPT_("fwd-cltv-delta", 1, OPT_FWD_CLTV);
  OPT_("seed", 1, OPT_SEED);
  OPT_("records", 1, OPT_RECORDS);
  OPT_("interleave", 1, OPT_INTERLEAVE);
  OPT_("threads", 1, OPT_THREADS);
  OPT_("pcap", 1, 'o');
  OPT_("expect", 1, OPT_EXPECT);
  OPT_("bad-mix", 1, OPT_BAD_MIX);
  OPT_("quiet", 0, 'q');
  OPT_("help", 0, 'h');
  for (int k = 1; k < AMP_GEN_CLASS_COUNT; k++) OPT_(amp_gen_class_flag(k), 1, OPT_CLASS_BASE + k);
  opts[no] = (struct option){NULL, 0, NULL, 0};
#undef OPT_

  int o;
  while ((o = getopt_long(argc, argv, "n:o:qh", opts, NULL)) != -1) {
    switch (o) {
    case OPT_NODE_PUBKEY:
      if (strlen(optarg) != 66 || amp_hex_decode_var(cfg.node_pubkey, 33, optarg) != 33)
        return die("--node-pubkey '%s': want 66 hex digits (a compressed key)", optarg);
      have_node = 1;
      break;
    case OPT_NODE_KEY_FILE: {
      uint8_t sk[32];
      amp_pubkey_t pk;
      if (read_key_file(sk, optarg))
        return die("--node-key-file %s: cannot read 64 hex digits from it", optarg);
      if (amp_secp_init() != AMP_OK || amp_secp_pubkey_create(&pk, sk) != AMP_OK) {
        amp_wipe(sk, sizeof sk);
        return die("--node-key-file %s: not a valid secret key", optarg);
      }
      amp_wipe(sk, sizeof sk);
      amp_secp_pubkey_serialize(cfg.node_pubkey, &pk);
      have_node = 1;
      break;
    }
    case OPT_GATEWAY:
      if (cfg.n_gw == AMP_GEN_MAX_GATEWAYS) return die("at most %s gateways", "64");
      if (amp_gen_parse_gateway(&cfg.gw[cfg.n_gw], cfg.n_gw, optarg, err, sizeof err))
        return die("--%s", err);
      cfg.n_gw++;
      break;
    case OPT_AMPD_MAC:
      if (amp_gen_parse_mac(cfg.ampd_mac, optarg)) return die("--ampd-mac '%s': want aa:bb:cc:dd:ee:ff", optarg);
      break;
    case OPT_AMPD_IP:
      if (amp_gen_parse_ipv4(cfg.ampd_ip, optarg)) return die("--ampd-ip '%s': want a.b.c.d", optarg);
      break;
    case OPT_CHANNELS:
      if (num(&v, optarg, 65536) || v < 1) return die("--channels '%s': 1 to 65536", optarg);
      cfg.channels_per_gw = (uint32_t)v;
      break;
    case OPT_SCID_BLOCK:
      if (num(&v, optarg, (1u << 24) - 1)) return die("--scid-block '%s': 0 to 2^24-1", optarg);
      cfg.scid_block = (uint32_t)v;
      break;
    case OPT_HTLC_ID_BASE:
      if (num(&v, optarg, UINT64_MAX / 2)) return die("--htlc-id-base '%s': a number", optarg);
      cfg.htlc_id_base = v;
      break;
    case OPT_SEQ_BASE:
      if (num(&v, optarg, UINT64_MAX / 2) || v < 1) return die("--seq-base '%s': a number >= 1", optarg);
      cfg.seq_base = v;
      break;
    case 'n':
      if (num(&v, optarg, UINT64_MAX / 2)) return die("--payments '%s': a number", optarg);
      cfg.payments = v;
      break;
    case OPT_SHARDS:
      if (amp_gen_parse_shards(&cfg, optarg, err, sizeof err)) return die("--%s", err);
      break;
    case OPT_SHARDS_DIST:
      if (amp_gen_parse_shards_dist(&cfg, optarg, err, sizeof err)) return die("--%s", err);
      break;
    case OPT_AMOUNT:
      if (amp_gen_parse_range(&lo, &hi, optarg) || lo < 1)
        return die("--amount '%s': want MSAT or A-B with 1 <= A <= B", optarg);
      cfg.amt_min = lo;
      cfg.amt_max = hi;
      break;
    case OPT_PAYMENT_ADDR:
      if (strlen(optarg) != 64 || amp_hex_decode_var(cfg.payment_addr, 32, optarg) != 32)
        return die("--payment-addr '%s': want 64 hex digits", optarg);
      cfg.fixed_addr = 1;
      break;
    case OPT_HEIGHT:
      if (num(&v, optarg, UINT32_MAX)) return die("--height '%s': a 32-bit number", optarg);
      cfg.height = (uint32_t)v;
      break;
    case OPT_CLTV_DELTA:
      if (num(&v, optarg, 1u << 20) || v < 1) return die("--cltv-delta '%s': 1 to 2^20", optarg);
      cfg.cltv_delta = (uint32_t)v;
      break;
    case OPT_ROUTE_LEN:
      if (num(&v, optarg, AMP_GEN_MAX_HOPS) || v < 1) return die("--route-len '%s': 1 to 20", optarg);
      cfg.route_len = (uint32_t)v;
      break;
    case OPT_FWD_FEE:
      if (num(&v, optarg, 1ull << 40)) return die("--fwd-fee-msat '%s': a number", optarg);
      cfg.fwd_fee_msat = v;
      break;
    case OPT_FWD_CLTV:
      if (num(&v, optarg, 1u << 16)) return die("--fwd-cltv-delta '%s': 0 to 65536", optarg);
      cfg.fwd_cltv_delta = (uint32_t)v;
      break;
    case OPT_SEED:
      if (num(&v, optarg, UINT64_MAX)) return die("--seed '%s': a 64-bit number", optarg);
      cfg.seed = v;
      have_seed = 1;
      break;
    case OPT_RECORDS:
      if (num(&v, optarg, AMP_FRAME_MAX_RECORDS) || v < 1) return die("--records '%s': 1 to 64", optarg);
      cfg.records_per_frame = (uint32_t)v;
      break;
    case OPT_INTERLEAVE:
      if (num(&v, optarg, 65536) || v < 1) return die("--interleave '%s': 1 to 65536", optarg);
      cfg.interleave = (uint32_t)v;
      break;
    case OPT_THREADS:
      if (num(&v, optarg, 256)) return die("--threads '%s': 0 to 256", optarg);
      cfg.threads = (uint32_t)v;
      have_threads = 1;
      break;
    case 'o': pcap_path = optarg; break;
    case OPT_EXPECT: expect_path = optarg; break;
    case OPT_BAD_MIX: {
      double r;
      if (rate(&r, optarg)) return die("--bad-mix '%s': a fraction 0..1", optarg);
      for (int k = 1; k < AMP_GEN_CLASS_COUNT; k++) cfg.rate[k] = r / (AMP_GEN_CLASS_COUNT - 1);
      break;
    }
    case 'q': quiet = 1; break;
    case 'h': usage(stdout); return 0;
    default:
      if (o >= OPT_CLASS_BASE && o < OPT_CLASS_BASE + AMP_GEN_CLASS_COUNT) {
        if (rate(&cfg.rate[o - OPT_CLASS_BASE], optarg))
          return die("rate '%s': a fraction 0..1", optarg);
        break;
      }
      usage(stderr);
      return 2;
    }
  }
  if (optind < argc) return die("unexpected argument '%s'", argv[optind]);
  if (!have_node) return die("%s", "need --node-pubkey or --node-key-file");
  if (!cfg.n_gw) return die("%s", "need at least one --gateway ID:KEY");
  if (!pcap_path) return die("%s", "need --pcap OUT.pcap");
  if (!have_seed) {
    if (amp_random(&cfg.seed, sizeof cfg.seed) != AMP_OK) return die("%s", "no system randomness");
  }
  if (!have_threads) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cfg.threads = ncpu > 1 ? (uint32_t)(ncpu > 64 ? 64 : ncpu) : 0;
  }
  char expect_buf[4096];
  if (!expect_path) {
    snprintf(expect_buf, sizeof expect_buf, "%s.expect", pcap_path);
    expect_path = expect_buf;
  }

  amp_gen_t *g;
  int rc = amp_gen_new(&g, &cfg, err, sizeof err);
  if (rc != AMP_OK) return die("%s", rc == AMP_ERR_NOMEM ? "out of memory" : err);

  pcap_t *pd = pcap_open_dead(DLT_EN10MB, 65535);
  pcap_dumper_t *dump = pd ? pcap_dump_open(pd, pcap_path) : NULL;
  if (!dump) {
    fprintf(stderr, "ampd-pktgen: cannot write %s: %s\n", pcap_path, pd ? pcap_geterr(pd) : "");
    amp_gen_delete(g);
    return 1;
  }
  int efd = open(expect_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FILE *ef = efd >= 0 ? fdopen(efd, "w") : NULL;
  if (!ef) {
    fprintf(stderr, "ampd-pktgen: cannot write %s: %s\n", expect_path, strerror(errno));
    return 1;
  }
  fchmod(efd, 0600);
  static char ebuf[1 << 20];
  setvbuf(ef, ebuf, _IOFBF, sizeof ebuf);
  amp_gen_expect_write_meta(ef, &cfg);
  if (!quiet)
    fprintf(stderr, "ampd-pktgen: %" PRIu64 " payments, seed %" PRIu64 ", %u threads -> %s, %s\n",
            cfg.payments, cfg.seed, cfg.threads, pcap_path, expect_path);

  double t0 = now_s(), last = t0;
  amp_gen_frame_t f;
  amp_gen_stats_t st;
  uint64_t n = 0;
  while ((rc = amp_gen_next(g, &f)) == 1) {
    struct pcap_pkthdr h;
    h.ts.tv_sec = (time_t)(f.usec / 1000000u);
    h.ts.tv_usec = (suseconds_t)(f.usec % 1000000u);
    h.caplen = h.len = (bpf_u_int32)f.len;
    pcap_dump((u_char *)dump, &h, f.pkt);
    for (size_t i = 0; i < f.n_htlc; i++) amp_gen_expect_write(ef, &f.htlc[i]);
    if (!quiet && (++n & 63) == 0) {
      double t = now_s();
      if (t - last >= 1.0) {
        amp_gen_stats(g, &st);
        fprintf(stderr, "ampd-pktgen: %" PRIu64 "/%" PRIu64 " payments (%.1f%%), %.0f payments/s, "
                        "%.0f HTLCs/s\n",
                st.payments_done, cfg.payments,
                cfg.payments ? 100.0 * (double)st.payments_done / (double)cfg.payments : 100.0,
                (double)st.payments_done / (t - t0), (double)st.htlcs / (t - t0));
        last = t;
      }
    }
  }
  double dt = now_s() - t0;
  amp_gen_stats(g, &st);
  amp_gen_delete(g);
  int bad = rc < 0;
  if (bad) fprintf(stderr, "ampd-pktgen: generation failed: %s\n", amp_strerror(rc));
  if (pcap_dump_flush(dump) != 0) bad = 1;
  pcap_dump_close(dump);
  pcap_close(pd);
  if (fflush(ef) != 0 || ferror(ef)) bad = 1;
  if (fclose(ef) != 0) bad = 1;
  if (bad) {
    fprintf(stderr, "ampd-pktgen: failed writing the outputs\n");
    return 1;
  }
  if (!quiet) {
    fprintf(stderr, "ampd-pktgen: done in %.2f s: %" PRIu64 " payments (%.0f/s), %" PRIu64
                    " HTLCs (%.0f/s), %" PRIu64 " frames, %" PRIu64 " bytes\n",
            dt, st.payments_done, dt > 0 ? (double)st.payments_done / dt : 0.0, st.htlcs,
            dt > 0 ? (double)st.htlcs / dt : 0.0, st.frames, st.bytes);
    fprintf(stderr, "ampd-pktgen: payments by class:");
    for (int k = 0; k < AMP_GEN_CLASS_COUNT; k++)
      if (st.payments_class[k])
        fprintf(stderr, " %s=%" PRIu64, amp_gen_class_name(k), st.payments_class[k]);
    fprintf(stderr, "\nampd-pktgen: HTLCs expecting:");
    for (int x = 1; x <= 6; x++)
      if (st.htlcs_expect[x]) fprintf(stderr, " %s=%" PRIu64, amp_gen_expect_name(x), st.htlcs_expect[x]);
    if (st.shards_missing) fprintf(stderr, " (plus %" PRIu64 " shards never sent)", st.shards_missing);
    fputc('\n', stderr);
  }
  return 0;
}
