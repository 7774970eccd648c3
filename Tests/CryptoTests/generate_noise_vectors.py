#!/usr/bin/env python3
"""Generates the known-answer vectors in NoiseIKpsk2Tests.swift with the independent
`noiseprotocol` package (pip install noiseprotocol), fixed keys and payloads.
Transport keys are checked through one transport message each way (Noise encrypts
with nonce 0 and empty associated data).
Run: python3 Tests/CryptoTests/generate_noise_vectors.py"""
from noise.connection import NoiseConnection, Keypair

name = b"Noise_IKpsk2_25519_ChaChaPoly_SHA256"
s_i, e_i = bytes(range(1, 33)), bytes(range(33, 65))
s_r, e_r = bytes(range(65, 97)), bytes(range(97, 129))
psk = bytes([0xA5] * 32)
prologue = b"tunneld test"

responder_public = NoiseConnection.from_name(name)
responder_public.set_keypair_from_private_bytes(Keypair.STATIC, s_r)
r_pub = responder_public.noise_protocol.keypairs["s"].public_bytes

init = NoiseConnection.from_name(name)
init.set_as_initiator()
init.set_keypair_from_private_bytes(Keypair.STATIC, s_i)
init.set_keypair_from_private_bytes(Keypair.EPHEMERAL, e_i)
init.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, r_pub)
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

m1 = init.write_message(b"hello responder")
assert resp.read_message(m1) == b"hello responder"
m2 = resp.write_message(b"hello initiator")
assert init.read_message(m2) == b"hello initiator"
print("message1", m1.hex())
print("message2", m2.hex())
print("hash", init.get_handshake_hash().hex())
print("i2r", init.encrypt(b"transport i->r").hex())
print("r2i", resp.encrypt(b"transport r->i").hex())
