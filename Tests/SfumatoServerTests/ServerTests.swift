import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Sfumato
import SfumatoServer
import Testing

/// `sfumato serve` over real HTTP on loopback, with the embedded default model: responses decode to
/// the pipeline's own images, bad requests get their 4xx and the server keeps serving, the queue is bounded.
@Suite struct ServerTests {
    static let modelPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Models/sfumato-shapes").path
    static let pipeline = Result { try StableDiffusionPipeline(files: try ModelFiles(path: modelPath)) }

    /// The synchronous API's image, as `sfumato generate` draws it.
    static func expected(_ request: GenerationRequest) throws -> RGBImage { try pipeline.get().generate(request) }

    static func request(seed: UInt64, steps: Int = 4, scheduler: SchedulerKind = .eulerAncestral) -> GenerationRequest {
        GenerationRequest(prompt: "a red circle on a blue background", negativePrompt: "green", steps: steps, guidanceScale: 5,
                          seed: seed, width: 64, height: 64, scheduler: scheduler)
    }

    static var body: [String: Any] { ["prompt": "a red circle on a blue background", "negative_prompt": "green", "steps": 4,
                                      "cfg_scale": 5, "width": 64, "height": 64, "sampler_name": "Euler a"] }

    struct Client {
        let base: URL
        let session: URLSession

        func send(_ method: String, _ path: String, json: Any? = nil, raw: Data? = nil,
                  headers: [String: String] = [:]) async throws -> (status: Int, retryAfter: String?, data: Data) {
            var request = URLRequest(url: base.appendingPathComponent(path))
            request.httpMethod = method
            request.timeoutInterval = 120
            if let json { request.httpBody = try JSONSerialization.data(withJSONObject: json) }
            if let raw { request.httpBody = raw }
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            for (key, value) in headers { request.setValue(value, forHTTPHeaderField: key) }
            let (data, response) = try await session.data(for: request)
            let http = try #require(response as? HTTPURLResponse)
            return (http.statusCode, http.value(forHTTPHeaderField: "Retry-After"), data)
        }

        func json(_ method: String, _ path: String, _ body: Any? = nil, headers: [String: String] = [:]) async throws -> (Int, [String: Any]) {
            let (status, _, data) = try await send(method, path, json: body, headers: headers)
            let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
            return (status, try #require(object, "\(path): \(String(decoding: data, as: UTF8.self))"))
        }
    }

    /// Starts a server on a free loopback port, runs `body` against it, stops it.
    static func withServer(_ configuration: ServerConfiguration = ServerConfiguration(port: 0, maxSteps: 1000), models: Int = 1,
                           _ body: (Client) async throws -> Void) async throws {
        let loaded = try Array(repeating: (modelPath, pipeline.get()), count: models)
        let server = SfumatoServer(models: ModelRegistry(pipelines: loaded), configuration: configuration)
        let (ports, portSink) = AsyncStream<Int>.makeStream()
        let task = Task { try await server.run(handleSignals: false) { portSink.yield($0) } }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        let settings = URLSessionConfiguration.ephemeral
        settings.httpMaximumConnectionsPerHost = 16
        let session = URLSession(configuration: settings)
        defer {
            session.invalidateAndCancel()
            task.cancel()
        }
        try await body(Client(base: URL(string: "http://127.0.0.1:\(port)")!, session: session))
    }

    static func png(_ base64: Any?) throws -> (image: RGBImage, text: [String: String]) {
        let text = try #require(base64 as? String)
        let data = [UInt8](try #require(Data(base64Encoded: text)))
        return (try decodePNG(data, name: "response"), try decodePNGText(data, name: "response"))
    }

    @Test func txt2imgIsThePipelinesImage() async throws {
        try await Self.withServer { client in
            var body = Self.body
            body["seed"] = 11
            body["batch_size"] = 2
            body["sampler_index"] = "DDIM"  // sampler_name wins
            body["enable_hr"] = false  // unknown to us: ignored
            let (status, answer) = try await client.json("POST", "sdapi/v1/txt2img", body)
            #expect(status == 200)
            let images = try #require(answer["images"] as? [String])
            #expect(images.count == 2)
            let infoText = try #require(answer["info"] as? String)
            let info = try #require(try JSONSerialization.jsonObject(with: Data(infoText.utf8)) as? [String: Any])
            #expect(info["all_seeds"] as? [Int] == [11, 12])
            #expect(info["seed"] as? Int == 11)
            let infotexts = try #require(info["infotexts"] as? [String])
            for (index, text) in images.enumerated() {
                let (image, chunks) = try Self.png(text)
                #expect(image == (try Self.expected(Self.request(seed: 11 + UInt64(index)))))
                #expect(chunks["parameters"] == infotexts[index])
            }
            #expect(infotexts[0].contains("Sampler: Euler a, CFG scale: 5, Seed: 11, Size: 64x64"))
            #expect((answer["parameters"] as? [String: Any])?["prompt"] as? String == "a red circle on a blue background")
        }
    }

    @Test func samplerSpellingsAgree() async throws {
        try await Self.withServer { client in
            var combined = Self.body, split = Self.body
            combined["sampler_name"] = "DPM++ 2M Karras"
            combined["seed"] = 5
            split["sampler_name"] = "DPM++ 2M"
            split["scheduler"] = "Karras"
            split["seed"] = 5
            let expected = try Self.expected(Self.request(seed: 5, scheduler: .dpmSolverMultistepKarras))
            for body in [combined, split] {
                let (status, answer) = try await client.json("POST", "sdapi/v1/txt2img", body)
                #expect(status == 200)
                #expect(try Self.png((answer["images"] as? [String])?.first).image == expected)
            }
        }
    }

    @Test func img2imgIsThePipelinesImage() async throws {
        try await Self.withServer { client in
            let start = try Self.expected(Self.request(seed: 1))
            var request = Self.request(seed: 2)
            (request.width, request.height, request.initImage, request.strength) = (nil, nil, start, 0.5)
            var body = Self.body
            body["seed"] = 2
            body["denoising_strength"] = 0.5
            body["init_images"] = ["data:image/png;base64," + Data(try pngData(start)).base64EncodedString()]
            let (status, answer) = try await client.json("POST", "sdapi/v1/img2img", body)
            #expect(status == 200)
            #expect(try Self.png((answer["images"] as? [String])?.first).image == (try Self.expected(request)))
        }
    }

    @Test func openAIGenerationIsThePipelinesImage() async throws {
        try await Self.withServer { client in
            let body: [String: Any] = ["prompt": "a red circle on a blue background", "negative_prompt": "green", "n": 1, "size": "64x64",
                                       "response_format": "b64_json", "steps": 4, "seed": 21, "guidance_scale": 5, "sampler": "Euler a",
                                       "model": "sfumato-shapes", "quality": "standard"]
            let (status, answer) = try await client.json("POST", "v1/images/generations", body)
            #expect(status == 200)
            #expect((answer["created"] as? Int ?? 0) > 0)
            let data = try #require(answer["data"] as? [[String: Any]])
            #expect(try Self.png(data.first?["b64_json"]).image == (try Self.expected(Self.request(seed: 21))))
            let (_, models) = try await client.json("GET", "v1/models")
            #expect((models["data"] as? [[String: Any]])?.map { $0["id"] as? String } == ["sfumato-shapes"])
        }
    }

    @Test func listsAndOptions() async throws {
        try await Self.withServer { client in
            let (_, _, samplers) = try await client.send("GET", "sdapi/v1/samplers")
            let names = (try JSONSerialization.jsonObject(with: samplers) as? [[String: Any]])?.compactMap { $0["name"] as? String }
            #expect(names?.contains("DPM++ 2M Karras") == true && names?.contains("Euler a") == true)
            let (_, _, schedulers) = try await client.send("GET", "sdapi/v1/schedulers")
            #expect((try JSONSerialization.jsonObject(with: schedulers) as? [[String: Any]])?.contains { $0["label"] as? String == "Karras" } == true)
            let (_, _, models) = try await client.send("GET", "sdapi/v1/sd-models")
            #expect((try JSONSerialization.jsonObject(with: models) as? [[String: Any]])?.first?["title"] as? String == "sfumato-shapes")
            let (status, options) = try await client.json("GET", "sdapi/v1/options")
            #expect(status == 200 && options["sd_model_checkpoint"] as? String == "sfumato-shapes")
            let (selected, _) = try await client.json("POST", "sdapi/v1/options", ["sd_model_checkpoint": "sfumato-shapes"])
            #expect(selected == 200)
            let (missing, error) = try await client.json("POST", "sdapi/v1/options", ["sd_model_checkpoint": "nope"])
            #expect(missing == 404 && error["field"] as? String == "sd_model_checkpoint")
            let (_, progress) = try await client.json("GET", "sdapi/v1/progress")
            #expect(progress["progress"] as? Double == 0 && (progress["state"] as? [String: Any])?["job_count"] as? Int == 0)
            let (healthStatus, health) = try await client.json("GET", "health")
            #expect(healthStatus == 200 && health["status"] as? String == "ok")
            let (_, _, metrics) = try await client.send("GET", "metrics")
            let text = String(decoding: metrics, as: UTF8.self)
            #expect(text.contains("sfumato_http_requests_total{route=\"/sdapi/v1/options\",status=\"404\"} 1"))
            #expect(text.contains("sfumato_queue_depth"))
        }
    }

    /// Several models: listed under unique names, chosen per request or by the options' checkpoint.
    @Test func severalModelsAreSelectable() async throws {
        try await Self.withServer(models: 2) { client in
            let (_, _, list) = try await client.send("GET", "sdapi/v1/sd-models")
            let titles = (try JSONSerialization.jsonObject(with: list) as? [[String: Any]])?.compactMap { $0["title"] as? String }
            #expect(titles == ["sfumato-shapes", "sfumato-shapes-2"])
            let (_, models) = try await client.json("GET", "v1/models")
            #expect((models["data"] as? [[String: Any]])?.count == 2)
            let (selected, _) = try await client.json("POST", "sdapi/v1/options", ["sd_model_checkpoint": "sfumato-shapes-2"])
            #expect(selected == 200)
            let (_, options) = try await client.json("GET", "sdapi/v1/options")
            #expect(options["sd_model_checkpoint"] as? String == "sfumato-shapes-2")
            var body = Self.body
            (body["seed"], body["override_settings"]) = (8, ["sd_model_checkpoint": "sfumato-shapes"])
            let (status, answer) = try await client.json("POST", "sdapi/v1/txt2img", body)
            #expect(status == 200)
            let infoText = try #require(answer["info"] as? String)
            let info = try #require(try JSONSerialization.jsonObject(with: Data(infoText.utf8)) as? [String: Any])
            #expect(info["sd_model_name"] as? String == "sfumato-shapes")
            #expect(try Self.png((answer["images"] as? [String])?.first).image == (try Self.expected(Self.request(seed: 8))))
        }
    }

    @Test func badRequestsGetTheir4xxAndTheServerKeepsServing() async throws {
        try await Self.withServer(ServerConfiguration(port: 0, maxBodySize: 64 << 10, maxSteps: 150)) { client in
            func with(_ changes: [String: Any]) -> [String: Any] { Self.body.merging(changes) { $1 } }
            let cases: [(path: String, body: Data, status: Int, field: String)] = [
                ("sdapi/v1/txt2img", Data("{\"prompt\": ".utf8), 400, "body"),
                ("sdapi/v1/txt2img", try JSONSerialization.data(withJSONObject: with(["steps": "many"])), 422, "steps"),
                ("sdapi/v1/txt2img", try JSONSerialization.data(withJSONObject: with(["steps": 0])), 422, "steps"),
                ("sdapi/v1/txt2img", try JSONSerialization.data(withJSONObject: with(["steps": 151])), 422, "steps"),
                ("sdapi/v1/txt2img", try JSONSerialization.data(withJSONObject: with(["width": 65])), 422, "width"),
                ("sdapi/v1/txt2img", try JSONSerialization.data(withJSONObject: with(["height": 1 << 20])), 422, "height"),
                ("sdapi/v1/txt2img", try JSONSerialization.data(withJSONObject: with(["cfg_scale": 1000])), 422, "cfg_scale"),
                ("sdapi/v1/txt2img", try JSONSerialization.data(withJSONObject: with(["batch_size": 0])), 422, "batch_size"),
                ("sdapi/v1/txt2img", try JSONSerialization.data(withJSONObject: with(["n_iter": 10_000])), 422, "n_iter"),
                // The product overflows Int: refused, not trapped on.
                ("sdapi/v1/txt2img", try JSONSerialization.data(withJSONObject: with(["batch_size": 1 << 62, "n_iter": 4])), 422, "batch_size"),
                ("sdapi/v1/txt2img", try JSONSerialization.data(withJSONObject: with(["seed": -5])), 422, "seed"),
                ("sdapi/v1/txt2img", try JSONSerialization.data(withJSONObject: with(["sampler_name": "Heun++"])), 404, "sampler_name"),
                ("sdapi/v1/txt2img", try JSONSerialization.data(withJSONObject: with(["sampler_name": "Euler", "scheduler": "Karras"])), 422, "scheduler"),
                ("sdapi/v1/txt2img", try JSONSerialization.data(withJSONObject: with(["override_settings": ["sd_model_checkpoint": "other"]])),
                 404, "override_settings.sd_model_checkpoint"),
                ("sdapi/v1/txt2img", try JSONSerialization.data(withJSONObject: with(["prompt": String(repeating: "word ", count: 100_000)])), 413, "body"),
                ("sdapi/v1/img2img", try JSONSerialization.data(withJSONObject: with(["init_images": ["%%%not base64%%%"]])), 422, "init_images[0]"),
                ("sdapi/v1/img2img", try JSONSerialization.data(withJSONObject: with(["init_images": [Data("not a png".utf8).base64EncodedString()]])),
                 422, "init_images[0]"),
                ("sdapi/v1/img2img", try JSONSerialization.data(withJSONObject: Self.body), 422, "init_images"),
                ("v1/images/generations", try JSONSerialization.data(withJSONObject: ["size": "64x64"]), 422, "prompt"),
                ("v1/images/generations", try JSONSerialization.data(withJSONObject: ["prompt": "x", "size": "huge"]), 422, "size"),
                ("v1/images/generations", try JSONSerialization.data(withJSONObject: ["prompt": "x", "n": 11]), 422, "n"),
                ("v1/images/generations", try JSONSerialization.data(withJSONObject: ["prompt": "x", "model": "dall-e-9"]), 404, "model"),
                ("v1/images/generations", try JSONSerialization.data(withJSONObject: ["prompt": "x", "response_format": "url"]), 422, "response_format"),
            ]
            for (path, body, status, field) in cases {
                let (actual, _, data) = try await client.send("POST", path, raw: body)
                #expect(actual == status, "\(path) \(field)")
                let error = try JSONSerialization.jsonObject(with: data) as? [String: Any]
                let named = path.hasPrefix("v1/") ? (error?["error"] as? [String: Any])?["param"] as? String : error?["field"] as? String
                #expect(named == field, "\(path): \(String(decoding: data, as: UTF8.self))")
                let (good, answer) = try await client.json("POST", "sdapi/v1/txt2img", with(["seed": 3, "steps": 2]))
                #expect(good == 200 && (answer["images"] as? [String])?.count == 1, "after \(field)")
            }
        }
    }

    @Test func apiKeyIsRequired() async throws {
        try await Self.withServer(ServerConfiguration(port: 0, apiKey: "secret")) { client in
            let basic = "Basic " + Data("user:secret".utf8).base64EncodedString()
            let cases: [(path: String, authorization: String?, status: Int)] = [
                ("sdapi/v1/options", nil, 401), ("v1/models", "Bearer wrong", 401), ("v1/models", "Bearer secret", 200),
                ("sdapi/v1/options", basic, 200), ("health", nil, 200),
            ]
            for (path, authorization, expected) in cases {
                let (status, _, _) = try await client.send("GET", path, headers: authorization.map { ["Authorization": $0] } ?? [:])
                #expect(status == expected, "\(path) \(authorization ?? "no key")")
            }
        }
    }

    /// 8 requests at once against one slot and 3 places in the queue: each gets its own correct image or a 503.
    @Test func concurrentRequestsAreAnsweredOrRefused() async throws {
        try await Self.withServer(ServerConfiguration(port: 0, queueDepth: 3, concurrency: 1)) { client in
            let outcomes = try await withThrowingTaskGroup(of: (UInt64, Int, String?, Data).self) { group in
                for seed in UInt64(100)..<108 {
                    group.addTask {
                        var body = Self.body
                        (body["seed"], body["steps"]) = (seed, 8)
                        let (status, retryAfter, data) = try await client.send("POST", "sdapi/v1/txt2img", json: body)
                        return (seed, status, retryAfter, data)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.count == 8)
            var served = 0
            for (seed, status, retryAfter, data) in outcomes {
                if status == 503 {
                    #expect(Int(retryAfter ?? "") ?? 0 >= 1)
                    continue
                }
                #expect(status == 200)
                let answer = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
                #expect(try Self.png((answer["images"] as? [String])?.first).image == (try Self.expected(Self.request(seed: seed, steps: 8))))
                served += 1
            }
            #expect(served >= 4)  // the running one and the three queued, at least
        }
    }

    /// Waits (bounded) until the server reports a job past step `step`.
    static func waitForSampling(_ client: Client, step: Int = 1) async throws {
        for _ in 0..<500 {
            let (_, progress) = try await client.json("GET", "sdapi/v1/progress")
            if ((progress["state"] as? [String: Any])?["sampling_step"] as? Int ?? 0) >= step { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("no job started sampling")
    }

    static func waitForIdle(_ client: Client) async throws {
        for _ in 0..<500 {
            let (_, health) = try await client.json("GET", "health")
            if health["running"] as? Int == 0, health["waiting"] as? Int == 0 { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("the slot was not freed")
    }

    @Test func interruptStopsTheJobAndFreesTheSlot() async throws {
        try await Self.withServer(ServerConfiguration(port: 0, maxSteps: 1000, previewEvery: 5)) { client in
            let long = try JSONSerialization.data(withJSONObject: Self.body.merging(["steps": 1000]) { $1 })
            let answer = Task { () -> (Int, Int?) in
                let (status, _, data) = try await client.send("POST", "sdapi/v1/txt2img", raw: long)
                let result = try JSONSerialization.jsonObject(with: data) as? [String: Any]
                return (status, (result?["images"] as? [String])?.count)
            }
            try await Self.waitForSampling(client, step: 5)  // the first preview
            let (_, progress) = try await client.json("GET", "sdapi/v1/progress")
            #expect((progress["progress"] as? Double ?? 0) > 0)
            #expect(progress["current_image"] is String)
            let (interrupted, _) = try await client.json("POST", "sdapi/v1/interrupt")
            #expect(interrupted == 200)
            let (status, count) = try await answer.value
            #expect(status == 200 && count == 0)
            try await Self.waitForIdle(client)
            var body = Self.body
            body["seed"] = 4
            let (_, next) = try await client.json("POST", "sdapi/v1/txt2img", body)
            #expect(try Self.png((next["images"] as? [String])?.first).image == (try Self.expected(Self.request(seed: 4))))
        }
    }

    @Test func disconnectCancelsTheJob() async throws {
        try await Self.withServer { client in
            let long = try JSONSerialization.data(withJSONObject: Self.body.merging(["steps": 1000]) { $1 })
            let request = Task { try await client.send("POST", "sdapi/v1/txt2img", raw: long) }
            try await Self.waitForSampling(client)
            request.cancel()  // URLSession closes the connection
            _ = await request.result
            try await Self.waitForIdle(client)
            var body = Self.body
            body["seed"] = 6
            let (_, next) = try await client.json("POST", "sdapi/v1/txt2img", body)
            #expect(try Self.png((next["images"] as? [String])?.first).image == (try Self.expected(Self.request(seed: 6))))
        }
    }
}
