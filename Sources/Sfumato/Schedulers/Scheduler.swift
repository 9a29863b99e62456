/// A diffusion sampler, one denoising run at a time.
///
/// A value is made for one run (`init(config:steps:)` in each conforming type) and
/// holds that run's state (multistep history, step counter), so concurrent runs
/// never share a scheduler.
public protocol Scheduler {
    /// The model timesteps of the run, in the order they are visited.
    var timesteps: [Double] { get }
    /// Model evaluations per inference step (diffusers' `order`): 2 for Heun and DPM++ SDE, whose
    /// `timesteps` hold two entries per step but the last; 1 for the others.
    var order: Int { get }
    /// Standard deviation of the initial noise (1 for DDPM-style, sigma_max for Euler-style samplers).
    var initNoiseSigma: Float { get }
    /// The sample as the UNet must see it at `stepIndex` (identity for DDPM-style samplers).
    func scaleModelInput(_ sample: Tensor, stepIndex: Int) -> Tensor
    /// One denoising step: the sample for the next timestep from the model's output
    /// (epsilon, v or sample, as the config's prediction type says). Stochastic samplers
    /// draw their noise from `random`, in the order diffusers does.
    mutating func step(modelOutput: Tensor, stepIndex: Int, sample: Tensor, random: inout any RandomSource) -> SchedulerStep
    /// The forward process: clean latents `original` noised with `noise` to the level of `timesteps[stepIndex]`,
    /// as diffusers' `add_noise` (after `set_begin_index(stepIndex)` for the classes that have it).
    /// Image to image starts its loop at `stepIndex` from this sample.
    func addNoise(_ original: Tensor, noise: Tensor, stepIndex: Int) -> Tensor
}

extension Scheduler {
    public var order: Int { 1 }
}

/// The inference step where image to image starts, as diffusers' img2img `get_timesteps`:
/// the last `int(steps * strength)` inference steps run. The index into `timesteps` is this
/// times the scheduler's `order` (PNDM's repeated warm-up entry counts as one of its steps).
public func imageToImageBeginIndex(steps: Int, strength: Double) -> Int {
    let denoised = min(Int(Double(steps) * strength), steps)
    return max(steps - denoised, 0)
}

public struct SchedulerStep {
    /// The sample for the next step.
    public let prevSample: Tensor
    /// The current estimate of the clean latents (x0), for previews and intermediates.
    public let predictedOriginal: Tensor

    public init(prevSample: Tensor, predictedOriginal: Tensor) {
        self.prevSample = prevSample
        self.predictedOriginal = predictedOriginal
    }
}
