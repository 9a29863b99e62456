import CSfumatoKernels

/// Group normalisation, as `F.group_norm`: x [N, C, ...] (any trailing dims, or none), channels
/// split into `groups` consecutive groups, each normalised over its channels and trailing dims,
/// then scaled by `weight[c]` and shifted by `bias[c]`. `silu: true` applies SiLU afterwards
/// (the UNet and VAE always follow GroupNorm with it) without another pass over memory.
public func groupNorm(_ x: Tensor, groups: Int, weight: Tensor, bias: Tensor, eps: Float, silu: Bool = false) -> Tensor {
    OpProfile.record(silu ? "group norm + silu" : "group norm") {
        let (batch, _, spatial, perGroup) = groupNormGeometry(x, groups: groups, weight: weight, bias: bias)
        let groupSize = perGroup * spatial
        let result = Tensor(uninitializedShape: x.shape)
        guard x.count > 0 else { return result }
        let input = x.pointer, output = result.pointer
        let gamma = weight.pointer, beta = bias.pointer
        let fast = Kernels.path == .fast
        let variant = Kernels.cVariant

        Parallel.forEachChunk(batch * groups, grain: max(1, 32_768 / groupSize)) { range in
            for item in range {
                let offset = item * groupSize
                let (mean, inverseStd) = fast ? fastMeanAndInverseStd(variant, input + offset, count: groupSize, eps: eps)
                    : meanAndInverseStd(input + offset, count: groupSize, eps: eps)
                let firstChannel = (item % groups) * perGroup
                for local in 0..<perGroup {
                    let channel = firstChannel + local
                    let start = offset + local * spatial
                    let scale = inverseStd * gamma[channel]
                    if fast {
                        sfumato_normalize(variant, input + start, output + start, spatial, mean, scale, beta[channel], silu ? 1 : 0)
                    } else {
                        normalize(input + start, output + start, count: spatial, mean: mean, scale: scale, shift: beta[channel], silu: silu)
                    }
                }
            }
        }
        return result
    }
}

/// Checks a group norm's operands; returns batch, channels, elements per channel, channels per group.
private func groupNormGeometry(_ x: Tensor, groups: Int, weight: Tensor, bias: Tensor) -> (Int, Int, Int, Int) {
    precondition(x.rank >= 2, "groupNorm needs x [N, C, ...], got \(x.shape)")
    let channels = x.shape[1]
    precondition(groups > 0 && channels % groups == 0, "groupNorm: \(channels) channels do not split into \(groups) groups")
    precondition(weight.count == channels && bias.count == channels,
                 "groupNorm: weight \(weight.shape) and bias \(bias.shape) must have \(channels) elements")
    return (x.shape[0], channels, x.shape.dropFirst(2).reduce(1, *), channels / groups)
}

/// The group norm of `x` as one affine map per image and channel: `[N, C, 3]` holding the group's
/// mean, inverse std * weight[c], and bias[c], so that a consumer can normalise while it reads
/// (`(x - mean) * scale + shift`, exactly the fast path of `groupNorm`).
public func groupNormAffine(_ x: Tensor, groups: Int, weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
    OpProfile.record("group norm statistics") {
        let (batch, channels, spatial, perGroup) = groupNormGeometry(x, groups: groups, weight: weight, bias: bias)
        let groupSize = perGroup * spatial
        let result = Tensor(uninitializedShape: [batch, channels, 3])
        let input = x.pointer, output = result.pointer
        let gamma = weight.pointer, beta = bias.pointer
        let variant = Kernels.cVariant
        Parallel.forEachChunk(batch * groups, grain: max(1, 32_768 / max(groupSize, 1))) { range in
            for item in range {
                let (mean, inverseStd) = groupSize == 0 ? (0, 0) : fastMeanAndInverseStd(variant, input + item * groupSize, count: groupSize, eps: eps)
                let firstChannel = (item % groups) * perGroup
                for local in 0..<perGroup {
                    let channel = firstChannel + local
                    let triple = output + ((item / groups) * channels + channel) * 3
                    triple[0] = mean
                    triple[1] = inverseStd * gamma[channel]
                    triple[2] = beta[channel]
                }
            }
        }
        return result
    }
}

/// Layer normalisation over the last dimension, as `F.layer_norm(x, (D,), weight, bias, eps)`.
public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
    OpProfile.record("layer norm") {
        precondition(x.rank >= 1, "layerNorm needs at least one dimension")
        let width = x.shape[x.rank - 1]
        precondition(weight.count == width && bias.count == width,
                     "layerNorm: weight \(weight.shape) and bias \(bias.shape) must have \(width) elements")
        let result = Tensor(uninitializedShape: x.shape)
        guard x.count > 0 else { return result }
        let rows = x.count / width
        let input = x.pointer, output = result.pointer
        let gamma = weight.pointer, beta = bias.pointer

        Parallel.forEachChunk(rows, grain: max(1, 16_384 / width)) { range in
            for row in range {
                let p = input + row * width
                let out = output + row * width
                let (mean, inverseStd) = meanAndInverseStd(p, count: width, eps: eps)
                let m = VectorMath.Vector(repeating: mean), s = VectorMath.Vector(repeating: inverseStd)
                var index = 0
                while index + VectorMath.width <= width {
                    let normalized = (VectorMath.load(p + index) - m) * s
                    VectorMath.store(normalized * VectorMath.load(gamma + index) + VectorMath.load(beta + index), out + index)
                    index += VectorMath.width
                }
                if index < width {
                    let tail = width - index
                    let normalized = (VectorMath.load(p + index, count: tail) - m) * s
                    let value = normalized * VectorMath.load(gamma + index, count: tail) + VectorMath.load(beta + index, count: tail)
                    VectorMath.store(value, out + index, count: tail)
                }
            }
        }
        return result
    }
}

/// Mean and 1 / sqrt(biased variance + eps) of `count` floats. Two passes (mean, then squared
/// deviations) avoid the cancellation of E[x^2] - E[x]^2; each pass sums in 16 Float lanes that are
/// combined in Double, which keeps the relative error near 1e-7 for the sizes the models use.
@inline(__always)
private func meanAndInverseStd(_ p: UnsafePointer<Float>, count: Int, eps: Float) -> (Float, Float) {
    typealias V = VectorMath.Vector
    let full = count - count % VectorMath.width
    var sums = V(repeating: 0)
    var index = 0
    while index < full {
        sums += VectorMath.load(p + index)
        index += VectorMath.width
    }
    var total = 0.0
    for lane in 0..<VectorMath.width { total += Double(sums[lane]) }
    for tail in full..<count { total += Double(p[tail]) }
    let mean = Float(total / Double(count))

    let m = V(repeating: mean)
    var squares = V(repeating: 0)
    index = 0
    while index < full {
        let d = VectorMath.load(p + index) - m
        squares += d * d
        index += VectorMath.width
    }
    var squareTotal = 0.0
    for lane in 0..<VectorMath.width { squareTotal += Double(squares[lane]) }
    for tail in full..<count {
        let d = Double(p[tail] - mean)
        squareTotal += d * d
    }
    let variance = Float(squareTotal / Double(count))
    return (mean, 1 / (variance + eps).squareRoot())
}

/// The same two passes in the C kernels' wide vectors. The first sums x - x[0], which keeps the
/// float lanes small when the values sit far from zero.
private func fastMeanAndInverseStd(_ variant: Int32, _ p: UnsafePointer<Float>, count: Int, eps: Float) -> (Float, Float) {
    var total = 0.0, squares = 0.0
    sfumato_sum_deviations(variant, p, count, p[0], 0, &total)
    let mean = Float(Double(p[0]) + total / Double(count))
    sfumato_sum_deviations(variant, p, count, mean, 1, &squares)
    let variance = Float(squares / Double(count))
    return (mean, 1 / (variance + eps).squareRoot())
}

/// out = (x - mean) * scale + shift, then SiLU when asked.
@inline(__always)
private func normalize(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int,
                       mean: Float, scale: Float, shift: Float, silu: Bool) {
    let m = VectorMath.Vector(repeating: mean)
    let s = VectorMath.Vector(repeating: scale)
    let b = VectorMath.Vector(repeating: shift)
    if silu {
        VectorMath.map(input, output, count: count) { x in
            let y = (x - m) * s + b
            return y * VectorMath.sigmoid(y)
        }
    } else {
        VectorMath.map(input, output, count: count) { x in (x - m) * s + b }
    }
}
