import Dispatch
import Foundation
import Hummingbird
import Logging
import Sfumato
import Synchronization

/// What `sfumato serve` runs: the loaded models behind the AUTOMATIC1111 (`/sdapi/v1`) and OpenAI
/// (`/v1/images`) APIs, with `/health` and Prometheus `/metrics`. Generations go through one
/// `GenerationGate`: `concurrency` at once, `queueDepth` waiting, and 503 with Retry-After beyond.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Generations that may wait for a slot; more get 503.
    public var queueDepth: Int
    /// Generations running at once (each with the process's threads divided among them).
    public var concurrency: Int
    /// When set, every route but /health needs `Authorization: Bearer KEY` (or HTTP basic auth with KEY as password).
    public var apiKey: String?
    /// Largest request body in bytes.
    public var maxBodySize: Int
    /// Limits a request must keep.
    public var maxSteps: Int
    public var maxSide: Int
    public var maxImages: Int
    /// Decode a preview for `progress` every this many steps (0: none; each costs a VAE decode).
    public var previewEvery: Int

    public init(host: String = "127.0.0.1", port: Int = 7860, queueDepth: Int = 8, concurrency: Int = 1, apiKey: String? = nil,
                maxBodySize: Int = 32 << 20, maxSteps: Int = 150, maxSide: Int = 2048, maxImages: Int = 16, previewEvery: Int = 0) {
        self.host = host
        self.port = port
        self.queueDepth = queueDepth
        self.concurrency = concurrency
        self.apiKey = apiKey
        self.maxBodySize = maxBodySize
        self.maxSteps = maxSteps
        self.maxSide = maxSide
        self.maxImages = maxImages
        self.previewEvery = previewEvery
    }
}

/// Per-request facts the handler learns (size, steps, queue wait, run time) for the request's log line.
final class RequestNotes: Sendable {
    private let notes = Mutex<[(String, String)]>([])

    func add(_ key: String, _ value: String) { notes.withLock { $0.append((key, value)) } }

    var all: [(String, String)] { notes.withLock { $0 } }
}

struct ServerContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let notes = RequestNotes()

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }
}

public final class SfumatoServer: Sendable {
    public let configuration: ServerConfiguration
    public let models: ModelRegistry
    let gate: GenerationGate
    let jobs = JobTracker()
    let metrics = ServerMetrics()
    let logger: Logger

    public init(models: ModelRegistry, configuration: ServerConfiguration, logger: Logger = Logger(label: "sfumato.serve")) {
        self.models = models
        self.configuration = configuration
        self.logger = logger
        gate = GenerationGate(concurrency: configuration.concurrency, queueLimit: configuration.queueDepth)
    }

    /// Serves until the calling task is cancelled (or SIGINT/SIGTERM when `handleSignals`);
    /// `onListening` gets the bound port (useful with port 0).
    public func run(handleSignals: Bool = true, onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let router = Router(context: ServerContext.self)
        router.add(middleware: RequestLogMiddleware(server: self))
        router.get("/health") { _, _ in try self.health() }
        router.get("/metrics") { _, _ in self.metricsResponse() }
        addA1111Routes(router)
        addOpenAIRoutes(router)
        let application = Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "sfumato"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
        try await application.runService(gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [])
    }

    func health() throws -> Response {
        let load = gate.load
        return try JSONBody.response(["status": "ok", "models": models.models.map(\.name), "running": load.running, "waiting": load.waiting])
    }

    func metricsResponse() -> Response {
        let load = gate.load
        metrics.queueDepth.set(Double(load.waiting))
        metrics.running.set(Double(load.running))
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                        body: .init(byteBuffer: ByteBuffer(bytes: metrics.registry.emitToBuffer())))
    }

    /// The request body (at most `maxBodySize`), then `operation`, cancelled if the client disconnects.
    func withBody<T: Sendable>(_ request: Request, style: APIError.Style,
                               _ operation: @escaping @Sendable ([UInt8]) async throws -> T) async throws -> T {
        do {
            return try await request.body.consumeWithCancellationOnInboundClose { body in
                let buffer: ByteBuffer
                do { buffer = try await body.collect(upTo: self.configuration.maxBodySize) } catch {
                    throw APIError(status: .contentTooLarge, field: "body",
                                   message: "the body is larger than the limit of \(self.configuration.maxBodySize) bytes")
                }
                return try await operation(Array(buffer.readableBytesView))
            }
        } catch let error as APIError {
            throw error.styled(style)
        }
    }

    /// What one job draws: the requests, run one after the other in one slot of the gate.
    struct JobResult: Sendable {
        var images: [GeneratedImage] = []
        var interrupted = false
    }

    /// Runs `requests` on `model` as one job: waits in the queue (503 when it is full), reports
    /// progress to the tracker, stops at `interrupt` (returning the images made so far) or when the
    /// calling task is cancelled (the client went away).
    func runJob(_ requests: [GenerationRequest], model: ModelRegistry.Model, notes: RequestNotes) async throws -> JobResult {
        let pipeline = model.pipeline
        for request in requests {
            do { try pipeline.validate(request) } catch { throw APIError(status: .unprocessableContent, field: Self.field(of: error), message: error.description) }
        }
        let previewEvery = configuration.previewEvery
        let jobs = self.jobs
        let gate = self.gate
        let metrics = self.metrics
        let queued = DispatchTime.now().uptimeNanoseconds
        let cancelTask = Mutex<(@Sendable () -> Void)?>(nil)
        let id = jobs.begin(images: requests.count, steps: requests.first?.steps ?? 0) { cancelTask.withLock { $0 }?() }
        defer { jobs.end(id) }
        let task = Task<JobResult, any Error> {
            try await gate.withSlot {
                let startedAt = DispatchTime.now().uptimeNanoseconds
                jobs.update(id) { $0.startedAt = startedAt }
                notes.add("queue_wait", String(format: "%.3fs", Double(startedAt - queued) / 1e9))
                var result = JobResult()
                for (index, request) in requests.enumerated() {
                    jobs.update(id) { ($0.image, $0.step) = (index, 0) }
                    do {
                        let image = try await pipeline.generate(request, previewEvery: previewEvery, gate: nil) { event in
                            guard case let .step(step) = event else { return }
                            jobs.update(id) { job in
                                (job.step, job.steps) = (step.step, step.totalSteps)
                                if let preview = step.preview { job.preview = preview }
                            }
                        }
                        result.images.append(image)
                        jobs.finishedImage(seconds: image.elapsed)
                        metrics.generationSeconds.record(image.elapsed)
                        metrics.stepsPerSecond.record(Double(request.steps) / max(image.elapsed, 1e-9))
                    } catch GenerationError.cancelled {
                        result.interrupted = true
                        break
                    }
                }
                notes.add("run_time", String(format: "%.3fs", Double(DispatchTime.now().uptimeNanoseconds - startedAt) / 1e9))
                return result
            }
        }
        cancelTask.withLock { $0 = { task.cancel() } }
        do {
            return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
        } catch let GenerationError.busy(waiting) {
            var error = APIError(status: .serviceUnavailable, field: nil,
                                 message: "the server is busy (\(waiting) generations waiting); retry later")
            error.headers[.retryAfter] = String(jobs.retryAfter)
            throw error
        } catch GenerationError.cancelled {
            // Cancelled while waiting for a slot (interrupt or a client that left).
            return JobResult(images: [], interrupted: true)
        }
    }

    /// The request field a library validation message is about.
    static func field(of error: GenerationError) -> String? {
        let text = error.description
        for (phrase, field) in [("negative prompt", "negative_prompt"), ("prompt", "prompt"), ("steps", "steps"), ("width", "width"),
                                ("height", "height"), ("strength", "denoising_strength"), ("clip skip", "CLIP_stop_at_last_layers"),
                                ("mask", "mask"), ("init image", "init_images"), ("guidance", "cfg_scale")] where text.contains(phrase) {
            return field
        }
        return nil
    }

    /// A seed as A1111 takes it: -1 (or none) draws one.
    static func seed(_ value: Int64?, field: String) throws -> UInt64 {
        guard let value, value != -1 else { return UInt64(UInt32.random(in: 0...UInt32.max)) }
        guard value >= 0 else { throw APIError.invalid(field, "\(field) must be -1 (random) or at least 0, not \(value)") }
        return UInt64(value)
    }

    func checkSize(_ value: Int, field: String) throws {
        guard value >= 8, value <= configuration.maxSide, value % 8 == 0 else {
            throw APIError.invalid(field, "\(field) must be a multiple of 8 between 8 and \(configuration.maxSide), not \(value)")
        }
    }

    func checkSteps(_ value: Int, field: String) throws {
        guard (1...configuration.maxSteps).contains(value) else {
            throw APIError.invalid(field, "\(field) must be between 1 and \(configuration.maxSteps), not \(value)")
        }
    }

    static func base64PNG(_ image: GeneratedImage) throws -> String {
        try image.pngData().base64EncodedString()
    }
}

/// One log line per request (id, method, route, status, what the handler noted, time), and the request counter.
/// With an API key, requests without it are refused here with 401.
struct RequestLogMiddleware: RouterMiddleware {
    typealias Context = ServerContext
    let server: SfumatoServer

    func handle(_ request: Request, context: ServerContext,
                next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now().uptimeNanoseconds
        var status = HTTPResponse.Status.internalServerError
        defer {
            let route = context.endpointPath ?? "unmatched"
            server.metrics.requests(route: route, status: status.code).increment()
            var metadata: Logger.Metadata = ["id": "\(context.id)", "method": "\(request.method)", "route": "\(route)",
                                             "status": "\(status.code)"]
            for (key, value) in context.notes.all { metadata[key] = "\(value)" }
            metadata["time"] = "\(String(format: "%.3fs", Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9))"
            server.logger.info("request", metadata: metadata)
        }
        do {
            try authorize(request)
            let response = try await next(request, context)
            status = response.status
            return response
        } catch let error as any HTTPResponseError {
            status = error.status
            throw error
        }
    }

    private func authorize(_ request: Request) throws {
        guard let key = server.configuration.apiKey, request.uri.path != "/health" else { return }
        let header = request.headers[.authorization] ?? ""
        let basicPassword = header.hasPrefix("Basic ")
            ? Data(base64Encoded: String(header.dropFirst(6))).flatMap { String(data: $0, encoding: .utf8) }?.split(separator: ":", maxSplits: 1).last
            : nil
        guard header == "Bearer \(key)" || basicPassword.map(String.init) == key else {
            var error = APIError(status: .unauthorized, field: "Authorization", message: "missing or wrong API key")
            if request.uri.path.hasPrefix("/v1/") { error.style = .openAI }
            error.headers[.wwwAuthenticate] = "Bearer"
            throw error
        }
    }
}
