// Loads a model once, draws two images concurrently through one gate, reports progress, and saves PNGs.
// Usage: LibraryExample MODEL_FOLDER OUTPUT_FOLDER
import Foundation
import Sfumato

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    FileHandle.standardError.write(Data("usage: LibraryExample MODEL_FOLDER OUTPUT_FOLDER\n".utf8))
    exit(2)
}

do {
    // Loading is the slow part: do it once and share the pipeline (it is Sendable and read-only).
    let pipeline = try StableDiffusionPipeline(files: try ModelFiles(path: arguments[1]))
    // One generation at a time; the second caller waits its turn instead of fighting for the cores.
    let gate = GenerationGate(concurrency: 1)

    let prompts = ["a red circle on a blue background", "a yellow square on a black background"]
    let images = try await withThrowingTaskGroup(of: (Int, GeneratedImage).self) { group in
        for (index, prompt) in prompts.enumerated() {
            group.addTask {
                let request = GenerationRequest(prompt: prompt, steps: 12, guidanceScale: 5, seed: UInt64(index), scheduler: .eulerAncestral)
                // The event stream: steps as they finish, then the image.
                for try await event in pipeline.generationEvents(request, gate: gate) {
                    switch event {
                    case let .started(queueWait): print("\(prompt): started after \(String(format: "%.2f", queueWait)) s in the queue")
                    case let .step(step) where step.step == step.totalSteps: print("\(prompt): \(step.step)/\(step.totalSteps) steps")
                    case .step: break
                    case let .finished(image): return (index, image)
                    }
                }
                throw GenerationError.cancelled(afterStep: 0)
            }
        }
        var images: [GeneratedImage?] = Array(repeating: nil, count: prompts.count)
        for try await (index, image) in group { images[index] = image }
        return images.compactMap { $0 }
    }

    // Or simply: let image = try await pipeline.generate(request)
    for (index, image) in images.enumerated() {
        let path = URL(fileURLWithPath: arguments[2]).appendingPathComponent("example-\(index).png")
        try image.pngData().write(to: path)  // PNG bytes in memory, with A1111's parameters text
        print("wrote \(path.path): \(image.parameters.text.split(separator: "\n").last ?? "")")
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
