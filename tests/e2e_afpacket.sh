#!/usr/bin/env bash
# e2e_afpacket.sh: ampd on a kernel interface through net_af_packet. The test
# makes its own network namespace with a veth pair (va, vb) and removes it at
# the end; nothing outside the namespace is touched. ampd runs on va; the
# generator's pcap goes in with tcpreplay from vb; a raw socket on vb records
# the replies; ampd-check demands every expected answer.
# Skips (77) only where namespaces cannot be made or a tool is missing.
source "$(dirname "$0")/e2e_lib.sh"
need "$AMPD" "$AMPD_PKTGEN" "$AMPD_CHECK"
command -v tcpreplay >/dev/null || skip "tcpreplay is not installed (./run setup installs it)"
command -v python3 >/dev/null || skip "python3 is needed to capture the replies"
veth_ns e2e

new_node_key "$T/node.key"
pktgen "$T/in.pcap" "$T/node.key" -n 500 --shards 1-4 --bad-mix 0.08

# The capture: every frame that arrives at vb (not the ones tcpreplay sends),
# into a pcap, until SIGTERM.
ip netns exec "$NS" python3 "$CAPTURE_REPLIES" vb "$T/replies.pcap" "$T/capture.ready" &
cap=$!
E2E_PIDS+=("$cap")
wait_for '[ -e "$T/capture.ready" ]' 10 || fail "the capture did not start"

ip netns exec "$NS" "$AMPD" $(eal_args afp) --vdev net_af_packet0,iface=va -- --data-dir "$T/data" \
  --node-key-file "$T/node.key" "${AMPD_GW[@]}" --accept-amp --hold-timeout-ms 700 \
  --exit-idle 2500 >"$T/ampd.summary" 2>"$T/ampd.log" &
pid=$!
E2E_PIDS+=("$pid")
wait_for 'grep -qs "worker 0 on lcore" "$T/ampd.log"' 30 \
  || { cat "$T/ampd.log"; fail "ampd did not start on va"; }
grep "port 0" "$T/ampd.log" || true

say "replaying $(grep -c '"expect"' "$T/in.pcap.expect") HTLCs with tcpreplay into vb"
in_ns tcpreplay -q -i vb --pps 1500 "$T/in.pcap" >"$T/tcpreplay.log" 2>&1 \
  || { cat "$T/tcpreplay.log"; fail "tcpreplay"; }
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/ampd.log"; fail "ampd exit code $rc"; }
cat "$T/ampd.summary"
stop_capture "$cap"

"$AMPD_CHECK" --expect "$T/in.pcap.expect" "$T/replies.pcap" >"$T/check" 2>&1 \
  || { cat "$T/check" "$T/vb.stats"; fail "ampd-check found mismatches"; }
tail -4 "$T/check"
say "PASS"
