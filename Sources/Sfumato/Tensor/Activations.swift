import Foundation
import CSfumatoKernels

/// Applies `f` to every element of `x` into a new tensor, split across cores when large.
@inline(__always)
private func mapElements(_ x: Tensor, _ f: (VectorMath.Vector) -> VectorMath.Vector) -> Tensor {
    let result = Tensor(uninitializedShape: x.shape)
    let input = x.pointer, output = result.pointer
    // Chunks are whole vectors so only the very last one has a partial tail.
    let vectors = (x.count + VectorMath.width - 1) / VectorMath.width
    Parallel.forEachChunk(vectors, grain: elementwiseGrain / VectorMath.width) { range in
        let start = range.lowerBound * VectorMath.width
        let end = min(x.count, range.upperBound * VectorMath.width)
        VectorMath.map(input + start, output + start, count: end - start, f)
    }
    return result
}

/// SiLU (swish): x * sigmoid(x).
public func silu(_ x: Tensor) -> Tensor {
    OpProfile.record("silu") {
        mapElements(x) { $0 * VectorMath.sigmoid($0) }
    }
}

/// GELU in its exact form 0.5 x (1 + erf(x / sqrt 2)), as `F.gelu(x, approximate="none")`.
public func gelu(_ x: Tensor) -> Tensor {
    OpProfile.record("gelu") {
        mapElements(x, geluVector)
    }
}

/// x * sigmoid(1.702 x), the GELU approximation CLIP's text encoder uses.
public func quickGELU(_ x: Tensor) -> Tensor {
    OpProfile.record("quick gelu") {
        mapElements(x) { $0 * VectorMath.sigmoid(1.702 * $0) }
    }
}

/// GEGLU: the last dimension 2F is split into halves [a, b]; the result is a * gelu(b), last dim F.
public func geglu(_ x: Tensor) -> Tensor {
    OpProfile.record("geglu") {
        precondition(x.rank >= 1 && x.shape[x.rank - 1] % 2 == 0, "geglu needs an even last dimension, got \(x.shape)")
        let width = x.shape[x.rank - 1] / 2
        let rows = width == 0 ? 0 : x.count / (2 * width)
        let result = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [width])
        let input = x.pointer, output = result.pointer
        if Kernels.path == .fast {
            sfumatoGEGLU(input, output, rows: rows, width: width)
            return result
        }
        Parallel.forEachChunk(rows, grain: max(1, elementwiseGrain / max(width, 1))) { range in
            for row in range {
                let a = input + row * 2 * width
                let b = a + width
                let out = output + row * width
                var index = 0
                while index + VectorMath.width <= width {
                    VectorMath.store(VectorMath.load(a + index) * geluVector(VectorMath.load(b + index)), out + index)
                    index += VectorMath.width
                }
                if index < width {
                    let tail = width - index
                    let value = VectorMath.load(a + index, count: tail) * geluVector(VectorMath.load(b + index, count: tail))
                    VectorMath.store(value, out + index, count: tail)
                }
            }
        }
        return result
    }
}

/// The fast path's GEGLU over `rows` rows of `2 * width` floats, split across cores.
func sfumatoGEGLU(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, rows: Int, width: Int) {
    let variant = Kernels.cVariant
    Parallel.forEachChunk(rows, grain: max(1, elementwiseGrain / max(width, 1))) { range in
        sfumato_geglu(variant, input + range.lowerBound * 2 * width, output + range.lowerBound * width, range.count, width)
    }
}

@inline(__always)
private func geluVector(_ x: VectorMath.Vector) -> VectorMath.Vector {
    0.5 * x * (1 + VectorMath.erf(x * Float(0.5).squareRoot()))
}

/// ReLU: max(x, 0) (NaN stays NaN, as in torch).
public func relu(_ x: Tensor) -> Tensor {
    OpProfile.record("relu") {
        mapElements(x) { v in v.replacing(with: 0, where: v .< 0) }
    }
}

/// magnitude * tanh(x / magnitude): a smooth clamp to (-magnitude, magnitude), as the tiny autoencoder's decoder
/// bounds its input latents.
public func tanhBounded(_ x: Tensor, magnitude: Float) -> Tensor {
    OpProfile.record("tanh") {
        let out = Tensor(uninitializedShape: x.shape)
        let source = x.pointer, destination = out.pointer
        Parallel.forEachChunk(x.count, grain: elementwiseGrain) { range in
            for index in range { destination[index] = Foundation.tanh(source[index] / magnitude) * magnitude }
        }
        return out
    }
}
