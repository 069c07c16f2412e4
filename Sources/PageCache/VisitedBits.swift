extension Array where Element == Bool {
    /// Sets SIEVE's visited bit of slot `index`, writing it only when it is clear: a hit on a slot already
    /// marked (nearly every hit, between two passes of the hand) leaves the bits' cache line as it is, so
    /// the other cores' copies of it stay valid.
    mutating func markVisited(_ index: Int) {
        if !self[index] { self[index] = true }
    }
}
