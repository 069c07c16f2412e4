/// Who is at the other end of a connection, for authentication: the client's address (the key of the
/// failed-auth limiter) and, on a unix socket, the peer's uid (`SO_PEERCRED`).
struct ConnectionPeer: Sendable {
    var address: String
    var uid: UInt32?

    static let unknown = ConnectionPeer(address: "unknown", uid: nil)
}
