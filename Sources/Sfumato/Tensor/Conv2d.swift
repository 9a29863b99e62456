/// Default cap on the im2col tile, in elements (16 MB): keeps a 512x512 VAE conv from
/// materialising a gigabyte-sized column matrix while leaving GEMMs wide enough to run at speed.
public let conv2dDefaultColumnElements = 1 << 22

/// 2-D cross-correlation with zero padding (torch.nn.functional.conv2d, dilation 1, groups 1).
/// x `[N, C, H, W]`, weight `[O, C, kh, kw]`, bias `[O]` -> `[N, O, H', W']`.
///
/// On the fast path, 3x3 stride-1 convolutions with padding 1 run as Winograd F(4x4, 3x3) where
/// `winogradIsProfitable` says it pays. 1x1 stride-1 unpadded convs are a plain GEMM. Everything
/// else (and the reference path) is im2col + GEMM, the column
/// matrix built for a band of output rows at a time so that it holds at most about
/// `maxColumnElements` floats (at least one output row); tests pass a small value to force many bands.
/// `residual` (the output's shape) is added to the result: a residual connection without another
/// full-size tensor. With `residualIsScratch` the caller gives up the residual's memory, and the
/// Winograd path writes the sum into it. `normalizing` applies a group norm (and SiLU) to the input
/// first; the Winograd path folds it into its input transform, so the normalised input is never stored.
/// With `upsampledInput` the convolution reads the nearest-neighbour 2x upsampling of `x` (the
/// decoder's upsamplers); the Winograd path never stores it either. (Not together with `normalizing`.)
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0,
                   normalizing norm: InputGroupNorm? = nil, upsampledInput: Bool = false,
                   residual: Tensor? = nil, residualIsScratch: Bool = false,
                   maxColumnElements: Int = conv2dDefaultColumnElements) -> Tensor {
    let label = "conv2d \(weight.shape[2])x\(weight.shape[3])" + (stride == 1 ? "" : " stride \(stride)")
    let scale = upsampledInput ? 2 : 1
    let flops = conv2dFLOPs(x, weight: weight, stride: stride, padding: padding) * Double(scale * scale)
    return OpProfile.record(label, flops: flops) {
        precondition(!(upsampledInput && norm != nil), "conv2d: an upsampled input is not normalised on the fly")
        let winograd = Kernels.path == .fast && x.rank == 4 && weight.rank == 4 && weight.shape[2] == 3 && weight.shape[3] == 3
            && stride == 1 && padding == 1 && x.shape[1] == weight.shape[1]
            && winogradIsProfitable(channels: x.shape[1], height: scale * x.shape[2], width: scale * x.shape[3], batch: x.shape[0])
        if winograd {
            let affine = norm.map { groupNormAffine(x, groups: $0.groups, weight: $0.weight, bias: $0.bias, eps: $0.eps) }
            let target = residualIsScratch ? residual : nil
            let out = winogradConv3x3(x, weight: weight, bias: bias, inputAffine: affine, silu: norm?.silu ?? false,
                                      upsampledInput: upsampledInput, accumulatingInto: target)
            if let residual, target == nil { accumulate(residual, into: out) }
            return out
        }
        let input = upsampledInput ? upsampleNearest2x(x)
            : norm.map { groupNorm(x, groups: $0.groups, weight: $0.weight, bias: $0.bias, eps: $0.eps, silu: $0.silu) } ?? x
        return im2colConv2d(input, weight: weight, bias: bias, stride: stride, padding: padding, residual: residual,
                            maxColumnElements: maxColumnElements)
    }
}

/// A group norm (and the SiLU after it) that a convolution applies to its input.
public struct InputGroupNorm: Sendable {
    public let groups: Int
    public let weight: Tensor
    public let bias: Tensor
    public let eps: Float
    public let silu: Bool

    public init(groups: Int, weight: Tensor, bias: Tensor, eps: Float, silu: Bool) {
        (self.groups, self.weight, self.bias, self.eps, self.silu) = (groups, weight, bias, eps, silu)
    }
}

/// Multiply-adds x 2 of a direct convolution (what GFLOP/s figures count, whichever algorithm runs).
func conv2dFLOPs(_ x: Tensor, weight: Tensor, stride: Int, padding: Int) -> Double {
    guard x.rank == 4, weight.rank == 4, stride >= 1 else { return 0 }
    let outH = max(0, (x.shape[2] + 2 * padding - weight.shape[2]) / stride + 1)
    let outW = max(0, (x.shape[3] + 2 * padding - weight.shape[3]) / stride + 1)
    return 2 * Double(x.shape[0] * outH * outW) * Double(weight.count)
}

/// The general path: tiled im2col + GEMM (the reference every faster convolution is checked against).
/// The bias and `residual` are written into the output first and the GEMMs accumulate onto them.
func im2colConv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int, padding: Int, residual: Tensor? = nil,
                  maxColumnElements: Int = conv2dDefaultColumnElements) -> Tensor {
    precondition(x.rank == 4 && weight.rank == 4 && x.shape[1] == weight.shape[1],
                 "conv2d: input \(x.shape) does not fit weight \(weight.shape)")
    precondition(stride >= 1 && padding >= 0, "conv2d: stride \(stride) and padding \(padding) must be >= 1 and >= 0")
    let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let (outChannels, kernelH, kernelW) = (weight.shape[0], weight.shape[2], weight.shape[3])
    if let bias { precondition(bias.shape == [outChannels], "conv2d: bias \(bias.shape) for weight \(weight.shape)") }
    precondition(kernelH >= 1 && kernelW >= 1 && height + 2 * padding >= kernelH && width + 2 * padding >= kernelW,
                 "conv2d: kernel \(kernelH)x\(kernelW) larger than padded input \(x.shape) with padding \(padding)")
    let outH = (height + 2 * padding - kernelH) / stride + 1
    let outW = (width + 2 * padding - kernelW) / stride + 1
    let out = Tensor(uninitializedShape: [batch, outChannels, outH, outW])
    if let residual { precondition(residual.shape == out.shape, "conv2d: residual \(residual.shape) does not match the output \(out.shape)") }
    // Output rows of batch item `item` from `first` (a band of `length` pixels per channel), ready to accumulate into.
    func prefill(_ item: Int, first: Int, length: Int) {
        let offset = item * outChannels * outH * outW + first
        prefillGEMMOutput(out.pointer + offset, rows: outChannels, stride: outH * outW, length: length,
                          rowBias: bias?.pointer, residual: residual.map { $0.pointer + offset })
    }
    let reduction = channels * kernelH * kernelW
    let outPlane = outH * outW, inPlane = height * width

    if reduction == 0 {
        for item in 0..<batch { prefill(item, first: 0, length: outPlane) }
    } else if kernelH == 1 && kernelW == 1 && stride == 1 && padding == 0 {
        // weight [O, C] x input [C, H*W] for each batch item.
        for item in 0..<batch {
            prefill(item, first: 0, length: outPlane)
            BLAS.sgemm(m: outChannels, n: outPlane, k: channels,
                       a: weight.pointer, lda: channels, b: x.pointer + item * channels * inPlane, ldb: inPlane,
                       beta: 1, c: out.pointer + item * outChannels * outPlane, ldc: outPlane)
        }
    } else {
        let geometry = ConvGeometry(channels: channels, height: height, width: width, kernelH: kernelH, kernelW: kernelW,
                                    stride: stride, padding: padding, outH: outH, outW: outW)
        let bandRows = min(outH, max(1, maxColumnElements / (reduction * outW)))
        let columns = TensorStorage(count: reduction * bandRows * outW)
        for item in 0..<batch {
            let input = x.pointer + item * channels * inPlane
            let output = out.pointer + item * outChannels * outPlane
            var firstRow = 0
            while firstRow < outH {
                let rows = min(bandRows, outH - firstRow)
                geometry.im2col(input, rows: firstRow..<firstRow + rows, into: columns.pointer)
                prefill(item, first: firstRow * outW, length: rows * outW)
                BLAS.sgemm(m: outChannels, n: rows * outW, k: reduction,
                           a: weight.pointer, lda: reduction,
                           b: columns.pointer, ldb: rows * outW,
                           beta: 1, c: output + firstRow * outW, ldc: outPlane)
                firstRow += rows
            }
        }
    }
    return out
}

/// Index arithmetic of one convolution, for building column bands.
struct ConvGeometry {
    let channels, height, width, kernelH, kernelW, stride, padding, outH, outW: Int

    /// Output columns `ox` whose input column `ox * stride - padding + offset` lies inside the image.
    func validColumns(offset: Int) -> Range<Int> {
        let shift = padding - offset  // ix = ox * stride - shift
        let low = shift <= 0 ? 0 : (shift + stride - 1) / stride
        let last = width - 1 + shift  // ox * stride <= last
        let high = last < 0 ? 0 : min(outW, last / stride + 1)
        return min(low, high)..<high
    }

    /// Writes the column matrix `[C*kh*kw, rows.count*outW]` of output rows `rows` of one image:
    /// row `(c*kh + i)*kw + j` holds input pixel (c, oy*stride - padding + i, ox*stride - padding + j)
    /// for every (oy, ox) in the band, zero where that falls in the padding.
    func im2col(_ input: UnsafePointer<Float>, rows: Range<Int>, into columns: UnsafeMutablePointer<Float>) {
        let bandWidth = rows.count * outW
        let kernelRows = channels * kernelH * kernelW
        Parallel.forEachChunk(kernelRows, grain: max(1, elementwiseGrain / bandWidth)) { range in
            for kernelRow in range {
                let j = kernelRow % kernelW
                let i = (kernelRow / kernelW) % kernelH
                let channel = kernelRow / (kernelW * kernelH)
                let plane = input + channel * height * width
                let valid = validColumns(offset: j)
                var destination = columns + kernelRow * bandWidth
                for oy in rows {
                    let iy = oy * stride - padding + i
                    if iy < 0 || iy >= height {
                        destination.initialize(repeating: 0, count: outW)
                    } else {
                        destination.initialize(repeating: 0, count: valid.lowerBound)
                        let source = plane + iy * width - padding + j
                        if stride == 1 {
                            (destination + valid.lowerBound).initialize(from: source + valid.lowerBound, count: valid.count)
                        } else {
                            for ox in valid { destination[ox] = source[ox * stride] }
                        }
                        (destination + valid.upperBound).initialize(repeating: 0, count: outW - valid.upperBound)
                    }
                    destination += outW
                }
            }
        }
    }
}
