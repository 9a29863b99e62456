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
    /// The core OpenBLAS detected, when Sfumato replaced it because it leaves the CPU's wider
    /// vectors unused (OpenBLAS falls back to `Prescott` on CPUs newer than itself).
    public let detectedCoreName: String?

    public static func current() -> BLASInfo {
        BLASKernels.prepare()
        let environment = ProcessInfo.processInfo.environment
        return BLASInfo(
            coreName: BLASKernels.currentCoreName(),
            config: openblas_get_config().map { String(cString: $0) } ?? "unknown",
            threads: Runtime.threads,
            forcedCoreType: environment["OPENBLAS_CORETYPE"].flatMap { $0.isEmpty ? nil : $0 },
            cpuHasAVX512: CPUFeatures.hasAVX512F,
            detectedCoreName: BLASKernels.reselection?.detected)
    }

    /// OpenBLAS kernel families built on AVX-512.
    static let avx512Cores: Set<String> = ["skylakex", "cooperlake", "sapphirerapids", "zen4", "zen5"]
    /// OpenBLAS kernel families built on AVX2 (and FMA), without AVX-512.
    static let avx2Cores: Set<String> = ["haswell", "zen", "skylake", "alderlake"]

    public var coreUsesAVX512: Bool { Self.avx512Cores.contains(coreName.lowercased()) }

    /// Why the core is not OpenBLAS's own choice, for display after its name ("" when it is).
    public var coreNote: String {
        if let forcedCoreType { return " (forced by OPENBLAS_CORETYPE=\(forcedCoreType))" }
        if let detectedCoreName { return " (chosen by Sfumato: OpenBLAS detected \(detectedCoreName), which leaves this CPU's wider vectors unused)" }
        return ""
    }

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
    static let flags: Set<String> = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":")
        else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }()

    static var hasAVX512F: Bool { flags.contains("avx512f") }
}
