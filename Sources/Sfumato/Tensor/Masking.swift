/// Inpainting's mask operations. Masks are [N, 1, H, W] with 1 where the picture is redrawn,
/// broadcast over the channels of the tensor they apply to.

/// torch's `F.interpolate(x, size: (height, width))` in its default mode "nearest":
/// output (y, x) takes input (floor(y * in_h / height), floor(x * in_w / width)), scales in float32.
public func nearestResized(_ x: Tensor, height: Int, width: Int) -> Tensor {
    OpProfile.record("nearest resize") {
        precondition(x.rank == 4 && height > 0 && width > 0, "nearestResized: \(x.shape) to \(height)x\(width)")
        let (planes, inHeight, inWidth) = (x.shape[0] * x.shape[1], x.shape[2], x.shape[3])
        let rowScale = Float(inHeight) / Float(height), columnScale = Float(inWidth) / Float(width)
        let rows = (0..<height).map { min(Int((Float($0) * rowScale).rounded(.down)), inHeight - 1) }
        let columns = (0..<width).map { min(Int((Float($0) * columnScale).rounded(.down)), inWidth - 1) }
        let out = Tensor(uninitializedShape: [x.shape[0], x.shape[1], height, width])
        let source = x.pointer, target = out.pointer
        for plane in 0..<planes {
            for (y, row) in rows.enumerated() {
                for (column, sourceColumn) in columns.enumerated() {
                    target[(plane * height + y) * width + column] = source[(plane * inHeight + row) * inWidth + sourceColumn]
                }
            }
        }
        return out
    }
}

/// diffusers' `image * (mask < 0.5)`: the pixels outside the mask, zero (mid-gray) inside it.
public func keepingUnmasked(_ image: Tensor, mask: Tensor) -> Tensor {
    OpProfile.record("mask image") {
        checkMask(mask, for: image)
        let out = Tensor(uninitializedShape: image.shape)
        let plane = image.shape[2] * image.shape[3], channels = image.shape[1]
        let x = image.pointer, m = mask.pointer, y = out.pointer
        for item in 0..<image.shape[0] {
            for channel in 0..<channels {
                let offset = (item * channels + channel) * plane
                for index in 0..<plane { y[offset + index] = x[offset + index] * (m[item * plane + index] < 0.5 ? 1 : 0) }
            }
        }
        return out
    }
}

/// `(1 - mask) * original + mask * generated`, in torch's order: the masked-latent blending with which
/// diffusers inpaints with an ordinary (4-channel) UNet after every step.
public func blendMasked(original: Tensor, generated: Tensor, mask: Tensor) -> Tensor {
    OpProfile.record("mask blend") {
        precondition(original.shape == generated.shape, "blendMasked: \(original.shape) and \(generated.shape)")
        checkMask(mask, for: original)
        let out = Tensor(uninitializedShape: original.shape)
        let plane = original.shape[2] * original.shape[3], channels = original.shape[1]
        let a = original.pointer, b = generated.pointer, m = mask.pointer, y = out.pointer
        for item in 0..<original.shape[0] {
            for channel in 0..<channels {
                let offset = (item * channels + channel) * plane
                for index in 0..<plane {
                    let weight = m[item * plane + index]
                    y[offset + index] = (1 - weight) * a[offset + index] + weight * b[offset + index]
                }
            }
        }
        return out
    }
}

private func checkMask(_ mask: Tensor, for x: Tensor) {
    precondition(x.rank == 4 && mask.shape == [x.shape[0], 1, x.shape[2], x.shape[3]],
                 "mask \(mask.shape) does not fit \(x.shape)")
}
