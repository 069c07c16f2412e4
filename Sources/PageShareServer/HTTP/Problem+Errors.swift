import EROFS
import NIOHTTP1
import PageCache

extension Problem {
    /// The problem response for an error from routing, the image or the cache, for `target` (the request
    /// being answered, if known): no route and missing paths and unknown images are 404, a bad target 400, a
    /// broken image region 500.
    init(for error: any Error, target: RequestTarget?) {
        if let problem = error as? Problem {
            self = problem
        } else if let failure = error as? RequestTarget.Failure {
            switch failure {
            case .noRoute: self = .noRoute()
            case .badRequest(let reason): self = .badRequest(reason)
            }
        } else if let error = error as? PageCacheError {
            switch error.code {
            case .unknownImage: self = .unknownImage(target?.image ?? "")
            case .notARegularFile: self.init("not-a-regular-file", .notFound, error.message)
            case .imageChanged: self = .imageChanged(error.message)
            default:
                if let cause = error.cause as? EROFSError {
                    self.init(for: cause, target: target)
                } else {
                    self = .imageReadError(error.message)
                }
            }
        } else if let error = error as? EROFSError {
            switch error.code {
            case .notFound: self = .notFound("\(target?.path ?? "path") does not exist in the image")
            case .notADirectory: self = .notFound("a component of \(target?.path ?? "the path") is not a directory")
            case .tooManySymlinks: self.init("too-many-symlinks", .notFound, error.message)
            case .invalidArgument: self = .badRequest(error.message)
            default: self = .imageReadError("the image cannot be read here: \(error.message)")
            }
        } else {
            self = .imageReadError("internal error")
        }
    }
}
