import Foundation
import Hummingbird
import Sfumato

/// AUTOMATIC1111's `/sdapi/v1` fields as clients send them; unknown fields are ignored, as A1111 ignores
/// options it cannot apply (hires fix, face restoration, ...).
struct A1111Request: Decodable {
    struct OverrideSettings: Decodable {
        var sd_model_checkpoint: String?
        var CLIP_stop_at_last_layers: Int?
    }

    var prompt: String?
    var negative_prompt: String?
    var seed: Int64?
    var sampler_name: String?
    var sampler_index: String?
    var scheduler: String?
    var steps: Int?
    var cfg_scale: Double?
    var width: Int?
    var height: Int?
    var batch_size: Int?
    var n_iter: Int?
    var override_settings: OverrideSettings?
    // img2img
    var init_images: [String]?
    var denoising_strength: Double?
    var mask: String?
    var inpainting_mask_invert: Int?
}

struct A1111Options: Decodable {
    var sd_model_checkpoint: String?
}

extension SfumatoServer {
    func addA1111Routes(_ router: Router<ServerContext>) {
        let api = router.group("/sdapi/v1")
        api.post("txt2img") { request, context in
            try await self.withBody(request, style: .a1111) { body in try await self.a1111Generate(body, img2img: false, notes: context.notes) }
        }
        api.post("img2img") { request, context in
            try await self.withBody(request, style: .a1111) { body in try await self.a1111Generate(body, img2img: true, notes: context.notes) }
        }
        api.get("progress") { _, _ in try self.a1111Progress() }
        api.post("interrupt") { _, _ in
            self.jobs.interruptRunning()
            return try JSONBody.response([String: Any]())
        }
        api.post("skip") { _, _ in
            self.jobs.interruptRunning()
            return try JSONBody.response([String: Any]())
        }
        api.get("options") { _, _ in
            let model = self.models.currentModel
            return try JSONBody.response(["sd_model_checkpoint": model.name, "samples_format": "png", "CLIP_stop_at_last_layers": 1])
        }
        api.post("options") { request, _ in
            try await self.withBody(request, style: .a1111) { body in
                let options = try JSONBody.decode(A1111Options.self, from: body)
                if let name = options.sd_model_checkpoint { try self.models.select(name, field: "sd_model_checkpoint") }
                return try JSONBody.response([String: Any]())
            }
        }
        api.get("sd-models") { _, _ in
            try JSONBody.response(self.models.models.map { model -> [String: Any] in
                ["title": model.name, "model_name": model.name, "hash": NSNull(), "sha256": NSNull(),
                 "filename": model.path, "config": NSNull()]
            })
        }
        api.get("samplers") { _, _ in
            try JSONBody.response(SchedulerKind.allCases.map { kind -> [String: Any] in
                ["name": kind.a1111Name, "aliases": Samplers.aliases(kind), "options": [String: String]()]
            })
        }
        api.get("schedulers") { _, _ in
            try JSONBody.response(Samplers.schedulers.map { ["name": $0.name, "label": $0.label, "aliases": NSNull()] as [String: Any] })
        }
    }

    func a1111Progress() throws -> Response {
        let progress = jobs.progress()
        var preview: Any = NSNull()
        if let image = progress.preview, let data = try? pngData(image) { preview = Data(data).base64EncodedString() }
        return try JSONBody.response([
            "progress": progress.fraction, "eta_relative": progress.etaRelative,
            "state": ["skipped": false, "interrupted": false, "job": progress.jobCount > 0 ? "txt2img" : "",
                      "job_count": progress.jobCount, "job_no": progress.image, "sampling_step": progress.step,
                      "sampling_steps": progress.steps] as [String: Any],
            "current_image": preview, "textinfo": NSNull(),
        ])
    }

    /// A base64 PNG field, with or without a `data:image/png;base64,` prefix.
    static func decodeImage(_ text: String, field: String) throws -> RGBImage {
        let payload = text.hasPrefix("data:") ? String(text[(text.firstIndex(of: ",").map { text.index(after: $0) } ?? text.endIndex)...]) : text
        guard let data = Data(base64Encoded: payload, options: .ignoreUnknownCharacters), !data.isEmpty else {
            throw APIError.invalid(field, "\(field) is not valid base64")
        }
        do { return try decodePNG([UInt8](data), name: field) } catch {
            throw APIError.invalid(field, "\(field) is not a PNG we can read: \(error.description)")
        }
    }

    /// A txt2img or img2img body read and checked, before any generation: the runs it asks for.
    package struct A1111Job {
        var fields: A1111Request
        package var model: ModelRegistry.Model
        package var requests: [GenerationRequest]
        var kind: SchedulerKind?
        var steps: Int, scale: Double, batchSize: Int, iterations: Int, clipSkip: Int, strength: Double, firstSeed: UInt64
    }

    package func a1111Job(_ body: [UInt8], img2img: Bool) throws -> A1111Job {
        let fields = try JSONBody.decode(A1111Request.self, from: body)
        let model = try models.model(named: fields.override_settings?.sd_model_checkpoint, field: "override_settings.sd_model_checkpoint")
        // sampler_name wins: some client libraries always send sampler_index with their own default.
        let samplerField = fields.sampler_name != nil ? "sampler_name" : "sampler_index"
        let kind = try Samplers.resolve(sampler: fields.sampler_name ?? fields.sampler_index, field: samplerField, scheduler: fields.scheduler)
        let steps = fields.steps ?? 50  // A1111's API default
        try checkSteps(steps, field: "steps")
        let scale = fields.cfg_scale ?? 7
        guard scale.isFinite, (0...50).contains(scale) else { throw APIError.invalid("cfg_scale", "cfg_scale must be between 0 and 50, not \(scale)") }
        let batchSize = fields.batch_size ?? 1, iterations = fields.n_iter ?? 1
        // Each factor is bounded first: their product could overflow.
        guard (1...configuration.maxImages).contains(batchSize), (1...configuration.maxImages).contains(iterations),
              batchSize * iterations <= configuration.maxImages else {
            throw APIError.invalid((1...configuration.maxImages).contains(batchSize) ? "n_iter" : "batch_size",
                                   "batch_size and n_iter must be at least 1 and make at most \(configuration.maxImages) images, not \(batchSize) x \(iterations)")
        }
        let clipSkip = fields.override_settings?.CLIP_stop_at_last_layers ?? 1
        let layers = model.pipeline.maximumClipSkip
        guard (1...layers).contains(clipSkip) else {
            throw APIError.invalid("override_settings.CLIP_stop_at_last_layers", "CLIP_stop_at_last_layers must be between 1 and \(layers), not \(clipSkip)")
        }
        var initImage: RGBImage?, mask: RGBImage?
        var strength = 1.0
        if img2img {
            guard let first = fields.init_images?.first else { throw APIError.invalid("init_images", "init_images needs one base64 PNG") }
            let image = try Self.decodeImage(first, field: "init_images[0]")
            let width = fields.width ?? image.width - image.width % 8, height = fields.height ?? image.height - image.height % 8
            try checkSize(width, field: "width")
            try checkSize(height, field: "height")
            // A1111 resizes the init image to the asked size (its resize_mode 0, "just resize").
            initImage = (width, height) == (image.width, image.height) ? image : try image.resized(width: width, height: height)
            strength = fields.denoising_strength ?? 0.75
            guard strength.isFinite, (0...1).contains(strength), Int(Double(steps) * strength) >= 1 else {
                throw APIError.invalid("denoising_strength", "denoising_strength must be in 0...1 and leave at least one of the \(steps) steps, not \(strength)")
            }
            if let maskText = fields.mask {
                var maskImage = try Self.decodeImage(maskText, field: "mask")
                if fields.inpainting_mask_invert == 1 {
                    maskImage = try RGBImage(width: maskImage.width, height: maskImage.height, pixels: maskImage.pixels.map { 255 - $0 })
                }
                mask = try maskImage.resized(width: width, height: height)
            }
        } else {
            for (name, value) in [("width", fields.width), ("height", fields.height)] {
                if let value { try checkSize(value, field: name) }
            }
        }
        let firstSeed = try Self.seed(fields.seed, field: "seed")
        let requests = (0..<(batchSize * iterations)).map { index in
            GenerationRequest(prompt: fields.prompt ?? "", negativePrompt: fields.negative_prompt ?? "", steps: steps,
                              guidanceScale: Float(scale), seed: firstSeed + UInt64(index),
                              width: img2img ? nil : fields.width, height: img2img ? nil : fields.height, scheduler: kind,
                              initImage: initImage, strength: strength, mask: mask, clipSkip: clipSkip)
        }
        return A1111Job(fields: fields, model: model, requests: requests, kind: kind, steps: steps, scale: scale, batchSize: batchSize,
                        iterations: iterations, clipSkip: clipSkip, strength: strength, firstSeed: firstSeed)
    }

    func a1111Generate(_ body: [UInt8], img2img: Bool, notes: RequestNotes) async throws -> Response {
        let job = try a1111Job(body, img2img: img2img)
        let (fields, model, requests, steps) = (job.fields, job.model, job.requests, job.steps)
        let size = model.pipeline.outputSize(requests[0])
        notes.add("size", "\(size.width)x\(size.height)")
        notes.add("steps", "\(steps)")
        notes.add("images", "\(requests.count)")
        let result = try await runJob(requests, model: model, notes: notes)
        let infotexts = result.images.map(\.parameters.text)
        var info: [String: Any] = [
            "prompt": fields.prompt ?? "", "all_prompts": result.images.map(\.request.prompt),
            "negative_prompt": fields.negative_prompt ?? "", "all_negative_prompts": result.images.map(\.request.negativePrompt),
            "seed": job.firstSeed, "all_seeds": result.images.map(\.request.seed), "subseed": -1, "all_subseeds": result.images.map { _ in -1 },
            "width": size.width, "height": size.height, "sampler_name": result.images.first?.scheduler.a1111Name ?? job.kind?.a1111Name ?? NSNull(),
            "cfg_scale": job.scale, "steps": steps, "batch_size": job.batchSize, "n_iter": job.iterations, "sd_model_name": model.name,
            "clip_skip": job.clipSkip, "infotexts": infotexts, "interrupted": result.interrupted, "restore_faces": false,
            "seed_resize_from_w": -1, "seed_resize_from_h": -1, "styles": [String](), "job_timestamp": Self.timestamp(),
        ]
        if img2img { info["denoising_strength"] = job.strength }
        let infoText = String(data: try JSONSerialization.data(withJSONObject: info, options: [.sortedKeys]), encoding: .utf8) ?? "{}"
        var parameters = JSONBody.object(body)
        parameters["init_images"] = nil
        parameters["mask"] = nil
        return try JSONBody.response(["images": try result.images.map(Self.base64PNG), "parameters": parameters, "info": infoText])
    }

    static func timestamp() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMddHHmmss"
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date())
    }
}
