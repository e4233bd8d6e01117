#!/usr/bin/env bash
# e2e_capture.sh: the reply recorder (tests/capture_replies.py) that the
# af_packet tests trust must not lose what the kernel already queued for it.
# Frames are sent on va while the recorder is stopped (SIGSTOP), then it gets
# SIGTERM and SIGCONT: every frame must be in its pcap, in order, with a
# timestamp. (Before the fix it threw the queued frames away at SIGTERM; on a
# loaded CI machine that showed up as "no answer" from ampd.)
source "$(dirname "$0")/e2e_lib.sh"
command -v python3 >/dev/null || skip "python3 is needed"
veth_ns cap
N=300

ip netns exec "$NS" python3 "$CAPTURE_REPLIES" vb "$T/got.pcap" "$T/ready" &
cap=$!
E2E_PIDS+=("$cap")
wait_for '[ -e "$T/ready" ]' 10 || fail "the recorder did not start"
kill -STOP "$cap"
in_ns python3 - "$N" <<'PY' || fail "could not send on va"
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("va", 0))
for i in range(int(sys.argv[1])):
    # broadcast, a locally administered source, an experimental ethertype
    s.send(b"\xff" * 6 + b"\x02\0\0\0\0\x01" + b"\x88\xb5" + struct.pack(">I", i) + bytes(1000))
PY
kill -TERM "$cap"
kill -CONT "$cap"
rc=0
wait "$cap" || rc=$?
[ "$rc" -eq 0 ] || fail "the recorder exited $rc"
python3 - "$T/got.pcap" "$N" <<'PY' || fail "the recorder lost frames queued before SIGTERM"
import struct, sys
d = open(sys.argv[1], "rb").read()
off, seen = 24, []
while off < len(d):
    sec, usec, incl, _ = struct.unpack_from("<IIII", d, off)
    frame = d[off + 16: off + 16 + incl]
    off += 16 + incl
    assert sec > 1_600_000_000, "no timestamp"
    if frame[12:14] == b"\x88\xb5":
        seen.append(struct.unpack_from(">I", frame, 14)[0])
want = list(range(int(sys.argv[2])))
print(f"recorded {len(seen)} of {len(want)} frames")
sys.exit(0 if seen == want else 1)
PY
say "PASS"
