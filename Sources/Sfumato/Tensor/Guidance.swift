/// Classifier-free guidance: unconditional + scale * (conditional - unconditional), elementwise.
public func classifierFreeGuidance(unconditional: Tensor, conditional: Tensor, scale: Float) -> Tensor {
    OpProfile.record("guidance") {
        precondition(unconditional.shape == conditional.shape, "guidance of \(unconditional.shape) and \(conditional.shape)")
        let result = Tensor(uninitializedShape: conditional.shape)
        let (u, c, out) = (unconditional.pointer, conditional.pointer, result.pointer)
        for index in 0..<result.count { out[index] = u[index] + scale * (c[index] - u[index]) }
        return result
    }
}
