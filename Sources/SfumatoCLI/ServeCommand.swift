import ArgumentParser
import Foundation
import Logging
import Sfumato
import SfumatoServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Keep models loaded and serve the AUTOMATIC1111 (/sdapi/v1) and OpenAI (/v1/images) image APIs over HTTP.",
        discussion: """
        Routes: POST /sdapi/v1/txt2img and img2img, GET progress, POST interrupt, GET/POST options, GET sd-models, \
        samplers, schedulers; POST /v1/images/generations and GET /v1/models; GET /health and GET /metrics (Prometheus). \
        Without --model the embedded default model is served; several --model load several models, chosen per request \
        (override_settings.sd_model_checkpoint, options' sd_model_checkpoint, or OpenAI's model). Generations run \
        --concurrency at a time; up to --queue-depth more wait, and further requests get 503 with Retry-After. \
        Bad requests get a 4xx JSON error naming the field. One log line per request goes to stderr. See docs/deploy.md.
        """
    )

    @Option(name: .customLong("model"), help: "A diffusers model folder or single-file .safetensors checkpoint; repeatable. Default: the embedded model.")
    var models: [String] = []

    @Option(help: "Tokenizer folder for single-file checkpoints without a tokenizer/ beside them.")
    var tokenizer: String?

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port, printed at start).")
    var port = 7860

    @Option(help: "Generations that may wait for a slot; more get 503 with Retry-After.")
    var queueDepth = 8

    @Option(help: "Generations running at once; the threads are divided among them.")
    var concurrency = 1

    @Option(help: "Require this key: Authorization: Bearer KEY (or HTTP basic auth with KEY as the password). /health stays open.")
    var apiKey: String?

    @Option(help: "Largest request body in megabytes.")
    var maxBodyMb = 32

    @Option(help: "Most denoising steps a request may ask for.")
    var maxSteps = 150

    @Option(help: "Decode a preview for /sdapi/v1/progress every N steps (0: none; each costs a VAE decode).")
    var previewEvery = 0

    @Option(help: "Threads for BLAS and our own loops. Default: all cores.")
    var threads: Int?

    func validate() throws {
        guard (1...65535).contains(port) || port == 0 else { throw ValidationError("--port must be between 0 and 65535") }
        guard queueDepth >= 0, queueDepth <= 10_000 else { throw ValidationError("--queue-depth must be between 0 and 10000") }
        guard concurrency >= 1, concurrency <= 64 else { throw ValidationError("--concurrency must be between 1 and 64") }
        guard maxBodyMb >= 1, maxBodyMb <= 1024 else { throw ValidationError("--max-body-mb must be between 1 and 1024") }
        guard maxSteps >= 1, maxSteps <= 1000 else { throw ValidationError("--max-steps must be between 1 and 1000") }
        guard previewEvery >= 0 else { throw ValidationError("--preview-every must be at least 0") }
        if let apiKey, apiKey.isEmpty { throw ValidationError("--api-key must not be empty") }
        try checkThreads(threads)
    }

    func run() async throws {
        if let threads { Runtime.setThreads(threads) }
        var logger = Logger(label: "sfumato.serve")
        logger.logLevel = .info
        let paths = models.isEmpty ? [try DefaultModel.path()] : models
        var loaded: [(path: String, pipeline: StableDiffusionPipeline)] = []
        for path in paths {
            let start = Date()
            let pipeline = try StableDiffusionPipeline(files: try ModelFiles(path: path, tokenizer: tokenizer))
            logger.info("loaded \(pipeline.modelName) in \(String(format: "%.1f s", Date().timeIntervalSince(start)))")
            loaded.append((path, pipeline))
        }
        let configuration = ServerConfiguration(host: host, port: port, queueDepth: queueDepth, concurrency: concurrency, apiKey: apiKey,
                                                maxBodySize: maxBodyMb << 20, maxSteps: maxSteps, previewEvery: previewEvery)
        let server = SfumatoServer(models: ModelRegistry(pipelines: loaded), configuration: configuration, logger: logger)
        let (host, announcer) = (self.host, logger)
        try await server.run { port in announcer.info("listening on http://\(host):\(port)") }
    }
}
