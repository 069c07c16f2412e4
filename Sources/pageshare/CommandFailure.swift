/// A command that could not do its job (the daemon could not start, a report has nothing to compare):
/// printed as one line, exit status 1, without usage text (which is for mistyped arguments).
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
}
