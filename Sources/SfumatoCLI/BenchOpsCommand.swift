import ArgumentParser
import Foundation
import Sfumato

/// `make bench`: the operators that dominate a UNet step, beside the machine's own sgemm rate.
/// A benchmark, never a test: nothing here passes or fails on speed.
struct BenchOpsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-ops",
        abstract: "Time the heaviest operators (3x3 convolution, self-attention) and compare with sgemm GFLOP/s."
    )

    @Option(help: "Timed repetitions per operator (after one warm-up); the median is reported.")
    var repeats = 5

    @Option(help: "Threads for BLAS and our own loops. Default: all cores.")
    var threads: Int?

    func validate() throws {
        guard (1...100).contains(repeats) else { throw ValidationError("--repeats must be between 1 and 100") }
        if let threads, threads < 1 || threads > 1024 { throw ValidationError("--threads must be between 1 and 1024") }
    }

    func run() throws {
        if let threads { Runtime.setThreads(threads) }
        let info = BLASInfo.current()
        if let warning = info.warning { print(warning) }
        let peak = SgemmProbe.gflops(size: 2048)
        print("OpenBLAS core \(info.coreName), \(info.threads) threads; sgemm 2048^3: \(String(format: "%.1f", peak)) GFLOP/s\n")
        print("| operator | shape | median ms | CPU ms | GFLOP/s | % of sgemm |")
        print("|---|---|---|---|---|---|")

        var random = TorchRandom(seed: 0)
        let image = random.normal(shape: [1, 320, 64, 64])
        let weight = scaled(random.normal(shape: [320, 320, 3, 3]), by: 0.02)
        let bias = random.normal(shape: [320])
        row("conv2d 3x3", "320->320 at 64x64, batch 1", flops: 2 * 320 * 320 * 9 * 64 * 64, peak: peak) {
            _ = conv2d(image, weight: weight, bias: bias, stride: 1, padding: 1)
        }

        // The UNet's linear layers at 512x512 (batch 2): attention projections and the feed-forward.
        for (rows, inputs, outputs) in [(8192, 320, 320), (8192, 320, 2560), (8192, 1280, 320), (2048, 640, 640),
                                        (2048, 640, 5120), (512, 1280, 1280), (512, 1280, 10240)] {
            let x = random.normal(shape: [rows, inputs])
            let w = scaled(random.normal(shape: [outputs, inputs]), by: 0.02)
            row("linear", "\(rows)x\(inputs) -> \(outputs)", flops: 2 * rows * inputs * outputs, peak: peak) {
                _ = linear(x, weight: w, bias: nil)
            }
        }

        let (tokens, heads, headDim) = (4096, 8, 40)
        let q = random.normal(shape: [1, tokens, heads * headDim])
        let k = random.normal(shape: [1, tokens, heads * headDim])
        let v = random.normal(shape: [1, tokens, heads * headDim])
        for path in KernelPath.allCases {
            row("self-attention (\(path.rawValue))", "\(tokens) tokens, \(heads) heads of \(headDim)",
                flops: 2 * 2 * tokens * tokens * headDim * heads, peak: peak) {
                Kernels.$path.withValue(path) { _ = attention(query: q, key: k, value: v, heads: heads) }
            }
        }
    }

    /// Times `body` and prints one table row; GEMM FLOPs only (softmax, im2col and bias are overhead).
    /// CPU ms is the process's CPU time per run (all threads): on a busy machine it moves less than
    /// the wall-clock median.
    func row(_ name: String, _ shape: String, flops: Int, peak: Double, _ body: () -> Void) {
        body()
        var times: [Double] = []
        var cpuTimes: [Double] = []
        for _ in 0..<repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            let cpuStart = processCPUSeconds()
            body()
            cpuTimes.append(processCPUSeconds() - cpuStart)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        let median = times.sorted()[times.count / 2]
        let cpu = cpuTimes.sorted()[cpuTimes.count / 2]
        let gflops = Double(flops) / median / 1e9
        print("| \(name) | \(shape) | " + String(format: "%.1f | %.1f | %.1f | %.0f%% |", median * 1000, cpu * 1000, gflops, 100 * gflops / peak))
    }

    private func processCPUSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
