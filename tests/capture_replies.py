#!/usr/bin/env python3
"""capture_replies.py IFACE OUT.pcap READY_FILE

Records the frames arriving on IFACE (a raw AF_PACKET socket; frames this host
sends are skipped) into a classic pcap file, until SIGTERM. Creates READY_FILE
once the socket is bound, so a caller can start traffic after it. Used by the
tests and benchmarks that run ampd on net_af_packet in a namespace of their own
(tests/e2e_afpacket.sh, tests/e2e_admin_pay.sh, bench/soak.py)."""
import signal
import socket
import struct
import sys

s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((sys.argv[1], 0))
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
while not stop:
    try:
        data, addr = s.recvfrom(65535)
    except socket.timeout:
        continue
    if addr[2] == socket.PACKET_OUTGOING:
        continue
    out.write(struct.pack('<IIII', 0, 0, len(data), len(data)) + data)
out.close()
