/// `weight + scale * up @ down`, a LoRA merged into a copy of `weight` (the original is left as it is).
///
/// `weight` is [out, in] or a convolution [out, in, k, k]; `up` is [out, rank] (or [out, rank, 1, 1]);
/// `down` is [rank, in] (or [rank, in, k, k]), so the product has the weight's element layout.
public func addingLowRankProduct(to weight: Tensor, up: Tensor, down: Tensor, scale: Float) -> Tensor {
    OpProfile.record("low-rank merge") {
        let out = weight.shape[0]
        let rank = down.shape[0]
        let columns = weight.count / max(out, 1)
        precondition(up.count == out * rank && down.count == rank * columns,
                     "low-rank product \(up.shape) @ \(down.shape) does not fit \(weight.shape)")
        let result = weight.copy()
        BLAS.sgemm(m: out, n: columns, k: rank, alpha: scale, a: up.pointer, lda: rank, b: down.pointer, ldb: columns,
                   beta: 1, c: result.pointer, ldc: columns)
        return result
    }
}
