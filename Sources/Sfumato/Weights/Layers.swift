/// Parameter holders for the standard layers, loaded by checkpoint name.
///
/// Each holder reads its tensors ("weight", "bias") from a loader already scoped
/// to the layer (e.g. "down_blocks.0.resnets.1.conv1"); shapes come from the
/// model's configuration, so a checkpoint that does not fit is reported by
/// `ParameterLoader.finish()` instead of failing inside an op.

/// `torch.nn.Conv2d`: weight [out, in, kernel, kernel], optional bias [out].
struct Conv2d {
    let weight: Tensor
    let bias: Tensor?
    let stride: Int
    let padding: Int

    init(_ loader: ParameterLoader, in inChannels: Int, out outChannels: Int, kernel: Int,
         stride: Int = 1, padding: Int = 0, bias hasBias: Bool = true) {
        weight = loader("weight", shape: [outChannels, inChannels, kernel, kernel])
        bias = hasBias ? loader("bias", shape: [outChannels]) : nil
        self.stride = stride
        self.padding = padding
    }

    /// `residual`, if given, is added to the output (see `conv2d` for `residualIsScratch`);
    /// `normalizedBy` applies that group norm (then SiLU when `silu`) to the input first.
    /// `upsampled` convolves the nearest-neighbour 2x upsampling of `x`.
    func callAsFunction(_ x: Tensor, normalizedBy norm: GroupNorm? = nil, silu: Bool = false, upsampled: Bool = false,
                        residual: Tensor? = nil, residualIsScratch: Bool = false) -> Tensor {
        let inputNorm = norm.map { InputGroupNorm(groups: $0.groups, weight: $0.weight, bias: $0.bias, eps: $0.eps, silu: silu) }
        return conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, normalizing: inputNorm,
                      upsampledInput: upsampled, residual: residual, residualIsScratch: residualIsScratch)
    }
}

/// `torch.nn.Linear`: weight [out, in], optional bias [out]; acts on the last dimension.
struct Linear {
    let weight: Tensor
    let bias: Tensor?

    init(_ loader: ParameterLoader, in inFeatures: Int, out outFeatures: Int, bias hasBias: Bool = true) {
        weight = loader("weight", shape: [outFeatures, inFeatures])
        bias = hasBias ? loader("bias", shape: [outFeatures]) : nil
    }

    /// `residual`, if given, is added to the output.
    func callAsFunction(_ x: Tensor, residual: Tensor? = nil) -> Tensor { linear(x, weight: weight, bias: bias, residual: residual) }
}

/// `torch.nn.GroupNorm` with affine parameters [channels]; `silu` fuses the SiLU that usually follows.
struct GroupNorm {
    let weight: Tensor
    let bias: Tensor
    let groups: Int
    let eps: Float

    init(_ loader: ParameterLoader, channels: Int, groups: Int, eps: Float) {
        weight = loader("weight", shape: [channels])
        bias = loader("bias", shape: [channels])
        self.groups = groups
        self.eps = eps
    }

    func callAsFunction(_ x: Tensor, silu: Bool = false) -> Tensor {
        groupNorm(x, groups: groups, weight: weight, bias: bias, eps: eps, silu: silu)
    }
}

/// `torch.nn.LayerNorm` over the last dimension, affine parameters [features].
struct LayerNorm {
    let weight: Tensor
    let bias: Tensor
    let eps: Float

    init(_ loader: ParameterLoader, features: Int, eps: Float) {
        weight = loader("weight", shape: [features])
        bias = loader("bias", shape: [features])
        self.eps = eps
    }

    func callAsFunction(_ x: Tensor) -> Tensor { layerNorm(x, weight: weight, bias: bias, eps: eps) }
}
