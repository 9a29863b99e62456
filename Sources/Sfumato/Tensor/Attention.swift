/// Multi-head scaled dot-product attention, as diffusers' attention processor with
/// `F.scaled_dot_product_attention`: q [B, Lq, heads*d], k and v [B, Lk, heads*d] -> [B, Lq, heads*d],
/// scores scaled by 1/sqrt(d). `causal` lets query i see keys 0...i only (CLIP's text mask; PyTorch's
/// `is_causal`, aligned top-left when Lq != Lk).
///
/// Heads are read in place through GEMM leading dimensions (row stride heads*d), so nothing is
/// transposed. The scores of one head are formed `rowBlock` query rows at a time (rowBlock x Lk
/// floats), which bounds memory at any sequence length; by default a block holds about 1 MB.
public func attention(query: Tensor, key: Tensor, value: Tensor, heads: Int, causal: Bool = false,
                      rowBlock: Int? = nil) -> Tensor {
    OpProfile.record(causal ? "attention (causal)" : "attention", flops: 4 * Double(query.shape[0]) * Double(query.shape[1]) * Double(key.shape[1]) * Double(query.shape[2])) {
        precondition(query.rank == 3 && key.rank == 3 && value.rank == 3,
                     "attention needs q, k, v of rank 3, got \(query.shape), \(key.shape), \(value.shape)")
        let batch = query.shape[0], queryLength = query.shape[1], inner = query.shape[2]
        let keyLength = key.shape[1]
        precondition(key.shape == [batch, keyLength, inner] && value.shape == key.shape,
                     "attention: k \(key.shape) and v \(value.shape) do not match q \(query.shape)")
        precondition(heads > 0 && inner % heads == 0, "attention: width \(inner) does not split into \(heads) heads")
        precondition(rowBlock.map { $0 > 0 } ?? true, "attention: rowBlock must be positive")
        let headSize = inner / heads

        let result = Tensor(uninitializedShape: query.shape)
        guard result.count > 0 else { return result }
        guard keyLength > 0, headSize > 0 else {
            // No keys: the weighted sum over nothing, as PyTorch's matmul with an empty dimension.
            result.pointer.update(repeating: 0, count: result.count)
            return result
        }

        let blockRows = min(queryLength, rowBlock ?? max(16, (1 << 18) / keyLength))
        let scores = TensorStorage(count: blockRows * keyLength)
        let scale = 1 / Float(headSize).squareRoot()

        for b in 0..<batch {
            let q = query.pointer + b * queryLength * inner
            let k = key.pointer + b * keyLength * inner
            let v = value.pointer + b * keyLength * inner
            let out = result.pointer + b * queryLength * inner
            for head in 0..<heads {
                let column = head * headSize
                var row = 0
                while row < queryLength {
                    let rows = min(blockRows, queryLength - row)
                    // With the causal mask, keys past the block's last row get weight 0: skip them.
                    let keys = causal ? min(keyLength, row + rows) : keyLength
                    // scores[rows, keys] = scale * q_block * k^T
                    BLAS.sgemm(transposeB: true, m: rows, n: keys, k: headSize, alpha: scale,
                               a: q + row * inner + column, lda: inner,
                               b: k + column, ldb: inner,
                               c: scores.pointer, ldc: keys)
                    let data = scores.pointer
                    Parallel.forEachChunk(rows, grain: max(1, 8_192 / keys)) { range in
                        softmaxRows(data + range.lowerBound * keys, rows: range.count, length: keys, stride: keys,
                                    causalOffset: causal ? row + range.lowerBound : nil)
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
        return result
    }
}
