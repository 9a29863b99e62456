/// The generation parameters in the `parameters` PNG text chunk as AUTOMATIC1111 writes them,
/// so image browsers and other UIs show and reuse them.
public struct A1111Parameters: Sendable {
    public let text: String

    public init(request: GenerationRequest, scheduler: SchedulerKind, width: Int, height: Int, model: String) {
        var lines = [request.prompt]
        if !request.negativePrompt.isEmpty { lines.append("Negative prompt: \(request.negativePrompt)") }
        let scale = request.guidanceScale == request.guidanceScale.rounded() ? String(Int(request.guidanceScale)) : "\(request.guidanceScale)"
        var settings = "Steps: \(request.steps), Sampler: \(scheduler.a1111Name), CFG scale: \(scale), Seed: \(request.seed), "
            + "Size: \(width)x\(height), Model: \(model)"
        if request.initImage != nil { settings += ", Denoising strength: \(request.strength)" }
        // A1111 leaves out the default clip skip of 1.
        if request.clipSkip > 1 { settings += ", Clip skip: \(request.clipSkip)" }
        lines.append(settings)
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
        case .heun: "Heun"
        case .dpmSolverSDE: "DPM++ SDE"
        case .dpmSolverSDEKarras: "DPM++ SDE Karras"
        case .unipc: "UniPC"
        case .lcm: "LCM"
        case .tcd: "TCD"
        }
    }
}
