/// diffusers `UNetMidBlock2D` as the VAE uses it: resnet, optional single-head
/// self-attention over all pixels, resnet; no time embedding.
final class VAEMidBlock: Sendable {
    let resnets: [ResnetBlock2D]
    let attentions: [VAEAttention]

    init(_ loader: ParameterLoader, channels: Int, groups: Int, eps: Float, addAttention: Bool) {
        resnets = (0..<2).map {
            ResnetBlock2D(loader.scoped("resnets.\($0)"), inChannels: channels, outChannels: channels, tembChannels: nil, groups: groups, eps: eps)
        }
        attentions = addAttention ? [VAEAttention(loader.scoped("attentions.0"), channels: channels, groups: groups, eps: eps)] : []
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var hidden = resnets[0](x, temb: nil)
        for attention in attentions { hidden = attention(hidden) }
        return resnets[1](hidden, temb: nil)
    }
}

/// diffusers `Attention` on an image with one head as wide as the channels:
/// x + to_out(attention(to_q(n), to_k(n), to_v(n))) with n = group_norm(x) as tokens.
final class VAEAttention: Sendable {
    let group_norm: GroupNorm
    let to_q: Linear
    let to_k: Linear
    let to_v: Linear
    /// Checkpoint name "to_out.0" (index 1 of diffusers' ModuleList is dropout).
    let to_out: Linear

    init(_ loader: ParameterLoader, channels: Int, groups: Int, eps: Float) {
        group_norm = GroupNorm(loader.scoped("group_norm"), channels: channels, groups: groups, eps: eps)
        to_q = Linear(loader.scoped("to_q"), in: channels, out: channels)
        to_k = Linear(loader.scoped("to_k"), in: channels, out: channels)
        to_v = Linear(loader.scoped("to_v"), in: channels, out: channels)
        to_out = Linear(loader.scoped("to_out.0"), in: channels, out: channels)
    }

    /// x [N, C, H, W] -> same shape.
    func callAsFunction(_ x: Tensor) -> Tensor {
        let tokens = nchwToTokens(group_norm(x))
        let attended = attention(query: to_q(tokens), key: to_k(tokens), value: to_v(tokens), heads: 1)
        return add(x, tokensToNCHW(to_out(attended), height: x.shape[2], width: x.shape[3]))
    }
}
