import Foundation
import Sfumato
import Testing

/// A long-running server's life in a few minutes: 200 generations with the embedded default model in one
/// process, through the path the server takes (async generation with previews, PNG encoding), every
/// sampler in turn, prompts and seeds changing. Resident memory after generation 200 must be within 5% of
/// what it was after generation 20 (by then every buffer cache and sampler has warmed up). `make soak`
/// runs it; it is skipped otherwise (CI's run leaves it out).
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["SFUMATO_SOAK"] == "1"))
struct SoakTests {
    @Test func residentMemoryStaysFlat() async throws {
        let pipeline = try DefaultModelTests.pipeline.get()
        let kinds = SchedulerKind.allCases
        let shapes = ["circle", "square", "triangle"], colours = ["red", "green", "blue", "yellow"]
        var rss: [Int: Int] = [:]
        for index in 1...200 {
            let request = GenerationRequest(
                prompt: "a \(colours[index % colours.count]) \(shapes[index % shapes.count]) on a (white:1.1) background",
                negativePrompt: index % 2 == 0 ? "" : "blurry", steps: 6, guidanceScale: 5, seed: UInt64(index),
                scheduler: kinds[index % kinds.count])
            let image = try await pipeline.generate(request, previewEvery: 3, gate: nil)
            #expect(try image.pngData().count > 100)
            if index == 20 || index == 200 { rss[index] = ProcessMemory.residentBytes }
        }
        let (early, late) = (try #require(rss[20]), try #require(rss[200]))
        let change = Double(late - early) / Double(early)
        print(String(format: "soak: resident memory %.1f MB after generation 20, %.1f MB after 200 (%+.2f%%)",
                     Double(early) / 1e6, Double(late) / 1e6, 100 * change))
        #expect(abs(change) < 0.05)
    }
}
