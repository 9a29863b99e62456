@testable import Sfumato
import Testing

/// ResnetBlock2D against diffusers on a block that changes channels (so conv_shortcut is used) and takes a time embedding.
@Suite struct ResnetBlockTests {
    @Test func matchesDiffusersWithTimeEmbedding() throws {
        let file = try Fixtures.file("nets/resnet_block.safetensors")
        let loader = ParameterLoader(source: file, component: "resnet fixture")
        let block = ResnetBlock2D(loader.scoped("block"), inChannels: 32, outChannels: 64, tembChannels: 48, groups: 8, eps: 1e-5)
        try loader.finish(ignoring: { !$0.hasPrefix("block.") })
        let output = block(try file.tensor("x"), temb: try file.tensor("temb"))
        expectClose(output, try file.tensor("out"), tolerance: 1e-4, "ResnetBlock2D")
    }

    /// Built for 64 -> 64 channels, the 32 -> 64 checkpoint has wrong norm1/conv1 shapes and an unused shortcut.
    @Test func reportsEveryMismatchedTensor() throws {
        let file = try Fixtures.file("nets/resnet_block.safetensors")
        let loader = ParameterLoader(source: file, component: "resnet fixture")
        _ = ResnetBlock2D(loader.scoped("block"), inChannels: 64, outChannels: 64, tembChannels: 48, groups: 8, eps: 1e-5)
        let mismatch = #expect(throws: ParameterMismatch.self) { try loader.finish(ignoring: { !$0.hasPrefix("block.") }) }
        #expect(mismatch?.misshaped.map(\.name) == ["block.norm1.weight", "block.norm1.bias", "block.conv1.weight"])
        #expect(Set(mismatch?.unexpected.map(\.name) ?? []) == ["block.conv_shortcut.weight", "block.conv_shortcut.bias"])
        #expect(mismatch?.missing.isEmpty == true)
    }
}
