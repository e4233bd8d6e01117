#!/usr/bin/env bash
# e2e_admin.sh: the admin socket of a running ampd, through ampctl: getinfo,
# stats (equal to the summary's numbers), listheld (HTLCs waiting for a
# missing shard), invoices (add, look up, cancel), settip, getconfig (no key
# shown), the Prometheus text, and `stop` (an orderly exit 0). The socket is
# mode 0600 and goes away with ampd. Also: every method with good and bad
# parameters (exact error codes), --amt (sat) and --amt_msat, the memo limit
# and the default expiry; setloglevel at run time (debug lines appear, info
# lines stop); another user cannot connect; `ampctl metrics` and GET /metrics
# parse (ampd-promcheck) and equal `stats`; DPDK telemetry /ampd/stats and
# /ampd/info; and no key, preimage or shared secret anywhere in the log.
source "$(dirname "$0")/e2e_lib.sh"
AMPCTL=${AMPCTL:-$AMP_BUILD/dataplane/admin/ampctl}
PROMCHECK=${PROMCHECK:-$AMP_BUILD/dataplane/admin/ampd-promcheck}
need "$AMPD" "$AMPD_PKTGEN" "$AMPCTL" "$PROMCHECK"
command -v python3 >/dev/null || skip "python3 is needed"
MPORT=$((20000 + $$ % 20000))

new_node_key "$T/node.key"
pktgen "$T/in.pcap" "$T/node.key" -n 200 --shards 2-4 --missing-shard 0.2
ctl() { "$AMPCTL" --data-dir "$T/data" "$@"; }

"$AMPD" $(eal_args adm) --vdev "net_pcap0,rx_pcap=$T/in.pcap,tx_pcap=$T/out.pcap" -- \
  --data-dir "$T/data" --node-key-file "$T/node.key" "${AMPD_GW[@]}" --accept-amp \
  --stats-interval 100 --metrics-port "$MPORT" >"$T/summary" 2>"$T/log" &
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
# spontaneous payments' placeholders: in memory only while a set holds them
assert c['placeholders_evicted'] > 0, c
assert 0 < g['invoices_in_memory'] < c['placeholder_invoices'], (g, c)
print("stats: htlcs_in", c['htlcs_in'], "settled", c['htlcs_settled'], "held", g['held_htlcs'],
      "placeholders", c['placeholder_invoices'], "in memory", g['invoices_in_memory'])
PY
# The port's own counters, labelled by port: every frame of the pcap read,
# none missed or dropped by a kernel ring (net_pcap has none), replies sent.
python3 - "$T/stats" "$T/in.pcap" <<'PY' || fail "stats: port counters"
import json, sys
st = json.load(open(sys.argv[1]))
frames = 0
with open(sys.argv[2], "rb") as f:
    f.seek(24)
    while len(h := f.read(16)) == 16:
        f.seek(int.from_bytes(h[8:12], "little"), 1)
        frames += 1
p = {x["name"]: x["total"] for x in st["counters"]
     if x["name"].startswith("port_") and x.get("labels") == {"port": "net_pcap0"}}
want = {"port_rx_packets", "port_rx_missed", "port_rx_kernel_drops", "port_rx_errors",
        "port_rx_nombuf", "port_tx_packets", "port_tx_errors"}
assert set(p) == want, sorted(p)
assert p["port_rx_packets"] == frames, (p, frames)
assert p["port_rx_missed"] == p["port_rx_kernel_drops"] == p["port_rx_nombuf"] == 0, p
assert p["port_tx_packets"] > 0 and p["port_tx_errors"] == 0, p
print("stats: port net_pcap0 rx", p["port_rx_packets"], "of", frames, "frames, tx",
      p["port_tx_packets"])
PY
nph=$(python3 -c 'import json,sys; print([x["total"] for x in json.load(open(sys.argv[1]))["counters"] if x["name"] == "placeholder_invoices" and "label" not in x][0])' "$T/stats")

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
ctl getinfo >"$T/getinfo2" || fail "getinfo after settip"
grep -q '"block_height": 800100' "$T/getinfo2" || fail "settip did not take"
ctl getconfig >"$T/config" || fail "getconfig"
! grep -qi -e "$GW1_KEY" -e "$GW2_KEY" "$T/config" || fail "getconfig shows a gateway key"
ctl metrics >"$T/metrics" || fail "metrics"
grep -q '^ampd_frames_dropped_total{worker="0",reason="bad_tag"}' "$T/metrics" \
  || fail "metrics: no drop counters"
grep -q '^ampd_port_rx_kernel_drops_total{port="net_pcap0"} 0$' "$T/metrics" \
  || fail "metrics: no port counters"
say "ok: getinfo, stats, listheld, invoices, settip, getconfig, metrics"

# err CODE ARGS...: ampctl ARGS must fail with JSON-RPC error CODE.
err() {
  local code=$1 out rc=0
  shift
  out=$(ctl "$@" 2>&1) || rc=$?
  [ "$rc" -ne 0 ] || fail "ampctl $* succeeded: $out"
  echo "$out" | grep -q "error $code:" || fail "ampctl $*: want error $code, got: $out"
}
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

# addinvoice: --amt is satoshis, --amt_msat millisatoshis; default expiry 30 days
ctl addinvoice --amp --amt 1000 >"$T/a1" || fail "addinvoice --amp --amt 1000"
[ "$(jget "$T/a1" 'd["expiry"]')" = 2592000 ] || fail "default expiry is not 30 days"
a1=$(jget "$T/a1" 'd["payment_addr"]')
ctl lookupinvoice --payment_addr "$a1" >"$T/l1" || fail "lookupinvoice a1"
[ "$(jget "$T/l1" 'd["value_msat"]')" = 1000000 ] || fail "--amt 1000 is not 1000000 msat"
[ "$(jget "$T/l1" 'd["sets"]')" = "[]" ] || fail "a new invoice has sets"
ctl addinvoice --amp --amt_msat 1000 --memo "$(printf 'm%.0s' {1..127})" --expiry 600 >"$T/a2" \
  || fail "addinvoice --amt_msat with a 127-byte memo"
a2=$(jget "$T/a2" 'd["payment_addr"]')
ctl lookupinvoice --payment_addr "$a2" >"$T/l2" || fail "lookupinvoice a2"
[ "$(jget "$T/l2" 'd["value_msat"], d["expiry"], len(d["memo"])')" = "(1000, 600, 127)" ] \
  || fail "addinvoice --amt_msat 1000 --expiry 600: $(cat "$T/l2")"
ctl addinvoice --amp >/dev/null || fail "an any-amount AMP invoice"
pre=$(hex32)
phash=$(printf '%s' "$pre" | xxd -r -p | sha256sum | cut -c1-64)
ctl addinvoice --amt_msat 5000 --preimage "$pre" >"$T/m1" || fail "an MPP invoice"
[ "$(jget "$T/m1" 'd["payment_hash"]')" = "$phash" ] || fail "MPP payment_hash is not sha256(preimage)"
! grep -q "$pre" "$T/m1" || fail "addinvoice returned the preimage"
ctl lookupinvoice --payment_hash "$phash" >"$T/lh" || fail "lookupinvoice by hash"
grep -q '"htlcs": \[\]' "$T/lh" || fail "lookupinvoice by hash: $(cat "$T/lh")"
ctl listinvoices --max_invoices 2 --reversed >"$T/li" || fail "listinvoices"
[ "$(jget "$T/li" 'len(d["invoices"])')" = 2 ] || fail "listinvoices --max_invoices 2"
jget "$T/li" 'd["invoices"][1].get("payment_hash") == "'"$phash"'" and d["invoices"][0]["add_index"] < d["invoices"][1]["add_index"]' \
  | grep -q True || fail "listinvoices --reversed: not the two newest in order: $(cat "$T/li")"
# every invoice, placeholders out of memory included (5 added here)
ctl listinvoices --max_invoices 10000 >"$T/all" || fail "listinvoices all"
[ "$(jget "$T/all" 'len(d["invoices"])')" = $((nph + 5)) ] || fail "listinvoices: not $nph placeholders + 5"
paddr=$(jget "$T/all" '[i["payment_addr"] for i in d["invoices"] if i.get("placeholder") and i["amt_paid_msat"] > 0][0]')
ctl lookupinvoice --payment_addr "$paddr" >"$T/ph" || fail "lookupinvoice of a paid placeholder"
jget "$T/ph" 'd["state"] == "open" and len(d["sets"]) > 0 and d["amt_paid_msat"] > 0' | grep -q True \
  || fail "lookupinvoice of a placeholder out of memory: $(cat "$T/ph")"
ctl listinvoices --pending_only --index_offset 1 >/dev/null || fail "listinvoices --pending_only"
ctl listsets --state settled --max 20 >"$T/ls" || fail "listsets"
[ "$(jget "$T/ls" 'len(d["sets"])')" = 20 ] || fail "listsets --max 20"
jget "$T/ls" '[s["index"] for s in d["sets"]] == sorted(s["index"] for s in d["sets"]) and all(s["time"] > 0 for s in d["sets"])' | grep -q True || fail "listsets: not in index order or no time"
sid=$(jget "$T/ls" 'd["sets"][0]["set_id"]')
ctl lookupset "$sid" >"$T/set" || fail "lookupset"
jget "$T/set" 'd["state"] == "settled" and len(d["htlcs"]) > 0 and d["amt_msat"] == sum(h["amt_msat"] for h in d["htlcs"]) and sorted(h["child_index"] for h in d["htlcs"]) == list(range(len(d["htlcs"])))' \
  | grep -q True || fail "lookupset: HTLCs, amounts or child indexes wrong: $(cat "$T/set")"
ctl listsets --state cancelled --reversed >/dev/null || fail "listsets cancelled"
hsid=$(jget "$T/held" 'd["sets"][0]["set_id"]')
ctl lookupset --set_id "$hsid" >"$T/hset" || fail "lookupset of a held set"
grep -q '"left_ms"' "$T/hset" || fail "lookupset of a held set: no HTLCs"
jget "$T/held" 'all("child_index" in h for s in d["sets"] for h in s["htlcs"])' | grep -q True \
  || fail "listheld: no child_index"
# Into a file, not a pipe: under pipefail `ctl stats | grep -q` failed at
# random (grep -q exits at its first match, ampctl's next write of the 12 kB
# reply then dies of SIGPIPE, and the pipeline's status is ampctl's 141).
ctl stats >"$T/stats2" || fail "stats (again)"
jget "$T/stats2" '[x["name"] for x in d["counters"] if "per_worker" in x and (len(x["per_worker"]) != 1 or x["per_worker"][0] != x["total"])] == [] and any(x["name"] == "htlcs_in" and "per_worker" in x for x in d["counters"])' | grep -q True \
  || fail "stats: no per-worker counters: $(head -c 600 "$T/stats2")"

# bad parameters: the exact codes
err -32602 addinvoice                                     # MPP without an amount
err -32602 addinvoice --amp --memo "$(printf 'm%.0s' {1..128})"   # ampd keeps 127 bytes
err -32602 addinvoice --amp --memo "$(printf 'm%.0s' {1..640})"   # over 639
err -32602 addinvoice --amp --expiry 0
err -32602 addinvoice --amp --expiry 31536001
err -32602 addinvoice --amp --preimage "$(hex32)"
err -32602 addinvoice --amp --amt_msat 0
err -32602 addinvoice --amp --cltv_delta 5
err 1002 addinvoice --amt_msat 5000 --preimage "$pre"      # same payment_hash
err 1001 lookupinvoice --payment_addr "$(hex32)"
err -32602 lookupinvoice --payment_addr 00
err -32602 lookupinvoice
err 1003 cancelinvoice --payment_addr "$addr"              # already cancelled
err 1001 cancelinvoice --payment_hash "$(hex32)"
err 1001 lookupset "$(hex32)"
err -32602 lookupset --set_id xyz
err -32602 listsets --state bogus
err -32602 listsets --max 10001
err -32602 listinvoices --max_invoices 0
err -32602 settip 0
err -32602 settip 10000001
err -32602 setloglevel loud
err -32601 call nosuchmethod
err -32602 call getinfo '{"extra":1}'
say "ok: every method, good and bad parameters"

# setloglevel: debug lines appear; at error the info lines (stats) stop
ctl setloglevel debug >/dev/null || fail "setloglevel debug"
ctl getinfo >/dev/null
grep -q "ampd: debug: admin: getinfo" "$T/log" || fail "no debug line at level debug"
ctl setloglevel error >/dev/null || fail "setloglevel error"
sleep 0.3
n1=$(grep -c "ampd: info: stats:" "$T/log")
ctl getinfo >/dev/null
sleep 0.5
n2=$(grep -c "ampd: info: stats:" "$T/log")
[ "$n1" = "$n2" ] || fail "info lines go on at level error ($n1 -> $n2)"
[ "$(grep -c "ampd: debug:" "$T/log")" = 1 ] || fail "debug lines at level error"
ctl setloglevel info >/dev/null || fail "setloglevel info"
sleep 0.3
[ "$(grep -c "ampd: info: stats:" "$T/log")" -gt "$n2" ] || fail "info lines do not come back"
say "ok: setloglevel"

# another user cannot connect (the socket is 0600; the directories are opened up
# so that only the socket's own mode stands in the way)
if command -v setpriv >/dev/null && [ "$(id -u)" = 0 ]; then
  chmod o+x "$T" "$T/data"
  out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$AMPCTL" --socket "$T/data/ampd.sock" \
    getinfo 2>&1) && fail "uid 65534 could use the admin socket"
  echo "$out" | grep -qi "permission denied" || fail "uid 65534: not refused by permission: $out"
  if [ -x /usr/bin/python3 ]; then   # (a pyenv shim is not for uid 65534)
    setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 - \
      "$T/data/ampd.sock" <<'PY' || fail "uid 65534 could connect"
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except PermissionError:
    sys.exit(0)
sys.exit(1)
PY
  fi
  chmod o-x "$T" "$T/data"
  say "ok: uid 65534 cannot connect"
else
  say "socket permission check skipped: needs root and setpriv"
fi

# Prometheus: parses, and its counters equal `stats`; GET /metrics the same
ctl metrics >"$T/metrics" || fail "metrics"
"$PROMCHECK" "$T/metrics" || fail "ampctl metrics does not parse"
python3 - "$MPORT" "$T/http" <<'PY' || fail "GET /metrics"
import sys, urllib.request
r = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10)
assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
open(sys.argv[2], "wb").write(r.read())
PY
"$PROMCHECK" "$T/http" || fail "GET /metrics does not parse"
ctl stats >"$T/stats2" || fail "stats"
python3 - "$T/stats2" "$T/metrics" "$T/http" <<'PY' || fail "metrics and stats disagree"
import json, re, sys
st = json.load(open(sys.argv[1]))
for path in sys.argv[2:]:
    sums = {}
    for line in open(path):
        if line.startswith('#'):
            continue
        m = re.match(r'([a-z_:][a-z0-9_:]*)(\{[^}]*\})? (\S+)$', line.strip())
        assert m, line
        labels = m.group(2) or ''
        lv = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        key = (m.group(1), lv.get('reason'))
        sums[key] = sums.get(key, 0) + float(m.group(3))
    n = 0
    for c in st['counters']:
        if c['name'].startswith('admin_'):
            continue      # the server's own request counters move with every call
        name = 'ampd_' + c['name'] + ('' if c['name'].endswith('_total') else '_total')
        key = (name, (c.get('labels') or {}).get('reason') if isinstance(c.get('labels'), dict) else c.get('label_value'))
        got = sums.get(key, sums.get((name, None)))
        assert got == c['total'], (path, c, got)
        if 'per_worker' in c:
            assert sum(c['per_worker']) == c['total'], c
        n += 1
    print(path.split('/')[-1], ':', n, 'counters equal stats')
PY
# The two latency histograms: in both texts, well formed (cumulative le
# buckets ending in +Inf = _count, _sum), not empty, equal to `stats`; the
# settlement one counts every fulfill (latency_samples_lost, the answers
# without their rx time, is 0: ampd.h), the commit one every commit.
python3 - "$T/stats2" "$T/metrics" "$T/http" <<'PY' || fail "latency histograms"
import json, re, sys
st = json.load(open(sys.argv[1]))
c = {x['name']: x['total'] for x in st['counters'] if 'label' not in x and 'labels' not in x}
hs = {h['name']: h for h in st['histograms']}
for name in ('settlement_latency_seconds', 'commit_latency_seconds'):
    h = hs[name]
    assert h['count'] > 0 and h['sum'] > 0, h
    assert h['buckets'][-1]['le'] == '+Inf' and h['buckets'][-1]['count'] == h['count'], h
    cnts = [b['count'] for b in h['buckets']]
    assert cnts == sorted(cnts), h
settle = hs['settlement_latency_seconds']['count']
ful, lost = c['answers_fulfill'], c['latency_samples_lost']
assert lost == 0 and settle == ful, (settle, ful, lost)
assert hs['commit_latency_seconds']['count'] == c['store_commits'], (hs['commit_latency_seconds'], c['store_commits'])
for path in sys.argv[2:]:
    text = open(path).read()
    for name, h in hs.items():
        fam = 'ampd_' + name
        assert '# TYPE %s histogram\n' % fam in text, (path, fam)
        les = re.findall(r'^%s_bucket\{le="([^"]+)"\} (\d+)$' % fam, text, re.M)
        assert len(les) == 20 and les[-1][0] == '+Inf', (path, les)
        vals = [int(v) for _, v in les]
        assert vals == sorted(vals), (path, les)
        bounds = [float(l) for l, _ in les[:-1]]
        assert bounds == sorted(bounds) and bounds[0] == 1e-05 and bounds[-1] == 10, bounds
        cnt = int(re.search(r'^%s_count (\d+)$' % fam, text, re.M).group(1))
        sm = float(re.search(r'^%s_sum (\S+)$' % fam, text, re.M).group(1))
        assert cnt == vals[-1] == h['count'], (path, fam, cnt, vals[-1], h['count'])
        assert abs(sm - h['sum']) <= 1e-9 * max(1, sm), (path, fam, sm, h['sum'])
print('histograms: settlement', settle, 'of', ful, 'fulfills (%d samples lost),' % lost,
      'commit', hs['commit_latency_seconds']['count'], 'of', c['store_commits'], 'commits;',
      'mean settlement %.1f us' % (1e6 * hs['settlement_latency_seconds']['sum'] / settle))
PY

# DPDK telemetry: /ampd/stats and /ampd/info over the v2 socket
python3 - "/var/run/dpdk/ampd-$E2E_NAME-$$-adm/dpdk_telemetry.v2" "$T/stats2" <<'PY' || fail "telemetry"
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
json.loads(s.recv(16384))
def q(cmd):
    s.send(cmd.encode())
    return json.loads(s.recv(1 << 20))[cmd.split(',')[0]]
info = q('/ampd/info')
assert info['block_height'] == 800100 and info['node_id'].startswith('0'), info
stats = q('/ampd/stats')
st = json.load(open(sys.argv[2]))
c = {x['name']: x['total'] for x in st['counters'] if 'label' not in x and 'labels' not in x}
assert stats['htlcs_settled'] == c['htlcs_settled'], (stats.get('htlcs_settled'), c['htlcs_settled'])
assert '/ampd/stats' in q('/')
print('telemetry: /ampd/info and /ampd/stats ok, htlcs_settled', stats['htlcs_settled'])
PY
say "ok: Prometheus text and telemetry"

ctl stop >/dev/null || fail "stop"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/log"; fail "ampd exit code $rc after stop"; }
grep -q "admin: stop requested" "$T/log" || fail "stop not logged"
[ ! -e "$T/data/ampd.sock" ] || fail "the socket outlived ampd"

# No secret in the whole log: node key, gateway keys, every preimage and
# shared secret of the generator's expectations.
python3 - "$T/in.pcap.expect" "$T/node.key" "$T/log" "$T/summary" <<'PY' || fail "a secret in the log"
import json, sys
secrets = {open(sys.argv[2]).read().strip().lower()}
for line in open(sys.argv[1]):
    d = json.loads(line)
    for g in d.get('gateways', []):
        secrets.add(g['key'])
    if d.get('preimage'):
        secrets.add(d['preimage'])
    for x in d.get('ss', []):
        secrets.add(x)
text = (open(sys.argv[3]).read() + open(sys.argv[4]).read()).lower()
bad = [x for x in secrets if x and x in text]
assert not bad, "%d secrets in the log, e.g. %s..." % (len(bad), bad[0][:8])
print("log: none of %d secrets" % len(secrets))
PY
say "PASS"
