import Foundation
@testable import Sfumato
import Testing

/// Winograd F(4x4, 3x3) against PyTorch's conv2d (Tests/Reference/fixtures_winograd.py, float64
/// reference) and against our im2col conv2d, on every kernel variant this CPU runs.
@Suite struct WinogradTests {
    /// The op-fixture tolerance; the transforms' rounding measures about 3e-6 here.
    static let tolerance: Float = 1e-4

    /// Every case, every variant, with the default scratch, with a half and a quarter of what the
    /// case needs at once (weight chunks, and for the larger cases several blocks), and with one output
    /// channel and one tile row at a time (the smallest plan).
    @Test(arguments: KernelVariant.available)
    func matchesTorch(kernels: KernelVariant) throws {
        let file = try Fixtures.file("ops/winograd.safetensors")
        let cases = try #require(file.metadata["cases"]).split(separator: " ")
        #expect(cases == ["one_pixel", "r3x5", "r7x9", "s13", "wide", "tall", "c40", "exact16"])
        for name in cases {
            let (x, weight) = (try file.tensor("\(name).x"), try file.tensor("\(name).w"))
            let bias = file.names.contains("\(name).b") ? try file.tensor("\(name).b") : nil
            let expected = try file.tensor("\(name).y")
            let (channels, outChannels) = (x.shape[1], weight.shape[0])
            let tiles = x.shape[0] * ((x.shape[2] + 3) / 4) * ((x.shape[3] + 3) / 4)
            let whole = outChannels * channels + (channels + outChannels) * tiles
            let padding = 3 * (WinogradPlan.positionStride(0) + 1023)
            for scratch in [winogradDefaultScratchElements, 36 * (padding + whole / 2), 36 * (padding + whole / 4), 1] {
                let y = Kernels.$variant.withValue(kernels) { winogradConv3x3(x, weight: weight, bias: bias, maxScratchElements: scratch) }
                expectClose(y, expected, tolerance: Self.tolerance, "\(name) \(kernels) scratch \(scratch)")
            }
        }
    }

    /// A random case beside im2col: odd sizes, batch 3 (blocks then span images), channel counts that
    /// fill no vector, and each way the plan cuts the work: one block and whole weights; whole
    /// weights and two blocks; weight chunks over one block (input transformed once); weight chunks
    /// and two blocks (input transformed per chunk); one output channel and one tile row at a time.
    @Test(arguments: KernelVariant.available)
    func matchesIm2col(kernels: KernelVariant) {
        var generator = SplitMix(seed: 11)
        let x = generator.tensor([3, 37, 23, 29])
        let weight = generator.tensor([45, 37, 3, 3])
        let bias = generator.tensor([45])
        let expected = Kernels.$path.withValue(.reference) { conv2d(x, weight: weight, bias: bias, stride: 1, padding: 1) }
        // (scratch bound, weight chunks, tile blocks)
        for (scratch, chunks, blocks) in [(winogradDefaultScratchElements, 1, 1), (573_012, 1, 2), (508_212, 2, 1),
                                          (328_212, 2, 2), (1, 45, 18)] {
            let plan = WinogradPlan(batch: 3, channels: 37, outChannels: 45, height: 23, width: 29, maxScratchElements: scratch)
            #expect((45 + plan.chunkChannels - 1) / plan.chunkChannels == chunks && (18 + plan.blockRows - 1) / plan.blockRows == blocks,
                    "scratch \(scratch): \(plan.chunkChannels) channels per chunk, \(plan.blockRows) tile rows per block")
            #expect(scratch == 1 || plan.scratchCount <= scratch)
            let y = Kernels.$variant.withValue(kernels) { winogradConv3x3(x, weight: weight, bias: bias, maxScratchElements: scratch) }
            expectClose(y, expected, tolerance: Self.tolerance, "\(kernels) scratch \(scratch)")
        }
    }

    /// What the fast path folds into the transforms, against the same steps done apart on the
    /// reference path: a group norm + SiLU on the input, a 2x nearest upsampling of the input, and a
    /// residual written into its own memory; ragged sizes, batch 2, whole and tiny scratch plans.
    @Test(arguments: KernelVariant.available)
    func fusedInputsAndResidualMatchTheReference(kernels: KernelVariant) {
        var generator = SplitMix(seed: 5)
        let x = generator.tensor([2, 40, 17, 22])
        let small = generator.tensor([2, 40, 9, 11])
        let weight = generator.tensor([24, 40, 3, 3])
        let bias = generator.tensor([24])
        let norm = InputGroupNorm(groups: 8, weight: generator.tensor([40]), bias: generator.tensor([40]), eps: 1e-6, silu: true)
        let residual = generator.tensor([2, 24, 17, 22])
        // Both sizes are large enough for the fast path to take Winograd.
        #expect(winogradIsProfitable(channels: 40, height: 17, width: 22, batch: 2) && winogradIsProfitable(channels: 40, height: 18, width: 22, batch: 2))
        let reference = Kernels.$path.withValue(.reference) {
            (normalized: conv2d(groupNorm(x, groups: 8, weight: norm.weight, bias: norm.bias, eps: norm.eps, silu: true),
                                weight: weight, bias: bias, padding: 1),
             upsampled: conv2d(upsampleNearest2x(small), weight: weight, bias: bias, padding: 1),
             summed: add(conv2d(x, weight: weight, bias: bias, padding: 1), residual))
        }
        Kernels.$variant.withValue(kernels) {
            expectClose(conv2d(x, weight: weight, bias: bias, padding: 1, normalizing: norm), reference.normalized,
                        tolerance: Self.tolerance, "normalised input, \(kernels)")
            expectClose(conv2d(small, weight: weight, bias: bias, padding: 1, upsampledInput: true), reference.upsampled,
                        tolerance: Self.tolerance, "upsampled input, \(kernels)")
            let target = residual.copy()
            let summed = conv2d(x, weight: weight, bias: bias, padding: 1, residual: target, residualIsScratch: true)
            #expect(summed.storage === target.storage, "the sum is written into the residual's memory")
            expectClose(summed, reference.summed, tolerance: Self.tolerance, "residual in place, \(kernels)")
            // The smallest plan: one output channel and one tile row at a time.
            let affine = groupNormAffine(x, groups: 8, weight: norm.weight, bias: norm.bias, eps: norm.eps)
            expectClose(winogradConv3x3(x, weight: weight, bias: bias, inputAffine: affine, silu: true, maxScratchElements: 1),
                        reference.normalized, tolerance: Self.tolerance, "normalised input, smallest plan, \(kernels)")
            expectClose(winogradConv3x3(small, weight: weight, bias: bias, upsampledInput: true, maxScratchElements: 1),
                        reference.upsampled, tolerance: Self.tolerance, "upsampled input, smallest plan, \(kernels)")
        }
    }

    /// Zero input channels give the bias everywhere, as torch does.
    @Test func emptyReductionGivesBias() {
        let bias = Tensor(shape: [2], values: [1.5, -2])
        let y = winogradConv3x3(Tensor(zeros: [1, 0, 2, 3]), weight: Tensor(zeros: [2, 0, 3, 3]), bias: bias)
        #expect(y.shape == [1, 2, 2, 3] && y.toArray() == [Float](repeating: 1.5, count: 6) + [Float](repeating: -2, count: 6))
    }

    /// The plan keeps its scratch within the bound for the SD 1.5 shapes; the weights come in chunks
    /// only where they would not fit whole beside a block of 128 tiles.
    @Test func planStaysWithinScratch() {
        // (channels, out channels, size, batch, chunked)
        for (channels, outChannels, size, batch, chunked) in [(320, 320, 64, 2, false), (640, 640, 32, 2, true), (1280, 1280, 16, 2, true),
                                                              (960, 320, 64, 2, true), (640, 320, 64, 2, false), (512, 512, 128, 1, false),
                                                              (256, 256, 256, 1, false), (128, 128, 512, 1, false)] {
            let plan = WinogradPlan(batch: batch, channels: channels, outChannels: outChannels, height: size, width: size,
                                    maxScratchElements: winogradDefaultScratchElements)
            let tiles = plan.blockRows * plan.tilesX
            let what = "\(channels)->\(outChannels) at \(size)"
            #expect(plan.weightStride >= plan.chunkChannels * channels && plan.inputStride >= channels * tiles
                    && plan.productStride >= plan.chunkChannels * tiles, "\(what)")
            #expect(plan.scratchCount <= winogradDefaultScratchElements, "\(what): \(plan.scratchCount) floats")
            #expect((plan.chunkChannels < outChannels) == chunked, "\(what): \(plan.chunkChannels) channels per chunk")
        }
    }

    /// The measured rule: at least 32 input channels and 32 output tiles.
    @Test func profitability() {
        #expect(winogradIsProfitable(channels: 320, height: 64, width: 64, batch: 2))
        #expect(winogradIsProfitable(channels: 128, height: 512, width: 512, batch: 1))
        #expect(winogradIsProfitable(channels: 1280, height: 16, width: 16, batch: 2))    // 32 tiles
        #expect(!winogradIsProfitable(channels: 1280, height: 16, width: 16, batch: 1))   // 16 tiles
        #expect(!winogradIsProfitable(channels: 1280, height: 8, width: 8, batch: 2))     // 8 tiles
        #expect(!winogradIsProfitable(channels: 4, height: 64, width: 64, batch: 2))
    }
}
