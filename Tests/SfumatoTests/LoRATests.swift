import Foundation
import Sfumato
import Testing

/// LoRA loading and merging against Tests/Reference/fixtures_lora.py: the same updates in kohya,
/// PEFT and diffusers' older naming, merged into the tiny model's UNet and text encoder.
@Suite struct LoRATests {
    static let outputs = Result { try Fixtures.file("lora/outputs.safetensors") }
    static func lora(_ name: String) throws -> LoRA { try LoRA(path: Fixtures.path("lora/\(name).safetensors")) }

    /// Whether the tag reads as that LoRA name and text encoder / UNet weights.
    static func reads(_ tag: ExtraNetworkTag, _ name: String, _ textEncoder: Float, _ unet: Float) throws -> Bool {
        let reference = try ExtraNetworks.loraReference(tag)
        return reference.name == name && reference.textEncoderWeight == textEncoder && reference.unetWeight == unet
    }

    static func unetOutput(_ pipeline: StableDiffusionPipeline) throws -> Tensor {
        let file = try outputs.get()
        return try pipeline.unet(try file.tensor("sample"), timestep: 500, encoderHiddenStates: try file.tensor("context"))
    }

    static func textOutput(_ pipeline: StableDiffusionPipeline) throws -> Tensor {
        let ids = try outputs.get().tensor("input_ids")
        let rows = (0..<ids.shape[0]).map { row in (0..<ids.shape[1]).map { Int32(ids[flat: row * ids.shape[1] + $0]) } }
        return try pipeline.textEncoder(rows)
    }

    @Test(arguments: ["tiny_kohya", "tiny_peft"])
    func mergesLikeTheReference(file: String) throws {
        let base = try PipelineTests.pipeline.get()
        let lora = try Self.lora(file)
        #expect(lora.name == file && lora.updates.count == 11)
        let styled = try base.applyingLoRAs([LoRAApplication(lora, weight: 0.8)])
        let reference = try Self.outputs.get()
        expectClose(try Self.unetOutput(styled), try reference.tensor("unet_lora"), tolerance: 1e-4, "\(file) UNet")
        expectClose(try Self.textOutput(styled), try reference.tensor("text_lora"), tolerance: 1e-4, "\(file) text encoder")
        #expect(maxRelativeError(try Self.unetOutput(styled), try reference.tensor("unet_base")) > 1e-2, "the LoRA changes the UNet")
        // The loaded pipeline is untouched.
        expectClose(try Self.unetOutput(base), try reference.tensor("unet_base"), tolerance: 1e-4, "base UNet after merging")
        expectClose(try Self.textOutput(base), try reference.tensor("text_base"), tolerance: 1e-4, "base text encoder after merging")
    }

    /// Several LoRAs add up; switching sets starts from the loaded weights each time.
    @Test func stacksAndSwitchesLoRAs() throws {
        let base = try PipelineTests.pipeline.get()
        let reference = try Self.outputs.get()
        let both = try base.applyingLoRAs([LoRAApplication(try Self.lora("tiny_kohya"), weight: 0.8),
                                           LoRAApplication(try Self.lora("tiny_legacy"))])
        expectClose(try Self.unetOutput(both), try reference.tensor("unet_lora_and_legacy"), tolerance: 1e-4, "kohya + legacy")
        #expect(both.loras.map(\.lora.name) == ["tiny_kohya", "tiny_legacy"])

        let single = try both.applyingLoRAs([LoRAApplication(try Self.lora("tiny_peft"), weight: 0.8)])
        expectClose(try Self.unetOutput(single), try reference.tensor("unet_lora"), tolerance: 1e-4, "switched to one LoRA")
        let none = try single.applyingLoRAs([])
        #expect(try Self.unetOutput(none).toArray() == Self.unetOutput(base).toArray(), "no LoRA: the loaded UNet exactly")
        #expect(none.unet === base.unet && none.textEncoder === base.textEncoder)

        // Strength 0 for the text encoder leaves it shared with the loaded model.
        let unetOnly = try base.applyingLoRAs([LoRAApplication(try Self.lora("tiny_kohya"), textEncoderWeight: 0, unetWeight: 0.8)])
        #expect(unetOnly.textEncoder === base.textEncoder && unetOnly.unet !== base.unet)
        expectClose(try Self.unetOutput(unetOnly), try reference.tensor("unet_lora"), tolerance: 1e-4, "UNet-only strength")
    }

    @Test func refusesWhatItCannotMerge() throws {
        let base = try PipelineTests.pipeline.get()
        let loha = #expect(throws: LoRAError.self) { try Self.lora("loha") }
        #expect(loha?.description.contains("LoHa") == true)
        let lokr = #expect(throws: LoRAError.self) { try Self.lora("lokr") }
        #expect(lokr?.description.contains("LoKr") == true)
        let half = #expect(throws: LoRAError.self) { try Self.lora("half_pair") }
        #expect(half?.description.contains("lora_unet_mid_block_attentions_0_proj_in has no down") == true)

        let unknown = #expect(throws: LoRAError.self) { try base.applyingLoRAs([LoRAApplication(try Self.lora("unknown_modules"))]) }
        guard case let .unknownModules(_, first, count) = unknown else {
            Issue.record("expected unknownModules, got \(String(describing: unknown))")
            return
        }
        #expect(count == 7 && first.count == 5 && first[0] == "lora_unet_down_blocks_10_attentions_0_proj_in")
        let misshaped = #expect(throws: LoRAError.self) { try base.applyingLoRAs([LoRAApplication(try Self.lora("misshaped"))]) }
        #expect(misshaped?.description.contains("does not fit the model's weight [32, 32]") == true)

        #expect(throws: LoRAError.notFound(name: "nothing", folder: Fixtures.path("lora"))) { try LoRA(named: "nothing", in: Fixtures.path("lora")) }
        #expect(try LoRA(named: "tiny_kohya", in: Fixtures.path("lora")).updates.count == 11)
        let notLoRA = #expect(throws: LoRAError.self) { try LoRA(path: Fixtures.path("tiny/text_encoder/model.safetensors")) }
        #expect(notLoRA?.description.contains("no LoRA tensors") == true)
        #expect(throws: LoRAError.self) { try LoRA(path: Fixtures.path("lora/missing.safetensors")) }
    }

    /// `<lora:...>` tags: A1111 takes them out of the prompt and reads name, text encoder and UNet weights.
    @Test func readsPromptTags() throws {
        let parsed = ExtraNetworks.parse("a fox <lora:watercolor:0.8>, <lora:ink:0.5:0.7> <hypernet:x:1> a<b, <c:>")
        #expect(parsed.prompt == "a fox ,   a<b, <c:>")
        #expect(parsed.tags == [ExtraNetworkTag(kind: "lora", arguments: ["watercolor", "0.8"]),
                                ExtraNetworkTag(kind: "lora", arguments: ["ink", "0.5", "0.7"]),
                                ExtraNetworkTag(kind: "hypernet", arguments: ["x", "1"])])
        #expect(try Self.reads(parsed.tags[0], "watercolor", 0.8, 0.8))
        #expect(try Self.reads(parsed.tags[1], "ink", 0.5, 0.7))
        #expect(try Self.reads(ExtraNetworkTag(kind: "lora", arguments: ["a"]), "a", 1, 1))
        #expect(try Self.reads(ExtraNetworkTag(kind: "lora", arguments: ["a", "unet=0.3", "te=0.2"]), "a", 0.2, 0.3))
        #expect(throws: ExtraNetworkError.unsupportedKind("hypernet")) { try ExtraNetworks.loraReference(parsed.tags[2]) }
        #expect(throws: ExtraNetworkError.self) { try ExtraNetworks.loraReference(ExtraNetworkTag(kind: "lora", arguments: ["a", "x"])) }
        #expect(throws: ExtraNetworkError.self) { try ExtraNetworks.loraReference(ExtraNetworkTag(kind: "lora", arguments: ["a", "dyn=4"])) }
    }

    /// The tags do not reach the text encoder: a prompt with them conditions as the prompt without.
    @Test func promptTagsAreNotEncoded() throws {
        let pipeline = try PipelineTests.pipeline.get()
        let plain = GenerationRequest(prompt: "a red circle", steps: 2, seed: 3, width: 16, height: 16, scheduler: .ddim)
        var tagged = plain
        tagged.prompt = "a red <lora:tiny_kohya:0.5>circle"
        #expect(try pipeline.generateLatents(tagged).toArray() == pipeline.generateLatents(plain).toArray())
    }
}
