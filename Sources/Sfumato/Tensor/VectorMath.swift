/// Vectorised transcendental functions for the elementwise ops (softmax, SiLU, GELU).
/// Written with `SIMD16<Float>` so they compile to packed instructions at the baseline target.
enum VectorMath {
    typealias Vector = SIMD8<Float>
    typealias Bits = SIMD8<Int32>
    static let width = Vector.scalarCount

    /// e^x with relative error below 2e-7 for x in [-87.3, 88]; 0 below that range (as expf
    /// underflows), and e^88 above it. NaN propagates.
    @_transparent
    static func exp(_ x: Vector) -> Vector {
        // Keep 2^n a normal float: n stays in [-126, 127].
        let low: Float = -87.33
        let high: Float = 88.0
        var clamped = x.replacing(with: low, where: x .< low)
        clamped = clamped.replacing(with: high, where: clamped .> high)
        // n = round(x / ln 2) with the 1.5 * 2^23 trick: adding it rounds to nearest and leaves n
        // in the low mantissa bits, so no (non-baseline) round instruction is needed.
        let shifter: Float = 12_582_912
        let t = clamped * Float(1.442_695_04) + shifter
        let n = t - shifter
        // r = x - n ln 2 in two parts (Cody-Waite) so r keeps full precision; |r| <= ln 2 / 2.
        let r = clamped - n * Float(0.693_145_75) - n * Float(1.428_606_8e-6)
        // Taylor series to degree 7: truncation error < 3e-9 on |r| <= 0.347.
        var p = Vector(repeating: 1.0 / 5040.0)
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        // 2^n built from its exponent bits.
        let nBits = unsafeBitCast(t, to: Bits.self) &- unsafeBitCast(Vector(repeating: shifter), to: Bits.self)
        let scale = unsafeBitCast((nBits &+ 127) &<< 23, to: Vector.self)
        let result = p * scale
        return result.replacing(with: 0, where: x .< low)
    }

    /// 1 / (1 + e^-x).
    @_transparent
    static func sigmoid(_ x: Vector) -> Vector {
        1 / (1 + exp(-x))
    }

    /// erf(x) by Abramowitz & Stegun 7.1.26: 1 - t (a1 + a2 t + ... + a5 t^4) e^(-x^2), t = 1 / (1 + p|x|),
    /// odd in x; absolute error below 2e-7, where a libm call per element costs ten times as much.
    @_transparent
    static func erf(_ x: Vector) -> Vector {
        let bits = unsafeBitCast(x, to: Bits.self)
        let magnitude = unsafeBitCast(bits & Int32.max, to: Vector.self)
        let t = 1 / (1 + Float(0.327_591_1) * magnitude)
        var p = Vector(repeating: 1.061_405_429)
        p = p * t - 1.453_152_027
        p = p * t + 1.421_413_741
        p = p * t - 0.284_496_736
        p = p * t + 0.254_829_592
        let value = 1 - p * t * exp(-magnitude * magnitude)
        // Copy the sign of x onto the result.
        return unsafeBitCast(unsafeBitCast(value, to: Bits.self) | (bits & Int32.min), to: Vector.self)
    }

    /// Loads up to 16 floats (`count` < 16 pads with `fill`).
    @inline(__always)
    static func load(_ pointer: UnsafePointer<Float>, count: Int, fill: Float = 0) -> Vector {
        var vector = Vector(repeating: fill)
        for lane in 0..<count { vector[lane] = pointer[lane] }
        return vector
    }

    @inline(__always)
    static func store(_ vector: Vector, _ pointer: UnsafeMutablePointer<Float>, count: Int) {
        for lane in 0..<count { pointer[lane] = vector[lane] }
    }

    /// Full-vector load/store (unaligned).
    @inline(__always)
    static func load(_ pointer: UnsafePointer<Float>) -> Vector {
        UnsafeRawPointer(pointer).loadUnaligned(as: Vector.self)
    }

    @inline(__always)
    static func store(_ vector: Vector, _ pointer: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(pointer).storeBytes(of: vector, as: Vector.self)
    }

    /// out[i] = f(in[i]) for `count` elements, 16 at a time (in and out may be the same memory).
    @inline(__always)
    static func map(_ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>, count: Int,
                    _ f: (Vector) -> Vector) {
        var index = 0
        while index + width <= count {
            store(f(load(input + index)), output + index)
            index += width
        }
        if index < count {
            store(f(load(input + index, count: count - index)), output + index, count: count - index)
        }
    }
}
