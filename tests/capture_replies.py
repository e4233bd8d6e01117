#!/usr/bin/env python3
"""capture_replies.py IFACE OUT.pcap READY_FILE [--sent SENT.pcap]

Records the frames arriving on IFACE (a raw AF_PACKET socket; frames this host
sends are skipped) into a classic pcap file with their arrival times, until
SIGTERM; frames queued before the signal are still recorded. Creates READY_FILE
once the socket is bound, so a caller can start traffic after it. The kernel
queues frames for us in a 64 MiB ring (below): a slow, shared machine must not
make the recorder lose replies. At exit it prints the kernel's count of frames
it could not queue for us; if that is not zero it exits 3, so a test tells a
lost capture from a missing answer. Used by the tests and benchmarks that run
ampd on net_af_packet in a namespace of their own (tests/e2e_afpacket.sh,
tests/e2e_admin_pay.sh, bench/soak.py, bench/e2e.py).

--sent SENT.pcap also records the frames sent out of IFACE (PACKET_OUTGOING:
what tcpreplay sends towards ampd) into SENT.pcap, so that `ampd-check --sent`
can match each request to its answer and measure the latency on the wire.

Timestamps are the kernel's: a sent frame is stamped when it is handed to
IFACE's driver, an arriving one when IFACE receives it, so the recorder's own
delay is not in them. Both files are classic pcap with microsecond timestamps.

The socket is a TPACKET_V3 ring (64 blocks of 1 MiB, mapped into this process):
the kernel fills a block, hands it over when full or after RETIRE_MS, and this
loop writes every frame of the block, then gives it back. That costs about a
third of a recvmsg per frame (measured here: ~7 us per frame against ~15 us),
which matters because the recorder shares the CPUs with ampd in the benchmarks."""
import mmap
import select
import signal
import socket
import struct
import sys
import time

SOL_PACKET, PACKET_RX_RING, PACKET_STATISTICS, PACKET_VERSION = 263, 5, 6, 10
TPACKET_V3, TP_STATUS_USER, ETH_P_ALL = 2, 1, 3
BLOCK, NBLOCK, RETIRE_MS = 1 << 20, 64, 10
PCAP_HDR = struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1)
# struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1:
# block_status, num_pkts, offset_to_first_pkt
BLOCK_HDR = struct.Struct('<III')
BLOCK_STATUS = 8
# struct tpacket3_hdr (48 bytes): next_offset, sec, nsec, snaplen, len, status,
# mac, net, ...; then struct sockaddr_ll, whose sll_pkttype is at +10
FRAME_HDR = struct.Struct('<IIIIIIH')
PKTTYPE = 48 + 10
REC = struct.Struct('<IIII')


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

# Protocol 0 until bound: nothing from other interfaces gets in meanwhile.
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
s.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
# struct tpacket_req3: block_size, block_nr, frame_size, frame_nr,
# retire_blk_tov (ms), sizeof_priv, feature_req_word
s.setsockopt(SOL_PACKET, PACKET_RX_RING,
             struct.pack('IIIIIII', BLOCK, NBLOCK, 2048, BLOCK // 2048 * NBLOCK, RETIRE_MS, 0, 0))
ring = mmap.mmap(s.fileno(), BLOCK * NBLOCK)
s.bind((iface, ETH_P_ALL))
out = open(out_path, 'wb')
out.write(PCAP_HDR)
out.flush()
sent = None
if sent_path:
    sent = open(sent_path, 'wb')
    sent.write(PCAP_HDR)
    sent.flush()
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
open(ready_path, 'w').close()  # ready
block = 0


def drain():
    """Writes every frame of the blocks the kernel has handed over, gives the
    blocks back; returns the number of frames."""
    global block
    n = 0
    while True:
        base = block * BLOCK
        status, num, first = BLOCK_HDR.unpack_from(ring, base + BLOCK_STATUS)
        if not status & TP_STATUS_USER:
            return n
        got, went = [], []
        off = base + first
        for _ in range(num):
            nxt, sec, nsec, snap, length, _, mac = FRAME_HDR.unpack_from(ring, off)
            to = went if ring[off + PKTTYPE] == socket.PACKET_OUTGOING else got
            to.append(REC.pack(sec, nsec // 1000, snap, length))
            to.append(ring[off + mac:off + mac + snap])
            off += nxt
        out.write(b''.join(got))
        if sent is not None:
            sent.write(b''.join(went))
        n += num
        struct.pack_into('<I', ring, base + BLOCK_STATUS, 0)  # TP_STATUS_KERNEL
        block = (block + 1) % NBLOCK


poller = select.poll()
poller.register(s.fileno(), select.POLLIN)
while not stop:
    try:
        poller.poll(200)
    except InterruptedError:
        pass
    drain()
# SIGTERM: what the kernel has queued already arrived before the signal; keep
# it. A block that is not full is handed over RETIRE_MS after its first frame.
deadline = time.monotonic() + 2
while time.monotonic() < deadline:
    time.sleep(3 * RETIRE_MS / 1000)
    if drain() == 0:
        break
out.close()
if sent:
    sent.close()
_, drops, _ = struct.unpack('III', s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12))
if drops:
    print(f"capture_replies: the kernel dropped {drops} frame(s) on {iface} "
          f"before this recorder read them", file=sys.stderr)
    sys.exit(3)
