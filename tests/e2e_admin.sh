#!/usr/bin/env bash
# e2e_admin.sh: the admin socket of a running ampd, through ampctl: getinfo,
# stats (equal to the summary's numbers), listheld (HTLCs waiting for a
# missing shard), invoices (add, look up, cancel), settip, getconfig (no key
# shown), the Prometheus text, and `stop` (an orderly exit 0). The socket is
# mode 0600 and goes away with ampd.
source "$(dirname "$0")/e2e_lib.sh"
AMPCTL=${AMPCTL:-$AMP_BUILD/dataplane/admin/ampctl}
need "$AMPD" "$AMPD_PKTGEN" "$AMPCTL"

new_node_key "$T/node.key"
pktgen "$T/in.pcap" "$T/node.key" -n 200 --shards 2-4 --missing-shard 0.2
ctl() { "$AMPCTL" --data-dir "$T/data" "$@"; }

"$AMPD" $(eal_args adm) --vdev "net_pcap0,rx_pcap=$T/in.pcap,tx_pcap=$T/out.pcap" -- \
  --data-dir "$T/data" --node-key-file "$T/node.key" "${AMPD_GW[@]}" --accept-amp \
  --stats-interval 100 >"$T/summary" 2>"$T/log" &
pid=$!
E2E_PIDS+=("$pid")
# Until the pcap is in and answered (two equal stats lines).
prev="" stable=0
for ((i = 0; i < 300 && stable < 3; i++)); do
  sleep 0.1
  cur=$(grep "stats:" "$T/log" | tail -1 | sed 's/.*stats: //') || true
  if [ -n "$cur" ] && [ "$cur" = "$prev" ] && ! echo "$cur" | grep -q "htlcs in 0,"; then
    stable=$((stable + 1))
  else
    stable=0
  fi
  prev=$cur
done
[ "$stable" -ge 3 ] || { cat "$T/log"; fail "ampd did not settle down"; }
[ -S "$T/data/ampd.sock" ] || fail "no admin socket"
[ "$(stat -c %a "$T/data/ampd.sock")" = 600 ] || fail "admin socket mode $(stat -c %a "$T/data/ampd.sock")"

ctl getinfo >"$T/getinfo" || fail "getinfo"
grep -q '"block_height": 800000' "$T/getinfo" || fail "getinfo: height"
grep -q '"name": "net_pcap0"' "$T/getinfo" || fail "getinfo: port"
grep -q '"node_id": "0[23][0-9a-f]\{64\}"' "$T/getinfo" || fail "getinfo: node id"
! grep -qi "$(cat "$T/node.key")" "$T/getinfo" || fail "getinfo shows the node key"

ctl stats >"$T/stats" || fail "stats"
python3 - "$T/stats" "$cur" <<'PY' || fail "stats disagree with the log line"
import json, re, sys
st = json.load(open(sys.argv[1]))
c = {x['name']: x['total'] for x in st['counters'] if 'label' not in x}
line = sys.argv[2]
want = int(re.search(r'htlcs in (\d+)', line).group(1))
settled = int(re.search(r'settled (\d+)', line).group(1))
assert c['htlcs_in'] == want, (c['htlcs_in'], want)
assert c['htlcs_settled'] == settled, (c['htlcs_settled'], settled)
g = {x['name']: x['value'] for x in st['gauges']}
assert g['held_htlcs'] > 0, g
print("stats: htlcs_in", c['htlcs_in'], "settled", c['htlcs_settled'], "held", g['held_htlcs'])
PY

ctl listheld >"$T/held" || fail "listheld"
grep -q '"state": "held"' "$T/held" || fail "listheld shows no held set"
grep -q '"left_ms"' "$T/held" || fail "listheld: no time left"

ctl addinvoice --amp --amt 12345 --memo "e2e" >"$T/inv" || fail "addinvoice"
addr=$(sed -n 's/.*"payment_addr": "\([0-9a-f]*\)".*/\1/p' "$T/inv")
[ ${#addr} -eq 64 ] || fail "addinvoice: no payment_addr"
ctl lookupinvoice --payment_addr "$addr" >"$T/look" || fail "lookupinvoice"
grep -q '"value_msat": 12345' "$T/look" || fail "lookupinvoice: value"
ctl cancelinvoice --payment_addr "$addr" >/dev/null || fail "cancelinvoice"
ctl lookupinvoice --payment_addr "$addr" >"$T/look" || fail "lookupinvoice after cancel"
grep -q '"state": "cancelled"' "$T/look" || fail "the cancelled invoice is not cancelled"

ctl settip 800100 >/dev/null || fail "settip"
ctl getinfo | grep -q '"block_height": 800100' || fail "settip did not take"
ctl getconfig >"$T/config" || fail "getconfig"
! grep -qi -e "$GW1_KEY" -e "$GW2_KEY" "$T/config" || fail "getconfig shows a gateway key"
ctl metrics >"$T/metrics" || fail "metrics"
grep -q '^ampd_frames_dropped_total{worker="0",reason="bad_tag"}' "$T/metrics" \
  || fail "metrics: no drop counters"
say "ok: getinfo, stats, listheld, invoices, settip, getconfig, metrics"

ctl stop >/dev/null || fail "stop"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/log"; fail "ampd exit code $rc after stop"; }
grep -q "admin: stop requested" "$T/log" || fail "stop not logged"
[ ! -e "$T/data/ampd.sock" ] || fail "the socket outlived ampd"
say "PASS"
