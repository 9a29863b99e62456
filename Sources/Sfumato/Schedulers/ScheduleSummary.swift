/// What a sampler's run looks like from the noise schedule: for every model evaluation, its train
/// timestep, the noise level sigma_t = sqrt((1 - abar_t) / abar_t) there and the signal-to-noise
/// ratio abar_t / (1 - abar_t) = 1 / sigma_t^2 (what `sfumato schedule` prints and plots).
public struct ScheduleSummary: Sendable {
    public let timesteps: [Double]
    public let sigmas: [Double]
    public let signalToNoise: [Double]

    /// sigma_t interpolated in the train sigmas at each (possibly fractional) timestep, as the
    /// sigma samplers place them; SNR from it.
    public init(timesteps: [Double], config: SchedulerConfig) {
        let table = config.trainSigmas
        self.timesteps = timesteps
        sigmas = timesteps.map { SchedulerConfig.interpolate($0, table: table) }
        signalToNoise = sigmas.map { 1 / ($0 * $0) }
    }
}
