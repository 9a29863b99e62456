/// The seam between the layers and the kernels. Every op the layers call dispatches here to its
/// fast path (Winograd convolutions, fused attention, wide-vector C loops) or to the reference path
/// the fixtures were first matched with; tests bind `Kernels.$path` to check one against the other.
public enum KernelPath: String, Sendable, CaseIterable {
    case fast
    case reference
}

public enum Kernels {
    @TaskLocal public static var path: KernelPath = .fast

    /// The C kernels' code path (AVX-512, AVX2+FMA, portable); tests bind each one this CPU runs.
    /// Ops read it on the calling thread and hand it to their workers.
    @TaskLocal public static var variant: KernelVariant = .selected

    /// `variant` as the C kernels take it, never above what this CPU runs.
    static var cVariant: Int32 { min(variant, .supported).rawValue }
}
