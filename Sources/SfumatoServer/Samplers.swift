import Sfumato

/// AUTOMATIC1111's sampler names in both spellings: combined ("DPM++ 2M Karras") and split
/// (`sampler_name` "DPM++ 2M" with `scheduler` "Karras"), plus the k-diffusion aliases.
enum Samplers {
    static func aliases(_ kind: SchedulerKind) -> [String] {
        switch kind {
        case .ddim: ["ddim"]
        case .pndm: ["plms", "pndm"]
        case .euler: ["k_euler", "euler"]
        case .eulerAncestral: ["k_euler_a", "k_euler_ancestral", "euler-a"]
        case .dpmSolverMultistep: ["k_dpmpp_2m", "dpm++2m"]
        case .dpmSolverMultistepKarras: ["k_dpmpp_2m_ka", "dpm++2m-karras"]
        case .lms: ["k_lms", "lms"]
        case .ddpm: ["ddpm"]
        case .heun: ["k_heun", "heun"]
        case .dpmSolverSDE: ["k_dpmpp_sde", "dpm++sde"]
        case .dpmSolverSDEKarras: ["k_dpmpp_sde_ka", "dpm++sde-karras"]
        case .unipc: ["unipc"]
        case .lcm: ["lcm"]
        case .tcd: ["tcd"]
        }
    }

    /// The schedulers (noise schedules) A1111 lists; Karras applies to DPM++ 2M and DPM++ SDE only.
    static let schedulers: [(name: String, label: String)] = [("automatic", "Automatic"), ("uniform", "Uniform"), ("karras", "Karras")]

    /// nil when neither name is given (the model's own sampler). `field` names what the client sent.
    static func resolve(sampler: String?, field: String, scheduler: String?) throws -> SchedulerKind? {
        guard let sampler, !sampler.isEmpty else {
            if let scheduler, !["automatic", "uniform", ""].contains(scheduler.lowercased()) {
                throw APIError.invalid("scheduler", "scheduler \(scheduler) needs a sampler_name (Karras applies to DPM++ 2M and DPM++ SDE)")
            }
            return nil
        }
        let wanted = sampler.lowercased()
        guard let kind = SchedulerKind.allCases.first(where: { $0.a1111Name.lowercased() == wanted || aliases($0).contains(wanted) }) else {
            throw APIError.notFound(field, "sampler \(sampler) not found; available: "
                                    + SchedulerKind.allCases.map(\.a1111Name).joined(separator: ", "))
        }
        switch scheduler?.lowercased() {
        case nil, "", "automatic": return kind
        case "uniform":
            switch kind {
            case .dpmSolverMultistepKarras: return .dpmSolverMultistep
            case .dpmSolverSDEKarras: return .dpmSolverSDE
            default: return kind
            }
        case "karras":
            switch kind {
            case .dpmSolverMultistep, .dpmSolverMultistepKarras: return .dpmSolverMultistepKarras
            case .dpmSolverSDE, .dpmSolverSDEKarras: return .dpmSolverSDEKarras
            default: throw APIError.invalid("scheduler", "scheduler Karras is available with DPM++ 2M and DPM++ SDE only, not with \(kind.a1111Name)")
            }
        case let other?:
            throw APIError.notFound("scheduler", "scheduler \(other) not found; available: "
                                    + schedulers.map(\.label).joined(separator: ", "))
        }
    }
}
