import Foundation
import NIOCore
import NIOHTTP1

/// Answers one request per connection: the live page at `/`, the status JSON at
/// `/status` (mlvpn's path), the live page's history at `/history` and Prometheus
/// text at `/metrics`. Every answer closes the connection, so no client keeps one.
final class HTTPStatusHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// What the handler serves from; shared by all connections.
    struct Content: Sendable {
        let snapshots: StatusSnapshots
        let metrics: MetricsExporter
    }

    private let content: Content
    private var request: HTTPRequestHead?

    init(content: Content) {
        self.content = content
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break  // nothing here takes a body; the connection guard bounds its size
        case .end:
            guard let head = request else { return }
            request = nil
            let (status, type, body) = answer(head)
            respond(context: context, head: head, status: status, type: type, body: body)
        }
    }

    /// A request the parser refused: NIO's error handler ahead of this one has
    /// answered 400; without this the connection would hold its place until the deadline.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    /// The status code, content type and body for a request.
    func answer(_ head: HTTPRequestHead) -> (HTTPResponseStatus, String, [UInt8]) {
        guard head.method == .GET || head.method == .HEAD else {
            return (.methodNotAllowed, "text/plain; charset=utf-8", Array("only GET and HEAD are served\n".utf8))
        }
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        switch path {
        case "/", "/index.html":
            return (.ok, "text/html; charset=utf-8", Array(LivePage.html.utf8))
        case "/status", "/status.json":
            let json = content.snapshots.rendered("status") { snapshot in
                (try? StatusJSON.encode(snapshot.status)).map { Array($0) + [0x0a] }
            }
            return json.map { (.ok, "application/json", $0) } ?? Self.failed
        case "/history":
            let json = content.snapshots.rendered("history") { snapshot in
                (try? StatusJSON.encoder(pretty: false).encode(snapshot.history)).map { Array($0) }
            }
            return json.map { (.ok, "application/json", $0) } ?? Self.failed
        case "/metrics":
            let text = content.snapshots.rendered("metrics") { content.metrics.render($0.status) }
            return (.ok, "text/plain; version=0.0.4; charset=utf-8", text ?? [])
        default:
            return (.notFound, "text/plain; charset=utf-8", Array("not found; try /, /status, /metrics or /history\n".utf8))
        }
    }

    private static let failed: (HTTPResponseStatus, String, [UInt8]) =
        (.internalServerError, "text/plain; charset=utf-8", Array("status could not be encoded\n".utf8))

    private func respond(context: ChannelHandlerContext, head request: HTTPRequestHead, status: HTTPResponseStatus,
                         type: String, body: [UInt8]) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: String(body.count))
        headers.add(name: "Connection", value: "close")
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        // The page needs nothing but itself and this server.
        headers.add(name: "Content-Security-Policy",
                    value: "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; frame-ancestors 'none'")
        if status == .methodNotAllowed { headers.add(name: "Allow", value: "GET, HEAD") }
        let head = HTTPResponseHead(version: .http1_1, status: status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}
