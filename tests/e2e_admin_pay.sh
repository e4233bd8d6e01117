#!/usr/bin/env bash
# e2e_admin_pay.sh: an AMP invoice added through the admin socket is paid by
# generated traffic (ampd on net_af_packet in a namespace of the test's own,
# tcpreplay in); lookupinvoice shows the set and the amount paid; a second
# payment adds a set (amount paid accumulates, two settle indexes); lookupset
# shows its HTLCs with amounts and child indexes. Then hostile admin clients
# (half a request then silence, a 10 MB line, invalid JSON, a thousand
# connections at once) while paced traffic settles: ampd answers a
# well-formed client meanwhile and ampd-check finds every expected answer.
source "$(dirname "$0")/e2e_lib.sh"
AMPCTL=${AMPCTL:-$AMP_BUILD/dataplane/admin/ampctl}
need "$AMPD" "$AMPD_PKTGEN" "$AMPD_CHECK" "$AMPCTL"
command -v tcpreplay >/dev/null || skip "tcpreplay is not installed (./run setup installs it)"
command -v python3 >/dev/null || skip "python3 is needed"
veth_ns e2eadm
ctl() { "$AMPCTL" --data-dir "$T/data" "$@"; }
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

new_node_key "$T/node.key"
ulimit -n 4096 2>/dev/null || true
ip netns exec "$NS" "$AMPD" $(eal_args pay) --vdev net_af_packet0,iface=va -- --data-dir "$T/data" \
  --node-key-file "$T/node.key" "${AMPD_GW[@]}" --accept-amp --hold-timeout-ms 700 \
  --stats-interval 200 >"$T/ampd.summary" 2>"$T/ampd.log" &
pid=$!
E2E_PIDS+=("$pid")
wait_for '[ -S "$T/data/ampd.sock" ]' 30 || { cat "$T/ampd.log"; fail "ampd did not start"; }

# 1. An AMP invoice through the socket, paid by one generated payment.
ctl addinvoice --amp --amt 5000 --memo "e2e pay" >"$T/inv" || fail "addinvoice"
addr=$(jget "$T/inv" 'd["payment_addr"]')
pay() {   # pay TAG SHARDS HTLC-ID-BASE AMOUNT
  pktgen "$T/$1.pcap" "$T/node.key" -n 1 --shards "$2" --payment-addr "$addr" \
    --htlc-id-base "$3" --seq-base "$(( $3 + 1 ))" --amount "$4"
  in_ns tcpreplay -q -i vb --pps 200 -T nano "$T/$1.pcap" >"$T/$1.tcpreplay" 2>&1 \
    || { cat "$T/$1.tcpreplay"; fail "tcpreplay $1"; }
}
nsets() { ctl lookupinvoice --payment_addr "$addr" >"$T/look" && jget "$T/look" 'len([s for s in d["sets"] if s["state"] == "settled"])'; }
pay p1 3 0 6000000
wait_for '[ "$(nsets)" = 1 ]' 20 || { cat "$T/look"; fail "the payment did not settle the invoice"; }
jget "$T/look" 'd["amt_paid_msat"] == 6000000 and d["sets"][0]["amt_msat"] == 6000000 and d["sets"][0]["settle_index"] > 0 and d["sets"][0]["time"] > 0 and d["state"] == "open"' \
  | grep -q True || fail "lookupinvoice after one payment: $(cat "$T/look")"
say "ok: one payment: $(jget "$T/look" 'd["amt_paid_msat"]') msat paid, one set"

# 2. A second payment adds a set; the amount paid accumulates.
pay p2 4 1000 7000000
wait_for '[ "$(nsets)" = 2 ]' 20 || { cat "$T/look"; fail "the second payment did not add a set"; }
jget "$T/look" 'd["amt_paid_msat"] == 13000000 and len({s["settle_index"] for s in d["sets"]}) == 2' \
  | grep -q True || fail "lookupinvoice after two payments: $(cat "$T/look")"
sid=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    d = json.loads(l)
    if d.get("set_id"): print(d["set_id"]); break' "$T/p2.pcap.expect")
ctl lookupset "$sid" >"$T/set" || fail "lookupset"
jget "$T/set" 'd["state"] == "settled" and d["payment_addr"] == "'"$addr"'" and len(d["htlcs"]) == 4 and sum(h["amt_msat"] for h in d["htlcs"]) == 7000000 and sorted(h["child_index"] for h in d["htlcs"]) == [0, 1, 2, 3]' \
  | grep -q True || fail "lookupset: $(cat "$T/set")"
say "ok: a second payment: two sets, 13000000 msat paid; lookupset shows 4 HTLCs, child indexes 0-3"

# 3. Hostile clients while traffic settles.
ip netns exec "$NS" python3 "$CAPTURE_REPLIES" vb "$T/replies.pcap" "$T/capture.ready" &
cap=$!
E2E_PIDS+=("$cap")
wait_for '[ -e "$T/capture.ready" ]' 10 || fail "the capture did not start"
pktgen "$T/p3.pcap" "$T/node.key" -n 400 --shards 1-4 --bad-mix 0.05 --htlc-id-base 100000 \
  --seq-base 100001
# The hostile clients connect first; then the traffic starts (tcpreplay, run
# by the script) and the well-formed client is served while it flows.
python3 - "$T/data/ampd.sock" "$T/p3.tcpreplay" ip netns exec "$NS" tcpreplay -q -i vb --pps 400 -T nano \
  "$T/p3.pcap" <<'PY' || fail "hostile clients"
import json, resource, socket, subprocess, sys, time
path, replay_log, replay = sys.argv[1], sys.argv[2], sys.argv[3:]
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
def conn():
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    return s
def call(s, method, id_=1):
    s.sendall(json.dumps({"jsonrpc": "2.0", "id": id_, "method": method}).encode() + b"\n")
    buf = b""
    while not buf.endswith(b"\n"):
        b = s.recv(65536)
        assert b, "closed"
        buf += b
    return json.loads(buf)
def stats_in():
    s = conn(); s.settimeout(5)
    r = call(s, "stats"); s.close()
    return {c["name"]: c["total"] for c in r["result"]["counters"]}["htlcs_in"]
good = conn(); good.settimeout(2)
half = conn(); half.sendall(b'{"jsonrpc":"2.0","id":1,"meth')          # then silence
bad = conn(); bad.settimeout(5)
many = [conn() for i in range(1000)]                                   # a thousand at once
h0 = stats_in()
rp = subprocess.Popen(replay, stdout=open(replay_log, "w"), stderr=subprocess.STDOUT)
time.sleep(0.3)
big = conn(); big.settimeout(10)
try:
    big.sendall(b"x" * (10 << 20) + b"\n")
except (BrokenPipeError, ConnectionResetError):
    pass
reply = b""
try:
    while True:
        b = big.recv(65536)
        if not b: break
        reply += b
except (ConnectionResetError, socket.timeout):
    pass
assert b"-32600" in reply, reply[:200]
bad.sendall(b"{not json\n")
r = bad.recv(65536); assert b"-32700" in r, r
assert call(bad, "getinfo")["result"]["workers"] >= 1          # the connection stays
worst, calls, during = 0, 0, 0
while rp.poll() is None:
    t = time.time(); r = call(good, "getinfo", calls + 2); worst = max(worst, time.time() - t)
    assert r["result"]["block_height"] > 0
    calls += 1
    if rp.poll() is None: during += 1
    time.sleep(0.05)
assert rp.returncode == 0, "tcpreplay failed"
time.sleep(0.5)
h1 = stats_in()
assert during > 0 and h1 > h0, ("no traffic or no answer during the hostile phase", during, h0, h1)
for s in many: s.close()
print("hostile: 1000 connections, half a request, 10 MB line -32600, bad JSON -32700 (the"
      " connection stays); %d getinfo answered while traffic ran (worst %.0f ms); htlcs_in %d -> %d"
      % (during, worst * 1000, h0, h1))
half.close()
PY
sleep 2          # hold timeouts (700 ms) and the last commits
ctl getinfo >/dev/null || fail "getinfo after the hostile clients"
ctl stop >/dev/null || fail "stop"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { tail -20 "$T/ampd.log"; fail "ampd exit code $rc"; }
sleep 0.2
stop_capture "$cap"
"$AMPD_CHECK" --expect "$T/p3.pcap.expect" "$T/replies.pcap" >"$T/check" 2>&1 \
  || { cat "$T/check"; fail "ampd-check: traffic during the hostile clients was not all answered right"; }
tail -2 "$T/check"
say "PASS"
