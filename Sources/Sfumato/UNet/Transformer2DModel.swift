/// diffusers `Transformer2DModel` on continuous input, as in the SD UNet's attention slots:
/// GroupNorm(eps 1e-6) -> proj_in -> BasicTransformerBlocks on the H*W tokens -> proj_out -> + input.
final class Transformer2DModel: Sendable {
    let norm: GroupNorm
    let proj_in: TokenProjection
    let transformer_blocks: [BasicTransformerBlock]
    let proj_out: TokenProjection

    /// `loader` is scoped to the model (e.g. "down_blocks.0.attentions.1"). The inner width is
    /// heads * headDim, which differs from `channels` when diffusers' channels / heads truncates.
    init(_ loader: ParameterLoader, channels: Int, heads: Int, headDim: Int, layers: Int,
         crossAttentionDim: Int, groups: Int, linearProjection: Bool) {
        let inner = heads * headDim
        norm = GroupNorm(loader.scoped("norm"), channels: channels, groups: groups, eps: 1e-6)
        proj_in = TokenProjection(loader.scoped("proj_in"), in: channels, out: inner, convolution: !linearProjection)
        transformer_blocks = (0..<layers).map { index in
            BasicTransformerBlock(loader.scoped("transformer_blocks.\(index)"), dim: inner, heads: heads,
                                  headDim: headDim, crossAttentionDim: crossAttentionDim)
        }
        proj_out = TokenProjection(loader.scoped("proj_out"), in: inner, out: channels, convolution: !linearProjection)
    }

    /// x [N, C, H, W], encoderHiddenStates [N, L, crossAttentionDim] -> [N, C, H, W]
    func callAsFunction(_ x: Tensor, encoderHiddenStates: Tensor) -> Tensor {
        let (height, width) = (x.shape[2], x.shape[3])
        var tokens = proj_in(nchwToTokens(norm(x)))
        for block in transformer_blocks { tokens = block(tokens, encoderHiddenStates: encoderHiddenStates) }
        return add(tokensToNCHW(proj_out(tokens), height: height, width: width), x)
    }
}

/// proj_in / proj_out: a 1x1 convolution (SD 1.x, weight [out, in, 1, 1]) or a linear layer (SD 2.x).
/// Both are applied to the token layout: a 1x1 convolution followed by the NCHW -> tokens permute
/// is the same product as the permute followed by a linear layer, and saves two transposes.
struct TokenProjection: Sendable {
    let weight: Tensor
    let bias: Tensor?

    init(_ loader: ParameterLoader, in inFeatures: Int, out outFeatures: Int, convolution: Bool) {
        if convolution {
            let conv = Conv2d(loader, in: inFeatures, out: outFeatures, kernel: 1)
            weight = conv.weight.reshaped([outFeatures, inFeatures])
            bias = conv.bias
        } else {
            let layer = Linear(loader, in: inFeatures, out: outFeatures)
            weight = layer.weight
            bias = layer.bias
        }
    }

    /// tokens [N, L, in] -> [N, L, out]
    func callAsFunction(_ tokens: Tensor) -> Tensor { linear(tokens, weight: weight, bias: bias) }
}

/// diffusers `BasicTransformerBlock` (layer_norm type, GEGLU feed-forward):
/// x += attn1(norm1(x)); x += attn2(norm2(x), text); x += ff(norm3(x)).
final class BasicTransformerBlock: Sendable {
    let norm1: LayerNorm
    let attn1: Attention
    let norm2: LayerNorm
    let attn2: Attention
    let norm3: LayerNorm
    let ff: FeedForward

    init(_ loader: ParameterLoader, dim: Int, heads: Int, headDim: Int, crossAttentionDim: Int) {
        // Transformer2DModel's norm_eps default; the UNet does not pass its own norm_eps here.
        let eps: Float = 1e-5
        norm1 = LayerNorm(loader.scoped("norm1"), features: dim, eps: eps)
        attn1 = Attention(loader.scoped("attn1"), queryDim: dim, contextDim: dim, heads: heads, headDim: headDim)
        norm2 = LayerNorm(loader.scoped("norm2"), features: dim, eps: eps)
        attn2 = Attention(loader.scoped("attn2"), queryDim: dim, contextDim: crossAttentionDim, heads: heads, headDim: headDim)
        norm3 = LayerNorm(loader.scoped("norm3"), features: dim, eps: eps)
        ff = FeedForward(loader.scoped("ff"), dim: dim)
    }

    /// tokens [N, L, dim], encoderHiddenStates [N, Lk, crossAttentionDim] -> [N, L, dim]
    func callAsFunction(_ tokens: Tensor, encoderHiddenStates: Tensor) -> Tensor {
        let hidden = attn1(norm1(tokens), residual: tokens)
        let attended = attn2(norm2(hidden), context: encoderHiddenStates, residual: hidden)
        return ff(norm3(attended), residual: attended)
    }
}

/// diffusers `FeedForward` with GEGLU: net.0.proj (dim -> 2 * 4dim), a * gelu(gate), net.2 (4dim -> dim).
struct FeedForward: Sendable {
    /// "net.0.proj": the GEGLU projection, value half first, gate half second.
    let net_0_proj: Linear
    /// "net.2" (net.1 is a dropout).
    let net_2: Linear

    init(_ loader: ParameterLoader, dim: Int) {
        let inner = dim * 4
        net_0_proj = Linear(loader.scoped("net.0.proj"), in: dim, out: inner * 2)
        net_2 = Linear(loader.scoped("net.2"), in: inner, out: dim)
    }

    func callAsFunction(_ x: Tensor, residual: Tensor? = nil) -> Tensor {
        net_2(linearGEGLU(x, weight: net_0_proj.weight, bias: net_0_proj.bias), residual: residual)
    }
}
