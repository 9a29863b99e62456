/// How latents become pixels.
public enum LatentDecoder: Sendable {
    /// The model's VAE in one pass (`StableDiffusionPipeline.decode(_:)`).
    case vae
    /// The model's VAE in overlapping tiles (diffusers' `enable_tiling()`): memory of one tile at any size.
    case vaeTiled
    /// A tiny autoencoder (TAESD) in place of the VAE: much cheaper, a little softer.
    case tiny(AutoencoderTiny)
}

extension StableDiffusionPipeline {
    /// Latents to an 8-bit RGB image through `decoder`.
    public func decode(_ latents: Tensor, using decoder: LatentDecoder) throws -> RGBImage {
        switch decoder {
        case .vae:
            return try decode(latents)
        case .vaeTiled:
            return try RGBImage(decoded: try vae.decodeTiled(scaled(latents, by: 1 / vae.config.scalingFactor)))
        case let .tiny(autoencoder):
            try checkCompatible(autoencoder)
            return try RGBImage(decoded: try autoencoder.decode(scaled(latents, by: 1 / autoencoder.config.scalingFactor)))
        }
    }

    /// A tiny autoencoder must read this model's latents and give its image size.
    public func checkCompatible(_ autoencoder: AutoencoderTiny) throws(GenerationError) {
        let config = autoencoder.config
        guard config.latentChannels == vae.config.latentChannels, config.scaleFactor == vaeScaleFactor, config.outChannels == 3 else {
            throw .invalidRequest("the tiny autoencoder decodes \(config.latentChannels) latent channels at \(config.scaleFactor)x "
                                  + "into \(config.outChannels) channels; this model's VAE decodes \(vae.config.latentChannels) at "
                                  + "\(vaeScaleFactor)x into RGB")
        }
    }
}
