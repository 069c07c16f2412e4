import NIOCore
import PageCache

/// What the responders of one connection share: the data plane, the peer, the event loop, and what the
/// connection remembers between its requests (the image it last looked up). One object per connection,
/// so that an HTTP/2 stream's responder takes one reference to it, not one to each (the data plane is
/// shared by every event loop: each reference taken to it moves a cache line between cores). Used on the
/// connection's event loop only.
final class ConnectionScope {
    let plane: DataPlane
    let peer: ConnectionPeer
    let eventLoop: any EventLoop
    /// The image the connection's last request read (see ``PageCache/ImageLookup``).
    var imageLookup = ImageLookup()

    init(plane: DataPlane, peer: ConnectionPeer, eventLoop: any EventLoop) {
        self.plane = plane
        self.peer = peer
        self.eventLoop = eventLoop
    }
}
