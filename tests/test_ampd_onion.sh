#!/usr/bin/env bash
# test_ampd_onion.sh: drives the built ampd-onion tool against the BOLT #4
# vectors (onion-test.json, onion-error-test.json) and amp-derivation.txt, and
# checks its error exits. Plain bash + grep/sed (no jq, no python).
#
#   bash tests/test_ampd_onion.sh BUILD_DIR
#
# Vectors come from $AMP_VECTORS, else ../shared/vectors beside the source
# tree. Prints each failure; exits 0 if all held, 1 otherwise.
set -u

BUILD=${1:-}
if [ -z "$BUILD" ]; then
  echo "usage: bash tests/test_ampd_onion.sh BUILD_DIR" >&2
  exit 1
fi
TOOL=$BUILD/crypto/ampd-onion
HERE=$(cd "$(dirname "$0")" && pwd)
VEC=${AMP_VECTORS:-$HERE/../../shared/vectors}
ONION_JSON=$VEC/bolt04/onion-test.json
ERROR_JSON=$VEC/bolt04/onion-error-test.json
DERIV=$VEC/amp-derivation.txt

checks=0
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
ok_if() { # ok_if DESCRIPTION COMMAND...: one check
  checks=$((checks + 1))
  local what=$1; shift
  "$@" || fail "$what"
}

for f in "$TOOL" "$ONION_JSON" "$ERROR_JSON" "$DERIV"; do
  if [ ! -e "$f" ]; then echo "FAIL: missing $f" >&2; exit 1; fi
done

# ---- helpers --------------------------------------------------------------

# jstr KEY FILE: every string value of "KEY" in FILE, one a line, in order.
jstr() { grep -o "\"$1\": *\"[^\"]*\"" "$2" | sed 's/.*: *"\([^"]*\)"$/\1/'; }
# jfield KEY JSONTEXT: the value of KEY in one line of JSON (string unquoted).
jfield() { printf '%s\n' "$2" | grep -o "\"$1\": *\(\"[^\"]*\"\|[a-z0-9]*\)" | head -1 |
             sed 's/^"[^"]*": *//; s/^"\(.*\)"$/\1/'; }
# strip_bigsize HEX: drops the BigSize length prefix of a hop payload.
strip_bigsize() {
  case ${1:0:2} in
    fd) printf '%s' "${1:6}" ;;
    fe) printf '%s' "${1:10}" ;;
    ff) printf '%s' "${1:18}" ;;
    *) printf '%s' "${1:2}" ;;
  esac
}
sha256_hex() { printf '%b' "$(printf '%s' "$1" | sed 's/../\\x&/g')" | sha256sum | cut -d' ' -f1; }
# run CMD...: sets OUT (stdout), ERR (stderr), RC.
run() {
  local e
  e=$(mktemp)
  OUT=$("$@" 2>"$e")
  RC=$?
  ERR=$(cat "$e")
  rm -f "$e"
}

# ---- the onion vector ------------------------------------------------------

SESSION=$(jstr session_key "$ONION_JSON")
ASSOC=$(jstr associated_data "$ONION_JSON")
ONION=$(jstr onion "$ONION_JSON")
mapfile -t PUBS < <(jstr pubkey "$ONION_JSON")
mapfile -t PAYS < <(jstr payload "$ONION_JSON")
mapfile -t KEYS < <(sed -n '/"decode"/,/\]/p' "$ONION_JSON" | grep -o '[0-9a-f]\{64\}')
mapfile -t SECRETS < <(jstr hop_shared_secret "$ERROR_JSON")
ERRPKT=$(jstr errorpacket "$ERROR_JSON")
FAILMSG=$(jstr failure_message "$ERROR_JSON")
N=${#PUBS[@]}
if [ "$N" -ne 5 ] || [ ${#PAYS[@]} -ne 5 ] || [ ${#KEYS[@]} -ne 5 ] || [ ${#SECRETS[@]} -ne 5 ] ||
   [ ${#ONION} -ne 2732 ]; then
  echo "FAIL: could not read the vectors" >&2
  exit 1
fi

# build: byte-exact.
hop_args=()
for i in $(seq 0 $((N - 1))); do
  hop_args+=(--hop "${PUBS[$i]}:$(strip_bigsize "${PAYS[$i]}")")
done
run "$TOOL" build --session-key "$SESSION" --assoc-data "$ASSOC" "${hop_args[@]}"
ok_if "build exits 0 (rc=$RC: $ERR)" test "$RC" -eq 0
ok_if "build output equals the vector onion" test "$OUT" = "$ONION"

# peel hop by hop: payloads, shared secrets, final flag, next onions.
cur=$ONION
SS=()
for i in $(seq 0 $((N - 1))); do
  run "$TOOL" peel --node-key "${KEYS[$i]}" --assoc-data "$ASSOC" --onion "$cur"
  ok_if "peel hop $i exits 0 (rc=$RC: $ERR $OUT)" test "$RC" -eq 0
  ok_if "peel hop $i payload" test "$(jfield payload "$OUT")" = "$(strip_bigsize "${PAYS[$i]}")"
  ok_if "peel hop $i shared_secret" test "$(jfield shared_secret "$OUT")" = "${SECRETS[$i]}"
  ok_if "peel output never holds the node key (hop $i)" \
    bash -c '! grep -q "$0" <<<"$1"' "${KEYS[$i]}" "$OUT$ERR"
  SS+=("$(jfield shared_secret "$OUT")")
  if [ "$i" -lt $((N - 1)) ]; then
    ok_if "peel hop $i is not final" test "$(jfield final "$OUT")" = false
    cur=$(jfield next_onion "$OUT")
    ok_if "peel hop $i next_onion is 1366 bytes" test ${#cur} -eq 2732
  else
    ok_if "peel hop $i is final" test "$(jfield final "$OUT")" = true
    ok_if "peel hop $i next_onion is null" test "$(jfield next_onion "$OUT")" = null
  fi
done

# failure onion: created at hop 4, wrapped at 3..0, byte-exact; decoded.
run "$TOOL" fail --shared-secret "${SS[4]}" --failure "$FAILMSG"
ok_if "fail exits 0 (rc=$RC: $ERR)" test "$RC" -eq 0
pkt=$OUT
for i in 3 2 1 0; do
  run "$TOOL" wrap --shared-secret "${SS[$i]}" --packet "$pkt"
  ok_if "wrap at hop $i exits 0" test "$RC" -eq 0
  pkt=$OUT
done
ok_if "failure packet equals the vector errorpacket" test "$pkt" = "$ERRPKT"
ss_args=()
for s in "${SS[@]}"; do ss_args+=(--shared-secret "$s"); done
run "$TOOL" decode-fail "${ss_args[@]}" --packet "$ERRPKT"
ok_if "decode-fail exits 0 (rc=$RC: $ERR $OUT)" test "$RC" -eq 0
ok_if "decode-fail hop_index 4" test "$(jfield hop_index "$OUT")" = 4
ok_if "decode-fail failure_message" test "$(jfield failure_message "$OUT")" = "$FAILMSG"
ok_if "decode-fail failure_code" test "$(jfield failure_code "$OUT")" = $((16#$FAILMSG))
run "$TOOL" decode-fail "${ss_args[@]:0:8}" --packet "$ERRPKT"
ok_if "decode-fail without the erring hop exits 1" test "$RC" -eq 1
ok_if "decode-fail without the erring hop says so" grep -q '"error"' <<<"$OUT"

# ---- peel failures -----------------------------------------------------------

# peel_fails DESCRIPTION ONION CODE: exit 1, JSON error with failure_code and
# sha256_of_onion of the onion given.
peel_fails() {
  run "$TOOL" peel --node-key "${KEYS[0]}" --assoc-data "$ASSOC" --onion "$2"
  ok_if "$1: exit 1 (rc=$RC)" test "$RC" -eq 1
  ok_if "$1: error field" grep -q '"error": "' <<<"$OUT"
  ok_if "$1: failure_code $3 (got $(jfield failure_code "$OUT"))" test "$(jfield failure_code "$OUT")" = "$3"
  ok_if "$1: sha256_of_onion" test "$(jfield sha256_of_onion "$OUT")" = "$(sha256_hex "$2")"
}
peel_fails "version 1" "01${ONION:2}" 49156
peel_fails "key prefix 04" "0004${ONION:4}" 49158
last=${ONION:2730:2}
flipped=$(printf '%02x' $(((16#$last) ^ 1)))
peel_fails "hmac bit flipped" "${ONION:0:2730}$flipped" 49157
peel_fails "payload byte flipped" "${ONION:0:100}$(printf '%02x' $(((16#${ONION:100:2}) ^ 128)))${ONION:102}" 49157
run "$TOOL" peel --node-key "${KEYS[0]}" --assoc-data "${ASSOC:0:62}00" --onion "$ONION"
ok_if "wrong associated data: exit 1" test "$RC" -eq 1
ok_if "wrong associated data: invalid_onion_hmac" test "$(jfield failure_code "$OUT")" = 49157

# ---- AMP derivation ------------------------------------------------------------

# The "root= share= index= preimage= hash=" records of the file (section A).
nder=0
root='' share='' index='' pre=''
while IFS= read -r line; do
  case $line in
    root=*) root=${line#root=} ;;
    share=*) share=${line#share=} ;;
    index=*) index=${line#index=}; index=${index%% *} ;;
    preimage=*) pre=${line#preimage=} ;;
    hash=*)
      run "$TOOL" amp-derive --root "$root" --share "$share" --index "$index"
      ok_if "amp-derive index $index exits 0" test "$RC" -eq 0
      ok_if "amp-derive index $index preimage" test "$(jfield preimage "$OUT")" = "$pre"
      ok_if "amp-derive index $index hash" test "$(jfield hash "$OUT")" = "${line#hash=}"
      nder=$((nder + 1)) ;;
  esac
done <"$DERIV"
ok_if "amp-derivation.txt gave derivations ($nder)" test "$nder" -ge 3

# ---- usage errors: exit 2 --------------------------------------------------------

usage_exit() { # usage_exit DESCRIPTION ARGS...
  local what=$1; shift
  run "$TOOL" "$@"
  ok_if "$what: exit 2 (rc=$RC)" test "$RC" -eq 2
  ok_if "$what: says something on stderr" test -n "$ERR"
}
K0=${KEYS[0]}
usage_exit "no arguments"
usage_exit "unknown command" frobnicate
usage_exit "unknown option" peel --node-key "$K0" --assoc-data "$ASSOC" --onion "$ONION" --frob 1
usage_exit "missing --onion" peel --node-key "$K0" --assoc-data "$ASSOC"
usage_exit "option without value" peel --node-key "$K0" --assoc-data "$ASSOC" --onion
usage_exit "bad hex onion" peel --node-key "$K0" --assoc-data "$ASSOC" --onion "zz${ONION:2}"
usage_exit "odd hex onion" peel --node-key "$K0" --assoc-data "$ASSOC" --onion "${ONION:1}"
usage_exit "short onion" peel --node-key "$K0" --assoc-data "$ASSOC" --onion "${ONION:0:2730}"
usage_exit "short node key" peel --node-key "${K0:2}" --assoc-data "$ASSOC" --onion "$ONION"
usage_exit "zero node key" peel --node-key "$(printf '0%.0s' $(seq 64))" --assoc-data "$ASSOC" --onion "$ONION"
usage_exit "build without hops" build --session-key "$SESSION" --assoc-data "$ASSOC"
usage_exit "build hop without colon" build --session-key "$SESSION" --assoc-data "$ASSOC" --hop "${PUBS[0]}"
usage_exit "build hop bad pubkey hex" build --session-key "$SESSION" --assoc-data "$ASSOC" --hop "zz${PUBS[0]:2}:0202"
usage_exit "fail bad secret" fail --shared-secret 00 --failure 2002
usage_exit "wrap odd packet" wrap --shared-secret "${SS[0]}" --packet abc
usage_exit "amp-derive bad index" amp-derive --root "$SESSION" --share "$SESSION" --index 4294967296
usage_exit "amp-derive negative index" amp-derive --root "$SESSION" --share "$SESSION" --index -1
usage_exit "amp-derive text index" amp-derive --root "$SESSION" --share "$SESSION" --index seven

# A node key with a bad digit, or as a stray word, is never echoed.
badkey="${K0:0:62}zz"
run "$TOOL" peel --node-key "$badkey" --assoc-data "$ASSOC" --onion "$ONION"
ok_if "bad node key hex: exit 2" test "$RC" -eq 2
ok_if "bad node key hex: not echoed" bash -c '! grep -q "$0" <<<"$1"' "${K0:0:16}" "$OUT$ERR"
run "$TOOL" peel "$K0"
ok_if "stray node key word: exit 2" test "$RC" -eq 2
ok_if "stray node key word: not echoed" bash -c '! grep -q "$0" <<<"$1"' "${K0:0:16}" "$OUT$ERR"

# build failures that are not usage errors: exit 1.
run "$TOOL" build --session-key "$(printf '0%.0s' $(seq 64))" --assoc-data "$ASSOC" "${hop_args[@]}"
ok_if "build with a zero session key: exit 1 (rc=$RC)" test "$RC" -eq 1
run "$TOOL" build --session-key "$SESSION" --assoc-data "$ASSOC" --hop "04${PUBS[0]:2}:0202"
ok_if "build with an off-curve hop key: exit 1 (rc=$RC)" test "$RC" -eq 1
run "$TOOL" --help
ok_if "--help exits 0" test "$RC" -eq 0

echo "test_ampd_onion: $checks checks, $fails failed"
[ "$fails" -eq 0 ]
