import Foundation

/// Reproduces `torch.Generator("cpu").manual_seed(seed)` followed by `torch.randn(shape, generator:)`
/// (float32), so the same seed gives the same initial latents as diffusers on the CPU.
/// Successive `normal(shape:)` calls continue one generator stream, as successive `randn` calls do.
///
/// PyTorch draws differently by size (aten/src/ATen/native/cpu/DistributionTemplates.h):
/// - at least 16 elements: float uniforms from 24 bits, Box-Muller on blocks of 16
///   (pairs j and j + 8), and when the size is not a multiple of 16 the last 16 slots are
///   refilled with fresh uniforms and transformed again;
/// - fewer than 16: one double Box-Muller per element from 53-bit uniforms, the second value
///   of each pair cached in the generator for the next small draw.
/// Both paths are bit-exact against PyTorch on x86 CPUs where it dispatches its AVX2 kernels
/// (the float path copies that kernel's Cephes log/sincos, see `CephesFloat`). Elsewhere (AVX-512,
/// ARM) PyTorch's float path uses libm instead, and values there differ by about one ulp.
public struct TorchRandom: RandomSource, Sendable {
    private var engine: MersenneTwister
    /// The sine half of the last double Box-Muller pair, waiting to be returned.
    private var cachedNormal: Double?

    public init(seed: UInt64) {
        engine = MersenneTwister(seed: UInt32(truncatingIfNeeded: seed))
        cachedNormal = nil
    }

    public mutating func normal(shape: [Int]) -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        let count = result.count
        let data = result.pointer
        if count >= 16 {
            for index in 0..<count { data[index] = nextFloatUniform() }
            var start = 0
            while start + 16 <= count {
                Self.boxMuller16(data + start)
                start += 16
            }
            if count % 16 != 0 {
                let tail = data + (count - 16)
                for index in 0..<16 { tail[index] = nextFloatUniform() }
                Self.boxMuller16(tail)
            }
        } else {
            for index in 0..<count { data[index] = Float(nextDoubleNormal()) }
        }
        return result
    }

    /// 24 random bits scaled to [0, 1), as torch's uniform_real_distribution<float>.
    private mutating func nextFloatUniform() -> Float {
        Float(engine.next() & 0xFF_FFFF) * (1.0 / 16_777_216.0)
    }

    /// 53 random bits of a 64-bit draw (first 32-bit draw in the high half) scaled to [0, 1).
    private mutating func nextDoubleUniform() -> Double {
        let high = UInt64(engine.next())
        let low = UInt64(engine.next())
        let bits = (high << 32 | low) & ((1 << 53) - 1)
        return Double(bits) * (1.0 / 9_007_199_254_740_992.0)
    }

    private mutating func nextDoubleNormal() -> Double {
        if let cached = cachedNormal {
            cachedNormal = nil
            return cached
        }
        let u1 = nextDoubleUniform()
        let u2 = nextDoubleUniform()
        let radius = (-2.0 * Foundation.log1p(-u2)).squareRoot()
        let theta = 2.0 * Double.pi * u1
        cachedNormal = radius * Foundation.sin(theta)
        return radius * Foundation.cos(theta)
    }

    /// Box-Muller in place on 16 uniforms: slot j pairs with slot j + 8.
    private static func boxMuller16(_ data: UnsafeMutablePointer<Float>) {
        // float(2 pi), as the AVX2 kernel multiplies in single precision.
        let twoPi = Float(2.0 * Double.pi)
        for j in 0..<8 {
            let u1 = 1 - data[j]  // [0, 1) -> (0, 1] so the log is finite
            let u2 = data[j + 8]
            let radius = (-2 * CephesFloat.log(u1)).squareRoot()
            let (sine, cosine) = CephesFloat.sinCos(twoPi * u2)
            data[j] = radius * cosine
            data[j + 8] = radius * sine
        }
    }
}

/// Single-precision log and sin/cos as PyTorch's AVX2 normal kernel computes them
/// (Cephes polynomials via avx_mathfun.h), so the float path reproduces its rounding.
/// Arguments here are positive and finite: log gets (0, 1], sinCos gets [0, 2 pi).
enum CephesFloat {
    /// a * b + c with one rounding: GCC contracts the kernel's separate multiply and add
    /// intrinsics into FMA instructions; which multiply gets fused was matched by experiment.
    @inline(__always) static func mulAdd(_ a: Float, _ b: Float, _ c: Float) -> Float {
        c.addingProduct(a, b)
    }

    static func log(_ value: Float) -> Float {
        let bits = value.bitPattern
        // Mantissa scaled to [0.5, 1) and the matching exponent.
        var mantissa = Float(bitPattern: (bits & ~0x7F80_0000) | 0x3F00_0000)
        var exponent = Float(Int32(bitPattern: bits >> 23) - 127) + 1
        if mantissa < 0.707106781186547524 {
            exponent -= 1
            mantissa = (mantissa - 1) + mantissa
        } else {
            mantissa -= 1
        }
        let x = mantissa
        let z = x * x
        var y: Float = 7.0376836292E-2
        y = mulAdd(y, x, -1.1514610310E-1)
        y = mulAdd(y, x, 1.1676998740E-1)
        y = mulAdd(y, x, -1.2420140846E-1)
        y = mulAdd(y, x, 1.4249322787E-1)
        y = mulAdd(y, x, -1.6668057665E-1)
        y = mulAdd(y, x, 2.0000714765E-1)
        y = mulAdd(y, x, -2.4999993993E-1)
        y = mulAdd(y, x, 3.3333331174E-1)
        y = y * x
        y = mulAdd(y, z, exponent * -2.12194440e-4)
        y = y - z * 0.5
        var result = x + y
        result = mulAdd(exponent, 0.693359375, result)
        return result
    }

    static func sinCos(_ value: Float) -> (sin: Float, cos: Float) {
        var x = value
        var octant = Int32(x * 1.27323954473516)  // 4 / pi, truncated
        octant = (octant + 1) & ~1
        let y = Float(octant)
        let sinNegative = octant & 4 != 0
        let cosNegative = (octant - 2) & 4 == 0
        let sinPolynomial = octant & 2 == 0
        // Extended-precision reduction by pi / 4 in three parts.
        x = mulAdd(y, -0.78515625, x)
        x = mulAdd(y, -2.4187564849853515625e-4, x)
        x = mulAdd(y, -3.77489497744594108e-8, x)
        let z = x * x
        var cosine: Float = 2.443315711809948E-005
        cosine = mulAdd(cosine, z, -1.388731625493765E-003)
        cosine = mulAdd(cosine, z, 4.166664568298827E-002)
        cosine = cosine * z
        cosine = mulAdd(cosine, z, -(z * 0.5))
        cosine = cosine + 1
        var sine: Float = -1.9515295891E-4
        sine = mulAdd(sine, z, 8.3321608736E-3)
        sine = mulAdd(sine, z, -1.6666654611E-1)
        sine = sine * z
        sine = mulAdd(sine, x, x)
        var s = sinPolynomial ? sine : cosine
        var c = sinPolynomial ? cosine : sine
        if sinNegative { s = -s }
        if cosNegative { c = -c }
        return (s, c)
    }
}

/// The 32-bit Mersenne Twister (MT19937) with PyTorch's seeding from the seed's low 32 bits.
struct MersenneTwister: Sendable {
    private static let n = 624
    private static let m = 397
    private var state: [UInt32]
    private var index: Int

    init(seed: UInt32) {
        var state = [UInt32](repeating: 0, count: Self.n)
        state[0] = seed
        for i in 1..<Self.n {
            let previous = state[i - 1]
            state[i] = 1_812_433_253 &* (previous ^ (previous >> 30)) &+ UInt32(i)
        }
        self.state = state
        index = Self.n
    }

    mutating func next() -> UInt32 {
        if index >= Self.n { twist() }
        var y = state[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    private mutating func twist() {
        state.withUnsafeMutableBufferPointer { s in
            for i in 0..<Self.n {
                let y = (s[i] & 0x8000_0000) | (s[(i + 1) % Self.n] & 0x7FFF_FFFF)
                var value = s[(i + Self.m) % Self.n] ^ (y >> 1)
                if y & 1 != 0 { value ^= 0x9908_B0DF }
                s[i] = value
            }
        }
        index = 0
    }
}
