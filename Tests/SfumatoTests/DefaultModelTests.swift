import Foundation
import Sfumato
import Testing

/// The embedded default model (Models/sfumato-shapes): Sfumato draws what diffusers draws, and the
/// pictures follow the prompt by the colour rule of Models/evaluate_shapes.py
/// (cases and rule written by Tests/Reference/fixtures_default_model.py).
@Suite struct DefaultModelTests {
    struct Rule: Decodable {
        struct Case: Decodable {
            let prompt: String
            let colour: String
            let background: String
            let seed: UInt64
        }
        let palette: [String: [Int]]
        let border: Int
        let min_shape_fraction: Double
        let steps: Int
        let guidance_scale: Float
        let cases: [Case]
    }

    static let modelPath = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Models/sfumato-shapes").path
    static let pipeline = Result { try StableDiffusionPipeline(files: try ModelFiles(path: modelPath)) }
    static func rule() throws -> Rule {
        try JSONDecoder().decode(Rule.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("default-model/cases.json"))))
    }

    func draw(_ prompt: String, seed: UInt64, rule: Rule) throws -> RGBImage {
        try Self.pipeline.get().generate(GenerationRequest(
            prompt: prompt, steps: rule.steps, guidanceScale: rule.guidance_scale, seed: seed, width: 64, height: 64))
    }

    @Test(arguments: 0..<2)
    func drawsWhatDiffusersDraws(index: Int) throws {
        let rule = try Self.rule()
        let reference = try Fixtures.file("default-model/diffusers-\(index).safetensors").tensor("pixels").toArray()
        let image = try draw(rule.cases[index].prompt, seed: rule.cases[index].seed, rule: rule)
        let close = zip(image.pixels, reference).filter { abs(Float($0) - $1) <= 2 }.count
        #expect(Double(close) / Double(reference.count) >= 0.99, "\(rule.cases[index].prompt)")
    }

    /// Nearest palette colour per pixel; the border's commonest label must be the asked background and
    /// the commonest other label (at least the rule's share of the image) the asked shape colour.
    @Test func followsThePrompt() throws {
        let rule = try Self.rule()
        let names = rule.palette.keys.sorted()
        let colours = names.map { rule.palette[$0]!.map(Float.init) }
        var passed = 0
        var failures: [String] = []
        for item in rule.cases {
            let image = try draw(item.prompt, seed: item.seed, rule: rule)
            var borderCounts = [Int](repeating: 0, count: names.count)
            var counts = [Int](repeating: 0, count: names.count)
            for y in 0..<image.height {
                for x in 0..<image.width {
                    let offset = 3 * (y * image.width + x)
                    let pixel = (0..<3).map { Float(image.pixels[offset + $0]) }
                    let label = colours.indices.min { a, b in
                        zip(colours[a], pixel).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
                            < zip(colours[b], pixel).map { ($0 - $1) * ($0 - $1) }.reduce(0, +)
                    }!
                    counts[label] += 1
                    let onBorder = x < rule.border || y < rule.border || x >= image.width - rule.border || y >= image.height - rule.border
                    if onBorder { borderCounts[label] += 1 }
                }
            }
            let background = borderCounts.indices.max { borderCounts[$0] < borderCounts[$1] }!
            counts[background] = 0
            let shape = counts.indices.max { counts[$0] < counts[$1] }!
            let share = Double(counts[shape]) / Double(image.width * image.height)
            if names[background] == item.background, names[shape] == item.colour, share >= rule.min_shape_fraction {
                passed += 1
            } else {
                failures.append("\(item.prompt) (seed \(item.seed)): \(names[shape]) on \(names[background])")
            }
        }
        let rate = Double(passed) / Double(rule.cases.count)
        #expect(rate >= 0.9, "pass rate \(rate); failures: \(failures.prefix(8))")
    }
}
