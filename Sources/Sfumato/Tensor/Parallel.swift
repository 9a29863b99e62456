import Foundation

/// Splits non-GEMM work across cores. OpenBLAS has its own threads; we only
/// run our loops here between BLAS calls, so the two never compete.
public enum Parallel {
    /// Worker count for our own loops (set from `--threads`).
    nonisolated(unsafe) public static var threadCount = ProcessInfo.processInfo.activeProcessorCount

    /// Runs `body` over `0..<count` in contiguous chunks, in parallel when the
    /// work is large enough (`grain` = minimum items per chunk).
    public static func forEachChunk(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = min(threadCount, max(1, count / max(grain, 1)))
        if chunks <= 1 {
            body(0..<count)
            return
        }
        // Chunks touch disjoint ranges; the caller's closure is only ever run inside this call.
        nonisolated(unsafe) let body = body
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let start = count * chunk / chunks
            let end = count * (chunk + 1) / chunks
            if start < end { body(start..<end) }
        }
    }
}
