/// Whether a resident read is counted (hits, bytes read, and the sequential readahead it drives).
enum ResidentCounting {
    /// Counted, however many bytes it took.
    case always
    /// Not counted (the bytes were counted when they were read through a miss).
    case never
    /// Counted only if it took every byte asked for: a caller that reads again otherwise.
    case ifWhole

    func counts(taken: Int, of total: Int) -> Bool {
        switch self {
        case .always: true
        case .never: false
        case .ifWhole: taken == total
        }
    }
}
