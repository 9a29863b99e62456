import Foundation
import Sfumato
import Synchronization
import Testing

/// The async API on a loaded pipeline (the embedded default model) and the gate that bounds compute.
@Suite struct AsyncGenerationTests {
    static var pipeline: StableDiffusionPipeline { get throws { try DefaultModelTests.pipeline.get() } }

    static func request(seed: UInt64 = 3, steps: Int = 4) -> GenerationRequest {
        GenerationRequest(prompt: "a red circle on a blue background", steps: steps, guidanceScale: 5, seed: seed,
                          width: 64, height: 64, scheduler: .eulerAncestral)
    }

    /// The synchronous API's image (a synchronous context, where the async overload is not chosen).
    static func synchronousImage(_ request: GenerationRequest) throws -> RGBImage {
        try pipeline.generate(request)
    }

    /// Polls until `condition` holds (bounded: 10 s), for states another task reaches.
    static func waitUntil(_ condition: () -> Bool) async throws {
        for _ in 0..<1000 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
        #expect(condition())
    }

    @Test func asyncGenerateIsTheSynchronousImage() async throws {
        let pipeline = try Self.pipeline
        let expected = try Self.synchronousImage(Self.request())
        let result = try await pipeline.generate(Self.request(), gate: GenerationGate())
        #expect(result.image == expected)
        #expect(result.scheduler == .eulerAncestral)
        // In-memory PNG: the same pixels, and the parameters text sfumato generate writes.
        let png = [UInt8](try result.pngData())
        #expect(try decodePNG(png, name: "result") == expected)
        let text = try decodePNGText(png, name: "result")
        #expect(text["parameters"] == result.parameters.text)
        #expect(result.parameters.text.contains("Steps: 4, Sampler: Euler a, CFG scale: 5, Seed: 3, Size: 64x64"))
        #expect(try decodePNGText([UInt8](try result.pngData(metadata: false)), name: "plain").isEmpty)
    }

    @Test func eventsComeInOrderWithPreviews() async throws {
        var steps: [Int] = []
        var previews: [Int] = []
        var started = 0
        var finished: GeneratedImage?
        for try await event in try Self.pipeline.generationEvents(Self.request(steps: 5), previewEvery: 2, gate: GenerationGate()) {
            #expect(finished == nil, "nothing after finished")
            switch event {
            case let .started(wait):
                #expect(wait >= 0 && steps.isEmpty)
                started += 1
            case let .step(step):
                #expect(step.totalSteps == 5 && step.elapsed > 0)
                steps.append(step.step)
                if let preview = step.preview {
                    #expect(preview.width == 64 && preview.height == 64)
                    previews.append(step.step)
                }
            case let .finished(result): finished = result
            }
        }
        #expect(started == 1)
        #expect(steps == [1, 2, 3, 4, 5])
        #expect(previews == [2, 4, 5])
        #expect(finished?.image == (try Self.synchronousImage(Self.request(steps: 5))))
    }

    @Test func badRequestFailsBeforeQueueing() async throws {
        var request = Self.request()
        request.steps = 0
        let gate = GenerationGate(concurrency: 1, queueLimit: 0)
        await #expect(throws: GenerationError.invalidRequest("steps must be between 1 and 1000, not 0")) {
            try await Self.pipeline.generate(request, gate: gate)
        }
        #expect(gate.load == (0, 0))
    }

    @Test func cancellingStopsBetweenStepsAndFreesTheSlot() async throws {
        let pipeline = try Self.pipeline
        let gate = GenerationGate(concurrency: 1)
        let task = Task { try await pipeline.generate(Self.request(steps: 1000), gate: gate) }
        try await Self.waitUntil { gate.load.running == 1 }
        task.cancel()
        do {
            _ = try await task.value
            Issue.record("a cancelled run returned an image")
        } catch let GenerationError.cancelled(afterStep: step) {
            #expect(step < 1000)
        }
        #expect(gate.load == (0, 0))
        // The slot is free for the next run.
        #expect(try await pipeline.generate(Self.request(), gate: gate).image == (try Self.synchronousImage(Self.request())))
    }

    @Test func stoppingTheIterationCancelsTheRun() async throws {
        let gate = GenerationGate(concurrency: 1)
        for try await event in try Self.pipeline.generationEvents(Self.request(steps: 200), gate: gate) {
            if case .step = event { break }
        }
        try await Self.waitUntil { gate.load == (0, 0) }
    }

    @Test func gateRunsInOrderAndNeverMoreThanItsConcurrency() async throws {
        let gate = GenerationGate(concurrency: 2, threadsPerRun: 1)
        final class Record: Sendable {
            let order = Mutex<[Int]>([])
            let running = Atomic<Int>(0)
            let most = Atomic<Int>(0)
            let release = Atomic<Bool>(false)
        }
        let record = Record()
        var tasks: [Task<Int, any Error>] = []
        for index in 0..<6 {
            tasks.append(Task {
                try await gate.withSlot {
                    record.order.withLock { $0.append(index) }
                    let now = record.running.add(1, ordering: .relaxed).newValue
                    record.most.max(now, ordering: .relaxed)
                    #expect(Parallel.budget == 1)
                    while !record.release.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(5)) }
                    record.running.subtract(1, ordering: .relaxed)
                    return index
                }
            })
            // Each task is running or queued before the next one starts, so arrival order is known.
            try await Self.waitUntil { gate.load.running + gate.load.waiting == index + 1 }
        }
        #expect(gate.load == (2, 4))
        record.release.store(true, ordering: .relaxed)
        for (index, task) in tasks.enumerated() { #expect(try await task.value == index) }
        #expect(record.order.withLock { $0 } == Array(0..<6))
        #expect(record.most.load(ordering: .relaxed) == 2)
        #expect(gate.load == (0, 0))
    }

    @Test func fullQueueRefusesAndCancelledWaiterLeaves() async throws {
        let gate = GenerationGate(concurrency: 1, queueLimit: 1)
        let release = Atomic<Bool>(false)
        let holder = Task {
            try await gate.withSlot { while !release.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(5)) } }
        }
        try await Self.waitUntil { gate.load == (1, 0) }
        let waiter = Task { try await gate.withSlot { 1 } }
        try await Self.waitUntil { gate.load == (1, 1) }
        await #expect(throws: GenerationError.busy(waiting: 1)) { try await gate.withSlot { 2 } }
        waiter.cancel()
        await #expect(throws: GenerationError.cancelled(afterStep: 0)) { try await waiter.value }
        #expect(gate.load == (1, 0))
        release.store(true, ordering: .relaxed)
        try await holder.value
        #expect(try await gate.withSlot { 3 } == 3)
    }
}
