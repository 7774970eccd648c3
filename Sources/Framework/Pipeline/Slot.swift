/// The six slots of a pipeline.
///
/// Seen as a stack from the local side (top) to the network (bottom):
///
///     ingress / egress    local device: ingress on send, egress on receive
///     reorder             stamps a tunnel sequence on send, restores order on receive
///     encrypt             seals on send, opens (and drops forgeries) on receive
///     schedule            picks link(s) on send, feeds link statistics on receive
///     transport           moves datagrams over UDP links
///
/// Sending walks the stack downward, receiving upward, so a slot's `send` and
/// `receive` are inverse operations at the same depth. Custom stages are inserted
/// between slots by position (`after: encrypt` sits below encrypt in the stack).
public enum Slot: String, CaseIterable, Sendable {
    case ingress, encrypt, schedule, transport, reorder, egress

    /// Slots in send order, as listed in profiles and `tunneld plugins`.
    static let sendOrder: [Slot] = [.ingress, .reorder, .encrypt, .schedule, .transport]
}
