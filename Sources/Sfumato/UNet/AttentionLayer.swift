/// diffusers `Attention` with the default processor, as used in the UNet's transformer blocks:
/// bias-free to_q/to_k/to_v, multi-head scaled dot-product attention, to_out.0 with bias.
final class Attention: Sendable {
    let to_q: Linear
    let to_k: Linear
    let to_v: Linear
    /// "to_out.0" in the checkpoint (to_out.1 is a dropout).
    let to_out: Linear
    let heads: Int

    /// `loader` is scoped to the attention (e.g. "...transformer_blocks.0.attn2");
    /// `contextDim` is the width of the keys' source (the query width for self-attention).
    init(_ loader: ParameterLoader, queryDim: Int, contextDim: Int, heads: Int, headDim: Int) {
        let inner = heads * headDim
        to_q = Linear(loader.scoped("to_q"), in: queryDim, out: inner, bias: false)
        to_k = Linear(loader.scoped("to_k"), in: contextDim, out: inner, bias: false)
        to_v = Linear(loader.scoped("to_v"), in: contextDim, out: inner, bias: false)
        to_out = Linear(loader.scoped("to_out.0"), in: inner, out: queryDim)
        self.heads = heads
    }

    /// x [B, L, queryDim], context [B, Lk, contextDim] (nil: self-attention) -> [B, L, queryDim];
    /// `residual` [B, L, queryDim], if given, is added to the output.
    func callAsFunction(_ x: Tensor, context: Tensor? = nil, residual: Tensor? = nil) -> Tensor {
        let source = context ?? x
        return to_out(attention(query: to_q(x), key: to_k(source), value: to_v(source), heads: heads), residual: residual)
    }
}
