import Metrics

extension Counter {
    /// Advances the counter from a total last published (`last`, nil: nothing yet) to the total `value` now:
    /// the cache keeps its own running totals and hands metrics the difference at each publish.
    func advance(to value: Int, from last: Int?) {
        let delta = value - (last ?? 0)
        if delta > 0 { self.increment(by: delta) }
    }
}
