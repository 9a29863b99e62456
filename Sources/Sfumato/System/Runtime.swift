/// Process-wide compute settings.
public enum Runtime {
    /// Threads for OpenBLAS and for our own parallel loops (they never run at the same time).
    public static func setThreads(_ count: Int) {
        BLAS.threadCount = count
        Parallel.threadCount = count
    }
}
