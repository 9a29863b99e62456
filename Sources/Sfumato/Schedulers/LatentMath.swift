/// Elementwise float32 arithmetic on latents for the schedulers. Each closure spells out
/// the operation order of the diffusers formula so rounding matches torch's float32 ops.
enum LatentMath {
    @inline(__always)
    static func map(_ a: Tensor, _ body: (Float) -> Float) -> Tensor {
        let out = Tensor(uninitializedShape: a.shape)
        let x = a.pointer, y = out.pointer
        for index in 0..<a.count { y[index] = body(x[index]) }
        return out
    }

    @inline(__always)
    static func map(_ a: Tensor, _ b: Tensor, _ body: (Float, Float) -> Float) -> Tensor {
        precondition(a.shape == b.shape, "scheduler inputs of shapes \(a.shape) and \(b.shape)")
        let out = Tensor(uninitializedShape: a.shape)
        let x = a.pointer, z = b.pointer, y = out.pointer
        for index in 0..<a.count { y[index] = body(x[index], z[index]) }
        return out
    }

    @inline(__always)
    static func map(_ a: Tensor, _ b: Tensor, _ c: Tensor, _ body: (Float, Float, Float) -> Float) -> Tensor {
        precondition(a.shape == b.shape && a.shape == c.shape, "scheduler inputs of shapes \(a.shape), \(b.shape), \(c.shape)")
        let out = Tensor(uninitializedShape: a.shape)
        let x = a.pointer, z = b.pointer, w = c.pointer, y = out.pointer
        for index in 0..<a.count { y[index] = body(x[index], z[index], w[index]) }
        return out
    }

    /// torch's clamp(min: -range, max: range); NaN passes through as in torch.
    @inline(__always)
    static func clamp(_ value: Float, _ range: Float) -> Float {
        value < -range ? -range : (value > range ? range : value)
    }
}
