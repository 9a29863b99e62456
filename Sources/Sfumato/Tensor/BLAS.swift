import COpenBLAS

/// Row-major single-precision GEMM through OpenBLAS: C = alpha * op(A) * op(B) + beta * C,
/// with op(A) of shape m x k and op(B) of shape k x n. Leading dimensions are row strides.
///
/// OpenBLAS itself always runs on one thread; large products are split here into blocks of
/// rows or columns that run on our own workers (`Parallel`). OpenBLAS's thread pool spins in
/// `sched_yield` between calls and competes with every non-GEMM loop; one pool for everything does
/// not. Each output element is still reduced over k in one call, so results do not depend on the
/// thread count.
public enum BLAS {
    public static func sgemm(
        transposeA: Bool = false, transposeB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        BLASKernels.prepare()
        // Split the longer side in multiples of 16 (whole register tiles of the kernels), at least 64
        // long; below ~4 M multiply-adds a split costs more in wake-ups and packing than it saves.
        let splitColumns = n >= m
        let length = splitColumns ? n : m
        let parts = min(Parallel.activeThreadCount, max(1, length / 64))
        guard parts > 1, !Parallel.isWorker, m * n * k >= 1 << 22 else {
            serialSgemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        let unit = 16
        let units = (length + unit - 1) / unit
        Parallel.forEachChunk(parts) { range in
            for part in range {
                let start = min(length, units * part / parts * unit)
                let end = min(length, units * (part + 1) / parts * unit)
                guard start < end else { continue }
                if splitColumns {
                    // Columns start..<end of op(B) and of C.
                    let bPart = transposeB ? b + start * ldb : b + start
                    serialSgemm(transposeA, transposeB, m, end - start, k, alpha, a, lda, bPart, ldb, beta, c + start, ldc)
                } else {
                    // Rows start..<end of op(A) and of C.
                    let aPart = transposeA ? a + start : a + start * lda
                    serialSgemm(transposeA, transposeB, end - start, n, k, alpha, aPart, lda, b, ldb, beta, c + start * ldc, ldc)
                }
            }
        }
    }

    /// One OpenBLAS call on the calling thread.
    @inline(__always)
    static func serialSgemm(_ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                            _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                            _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        cblas_sgemm(
            CblasRowMajor,
            transposeA ? CblasTrans : CblasNoTrans,
            transposeB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k),
            alpha, a, blasint(lda), b, blasint(ldb),
            beta, c, blasint(ldc))
    }
}
