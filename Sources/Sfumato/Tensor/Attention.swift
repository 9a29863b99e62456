import CSfumatoKernels

/// Multi-head scaled dot-product attention, as diffusers' attention processor with
/// `F.scaled_dot_product_attention`: q [B, Lq, heads*d], k and v [B, Lk, heads*d] -> [B, Lq, heads*d],
/// scores scaled by 1/sqrt(d). `causal` lets query i see keys 0...i only (CLIP's text mask; PyTorch's
/// `is_causal`, aligned top-left when Lq != Lk).
///
/// Heads are read in place through GEMM leading dimensions (row stride heads*d), so nothing is
/// transposed. The fast paths (our tiled C kernels, or OpenBLAS blocks in `fusedAttention`) keep each
/// block of scores in cache with an online softmax; the reference path forms the scores of `rowBlock` query rows against all keys.
/// `rowBlock` and `keyBlock` override the block sizes (tests use small ones to reach every edge).
public func attention(query: Tensor, key: Tensor, value: Tensor, heads: Int, causal: Bool = false,
                      rowBlock: Int? = nil, keyBlock: Int? = nil) -> Tensor {
    precondition(query.rank == 3 && key.rank == 3 && value.rank == 3,
                 "attention needs q, k, v of rank 3, got \(query.shape), \(key.shape), \(value.shape)")
    let batch = query.shape[0], queryLength = query.shape[1], inner = query.shape[2]
    let keyLength = key.shape[1]
    precondition(key.shape == [batch, keyLength, inner] && value.shape == key.shape,
                 "attention: k \(key.shape) and v \(value.shape) do not match q \(query.shape)")
    precondition(heads > 0 && inner % heads == 0, "attention: width \(inner) does not split into \(heads) heads")
    precondition(rowBlock.map { $0 > 0 } ?? true, "attention: rowBlock must be positive")
    precondition(keyBlock.map { $0 > 0 } ?? true, "attention: keyBlock must be positive")
    let flops = 4 * Double(batch) * Double(queryLength) * Double(keyLength) * Double(inner)
    return OpProfile.record(causal ? "attention (causal)" : "attention", flops: flops) {
        let result = Tensor(uninitializedShape: query.shape)
        guard result.count > 0 else { return result }
        guard keyLength > 0, inner > 0 else {
            // No keys: the weighted sum over nothing, as PyTorch's matmul with an empty dimension.
            result.pointer.update(repeating: 0, count: result.count)
            return result
        }
        let shape = AttentionShape(batch: batch, queryLength: queryLength, keyLength: keyLength, heads: heads,
                                   headSize: inner / heads, causal: causal)
        switch (Kernels.path, min(Kernels.variant, .supported)) {
        case (.fast, .avx512):
            tiledAttention(shape, query.pointer, key.pointer, value.pointer, into: result.pointer,
                           rowBlock: rowBlock ?? 128, keyBlock: keyBlock ?? 64, wide: true)
        case (.fast, .avx2):
            tiledAttention(shape, query.pointer, key.pointer, value.pointer, into: result.pointer,
                           rowBlock: rowBlock ?? 64, keyBlock: keyBlock ?? 128, wide: false)
        case (.fast, .generic):
            fusedAttention(shape, query.pointer, key.pointer, value.pointer, into: result.pointer,
                           rowBlock: rowBlock ?? 256, keyBlock: keyBlock ?? 256)
        case (.reference, _):
            referenceAttention(shape, query.pointer, key.pointer, value.pointer, into: result.pointer,
                               rowBlock: rowBlock ?? max(16, (1 << 18) / keyLength))
        }
        return result
    }
}

struct AttentionShape {
    let batch, queryLength, keyLength, heads, headSize: Int
    let causal: Bool
    var inner: Int { heads * headSize }
    var scale: Float { 1 / Float(headSize).squareRoot() }
}

/// Flash-attention blocking: every (batch item, head, block of query rows) is one job on one core;
/// the job walks the keys in blocks, so its scores (rowBlock x keyBlock floats) stay in L2, and an
/// online softmax rescales the partial output as the row maxima grow. OpenBLAS multiplies each
/// block on the job's own thread (the K = head size products are too small to split further).
func fusedAttention(_ shape: AttentionShape, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>,
                    _ v: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, rowBlock: Int, keyBlock: Int) {
    let inner = shape.inner, d = shape.headSize
    let rowBlocks = (shape.queryLength + rowBlock - 1) / rowBlock
    let jobs = shape.batch * shape.heads * rowBlocks
    let keyBlock = min(keyBlock, shape.keyLength)
    let variant = Kernels.cVariant
    Parallel.forEachChunk(jobs) { range in
        // Scratch for this worker: one block of scores, and per-row max, sum and correction.
        let scratch = TensorStorage(count: rowBlock * keyBlock + 3 * rowBlock)
        let scores = scratch.pointer
        let rowMax = scores + rowBlock * keyBlock, rowSum = rowMax + rowBlock, correction = rowSum + rowBlock
        for job in range {
            let b = job / (shape.heads * rowBlocks)
            let head = (job / rowBlocks) % shape.heads
            let firstRow = (job % rowBlocks) * rowBlock
            let rows = min(rowBlock, shape.queryLength - firstRow)
            let qBlock = q + (b * shape.queryLength + firstRow) * inner + head * d
            let kHead = k + b * shape.keyLength * inner + head * d
            let vHead = v + b * shape.keyLength * inner + head * d
            let outBlock = out + (b * shape.queryLength + firstRow) * inner + head * d
            rowMax.update(repeating: -.infinity, count: rows)
            rowSum.update(repeating: 0, count: rows)
            // With the causal mask, keys past the block's last row get weight 0: skip them.
            let keys = shape.causal ? min(shape.keyLength, firstRow + rows) : shape.keyLength
            var firstKey = 0
            while firstKey < keys {
                let cols = min(keyBlock, keys - firstKey)
                BLAS.serialSgemm(false, true, rows, cols, d, shape.scale, qBlock, inner, kHead + firstKey * inner, inner,
                                 0, scores, cols)
                if shape.causal { maskFutureKeys(scores, rows: rows, cols: cols, firstRow: firstRow, firstKey: firstKey) }
                sfumato_online_softmax_block(variant, scores, rows, cols, cols, rowMax, rowSum, correction)
                // The first block writes the output; later ones rescale it and add theirs.
                if firstKey > 0 { sfumato_scale_rows(outBlock, rows, d, inner, correction) }
                BLAS.serialSgemm(false, false, rows, d, cols, 1, scores, cols, vHead + firstKey * inner, inner,
                                 firstKey > 0 ? 1 : 0, outBlock, inner)
                firstKey += cols
            }
            for row in 0..<rows { rowSum[row] = 1 / rowSum[row] }
            sfumato_scale_rows(outBlock, rows, d, inner, rowSum)
        }
    }
}

/// The AVX2 and AVX-512 paths: the same jobs, each one call of our register-tiled C kernel, which
/// keeps a tile of scores (16 query rows in AVX2, 32 in AVX-512) in L1. OpenBLAS reaches about half
/// its peak on the head-size-40 products, since it packs every score block for 40 outputs (measured
/// on Zen 3 and Emerald Rapids); machines without AVX2 keep the OpenBLAS blocks.
func tiledAttention(_ shape: AttentionShape, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>,
                    _ v: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, rowBlock: Int, keyBlock: Int,
                    wide: Bool) {
    let inner = shape.inner, d = shape.headSize
    let rowBlocks = (shape.queryLength + rowBlock - 1) / rowBlock
    let keyBlock = min(keyBlock, shape.keyLength)
    let kernel = wide ? sfumato_attention_rows_avx512 : sfumato_attention_rows_avx2
    Parallel.forEachChunk(shape.batch * shape.heads * rowBlocks) { range in
        let scratch = TensorStorage(count: sfumato_attention_scratch_floats(rowBlock, keyBlock, d))
        // A worker's jobs are consecutive, so it packs each head's keys and values once, contiguous:
        // strided 40-float rows would drag in the neighbouring heads' cache lines on every pass.
        let packed = TensorStorage(count: 2 * shape.keyLength * d)
        let kPacked = packed.pointer, vPacked = packed.pointer + shape.keyLength * d
        var packedHead = -1
        for job in range {
            let b = job / (shape.heads * rowBlocks)
            let head = (job / rowBlocks) % shape.heads
            let firstRow = (job % rowBlocks) * rowBlock
            let rows = min(rowBlock, shape.queryLength - firstRow)
            let headStart = head * d
            if job / rowBlocks != packedHead {
                packedHead = job / rowBlocks
                let kHead = k + b * shape.keyLength * inner + headStart, vHead = v + b * shape.keyLength * inner + headStart
                for key in 0..<shape.keyLength {
                    (kPacked + key * d).update(from: kHead + key * inner, count: d)
                    (vPacked + key * d).update(from: vHead + key * inner, count: d)
                }
            }
            kernel(q + (b * shape.queryLength + firstRow) * inner + headStart, inner, kPacked, d, vPacked, d,
                   out + (b * shape.queryLength + firstRow) * inner + headStart, inner,
                   rows, shape.keyLength, d, shape.scale, shape.causal ? firstRow : -1, keyBlock, scratch.pointer)
        }
    }
}

/// Scores of keys after their query (key > query row) become -inf, so their weight is exactly 0.
/// Key 0 is always visible and the first key block is processed first, so no row's maximum stays -inf.
private func maskFutureKeys(_ scores: UnsafeMutablePointer<Float>, rows: Int, cols: Int, firstRow: Int, firstKey: Int) {
    for row in 0..<rows {
        let visible = max(0, min(cols, firstRow + row + 1 - firstKey))
        (scores + row * cols + visible).update(repeating: -.infinity, count: cols - visible)
    }
}

/// The reference path: scores of `rowBlock` query rows against every key, a plain softmax, then the
/// weighted sum, one head at a time.
func referenceAttention(_ shape: AttentionShape, _ query: UnsafePointer<Float>, _ key: UnsafePointer<Float>,
                        _ value: UnsafePointer<Float>, into result: UnsafeMutablePointer<Float>, rowBlock: Int) {
    let (queryLength, keyLength, inner, headSize) = (shape.queryLength, shape.keyLength, shape.inner, shape.headSize)
    let blockRows = min(queryLength, rowBlock)
    let scores = TensorStorage(count: blockRows * keyLength)
    for b in 0..<shape.batch {
        let q = query + b * queryLength * inner
        let k = key + b * keyLength * inner
        let v = value + b * keyLength * inner
        let out = result + b * queryLength * inner
        for head in 0..<shape.heads {
            let column = head * headSize
            var row = 0
            while row < queryLength {
                let rows = min(blockRows, queryLength - row)
                // With the causal mask, keys past the block's last row get weight 0: skip them.
                let keys = shape.causal ? min(keyLength, row + rows) : keyLength
                // scores[rows, keys] = scale * q_block * k^T
                BLAS.sgemm(transposeB: true, m: rows, n: keys, k: headSize, alpha: shape.scale,
                           a: q + row * inner + column, lda: inner,
                           b: k + column, ldb: inner,
                           c: scores.pointer, ldc: keys)
                let data = scores.pointer
                Parallel.forEachChunk(rows, grain: max(1, 8_192 / keys)) { range in
                    softmaxRows(data + range.lowerBound * keys, rows: range.count, length: keys, stride: keys,
                                causalOffset: shape.causal ? row + range.lowerBound : nil)
                }
                // out_block[rows, d] = scores * v
                BLAS.sgemm(m: rows, n: headSize, k: keys,
                           a: scores.pointer, lda: keys,
                           b: v + column, ldb: inner,
                           c: out + row * inner + column, ldc: inner)
                row += rows
            }
        }
    }
}
