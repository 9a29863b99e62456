@testable import Sfumato
import Testing

/// The warning users see when a forced OpenBLAS kernel leaves AVX-512 unused.
@Suite struct BLASInfoTests {
    static func info(core: String, forced: String?, avx512: Bool) -> BLASInfo {
        BLASInfo(coreName: core, config: "", threads: 2, forcedCoreType: forced, cpuHasAVX512: avx512)
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

    @Test func reportsTheRunningCore() {
        let current = BLASInfo.current()
        #expect(!current.coreName.isEmpty && current.coreName != "unknown")
        #expect(current.threads >= 1)
        #expect(current.config.contains("OpenBLAS"))
    }
}
