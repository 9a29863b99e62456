import COpenBLAS
import Foundation

/// One-time OpenBLAS setup before the first GEMM: single-threaded calls (`BLAS` splits the work over
/// our own workers), and kernels that use the CPU's vector units.
///
/// OpenBLAS picks its kernels from the CPU model number, so a CPU newer than the library (an Emerald
/// Rapids Xeon under Debian's 0.3.21) falls back to `Prescott`, SSE3 kernels at a fifth of the speed.
/// When the user has not chosen a core with OPENBLAS_CORETYPE, such a fallback is replaced by the
/// newest core the CPU's features run; a user's choice is always honoured.
enum BLASKernels {
    /// What the setup did to OpenBLAS's own kernel choice.
    struct Reselection: Sendable {
        let detected: String
        let chosen: String
    }

    static func prepare() { _ = prepared }

    /// Non-nil when OpenBLAS's detection was replaced.
    static var reselection: Reselection? { prepared }

    private static let prepared: Reselection? = {
        let reselection = reselectIfNeeded()
        openblas_set_num_threads(1)
        return reselection
    }()

    private static func reselectIfNeeded() -> Reselection? {
        let environment = ProcessInfo.processInfo.environment
        guard environment["OPENBLAS_CORETYPE"].map({ $0.isEmpty }) ?? true else { return nil }
        let detected = currentCoreName()
        guard let better = betterCore(detected: detected, flags: CPUFeatures.flags) else { return nil }
        // OpenBLAS reads the variable when it selects its kernels; the variable is removed again so
        // that it does not pass to child processes as if the user had set it.
        setenv("OPENBLAS_CORETYPE", better, 1)
        gotoblas_dynamic_quit()
        gotoblas_dynamic_init()
        unsetenv("OPENBLAS_CORETYPE")
        let chosen = currentCoreName()
        return chosen.caseInsensitiveCompare(detected) == .orderedSame ? nil : Reselection(detected: detected, chosen: chosen)
    }

    static func currentCoreName() -> String {
        openblas_get_corename().map { String(cString: $0) } ?? "unknown"
    }

    /// Kernel families by the instructions they need, best first.
    private static let cores: [(name: String, needs: Set<String>)] = [
        ("SkylakeX", ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"]),
        ("Haswell", ["avx2", "fma"]),
    ]

    /// The core to switch to when `detected` runs narrower vectors than the CPU has, else nil.
    static func betterCore(detected: String, flags: Set<String>) -> String? {
        guard let best = cores.first(where: { $0.needs.isSubset(of: flags) }) else { return nil }
        let name = detected.lowercased()
        if BLASInfo.avx512Cores.contains(name) { return nil }
        if best.name == "Haswell", BLASInfo.avx2Cores.contains(name) { return nil }
        return best.name
    }
}
