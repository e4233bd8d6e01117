#!/usr/bin/env bash
# e2e_pcap.sh: ampd end to end over net_pcap (the demo's path). The packet
# generator writes AMP payments with every bad-traffic class; ampd reads them
# with rx_pcap, answers into tx_pcap and exits once idle; ampd-check demands
# exactly the expected answer for every HTLC (and none for dropped frames).
# Then the same with many records per frame (jumbo frames up to the 9000-byte
# MTU), and the drop counters are checked against the generator's numbers.
source "$(dirname "$0")/e2e_lib.sh"
need "$AMPD" "$AMPD_PKTGEN" "$AMPD_CHECK"

new_node_key "$T/node.key"

# run TAG PCAP [ampd options...]: ampd over the pcap, into $T/TAG.out.pcap,
# with its store in $T/TAG.data (or $DATA), net_pcap options from $PCAP_OPTS.
run() {
  local tag=$1 in=$2 rc=0
  shift 2
  "$AMPD" $(eal_args "$tag") --vdev "net_pcap0,rx_pcap=$in,tx_pcap=$T/$tag.out.pcap${PCAP_OPTS:-}" -- \
    --data-dir "${DATA:-$T/$tag.data}" --node-key-file "$T/node.key" "${AMPD_GW[@]}" --accept-amp \
    --hold-timeout-ms 700 --exit-idle 1200 "$@" >"$T/$tag.summary" 2>"$T/$tag.log" || rc=$?
  [ "$rc" -eq 0 ] || { cat "$T/$tag.log"; fail "$tag: ampd exit code $rc"; }
  cat "$T/$tag.summary"
}

check() {
  local tag=$1 expect=$2
  "$AMPD_CHECK" --expect "$expect" "$T/$tag.out.pcap" >"$T/$tag.check" 2>&1 \
    || { cat "$T/$tag.check"; fail "$tag: ampd-check found mismatches"; }
  tail -3 "$T/$tag.check"
}

# 1. One record per frame, every bad class, two gateways, full sync.
say "1500 payments, 1-6 shards, 10% bad traffic of every class"
pktgen "$T/a.pcap" "$T/node.key" -n 1500 --shards 1-6 --bad-mix 0.1 --interleave 3
run a "$T/a.pcap" --summary-json "$T/a.json"
check a "$T/a.pcap.expect"
# Every answer of a fresh store went out after its own commit, whose wait the
# engine reports: the commit's share is counted once per answer, and is part
# of the answer's latency. Every answer is timed: its HTLC's rx TSC comes
# back with it from the engine (the cookie), so none is unmatched.
python3 - "$T/a.json" <<'PY' || fail "the commit's share of latency is not reported per answer"
import json, sys
l = json.load(open(sys.argv[1]))["latency_ns"]
c, a = l["commit"], l["all"]
print(f"commit share: {c['count']} answers, p50 {c['p50'] / 1e3:.0f} us of {a['p50'] / 1e3:.0f} us")
u = l["unmatched"]
assert a["count"] > 0 and c["count"] == a["count"] + u, (c["count"], a["count"], u)
assert u == 0, ("answers without their rx time", u, c["count"])
assert 0 < c["p50"] <= a["p99"] and c["max"] <= a["max"] * 1.01
# the in-place ratio: the peels' parse + ECDH, timed by ampd, inside the
# worker's busy time, and the bulk of it (each HTLC of the pcap is peeled)
w = json.load(open(sys.argv[1]))["per_worker"][0]
print(f"in-place ratio {w['curve_share']:.3f} ({w['curve_s']:.3f} of {w['busy_s']:.3f} busy s)")
assert 0 < w["curve_s"] <= w["busy_s"] and abs(w["curve_share"] - w["curve_s"] / w["busy_s"]) < 1e-3, w
assert w["curve_share"] > 0.3, w
PY
grep -q "of which the store commit" "$T/a.summary" || fail "the summary does not show the commit's share"
for cls in missing_shard wrong_share replayed_onion flipped_onion_bit bad_frame_tag \
  unknown_gateway underpaid_total mismatched_total expired_cltv malformed_tlv; do
  awk -v c="$cls" '$1 == c && $2 > 0 && $3 == $2 { ok = 1 } END { exit !ok }' "$T/a.check" \
    || fail "class $cls was not exercised or not met"
done
# Dropped frames: the generator's bad tags and unknown gateways, nothing else.
bt=$(awk '$1 == "bad_frame_tag" { print $2 }' "$T/a.check")
ug=$(awk '$1 == "unknown_gateway" { print $2 }' "$T/a.check")
grep -q "bad frame tag $bt\b" "$T/a.summary" || fail "bad-tag drops are not $bt"
grep -q "unknown gateway $ug\b" "$T/a.summary" || fail "unknown-gateway drops are not $ug"
! grep -q "malformed frame" "$T/a.summary" || fail "good frames counted as malformed"
grep -q "0 still held" "$T/a.summary" || fail "HTLCs left held at exit"

# 2. 16 records per frame: frames end at the MTU, so most are ~9 kB jumbo
#    frames; two gateways; sync none.
say "600 payments, 16 records per frame (jumbo frames)"
pktgen "$T/b.pcap" "$T/node.key" -n 600 --shards 2-8 --records 16 --bad-mix 0.05
run b "$T/b.pcap" --sync none
check b "$T/b.pcap.expect"

# 3. The same pcap again on store b: every answer comes from the store, the
#    same as before, and nothing settles a second time.
say "replaying b on its own store: answers from the store"
DATA=$T/b.data run b2 "$T/b.pcap" --sync none
check b2 "$T/b.pcap.expect"
grep -q " 0 settled in 0 sets" "$T/b2.summary" || fail "a set settled twice on replay"
grep -q "answered again from the store" "$T/b2.summary" || fail "replay not answered from the store"
if [ -x "$AMPD_STORECHECK" ]; then
  "$AMPD_STORECHECK" "$T/b.data" || fail "the store has a set or HTLC settled twice"
fi

# 4. net_pcap with infinite_rx=1, as bench e2e runs it: the file is read into
#    mbufs at start and replayed from memory without end; --bench-rx-packets N
#    (N = the file's packets) makes that one pass. Every answer exactly once;
#    what the last burst brought beyond N is freed unread and counted.
# pcap_stats PCAP: its packet count, and how many are longer than a 2 kB mbuf.
pcap_stats() {
  python3 - "$1" <<'PY'
import struct, sys
n = big = 0
with open(sys.argv[1], "rb") as f:
    f.seek(24)
    while len(h := f.read(16)) == 16:
        caplen = struct.unpack("<4I", h)[2]
        f.seek(caplen, 1)
        n += 1
        big += caplen > 2048
print(n, big)
PY
}
read -r na _ < <(pcap_stats "$T/a.pcap")
say "a again through infinite_rx=1 with --bench-rx-packets $na"
PCAP_OPTS=,infinite_rx=1 run ai "$T/a.pcap" --bench-rx-packets "$na" --mbufs $((na + 8192)) \
  --summary-json "$T/ai.json"
check ai "$T/a.pcap.expect"
python3 - "$T/ai.json" "$na" <<'PY' || fail "--bench-rx-packets did not stop rx after one pass"
import json, sys
d, n = json.load(open(sys.argv[1]))["dataplane"], int(sys.argv[2])
print(f"rx {d['rx_pkts']} of {n} packets, {d['bench_rx_surplus']} freed past the limit")
assert d["rx_pkts"] == n and 0 <= d["bench_rx_surplus"] < 32, d
PY
# That mode keeps each packet in one mbuf: a file with frames longer than
# one (b's jumbo frames) is refused at start, with the driver's reason, and
# ampd exits 1 without taking anything.
read -r nb bigb < <(pcap_stats "$T/b.pcap")
[ "$bigb" -gt 0 ] || fail "b has no frame longer than an mbuf"
say "b through infinite_rx=1: $bigb of its $nb frames are longer than an mbuf: refused"
rc=0
"$AMPD" $(eal_args bi) --vdev "net_pcap0,rx_pcap=$T/b.pcap,tx_pcap=$T/bi.out.pcap,infinite_rx=1" \
  -- --data-dir "$T/bi.data" --node-key-file "$T/node.key" "${AMPD_GW[@]}" \
  --bench-rx-packets "$nb" --mbufs $((nb * 6 + 8192)) >"$T/bi.summary" 2>"$T/bi.log" || rc=$?
[ "$rc" -eq 1 ] && grep -q "rx queue 0 setup failed" "$T/bi.log" \
  || { cat "$T/bi.log"; fail "bi: exit $rc, expected 1 with the rx queue's error"; }
grep -i "multiseg\|rx queue 0 setup" "$T/bi.log"

# Bad values of the flag: a clear error and exit code 2, before EAL starts.
for v in 0 -5 abc 5, 1,,2 ,3 99999999999999999999999 "$(seq -s, 1 33)"; do
  rc=0
  "$AMPD" $(eal_args badflag) --vdev "net_null0" -- --data-dir "$T/bad.data" \
    --node-key-file "$T/node.key" "${AMPD_GW[@]}" --bench-rx-packets "$v" >/dev/null \
    2>"$T/badflag.err" || rc=$?
  [ "$rc" -eq 2 ] && grep -qF -- "--bench-rx-packets: '$v'" "$T/badflag.err" \
    || { cat "$T/badflag.err"; fail "--bench-rx-packets $v: exit $rc"; }
done
[ ! -e "$T/bad.data" ] || fail "a refused flag left a store behind"

# --store-index-entries reaches the store: 30,000 spontaneous 1-shard payments
# (a placeholder invoice each) fit the default sizing without a rehash of the
# store's indexes, and overflow the smallest (room for 16,384 invoices more,
# a table of 32,768 slots at load 0.7), which then doubles and counts it.
say "30000 spontaneous 1-shard payments: index rehashes at the default and the smallest sizing"
pktgen "$T/c.pcap" "$T/node.key" -n 30000 --shards 1
for sz in default 65536; do
  opt=()
  [ "$sz" = default ] || opt=(--store-index-entries "$sz")
  run "c$sz" "$T/c.pcap" --sync none --summary-json "$T/c$sz.json" "${opt[@]}"
  check "c$sz" "$T/c.pcap.expect"
done
python3 - "$T/cdefault.json" "$T/c65536.json" <<'PY' || fail "--store-index-entries: rehash counts"
import json, sys
d, small = (json.load(open(f))["store"]["index_rehashes"] for f in sys.argv[1:3])
print(f"index rehashes: {d} at the default sizing, {small} at --store-index-entries 65536")
sys.exit(0 if d == 0 and small >= 1 else 1)
PY
say "PASS"
