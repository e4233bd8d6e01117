# e2e_lib.sh: shared pieces of the end-to-end harnesses (sourced, not run).
#
# Each harness gets its own temporary directory ($T), its own EAL
# --file-prefix, and kills only the processes it started. Binaries come from
# the environment meson sets (AMPD, AMPD_PKTGEN, AMPD_CHECK, AMPD_STORECHECK)
# or from $AMP_BUILD (default ./build). Exit codes: 0 pass, 1 fail, 77 skip
# (with the reason printed).
set -euo pipefail

E2E_NAME=$(basename "${0%.sh}")
AMP_BUILD=${AMP_BUILD:-build}
AMPD=${AMPD:-$AMP_BUILD/dataplane/ampd}
AMPD_PKTGEN=${AMPD_PKTGEN:-$AMP_BUILD/bench/ampd-pktgen}
AMPD_CHECK=${AMPD_CHECK:-$AMP_BUILD/bench/ampd-check}
AMPD_STORECHECK=${AMPD_STORECHECK:-$AMP_BUILD/dataplane/ampd-storecheck}

say() { printf '== %s: %s\n' "$E2E_NAME" "$*"; }
skip() { printf 'SKIP %s: %s\n' "$E2E_NAME" "$*"; exit 77; }
fail() { printf 'FAIL %s: %s\n' "$E2E_NAME" "$*" >&2; exit 1; }

need() {
  local b
  for b in "$@"; do [ -x "$b" ] || skip "$b is not built"; done
}

T=$(mktemp -d "/tmp/ampd-$E2E_NAME.XXXXXX")
E2E_PIDS=()
e2e_cleanup() {
  local rc=$? p
  for p in "${E2E_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  if declare -F e2e_cleanup_extra >/dev/null; then e2e_cleanup_extra || true; fi
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    say "left $T for inspection"
  elif [ -z "${KEEP:-}" ]; then
    rm -rf "$T"
  fi
  rm -rf "/var/run/dpdk/ampd-$E2E_NAME-$$"* 2>/dev/null || true
  exit "$rc"
}
trap e2e_cleanup EXIT

# EAL arguments common to every run: no hugepages, no PCI, our own prefix.
# eal_args TAG: prints them (one word each), TAG makes the prefix unique.
eal_args() {
  echo "-l 0-1 --no-huge --no-pci -m 512 --file-prefix ampd-$E2E_NAME-$$-$1 --log-level=lib.eal:error"
}

hex32() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

# new_node_key PATH: a node key file, mode 0600.
new_node_key() {
  (umask 077 && hex32 > "$1")
}

# Two gateways with fresh keys: GW1_KEY, GW2_KEY, and the flags for both tools.
GW1_KEY=$(hex32)
GW2_KEY=$(hex32)
PKTGEN_GW=(--gateway "1:$GW1_KEY" --gateway "2:$GW2_KEY")
AMPD_GW=(--gateway "gw1,id=1,key=$GW1_KEY" --gateway "gw2,id=2,key=$GW2_KEY")

# pktgen OUT.pcap NODEKEY [pktgen options...]
pktgen() {
  local out=$1 key=$2
  shift 2
  "$AMPD_PKTGEN" --node-key-file "$key" "${PKTGEN_GW[@]}" -q -o "$out" "$@" \
    || fail "ampd-pktgen $*"
}

# wait_file PATH SECONDS: until PATH exists.
wait_for() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    eval "$1" && return 0
    sleep 0.1
  done
  return 1
}

# veth_ns TAG: a network namespace of this test's own ($NS) holding a veth pair
# va <-> vb (MTU 9000, vb promiscuous, IPv6 off), removed at exit; in_ns runs a
# command in it. Skips (77) where namespaces cannot be made. (Start background
# jobs with `ip netns exec "$NS" ...` directly so that $! is the process.)
# CAPTURE_REPLIES records what arrives on an interface (tests/capture_replies.py).
CAPTURE_REPLIES="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/capture_replies.py"
in_ns() { ip netns exec "$NS" "$@"; }
# stop_capture PID: stops a capture_replies.py started on vb and fails the test,
# saying so, if the recorder itself lost frames (then a missing answer would be
# the harness's fault, not ampd's). Prints the veth pair's counters either way.
stop_capture() {
  local rc=0
  sleep 0.3
  kill -TERM "$1" 2>/dev/null
  wait "$1" || rc=$?
  in_ns ip -s link show vb >"$T/vb.stats" 2>&1 || true
  [ "$rc" -ne 3 ] || { cat "$T/vb.stats"; fail "the reply recorder lost frames (see above); not an ampd fault"; }
}
veth_ns() {
  command -v ip >/dev/null || skip "iproute2 (ip) is not installed"
  NS="ampd-$1-$$"
  ip netns add "$NS" 2>"$T/netns.err" \
    || skip "cannot create a network namespace here: $(head -1 "$T/netns.err")"
  e2e_cleanup_extra() { ip netns del "$NS" 2>/dev/null; }
  in_ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || true
  in_ns ip link set lo up
  in_ns ip link add va type veth peer name vb || fail "cannot make a veth pair in $NS"
  local i
  for i in va vb; do in_ns ip link set "$i" mtu 9000 up || fail "cannot bring $i up"; done
  in_ns ip link set vb promisc on
}
