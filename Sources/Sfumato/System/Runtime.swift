/// Process-wide compute settings.
public enum Runtime {
    /// Workers for our loops and for the blocks GEMMs are split into (OpenBLAS runs single-threaded).
    public static var threads: Int { Parallel.threadCount }

    public static func setThreads(_ count: Int) {
        Parallel.threadCount = max(1, count)
    }
}
