/// The residual block shared by the UNet and the VAE (diffusers `ResnetBlock2D`,
/// default settings: "default" time embedding norm, output scale 1, no up/down sampling).
///
/// out = shortcut(x) + conv2(silu(norm2(conv1(silu(norm1(x))) + time_emb_proj(silu(temb)))))
final class ResnetBlock2D: Sendable {
    let norm1: GroupNorm
    let conv1: Conv2d
    /// Absent in the VAE, which has no time embedding.
    let time_emb_proj: Linear?
    let norm2: GroupNorm
    let conv2: Conv2d
    /// 1x1 projection when the channel count changes.
    let conv_shortcut: Conv2d?

    /// `loader` is scoped to the block, e.g. "down_blocks.0.resnets.1".
    init(_ loader: ParameterLoader, inChannels: Int, outChannels: Int, tembChannels: Int?, groups: Int, eps: Float) {
        norm1 = GroupNorm(loader.scoped("norm1"), channels: inChannels, groups: groups, eps: eps)
        conv1 = Conv2d(loader.scoped("conv1"), in: inChannels, out: outChannels, kernel: 3, padding: 1)
        time_emb_proj = tembChannels.map { Linear(loader.scoped("time_emb_proj"), in: $0, out: outChannels) }
        norm2 = GroupNorm(loader.scoped("norm2"), channels: outChannels, groups: groups, eps: eps)
        conv2 = Conv2d(loader.scoped("conv2"), in: outChannels, out: outChannels, kernel: 3, padding: 1)
        conv_shortcut = inChannels == outChannels ? nil
            : Conv2d(loader.scoped("conv_shortcut"), in: inChannels, out: outChannels, kernel: 1)
    }

    /// x [N, in, H, W], temb [N, tembChannels] (ignored by blocks without a projection) -> [N, out, H, W].
    func callAsFunction(_ x: Tensor, temb: Tensor?) -> Tensor {
        var hidden = conv1(x, normalizedBy: norm1, silu: true)
        if let temb, let time_emb_proj {
            hidden = addPerChannel(hidden, time_emb_proj(silu(temb)))
        }
        // A projected shortcut is this block's own tensor: the sum can be written into it.
        if let conv_shortcut {
            return conv2(hidden, normalizedBy: norm2, silu: true, residual: conv_shortcut(x), residualIsScratch: true)
        }
        return conv2(hidden, normalizedBy: norm2, silu: true, residual: x)
    }
}
