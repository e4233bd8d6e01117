#!/usr/bin/env bash
# e2e_config.sh: ampd's options through the real binary. Every bad-value class
# exits non-zero (2) with an error naming where (file:line or the flag), the
# option and what is expected, before the store is touched; the node key
# file's permission check; --help lists every option with its default; a good
# configuration starts, makes the node key 0600, and never prints a key.
source "$(dirname "$0")/e2e_lib.sh"
need "$AMPD"

KEY=$(hex32)
GW=(--gateway "g1,id=1,key=$KEY")

# bad CASE_NAME WANT [ampd options...]: must exit 2, say WANT, create no store.
n=0
bad() {
  local name=$1 want=$2
  shift 2
  n=$((n + 1))
  local dir=$T/data-$n rc=0
  "$AMPD" $(eal_args "bad$n") -- --data-dir "$dir" "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq 2 ] || { cat "$T/err"; fail "$name: exit code $rc, expected 2"; }
  grep -qF -- "$want" "$T/err" || { cat "$T/err"; fail "$name: error does not say: $want"; }
  [ ! -e "$dir/data.mdb" ] || fail "$name: the store was touched"
  ! grep -qi "$KEY" "$T/err" "$T/out" || fail "$name: a gateway key was printed"
  say "ok: $name -> $(head -c 160 "$T/err" | head -1)"
}

# --- flags: one case per class of bad value
bad "not an integer" "--hold-timeout-ms 'soon': expected an integer from 1 to 86400000" \
  "${GW[@]}" --hold-timeout-ms=soon
bad "below range" "--max-htlcs-per-set '0': expected an integer from 1 to 65535" \
  "${GW[@]}" --max-htlcs-per-set 0
bad "above range" "--group-commit-usec '2000000': expected an integer from 0 to 1000000" \
  "${GW[@]}" --group-commit-usec=2000000
bad "overflow" "--max-held '99999999999999999999': expected an integer" \
  "${GW[@]}" --max-held=99999999999999999999
bad "negative" "--exit-idle '-1': expected an integer" "${GW[@]}" --exit-idle=-1
bad "boolean" "--accept-amp 'maybe': expected true or false" "${GW[@]}" --accept-amp=maybe
bad "sync mode" "--sync 'fast': expected one of full, meta, none" "${GW[@]}" --sync fast
bad "log level" "--log-level 'loud': expected one of error, warn, info, debug" \
  "${GW[@]}" --log-level=loud
bad "MAC" "--mac '02:00:00:00:00': expected a unicast MAC address" "${GW[@]}" --mac=02:00:00:00:00
bad "multicast MAC" "--mac '01:00:5e:00:00:01': expected a unicast MAC" \
  "${GW[@]}" --mac=01:00:5e:00:00:01
bad "IPv4" "--ipv4 '10.0.0.256': expected a unicast IPv4 address" "${GW[@]}" --ipv4=10.0.0.256
bad "ports" "--ports '0,0': expected all, or up to 32 distinct port ids" "${GW[@]}" --ports=0,0
bad "descriptors" "--rx-desc '8': expected an integer from 64 to 16384" "${GW[@]}" --rx-desc=8
bad "missing value" "--sync: missing value" "${GW[@]}" --sync
bad "given twice" "--sync: given twice" "${GW[@]}" --sync=full --sync=none
bad "unknown option" "unknown option '--colour'" "${GW[@]}" --colour=red
bad "stray argument" "unexpected argument 'extra'" "${GW[@]}" extra
bad "no gateway" "no gateway configured" --accept-amp
bad "gateway key" "--gateway g1: key: expected 64 hex digits (32 bytes); value not shown" \
  --gateway "g1,id=1,key=${KEY:0:62}"
bad "gateway id" "--gateway g1: id = '0': expected an integer from 1" \
  --gateway "g1,id=0,key=$KEY"
bad "gateway ids" "expected a unique id" "${GW[@]}" --gateway "g2,id=1,key=$KEY"
bad "limits" "max-held-per-gateway = 11: expected at most max-held (10)" \
  "${GW[@]}" --max-held=10 --max-held-per-gateway=11
bad "missing config file" "$T/none.conf: cannot open config file" --config "$T/none.conf"

# --- the file: file:line, option, expectation
cat >"$T/a.conf" <<EOF
; a config with a bad line 4
data-dir = $T/never
sync = full
hold-timeout-ms = 12s
EOF
bad "file value" "$T/a.conf:4: hold-timeout-ms = '12s': expected an integer from 1 to 86400000" \
  --config "$T/a.conf" "${GW[@]}"
printf 'sync = full\n[server]\nport = 1\n' >"$T/b.conf"
bad "file section" "$T/b.conf:3: unknown section [server]" --config "$T/b.conf" "${GW[@]}"
printf 'sync = full\nthis line is not ini\n' >"$T/c.conf"
bad "file syntax" "$T/c.conf:2: syntax error" --config "$T/c.conf" "${GW[@]}"
printf '[gateway edge]\nid = 7\nkey = %s\nkey = %s\n' "$KEY" "$KEY" >"$T/d.conf"
bad "file key twice" "$T/d.conf:4: [gateway edge] key: set twice (first at line 3)" \
  --config "$T/d.conf"
printf '[gateway edge]\nid = 7\n' >"$T/e.conf"
bad "file gateway without key" "[gateway edge]: missing key" --config "$T/e.conf"
printf '[gateway edge]\nid = 7\nkey = %s\nmac = 02:00:00:00:00:0x\n' "$KEY" >"$T/f.conf"
bad "file gateway MAC" "$T/f.conf:4: [gateway edge] mac = '02:00:00:00:00:0x': expected a unicast MAC" \
  --config "$T/f.conf"
printf 'data-dir = /x\ndata-dir = /y\n' >"$T/g.conf"
bad "file option twice" "$T/g.conf:2: data-dir: set twice (first at line 1)" \
  --config "$T/g.conf" "${GW[@]}"

# --- the node key file
NK=$T/keys/node.key
mkdir -p "$T/keys"
hex32 >"$NK"
NKHEX=$(cat "$NK")
for mode in 644 640 604 660 666; do
  chmod "$mode" "$NK"
  bad "node key mode $mode" "node key file has mode 0$mode: group or others may access it" \
    "${GW[@]}" --node-key-file "$NK"
  ! grep -q "$NKHEX" "$T/err" "$T/out" || fail "the node key was printed"
done
chmod 600 "$NK"
echo "not hex" >"$NK"
bad "node key content" "node key file: expected 64 hex digits" "${GW[@]}" --node-key-file "$NK"
printf '%064d\n' 0 >"$NK"
bad "node key zero" "not a valid secp256k1 secret key" "${GW[@]}" --node-key-file "$NK"
rm -f "$NK"
mkdir "$NK"
bad "node key directory" "not a regular file" "${GW[@]}" --node-key-file "$NK"
rmdir "$NK"

# --- --help: every option, with its default, and the risks of sync modes
"$AMPD" --help >"$T/help" || fail "--help exit code"
for opt in config data-dir node-key-file accept-amp hold-timeout-ms max-htlcs-per-set max-held \
  max-held-per-gateway group-commit-max group-commit-usec store-index-entries sync workers \
  ports rx-queues rx-desc tx-desc mbufs mac ipv4 udp-port exit-idle stats-interval log-level \
  gateway admin-socket metrics-port metrics-addr; do
  grep -q -- "--$opt " "$T/help" || fail "--help lacks --$opt"
done
grep -q "default: 120000" "$T/help" || fail "--help lacks the hold timeout default"
grep -q "risk of paying out twice" "$T/help" || fail "--help does not name the meta sync risk"
[ "$(grep -c 'default:' "$T/help")" -ge 28 ] || fail "--help: an option without its default"
say "ok: --help lists every option with its default"

# --- a good start from a file: key made 0600, never printed, exits when idle
cat >"$T/good.conf" <<EOF
data-dir = $T/good
accept-amp = true
sync = none
exit-idle = 200
log-level = debug

[gateway edge]
id = 7
key = $KEY
ipv4 = 10.11.12.13
EOF
rc=0
"$AMPD" $(eal_args good) --vdev net_ring0 -- --config "$T/good.conf" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/err"; fail "a good configuration: exit code $rc"; }
[ -f "$T/good/node.key" ] || fail "no node key was made"
[ "$(stat -c %a "$T/good/node.key")" = 600 ] || fail "node key mode $(stat -c %a "$T/good/node.key")"
[ -f "$T/good/data.mdb" ] || fail "no store in the data dir"
grep -q "sync = none" "$T/err" || fail "debug log lacks the effective configuration"
! grep -qi "$KEY" "$T/out" "$T/err" || fail "a gateway key was printed"
! grep -qi "$(cat "$T/good/node.key")" "$T/out" "$T/err" || fail "the node key was printed"
grep -q "ampd summary" "$T/out" || fail "no summary at exit"
# flags win over the file
rc=0
"$AMPD" $(eal_args good2) --vdev net_ring0 -- --config "$T/good.conf" --sync=full \
  --log-level=debug --exit-idle=100 >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/err"; fail "second start: exit code $rc"; }
grep -q "sync = full" "$T/err" || fail "a flag did not win over the file"
grep -q "exit-idle = 100" "$T/err" || fail "a flag did not win over the file"
say "ok: good configuration, key file 0600, flags win, no key printed"

# --- one ampd per data directory
"$AMPD" $(eal_args first) --vdev net_ring0 -- --config "$T/good.conf" --exit-idle=30000 \
  >"$T/first.out" 2>"$T/first.err" &
first=$!
E2E_PIDS+=("$first")
wait_for '[ -s "$T/good/ampd.lock" ] && grep -q "^$first\$" "$T/good/ampd.lock"' 20 \
  || fail "the first ampd did not take the data directory"
rc=0
"$AMPD" $(eal_args second) --vdev net_ring0 -- --config "$T/good.conf" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" -eq 1 ] || fail "a second ampd on the same data dir: exit code $rc"
grep -q "data-dir $T/good is in use by another ampd (pid $first)" "$T/err" \
  || { cat "$T/err"; fail "a second ampd on the same data dir: wrong error"; }
say "ok: a second ampd on the same data directory is refused"

# --- SIGHUP: log-level, stats-interval, exit-idle at once; the rest named
sed -i 's/^log-level = debug/log-level = warn/; s/^sync = none/sync = full/' "$T/good.conf"
kill -HUP "$first"
wait_for 'grep -q "SIGHUP: reloaded" "$T/first.err"' 20 || fail "SIGHUP: no reload"
grep -q "reloaded log-level (warn)" "$T/first.err" || fail "SIGHUP: log-level not applied"
grep -q "applied only at the next start: sync" "$T/first.err" \
  || { grep SIGHUP "$T/first.err"; fail "SIGHUP: a changed option was not named"; }
sed -i 's/^exit-idle = 200/exit-idle = soon/' "$T/good.conf"
kill -HUP "$first"
wait_for 'grep -q "configuration not reloaded" "$T/first.err"' 20 || fail "SIGHUP: bad file"
grep -q "good.conf:4: exit-idle = 'soon': expected an integer" "$T/first.err" \
  || { grep SIGHUP "$T/first.err"; fail "SIGHUP: the bad line is not named"; }
kill -0 "$first" || fail "a bad file on SIGHUP stopped ampd"
say "ok: SIGHUP reloads what it can, names the rest, survives a bad file"
kill -TERM "$first"
wait "$first" || fail "the first ampd did not stop cleanly on SIGTERM"
say "PASS ($n bad-value cases)"
