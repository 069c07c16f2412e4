import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The `process_*` series Prometheus client libraries export, read from `/proc` when `/metrics` is
/// scraped: CPU time, resident and virtual memory, open and maximum file descriptors, start time.
/// (Operators size the daemon by RSS; no system-metrics package is among this project's dependencies.)
enum ProcessMetrics {
    /// The series in the text exposition format, with their HELP and TYPE lines; empty where `/proc` is
    /// not readable.
    static func exposition() -> String {
        guard let stat = Self.read("/proc/self/stat"), let close = stat.lastIndex(of: ")") else { return "" }
        // Fields after the command name (which may hold spaces), from field 3 (state) on.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        func field(_ number: Int) -> Double? { number - 3 < fields.count ? Double(fields[number - 3]) : nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        var out = ""
        func add(_ name: String, _ type: String, _ help: String, _ value: Double?) {
            guard let value else { return }
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(Self.format(value))\n"
        }
        let cpu = both(field(14), field(15)).map { ($0 + $1) / ticks }
        add("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", cpu)
        add(
            "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", field(23))
        add(
            "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
            field(24).map { $0 * pageSize })
        let openFDs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")).map { Double($0.count) }
        add("process_open_fds", "gauge", "Number of open file descriptors.", openFDs)
        var limit = rlimit()
        let maxFDs = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Double(limit.rlim_cur) : nil
        add("process_max_fds", "gauge", "Maximum number of open file descriptors.", maxFDs)
        let boot = Self.read("/proc/stat")?.split(separator: "\n").first { $0.hasPrefix("btime ") }
            .flatMap { Double($0.dropFirst(6)) }
        let start = both(boot, field(22)).map { $0 + $1 / ticks }
        add("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", start)
        return out
    }

    private static func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

/// Both values, when both are there.
private func both(_ a: Double?, _ b: Double?) -> (Double, Double)? {
    guard let a, let b else { return nil }
    return (a, b)
}
