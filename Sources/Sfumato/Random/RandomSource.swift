/// Where the initial latents and the noise of stochastic samplers come from.
/// `TorchRandom` reproduces `torch.randn` on the CPU, so a seed gives the diffusers image.
public protocol RandomSource {
    /// Standard-normal values filling `shape`, drawn like one `torch.randn(shape)` call.
    mutating func normal(shape: [Int]) -> Tensor
}
