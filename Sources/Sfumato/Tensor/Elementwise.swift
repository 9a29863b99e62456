/// Elements per parallel chunk for light elementwise loops: below this, splitting costs more than it saves.
let elementwiseGrain = 1 << 15

/// `a + b` for tensors of the same shape.
public func add(_ a: Tensor, _ b: Tensor) -> Tensor {
    OpProfile.record("add") {
        precondition(a.shape == b.shape, "add: shapes \(a.shape) and \(b.shape) differ")
        let out = Tensor(uninitializedShape: a.shape)
        let x = a.pointer, y = b.pointer, z = out.pointer
        Parallel.forEachChunk(a.count, grain: elementwiseGrain) { range in
            for index in range { z[index] = x[index] + y[index] }
        }
        return out
    }
}

/// `target += addend` in place, for ops that add a residual into the output they just made.
func accumulate(_ addend: Tensor, into target: Tensor) {
    precondition(addend.shape == target.shape, "residual \(addend.shape) does not match the output \(target.shape)")
    let x = addend.pointer, z = target.pointer
    Parallel.forEachChunk(target.count, grain: elementwiseGrain) { range in
        for index in range { z[index] += x[index] }
    }
}

/// `x * factor`.
public func scaled(_ x: Tensor, by factor: Float) -> Tensor {
    OpProfile.record("scale") {
        let out = Tensor(uninitializedShape: x.shape)
        let source = x.pointer, destination = out.pointer
        Parallel.forEachChunk(x.count, grain: elementwiseGrain) { range in
            for index in range { destination[index] = source[index] * factor }
        }
        return out
    }
}

/// `x * factor + offset` (in that order, as torch's `x.mul(factor).add(offset)`).
public func affine(_ x: Tensor, scale factor: Float, offset: Float) -> Tensor {
    OpProfile.record("scale") {
        let out = Tensor(uninitializedShape: x.shape)
        let source = x.pointer, destination = out.pointer
        Parallel.forEachChunk(x.count, grain: elementwiseGrain) { range in
            for index in range { destination[index] = source[index] * factor + offset }
        }
        return out
    }
}

/// `x [N, C, ...] + bias [N, C]`, the bias broadcast over every spatial position
/// (a time embedding added to a feature map).
public func addPerChannel(_ x: Tensor, _ bias: Tensor) -> Tensor {
    OpProfile.record("add per channel") {
        precondition(x.rank >= 2 && bias.shape == Array(x.shape.prefix(2)),
                     "addPerChannel: bias \(bias.shape) does not match the first two dimensions of \(x.shape)")
        let out = x.copy()
        addChannelBias(out.pointer, planes: x.shape[0] * x.shape[1], planeSize: x.count / max(x.shape[0] * x.shape[1], 1),
                       bias: bias.pointer, biasCount: bias.count)
        return out
    }
}

/// Adds `bias[p % biasCount]` to every element of plane `p` of `planes` contiguous planes, in place.
/// With `biasCount == channels` this is a conv bias repeated over the batch.
func addChannelBias(_ data: UnsafeMutablePointer<Float>, planes: Int, planeSize: Int,
                    bias: UnsafePointer<Float>, biasCount: Int) {
    guard planeSize > 0 else { return }
    Parallel.forEachChunk(planes, grain: max(1, elementwiseGrain / planeSize)) { range in
        for plane in range {
            let value = bias[plane % biasCount]
            let row = data + plane * planeSize
            for index in 0..<planeSize { row[index] += value }
        }
    }
}

/// Writes the start value of a GEMM that accumulates into `rows` rows of `length` floats at
/// `data + r * stride` (beta = 1): `rowBias[r]` and/or `columnBias[c]` plus `residual` (same layout)
/// where given. OpenBLAS zeroes C in a pass of its own when beta = 0, so a bias or a residual
/// folded in here costs no pass over the product.
func prefillGEMMOutput(_ data: UnsafeMutablePointer<Float>, rows: Int, stride: Int, length: Int,
                       rowBias: UnsafePointer<Float>? = nil, columnBias: UnsafePointer<Float>? = nil,
                       residual: UnsafePointer<Float>? = nil) {
    guard rows > 0, length > 0 else { return }
    Parallel.forEachChunk(rows, grain: max(1, elementwiseGrain / length)) { range in
        for row in range {
            let line = data + row * stride
            let start = rowBias?[row] ?? 0
            switch (columnBias, residual.map { $0 + row * stride }) {
            case let (bias?, source?): for index in 0..<length { line[index] = source[index] + bias[index] + start }
            case let (bias?, nil): for index in 0..<length { line[index] = bias[index] + start }
            case let (nil, source?): for index in 0..<length { line[index] = source[index] + start }
            case (nil, nil): line.update(repeating: start, count: length)
            }
        }
    }
}
