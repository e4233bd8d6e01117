#!/usr/bin/env python3
"""capture_replies.py IFACE OUT.pcap READY_FILE

Records the frames arriving on IFACE (a raw AF_PACKET socket; frames this host
sends are skipped) into a classic pcap file with their arrival times, until
SIGTERM; frames queued before the signal are still recorded. Creates READY_FILE
once the socket is bound, so a caller can start traffic after it. The socket buffer is 64 MiB (SO_RCVBUFFORCE as root): a slow,
shared machine must not make the recorder lose replies. At exit it prints the
kernel's count of frames it could not queue for us; if that is not zero it
exits 3, so a test tells a lost capture from a missing answer. Used by the
tests and benchmarks that run ampd on net_af_packet in a namespace of their own
(tests/e2e_afpacket.sh, tests/e2e_admin_pay.sh, bench/soak.py)."""
import signal
import socket
import struct
import sys
import time

s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
try:
    s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
except OSError:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
s.bind((sys.argv[1], 0))
SOL_PACKET, PACKET_STATISTICS = 263, 6
s.settimeout(0.2)
out = open(sys.argv[2], 'wb')
out.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
out.flush()
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
open(sys.argv[3], 'w').close()  # ready
def record(data, addr):
    if addr[2] == socket.PACKET_OUTGOING:
        return
    now = time.time_ns() // 1000
    out.write(struct.pack('<IIII', now // 1000000, now % 1000000, len(data),
                          len(data)) + data)


while not stop:
    try:
        record(*s.recvfrom(65535))
    except socket.timeout:
        continue
# SIGTERM: what the kernel has queued already arrived before the signal; keep it.
s.setblocking(False)
while True:
    try:
        record(*s.recvfrom(65535))
    except BlockingIOError:
        break
out.close()
got, drops = struct.unpack('II', s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
if drops:
    print(f"capture_replies: the kernel dropped {drops} frame(s) on {sys.argv[1]} "
          f"before this recorder read them", file=sys.stderr)
    sys.exit(3)
