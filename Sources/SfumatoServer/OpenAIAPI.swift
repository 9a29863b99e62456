import Foundation
import Hummingbird
import Sfumato

/// OpenAI's `POST /v1/images/generations`, with our knobs as top-level fields (what the `openai`
/// client sends through `extra_body`).
struct OpenAIImageRequest: Decodable {
    var prompt: String
    var model: String?
    var n: Int?
    var size: String?
    var response_format: String?
    var negative_prompt: String?
    var steps: Int?
    var seed: Int64?
    var guidance_scale: Double?
    var sampler: String?
}

extension SfumatoServer {
    func addOpenAIRoutes(_ router: Router<ServerContext>) {
        router.post("/v1/images/generations") { request, context in
            try await self.withBody(request, style: .openAI) { body in
                do { return try await self.openAIGenerate(body, notes: context.notes) } catch let error as APIError {
                    throw error.styled(.openAI)
                }
            }
        }
        router.get("/v1/models") { _, _ in
            try JSONBody.response(["object": "list", "data": self.models.models.map { model -> [String: Any] in
                ["id": model.name, "object": "model", "created": model.loadedAt, "owned_by": "sfumato"]
            }])
        }
    }

    /// An image generation body read and checked, before any generation: the runs it asks for.
    package func openAIJob(_ body: [UInt8]) throws -> (model: ModelRegistry.Model, requests: [GenerationRequest]) {
        let fields = try JSONBody.decode(OpenAIImageRequest.self, from: body)
        let model = try models.model(named: fields.model, field: "model")
        let count = fields.n ?? 1
        guard (1...min(10, configuration.maxImages)).contains(count) else {
            throw APIError.invalid("n", "n must be between 1 and \(min(10, configuration.maxImages)), not \(count)")
        }
        if let format = fields.response_format, format != "b64_json" {
            throw APIError.invalid("response_format", "response_format must be b64_json (this server keeps no files to link), not \(format)")
        }
        var width: Int?, height: Int?
        if let size = fields.size, size != "auto" {
            let parts = size.lowercased().split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2 else { throw APIError.invalid("size", "size must be WIDTHxHEIGHT such as 512x512, not \(size)") }
            try checkSize(parts[0], field: "size")
            try checkSize(parts[1], field: "size")
            (width, height) = (parts[0], parts[1])
        }
        let steps = fields.steps ?? 20
        try checkSteps(steps, field: "steps")
        let scale = fields.guidance_scale ?? 7
        guard scale.isFinite, (0...50).contains(scale) else {
            throw APIError.invalid("guidance_scale", "guidance_scale must be between 0 and 50, not \(scale)")
        }
        let kind = try Samplers.resolve(sampler: fields.sampler, field: "sampler", scheduler: nil)
        let firstSeed = try Self.seed(fields.seed, field: "seed")
        let requests = (0..<count).map { index in
            GenerationRequest(prompt: fields.prompt, negativePrompt: fields.negative_prompt ?? "", steps: steps, guidanceScale: Float(scale),
                              seed: firstSeed + UInt64(index), width: width, height: height, scheduler: kind)
        }
        return (model, requests)
    }

    func openAIGenerate(_ body: [UInt8], notes: RequestNotes) async throws -> Response {
        let (model, requests) = try openAIJob(body)
        let (count, steps) = (requests.count, requests[0].steps)
        let size = model.pipeline.outputSize(requests[0])
        notes.add("size", "\(size.width)x\(size.height)")
        notes.add("steps", "\(steps)")
        notes.add("images", "\(count)")
        let result = try await runJob(requests, model: model, notes: notes)
        if result.interrupted, result.images.isEmpty {
            throw APIError(status: .serviceUnavailable, field: nil, message: "the generation was interrupted")
        }
        return try JSONBody.response(["created": Int(Date().timeIntervalSince1970),
                                      "data": try result.images.map { ["b64_json": try Self.base64PNG($0), "revised_prompt": $0.request.prompt] }])
    }
}
