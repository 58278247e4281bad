import XCTest
@preconcurrency import BNDrop

final class DropoutTests: XCTestCase {
    private func dropoutNet(_ p: Float, features: Int, seed: UInt64 = 0) throws -> Sequential {
        let net = try Sequential(sampleShape: [features], seed: seed)
        try net.addDropout(p)
        return net
    }

    func testKeptFractionWithinStatisticalBoundsAndScaled() throws {
        let count = 1 << 20
        for p: Float in [0.2, 0.5, 0.8] {
            let net = try dropoutNet(p, features: count)
            let x = (0..<count).map { Float($0 % 97) * 0.01 + 0.5 }
            let y = try net.forward(x, batch: 1)
            let kept = y.enumerated().filter { $0.element != 0 }
            let fraction = Double(kept.count) / Double(count)
            // Binomial: 6 standard deviations, about 1 in 10⁹ to fail by chance.
            let sigma = (Double(p) * Double(1 - p) / Double(count)).squareRoot()
            XCTAssertEqual(fraction, Double(1 - p), accuracy: 6 * sigma, "p=\(p): kept fraction")
            for (i, value) in kept {
                XCTAssertEqual(value, x[i] / (1 - p), accuracy: abs(x[i]) * 1e-6, "p=\(p): kept value \(i) scaled by 1/(1-p)")
                if abs(value - x[i] / (1 - p)) > abs(x[i]) * 1e-6 { break }
            }
        }
    }

    func testBackwardUsesTheForwardMask() throws {
        let net = try dropoutNet(0.3, features: 1000)
        let x = [Float](repeating: 2, count: 2000)
        let y = try net.forward(x, batch: 2)
        let dy = (0..<2000).map { Float($0) * 0.001 }
        let dx = try net.backward(dy, batch: 2)
        for i in 0..<2000 {
            XCTAssertEqual(dx[i], y[i] == 0 ? 0 : dy[i] / 0.7, accuracy: 1e-6)
        }
    }

    func testEvalIsIdentityAndP0IdentityAndP1Zeros() throws {
        let x = (0..<500).map { Float($0) - 250.5 }
        let eval = try dropoutNet(0.5, features: 500)
        eval.isTraining = false
        XCTAssertEqual(try eval.forward(x, batch: 1), x)
        XCTAssertEqual(try eval.backward(x, batch: 1), x, "eval backward is the identity too")
        let p0 = try dropoutNet(0, features: 500)
        XCTAssertEqual(try p0.forward(x, batch: 1), x)
        let p1 = try dropoutNet(1, features: 500)
        let zeros = try p1.forward(x, batch: 1)
        XCTAssertEqual(zeros, [Float](repeating: 0, count: 500))
        XCTAssertFalse(zeros.contains { $0.isNaN }, "p = 1 must not divide by zero")
        XCTAssertEqual(try p1.backward(x, batch: 1), [Float](repeating: 0, count: 500))
    }

    func testSameSeedSameMasksDifferentSeedDifferentMasks() throws {
        let x = [Float](repeating: 1, count: 4096)
        let a = try dropoutNet(0.5, features: 4096, seed: 42), b = try dropoutNet(0.5, features: 4096, seed: 42)
        let c = try dropoutNet(0.5, features: 4096, seed: 43)
        let first = try a.forward(x, batch: 1)
        XCTAssertEqual(first, try b.forward(x, batch: 1))
        XCTAssertNotEqual(first, try c.forward(x, batch: 1))
        XCTAssertNotEqual(first, try a.forward(x, batch: 1), "each forward draws a new mask")
        // Reseeding starts the same sequence again.
        a.seed(42)
        XCTAssertEqual(try a.forward(x, batch: 1), first)
    }

    /// The masks are what Dropout's documentation says: one value of the layer's generator keys a pass,
    /// and element i is dropped when the top 24 bits of SplitMix64(key)'s (i+1)-th value, over 2^24,
    /// are below p. A batch of 3 × 333 (not a multiple of any vector width) covers the kernel's tail;
    /// p·2^24 a whole number (0.25, 0.5) or not (the kernel compares the top bits with ⌈p·2^24⌉).
    func testMasksFollowTheDocumentedCounterBasedDraw() throws {
        for p: Float in [0.3, 0.25, 0.5, 1e-3, Float(0.7).nextUp] { try checkMasksFollowTheDocumentedDraw(p: p) }
    }

    private func checkMasksFollowTheDocumentedDraw(p: Float) throws {
        let features = 333, batch = 3
        let net = try dropoutNet(p, features: features, seed: 7)
        let layer = try XCTUnwrap(net.layers[0] as? Dropout)
        let x = [Float](repeating: 1, count: batch * features)
        for pass in 0..<3 {
            var generator = layer.random
            let key = generator.next()
            _ = try net.forward(x, batch: batch)
            let expected: [Float] = (0..<(batch * features)).map { i in
                var z = key &+ UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                return Float(z >> 40) * (1 / 16_777_216) < p ? 0 : 1 / (1 - p)
            }
            XCTAssertEqual(layer.lastMask, expected, "p \(p), pass \(pass)")
            var after = layer.random
            XCTAssertEqual(after.next(), generator.next(), "one draw of the generator per pass")
        }
    }
}
