/// One reader's memory of the image it last looked up: a connection keeps one for the requests of a read,
/// and a request for the same image as the last one finds it with one atomic load (the registry's attach
/// generation) instead of the registry's lock, which every request of every connection would otherwise
/// take. Visibility and the image's changed mark are checked on every lookup all the same. It holds the
/// image while it remembers it: let it go (a fresh `ImageLookup()`) when the burst of requests ends, so
/// that a detached image's file is not kept open by an idle connection. Not shared between threads.
public struct ImageLookup {
    /// The registry's generation when `attached` was looked up: any attach or detach since changes it.
    var generation: UInt64 = .max
    var attached: AttachedImage?

    public init() {}

    init(generation: UInt64, attached: AttachedImage?) {
        self.generation = generation
        self.attached = attached
    }

    /// The remembered image, if it is `id`'s and nothing was attached or detached since.
    func image(_ id: String, generation: UInt64) -> AttachedImage? {
        guard self.generation == generation, let attached = self.attached,
            attached.id.utf8.elementsEqual(id.utf8)  // ids are compared as bytes, like the registry's keys
        else { return nil }
        return attached
    }
}
