#!/usr/bin/env python3
"""Generates the known-answer vectors in HandshakeMessageTests.swift: complete tunneld
handshake messages (header, Noise IKpsk2 message, mac1, mac2), built with the independent
`noiseprotocol` package and Python's hashlib BLAKE2b from fixed keys, indices and payloads.
Run: pip install noiseprotocol; python3 Tests/CryptoTests/generate_handshake_vectors.py"""
import hashlib
import struct
from noise_fixture import handshake_pair, public, s_i, s_r

prologue = b"tunneld handshake v1"
initiator_index, responder_index = 0x11223344, 0x55667788
timestamp = struct.pack(">QI", (1 << 62) + 1_700_000_000, 123_456_789)
ciphers = bytes([0x03])
cookie = bytes(range(200, 216))

def mac(data, key):
    return hashlib.blake2b(data, key=key, digest_size=16).digest()

def mac1_key(public_key):
    return hashlib.blake2b(b"mac1----" + public_key, digest_size=32).digest()

init, resp = handshake_pair(prologue)

m1 = init.write_message(timestamp + ciphers)
initiation = bytes([1, 0, 0, 0]) + struct.pack("<I", initiator_index) + m1
initiation += mac(initiation, mac1_key(public(s_r)))
initiation += mac(initiation, cookie)
assert len(initiation) == 149
assert resp.read_message(m1) == timestamp + ciphers

m2 = resp.write_message(bytes([0x02]))
response = bytes([2, 0, 0, 0]) + struct.pack("<II", responder_index, initiator_index) + m2
response += mac(response, mac1_key(public(s_i)))
response += bytes(16)
assert len(response) == 93
assert init.read_message(m2) == bytes([0x02])

print("initiation", initiation.hex())
print("response", response.hex())
