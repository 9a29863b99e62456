/// `x [..., in] · weightᵀ + bias`, weight `[out, in]`, bias `[out]` -> `[..., out]`
/// (torch.nn.functional.linear). All leading dimensions go through one GEMM. `residual` (the
/// output's shape) is added in place, as `linear(x) + residual` without another tensor.
public func linear(_ x: Tensor, weight: Tensor, bias: Tensor?, residual: Tensor? = nil) -> Tensor {
    OpProfile.record("linear", flops: 2 * Double(x.count) * Double(weight.shape[0])) {
        precondition(weight.rank == 2 && x.rank >= 1 && x.shape[x.rank - 1] == weight.shape[1],
                     "linear: input \(x.shape) does not fit weight \(weight.shape)")
        let inFeatures = weight.shape[1], outFeatures = weight.shape[0]
        if let bias { precondition(bias.shape == [outFeatures], "linear: bias \(bias.shape) for weight \(weight.shape)") }
        let rows = x.shape.dropLast().reduce(1, *)
        let out = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outFeatures])
        if inFeatures == 0 {
            out.pointer.initialize(repeating: 0, count: out.count)
        } else {
            BLAS.sgemm(transposeB: true, m: rows, n: outFeatures, k: inFeatures,
                       a: x.pointer, lda: inFeatures, b: weight.pointer, ldb: inFeatures,
                       c: out.pointer, ldc: outFeatures)
        }
        if let bias, outFeatures > 0 {
            let data = out.pointer, b = bias.pointer
            Parallel.forEachChunk(rows, grain: max(1, elementwiseGrain / outFeatures)) { range in
                for row in range {
                    let line = data + row * outFeatures
                    for index in 0..<outFeatures { line[index] += b[index] }
                }
            }
        }
        if let residual { accumulate(residual, into: out) }
        return out
    }
}
