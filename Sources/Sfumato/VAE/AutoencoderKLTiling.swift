/// Tiled decoding, equal to diffusers' `AutoencoderKL.tiled_decode` (after `enable_tiling()`): latents
/// wider or taller than one tile (sample_size pixels) are decoded in tiles overlapping by a quarter,
/// each blended into its upper and left neighbours over the overlap, so the decoder's activations never
/// exceed one tile's. Tiles are decoded one row at a time; only the row above is kept for blending.
extension AutoencoderKL {
    /// Latents (divided by the scaling factor) -> image, as `decode`, in tiles when they exceed one.
    public func decodeTiled(_ latents: Tensor) throws -> Tensor {
        guard latents.rank == 4, latents.shape[0] > 0, latents.shape[1] == config.latentChannels,
              latents.shape[2] > 0, latents.shape[3] > 0 else {
            throw ModelInputError.shape(model: "VAE", input: "latents", expected: "[N, \(config.latentChannels), H, W]", found: latents.shape)
        }
        let scale = 1 << (config.blockOutChannels.count - 1)
        let tileSize = config.sampleSize
        let tileLatents = Int(Double(tileSize) / Double(scale))
        let (height, width) = (latents.shape[2], latents.shape[3])
        guard height > tileLatents || width > tileLatents else { return try decode(latents) }
        // diffusers' overlap arithmetic (tile_overlap_factor 0.25), in Python's int() of doubles.
        let stride = Int(Double(tileLatents) * 0.75)
        let blend = Int(Double(tileSize) * 0.25)
        let kept = tileSize - blend
        guard stride >= 1, kept == stride * scale else {
            // Otherwise diffusers' tiles would not add up to the image (or its loop would not advance).
            throw ModelConfigError("VAE sample_size \(tileSize) cannot be used as a tile size for tiled decoding "
                                   + "(it must be a multiple of \(4 * scale))")
        }
        let output = Tensor(zeros: [latents.shape[0], config.outChannels, height * scale, width * scale])
        var above: [Tensor] = []
        for top in Swift.stride(from: 0, to: height, by: stride) {
            var row: [Tensor] = []
            var left = 0
            for (column, start) in Swift.stride(from: 0, to: width, by: stride).enumerated() {
                let cut = spatialCrop(latents, rows: top..<Swift.min(top + tileLatents, height),
                                      columns: start..<Swift.min(start + tileLatents, width))
                var tile = try decode(cut)
                if !above.isEmpty { tile = blendingEdge(tile, from: above[column], edge: .top, extent: blend) }
                if let previous = row.last { tile = blendingEdge(tile, from: previous, edge: .left, extent: blend) }
                let columns = Swift.min(kept, tile.shape[3])
                paste(tile, into: output, top: top * scale, left: left, rows: Swift.min(kept, tile.shape[2]), columns: columns)
                left += columns
                row.append(tile)
            }
            above = row
        }
        return output
    }
}
