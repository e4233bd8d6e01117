#!/usr/bin/env bash
# e2e_afpacket.sh: ampd on a kernel interface through net_af_packet. The test
# makes its own network namespace with a veth pair (va, vb) and removes it at
# the end; nothing outside the namespace is touched. ampd runs on va; the
# generator's pcap goes in with tcpreplay from vb; a raw socket on vb records
# the replies, and the frames tcpreplay sends (--sent); ampd-check demands
# every expected answer and pairs each HTLC's request with its answer: every
# answered HTLC must be matched, with a wire latency >= 0 and under 10 s.
# Skips (77) only where namespaces cannot be made or a tool is missing.
source "$(dirname "$0")/e2e_lib.sh"
AMPCTL=${AMPCTL:-$AMP_BUILD/dataplane/admin/ampctl}
need "$AMPD" "$AMPD_PKTGEN" "$AMPD_CHECK" "$AMPCTL"
command -v tcpreplay >/dev/null || skip "tcpreplay is not installed (./run setup installs it)"
command -v python3 >/dev/null || skip "python3 is needed to capture the replies"
veth_ns e2e

new_node_key "$T/node.key"
pktgen "$T/in.pcap" "$T/node.key" -n 500 --shards 1-4 --bad-mix 0.08

# The capture: every frame that arrives at vb into a pcap, and the ones
# tcpreplay sends out of vb into another, until SIGTERM.
ip netns exec "$NS" python3 "$CAPTURE_REPLIES" vb "$T/replies.pcap" "$T/capture.ready" \
  --sent "$T/sent.pcap" &
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
in_ns tcpreplay -q -i vb --pps 1500 -T nano "$T/in.pcap" >"$T/tcpreplay.log" 2>&1 \
  || { cat "$T/tcpreplay.log"; fail "tcpreplay"; }
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/ampd.log"; fail "ampd exit code $rc"; }
cat "$T/ampd.summary"
stop_capture "$cap"

"$AMPD_CHECK" --expect "$T/in.pcap.expect" "$T/replies.pcap" --sent "$T/sent.pcap" \
  --json "$T/check.json" >"$T/check" 2>&1 \
  || { cat "$T/check" "$T/vb.stats"; fail "ampd-check found mismatches"; }
tail -12 "$T/check"
python3 - "$T/check.json" <<'PY' || fail "ampd-check's wire latency is missing or not sane"
import json, sys
j = json.load(open(sys.argv[1]))
w = j.get("wire_latency_us")
if not w:
    sys.exit("no wire_latency_us in ampd-check --json")
a = w["all"]
answered = sum(v for k, v in j["answers"].items())
problems = []
if w["answered"] != answered:
    problems.append(f"{w['answered']} HTLCs answered with a capture time, {answered} answers")
if w["matched"] != w["answered"] or w["answered_unsent"]:
    problems.append(f"only {w['matched']} of {w['answered']} answered HTLCs matched to their request")
if w["negative"] or a["min"] < 0:
    problems.append(f"{w['negative']} answers stamped before their request (min {a['min']} us)")
if a["max"] >= 10_000_000:
    problems.append(f"max {a['max']} us >= 10 s")
if not a["n"] or not a["min"] <= a["p50"] <= a["p99"] <= a["p999"] <= a["max"]:
    problems.append(f"percentiles out of order: {a}")
if sum(w[k]["n"] for k in ("fulfill", "fail", "mpp_timeout", "forward")) != a["n"]:
    problems.append("the kinds do not add up to all")
print(f"wire latency: {a['n']} HTLCs matched; p50 {a['p50']} us, p99 {a['p99']} us, max"
      f" {a['max']} us; fulfill p50 {w['fulfill']['p50']} us; {w['mpp_timeout']['n']} held"
      f" until the hold timer (p50 {w['mpp_timeout']['p50']} us)")
for p in problems:
    print("FAIL:", p)
sys.exit(1 if problems else 0)
PY

# Two af_packet ports on one interface would each get every frame (and their
# sockets could not be told apart): refused at start, clearly.
rc=0
ip netns exec "$NS" "$AMPD" $(eal_args afp3) --vdev net_af_packet0,iface=va \
  --vdev net_af_packet1,iface=va -- --data-dir "$T/data3" --node-key-file "$T/node.key" \
  "${AMPD_GW[@]}" --exit-idle 500 >"$T/twice.out" 2>"$T/twice.log" || rc=$?
[ "$rc" -ne 0 ] || { cat "$T/twice.log"; fail "ampd took two af_packet ports on one interface"; }
grep -q "both net_af_packet on interface va" "$T/twice.log" \
  || { cat "$T/twice.log"; fail "no clear error for two af_packet ports on one interface"; }
say "two af_packet ports on va refused (exit $rc): $(grep -o 'ports 0 and 1 .*' "$T/twice.log")"

# Overload: the PMD's rx ring made small (framecnt), the frames sent at
# tcpreplay's top speed, so the kernel drops what the ring cannot hold before
# ampd sees it. No DPDK counter of DPDK 22.11's af_packet driver counts those;
# ampd reads them from its packet sockets (kernel_drops). With IPv6 off in
# this namespace nothing but tcpreplay's frames reaches va, so every frame va
# received is either one ampd read (ipackets) or one its ring dropped.
say "overload: a 64-frame rx ring, tcpreplay --topspeed"
pktgen "$T/flood.pcap" "$T/node.key" -n 3000 --shards 1
rx0=$(in_ns cat /sys/class/net/va/statistics/rx_packets)
ip netns exec "$NS" "$AMPD" $(eal_args afp2) \
  --vdev net_af_packet0,iface=va,blocksz=4096,framesz=2048,framecnt=64 -- --data-dir "$T/data2" \
  --node-key-file "$T/node.key" "${AMPD_GW[@]}" --accept-amp --hold-timeout-ms 300 \
  --summary-json "$T/flood.json" >"$T/flood.summary" 2>"$T/flood.log" &
pid=$!
E2E_PIDS+=("$pid")
wait_for 'grep -qs "worker 0 on lcore" "$T/flood.log"' 30 \
  || { cat "$T/flood.log"; fail "ampd did not start on va (overload run)"; }
grep -q "port 0: 1 af_packet socket(s)" "$T/flood.log" \
  || { cat "$T/flood.log"; fail "ampd did not find its af_packet socket on va"; }
in_ns tcpreplay -q -i vb --topspeed "$T/flood.pcap" >"$T/tcpreplay2.log" 2>&1 \
  || { cat "$T/tcpreplay2.log"; fail "tcpreplay (overload)"; }
sleep 1   # what ampd read is answered or timed out (hold timeout 300 ms)
# The operator's view while ampd runs: ampctl stats, then a graceful stop.
"$AMPCTL" --data-dir "$T/data2" stats >"$T/flood.stats" || fail "ampctl stats (overload run)"
"$AMPCTL" --data-dir "$T/data2" stop >/dev/null || fail "ampctl stop (overload run)"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/flood.log"; fail "ampd exit code $rc after the overload"; }
rx1=$(in_ns cat /sys/class/net/va/statistics/rx_packets)
grep "port 0" "$T/flood.summary"
python3 - "$T/flood.json" "$((rx1 - rx0))" "$T/flood.stats" <<'PY' || fail "kernel drops miscounted"
import json, sys
(p,) = json.load(open(sys.argv[1]))["port_stats"]
va = int(sys.argv[2])
st = {x["name"]: x["total"] for x in json.load(open(sys.argv[3]))["counters"]
      if x.get("labels") == {"port": "net_af_packet0"}}
print(f"va received {va} frames; ampd read {p['ipackets']}, its ring dropped {p['kernel_drops']}"
      f" (ampctl stats while running: {st.get('port_rx_packets')} and"
      f" {st.get('port_rx_kernel_drops')})")
bad = []
if p["kernel_drops"] <= 0:
    bad.append("no kernel drops counted, yet the ring was overrun at top speed")
if p["ipackets"] + p["kernel_drops"] != va:
    bad.append(f"ipackets + kernel_drops = {p['ipackets'] + p['kernel_drops']}, va received {va}")
if (st.get("port_rx_packets"), st.get("port_rx_kernel_drops")) != (p["ipackets"], p["kernel_drops"]):
    bad.append("ampctl stats disagree with the exit summary, and nothing arrived in between")
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PY
grep -q "dropped by the kernel's af_packet ring" "$T/flood.summary" \
  || fail "the exit summary does not show the kernel's drops"
say "PASS"
