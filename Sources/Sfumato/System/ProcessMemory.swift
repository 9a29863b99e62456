import Foundation

/// Resident memory of this process, as the kernel reports it in /proc/self/status.
public enum ProcessMemory {
    /// The highest resident set size so far (VmHWM), in bytes; 0 where /proc is not available.
    public static var peakResidentBytes: Int { statusField("VmHWM:") }
    /// The resident set size now (VmRSS), in bytes; 0 where /proc is not available.
    public static var residentBytes: Int { statusField("VmRSS:") }

    private static func statusField(_ name: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name) })
        else { return 0 }
        // "VmHWM:	 123456 kB"
        let kilobytes = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
        return (kilobytes ?? 0) * 1024
    }
}

/// The processor, as /proc/cpuinfo names it (benchmarks say which CPU a number came from).
public enum CPUInfo {
    public static let modelName: String = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        let fields = text.split(separator: "\n").filter { $0.hasPrefix("model name") || $0.hasPrefix("cpu family") }
        let name = fields.first { $0.hasPrefix("model name") }.flatMap { $0.split(separator: ":", maxSplits: 1).last }
        let family = fields.first { $0.hasPrefix("cpu family") }.flatMap { $0.split(separator: ":", maxSplits: 1).last }
        let base = name.map { $0.trimmingCharacters(in: .whitespaces) } ?? "unknown"
        return family.map { "\(base) (family \($0.trimmingCharacters(in: .whitespaces)))" } ?? base
    }()
}
