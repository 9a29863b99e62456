import ArgumentParser
import Foundation
import Sfumato

/// `sfumato bench`: the seconds per component of a generation, so engines and machines can be
/// compared by steps per second. A benchmark, never a test: nothing here passes or fails on speed.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the text encoder, one guidance step of the UNet and the VAE decode of a model.",
        discussion: """
        Loads the model once, then times each component separately: the text encoder on two prompts \
        (2x77 tokens), one classifier-free-guidance UNet step (batch 2) and the VAE decode, each the median \
        of --steps runs after a warm-up. GFLOP/s count the multiply-adds of our own graph (convolutions \
        as direct convolutions, whichever algorithm runs), set beside the sgemm rate measured at start. \
        Measure with OPENBLAS_CORETYPE unset and the machine otherwise idle.
        """
    )

    @Option(help: "A diffusers model folder or single-file checkpoint. Default: the embedded default model.")
    var model: String?

    @Option(help: "Tokenizer folder, for single-file checkpoints.")
    var tokenizer: String?

    @Option(help: "Image width in pixels. Default: the model's native size.")
    var width: Int?

    @Option(help: "Image height in pixels. Default: the model's native size.")
    var height: Int?

    @Option(help: "Timed runs of each component after its warm-up; the median is reported.")
    var steps = 3

    @Option(help: "Threads for BLAS and our own loops. Default: all cores.")
    var threads: Int?

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    @Flag(help: "Add a per-operator table (time, calls, share, GFLOP/s) from one more profiled run of each component.")
    var profile = false

    @Option(help: "A saved `sfumato bench --json` result (another machine or build) to print ratios against.")
    var compare: String?

    func validate() throws {
        guard (1...100).contains(steps) else { throw ValidationError("--steps must be between 1 and 100") }
        try checkThreads(threads)
        try checkImageSize(width: width, height: height)
    }

    func run() throws {
        // Read the comparison first: a bad file should fail before minutes of timing.
        let baseline = try compare.map { path in try BenchResult.read(path) }
        if let threads { Runtime.setThreads(threads) }
        let blas = BLASInfo.current()
        let log: (String) -> Void = { line in
            if json { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { print(line) }
        }
        if let warning = blas.warning { log(warning) }
        let sgemm = SgemmProbe.gflops(size: 2048)

        let modelPath = try model ?? DefaultModel.path()
        let loadStart = DispatchTime.now().uptimeNanoseconds
        let pipeline = try StableDiffusionPipeline(files: try ModelFiles(path: modelPath, tokenizer: tokenizer))
        let loadSeconds = seconds(since: loadStart)
        let width = width ?? pipeline.defaultWidth, height = height ?? pipeline.defaultHeight
        try pipeline.validate(GenerationRequest(prompt: "", width: width, height: height))
        log("\(CPUInfo.modelName); OpenBLAS \(blas.coreName), \(blas.threads) threads; sgemm 2048^3 "
            + String(format: "%.1f GFLOP/s; model loaded in %.1f s", sgemm, loadSeconds))

        // Fixed inputs: the work does not depend on the values, but random ones avoid denormal shortcuts.
        let prompts = ["", "a photograph of an astronaut riding a horse"]
        var random = TorchRandom(seed: 0)
        let latentShape = [1, pipeline.unet.config.inChannels, height / pipeline.vaeScaleFactor, width / pipeline.vaeScaleFactor]
        let latents = random.normal(shape: latentShape)
        let batch = concat([latents, latents], axis: 0)
        let conditioning = try pipeline.encodePrompts(prompts)
        let context = concat(conditioning.map(\.states), axis: 0)
        // SDXL: the pooled text embeddings and size conditioning of both halves.
        let added = pipeline.addedConditions(conditioning, width: width, height: height).map(UNetAddedConditions.batched)
        pipeline.releaseTextEncoderMemory()
        let timestep = 500.0

        let components: [Component] = [
            // Each run starts as a generation does: the weights out of resident memory since the last prompt.
            Component(name: "text encoder", key: "text_encode", detail: "2x77 tokens") {
                pipeline.releaseTextEncoderMemory()
                _ = try pipeline.encodePrompts(prompts)
            },
            Component(name: "UNet guidance step", key: "unet_step", detail: "batch 2 at \(latentShape[2])x\(latentShape[3]) latents") {
                _ = try pipeline.unet(batch, timestep: timestep, encoderHiddenStates: context, addedConditions: added)
            },
            Component(name: "VAE decode", key: "vae_decode", detail: "\(width)x\(height)") { _ = try pipeline.vae.decode(latents) },
        ]
        var timings: [String: ComponentTiming] = [:]
        for component in components {
            log("timing \(component.name) (\(component.detail)): warm-up + \(steps) runs")
            timings[component.key] = try component.measure(runs: steps, profiled: profile)
            // As in a generation: the text encoder is out of resident memory while the UNet and the VAE run.
            pipeline.releaseTextEncoderMemory()
        }

        let result = BenchResult(
            model: modelPath, width: width, height: height, runs: steps,
            textEncodeSeconds: timings["text_encode"]!.median, unetStepSeconds: timings["unet_step"]!.median,
            vaeDecodeSeconds: timings["vae_decode"]!.median,
            textEncodeGFLOP: timings["text_encode"]!.flops / 1e9, unetStepGFLOP: timings["unet_step"]!.flops / 1e9,
            vaeDecodeGFLOP: timings["vae_decode"]!.flops / 1e9,
            sgemmGFLOPS: sgemm, peakRSSBytes: ProcessMemory.peakResidentBytes, loadSeconds: loadSeconds,
            cpu: CPUInfo.modelName, blasCore: blas.coreName, threads: blas.threads,
            date: ISO8601DateFormatter().string(from: Date()),
            profile: profile ? timings.mapValues { $0.profile.map(BenchResult.ProfileRow.init) } : nil)

        if json {
            print(try result.jsonString())
        } else {
            print(result.table(details: Dictionary(uniqueKeysWithValues: components.map { ($0.key, $0.detail) })))
            if profile {
                for component in components { print(result.profileTable(component.key, title: component.name)) }
            }
        }
        if let baseline { log(result.ratios(against: baseline, baselineName: compare ?? "")) }
    }
}

private func seconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

/// One timed part of a generation.
private struct Component {
    let name: String
    /// Prefix of its JSON keys.
    let key: String
    let detail: String
    let body: () throws -> Void

    /// Warm-up (which also counts the FLOPs), `runs` timed runs, and one profiled run when asked.
    func measure(runs: Int, profiled: Bool) throws -> ComponentTiming {
        let counter = OpProfile(timed: false)
        try OpProfile.$current.withValue(counter) { try body() }
        var times: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(seconds(since: start))
        }
        var entries: [OpProfile.Entry] = []
        if profiled {
            let profile = OpProfile()
            try OpProfile.$current.withValue(profile) { try body() }
            entries = profile.entries
        }
        return ComponentTiming(median: times.sorted()[times.count / 2], flops: counter.totalFLOPs, profile: entries)
    }
}

private struct ComponentTiming {
    let median: Double
    let flops: Double
    let profile: [OpProfile.Entry]
}

/// What `sfumato bench --json` prints, and what `--compare` reads back.
struct BenchResult: Codable {
    struct ProfileRow: Codable {
        let name: String
        let calls: Int
        let seconds: Double
        let flops: Double
        init(_ entry: OpProfile.Entry) { (name, calls, seconds, flops) = (entry.name, entry.calls, entry.seconds, entry.flops) }
    }

    var model: String?
    var width: Int?
    var height: Int?
    var runs: Int?
    var textEncodeSeconds: Double
    var unetStepSeconds: Double
    var vaeDecodeSeconds: Double
    var textEncodeGFLOP: Double?
    var unetStepGFLOP: Double?
    var vaeDecodeGFLOP: Double?
    var sgemmGFLOPS: Double?
    var peakRSSBytes: Int?
    var loadSeconds: Double?
    var cpu: String?
    var blasCore: String?
    var threads: Int?
    var date: String?
    var profile: [String: [ProfileRow]]?

    /// One UNet evaluation per denoising step (with guidance, of the batch of two).
    var stepsPerSecond: Double { 1 / unetStepSeconds }
    /// GFLOP/s of the UNet step, the figure that decides generation speed.
    var gflops: Double? { unetStepGFLOP.map { $0 / unetStepSeconds } }

    enum CodingKeys: String, CodingKey {
        case model, width, height, runs, cpu, threads, date, profile
        case textEncodeSeconds = "text_encode_seconds", unetStepSeconds = "unet_step_seconds"
        case vaeDecodeSeconds = "vae_decode_seconds", textEncodeGFLOP = "text_encode_gflop"
        case unetStepGFLOP = "unet_step_gflop", vaeDecodeGFLOP = "vae_decode_gflop"
        case sgemmGFLOPS = "sgemm_gflops", peakRSSBytes = "peak_rss_bytes", loadSeconds = "load_seconds"
        case blasCore = "blas_core", stepsPerSecond = "steps_per_second", gflops
    }

    init(model: String, width: Int, height: Int, runs: Int, textEncodeSeconds: Double, unetStepSeconds: Double,
         vaeDecodeSeconds: Double, textEncodeGFLOP: Double, unetStepGFLOP: Double, vaeDecodeGFLOP: Double,
         sgemmGFLOPS: Double, peakRSSBytes: Int, loadSeconds: Double, cpu: String, blasCore: String, threads: Int,
         date: String, profile: [String: [ProfileRow]]?) {
        (self.model, self.width, self.height, self.runs) = (model, width, height, runs)
        (self.textEncodeSeconds, self.unetStepSeconds, self.vaeDecodeSeconds) = (textEncodeSeconds, unetStepSeconds, vaeDecodeSeconds)
        (self.textEncodeGFLOP, self.unetStepGFLOP, self.vaeDecodeGFLOP) = (textEncodeGFLOP, unetStepGFLOP, vaeDecodeGFLOP)
        (self.sgemmGFLOPS, self.peakRSSBytes, self.loadSeconds) = (sgemmGFLOPS, peakRSSBytes, loadSeconds)
        (self.cpu, self.blasCore, self.threads, self.date, self.profile) = (cpu, blasCore, threads, date, profile)
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decodeIfPresent(String.self, forKey: .model)
        width = try c.decodeIfPresent(Int.self, forKey: .width)
        height = try c.decodeIfPresent(Int.self, forKey: .height)
        runs = try c.decodeIfPresent(Int.self, forKey: .runs)
        textEncodeSeconds = try c.decode(Double.self, forKey: .textEncodeSeconds)
        unetStepSeconds = try c.decode(Double.self, forKey: .unetStepSeconds)
        vaeDecodeSeconds = try c.decode(Double.self, forKey: .vaeDecodeSeconds)
        textEncodeGFLOP = try c.decodeIfPresent(Double.self, forKey: .textEncodeGFLOP)
        unetStepGFLOP = try c.decodeIfPresent(Double.self, forKey: .unetStepGFLOP)
        vaeDecodeGFLOP = try c.decodeIfPresent(Double.self, forKey: .vaeDecodeGFLOP)
        sgemmGFLOPS = try c.decodeIfPresent(Double.self, forKey: .sgemmGFLOPS)
        peakRSSBytes = try c.decodeIfPresent(Int.self, forKey: .peakRSSBytes)
        loadSeconds = try c.decodeIfPresent(Double.self, forKey: .loadSeconds)
        cpu = try c.decodeIfPresent(String.self, forKey: .cpu)
        blasCore = try c.decodeIfPresent(String.self, forKey: .blasCore)
        threads = try c.decodeIfPresent(Int.self, forKey: .threads)
        date = try c.decodeIfPresent(String.self, forKey: .date)
        profile = try c.decodeIfPresent([String: [ProfileRow]].self, forKey: .profile)
        for (key, value) in [(CodingKeys.textEncodeSeconds, textEncodeSeconds), (.unetStepSeconds, unetStepSeconds),
                             (.vaeDecodeSeconds, vaeDecodeSeconds)] where !(value.isFinite && value > 0) {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: "must be a positive number of seconds")
        }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(model, forKey: .model)
        try c.encodeIfPresent(width, forKey: .width)
        try c.encodeIfPresent(height, forKey: .height)
        try c.encodeIfPresent(runs, forKey: .runs)
        try c.encode(textEncodeSeconds, forKey: .textEncodeSeconds)
        try c.encode(unetStepSeconds, forKey: .unetStepSeconds)
        try c.encode(vaeDecodeSeconds, forKey: .vaeDecodeSeconds)
        try c.encode(stepsPerSecond, forKey: .stepsPerSecond)
        try c.encodeIfPresent(gflops, forKey: .gflops)
        try c.encodeIfPresent(textEncodeGFLOP, forKey: .textEncodeGFLOP)
        try c.encodeIfPresent(unetStepGFLOP, forKey: .unetStepGFLOP)
        try c.encodeIfPresent(vaeDecodeGFLOP, forKey: .vaeDecodeGFLOP)
        try c.encodeIfPresent(sgemmGFLOPS, forKey: .sgemmGFLOPS)
        try c.encodeIfPresent(peakRSSBytes, forKey: .peakRSSBytes)
        try c.encodeIfPresent(loadSeconds, forKey: .loadSeconds)
        try c.encodeIfPresent(cpu, forKey: .cpu)
        try c.encodeIfPresent(blasCore, forKey: .blasCore)
        try c.encodeIfPresent(threads, forKey: .threads)
        try c.encodeIfPresent(date, forKey: .date)
        try c.encodeIfPresent(profile, forKey: .profile)
    }

    static func read(_ path: String) throws -> BenchResult {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ValidationError("--compare: cannot read \(path): \(error.localizedDescription)")
        }
        do { return try JSONDecoder().decode(BenchResult.self, from: data) } catch {
            throw ValidationError("--compare: \(path) is not a `sfumato bench --json` result: \(error)")
        }
    }

    func jsonString() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    func table(details: [String: String]) -> String {
        var lines = ["| component | shape | median s | GFLOP | GFLOP/s | % of sgemm |", "|---|---|---|---|---|---|"]
        for (name, key, time, work) in [("text encoder", "text_encode", textEncodeSeconds, textEncodeGFLOP),
                                        ("UNet guidance step", "unet_step", unetStepSeconds, unetStepGFLOP),
                                        ("VAE decode", "vae_decode", vaeDecodeSeconds, vaeDecodeGFLOP)] {
            let rate = (work ?? 0) / time
            let share = sgemmGFLOPS.map { String(format: "%.0f%%", 100 * rate / $0) } ?? "-"
            lines.append("| \(name) | \(details[key] ?? "") | " + String(format: "%.3f | %.1f | %.1f | ", time, work ?? 0, rate) + share + " |")
        }
        lines.append(String(format: "\n%.3f steps/s; peak resident memory %.2f GB; ", stepsPerSecond, Double(peakRSSBytes ?? 0) / 1e9)
            + "\(cpu ?? "?"), OpenBLAS \(blasCore ?? "?"), \(threads ?? 0) threads")
        return lines.joined(separator: "\n")
    }

    func profileTable(_ key: String, title: String) -> String {
        guard let rows = profile?[key], !rows.isEmpty else { return "" }
        let total = rows.reduce(0) { $0 + $1.seconds }
        var lines = ["\n\(title): per operator (one profiled run, \(String(format: "%.3f", total)) s in ops)",
                     "| operator | calls | seconds | share | GFLOP/s |", "|---|---|---|---|---|"]
        for row in rows {
            let rate = row.flops > 0 && row.seconds > 0 ? String(format: "%.1f", row.flops / row.seconds / 1e9) : "-"
            lines.append("| \(row.name) | \(row.calls) | " + String(format: "%.4f | %.1f%% | ", row.seconds, 100 * row.seconds / max(total, 1e-12)) + rate + " |")
        }
        return lines.joined(separator: "\n")
    }

    /// Baseline time / our time per component: above 1 means this run is faster.
    func ratios(against other: BenchResult, baselineName: String) -> String {
        var lines = ["\nagainst \(baselineName) (\(other.cpu ?? "unknown CPU"), \(other.blasCore ?? "?"), \(other.threads.map(String.init) ?? "?") threads):"]
        for (name, ours, theirs) in [("text encoder", textEncodeSeconds, other.textEncodeSeconds),
                                     ("UNet guidance step", unetStepSeconds, other.unetStepSeconds),
                                     ("VAE decode", vaeDecodeSeconds, other.vaeDecodeSeconds)] {
            let ratio = theirs / ours
            lines.append("  \(name): " + String(format: "%.3f s vs %.3f s: %.2fx ", ours, theirs, ratio >= 1 ? ratio : 1 / ratio)
                + (ratio >= 1 ? "faster" : "slower"))
        }
        if (other.width, other.height) != (width, height) {
            lines.append("  note: sizes differ (\(other.width ?? 0)x\(other.height ?? 0) there, \(width ?? 0)x\(height ?? 0) here)")
        }
        return lines.joined(separator: "\n")
    }
}
