/// Softmax over the last dimension, as `torch.softmax(x, dim=-1)`.
public func softmax(_ x: Tensor) -> Tensor {
    OpProfile.record("softmax") {
        let result = Tensor(uninitializedShape: x.shape)
        guard x.count > 0 else { return result }
        let length = x.shape.last ?? 1
        let rows = x.count / length
        result.pointer.update(from: x.pointer, count: x.count)
        let data = result.pointer
        Parallel.forEachChunk(rows, grain: max(1, 16_384 / length)) { range in
            softmaxRows(data + range.lowerBound * length, rows: range.count, length: length, stride: length)
        }
        return result
    }
}

/// In-place softmax of `rows` rows of `length` elements, `stride` elements apart.
/// With `causalOffset` set, row r only attends to its first `causalOffset + r + 1` entries (at most
/// `length`); the rest of the row is set to 0, as an upper-triangular -inf mask would give.
func softmaxRows(_ data: UnsafeMutablePointer<Float>, rows: Int, length: Int, stride: Int, causalOffset: Int? = nil) {
    for row in 0..<rows {
        let p = data + row * stride
        var valid = length
        if let causalOffset {
            valid = min(length, max(0, causalOffset + row + 1))
            (p + valid).update(repeating: 0, count: length - valid)
        }
        softmaxRow(p, count: valid)
    }
}

private func softmaxRow(_ p: UnsafeMutablePointer<Float>, count: Int) {
    guard count > 0 else { return }
    typealias V = VectorMath.Vector
    let full = count - count % VectorMath.width
    let tail = count - full

    // Row maximum, so every exponent is <= 0 and cannot overflow.
    var maxima = V(repeating: -.infinity)
    var index = 0
    while index < full {
        let v = VectorMath.load(p + index)
        maxima = maxima.replacing(with: v, where: v .> maxima)
        index += VectorMath.width
    }
    if tail > 0 {
        let v = VectorMath.load(p + full, count: tail, fill: -.infinity)
        maxima = maxima.replacing(with: v, where: v .> maxima)
    }
    var maximum = maxima.max()
    // A row of -inf (fully masked) gives NaN in PyTorch; keep the arithmetic the same.
    if maximum == -.infinity { maximum = .nan }

    // Exponentials written back while summing; 16 partial sums keep the Float sum accurate.
    let shift = V(repeating: maximum)
    var sums = V(repeating: 0)
    index = 0
    while index < full {
        let e = VectorMath.exp(VectorMath.load(p + index) - shift)
        VectorMath.store(e, p + index)
        sums += e
        index += VectorMath.width
    }
    if tail > 0 {
        let e = VectorMath.exp(VectorMath.load(p + full, count: tail, fill: -.infinity) - shift)
        VectorMath.store(e, p + full, count: tail)
        sums += e
    }
    let inverse = V(repeating: 1 / sums.sum())
    index = 0
    while index < full {
        VectorMath.store(VectorMath.load(p + index) * inverse, p + index)
        index += VectorMath.width
    }
    if tail > 0 {
        VectorMath.store(VectorMath.load(p + full, count: tail) * inverse, p + full, count: tail)
    }
}
