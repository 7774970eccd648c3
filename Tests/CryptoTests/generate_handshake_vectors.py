#!/usr/bin/env python3
"""Generates the known-answer vectors in HandshakeMessageTests.swift: complete tunneld
handshake messages (header, Noise IKpsk2 message, mac1, mac2), built with the independent
`noiseprotocol` package and Python's hashlib BLAKE2b from fixed keys, indices and payloads.
Run: pip install noiseprotocol; python3 Tests/CryptoTests/generate_handshake_vectors.py"""
import hashlib
import struct
from noise.connection import NoiseConnection, Keypair

name = b"Noise_IKpsk2_25519_ChaChaPoly_SHA256"
s_i, e_i = bytes(range(1, 33)), bytes(range(33, 65))
s_r, e_r = bytes(range(65, 97)), bytes(range(97, 129))
psk = bytes([0xA5] * 32)
prologue = b"tunneld handshake v1"
initiator_index, responder_index = 0x11223344, 0x55667788
timestamp = struct.pack(">QI", (1 << 62) + 1_700_000_000, 123_456_789)
ciphers = bytes([0x03])
cookie = bytes(range(200, 216))

def public(private):
    c = NoiseConnection.from_name(name)
    c.set_keypair_from_private_bytes(Keypair.STATIC, private)
    return c.noise_protocol.keypairs["s"].public_bytes

def mac(data, key):
    return hashlib.blake2b(data, key=key, digest_size=16).digest()

def mac1_key(public_key):
    return hashlib.blake2b(b"mac1----" + public_key, digest_size=32).digest()

init = NoiseConnection.from_name(name)
init.set_as_initiator()
init.set_keypair_from_private_bytes(Keypair.STATIC, s_i)
init.set_keypair_from_private_bytes(Keypair.EPHEMERAL, e_i)
init.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, public(s_r))
init.set_psks(psk)
init.set_prologue(prologue)
init.start_handshake()

resp = NoiseConnection.from_name(name)
resp.set_as_responder()
resp.set_keypair_from_private_bytes(Keypair.STATIC, s_r)
resp.set_keypair_from_private_bytes(Keypair.EPHEMERAL, e_r)
resp.set_psks(psk)
resp.set_prologue(prologue)
resp.start_handshake()

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
