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

/// The guidance-scale embedding LCM-distilled UNets take, [scales.count, dimension], as diffusers'
/// pipelines compute it (`get_guidance_scale_embedding` of w = guidance_scale - 1), in float32:
/// w * 1000 times exp(-i * ln(10000) / (dimension/2 - 1)), then [sin | cos], zero-padded when odd.
public func guidanceScaleEmbedding(_ guidanceScales: [Float], dimension: Int) -> Tensor {
    let half = dimension / 2
    // torch: log(tensor(10000.0)) / (half - 1), then exp(arange(half) * -that), each in float32.
    let step = Float(log(10000.0)) / Float(half - 1)
    let frequencies = (0..<half).map { Float(exp(Double(Float($0) * -step))) }
    let result = Tensor(zeros: [guidanceScales.count, dimension])
    for (row, scale) in guidanceScales.enumerated() {
        // torch.tensor(guidance_scale - 1) rounds the Python double to float32.
        let w = Float(Double(scale) - 1) * 1000
        let output = result.pointer + row * dimension
        for (index, frequency) in frequencies.enumerated() {
            let angle = Double(w * frequency)
            output[index] = Float(sin(angle))
            output[half + index] = Float(cos(angle))
        }
    }
    return result
}

/// diffusers `TimestepEmbedding` as the SD UNet uses it: linear_1 -> SiLU -> linear_2, with the LCM
/// condition projected (`cond_proj`, no bias) and added to the features first when the UNet has one.
final class TimestepEmbedding: Sendable {
    let linear_1: Linear
    let linear_2: Linear
    let cond_proj: Linear?

    /// `loader` is scoped to "time_embedding".
    init(_ loader: ParameterLoader, inChannels: Int, timeEmbedDim: Int, condProjDim: Int?) {
        linear_1 = Linear(loader.scoped("linear_1"), in: inChannels, out: timeEmbedDim)
        linear_2 = Linear(loader.scoped("linear_2"), in: timeEmbedDim, out: timeEmbedDim)
        cond_proj = condProjDim.map { Linear(loader.scoped("cond_proj"), in: $0, out: inChannels, bias: false) }
    }

    /// features [N, inChannels], condition [N, condProjDim] -> [N, timeEmbedDim]
    func callAsFunction(_ features: Tensor, condition: Tensor?) -> Tensor {
        let input = if let cond_proj, let condition { cond_proj(condition, residual: features) } else { features }
        return linear_2(silu(linear_1(input)))
    }
}
