/* ampd-check: holds ampd's replies (a tx pcap) against the expectations file
 * that ampd-pktgen wrote. The work is done by amp_gen_check.h. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amp_gen.h"
#include "amp_gen_check.h"

static void usage(FILE *f) {
  fprintf(f,
"usage: ampd-check --expect RUN.expect [--pcap] TX.pcap [TX2.pcap ...] [--sent SENT.pcap]\n"
"                  [options]\n"
"\n"
"Reads ampd's replies (one or more pcaps, any format libpcap reads) and the\n"
"expectations file of ampd-pktgen. Every reply frame must parse and carry a good tag\n"
"under its gateway's key (keys from the expectations file's meta line, or --gateway),\n"
"with a seq no earlier frame to that gateway had. Every reply is matched to its HTLC\n"
"by (gateway, scid, htlc id) -- forwards by payment_hash -- and every HTLC must get\n"
"exactly the expected answer, once:\n"
"  fulfill    update_fulfill_htlc with the HTLC's own child preimage\n"
"  fail       update_fail_htlc whose failure onion, decoded with the HTLC's shared\n"
"             secret, carries the expected code (for incorrect_or_unknown_payment_\n"
"             details also the HTLC's amount as htlc_msat)\n"
"  fail_any   any update_fail_htlc or update_fail_malformed_htlc (hand-written\n"
"             expectations only)\n"
"  malformed  update_fail_malformed_htlc with the code and the onion's sha256\n"
"  forward    update_add_htlc with the same payment_hash on the expected scid,\n"
"             amount and cltv\n"
"  none       nothing (frames ampd must drop: bad tag, unknown gateway)\n"
"Prints, per class, the HTLCs that got the expected answer (ok), none, a wrong one, or\n"
"more than one (dup). Exit status: 0 all met, 1 any mismatch, 2 usage or input error.\n"
"\n"
"  --expect PATH      the expectations file (required)\n"
"  --pcap PATH        a tx pcap (repeatable; bare arguments count too)\n"
"  --gateway ID:KEY   a gateway's key (overrides the expectations file's)\n"
"  --timeouts-ok      HTLCs that expect mpp_timeout may have no answer (counted as\n"
"                     `waited`): for runs that ended before ampd's hold timers fired.\n"
"                     Better, for demos: run ampd with a short --hold-timeout-ms (e.g.\n"
"                     1000) and let it stay up longer than that (--exit-idle above it),\n"
"                     so missing_shard and underpaid_total get their real answer.\n"
"  --repeats-ok       an answer identical to the HTLC's earlier one is allowed (a\n"
"                     redelivery's: restart tests that replay the same pcap into a\n"
"                     restarted ampd and pass every tx pcap); a different second\n"
"                     answer is still a mismatch. Reply seqs must then be unique\n"
"                     within each pcap only\n"
"  --sent PATH        the frames as they were sent towards ampd, captured on the same\n"
"                     clock as the replies (repeatable; tests/capture_replies.py --sent\n"
"                     on the veth that tcpreplay sends into): each HTLC's request frame\n"
"                     (by gateway, scid, htlc id) is paired with the reply frame of its\n"
"                     first answer, and the wire latency (reply time - request time) is\n"
"                     printed as min, p50, p99, p99.9, max in us, for all answers and by\n"
"                     kind (fulfill; fail; mpp_timeout apart: those HTLCs were held until\n"
"                     the hold timer). It does not change the exit status. Needs real\n"
"                     capture times (not net_pcap's rx pcap, whose stamps are made up)\n"
"  --json PATH        also write the result as one JSON object to PATH ('-': stdout);\n"
"                     with --sent it has \"wire_latency_us\"\n"
"  -v, --verbose      print every mismatch (default: the first 20)\n"
"  -q, --quiet        no table, only the exit status (and the mismatches)\n"
"  -h, --help         this text\n");
}

int main(int argc, char **argv) {
  enum { OPT_EXPECT = 256, OPT_PCAP, OPT_GATEWAY, OPT_TIMEOUTS_OK, OPT_JSON, OPT_REPEATS_OK,
         OPT_SENT };
  static const struct option opts[] = {
      {"expect", 1, NULL, OPT_EXPECT},   {"pcap", 1, NULL, OPT_PCAP},
      {"gateway", 1, NULL, OPT_GATEWAY}, {"timeouts-ok", 0, NULL, OPT_TIMEOUTS_OK},
      {"json", 1, NULL, OPT_JSON},       {"verbose", 0, NULL, 'v'},
      {"repeats-ok", 0, NULL, OPT_REPEATS_OK}, {"sent", 1, NULL, OPT_SENT},
      {"quiet", 0, NULL, 'q'},           {"help", 0, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *expect = NULL, *json = NULL;
  const char **pcaps = calloc((size_t)argc + 1, sizeof *pcaps);
  const char **sents = calloc((size_t)argc + 1, sizeof *sents);
  size_t n_pcap = 0, n_sent = 0;
  amp_gen_gateway_t gw[AMP_GEN_MAX_GATEWAYS];
  size_t n_gw = 0;
  int quiet = 0;
  amp_check_opts_t co = {0, 0, 0, stderr};
  char err[256];
  if (!pcaps || !sents) return 2;
  int o;
  while ((o = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
    switch (o) {
    case OPT_EXPECT: expect = optarg; break;
    case OPT_PCAP: pcaps[n_pcap++] = optarg; break;
    case OPT_SENT: sents[n_sent++] = optarg; break;
    case OPT_GATEWAY:
      if (n_gw == AMP_GEN_MAX_GATEWAYS ||
          amp_gen_parse_gateway(&gw[n_gw], n_gw, optarg, err, sizeof err) != AMP_OK) {
        fprintf(stderr, "ampd-check: --%s\n", n_gw == AMP_GEN_MAX_GATEWAYS ? "too many gateways" : err);
        return 2;
      }
      n_gw++;
      break;
    case OPT_TIMEOUTS_OK: co.timeouts_ok = 1; break;
    case OPT_JSON: json = optarg; break;
    case OPT_REPEATS_OK: co.repeats_ok = 1; break;
    case 'v': co.verbose = 1; break;
    case 'q': quiet = 1; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  while (optind < argc) pcaps[n_pcap++] = argv[optind++];
  if (!expect || !n_pcap) {
    fprintf(stderr, "ampd-check: need --expect FILE and at least one tx pcap (--help)\n");
    return 2;
  }
  amp_check_t *c = amp_check_new(&co);
  if (!c) return 2;
  for (size_t i = 0; i < n_gw; i++)
    if (amp_check_gateway(c, gw[i].id, gw[i].key) != AMP_OK) return 2;
  if (amp_check_load(c, expect) != AMP_OK) return 2;
  for (size_t i = 0; i < n_pcap; i++)
    if (amp_check_pcap(c, pcaps[i]) != AMP_OK) return 2;
  for (size_t i = 0; i < n_sent; i++)
    if (amp_check_sent_pcap(c, sents[i]) != AMP_OK) return 2;
  int rc = quiet ? amp_check_result(c) : amp_check_report(c, stdout);
  if (json) {
    FILE *jf = strcmp(json, "-") == 0 ? stdout : fopen(json, "w");
    if (!jf) {
      fprintf(stderr, "ampd-check: cannot write %s\n", json);
      return 2;
    }
    amp_check_report_json(c, jf);
    if (jf != stdout) fclose(jf);
  }
  amp_check_free(c);
  free(pcaps);
  free(sents);
  return rc;
}
