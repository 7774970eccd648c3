"""The fixed keys and the initiator/responder pair both vector generators start from
(Noise_IKpsk2_25519_ChaChaPoly_SHA256 with the `noiseprotocol` package)."""
from noise.connection import NoiseConnection, Keypair

name = b"Noise_IKpsk2_25519_ChaChaPoly_SHA256"
s_i, e_i = bytes(range(1, 33)), bytes(range(33, 65))
s_r, e_r = bytes(range(65, 97)), bytes(range(97, 129))
psk = bytes([0xA5] * 32)


def public(private):
    c = NoiseConnection.from_name(name)
    c.set_keypair_from_private_bytes(Keypair.STATIC, private)
    return c.noise_protocol.keypairs["s"].public_bytes


def handshake_pair(prologue):
    """An initiator and a responder with the fixed keys, handshakes started."""
    init = NoiseConnection.from_name(name)
    init.set_as_initiator()
    init.set_keypair_from_private_bytes(Keypair.STATIC, s_i)
    init.set_keypair_from_private_bytes(Keypair.EPHEMERAL, e_i)
    init.set_keypair_from_public_bytes(Keypair.REMOTE_STATIC, public(s_r))
    resp = NoiseConnection.from_name(name)
    resp.set_as_responder()
    resp.set_keypair_from_private_bytes(Keypair.STATIC, s_r)
    resp.set_keypair_from_private_bytes(Keypair.EPHEMERAL, e_r)
    for side in (init, resp):
        side.set_psks(psk)
        side.set_prologue(prologue)
        side.start_handshake()
    return init, resp
