import Foundation

/// Measures this machine's sgemm throughput, the yardstick for every speed figure we report.
public enum SgemmProbe {
    /// Best GFLOP/s of `repeats` square m x m x m GEMMs after one warm-up.
    public static func gflops(size: Int = 2048, repeats: Int = 3) -> Double {
        let a = Tensor(repeating: 0.5, shape: [size, size])
        let b = Tensor(repeating: 0.25, shape: [size, size])
        let c = Tensor(zeros: [size, size])
        var best = Double.infinity
        for _ in 0...repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            BLAS.sgemm(m: size, n: size, k: size, a: a.pointer, lda: size, b: b.pointer, ldb: size, c: c.pointer, ldc: size)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return 2 * Double(size) * Double(size) * Double(size) / best / 1e9
    }
}
