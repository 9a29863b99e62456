/// The samplers a run can ask for by name (`--scheduler`), and diffusers' class names for them.
public enum SchedulerKind: String, CaseIterable, Sendable {
    case ddim
    case pndm
    case euler
    case eulerAncestral = "euler-a"
    case dpmSolverMultistep = "dpm++2m"
    case dpmSolverMultistepKarras = "dpm++2m-karras"
    case lms
    case ddpm
    case heun
    case dpmSolverSDE = "dpm++sde"
    case dpmSolverSDEKarras = "dpm++sde-karras"
    case unipc
    case lcm
    case tcd

    /// The model's own sampler: the kind its config's `_class_name` names
    /// (DPM-Solver with Karras sigmas when the config switches them on).
    public init(defaultFor config: SchedulerConfig) throws(SchedulerError) {
        guard let name = config.className else { throw .unknownClass("(no _class_name)") }
        switch name {
        case "DDIMScheduler": self = .ddim
        case "PNDMScheduler": self = .pndm
        case "EulerDiscreteScheduler": self = .euler
        case "EulerAncestralDiscreteScheduler": self = .eulerAncestral
        case "DPMSolverMultistepScheduler": self = config.useKarrasSigmas ? .dpmSolverMultistepKarras : .dpmSolverMultistep
        case "LMSDiscreteScheduler": self = .lms
        case "DDPMScheduler": self = .ddpm
        case "HeunDiscreteScheduler": self = .heun
        case "DPMSolverSDEScheduler": self = config.useKarrasSigmas ? .dpmSolverSDEKarras : .dpmSolverSDE
        case "UniPCMultistepScheduler": self = .unipc
        case "LCMScheduler": self = .lcm
        case "TCDScheduler": self = .tcd
        default: throw .unknownClass(name)
        }
    }
}

/// A scheduler of `kind` for one run of `steps` steps, configured from the model's scheduler
/// config as diffusers' `from_config` does (keys the class does not use are ignored).
public func makeScheduler(kind: SchedulerKind, config: SchedulerConfig, steps: Int) throws(SchedulerError) -> any Scheduler {
    switch kind {
    case .ddim: return try DDIMScheduler(config: config, steps: steps, eta: 0)
    case .pndm: return try PNDMScheduler(config: config, steps: steps)
    case .euler: return try EulerDiscreteScheduler(config: config, steps: steps)
    case .eulerAncestral: return try EulerAncestralDiscreteScheduler(config: config, steps: steps)
    case .dpmSolverMultistep:
        // The name says plain DPM++ 2M, whatever the config prefers.
        var plain = config
        plain.useKarrasSigmas = false
        return try DPMSolverMultistepScheduler(config: plain, steps: steps, karras: false)
    case .dpmSolverMultistepKarras: return try DPMSolverMultistepScheduler(config: config, steps: steps, karras: true)
    case .lms: return try LMSDiscreteScheduler(config: config, steps: steps)
    case .ddpm: return try DDPMScheduler(config: config, steps: steps)
    case .heun: return try HeunDiscreteScheduler(config: config, steps: steps)
    case .dpmSolverSDE, .dpmSolverSDEKarras:
        var chosen = config
        chosen.useKarrasSigmas = kind == .dpmSolverSDEKarras
        return try DPMSolverSDEScheduler(config: chosen, steps: steps)
    case .unipc: return try UniPCMultistepScheduler(config: config, steps: steps)
    case .lcm: return try LCMScheduler(config: config, steps: steps)
    case .tcd: return try TCDScheduler(config: config, steps: steps, gamma: TCDScheduler.defaultGamma)
    }
}
