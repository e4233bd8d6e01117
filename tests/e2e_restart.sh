#!/usr/bin/env bash
# e2e_restart.sh: crash and redelivery (DESIGN.md invariants 2 and 3).
#  1. ampd takes a pcap of AMP payments (fully synced store) and is killed with
#     SIGKILL mid-stream, some answers out, others not.
#  2. ampd starts again on the same store and the same pcap is replayed whole
#     (gateways redeliver at least once): every HTLC gets exactly its expected
#     answer, and every answer already given in run 1 is given again byte for
#     byte.
#  3. The store's settle log has no set and no HTLC twice, and holds exactly
#     the payments that should settle.
#  4. A third replay settles nothing new: every answer comes from the store,
#     identical again.
source "$(dirname "$0")/e2e_lib.sh"
need "$AMPD" "$AMPD_PKTGEN" "$AMPD_CHECK" "$AMPD_STORECHECK"
command -v python3 >/dev/null || skip "python3 is needed to compare the answers"

new_node_key "$T/node.key"
pktgen "$T/in.pcap" "$T/node.key" -n 3000 --shards 1-5 --bad-mix 0.05 --interleave 2

# ampd_cmd TAG [ampd options...]: sets CMD to ampd over in.pcap on the one
# store (an array, so a background run's $! is ampd itself).
ampd_cmd() {
  local tag=$1
  shift
  CMD=("$AMPD" $(eal_args "$tag") --vdev "net_pcap0,rx_pcap=$T/in.pcap,tx_pcap=$T/$tag.pcap" --
    --data-dir "$T/data" --node-key-file "$T/node.key" "${AMPD_GW[@]}" --accept-amp
    --hold-timeout-ms 700 --sync full "$@")
}

# answers.py: reads tx pcaps (a killed run's may end mid-record) and compares
# the answers of HTLCs, keyed by (gateway, scid, htlc id).
cat >"$T/answers.py" <<'EOF'
import struct, sys

def answers(path):
    data = open(path, 'rb').read()
    out, dups, off = {}, 0, 24
    while off + 16 <= len(data):
        caplen = struct.unpack_from('<I', data, off + 8)[0]
        off += 16
        if off + caplen > len(data):
            break                      # cut by the kill
        p = data[off:off + caplen]
        off += caplen
        if len(p) < 82 or p[42:46] != b'AMPF':
            continue
        count, gw = struct.unpack_from('>HQ', p, 48)
        at = 66
        for _ in range(count):
            scid, ln = struct.unpack_from('>QH', p, at)
            msg = p[at + 10:at + 10 + ln]
            at += 10 + ln
            typ = struct.unpack_from('>H', msg)[0]
            if typ in (130, 131, 135):
                key = (gw, scid, msg[34:42])
                dups += key in out
                out[key] = msg
    return out, dups

a, da = answers(sys.argv[1])
b, db = answers(sys.argv[2])
missing = [k for k in a if k not in b]
differ = [k for k in a if k in b and a[k] != b[k]]
print(f"{sys.argv[1]}: {len(a)} answers; {sys.argv[2]}: {len(b)} answers; "
      f"missing {len(missing)}, different {len(differ)}, duplicates {da} and {db}")
sys.exit(1 if missing or differ or da or db else 0)
EOF

# 1. Kill mid-stream: once some answers are out, before the end.
say "run 1: SIGKILL mid-stream"
ampd_cmd run1
"${CMD[@]}" >"$T/run1.out" 2>"$T/run1.log" &
pid=$!
E2E_PIDS+=("$pid")
wait_for '[ "$(stat -c %s "$T/run1.pcap" 2>/dev/null || echo 0)" -gt 60000 ]' 60 \
  || { cat "$T/run1.log"; fail "run 1 gave no answers"; }
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
! kill -0 "$pid" 2>/dev/null || fail "run 1 survived SIGKILL"
grep -q "ampd summary" "$T/run1.out" && fail "run 1 finished before the kill"
n1=$(python3 "$T/answers.py" "$T/run1.pcap" "$T/run1.pcap" | sed 's/: \([0-9]*\) answers.*/ \1/;s/.* //')
htlcs=$(grep -c '"expect"' "$T/in.pcap.expect")
say "run 1 answered $n1 of $htlcs HTLCs before SIGKILL"
[ "$n1" -gt 0 ] && [ "$n1" -lt "$htlcs" ] || fail "run 1 was not killed mid-stream"

# 2. Restart, replay everything.
say "run 2: restart on the same store, replay the whole pcap"
ampd_cmd run2 --exit-idle 1500
"${CMD[@]}" >"$T/run2.out" 2>"$T/run2.log" \
  || { cat "$T/run2.log"; fail "run 2: exit code"; }
cat "$T/run2.out"
"$AMPD_CHECK" --expect "$T/in.pcap.expect" "$T/run2.pcap" >"$T/run2.check" 2>&1 \
  || { cat "$T/run2.check"; fail "run 2: answers do not match the expectations"; }
tail -1 "$T/run2.check"
python3 "$T/answers.py" "$T/run1.pcap" "$T/run2.pcap" \
  || fail "run 2 did not give the same answers as run 1"
grep -q "answered again from the store" "$T/run2.out" \
  || fail "run 2 answered nothing from the store"

# 3. The store: nothing twice, exactly the payments that settle.
want=$(python3 - "$T/in.pcap.expect" <<'EOF'
import json, sys
pay = set()
for line in open(sys.argv[1]):
    x = json.loads(line)
    if x.get('expect') == 'fulfill':
        pay.add(x['payment'])
print(len(pay))
EOF
)
"$AMPD_STORECHECK" "$T/data" >"$T/store.txt" || { cat "$T/store.txt"; fail "a set or HTLC settled twice"; }
cat "$T/store.txt"
settled=$(awk '{ print $2 }' "$T/store.txt")
[ "$settled" = "$want" ] || fail "the store holds $settled settled sets, expected $want"

# 4. Once more: everything from the store, nothing new settles.
say "run 3: replay again"
ampd_cmd run3 --exit-idle 1000
"${CMD[@]}" >"$T/run3.out" 2>"$T/run3.log" \
  || { cat "$T/run3.log"; fail "run 3: exit code"; }
grep -q " 0 settled in 0 sets" "$T/run3.out" || { cat "$T/run3.out"; fail "run 3 settled a set again"; }
"$AMPD_CHECK" --expect "$T/in.pcap.expect" "$T/run3.pcap" >"$T/run3.check" 2>&1 \
  || { cat "$T/run3.check"; fail "run 3: answers do not match the expectations"; }
python3 "$T/answers.py" "$T/run2.pcap" "$T/run3.pcap" || fail "run 3 answers differ from run 2"
"$AMPD_STORECHECK" "$T/data" >"$T/store3.txt" || fail "a set or HTLC settled twice after run 3"
cmp -s "$T/store.txt" "$T/store3.txt" || fail "run 3 changed the settle log"
say "PASS"
