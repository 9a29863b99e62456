import Dispatch
import Sfumato
import Synchronization

/// The jobs the server holds (running or waiting), for A1111's `progress` and `interrupt`.
final class JobTracker: Sendable {
    struct Job {
        var images: Int
        var steps: Int
        var image = 0
        var step = 0
        var startedAt: UInt64?
        var preview: RGBImage?
        let cancel: @Sendable () -> Void
    }

    struct Progress {
        var jobCount = 0
        var fraction = 0.0
        var etaRelative = 0.0
        var image = 0
        var images = 0
        var step = 0
        var steps = 0
        var preview: RGBImage?
    }

    private struct State {
        var jobs: [UInt64: Job] = [:]
        var nextID: UInt64 = 0
        /// Mean seconds per finished image, for Retry-After.
        var secondsPerImage = 0.0
    }

    private let state = Mutex(State())

    func begin(images: Int, steps: Int, cancel: @escaping @Sendable () -> Void) -> UInt64 {
        state.withLock { state in
            state.nextID += 1
            state.jobs[state.nextID] = Job(images: images, steps: steps, cancel: cancel)
            return state.nextID
        }
    }

    func update(_ id: UInt64, _ change: (inout Job) -> Void) {
        state.withLock { state in
            guard var job = state.jobs[id] else { return }
            change(&job)
            state.jobs[id] = job
        }
    }

    func finishedImage(seconds: Double) {
        state.withLock { $0.secondsPerImage = $0.secondsPerImage == 0 ? seconds : 0.8 * $0.secondsPerImage + 0.2 * seconds }
    }

    func end(_ id: UInt64) {
        _ = state.withLock { $0.jobs.removeValue(forKey: id) }
    }

    /// Stops every running job (A1111 stops the current one; with several slots all current ones are).
    func interruptRunning() {
        let cancels = state.withLock { $0.jobs.values.filter { $0.startedAt != nil }.map(\.cancel) }
        cancels.forEach { $0() }
    }

    /// Seconds a refused client should wait: about one image's time (at least one second).
    var retryAfter: Int {
        max(1, Int(state.withLock { $0.secondsPerImage }.rounded(.up)))
    }

    /// The oldest running job's progress and the number of jobs held.
    func progress() -> Progress {
        state.withLock { state in
            var progress = Progress(jobCount: state.jobs.count)
            guard let (_, job) = state.jobs.filter({ $0.value.startedAt != nil }).min(by: { $0.key < $1.key }),
                  let startedAt = job.startedAt else { return progress }
            let total = Double(job.images * job.steps)
            progress.fraction = total > 0 ? Double(job.image * job.steps + job.step) / total : 0
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - startedAt) / 1e9
            progress.etaRelative = progress.fraction > 0 ? elapsed / progress.fraction - elapsed : 0
            (progress.image, progress.images, progress.step, progress.steps) = (job.image, job.images, job.step, job.steps)
            progress.preview = job.preview
            return progress
        }
    }
}
