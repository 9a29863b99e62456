import Foundation
import Sfumato
import Testing

/// The single-file rule table against every SD 1.5 key, as diffusers' own converter pairs them
/// (Tests/Reference/fixtures_checkpoint_mapping.py).
@Suite struct CheckpointMappingTests {
    static func table() throws -> [String: [String: String]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("checkpoint/sd15_names.json")))
        return try JSONDecoder().decode([String: [String: String]].self, from: data)
    }

    @Test(arguments: ["unet", "vae", "text_encoder"])
    func mapsEverySD15Key(component: String) throws {
        let pairs = try #require(try Self.table()[component])
        #expect(pairs.count > 190)
        let kind: OriginalCheckpointSource.Component = switch component {
        case "unet": .unet(layersPerBlock: 2)
        case "vae": .vae(blockCount: 4)
        default: .textEncoder
        }
        var wrong: [String] = []
        for (original, expected) in pairs.sorted(by: { $0.key < $1.key }) {
            let mapped = OriginalCheckpointSource.diffusersName(of: original, component: kind)
            if mapped != expected { wrong.append("\(original) -> \(mapped ?? "nil"), expected \(expected)") }
        }
        #expect(wrong.isEmpty, "\(wrong.count) wrong, e.g. \(wrong.prefix(5))")
    }

    @Test func otherComponentsAndEMAKeysAreNotClaimed() {
        #expect(OriginalCheckpointSource.diffusersName(of: "model_ema.diffusion_modeltime_embed0weight", component: .unet(layersPerBlock: 2)) == nil)
        #expect(OriginalCheckpointSource.diffusersName(of: "first_stage_model.encoder.conv_in.weight", component: .unet(layersPerBlock: 2)) == nil)
        #expect(OriginalCheckpointSource.diffusersName(of: "model.diffusion_model.conv_in.weight", component: .vae(blockCount: 4)) == nil)
    }
}
