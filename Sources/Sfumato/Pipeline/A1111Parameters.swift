/// The generation parameters in the `parameters` PNG text chunk as AUTOMATIC1111 writes them,
/// so image browsers and other UIs show and reuse them.
public struct A1111Parameters: Sendable {
    public let text: String

    public init(request: GenerationRequest, scheduler: SchedulerKind, width: Int, height: Int, model: String) {
        var lines = [request.prompt]
        if !request.negativePrompt.isEmpty { lines.append("Negative prompt: \(request.negativePrompt)") }
        let scale = request.guidanceScale == request.guidanceScale.rounded() ? String(Int(request.guidanceScale)) : "\(request.guidanceScale)"
        lines.append("Steps: \(request.steps), Sampler: \(scheduler.a1111Name), CFG scale: \(scale), Seed: \(request.seed), "
                     + "Size: \(width)x\(height), Model: \(model)"
                     + (request.initImage == nil ? "" : ", Denoising strength: \(request.strength)"))
        text = lines.joined(separator: "\n")
    }
}

extension SchedulerKind {
    /// The sampler's name in AUTOMATIC1111's UI.
    public var a1111Name: String {
        switch self {
        case .ddim: "DDIM"
        case .pndm: "PLMS"
        case .euler: "Euler"
        case .eulerAncestral: "Euler a"
        case .dpmSolverMultistep: "DPM++ 2M"
        case .dpmSolverMultistepKarras: "DPM++ 2M Karras"
        case .lms: "LMS"
        case .ddpm: "DDPM"
        }
    }
}
