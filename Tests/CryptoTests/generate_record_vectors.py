#!/usr/bin/env python3
"""Generates the known-answer vectors in DataRecordTests.swift with an implementation
independent of libsodium (pyca/cryptography), so the test checks the record layout and
nonce construction, not just that libsodium agrees with itself.
Run: python3 Tests/CryptoTests/generate_record_vectors.py"""
import struct
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305, AESGCM

key = bytes(range(32))
plaintext = bytes.fromhex("4500001c000040004001f8cf0a6300010a63000208004d5a00010001")
for name, cipher in (("chacha20poly1305", ChaCha20Poly1305), ("aes256gcm", AESGCM)):
    for index, counter in ((0x010203, 0), (0x010203, 1), (0xADBEEF, (1 << 32) + 5)):
        # type, 24-bit index, low 32 bits of the counter (all little-endian)
        header = bytes([4]) + struct.pack("<I", index)[:3] + struct.pack("<I", counter & 0xFFFFFFFF)
        nonce = b"\x00" * 4 + struct.pack("<Q", counter)
        record = header + cipher(key).encrypt(nonce, plaintext, header)
        print(f'("{name}", 0x{index:06x}, {counter}, "{record.hex()}"),')
