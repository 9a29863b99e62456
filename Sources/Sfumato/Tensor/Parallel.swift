import Foundation

/// Splits work across cores: our own loops and, through `BLAS.sgemm`, the GEMMs (OpenBLAS runs
/// single-threaded inside each chunk), so one set of workers serves everything.
public enum Parallel {
    /// Worker count (set from `--threads`).
    nonisolated(unsafe) public static var threadCount = ProcessInfo.processInfo.activeProcessorCount

    /// A run's own thread budget (`GenerationGate` binds it), in place of `threadCount` for that run.
    @TaskLocal public static var budget: Int?

    /// The workers the current run may use.
    static var activeThreadCount: Int { max(1, budget ?? threadCount) }

    /// True inside a chunk of `forEachChunk`: nested calls run serially instead of oversubscribing.
    @TaskLocal static var isWorker = false

    /// Runs `body` over `0..<count` in contiguous chunks, in parallel when the
    /// work is large enough (`grain` = minimum items per chunk).
    public static func forEachChunk(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = isWorker ? 1 : min(activeThreadCount, max(1, count / max(grain, 1)))
        if chunks <= 1 {
            body(0..<count)
            return
        }
        // Chunks touch disjoint ranges; the caller's closure is only ever run inside this call.
        nonisolated(unsafe) let body = body
        DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
            let start = count * chunk / chunks
            let end = count * (chunk + 1) / chunks
            if start < end { $isWorker.withValue(true) { body(start..<end) } }
        }
    }
}
