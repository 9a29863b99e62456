import CSfumatoKernels
import Foundation

/// Code paths of the C kernels (CSfumatoKernels), slowest first. The kernels take one explicitly,
/// so that tests can run every path the CPU supports.
public enum KernelVariant: Int32, CaseIterable, Comparable, Sendable {
    case generic = 0  // plain C
    case avx2 = 1     // AVX2 + FMA
    case avx512 = 2   // AVX-512F

    /// The fastest path this CPU runs.
    public static let supported = KernelVariant(rawValue: sfumato_kernels_supported()) ?? .generic

    /// The path kernels take by default: `supported`, lowered by the environment variable
    /// `SFUMATO_KERNELS=generic|avx2|avx512` (a higher or unknown value leaves `supported`).
    public static let selected: KernelVariant = {
        let names: [String: KernelVariant] = ["generic": .generic, "avx2": .avx2, "avx512": .avx512]
        guard let name = ProcessInfo.processInfo.environment["SFUMATO_KERNELS"], let requested = names[name] else {
            return supported
        }
        return min(requested, supported)
    }()

    /// Every path this CPU runs, slowest first.
    public static var available: [KernelVariant] { allCases.filter { $0 <= supported } }

    public static func < (a: KernelVariant, b: KernelVariant) -> Bool { a.rawValue < b.rawValue }
}
