import Foundation

/// Per-operator calls, seconds and FLOPs of the work run while it is bound as `OpProfile.current`
/// (`sfumato bench --profile`, and the FLOP count behind its GFLOP/s). Ops record themselves at
/// their entry point only, so nested calls are never counted twice. Unbound, recording costs one
/// task-local read per op.
public final class OpProfile: @unchecked Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public internal(set) var calls = 0
        public internal(set) var seconds = 0.0
        /// Multiply-adds counted as two FLOPs, for the GEMM-shaped work only (elementwise ops count 0).
        public internal(set) var flops = 0.0
    }

    @TaskLocal public static var current: OpProfile?
    /// Set while an op runs: ops it calls are part of its time (a group norm inside a convolution).
    @TaskLocal private static var insideOp = false

    /// With `timed` false only calls and FLOPs are counted (no clock reads).
    public let timed: Bool
    private let lock = NSLock()
    private var table: [String: Entry] = [:]

    public init(timed: Bool = true) { self.timed = timed }

    /// Every operator seen, the most expensive first (by time when timed, else by FLOPs).
    public var entries: [Entry] {
        lock.withLock { Array(table.values) }.sorted { timed ? $0.seconds > $1.seconds : $0.flops > $1.flops }
    }

    public var totalFLOPs: Double { entries.reduce(0) { $0 + $1.flops } }

    /// Runs `body` as one call of operator `name` in the bound profile, if any.
    @inline(__always)
    static func record<T>(_ name: @autoclosure () -> String, flops: @autoclosure () -> Double = 0, _ body: () -> T) -> T {
        guard let profile = current, !insideOp else { return body() }
        let start = profile.timed ? DispatchTime.now().uptimeNanoseconds : 0
        let result = $insideOp.withValue(true) { body() }
        let seconds = profile.timed ? Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 : 0
        profile.add(name(), flops: flops(), seconds: seconds)
        return result
    }

    private func add(_ name: String, flops: Double, seconds: Double) {
        lock.withLock {
            var entry = table[name] ?? Entry(name: name)
            entry.calls += 1
            entry.seconds += seconds
            entry.flops += flops
            table[name] = entry
        }
    }
}
