#!/usr/bin/env bash
# e2e_capture.sh: the reply recorder (tests/capture_replies.py) that the
# af_packet tests trust must not lose what the kernel already queued for it.
# Frames are sent on va while the recorder is stopped (SIGSTOP), then it gets
# SIGTERM and SIGCONT: every frame must be in its pcap, in order, with a
# timestamp. (Before the fix it threw the queued frames away at SIGTERM; on a
# loaded CI machine that showed up as "no answer" from ampd.)
# Then with --sent: frames sent out of vb (as tcpreplay's are) go to the second
# pcap and only there, in order, and the two files' timestamps are on one
# clock: each frame sent on vb is stamped no later than the frame that va sent
# after it arrived (a ping-pong), which the wire latency of ampd-check --sent
# relies on.
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

# read_pcap FILE: prints "seconds.micro number" per experimental frame.
cat >"$T/read.py" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
assert struct.unpack_from("<I", d)[0] == 0xa1b2c3d4, "not a classic microsecond pcap"
off = 24
while off < len(d):
    sec, usec, incl, _ = struct.unpack_from("<IIII", d, off)
    frame = d[off + 16: off + 16 + incl]
    off += 16 + incl
    assert sec > 1_600_000_000, "no timestamp"
    if frame[12:14] == b"\x88\xb5":
        print(sec * 1_000_000 + usec, struct.unpack_from(">I", frame, 14)[0])
PY
python3 - "$T/read.py" "$T/got.pcap" "$N" <<'PY' || fail "the recorder lost frames queued before SIGTERM"
import subprocess, sys
seen = [int(l.split()[1]) for l in subprocess.check_output(["python3"] + sys.argv[1:3], text=True).split("\n") if l]
want = list(range(int(sys.argv[3])))
print(f"recorded {len(seen)} of {len(want)} frames")
sys.exit(0 if seen == want else 1)
PY

# --sent: ping-pong, frame i out of vb, then frame 100000+i out of va once vb's
# frame has arrived on va.
rm -f "$T/ready"
ip netns exec "$NS" python3 "$CAPTURE_REPLIES" vb "$T/got2.pcap" "$T/ready" --sent "$T/sent.pcap" &
cap=$!
E2E_PIDS+=("$cap")
wait_for '[ -e "$T/ready" ]' 10 || fail "the recorder (--sent) did not start"
in_ns python3 - "$N" <<'PY' || fail "could not ping-pong over va/vb"
import socket, struct, sys
a = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5))
a.bind(("va", 0x88b5))
a.settimeout(5)
b = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
b.bind(("vb", 0))
def frame(i):
    return b"\xff" * 6 + b"\x02\0\0\0\0\x02" + b"\x88\xb5" + struct.pack(">I", i) + bytes(200)
for i in range(int(sys.argv[1])):
    b.send(frame(i))
    while True:
        got = a.recv(2048)
        if got[12:14] == b"\x88\xb5" and struct.unpack_from(">I", got, 14)[0] == i:
            break
    a.send(frame(100000 + i))
PY
stop_capture "$cap"
python3 - "$T/read.py" "$T/got2.pcap" "$T/sent.pcap" "$N" <<'PY' || fail "--sent: wrong frames or timestamps"
import subprocess, sys
def rd(p):
    return [tuple(map(int, l.split())) for l in subprocess.check_output(["python3", sys.argv[1], p], text=True).split("\n") if l]
got, sent, n = rd(sys.argv[2]), rd(sys.argv[3]), int(sys.argv[4])
ok = True
if [i for _, i in sent] != list(range(n)):
    print(f"sent.pcap: {len(sent)} frames, want 0..{n - 1} in order"); ok = False
if [i for _, i in got] != [100000 + i for i in range(n)]:
    print(f"got2.pcap: {len(got)} frames, want only va's {n} answers in order"); ok = False
if ok:
    lat = [g[0] - s[0] for s, g in zip(sent, got)]
    bad = [x for x in lat if x < 0]
    lat.sort()
    print(f"--sent: {len(sent)} sent and {len(got)} answers recorded; ping-pong on the"
          f" recorder's stamps: min {lat[0]} us, median {lat[len(lat) // 2]} us, max {lat[-1]} us")
    if bad:
        print(f"{len(bad)} answers stamped before their request"); ok = False
sys.exit(0 if ok else 1)
PY
say "PASS"
