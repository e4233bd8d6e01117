#!/usr/bin/env bash
# tests/demo.sh: `./run demo`. On this machine, with no NIC and no privileges:
#   1. ampd-pktgen makes a pcap of some thousands of AMP payments (1 to 8
#      shards each, real onions to a fresh node key) with a little bad traffic
#      of every class, and the expected answer of every HTLC;
#   2. ampd reads it through DPDK's net_pcap driver, settles, answers into a
#      tx pcap, and exits once idle (--exit-idle);
#   3. ampd-check verifies every answer against the expectations;
#   4. a short summary: payments settled, failures by reason, HTLCs per
#      second, where the store is.
# DEMO_PAYMENTS (default 4000) and DEMO_BAD (default 0.03) change the traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${AMP_BUILD:-build}
AMPD=$B/dataplane/ampd
PKTGEN=$B/bench/ampd-pktgen
CHECK=$B/bench/ampd-check
N=${DEMO_PAYMENTS:-4000}
BAD=${DEMO_BAD:-0.03}
for b in "$AMPD" "$PKTGEN" "$CHECK"; do
  [ -x "$b" ] || { echo "demo: $b is not built (./run build)" >&2; exit 1; }
done

D=$(mktemp -d /tmp/ampd-demo.XXXXXX)
hex32() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
(umask 077 && hex32 >"$D/node.key")
GW1=$(hex32)
GW2=$(hex32)
t_start=$(date +%s%N)

echo "== 1. ampd-pktgen: $N AMP payments, 1-8 shards, ${BAD} of them bad traffic (every class)"
"$PKTGEN" --node-key-file "$D/node.key" --gateway "1:$GW1" --gateway "2:$GW2" \
  -n "$N" --shards 1-8 --bad-mix "$BAD" --interleave 4 -o "$D/in.pcap"

echo
echo "== 2. ampd over net_pcap (rx_pcap=in.pcap, tx_pcap=out.pcap), exits when idle"
rc=0
"$AMPD" -l 0-1 --no-huge --no-pci -m 512 --file-prefix "ampd-demo-$$" --log-level=lib.eal:error \
  --vdev "net_pcap0,rx_pcap=$D/in.pcap,tx_pcap=$D/out.pcap" -- \
  --data-dir "$D/data" --node-key-file "$D/node.key" \
  --gateway "gw1,id=1,key=$GW1" --gateway "gw2,id=2,key=$GW2" \
  --accept-amp --hold-timeout-ms 1000 --exit-idle 1500 --sync full \
  >"$D/ampd.summary" 2>"$D/ampd.log" || rc=$?
rm -rf "/var/run/dpdk/ampd-demo-$$" 2>/dev/null || true
if [ "$rc" -ne 0 ]; then
  cat "$D/ampd.log" >&2
  echo "demo: ampd exited with $rc (log above, files in $D)" >&2
  exit 1
fi
cat "$D/ampd.summary"

echo
echo "== 3. ampd-check: every reply against the generator's expectations"
crc=0
"$CHECK" --expect "$D/in.pcap.expect" "$D/out.pcap" | tee "$D/check.txt" || crc=$?

# 4. The summary, from ampd's own numbers and the checker's verdict.
S=$D/ampd.summary
num() { sed -n "$1" "$S" | head -1; }
sets=$(num 's/.* settled in \([0-9]*\) sets.*/\1/p')
fulfilled=$(num 's/.*HTLCs: *[0-9]* in, \([0-9]*\) settled.*/\1/p')
htlcs=$(num 's/.*HTLCs: *\([0-9]*\) in,.*/\1/p')
failed=$(num 's/.*, \([0-9]*\) failed (.*/\1/p')
rate=$(num 's/.*rate: *\([0-9]*\) HTLCs\/s.*/\1/p')
drops=$(num 's/.*dropped: *\(.*\)/\1/p')
t_total=$((($(date +%s%N) - t_start) / 1000000))

echo
echo "================================ ampd demo ================================"
printf '  payments sent        %s (%s HTLCs reached ampd)\n' "$N" "${htlcs:-?}"
printf '  payments settled     %s sets, %s HTLCs fulfilled (preimages after commit)\n' \
  "${sets:-?}" "${fulfilled:-?}"
printf '  HTLCs failed         %s, by reason:\n' "${failed:-?}"
awk '/failed by reason:/ { on = 1; next }
     on && /^ +[0-9]+  / { sub(/^ +/, ""); n = $1; $1 = ""; sub(/^ +/, "");
                           printf "                       %6d  %s\n", n, $0; next }
     { on = 0 }' "$S"
sed -n 's/.*sets: *\([0-9]*\) cancelled.*/                       (\1 sets failed whole: reconstruction mismatch)/p' "$S"
printf '  frames dropped       %s\n' "${drops:-?}"
printf '  throughput           %s HTLCs/s taken in, on 1 worker core\n' "${rate:-?}"
if [ "$crc" -eq 0 ]; then
  printf '  answers checked      PASS: every HTLC got exactly its expected answer\n'
else
  printf '  answers checked      MISMATCH (see %s/check.txt)\n' "$D"
fi
printf '  store                %s/data (LMDB, sync full)\n' "$D"
printf '  files                %s: in.pcap, out.pcap, in.pcap.expect, ampd.log\n' "$D"
printf '  wall time            %d.%03d s\n' $((t_total / 1000)) $((t_total % 1000))
echo "==========================================================================="
exit "$crc"
