#!/usr/bin/python3
"""A scripted tunneldigger client for the broker's integration tests.

Speaks the control protocol by hand (COOKIE, PREPARE, TUNNEL) with byte layouts from
tunneldigger-protocol.md, then sends one ARP request as an L2TPv3 data packet and
prints the broker's answer, so a test can check both directions byte for byte.

Usage: l2tp-probe.py BROKER_IP PORT CLIENT_TID ARP_TARGET_IP [hostile]
Prints key=value lines. With 'hostile' it first sends malformed datagrams.
"""
import socket, struct, sys, time

broker = (sys.argv[1], int(sys.argv[2]))
tid = int(sys.argv[3])
target = socket.inet_aton(sys.argv[4])
hostile = len(sys.argv) > 5 and sys.argv[5] == "hostile"

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(broker)
s.settimeout(2)

def msg(kind, payload=b""):
    data = b"\x80\x73\xa7\x01" + bytes([kind, len(payload)]) + payload
    return data + b"\x00" * max(0, 12 - len(data))

def expect(kind):
    deadline = time.time() + 5
    while time.time() < deadline:
        data = s.recv(2048)
        if data[:4] == b"\x80\x73\xa7\x01" and data[4] == kind:
            return data[6:6 + data[5]]
    raise SystemExit("no message of type %d" % kind)

if hostile:
    s.send(b"\x80\x73\xa7\x01\x05")                       # truncated header
    s.send(b"\x81\x73\xa7\x01\x05\x00" + b"\x00" * 6)     # wrong magic
    s.send(b"\x80\x73\xa7\x01\x05\x08\x00\x01")           # L beyond the datagram
    forged = b"\x00\x00" + b"\xAA" * 6                     # a cookie the broker never issued
    s.send(msg(2, forged + b"\x03evil" + struct.pack(">II", tid, 1)))
    time.sleep(0.3)

s.send(msg(1, b"X" * 8))
cookie = expect(1)
uuid = b"probe-%d" % tid
s.send(msg(2, cookie + bytes([len(uuid)]) + uuid + struct.pack(">II", tid, 1)))
tunnel = expect(4)
broker_tid, features = struct.unpack(">II", tunnel[:8])
print("broker_tunnel=%d" % broker_tid)
print("features=%d" % features)

# Retransmitted PREPARE: the same TUNNEL again, feature word included.
s.send(msg(2, cookie + bytes([len(uuid)]) + uuid + struct.pack(">II", tid, 1)))
again = expect(4)
print("retransmit_same=%s" % ("yes" if again == tunnel else "no"))

mac = bytes.fromhex("020000000002")
arp = struct.pack(">HHBBH", 1, 0x0800, 6, 4, 1) + mac + socket.inet_aton("10.99.5.2") + b"\x00" * 6 + target
frame = b"\xff" * 6 + mac + b"\x08\x06" + arp
header = struct.pack(">HHI", 0x0003, 0, broker_tid) + b"\x00" * 4
reply = None
for attempt in range(20):              # the hook may still be bringing the interface up
    s.send(header + frame)
    try:
        deadline = time.time() + 0.5
        while time.time() < deadline:
            data = s.recv(2048)
            if data[0] & 0x80 == 0 and len(data) >= 12 + 14 and data[12 + 12:12 + 14] == b"\x08\x06":
                reply = data
                break
    except socket.timeout:
        pass
    if reply:
        break
if reply is None:
    raise SystemExit("no ARP reply came back through the pseudowire")
print("reply_header=%s" % reply[:12].hex())
print("reply_ethertype=%s" % reply[24:26].hex())
print("reply_dst=%s" % reply[12:18].hex())
print("reply_arp_op=%d" % struct.unpack(">H", reply[26 + 6:26 + 8])[0])
print("reply_sender_ip=%s" % socket.inet_ntoa(reply[26 + 14:26 + 18]))
s.send(msg(3, b"\x11"))
print("error_answer=%s" % expect(3).hex())
