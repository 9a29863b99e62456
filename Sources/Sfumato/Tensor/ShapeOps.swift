/// Nearest-neighbour 2x upsampling (F.interpolate(scale_factor=2, mode="nearest")):
/// `[N, C, H, W]` -> `[N, C, 2H, 2W]`, each pixel repeated into a 2x2 block.
public func upsampleNearest2x(_ x: Tensor) -> Tensor {
    OpProfile.record("upsample nearest 2x") {
        precondition(x.rank == 4, "upsampleNearest2x: expected [N, C, H, W], got \(x.shape)")
        let (height, width) = (x.shape[2], x.shape[3])
        let out = Tensor(uninitializedShape: [x.shape[0], x.shape[1], 2 * height, 2 * width])
        let rows = x.shape[0] * x.shape[1] * height
        let source = x.pointer, destination = out.pointer
        Parallel.forEachChunk(rows, grain: max(1, elementwiseGrain / max(4 * width, 1))) { range in
            for row in range {
                let input = source + row * width
                let output = destination + row * 4 * width
                for column in 0..<width {
                    let value = input[column]
                    output[2 * column] = value
                    output[2 * column + 1] = value
                }
                (output + 2 * width).update(from: output, count: 2 * width)
            }
        }
        return out
    }
}

/// Joins tensors along `axis` (negative counts from the end); all other dimensions must agree.
public func concat(_ parts: [Tensor], axis: Int) -> Tensor {
    OpProfile.record("concat") {
        precondition(!parts.isEmpty, "concat: no tensors")
        let rank = parts[0].rank
        let axis = axis < 0 ? axis + rank : axis
        precondition(axis >= 0 && axis < rank, "concat: axis out of range for \(parts[0].shape)")
        for part in parts {
            precondition(part.rank == rank && part.shape.enumerated().allSatisfy { $0.offset == axis || $0.element == parts[0].shape[$0.offset] },
                         "concat: shapes \(parts.map(\.shape)) differ outside axis \(axis)")
        }
        var shape = parts[0].shape
        shape[axis] = parts.reduce(0) { $0 + $1.shape[axis] }
        let out = Tensor(uninitializedShape: shape)
        let outer = shape[..<axis].reduce(1, *)
        // Per outer index, each part contributes one contiguous block.
        let blocks = parts.map { $0.shape[axis...].reduce(1, *) }
        let outBlock = blocks.reduce(0, +)
        let sources = parts.map(\.pointer)
        let destination = out.pointer
        Parallel.forEachChunk(outer, grain: max(1, elementwiseGrain / max(outBlock, 1))) { range in
            for index in range {
                var target = destination + index * outBlock
                for (source, block) in zip(sources, blocks) {
                    target.update(from: source + index * block, count: block)
                    target += block
                }
            }
        }
        return out
    }
}

/// `[N, C, H, W]` -> `[N, H*W, C]`: a feature map as a token sequence for attention.
public func nchwToTokens(_ x: Tensor) -> Tensor {
    OpProfile.record("nchw to tokens") {
        precondition(x.rank == 4, "nchwToTokens: expected [N, C, H, W], got \(x.shape)")
        let (batch, channels, positions) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        let out = Tensor(uninitializedShape: [batch, positions, channels])
        transposeBatched(x.pointer, batch: batch, rows: channels, columns: positions, into: out.pointer)
        return out
    }
}

/// `[N, H*W, C]` -> `[N, C, H, W]`, the inverse of `nchwToTokens`.
public func tokensToNCHW(_ x: Tensor, height: Int, width: Int) -> Tensor {
    OpProfile.record("tokens to nchw") {
        precondition(x.rank == 3 && x.shape[1] == height * width,
                     "tokensToNCHW: \(x.shape) is not [N, \(height)*\(width), C]")
        let (batch, channels) = (x.shape[0], x.shape[2])
        let out = Tensor(uninitializedShape: [batch, channels, height, width])
        transposeBatched(x.pointer, batch: batch, rows: height * width, columns: channels, into: out.pointer)
        return out
    }
}

/// Transposes `batch` row-major `rows x columns` matrices. Work goes in bands of 32 source rows;
/// within a band, 4x4 blocks are loaded as four vectors, transposed in registers and stored as four
/// vectors, so reads and writes are both contiguous runs of 4 and stay within a few cache lines.
func transposeBatched(_ source: UnsafePointer<Float>, batch: Int, rows: Int, columns: Int,
                      into destination: UnsafeMutablePointer<Float>) {
    let band = 32
    let bands = (rows + band - 1) / band
    let matrix = rows * columns
    Parallel.forEachChunk(batch * bands, grain: max(1, elementwiseGrain / max(band * columns, 1))) { range in
        for job in range {
            let item = job / bands
            let rowStart = (job % bands) * band
            let rowEnd = min(rows, rowStart + band)
            let input = source + item * matrix
            let output = destination + item * matrix
            let fullRowEnd = rowStart + (rowEnd - rowStart) / 4 * 4
            let fullColumns = columns / 4 * 4
            var column = 0
            while column < fullColumns {
                var row = rowStart
                while row < fullRowEnd {
                    transpose4x4(input + row * columns + column, columns, output + column * rows + row, rows)
                    row += 4
                }
                column += 4
            }
            // Ragged edges: the last rows < 4 and the last columns < 4.
            for row in fullRowEnd..<rowEnd {
                for column in 0..<columns { output[column * rows + row] = input[row * columns + column] }
            }
            for row in rowStart..<fullRowEnd {
                for column in fullColumns..<columns { output[column * rows + row] = input[row * columns + column] }
            }
        }
    }
}

@inline(__always)
private func transpose4x4(_ source: UnsafePointer<Float>, _ sourceStride: Int,
                          _ destination: UnsafeMutablePointer<Float>, _ destinationStride: Int) {
    let raw = UnsafeRawPointer(source)
    let r0 = raw.loadUnaligned(as: SIMD4<Float>.self)
    let r1 = raw.loadUnaligned(fromByteOffset: 4 * sourceStride, as: SIMD4<Float>.self)
    let r2 = raw.loadUnaligned(fromByteOffset: 8 * sourceStride, as: SIMD4<Float>.self)
    let r3 = raw.loadUnaligned(fromByteOffset: 12 * sourceStride, as: SIMD4<Float>.self)
    let out = UnsafeMutableRawPointer(destination)
    out.storeBytes(of: SIMD4(r0[0], r1[0], r2[0], r3[0]), as: SIMD4<Float>.self)
    out.storeBytes(of: SIMD4(r0[1], r1[1], r2[1], r3[1]), toByteOffset: 4 * destinationStride, as: SIMD4<Float>.self)
    out.storeBytes(of: SIMD4(r0[2], r1[2], r2[2], r3[2]), toByteOffset: 8 * destinationStride, as: SIMD4<Float>.self)
    out.storeBytes(of: SIMD4(r0[3], r1[3], r2[3], r3[3]), toByteOffset: 12 * destinationStride, as: SIMD4<Float>.self)
}
