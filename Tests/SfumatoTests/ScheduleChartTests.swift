import Foundation
import Sfumato
import Testing

/// `sfumato schedule`: the summary of a schedule and the chart drawn from it.
@Suite struct ScheduleChartTests {
    static func sd15() throws -> SchedulerConfig { try SchedulerConfig(path: Fixtures.path("schedulers_a/sd15_scheduler_config.json")) }

    @Test func summaryFollowsTheNoiseSchedule() throws {
        let config = try Self.sd15()
        // Integer timesteps: sigma and SNR straight from alphas_cumprod.
        let ddim = try DDIMScheduler(config: config, steps: 10)
        let summary = ScheduleSummary(timesteps: ddim.timesteps, config: config)
        let alphas = config.alphasCumprod
        for (index, t) in ddim.timesteps.enumerated() {
            let abar = Double(alphas[Int(t)])
            #expect(abs(summary.signalToNoise[index] / (abar / (1 - abar)) - 1) < 1e-5, "SNR at t = \(t)")
        }
        // Fractional timesteps: the sigmas the Euler sampler itself uses (diffusers' interpolation).
        var linspace = config
        linspace.timestepSpacing = .linspace
        let euler = try EulerDiscreteScheduler(config: linspace, steps: 7)
        let eulerSummary = ScheduleSummary(timesteps: euler.timesteps, config: linspace)
        #expect(zip(eulerSummary.sigmas, euler.sigmas).allSatisfy { abs(Float($0) - $1) <= 1e-6 * $1 })
        #expect(eulerSummary.sigmas == eulerSummary.sigmas.sorted(by: >), "noise falls along the run")
    }

    @Test func chartDrawsEveryPanel() throws {
        let values = [999.0, 800, 600, 400, 200, 1]
        let chart = try lineChart(title: "euler 6 steps", xLabel: "UNet evaluation",
                                  panels: [ChartPanel(title: "timestep t", values: values),
                                           ChartPanel(title: "sigma (log)", values: [14.6, 5, 2, 1, 0.3, 0], logarithmic: true)])
        #expect(chart.width == 760 && chart.height == 36 + 2 * 220 + 24)
        func pixel(_ x: Int, _ y: Int) -> [UInt8] { Array(chart.pixels[(y * chart.width + x) * 3..<(y * chart.width + x) * 3 + 3]) }
        // First value at the top left of the first plot (5% padding above it), last at the bottom right.
        let top = 36 + 16, bottom = top + 169
        let padded = 169.0 * 0.05 / 1.1
        #expect(pixel(96, top + Int(padded.rounded())) == [31, 90, 180])
        #expect(pixel(96 + 639, bottom - Int(padded.rounded())) == [31, 90, 180])
        // The second panel draws in its own colour; its 0 is left out of the logarithmic axis.
        let second = chart.pixels.indices.filter { $0 % 3 == 0 && chart.pixels[$0] == 200 && chart.pixels[$0 + 1] == 50 }
        #expect(!second.isEmpty && second.allSatisfy { $0 / 3 / chart.width >= 36 + 220 })
        #expect(throws: ImageError.self) { try lineChart(title: "", xLabel: "", panels: []) }
        let writtenFolder = FileManager.default.temporaryDirectory.appendingPathComponent("sfumato-chart-\(UUID())")
        try FileManager.default.createDirectory(at: writtenFolder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: writtenFolder) }
        let path = writtenFolder.appendingPathComponent("plot.png").path
        try writePNG(chart, to: path)
        let read = try readPNG(path: path)
        #expect(read.width == chart.width && read.pixels == chart.pixels)
    }
}
