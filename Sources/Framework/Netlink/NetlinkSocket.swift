import CNetlink
import Glibc

/// A libnl socket to the kernel for one netlink protocol, doing one request at a
/// time: send it, then read what the kernel answers until its ACK, its error or the
/// end of a dump. Like libnl's own nl_sock it is not thread-safe: one thread uses
/// it (the netlink worker's). The socket lives in the network namespace of the
/// thread that opened it, whatever that thread does later.
final class NetlinkSocket {
    /// libnl's `struct nl_sock *`.
    let handle: OpaquePointer

    /// `name` says which socket in errors ("generic netlink socket").
    init(netlinkProtocol: Int32, name: String) throws {
        guard let handle = nl_socket_alloc() else { throw NetlinkError(code: ENOMEM, request: "open \(name)") }
        let result = nl_connect(handle, netlinkProtocol)
        if result < 0 {
            nl_socket_free(handle)
            throw NetlinkError.libnl(result, request: "open \(name)")
        }
        self.handle = handle
    }

    deinit { nl_socket_free(handle) }  // closes the descriptor too

    /// Send `request` and return the messages that answer it (none for a plain ACK),
    /// parsed with `fixedHeaderSize` bytes of family header before the attributes.
    /// Throws the kernel's errno when it refuses.
    func exchange(_ request: NetlinkRequest, fixedHeaderSize: Int) throws -> [NetlinkReply] {
        let sequence = nl_socket_use_seq(handle)
        var bytes = request.encoded(sequence: sequence, portID: nl_socket_get_local_port(handle))
        let sent = nl_sendto(handle, &bytes, bytes.count)
        if sent < 0 { throw NetlinkError.libnl(sent, request: request.label) }

        let collector = ReplyCollector(sequence: sequence)
        try withExtendedLifetime(collector) {
            try collector.receive(on: handle, request: request.label)
        }
        return try collector.messages.map {
            guard let reply = NetlinkReply(bytes: $0, fixedHeaderSize: fixedHeaderSize) else {
                throw NetlinkError(code: EBADMSG, request: request.label, detail: "malformed reply from the kernel")
            }
            return reply
        }
    }
}

/// What the kernel answered one request, gathered by libnl's receive loop through
/// callbacks that get this object as their argument. Bytes are only copied here;
/// parsing happens after the whole answer is read, so a bad message can never leave
/// the rest of the answer queued on the socket for the next request to trip over.
private final class ReplyCollector {
    let sequence: UInt32
    var messages: [[UInt8]] = []
    /// The errno of the kernel's NLMSG_ERROR, or of a failed dump's NLMSG_DONE.
    var kernelError: Int32 = 0
    var finished = false

    init(sequence: UInt32) { self.sequence = sequence }

    func receive(on socket: OpaquePointer, request: String) throws {
        guard let callbacks = nl_cb_alloc(NL_CB_DEFAULT) else { throw NetlinkError(code: ENOMEM, request: request) }
        defer { nl_cb_put(callbacks) }
        let context = Unmanaged.passUnretained(self).toOpaque()

        // Our own sequence check instead of libnl's: a message of an earlier request
        // (one whose reading failed half way) is skipped, not an error forever after.
        nl_cb_set(callbacks, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, { message, context in
            guard let message, let context, let header = nlmsg_hdr(message) else { return action(NL_STOP) }
            let collector = Unmanaged<ReplyCollector>.fromOpaque(context).takeUnretainedValue()
            return action(header.pointee.nlmsg_seq == collector.sequence ? NL_OK : NL_SKIP)
        }, context)
        nl_cb_set(callbacks, NL_CB_VALID, NL_CB_CUSTOM, { message, context in
            guard let message, let context, let header = nlmsg_hdr(message) else { return action(NL_STOP) }
            // libnl checked that nlmsg_len fits in what it received and copied that much.
            let bytes = Array(UnsafeRawBufferPointer(start: header, count: Int(header.pointee.nlmsg_len)))
            Unmanaged<ReplyCollector>.fromOpaque(context).takeUnretainedValue().messages.append(bytes)
            return action(NL_OK)
        }, context)
        nl_cb_set(callbacks, NL_CB_ACK, NL_CB_CUSTOM, { _, context in
            guard let context else { return action(NL_STOP) }
            Unmanaged<ReplyCollector>.fromOpaque(context).takeUnretainedValue().finished = true
            return action(NL_STOP)
        }, context)
        nl_cb_set(callbacks, NL_CB_FINISH, NL_CB_CUSTOM, { message, context in
            guard let message, let context, let header = nlmsg_hdr(message) else { return action(NL_STOP) }
            let collector = Unmanaged<ReplyCollector>.fromOpaque(context).takeUnretainedValue()
            collector.finished = true
            // A dump that failed part way says so in the DONE message's payload.
            if header.pointee.nlmsg_len >= 20 {
                let status = UnsafeRawPointer(header).loadUnaligned(fromByteOffset: 16, as: Int32.self)
                if status < 0 { collector.kernelError = -status }
            }
            return action(NL_STOP)
        }, context)
        nl_cb_err(callbacks, NL_CB_CUSTOM, { _, error, context in
            guard let error, let context else { return action(NL_STOP) }
            let collector = Unmanaged<ReplyCollector>.fromOpaque(context).takeUnretainedValue()
            collector.kernelError = -error.pointee.error
            collector.finished = true
            return action(NL_STOP)
        }, context)

        // One nl_recvmsgs call reads one datagram (more for a multipart dump); a reply
        // and its ACK come in two, so read until the answer is complete.
        while !finished {
            let result = nl_recvmsgs(socket, callbacks)
            if finished { break }
            if result < 0 { throw NetlinkError.libnl(result, request: request) }
        }
        if kernelError != 0 { throw NetlinkError(code: kernelError, request: request) }
    }
}

/// A libnl callback's verdict as the C signature returns it.
private func action(_ value: nl_cb_action) -> Int32 { Int32(value.rawValue) }

extension NetlinkError {
    /// A failure inside libnl (its own negative NLE_* code, not an errno).
    static func libnl(_ result: Int32, request: String) -> NetlinkError {
        NetlinkError(code: EIO, request: request, detail: "libnl: \(String(cString: nl_geterror(result)))")
    }
}
