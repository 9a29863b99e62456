import Foundation

/// Sinusoidal timestep features, [timesteps.count, dimension], as diffusers' `get_timestep_embedding`
/// computes them: every intermediate rounded to float32 in torch's order, so the features match
/// PyTorch to about one float32 ulp of the angle.
///
/// frequency_i = exp(-ln(maxPeriod) * i / (dimension/2 - downscaleFreqShift)), angle = t * frequency_i;
/// features are [sin | cos] (or [cos | sin] with `flipSinToCos`), zero-padded when `dimension` is odd.
func sinusoidalTimestepEmbedding(_ timesteps: [Float], dimension: Int, flipSinToCos: Bool,
                                 downscaleFreqShift: Double, maxPeriod: Double = 10000) -> Tensor {
    let half = dimension / 2
    // torch: (-log(max_period) * arange(half, float32)) / (half - shift), each step in float32.
    let logPeriod = Float(-log(maxPeriod))
    let denominator = Float(Double(half) - downscaleFreqShift)
    let frequencies = (0..<half).map { index in Float(exp(Double(logPeriod * Float(index) / denominator))) }
    let result = Tensor(zeros: [timesteps.count, dimension])
    let (sinOffset, cosOffset) = flipSinToCos ? (half, 0) : (0, half)
    for (row, timestep) in timesteps.enumerated() {
        let output = result.pointer + row * dimension
        for (index, frequency) in frequencies.enumerated() {
            let angle = Double(timestep * frequency)
            output[sinOffset + index] = Float(sin(angle))
            output[cosOffset + index] = Float(cos(angle))
        }
    }
    return result
}

/// diffusers `TimestepEmbedding` as the SD UNet uses it: linear_1 -> SiLU -> linear_2.
final class TimestepEmbedding: Sendable {
    let linear_1: Linear
    let linear_2: Linear

    /// `loader` is scoped to "time_embedding".
    init(_ loader: ParameterLoader, inChannels: Int, timeEmbedDim: Int) {
        linear_1 = Linear(loader.scoped("linear_1"), in: inChannels, out: timeEmbedDim)
        linear_2 = Linear(loader.scoped("linear_2"), in: timeEmbedDim, out: timeEmbedDim)
    }

    /// features [N, inChannels] -> [N, timeEmbedDim]
    func callAsFunction(_ features: Tensor) -> Tensor { linear_2(silu(linear_1(features))) }
}
