#!/usr/bin/env python3
"""Generates the known-answer vectors in NoiseIKpsk2Tests.swift with the independent
`noiseprotocol` package (pip install noiseprotocol), fixed keys and payloads.
Transport keys are checked through one transport message each way (Noise encrypts
with nonce 0 and empty associated data).
Run: python3 Tests/CryptoTests/generate_noise_vectors.py"""
from noise_fixture import handshake_pair

init, resp = handshake_pair(b"tunneld test")

m1 = init.write_message(b"hello responder")
assert resp.read_message(m1) == b"hello responder"
m2 = resp.write_message(b"hello initiator")
assert init.read_message(m2) == b"hello initiator"
print("message1", m1.hex())
print("message2", m2.hex())
print("hash", init.get_handshake_hash().hex())
print("i2r", init.encrypt(b"transport i->r").hex())
print("r2i", resp.encrypt(b"transport r->i").hex())
