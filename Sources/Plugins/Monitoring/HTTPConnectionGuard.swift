import NIOConcurrencyHelpers
import NIOCore

/// The first handler of every HTTP connection, ahead of the HTTP parser: it keeps a
/// hostile or broken client from costing more than a bounded amount.
///
/// * at most `maxConnections` open at once; one more is closed as soon as it arrives;
/// * at most `maxRequestBytes` received (the server only answers small GETs); more is
///   answered 431 and closed;
/// * the whole exchange must end within `deadline` seconds of the accept, however
///   slowly the client trickles bytes in (slowloris) or reads the answer.
///
/// All of it runs on the HTTP thread; the tunnel's loop never sees these clients.
final class HTTPConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Shared by all the connections of one server.
    final class Limits: Sendable {
        let maxConnections: Int
        let maxRequestBytes: Int
        let deadline: TimeAmount
        let open = NIOLockedValueBox(0)
        /// Connections refused or cut, by reason, for the log and the tests.
        let refused = NIOLockedValueBox([String: Int]())

        init(maxConnections: Int, maxRequestBytes: Int, deadline: TimeAmount) {
            self.maxConnections = maxConnections
            self.maxRequestBytes = maxRequestBytes
            self.deadline = deadline
        }

        func count(_ reason: String) { refused.withLockedValue { $0[reason, default: 0] += 1 } }
    }

    private let limits: Limits
    private var received = 0
    private var admitted = false
    private var timer: Scheduled<Void>?

    init(limits: Limits) {
        self.limits = limits
    }

    func channelActive(context: ChannelHandlerContext) {
        admitted = limits.open.withLockedValue { open in
            guard open < limits.maxConnections else { return false }
            open += 1
            return true
        }
        guard admitted else {
            limits.count("too_many_connections")
            context.close(promise: nil)
            return
        }
        let channel = context.channel
        let shared = limits
        timer = context.eventLoop.scheduleTask(in: limits.deadline) {
            shared.count("deadline")
            channel.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        if admitted { limits.open.withLockedValue { $0 -= 1 } }
        admitted = false
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard admitted else { return }
        let buffer = unwrapInboundIn(data)
        received += buffer.readableBytes
        guard received <= limits.maxRequestBytes else {
            limits.count("too_large")
            admitted = false
            limits.open.withLockedValue { $0 -= 1 }
            // Straight to the socket: this handler sits below the HTTP encoder.
            let answer = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(string: answer)))
                .whenComplete { _ in channel.close(promise: nil) }
            return
        }
        context.fireChannelRead(data)
    }

    typealias OutboundOut = ByteBuffer
}
