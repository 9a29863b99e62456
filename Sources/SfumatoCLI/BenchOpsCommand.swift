import ArgumentParser
import Foundation
import Sfumato

/// `make bench`: the operators that dominate a UNet step, beside the machine's own sgemm rate.
/// A benchmark, never a test: nothing here passes or fails on speed.
struct BenchOpsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-ops",
        abstract: "Time the heaviest operators (3x3 convolution by im2col and by Winograd, self-attention) and compare with sgemm GFLOP/s."
    )

    @Option(help: "Timed repetitions per operator (after one warm-up); the median is reported.")
    var repeats = 5

    @Option(help: "Threads for BLAS and our own loops. Default: all cores.")
    var threads: Int?

    @Option(help: "Time only the operators whose name contains this text (for example `linear` or `1x1`).")
    var only: String?

    func validate() throws {
        guard (1...100).contains(repeats) else { throw ValidationError("--repeats must be between 1 and 100") }
        try checkThreads(threads)
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
        // 3x3 convolutions of SD 1.5 (UNet at batch 2 for CFG, VAE decoder at batch 1), both algorithms
        // timed in turn on the same tensors so that background load hits both alike.
        for (batch, inChannels, outChannels, size) in [
            (2, 320, 320, 64), (2, 640, 640, 32), (2, 1280, 1280, 16), (2, 1280, 1280, 8), (2, 640, 320, 64),
            (1, 512, 512, 64), (1, 512, 512, 128), (1, 256, 256, 256), (1, 128, 128, 512), (1, 256, 128, 512),
        ] {
            let x = random.normal(shape: [batch, inChannels, size, size])
            let w = scaled(random.normal(shape: [outChannels, inChannels, 3, 3]), by: 0.02)
            let b = random.normal(shape: [outChannels])
            let shape = "\(inChannels)->\(outChannels) at \(size)x\(size), batch \(batch)"
            rows(["conv2d im2col", "conv2d winograd"], shape, flops: 2 * batch * outChannels * inChannels * 9 * size * size, peak: peak, [
                { Kernels.$path.withValue(.reference) { _ = conv2d(x, weight: w, bias: b, stride: 1, padding: 1) } },
                { _ = winogradConv3x3(x, weight: w, bias: b) },
            ])
        }

        // The UNet's linear layers at 512x512 (batch 2): attention projections (the output projection adds
        // the residual) and the feed-forward, with their biases.
        for (rows, inputs, outputs, residual) in [(8192, 320, 320, true), (8192, 320, 2560, false), (8192, 1280, 320, true),
                                                  (2048, 640, 640, true), (2048, 640, 5120, false), (512, 1280, 1280, true),
                                                  (512, 1280, 10240, false)] {
            let x = random.normal(shape: [rows, inputs])
            let w = scaled(random.normal(shape: [outputs, inputs]), by: 0.02)
            let b = random.normal(shape: [outputs])
            let r = residual ? random.normal(shape: [rows, outputs]) : nil
            row(residual ? "linear + residual" : "linear", "\(rows)x\(inputs) -> \(outputs)", flops: 2 * rows * inputs * outputs, peak: peak) {
                _ = linear(x, weight: w, bias: b, residual: r)
            }
        }

        // 1x1 convolutions: the transformers' projections in the UNet and the VAE decoder's shortcuts.
        for (batch, inChannels, outChannels, size) in [(2, 320, 320, 64), (1, 512, 256, 256), (1, 256, 128, 512)] {
            let x = random.normal(shape: [batch, inChannels, size, size])
            let w = scaled(random.normal(shape: [outChannels, inChannels, 1, 1]), by: 0.02)
            let b = random.normal(shape: [outChannels])
            row("conv2d 1x1", "\(inChannels)->\(outChannels) at \(size)x\(size), batch \(batch)",
                flops: 2 * batch * outChannels * inChannels * size * size, peak: peak) {
                _ = conv2d(x, weight: w, bias: b)
            }
        }

        let (tokens, heads, headDim) = (4096, 8, 40)
        let q = random.normal(shape: [1, tokens, heads * headDim])
        let k = random.normal(shape: [1, tokens, heads * headDim])
        let v = random.normal(shape: [1, tokens, heads * headDim])
        rows(KernelPath.allCases.map { "self-attention (\($0.rawValue))" }, "\(tokens) tokens, \(heads) heads of \(headDim)",
             flops: 2 * 2 * tokens * tokens * headDim * heads, peak: peak,
             KernelPath.allCases.map { path in { Kernels.$path.withValue(path) { _ = attention(query: q, key: k, value: v, heads: heads) } } })
    }

    /// Times `body` and prints one table row; GEMM FLOPs only (softmax, im2col and bias are overhead).
    func row(_ name: String, _ shape: String, flops: Int, peak: Double, _ body: @escaping () -> Void) {
        rows([name], shape, flops: flops, peak: peak, [body])
    }

    /// Times the bodies in turn (one warm-up each, then A, B, A, B, ...) and prints a row for each.
    /// `flops` is the same for all, so that a faster algorithm shows as a higher effective GFLOP/s.
    /// CPU ms is the process's CPU time per run (all threads): on a busy machine it moves less than
    /// the wall-clock median.
    func rows(_ names: [String], _ shape: String, flops: Int, peak: Double, _ bodies: [() -> Void]) {
        if let only, !names.contains(where: { $0.contains(only) }) { return }
        for body in bodies { body() }
        var times = [[Double]](repeating: [], count: bodies.count)
        var cpuTimes = times
        for _ in 0..<repeats {
            for (index, body) in bodies.enumerated() {
                let start = DispatchTime.now().uptimeNanoseconds
                let cpuStart = processCPUSeconds()
                body()
                cpuTimes[index].append(processCPUSeconds() - cpuStart)
                times[index].append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            }
        }
        for (name, (samples, cpuSamples)) in zip(names, zip(times, cpuTimes)) {
            let median = samples.sorted()[samples.count / 2]
            let cpu = cpuSamples.sorted()[cpuSamples.count / 2]
            let gflops = Double(flops) / median / 1e9
            print("| \(name) | \(shape) | " + String(format: "%.1f | %.1f | %.1f | %.0f%% |", median * 1000, cpu * 1000, gflops, 100 * gflops / peak))
        }
    }

    private func processCPUSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
