import Synchronization

/// Compute as a bounded, shared resource: at most `concurrency` generations run at once and the rest
/// wait for a slot in the order they came, so concurrent callers never oversubscribe the cores or
/// race for memory. Each run gets `threadsPerRun` workers (the process's threads split between the
/// slots). With `queueLimit`, a run that would make more than that many wait is refused at once
/// (`GenerationError.busy`), which a server turns into "503, retry later".
public final class GenerationGate: Sendable {
    public let concurrency: Int
    public let queueLimit: Int?
    public let threadsPerRun: Int

    /// One run at a time and an unbounded queue: what a machine of a few cores should do.
    public static let shared = GenerationGate()

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var running = 0
        var waiting: [Waiter] = []
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    /// `concurrency` and `threadsPerRun` are at least 1; `threadsPerRun` defaults to the process's
    /// threads (`Runtime.threads`) divided by `concurrency`.
    public init(concurrency: Int = 1, queueLimit: Int? = nil, threadsPerRun: Int? = nil) {
        self.concurrency = max(1, concurrency)
        self.queueLimit = queueLimit.map { max(0, $0) }
        self.threadsPerRun = max(1, threadsPerRun ?? Runtime.threads / max(1, concurrency))
    }

    /// Runs in progress and runs waiting for a slot.
    public var load: (running: Int, waiting: Int) {
        state.withLock { ($0.running, $0.waiting.count) }
    }

    /// Waits for a slot (cancellable while waiting), runs `body` with this gate's thread budget and frees the slot.
    public func withSlot<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await acquire()
        defer { release() }
        return try await Parallel.$budget.withValue(threadsPerRun) { try await body() }
    }

    private func acquire() async throws {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Outcome { case run, wait, refuse(Int), cancelled }
                // Task.isCancelled is read under the lock: either the handler below ran first and this sees
                // the flag, or this enqueues first and the handler finds the waiter.
                let outcome: Outcome = state.withLock { state in
                    if Task.isCancelled { return .cancelled }
                    if state.running < concurrency, state.waiting.isEmpty {
                        state.running += 1
                        return .run
                    }
                    if let queueLimit, state.waiting.count >= queueLimit { return .refuse(state.waiting.count) }
                    state.waiting.append(Waiter(id: id, continuation: continuation))
                    return .wait
                }
                switch outcome {
                case .run: continuation.resume()
                case .wait: break
                case let .refuse(waiting): continuation.resume(throwing: GenerationError.busy(waiting: waiting))
                case .cancelled: continuation.resume(throwing: GenerationError.cancelled(afterStep: 0))
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiting.remove(at: index)
            }
            waiter?.continuation.resume(throwing: GenerationError.cancelled(afterStep: 0))
        }
    }

    /// Hands the slot to the first waiter, or frees it.
    private func release() {
        let next = state.withLock { state -> Waiter? in
            guard !state.waiting.isEmpty else {
                state.running -= 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.continuation.resume()
    }
}
