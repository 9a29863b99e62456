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
        if let residual { precondition(residual.shape == out.shape, "linear: residual \(residual.shape) does not match the output \(out.shape)") }
        // The bias and the residual are the GEMM's starting value (beta = 1), not passes of their own.
        prefillGEMMOutput(out.pointer, rows: rows, stride: outFeatures, length: outFeatures,
                          columnBias: bias?.pointer, residual: residual?.pointer)
        if inFeatures > 0 {
            BLAS.sgemm(transposeB: true, m: rows, n: outFeatures, k: inFeatures,
                       a: x.pointer, lda: inFeatures, b: weight.pointer, ldb: inFeatures,
                       beta: 1, c: out.pointer, ldc: outFeatures)
        }
        return out
    }
}

/// `geglu(linear(x, weight, bias))` (diffusers' GEGLU projection): weight `[2F, in]` -> `[..., F]`.
/// On the fast path the projection is made `linearGEGLURows` rows at a time into a cache-sized
/// scratch and gated from there, so the `[..., 2F]` projection (168 MB at 512x512) is never stored.
public func linearGEGLU(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
    guard Kernels.path == .fast else { return geglu(linear(x, weight: weight, bias: bias)) }
    return OpProfile.record("linear + geglu", flops: 2 * Double(x.count) * Double(weight.shape[0])) {
        precondition(weight.rank == 2 && x.rank >= 1 && x.shape[x.rank - 1] == weight.shape[1] && weight.shape[0] % 2 == 0,
                     "linearGEGLU: input \(x.shape) does not fit weight \(weight.shape)")
        let inFeatures = weight.shape[1], projected = weight.shape[0], width = projected / 2
        let rows = x.shape.dropLast().reduce(1, *)
        let out = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [width])
        var first = 0
        while first < rows {
            let count = min(linearGEGLURows, rows - first)
            let block = linear(Tensor(shape: [count, inFeatures], storage: x.storage, offset: x.offset + first * inFeatures),
                               weight: weight, bias: bias)
            sfumatoGEGLU(block.pointer, out.pointer + first * width, rows: count, width: width)
            first += count
        }
        return out
    }
}

/// Rows per block of `linearGEGLU`: 1024 x 5120 floats (21 MB) stay in L3 between the GEMM and the gate.
let linearGEGLURows = 1024
