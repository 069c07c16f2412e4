import NIOCore
import PageCache

/// What the responders of one connection share: the data plane, the peer, the event loop, and what the
/// requests of one read remember (the image last looked up). One object per connection, so that an HTTP/2
/// stream's responder takes one reference to it, not one to each (the data plane is shared by every event
/// loop: each reference taken to it moves a cache line between cores). Used on the connection's event
/// loop only.
final class ConnectionScope {
    let plane: DataPlane
    let peer: ConnectionPeer
    let eventLoop: any EventLoop
    /// The image the last request of the current read looked up (see ``PageCache/ImageLookup``), for the
    /// other requests of the same read (HTTP/2 streams, pipelined requests).
    var imageLookup = ImageLookup()
    /// Requests are being answered as a read is handled: their lookups are remembered until its end. A
    /// request answered later (after waiting for room) looks its image up on its own.
    private(set) var isReading = false

    /// A read is being handled.
    func readStarted() {
        self.isReading = true
    }

    /// A read's requests were handled: the image looked up is let go, so that an idle connection does not
    /// hold a detached image (and its open file) until it closes.
    func readEnded() {
        self.isReading = false
        self.imageLookup = ImageLookup()
    }

    init(plane: DataPlane, peer: ConnectionPeer, eventLoop: any EventLoop) {
        self.plane = plane
        self.peer = peer
        self.eventLoop = eventLoop
    }
}
