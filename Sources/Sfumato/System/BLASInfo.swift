import COpenBLAS
import Foundation

/// Which OpenBLAS build and kernel set this process runs on, and whether that wastes the CPU.
public struct BLASInfo: Sendable {
    /// Kernel family OpenBLAS selected, e.g. "SkylakeX", "Cooperlake", "Haswell", "Zen".
    public let coreName: String
    /// OpenBLAS's build configuration string (version, threading, max threads).
    public let config: String
    public let threads: Int
    /// The user's OPENBLAS_CORETYPE, if set: it overrides OpenBLAS's own CPU detection.
    public let forcedCoreType: String?
    public let cpuHasAVX512: Bool

    public static func current() -> BLASInfo {
        let environment = ProcessInfo.processInfo.environment
        return BLASInfo(
            coreName: openblas_get_corename().map { String(cString: $0) } ?? "unknown",
            config: openblas_get_config().map { String(cString: $0) } ?? "unknown",
            threads: Runtime.threads,
            forcedCoreType: environment["OPENBLAS_CORETYPE"].flatMap { $0.isEmpty ? nil : $0 },
            cpuHasAVX512: CPUFeatures.hasAVX512F)
    }

    /// OpenBLAS kernel families built on AVX-512.
    static let avx512Cores: Set<String> = ["skylakex", "cooperlake", "sapphirerapids", "zen4", "zen5"]

    public var coreUsesAVX512: Bool { Self.avx512Cores.contains(coreName.lowercased()) }

    /// A one-line warning when a forced kernel leaves the CPU's AVX-512 unused, else nil.
    public var warning: String? {
        guard cpuHasAVX512, !coreUsesAVX512 else { return nil }
        let cause = forcedCoreType.map { "OPENBLAS_CORETYPE=\($0) forces" } ?? "OpenBLAS selected"
        return "warning: \(cause) the \(coreName) kernels on a CPU with AVX-512; GEMM runs at about half speed"
            + (forcedCoreType == nil ? "" : " (unset OPENBLAS_CORETYPE to let OpenBLAS choose)")
    }
}

enum CPUFeatures {
    /// Read from /proc/cpuinfo: the flags the kernel reports for the first CPU.
    static let hasAVX512F: Bool = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return false }
        return flags.split(separator: " ").contains("avx512f")
    }()
}
