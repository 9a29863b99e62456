import Foundation
@testable import Sfumato
import Testing

/// SDXL against diffusers on a tiny model (Tests/Reference/fixtures_sdxl.py): the UNet with its added
/// conditioning, both text encoders, and StableDiffusionXLPipeline's images.
@Suite struct SDXLTests {
    static func unet() throws -> UNet2DConditionModel {
        let config = try UNet2DConditionConfig(contentsOf: Fixtures.path("tiny-sdxl/unet/config.json"))
        return try UNet2DConditionModel(config: config, weights: try Fixtures.file("tiny-sdxl/unet/diffusion_pytorch_model.safetensors"))
    }

    /// No attention in the first down block, transformer depths per block, "text_time" added conditioning.
    @Test func unetMatchesDiffusers() throws {
        let unet = try Self.unet()
        let config = unet.config
        #expect(config.additionEmbedType == .textTime && config.additionTimeEmbedDim == 8 && config.projectionClassEmbeddingsInputDim == 64)
        #expect(config.transformerLayersPerBlock == [1, 1, 2] && config.downBlockTypes.first == .downBlock2D)
        #expect(unet.mid_block.attentions[0].transformer_blocks.count == 2 && unet.up_blocks[0].attentions[0].transformer_blocks.count == 2)
        let file = try Fixtures.file("sdxl/networks.safetensors")
        let conditions = UNetAddedConditions(textEmbeds: try file.tensor("text_encoder_2.pooled"), timeIds: try file.tensor("unet.time_ids"))
        let output = try unet(try file.tensor("unet.sample"), timestep: Double(try file.tensor("unet.timestep")[flat: 0]),
                              encoderHiddenStates: try file.tensor("unet.encoder_hidden_states"), addedConditions: conditions)
        expectClose(output, try file.tensor("unet.output"), tolerance: 1e-4, "SDXL UNet")
    }

    /// The added conditioning is required by an SDXL UNet, refused by others, and checked against the config.
    @Test func addedConditionsAreChecked() throws {
        let unet = try Self.unet()
        let file = try Fixtures.file("sdxl/networks.safetensors")
        let (sample, states) = (try file.tensor("unet.sample"), try file.tensor("unet.encoder_hidden_states"))
        let pooled = try file.tensor("text_encoder_2.pooled")
        #expect(throws: UNetError.self) { try unet(sample, timestep: 1, encoderHiddenStates: states) }
        let fiveIDs = UNetAddedConditions(textEmbeds: pooled, timeIds: Tensor(zeros: [2, 5]))
        #expect(throws: UNetError.self) { try unet(sample, timestep: 1, encoderHiddenStates: states, addedConditions: fiveIDs) }
        #expect(UNetAddedConditions.sizeConditioning(width: 32, height: 24).toArray() == [24, 32, 0, 0, 24, 32])
        // A config naming text_time without its widths, or another added embedding, is refused.
        #expect(throws: UNetError.self) { try UNet2DConditionConfig(json: Data(#"{"addition_embed_type": "text_time"}"#.utf8)) }
        #expect(throws: UNetError.self) { try UNet2DConditionConfig(json: Data(#"{"addition_embed_type": "image"}"#.utf8)) }
    }
}
