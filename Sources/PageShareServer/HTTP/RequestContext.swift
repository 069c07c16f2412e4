import NIOCore
import NIOHTTP1

/// One request being answered: what it asked, and what its answer has been so far (for the request
/// metrics and the log line written when it ends).
///
/// A class: the responder reads the request at several steps of its answer, and a struct of a dozen
/// strings would be copied out of the responder at each (a retain and a release per string).
final class RequestContext {
    let request: Request
    /// A protocol-level problem found with the head (no Host, an unknown expectation, a header list too
    /// large): the request is answered with it, whatever it asks for.
    let refusal: Problem?
    let started = NIODeadline.now()
    /// The endpoint, once the route is known.
    var endpoint = ServerMetrics.Endpoint.other
    /// The status sent, once the head went out.
    var status: HTTPResponseStatus?
    /// Body bytes handed to the writer.
    var sentBytes = 0
    /// The client's `x-request-id`, or one made when something is first logged about the request.
    var requestID: String?

    init(request: consuming Request, refusal: Problem?) {
        self.requestID = request.fields.requestID
        self.request = request
        self.refusal = refusal
    }
}
