import CSfumatoKernels

/// Default bound on the scratch memory of one Winograd convolution, in floats (64 MB): the
/// transformed weights, input tiles and products.
public let winogradDefaultScratchElements = 1 << 24

/// Scratch of `winogradConv3x3`, kept between calls.
let winogradScratch = ScratchPool(kept: 1)

/// Tiles per block aimed at: 512 measured best or near it across the SD 1.5 shapes (narrower blocks
/// make OpenBLAS pack the `[O x C]` weights of every GEMM for few columns; wider ones gained nothing).
let winogradBlockTiles = 512
/// The narrowest block worth keeping the weights whole for; below it they come in chunks (measured
/// faster than narrower blocks).
let winogradMinimumBlockTiles = 128

/// Whether `winogradConv3x3` beats im2col `conv2d` for a 3x3 stride-1 convolution of a
/// `[batch, channels, height, width]` input, by measurement (AMD Zen 5, 2 cores, OpenBLAS 0.3.21):
/// from 32 output tiles of 4x4 on, every shape measured with 32 or more input channels ran faster
/// (1280 -> 1280 at 16x16, batch 2, 32 tiles: 33 ms against 39; 2 to 3 times on the SD 1.5 UNet at
/// 64x64 and 32x32 and on the VAE decoder). With fewer tiles the weight transform, which costs as
/// much as the GEMMs there, is not repaid (8x8 at batch 2: 27 ms against 13); with fewer input
/// channels the products, 36 per tile and output channel, cost more memory traffic than the GEMMs
/// save (4 -> 320 at 64x64: 3 times slower). The output channel count did not matter.
public func winogradIsProfitable(channels: Int, height: Int, width: Int, batch: Int) -> Bool {
    channels >= 32 && batch * ((height + 3) / 4) * ((width + 3) / 4) >= 32
}

/// `conv2d(x, weight: weight, bias: bias, stride: 1, padding: 1)` for 3x3 kernels by Winograd
/// F(4x4, 3x3): x `[N, C, H, W]`, weight `[O, C, 3, 3]`, bias `[O]` -> `[N, O, H, W]`.
///
/// Each 4x4 output tile takes 36 multiplications per channel pair instead of 144: the weights and the
/// 6x6 input patches are transformed, each of the 36 positions is one GEMM `[O x C] x [C x tiles]`
/// through OpenBLAS, and the products are transformed back. Weights are transformed on every call
/// (keeping them transformed would take four times their memory); tiles go in blocks of whole tile
/// rows, and the weights in chunks of output channels where they do not fit beside a block in
/// `maxScratchElements` floats. The bound gives way to at least one output channel and one tile row,
/// so tests can force the smallest plan. The C code path is `Kernels.variant`.
///
/// `inputAffine` ([N, C, 3]: mean, scale, shift per image and channel, from `groupNormAffine`)
/// normalises the input on the fly (then SiLU when `silu`), so the normalised image is never stored.
/// `accumulatingInto` (the output's shape) is overwritten with itself plus the convolution and
/// returned: a residual connection with no new tensor; the caller must not need its old contents.
/// With `upsampledInput` the convolution reads the nearest-neighbour 2x upsampling of `x` (output
/// `[N, O, 2H, 2W]`) without storing it.
public func winogradConv3x3(_ x: Tensor, weight: Tensor, bias: Tensor?, inputAffine: Tensor? = nil, silu: Bool = false,
                            upsampledInput: Bool = false, accumulatingInto target: Tensor? = nil,
                            maxScratchElements: Int = winogradDefaultScratchElements) -> Tensor {
    precondition(x.rank == 4 && weight.rank == 4 && weight.shape[2] == 3 && weight.shape[3] == 3 && x.shape[1] == weight.shape[1],
                 "winogradConv3x3: input \(x.shape) does not fit a 3x3 weight \(weight.shape)")
    let scale = upsampledInput ? 2 : 1
    let (batch, channels, height, width) = (x.shape[0], x.shape[1], scale * x.shape[2], scale * x.shape[3])
    let outChannels = weight.shape[0]
    precondition(height >= 1 && width >= 1, "winogradConv3x3: empty image \(x.shape)")
    if let bias { precondition(bias.shape == [outChannels], "winogradConv3x3: bias \(bias.shape) for weight \(weight.shape)") }
    if let inputAffine { precondition(inputAffine.shape == [batch, channels, 3], "winogradConv3x3: affine \(inputAffine.shape) for \(x.shape)") }
    if let target { precondition(target.shape == [batch, outChannels, height, width], "winogradConv3x3: target \(target.shape) for \(x.shape)") }
    let out = target ?? Tensor(uninitializedShape: [batch, outChannels, height, width])
    guard channels > 0 else {
        // The convolution is all zeros: the target (or zeros) plus the bias.
        if target == nil { out.pointer.initialize(repeating: 0, count: out.count) }
        if let bias {
            addChannelBias(out.pointer, planes: batch * outChannels, planeSize: height * width, bias: bias.pointer, biasCount: outChannels)
        }
        return out
    }
    guard batch > 0 && outChannels > 0 else { return out }

    let plan = WinogradPlan(batch: batch, channels: channels, outChannels: outChannels, height: height, width: width,
                            maxScratchElements: maxScratchElements)
    let variant = Kernels.cVariant
    winogradScratch.withScratch(count: plan.scratchCount) { scratch in
        let weights = scratch, inputs = scratch + 36 * plan.weightStride, products = inputs + 36 * plan.inputStride
        let plane = height * width

        for chunk in stride(from: 0, to: outChannels, by: plan.chunkChannels) {
            let chunkChannels = min(plan.chunkChannels, outChannels - chunk)
            Parallel.forEachChunk(chunkChannels, grain: max(1, elementwiseGrain / (36 * channels))) { range in
                sfumato_winograd_f43_weights(variant, weight.pointer + (chunk + range.lowerBound) * channels * 9,
                                             Int32(range.count), Int32(channels),
                                             weights + range.lowerBound * channels, plan.weightStride)
            }
            for firstRow in stride(from: 0, to: plan.totalRows, by: plan.blockRows) {
                let rows = min(plan.blockRows, plan.totalRows - firstRow)
                let tiles = rows * plan.tilesX
                // With a single block the transformed input survives from one weight chunk to the next.
                if chunk == 0 || plan.totalRows > plan.blockRows {
                    plan.forEachRun(items: channels, blockRows: firstRow..<firstRow + rows) { channelRange, image, tileRows, column in
                        sfumato_winograd_f43_input(variant, x.pointer + (image * channels + channelRange.lowerBound) * plane / (scale * scale),
                                                   Int32(channelRange.count), Int32(height), Int32(width),
                                                   Int32(tileRows.lowerBound), Int32(tileRows.upperBound),
                                                   inputs + channelRange.lowerBound * tiles + column, plan.inputStride, tiles,
                                                   inputAffine.map { $0.pointer + (image * channels + channelRange.lowerBound) * 3 },
                                                   silu ? 1 : 0, upsampledInput ? 1 : 0)
                    }
                }
                // The 36 products are independent: whole ones per core, so each packs its operands once.
                Parallel.forEachChunk(36) { positions in
                    for position in positions {
                        BLAS.serialSgemm(false, false, chunkChannels, tiles, channels, 1,
                                         weights + position * plan.weightStride, channels,
                                         inputs + position * plan.inputStride, tiles, 0,
                                         products + position * plan.productStride, tiles)
                    }
                }
                plan.forEachRun(items: chunkChannels, blockRows: firstRow..<firstRow + rows) { channelRange, image, tileRows, column in
                    let o = chunk + channelRange.lowerBound
                    sfumato_winograd_f43_output(variant, products + channelRange.lowerBound * tiles + column,
                                                plan.productStride, tiles, bias.map { $0.pointer + o },
                                                Int32(channelRange.count), Int32(height), Int32(width),
                                                Int32(tileRows.lowerBound), Int32(tileRows.upperBound),
                                                out.pointer + (image * outChannels + o) * plane, target == nil ? 0 : 1)
                }
            }
        }
    }
    return out
}

/// How one Winograd convolution is cut: output channels per weight chunk, tile rows per block.
/// Tile rows are counted over the whole batch (row r is tile row r % tilesY of image r / tilesY),
/// so a block of a small image can take several images.
struct WinogradPlan {
    let tilesX, tilesY, totalRows: Int
    let blockRows, chunkChannels: Int
    /// Floats from one position to the next in the transformed weights, input tiles and products.
    let weightStride, inputStride, productStride: Int
    var scratchCount: Int { 36 * (weightStride + inputStride + productStride) }

    init(batch: Int, channels: Int, outChannels: Int, height: Int, width: Int, maxScratchElements: Int) {
        tilesX = (width + 3) / 4
        tilesY = (height + 3) / 4
        totalRows = batch * tilesY
        // Floats per position, less the stride padding.
        let budget = max(1, maxScratchElements / 36 - 3 * (Self.positionStride(0) + 1023))
        let totalTiles = totalRows * tilesX
        var rows = min(totalRows, max(1, (winogradBlockTiles + tilesX / 2) / tilesX))
        var chunk = outChannels
        let smallestBlock = min(totalTiles, max(tilesX, winogradMinimumBlockTiles))
        if outChannels * channels + (channels + outChannels) * rows * tilesX <= budget {
            // Everything fits at the preferred block size.
        } else if outChannels * channels + (channels + outChannels) * smallestBlock <= budget {
            // Whole weights and narrower blocks: measured faster than transforming the input once per chunk.
            rows = max(1, (budget - outChannels * channels) / ((channels + outChannels) * tilesX))
        } else {
            // Weights in chunks. A small image's input then fits whole and is transformed once.
            rows = channels * totalTiles <= budget / 2 ? totalRows : min(rows, max(1, budget / 2 / (channels * tilesX)))
            let tiles = rows * tilesX
            chunk = min(outChannels, max(1, (budget - channels * tiles) / (channels + tiles)))
        }
        // Even chunks and blocks: the last one is not a sliver.
        let chunks = (outChannels + chunk - 1) / chunk
        chunkChannels = (outChannels + chunks - 1) / chunks
        let blocks = (totalRows + rows - 1) / rows
        blockRows = (totalRows + blocks - 1) / blocks
        weightStride = Self.positionStride(chunkChannels * channels)
        inputStride = Self.positionStride(channels * blockRows * tilesX)
        productStride = Self.positionStride(chunkChannels * blockRows * tilesX)
    }

    /// Positions lie a multiple of 4 KB plus one cache line apart: at a multiple of 4 KB, the 36
    /// streams a transform writes would all fall in the same L1 sets (measured up to 10 times slower).
    static func positionStride(_ count: Int) -> Int { (count + 1023) / 1024 * 1024 + 16 }

    /// Splits `items` channels x the block's tile rows into contiguous runs across the cores and
    /// calls `body(channels, image, tileRows, column)` for each run inside one image: `tileRows` of
    /// that image, whose first tile is column `column` of the block's transformed data.
    func forEachRun(items channels: Int, blockRows block: Range<Int>,
                    _ body: (Range<Int>, Int, Range<Int>, Int) -> Void) {
        let rows = block.count
        Parallel.forEachChunk(channels * rows, grain: max(1, elementwiseGrain / (36 * tilesX))) { range in
            var item = range.lowerBound
            while item < range.upperBound {
                let channel = item / rows, offset = item % rows
                // Whole channels at once where the range allows, else the part of one channel.
                let channelCount: Int, end: Int
                if offset == 0 && range.upperBound - item >= rows {
                    (channelCount, end) = ((range.upperBound - item) / rows, rows)
                } else {
                    (channelCount, end) = (1, min(rows, range.upperBound - channel * rows))
                }
                var row = block.lowerBound + offset
                while row < block.lowerBound + end {
                    let image = row / tilesY
                    let imageEnd = min(block.lowerBound + end, (image + 1) * tilesY)
                    body(channel..<channel + channelCount, image, (row - image * tilesY)..<(imageEnd - image * tilesY),
                         (row - block.lowerBound) * tilesX)
                    row = imageEnd
                }
                item += channelCount * (end - offset)
            }
        }
    }
}
