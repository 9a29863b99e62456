import ArgumentParser
import Foundation
import Sfumato

/// `sfumato schedule`: a sampler's timesteps, noise levels and signal-to-noise ratio, as a table and a plot.
struct ScheduleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Print (and plot) the timesteps, sigmas and signal-to-noise ratio a sampler visits.",
        discussion: """
        One row per UNet evaluation (second-order samplers such as heun evaluate twice per step but the last): \
        the train timestep t, sigma_t = sqrt((1 - abar_t) / abar_t) and SNR = abar_t / (1 - abar_t), from the \
        model's scheduler config (or --scheduler-config). --plot draws the three as a PNG.
        """
    )

    @Option(help: "Sampler: \(SchedulerKind.allCases.map(\.rawValue).joined(separator: ", ")). Default: the model's own.")
    var scheduler: SchedulerKind?

    @Option(help: "Denoising steps.")
    var steps = 25

    @Option(help: "A diffusers model folder or a single-file checkpoint whose scheduler config to use (default: the embedded model).")
    var model: String?

    @Option(help: "A scheduler_config.json to use instead of a model's.")
    var schedulerConfig: String?

    @Option(help: "Write the plot to this PNG.")
    var plot: String?

    func validate() throws {
        guard steps >= 1 else { throw ValidationError("--steps must be at least 1") }
        if model != nil, schedulerConfig != nil { throw ValidationError("give --model or --scheduler-config, not both") }
        if let plot {
            guard plot.hasSuffix(".png") else { throw ValidationError("--plot must end in .png") }
            try checkWritableFolder(URL(fileURLWithPath: plot).deletingLastPathComponent().path, option: "--plot")
        }
    }

    func run() throws {
        let config = try schedulerConfig.map { path throws -> SchedulerConfig in try SchedulerConfig(path: path) }
            ?? ModelFiles(path: model ?? DefaultModel.path()).schedulerConfig()
        let kind = try scheduler ?? SchedulerKind(defaultFor: config)
        let sampler = try makeScheduler(kind: kind, config: config, steps: steps)
        let summary = ScheduleSummary(timesteps: sampler.timesteps, config: config)
        print("\(kind.rawValue), \(steps) steps, \(sampler.timesteps.count) UNet evaluations, init noise sigma "
              + String(format: "%.4f", sampler.initNoiseSigma))
        print("    i    timestep       sigma         SNR")
        for index in summary.timesteps.indices {
            print(String(format: "%5d %11.3f %11.5f %11.5g", index, summary.timesteps[index], summary.sigmas[index], summary.signalToNoise[index]))
        }
        guard let plot else { return }
        let chart = try lineChart(
            title: "\(kind.rawValue) \(steps) steps", xLabel: "UNet evaluation",
            panels: [ChartPanel(title: "timestep t", values: summary.timesteps),
                     ChartPanel(title: "sigma (log)", values: summary.sigmas, logarithmic: true),
                     ChartPanel(title: "SNR (log)", values: summary.signalToNoise, logarithmic: true)])
        try writePNG(chart, to: plot)
        FileHandle.standardError.write(Data("wrote \(plot)\n".utf8))
    }
}
