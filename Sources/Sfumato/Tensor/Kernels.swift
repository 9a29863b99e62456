import CSfumatoKernels

/// The seam between the layers and the kernels. Every op the layers call dispatches here to its
/// fast path (Winograd convolutions, fused attention, wide-vector C loops) or to the reference path
/// the fixtures were first matched with; tests bind `Kernels.$path` to check one against the other.
public enum KernelPath: String, Sendable, CaseIterable {
    case fast
    case reference
}

/// Instruction sets of the C kernels (`CSfumatoKernels`), lowest first.
public enum KernelISA: Int32, Sendable, CaseIterable, Comparable {
    case generic = 0
    case avx2 = 1
    case avx512 = 2

    public static func < (lhs: KernelISA, rhs: KernelISA) -> Bool { lhs.rawValue < rhs.rawValue }
}

public enum Kernels {
    @TaskLocal public static var path: KernelPath = .fast

    /// The C kernels' variant in use: the best the CPU has, unless SFUMATO_KERNELS lowers it.
    public static var isa: KernelISA { KernelISA(rawValue: sfumato_isa()) ?? .generic }

    /// Caps the C kernels' variant for the whole process (tests); returns the one now in use.
    @discardableResult
    public static func setISA(_ isa: KernelISA) -> KernelISA {
        KernelISA(rawValue: sfumato_set_isa(isa.rawValue)) ?? .generic
    }
}
