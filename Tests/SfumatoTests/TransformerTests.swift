@testable import Sfumato
import Foundation
import Testing

/// Transformer2DModel alone against diffusers, weights stored under "model." in the fixture.
@Suite struct TransformerTests {
    private func check(_ name: String, channels: Int, heads: Int, layers: Int, linear: Bool) throws {
        let file = try Fixtures.file("nets/transformer2d_\(name).safetensors")
        let loader = ParameterLoader(source: file, component: "transformer fixture")
        let model = Transformer2DModel(loader.scoped("model"), channels: channels, heads: heads, headDim: channels / heads,
                                       layers: layers, crossAttentionDim: 32, groups: 8, linearProjection: linear)
        try loader.finish(ignoring: { !$0.hasPrefix("model.") })
        let output = model(try file.tensor("input"), encoderHiddenStates: try file.tensor("encoder_hidden_states"))
        expectClose(output, try file.tensor("output"), tolerance: 1e-4, "Transformer2DModel \(name)")
    }

    /// SD 1.x layout: 1x1 convolution projections, two transformer blocks.
    @Test func convolutionProjectionMatchesDiffusers() throws {
        try check("conv", channels: 32, heads: 4, layers: 2, linear: false)
    }

    /// SD 2.x layout: linear projections; 48 channels / 5 heads gives an inner width of 45, not 48.
    @Test func linearProjectionWithTruncatedHeadWidthMatchesDiffusers() throws {
        try check("linear", channels: 48, heads: 5, layers: 1, linear: true)
    }
}
