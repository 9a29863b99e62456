import Foundation
@testable import Sfumato
import Testing

/// Winograd F(4x4, 3x3) against PyTorch's conv2d (Tests/Reference/fixtures_winograd.py, float64
/// reference) and against our im2col conv2d, on every kernel variant this CPU runs.
@Suite struct WinogradTests {
    /// The op-fixture tolerance; the transforms' rounding measures about 3e-6 here.
    static let tolerance: Float = 1e-4

    /// Every case, every variant, with the default scratch, with one output channel and one tile row
    /// per step (the smallest plan), and with a bound that chunks the weights and blocks the rows unevenly.
    @Test(arguments: KernelVariant.available)
    func matchesTorch(kernels: KernelVariant) throws {
        let file = try Fixtures.file("ops/winograd.safetensors")
        let cases = try #require(file.metadata["cases"]).split(separator: " ")
        #expect(cases == ["one_pixel", "r3x5", "r7x9", "s13", "wide", "tall", "c40", "exact16"])
        for name in cases {
            let (x, weight) = (try file.tensor("\(name).x"), try file.tensor("\(name).w"))
            let bias = file.names.contains("\(name).b") ? try file.tensor("\(name).b") : nil
            let expected = try file.tensor("\(name).y")
            let channels = x.shape[1]
            for scratch in [winogradDefaultScratchElements, 1, 36 * (3 * channels + 2 * (channels + 3) * 4)] {
                let y = winogradConv3x3(x, weight: weight, bias: bias, kernels: kernels, maxScratchElements: scratch)
                expectClose(y, expected, tolerance: Self.tolerance, "\(name) \(kernels) scratch \(scratch)")
            }
        }
    }

    /// A random case beside im2col: odd sizes, batch 3 (block rows then span images), channel counts
    /// that fill no vector, and a bound small enough for three weight chunks and several blocks.
    @Test(arguments: KernelVariant.available)
    func matchesIm2col(kernels: KernelVariant) {
        var generator = SplitMix(seed: 11)
        let x = generator.tensor([3, 37, 23, 29])
        let weight = generator.tensor([45, 37, 3, 3])
        let bias = generator.tensor([45])
        let expected = conv2d(x, weight: weight, bias: bias, stride: 1, padding: 1)
        for scratch in [winogradDefaultScratchElements, 36 * 37 * 20 * 4] {
            let y = winogradConv3x3(x, weight: weight, bias: bias, kernels: kernels, maxScratchElements: scratch)
            expectClose(y, expected, tolerance: Self.tolerance, "\(kernels) scratch \(scratch)")
        }
    }

    /// Zero input channels give the bias everywhere, as torch does.
    @Test func emptyReductionGivesBias() {
        let bias = Tensor(shape: [2], values: [1.5, -2])
        let y = winogradConv3x3(Tensor(zeros: [1, 0, 2, 3]), weight: Tensor(zeros: [2, 0, 3, 3]), bias: bias)
        #expect(y.shape == [1, 2, 2, 3] && y.toArray() == [Float](repeating: 1.5, count: 6) + [Float](repeating: -2, count: 6))
    }

    /// The plan keeps its scratch within the bound for the SD 1.5 shapes, with whole weights where they fit.
    @Test func planStaysWithinScratch() {
        for (channels, outChannels, size, batch) in [(320, 320, 64, 2), (640, 640, 32, 2), (1280, 1280, 16, 2), (1280, 1280, 8, 2),
                                                     (512, 512, 128, 1), (128, 128, 512, 1), (960, 320, 64, 2)] {
            let plan = WinogradPlan(batch: batch, channels: channels, outChannels: outChannels, height: size, width: size,
                                    maxScratchElements: winogradDefaultScratchElements)
            let tiles = plan.blockRows * plan.tilesX
            #expect(plan.weightStride >= plan.chunkChannels * channels && plan.inputStride >= channels * tiles
                    && plan.productStride >= plan.chunkChannels * tiles)
            #expect(plan.scratchCount <= winogradDefaultScratchElements, "\(channels)->\(outChannels) at \(size): \(plan.scratchCount) floats")
            #expect(plan.chunkChannels == outChannels || 36 * outChannels * channels > winogradDefaultScratchElements / 2)
        }
    }
}
