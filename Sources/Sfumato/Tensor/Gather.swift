/// One token per sequence: `x` [N, L, D] -> [N, D], row n taken at `positions[n]` (CLIP's pooled output).
public func selectTokens(_ x: Tensor, positions: [Int]) -> Tensor {
    precondition(x.rank == 3 && positions.count == x.shape[0] && positions.allSatisfy { (0..<x.shape[1]).contains($0) },
                 "selectTokens: positions \(positions) do not fit \(x.shape)")
    let (length, width) = (x.shape[1], x.shape[2])
    let out = Tensor(uninitializedShape: [x.shape[0], width])
    for (row, position) in positions.enumerated() {
        (out.pointer + row * width).update(from: x.pointer + (row * length + position) * width, count: width)
    }
    return out
}
