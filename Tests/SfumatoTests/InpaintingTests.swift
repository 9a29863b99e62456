import Foundation
import Sfumato
import Testing

/// Inpainting against diffusers' StableDiffusionInpaintPipeline (Tests/Reference/fixtures_inpaint.py):
/// a 9-channel inpainting UNet, and the ordinary tiny UNet with masked-latent blending.
@Suite struct InpaintingTests {
    static let inpaintingPipeline = Result { try StableDiffusionPipeline(files: try ModelFiles(path: Fixtures.path("tiny-inpaint"))) }
    static func mask() throws -> RGBImage { try readPNG(path: Fixtures.path("inpaint/mask.png")) }

    @Test func maskAsDiffusersPreparesIt() throws {
        let file = try Fixtures.file("inpaint/mask.safetensors")
        let condition = try Self.mask().inpaintingMask()
        #expect(condition.shape == [1, 1, 32, 48])
        #expect(condition.toArray() == (try file.tensor("mask_condition")).toArray())
        // Colour masks go through Pillow's luma first.
        let colour = try RGBImage(width: 10, height: 6, pixels: try file.tensor("colour_pixels").toArray().map { UInt8($0) })
        #expect(colour.inpaintingMask().toArray() == (try file.tensor("colour_condition")).toArray())
        // The mask at latent size: torch's nearest interpolation, whole and fractional ratios.
        let sample = try file.tensor("nearest_input")
        #expect(nearestResized(sample, height: 5, width: 4).toArray() == (try file.tensor("nearest_5x4")).toArray())
        #expect(nearestResized(condition, height: 16, width: 24).toArray() == (try file.tensor("nearest_16x24")).toArray())
    }

    @Test func masksBlendAndZero() {
        let image = Tensor(shape: [1, 2, 1, 2], values: [1, -2, 3, 4])
        let mask = Tensor(shape: [1, 1, 1, 2], values: [0, 1])
        #expect(keepingUnmasked(image, mask: mask).toArray() == [1, 0, 3, 0])
        let generated = Tensor(shape: [1, 2, 1, 2], values: [10, 20, 30, 40])
        #expect(blendMasked(original: image, generated: generated, mask: mask).toArray() == [1, 20, 3, 40])
    }

    @Test(arguments: ["unet9-pndm", "unet9-euler-a", "unet4-euler-a", "unet4-dpm++2m-karras"])
    func drawsWhatDiffusersDraws(fixture: String) throws {
        let file = try Fixtures.file("inpaint/\(fixture).safetensors")
        let meta = file.metadata
        let pipeline = try meta["model"] == "tiny-inpaint" ? Self.inpaintingPipeline.get() : PipelineTests.pipeline.get()
        let request = GenerationRequest(
            prompt: try #require(meta["prompt"]), negativePrompt: meta["negative_prompt"] ?? "",
            steps: Int(try #require(meta["steps"]))!, guidanceScale: Float(try #require(meta["guidance_scale"]))!,
            seed: UInt64(try #require(meta["seed"]))!, scheduler: SchedulerKind(rawValue: try #require(meta["scheduler"])),
            initImage: try ImageToImageTests.initImage(), strength: Double(try #require(meta["strength"]))!, mask: try Self.mask())
        let latents = try pipeline.generateLatents(request)
        expectClose(latents, try file.tensor("latents"), tolerance: 1e-3, "\(fixture) latents")

        let image = try pipeline.decode(latents)
        let reference = try file.tensor("pixels")
        #expect(reference.shape == [image.height, image.width, 3])
        let close = zip(image.pixels, reference.toArray()).filter { abs(Float($0) - $1) <= 2 }.count
        let share = Double(close) / Double(reference.count)
        #expect(share >= 0.99, "\(fixture): only \(share * 100)% of pixel values within 2 levels of diffusers")
    }

    @Test func refusesBadRequests() throws {
        let image = try ImageToImageTests.initImage()
        let small = try RGBImage(width: 16, height: 16, pixels: [UInt8](repeating: 255, count: 16 * 16 * 3))
        let cases: [(StableDiffusionPipeline, GenerationRequest, String)] = [
            (try PipelineTests.pipeline.get(), GenerationRequest(prompt: "x", mask: image), "a mask needs an init image"),
            (try PipelineTests.pipeline.get(), GenerationRequest(prompt: "x", initImage: image, mask: small),
             "the mask is 16x16 but the init image is 48x32"),
            (try Self.inpaintingPipeline.get(), GenerationRequest(prompt: "x", width: 16, height: 16),
             "takes 9 input channels (an inpainting model): it needs an init image and a mask"),
            (try Self.inpaintingPipeline.get(), GenerationRequest(prompt: "x", initImage: image), "takes 9 input channels"),
        ]
        for (pipeline, request, message) in cases {
            let error = #expect(throws: GenerationError.self) { try pipeline.validate(request) }
            #expect(error?.description.contains(message) == true, "\(String(describing: error)) should say \(message)")
        }
    }
}
