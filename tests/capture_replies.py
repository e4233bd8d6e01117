#!/usr/bin/env python3
"""capture_replies.py IFACE OUT.pcap READY_FILE [--sent SENT.pcap]

Records the frames arriving on IFACE (a raw AF_PACKET socket; frames this host
sends are skipped) into a classic pcap file with their arrival times, until
SIGTERM; frames queued before the signal are still recorded. Creates READY_FILE
once the socket is bound, so a caller can start traffic after it. The socket buffer is 64 MiB (SO_RCVBUFFORCE as root): a slow,
shared machine must not make the recorder lose replies. At exit it prints the
kernel's count of frames it could not queue for us; if that is not zero it
exits 3, so a test tells a lost capture from a missing answer. Used by the
tests and benchmarks that run ampd on net_af_packet in a namespace of their own
(tests/e2e_afpacket.sh, tests/e2e_admin_pay.sh, bench/soak.py, bench/e2e.py).

--sent SENT.pcap also records the frames sent out of IFACE (PACKET_OUTGOING:
what tcpreplay sends towards ampd) into SENT.pcap, so that `ampd-check --sent`
can match each request to its answer and measure the latency on the wire.

Timestamps are the kernel's (SO_TIMESTAMPNS): a sent frame is stamped when it
is handed to IFACE's driver, an arriving one when IFACE receives it, so the
recorder's own scheduling delay is not in them. Where the kernel gives no stamp
the time of the read is used (time.time_ns()). Both files are classic pcap with
microsecond timestamps."""
import signal
import socket
import struct
import sys
import time

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; SCM_TIMESTAMPNS is the same
SOL_PACKET, PACKET_STATISTICS = 263, 6
HDR = struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1)


def usage():
    sys.exit("usage: capture_replies.py IFACE OUT.pcap READY_FILE [--sent SENT.pcap]")


args = sys.argv[1:]
sent_path = None
if "--sent" in args:
    i = args.index("--sent")
    if i + 1 >= len(args):
        usage()
    sent_path = args[i + 1]
    del args[i:i + 2]
if len(args) != 3:
    usage()
iface, out_path, ready_path = args

s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
try:
    s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
except OSError:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
try:
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
except OSError:
    pass  # no kernel stamps: the time of the read
s.bind((iface, 0))
s.settimeout(0.2)
out = open(out_path, 'wb')
out.write(HDR)
out.flush()
sent = None
if sent_path:
    sent = open(sent_path, 'wb')
    sent.write(HDR)
    sent.flush()
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
open(ready_path, 'w').close()  # ready
CMSG_SPACE = socket.CMSG_SPACE(16)


def record(data, anc, addr):
    if addr[2] == socket.PACKET_OUTGOING:
        if sent is None:
            return
        f = sent
    else:
        f = out
    us = None
    for level, kind, val in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(val) >= 16:
            sec, nsec = struct.unpack_from('qq', val)
            if sec:
                us = sec * 1000000 + nsec // 1000
    if us is None:
        us = time.time_ns() // 1000
    f.write(struct.pack('<IIII', us // 1000000, us % 1000000, len(data), len(data)) + data)


def recv():
    data, anc, _, addr = s.recvmsg(65535, CMSG_SPACE)
    record(data, anc, addr)


while not stop:
    try:
        recv()
    except socket.timeout:
        continue
# SIGTERM: what the kernel has queued already arrived before the signal; keep it.
s.setblocking(False)
while True:
    try:
        recv()
    except BlockingIOError:
        break
out.close()
if sent:
    sent.close()
got, drops = struct.unpack('II', s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
if drops:
    print(f"capture_replies: the kernel dropped {drops} frame(s) on {iface} "
          f"before this recorder read them", file=sys.stderr)
    sys.exit(3)
