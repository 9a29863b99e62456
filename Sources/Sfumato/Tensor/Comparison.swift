/// max |actual - expected| / max |expected|: how every comparison with PyTorch is measured.
/// NaN anywhere in `actual` gives infinity, so it can never pass a tolerance.
public func maxRelativeError(_ actual: Tensor, _ expected: Tensor) -> Float {
    precondition(actual.count == expected.count, "comparing \(actual.shape) with \(expected.shape)")
    var maxError: Float = 0
    var maxReference: Float = 0
    for index in 0..<actual.count {
        let difference = abs(actual[flat: index] - expected[flat: index])
        maxError = difference.isNaN ? .infinity : max(maxError, difference)
        maxReference = max(maxReference, abs(expected[flat: index]))
    }
    return maxError / max(maxReference, .leastNormalMagnitude)
}
