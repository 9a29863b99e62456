import Dispatch
import Foundation
import Synchronization

/// A finished image with what made it: the pixels, the request as run (the seed and sampler it used)
/// and AUTOMATIC1111's `parameters` text, ready to send or save without touching a file.
public struct GeneratedImage: Sendable {
    public let image: RGBImage
    public let request: GenerationRequest
    /// The sampler that ran (the model's own when the request named none).
    public let scheduler: SchedulerKind
    public let modelName: String
    /// Seconds from the start of the run (after any wait for a slot) to the decoded image.
    public let elapsed: Double

    public var parameters: A1111Parameters {
        A1111Parameters(request: request, scheduler: scheduler, width: image.width, height: image.height, model: modelName)
    }

    /// The PNG bytes, with the `parameters` text chunk when `metadata` is true (as `sfumato generate` writes it).
    public func pngData(metadata: Bool = true) throws(PNGError) -> Data {
        Data(try Sfumato.pngData(image, text: metadata ? [("parameters", parameters.text)] : [], name: "generated image"))
    }
}

/// One step of a run as `generationEvents` reports it.
public struct GenerationStep: Sendable {
    public let step: Int
    public let totalSteps: Int
    /// Seconds since the run started (after any wait for a slot).
    public let elapsed: Double
    /// The decoded estimate of the final image, on the steps `previewEvery` asks for.
    public let preview: RGBImage?
}

public enum GenerationEvent: Sendable {
    /// The run got its slot after waiting `queueWait` seconds.
    case started(queueWait: Double)
    case step(GenerationStep)
    /// Always the last event of a run that succeeds.
    case finished(GeneratedImage)
}

extension StableDiffusionPipeline {
    /// Generates one image through `gate` (waiting for a slot in order). Cancelling the calling task
    /// stops the run between denoising steps, or takes it out of the queue, with `GenerationError.cancelled`.
    /// A bad request throws `GenerationError.invalidRequest` before it waits.
    ///
    /// `gate: nil` runs without waiting: for callers that already hold a slot (`GenerationGate.withSlot`
    /// around a batch of runs; its thread budget applies) or bound compute themselves.
    ///
    /// `onEvent` sees `started` and every `step` (with a preview every `previewEvery` steps) as
    /// `generationEvents` reports them, on the thread that runs the step: keep it short.
    public func generate(_ request: GenerationRequest, previewEvery: Int = 0, gate: GenerationGate? = .shared,
                         onEvent: @escaping @Sendable (GenerationEvent) -> Void = { _ in }) async throws -> GeneratedImage {
        try await run(request, previewEvery: previewEvery, gate: gate, report: onEvent)
    }

    /// The same run as a stream: `started`, one `step` per denoising step (with a preview image every
    /// `previewEvery` steps, 0 for none: each costs a VAE decode), then `finished`. Ending the iteration
    /// early, or cancelling the consuming task, cancels the run (the stream then ends without `finished`).
    public func generationEvents(_ request: GenerationRequest, previewEvery: Int = 0,
                                 gate: GenerationGate? = .shared) -> AsyncThrowingStream<GenerationEvent, any Error> {
        let (stream, continuation) = AsyncThrowingStream<GenerationEvent, any Error>.makeStream()
        let task = Task {
            do {
                let result = try await run(request, previewEvery: previewEvery, gate: gate) { continuation.yield($0) }
                continuation.yield(.finished(result))
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }

    /// Validates (before any wait), waits for a slot and runs; `started` and `step` events go to `report`.
    private func run(_ request: GenerationRequest, previewEvery: Int, gate: GenerationGate?,
                     report: @escaping @Sendable (GenerationEvent) -> Void) async throws -> GeneratedImage {
        try validate(request)
        let scheduler = try request.scheduler ?? SchedulerKind(defaultFor: schedulerConfig)
        let queued = DispatchTime.now().uptimeNanoseconds
        let body = {
            report(.started(queueWait: Double(DispatchTime.now().uptimeNanoseconds - queued) / 1e9))
            return try await self.runOffThePool(request, scheduler: scheduler, previewEvery: previewEvery) { report(.step($0)) }
        }
        guard let gate else { return try await body() }
        return try await gate.withSlot(body)
    }

    /// Runs the synchronous pipeline on a thread of its own: a run takes seconds to minutes, and
    /// holding one of Swift concurrency's few cooperative threads that long would stall every other
    /// task of the process (a server's request handlers among them). Task cancellation raises a flag
    /// the step callback reads.
    private func runOffThePool(_ request: GenerationRequest, scheduler: SchedulerKind, previewEvery: Int,
                               report: @escaping @Sendable (GenerationStep) -> Void) async throws -> GeneratedImage {
        let cancelled = Atomic<Bool>(false)
        // Task-local settings do not follow work onto another thread: carry them over by hand.
        let (budget, path, variant) = (Parallel.budget, Kernels.path, Kernels.variant)
        var request = request
        request.scheduler = scheduler
        let run = request
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<GeneratedImage, any Error>) in
                DispatchQueue.global(qos: .userInitiated).async {
                    continuation.resume(with: Result {
                        try Parallel.$budget.withValue(budget) {
                            try Kernels.$path.withValue(path) {
                                try Kernels.$variant.withValue(variant) {
                                    try self.runBlocking(run, scheduler: scheduler, previewEvery: previewEvery,
                                                         cancelled: cancelled, report: report)
                                }
                            }
                        }
                    })
                }
            }
        } onCancel: {
            cancelled.store(true, ordering: .relaxed)
        }
    }

    private func runBlocking(_ request: GenerationRequest, scheduler: SchedulerKind, previewEvery: Int,
                             cancelled: borrowing Atomic<Bool>, report: (GenerationStep) -> Void) throws -> GeneratedImage {
        let start = DispatchTime.now().uptimeNanoseconds
        var previewError: (any Error)?
        let latents: Tensor
        do {
            latents = try generateLatents(request) { progress in
                guard !cancelled.load(ordering: .relaxed) else { return false }
                var preview: RGBImage?
                if previewEvery > 0, progress.step % previewEvery == 0 || progress.step == progress.totalSteps {
                    do { preview = try decode(progress.predictedOriginal) } catch {
                        previewError = error
                        return false
                    }
                }
                report(GenerationStep(step: progress.step, totalSteps: progress.totalSteps, elapsed: progress.elapsed, preview: preview))
                // Checked again so that a cancellation during the preview decode stops before the next step.
                return !cancelled.load(ordering: .relaxed)
            }
        } catch {
            throw previewError ?? error
        }
        let image = try decode(latents)
        return GeneratedImage(image: image, request: request, scheduler: scheduler, modelName: modelName,
                              elapsed: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
}
