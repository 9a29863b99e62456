import Foundation
import Sfumato
import Testing

/// AUTOMATIC1111 prompt syntax, chunking, emphasis and clip skip against the restatement of its
/// algorithm in Tests/Reference/fixtures_prompts.py, on the tiny tokenizer and text encoder.
@Suite struct PromptTests {
    static let tokenizer = Result { try CLIPTokenizer(directory: URL(fileURLWithPath: Fixtures.path("tiny/tokenizer"))) }
    static let encoder = Result {
        try CLIPTextModel(config: try CLIPTextConfig(contentsOf: Fixtures.path("tiny/text_encoder/config.json")),
                          weights: try Fixtures.file("tiny/text_encoder/model.safetensors"))
    }
    static let cases = Result { try Fixtures.file("prompts/cases.safetensors") }

    /// A JSON value the reference script stored in the fixture's metadata.
    static func json(_ file: SafeTensorsFile, _ key: String) throws -> Any {
        let text = try #require(file.metadata[key], "metadata \(key)")
        return try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    static func segments(_ pairs: [(String, Double)]) -> [PromptSegment] { pairs.map { PromptSegment($0.0, $0.1) } }

    @Test func weightsOfTheExamplePrompt() throws {
        #expect(try PromptParser.parseAttention("a (red:1.3) fox, [blurry]")
                == Self.segments([("a ", 1), ("red", 1.3), (" fox, ", 1), ("blurry", 1 / 1.1)]))
        // Tokens of the tiny vocabulary: <start> a red f o x , blu rry <end> ...
        let chunk = try #require(try Self.tokenizer.get().chunks("a (red:1.3) fox, [blurry]").first)
        #expect(chunk.ids.prefix(10) == [572, 320, 565, 69, 78, 343, 267, 530, 568, 573])
        #expect(Array(chunk.weights.prefix(10)) == [1, 1, 1.3, 1, 1, 1, 1, Float(1 / 1.1), Float(1 / 1.1), 1])
        #expect(chunk.weights.count == 77 && chunk.weights.dropFirst(10).allSatisfy { $0 == 1 })
    }

    /// The examples in the docstring of A1111's parse_prompt_attention, and the rules for odd input.
    @Test func parsesLikeAUTOMATIC1111() throws {
        let parse = PromptParser.parseAttention
        #expect(try parse("normal text") == Self.segments([("normal text", 1)]))
        #expect(try parse("an (important) word") == Self.segments([("an ", 1), ("important", 1.1), (" word", 1)]))
        #expect(try parse("(unbalanced") == Self.segments([("unbalanced", 1.1)]))
        #expect(try parse(#"\(literal\]"#) == Self.segments([("(literal]", 1)]))
        #expect(try parse("(unnecessary)(parens)") == Self.segments([("unnecessaryparens", 1.1)]))
        #expect(try parse("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).") == Self.segments([
            ("a ", 1), ("house", 1.5730000000000004), (" ", 1.1), ("on", 1), (" a ", 1.1), ("hill", 0.55),
            (", sun, ", 1.1), ("sky", 1.4641000000000006), (".", 1.1)]))
        #expect(try parse("") == Self.segments([("", 1)]))
        #expect(try parse("[a] b") == Self.segments([("a", 1 / 1.1), (" b", 1)]))
        #expect(try parse(#"a \\ b \x"#) == Self.segments([(#"a \ b x"#, 1)]), "a stray backslash is dropped")
        #expect(try parse("x BREAK  y") == Self.segments([("x", 1), ("BREAK", -1), ("y", 1)]))
        #expect(try parse("BREAKfast break BREAK_") == Self.segments([("BREAKfast break BREAK_", 1)]))
        #expect(try parse("(a:-1) (b:+.5) c:1.5)") == Self.segments([("a", -1), (" ", 1), ("b", 0.5), (" c:1.5)", 1)]))
    }

    @Test func refusesWeightsThatAreNotNumbers() throws {
        #expect(throws: PromptError.invalidWeight("1.2.3")) { try PromptParser.parseAttention("(a:1.2.3)") }
        #expect(throws: PromptError.invalidWeight(".")) { try PromptParser.parseAttention("x (y:.)") }
        #expect(throws: PromptError.invalidWeight("..")) { try Self.tokenizer.get().chunks("((a:..)") }
        // Without an open bracket the same text is plain, as in A1111.
        #expect(try PromptParser.parseAttention("a:1.2.3)") == Self.segments([("a:1.2.3)", 1)]))
    }

    /// Every case of the fixture: segments, chunk ids and weights exactly; hidden states per clip skip.
    @Test func matchesTheReferenceCases() throws {
        let file = try Self.cases.get()
        let tokenizer = try Self.tokenizer.get()
        let encoder = try Self.encoder.get()
        let names = try #require(try Self.json(file, "cases") as? [String])
        #expect(names.count == 15)
        for name in names {
            let prompt = try #require(file.metadata["\(name).prompt"])
            let pairs = try #require(try Self.json(file, "\(name).segments") as? [[Any]])
            // Foundation's JSON numbers can be an ulp off Python's repr, so weights compare to 1e-12 here
            // (the cases spelled out above compare exactly).
            let parsed = try PromptParser.parseAttention(prompt)
            #expect(parsed.map(\.text) == pairs.map { $0[0] as? String ?? "?" }, "\(name): segment texts")
            let expectedWeights = pairs.map { ($0[1] as? NSNumber)?.doubleValue ?? .nan }
            #expect(parsed.count == expectedWeights.count && zip(parsed, expectedWeights).allSatisfy { abs($0.weight - $1) <= 1e-12 * abs($1) },
                    "\(name): weights \(parsed.map(\.weight)), reference \(expectedWeights)")

            let chunks = try tokenizer.chunks(prompt)
            let ids = try file.tensor("\(name).ids")
            let weights = try file.tensor("\(name).weights")
            #expect(ids.shape == [chunks.count, 77], "\(name): \(chunks.count) chunks, reference \(ids.shape[0])")
            guard ids.shape == [chunks.count, 77] else { continue }
            #expect(chunks.flatMap(\.ids).map(Float.init) == ids.toArray(), "\(name): ids")
            #expect(chunks.flatMap(\.weights) == weights.toArray(), "\(name): weights")

            let skips = try #require(try Self.json(file, "\(name).clip_skips") as? [Int])
            for skip in skips {
                let hidden = try encoder.encode([chunks], clipSkip: skip)[0]
                expectClose(hidden, try file.tensor("\(name).hidden.\(skip)"), tolerance: 1e-5, "\(name) clip skip \(skip)")
            }
        }
    }

    /// No syntax and at most 75 tokens: exactly the ids and hidden states of the plain path (diffusers').
    @Test func plainPromptsAreUnchanged() throws {
        let tokenizer = try Self.tokenizer.get()
        let encoder = try Self.encoder.get()
        for prompt in ["a red circle on a blue background", "", "blurry, low quality", String(repeating: "a ", count: 75)] {
            let chunks = try tokenizer.chunks(prompt)
            #expect(chunks == [PromptChunk(ids: tokenizer.encode(prompt), weights: Array(repeating: 1, count: 77))], "\(prompt)")
        }
        let prompts = ["blurry", "a red circle on a blue background"]
        let plain = try encoder(prompts.map { tokenizer.encode($0) })
        let chunked = try encoder.encode(try prompts.map { try tokenizer.chunks($0) })
        #expect(concat(chunked, axis: 0).toArray() == plain.toArray())
    }

    @Test func emphasisRestoresTheMean() {
        // Mean 2.5; weights [1, 2] give [1, 2, 6, 8] with mean 4.25, scaled by 2.5 / 4.25.
        let hidden = Tensor(shape: [1, 2, 2], values: [1, 2, 3, 4])
        let result = emphasized(hidden, tokenWeights: [1, 2])
        let factor = Float(2.5) / Float(4.25)
        #expect(result.toArray() == [1 * factor, 2 * factor, 6 * factor, 8 * factor])
        #expect(abs(result.toArray().reduce(0, +) / 4 - 2.5) < 1e-6)
    }

    @Test func clipSkipIsChecked() throws {
        let encoder = try Self.encoder.get()
        let ids = [try Self.tokenizer.get().encode("a red circle")]
        #expect(throws: ModelInputError.clipSkip(model: "text encoder", value: 3, layers: 2)) { try encoder(ids, clipSkip: 3) }
        #expect(throws: ModelInputError.clipSkip(model: "text encoder", value: 0, layers: 2)) { try encoder(ids, clipSkip: 0) }
        let penultimate = try encoder(ids, clipSkip: 2)
        let last = try encoder(ids, clipSkip: 1)
        #expect(penultimate.toArray() != last.toArray())
    }

    /// DDIM with A1111 conditioning against the reference loop (itself checked against diffusers):
    /// a weighted prompt with clip skip 2, and a two-chunk prompt against a one-chunk negative prompt.
    @Test(arguments: ["weighted", "long"])
    func drawsWithA1111Conditioning(name: String) throws {
        let pipeline = try PipelineTests.pipeline.get()
        let file = try Fixtures.file("prompts/ddim_\(name).safetensors")
        let meta = file.metadata
        let request = GenerationRequest(
            prompt: try #require(meta["prompt"]), negativePrompt: try #require(meta["negative_prompt"]),
            steps: Int(try #require(meta["steps"]))!, guidanceScale: Float(try #require(meta["guidance_scale"]))!,
            seed: UInt64(try #require(meta["seed"]))!, width: Int(try #require(meta["width"])),
            height: Int(try #require(meta["height"])), scheduler: .ddim, clipSkip: Int(try #require(meta["clip_skip"]))!)
        let promptTokens = try pipeline.tokenizer.chunks(request.prompt).count * 77
        #expect(String(promptTokens) == meta["prompt_tokens"])
        expectClose(try pipeline.generateLatents(request), try file.tensor("latents"), tolerance: 1e-3, "\(name) latents")
    }

    @Test func refusesBadPromptRequests() throws {
        let pipeline = try PipelineTests.pipeline.get()
        for request in [
            GenerationRequest(prompt: "x", clipSkip: 0),
            GenerationRequest(prompt: "x", clipSkip: 3),
            GenerationRequest(prompt: "(x:1..5)"),
            GenerationRequest(prompt: "x", negativePrompt: "(y:.)"),
            GenerationRequest(prompt: String(repeating: "x BREAK ", count: StableDiffusionPipeline.maximumPromptChunks + 1)),
        ] {
            #expect(throws: GenerationError.self) { try pipeline.validate(request) }
        }
        // "x BREAK " 64 times is 64 chunks (the empty text after the last BREAK adds none).
        let longest = String(repeating: "x BREAK ", count: StableDiffusionPipeline.maximumPromptChunks)
        #expect(try pipeline.tokenizer.chunks(longest).count == StableDiffusionPipeline.maximumPromptChunks)
        try pipeline.validate(GenerationRequest(prompt: longest, clipSkip: 2))
    }

    /// A megabyte of prompt (from a request body, say) is refused on its length, before any parsing.
    @Test func refusesMegabytePromptsUnread() throws {
        let pipeline = try PipelineTests.pipeline.get()
        let megabyte = String(repeating: "(a:1.1) ", count: 1 << 17)
        #expect(throws: GenerationError.invalidRequest("the negative prompt is 1048576 bytes; at most 65536 are allowed")) {
            try pipeline.validate(GenerationRequest(prompt: "x", negativePrompt: megabyte))
        }
        // The limit itself is allowed (white space makes no tokens).
        let longest = "x" + String(repeating: " ", count: StableDiffusionPipeline.maximumPromptBytes - 1)
        try pipeline.validate(GenerationRequest(prompt: longest))
        #expect(throws: GenerationError.invalidRequest("the prompt is 65537 bytes; at most 65536 are allowed")) {
            try pipeline.validate(GenerationRequest(prompt: longest + " "))
        }
    }
}

/// The PNG `parameters` text keeps the prompt as typed and records clip skip as A1111 does.
@Suite struct A1111ParametersTests {
    @Test func recordsPromptAndClipSkip() {
        let prompt = #"a (red:1.3) fox, [blurry] \(x\) BREAK hills"#
        var request = GenerationRequest(prompt: prompt, negativePrompt: "low (quality)", steps: 20, guidanceScale: 7, seed: 9, clipSkip: 2)
        let text = A1111Parameters(request: request, scheduler: .eulerAncestral, width: 512, height: 512, model: "m").text
        #expect(text == """
            \(prompt)
            Negative prompt: low (quality)
            Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 9, Size: 512x512, Model: m, Clip skip: 2
            """)
        request.clipSkip = 1
        #expect(!A1111Parameters(request: request, scheduler: .euler, width: 8, height: 8, model: "m").text.contains("Clip skip"))
    }
}
