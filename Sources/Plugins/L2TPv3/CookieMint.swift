import CSodium
import Framework
import Glibc

/// The broker's stateless handshake cookies (protocol reference §3.3).
///
/// A cookie is `ts ‖ MAC`: `ts` is the current "protocol tick" (u16 big-endian,
/// 64 s per tick, 0 when the mint was made) and MAC is the first 6 bytes of a keyed
/// MAC over the client's address, port and `ts`. A PREPARE is accepted only if its
/// cookie was issued to the same source address and port within ±2 ticks, so the
/// broker keeps no per-client state before the handshake completes and a spoofed
/// source cannot complete it.
///
/// Upstream uses HMAC-SHA1 over a textual rendering of those inputs. Only the broker
/// that issued a cookie ever verifies it (clients echo it opaquely), so the MAC is
/// ours to choose: HMAC-SHA256 from libsodium (no SHA-1 there, and no hand-rolled
/// crypto) over a fixed binary encoding:
///
///     family (1: 4 or 6) | address (4 or 16) | port (2, BE) | ts (2, BE)
///
/// Two differences from upstream, both deliberate: the MAC comparison is constant
/// time, and the tick distance is circular, so cookies keep working across the
/// 65536-tick wrap (≈ 48.5 days of uptime).
///
/// Immutable after init, hence `Sendable`: listener threads may share one mint.
final class CookieMint: Sendable {
    static let tickSeconds = 64.0
    /// Accepted distance between the cookie's tick and now, either way (§3.3).
    static let maxTickDistance: UInt16 = 2
    static let secretSize = 32
    static let macSize = 6

    private let secret: [UInt8]
    private let epoch: Int64
    private let clock: @Sendable () -> Double

    /// `secret`: the MAC key (any length; 32 random bytes when nil, so cookies die
    /// with the process as upstream's do). `clock`: wall-clock seconds since 1970;
    /// ticks are aligned to multiples of 64 s of it, as upstream.
    init(secret: [UInt8]? = nil, clock: @escaping @Sendable () -> Double = CookieMint.wallClock) {
        CookieMint.sodiumReady()
        if let secret {
            self.secret = secret
        } else {
            var random = [UInt8](repeating: 0, count: CookieMint.secretSize)
            randombytes_buf(&random, random.count)
            self.secret = random
        }
        self.clock = clock
        epoch = CookieMint.wholeTicks(clock())
    }

    /// Protocol time: whole ticks since the mint was made, mod 65536. A clock that
    /// steps backwards past the epoch wraps to the top of the range.
    var tick: UInt16 { UInt16(truncatingIfNeeded: CookieMint.wholeTicks(clock()) &- epoch) }

    /// The cookie for a COOKIE reply to `client`.
    func issue(for client: SocketAddress) -> Cookie {
        let ts = tick
        var mac = [UInt8](repeating: 0, count: CookieMint.macSize)
        computeMAC(client, ts, into: &mac)
        var value = UInt64(ts)
        for byte in mac { value = value << 8 | UInt64(byte) }
        return Cookie(value: value)
    }

    /// Whether a PREPARE's cookie was issued by this mint to exactly this source
    /// address and port, no more than 2 ticks from now either way.
    func verify(_ cookie: Cookie, from client: SocketAddress) -> Bool {
        let ts = cookie.timestamp
        var expected = [UInt8](repeating: 0, count: CookieMint.macSize)
        computeMAC(client, ts, into: &expected)
        let received = Array(cookie.bytes[2...])
        let macMatches = sodium_memcmp(expected, received, CookieMint.macSize) == 0
        // Circular distance: 65535 → 1 is 2 ticks, not 65534.
        let ahead = tick &- ts
        let fresh = ahead <= CookieMint.maxTickDistance || ahead >= 0 &- CookieMint.maxTickDistance
        return macMatches && fresh
    }

    private func computeMAC(_ client: SocketAddress, _ ts: UInt16, into out: inout [UInt8]) {
        var input: [UInt8] = []
        input.reserveCapacity(1 + 16 + 2 + 2)
        input.append(client.family == AF_INET ? 4 : client.family == AF_INET6 ? 6 : 0)
        input += client.addressBytes
        input += [UInt8(client.port >> 8), UInt8(client.port & 0xFF), UInt8(ts >> 8), UInt8(ts & 0xFF)]

        // The init/update/final form takes a key of any length (an injected test
        // secret need not be 32 bytes); with 32 bytes it equals crypto_auth_hmacsha256.
        var state = crypto_auth_hmacsha256_state()
        var digest = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        crypto_auth_hmacsha256_init(&state, secret, secret.count)
        crypto_auth_hmacsha256_update(&state, input, UInt64(input.count))
        crypto_auth_hmacsha256_final(&state, &digest)
        for index in 0..<CookieMint.macSize { out[index] = digest[index] }
    }

    /// floor(seconds / 64), safe for any clock value (never traps on NaN or huge values).
    private static func wholeTicks(_ seconds: Double) -> Int64 {
        guard seconds.isFinite else { return 0 }
        let ticks = (seconds / tickSeconds).rounded(.down)
        return Int64(min(max(ticks, -1e15), 1e15))
    }

    @Sendable static func wallClock() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// sodium_init is thread-safe and idempotent; a static let runs it once per process.
    private static let sodiumInitialised: Bool = sodium_init() >= 0
    private static func sodiumReady() { _ = sodiumInitialised }
}
