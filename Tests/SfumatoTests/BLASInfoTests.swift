@testable import Sfumato
import Testing

/// The warning users see when a forced OpenBLAS kernel leaves AVX-512 unused.
@Suite struct BLASInfoTests {
    static func info(core: String, forced: String?, avx512: Bool) -> BLASInfo {
        BLASInfo(coreName: core, config: "", threads: 2, forcedCoreType: forced, cpuHasAVX512: avx512,
                 detectedCoreName: nil)
    }

    @Test func warnsOnlyWhenAVX512IsWasted() {
        let forced = Self.info(core: "Haswell", forced: "Haswell", avx512: true).warning
        #expect(forced?.contains("OPENBLAS_CORETYPE=Haswell") == true)
        #expect(forced?.contains("unset OPENBLAS_CORETYPE") == true)
        #expect(Self.info(core: "Haswell", forced: nil, avx512: true).warning != nil)
        #expect(Self.info(core: "SkylakeX", forced: nil, avx512: true).warning == nil)
        #expect(Self.info(core: "Cooperlake", forced: "Cooperlake", avx512: true).warning == nil)
        #expect(Self.info(core: "Zen", forced: nil, avx512: false).warning == nil)
    }

    /// OpenBLAS 0.3.21 calls an Emerald Rapids Xeon `Prescott`: such a fallback is replaced by the widest core
    /// the CPU's flags run, and a core that already uses the CPU's widest vectors is kept.
    @Test func replacesAFallbackCoreByTheWidestTheCPURuns() {
        let avx512: Set<String> = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"]
        let avx2: Set<String> = ["sse3", "avx", "avx2", "fma"]
        #expect(BLASKernels.betterCore(detected: "Prescott", flags: avx512) == "SkylakeX")
        #expect(BLASKernels.betterCore(detected: "Haswell", flags: avx512) == "SkylakeX")
        #expect(BLASKernels.betterCore(detected: "Prescott", flags: avx2) == "Haswell")
        #expect(BLASKernels.betterCore(detected: "Cooperlake", flags: avx512) == nil)
        #expect(BLASKernels.betterCore(detected: "Zen", flags: avx2) == nil)
        #expect(BLASKernels.betterCore(detected: "Prescott", flags: ["sse3"]) == nil)
        // Only AVX-512F is not enough for OpenBLAS's SkylakeX kernels (Knights Landing).
        #expect(BLASKernels.betterCore(detected: "Haswell", flags: avx2.union(["avx512f"])) == nil)
    }

    @Test func reportsTheRunningCore() {
        let current = BLASInfo.current()
        #expect(!current.coreName.isEmpty && current.coreName != "unknown")
        #expect(current.threads >= 1)
        #expect(current.config.contains("OpenBLAS"))
        if current.forcedCoreType == nil {
            #expect(BLASKernels.betterCore(detected: current.coreName, flags: CPUFeatures.flags) == nil)
        }
    }
}
