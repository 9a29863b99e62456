import Foundation
import Sfumato
import Testing

/// What `sfumato noise` and `sfumato latents` draw with: the forward process against diffusers
/// (Tests/Reference/fixtures_img2img.py), latent channel maps, PSNR, contact sheets.
@Suite struct ProcessPicturesTests {
    @Test func forwardProcessMatchesDiffusers() throws {
        let file = try Fixtures.file("img2img/forward.safetensors")
        let config = try SchedulerConfig(path: Fixtures.path("schedulers_a/sd15_scheduler_config.json"))
        let (original, noise) = (try file.tensor("original"), try file.tensor("noise"))
        for t in [0, 50, 100, 250, 500, 999] {
            expectClose(try config.forwardProcess(original, noise: noise, timestep: t), try file.tensor("t\(t)"), tolerance: 1e-6, "t = \(t)")
        }
        #expect(throws: SchedulerError.self) { try config.forwardProcess(original, noise: noise, timestep: 1000) }
        #expect(throws: SchedulerError.self) { try config.forwardProcess(original, noise: noise, timestep: -1) }
    }

    @Test func latentChannelsStretchToFullRange() throws {
        // Channel 0 runs 0...3, channel 1 is constant.
        let latents = Tensor(shape: [1, 2, 1, 2], values: [0, 3, 5, 5])
        let maps = try latentChannelImages(latents, scale: 2)
        #expect(maps.count == 2 && maps[0].width == 4 && maps[0].height == 2)
        #expect(Array(maps[0].pixels[0..<12]) == [0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255])
        #expect(maps[1].pixels.allSatisfy { $0 == 0 })
        #expect(throws: ImageError.self) { try latentChannelImages(Tensor(zeros: [2, 4, 2, 2])) }
    }

    @Test func psnrOfKnownErrors() throws {
        let black = try RGBImage(width: 2, height: 1, pixels: [0, 0, 0, 0, 0, 0])
        let off = try RGBImage(width: 2, height: 1, pixels: [255, 255, 255, 0, 0, 0])
        #expect(try peakSignalToNoiseRatio(black, black) == .infinity)
        // Half the values off by 255: MSE = 255^2 / 2, PSNR = 10 log10(2).
        #expect(abs(try peakSignalToNoiseRatio(black, off) - 10 * log10(2.0)) < 1e-12)
        #expect(throws: ImageError.self) { try peakSignalToNoiseRatio(black, try RGBImage(width: 1, height: 1, pixels: [0, 0, 0])) }
    }

    @Test func contactSheetPlacesImagesAndLabels() throws {
        let red = try RGBImage(width: 8, height: 4, pixels: Array(repeating: [255, 0, 0], count: 32).flatMap { $0 })
        let sheet = try contactSheet([("t=0", red), ("t=999", red), ("t=5", red)], columns: 2)
        // Cells as wide as the widest of image and label ("t=999": 5 glyphs of 8 pixels), gaps of 6.
        #expect(sheet.width == 6 + 2 * (40 + 6) && sheet.height == 6 + 2 * (4 + 16 + 6))
        func pixel(_ x: Int, _ y: Int) -> [UInt8] { Array(sheet.pixels[((y * sheet.width + x) * 3)..<((y * sheet.width + x) * 3 + 3)]) }
        #expect(pixel(6, 6) == [255, 0, 0] && pixel(0, 0) == [255, 255, 255])
        // The 't' of the first label: its top row has the middle pixel set, drawn 4 pixels below the image.
        #expect(pixel(6 + 2, 6 + 4 + 4) == [0, 0, 0] && pixel(6, 6 + 4 + 4) == [255, 255, 255])
        #expect(throws: ImageError.self) { try contactSheet([], columns: 2) }
    }
}
