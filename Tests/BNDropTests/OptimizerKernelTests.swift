import BNDropKernels
import XCTest

/// Adam's kernel divides √v by the same c for every parameter by multiplying with 1/c in double
/// precision (optimizers.c says why that gives the float quotient). These tests hold it to the plain
/// float division: every mantissa for several divisors, random ones for many, the special values, and
/// whole Adam steps bit for bit against the formula written out.
final class OptimizerKernelTests: XCTestCase {
    private func quotients(_ a: [Float], _ c: Float) -> [Float] {
        var out = [Float](repeating: 0, count: a.count)
        a.withUnsafeBufferPointer { a in
            out.withUnsafeMutableBufferPointer { bndk_divide_by(a.baseAddress!, c, $0.baseAddress!, Int64(a.count)) }
        }
        return out
    }

    private func assertQuotients(_ a: [Float], _ c: Float, file: StaticString = #filePath, line: UInt = #line) {
        let fast = quotients(a, c)
        var wrong = 0
        var example = ""
        for i in a.indices {
            let exact = a[i] / c
            let same = fast[i].bitPattern == exact.bitPattern || (fast[i].isNaN && exact.isNaN)
            if !same {
                if wrong == 0 { example = "\(a[i]) / \(c): \(fast[i]), division gives \(exact)" }
                wrong += 1
            }
        }
        XCTAssertEqual(wrong, 0, "\(wrong) of \(a.count) quotients differ, e.g. \(example)", file: file, line: line)
    }

    /// The rounding of a/c depends on the mantissas only (for normal quotients), so all 2^23 mantissas
    /// of a in [1, 2) cover every a for these divisors.
    func testEveryMantissaGivesTheQuotient() {
        let mantissas = (0..<(1 << 23)).map { Float(bitPattern: 0x3F80_0000 | UInt32($0)) }
        // Adam's c after 1, 2 and 1000 steps with β2 = 0.999, and mantissas at both ends and in between.
        let divisors: [Float] = [Float((1 - pow(0.999, 1.0)).squareRoot()), Float((1 - pow(0.999, 2.0)).squareRoot()),
                                 Float((1 - pow(0.999, 1000.0)).squareRoot()), Float(1).nextDown, 0.1, Float(3).nextUp]
        for c in divisors { assertQuotients(mantissas, c) }
    }

    func testRandomDivisorsGiveTheQuotient() {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let c = Float.random(in: Float.leastNormalMagnitude...1, using: &random)
            let a = (0..<2_000).map { _ in Float(bitPattern: UInt32.random(in: 0x0080_0000...0x7F7F_FFFF, using: &random)) }
            assertQuotients(a, c)
        }
    }

    /// Zero, infinity, NaN, the largest and smallest floats (quotients that overflow or fall below the
    /// normal range), and divisors outside the range where the inverse is used (there the kernel divides).
    func testSpecialValuesGiveTheQuotient() {
        let a: [Float] = [0, -0, .infinity, -.infinity, .nan, .greatestFiniteMagnitude, .leastNormalMagnitude,
                          .leastNonzeroMagnitude, 1, 3, 1e-30, 1e30, 0x1p-74, 0x1.fffffep127]
        for c: Float in [1, 0x1p-12, 0x1p50, 0x1p51, 1e-38, .leastNonzeroMagnitude, 0, .infinity, .nan, 3e38] {
            assertQuotients(a, c)
        }
    }

    /// Whole Adam steps (1,003 parameters: the vector loop and its tail), against the update written out
    /// with float division, bit for bit: p, m and v.
    func testAdamStepMatchesTheFormulaBitForBit() {
        var random = SystemRandomNumberGenerator()
        let count = 1_003
        var p = (0..<count).map { _ in Float.random(in: -1...1, using: &random) }
        var m = [Float](repeating: 0, count: count), v = [Float](repeating: 0, count: count)
        var (pRef, mRef, vRef) = (p, m, v)
        let (beta1, beta2, eps, lr): (Float, Float, Float, Float) = (0.9, 0.999, 1e-8, 0.01)
        for t in 1...30 {
            let g = (0..<count).map { _ in Float.random(in: -2...2, using: &random) * (t % 7 == 0 ? 1e-6 : 1) }
            let stepSize = Float(Double(lr) / (1 - pow(Double(beta1), Double(t))))
            let c = Float((1 - pow(Double(beta2), Double(t))).squareRoot())
            for i in 0..<count {
                mRef[i] = mRef[i] + (g[i] - mRef[i]) * (1 - beta1)
                vRef[i] = beta2 * vRef[i] + (1 - beta2) * g[i] * g[i]
                let denom = vRef[i].squareRoot() / c + eps
                pRef[i] = pRef[i] - stepSize * mRef[i] / denom
            }
            g.withUnsafeBufferPointer { g in
                bndk_adam_step(&p, g.baseAddress!, &m, &v, Int64(count), 1 - beta1, beta2, 1 - beta2, eps, stepSize, c, 0, 0)
            }
            XCTAssertEqual(p.map(\.bitPattern), pRef.map(\.bitPattern), "parameters after step \(t)")
            XCTAssertEqual(m.map(\.bitPattern), mRef.map(\.bitPattern), "first moments after step \(t)")
            XCTAssertEqual(v.map(\.bitPattern), vRef.map(\.bitPattern), "second moments after step \(t)")
        }
    }

    /// Late in a run, the moments of parameters whose gradient stays zero fall through the subnormal range,
    /// where the kernel computes a vector in double precision, each operation rounded to float (Intel's
    /// cores run float operations on subnormal values in microcode). Those vectors must still give the
    /// formula's bits: p, m, v and g drawn from every range (subnormal, tiny, normal, zero, both signs), a
    /// vector with one such lane among normal ones, with and without coupled weight decay, with √v divided
    /// through the inverse and by division (c outside the inverse's range), 60 steps of mostly zero
    /// gradients, which take subnormal first moments towards zero.
    func testAdamStepWithSubnormalValuesMatchesTheFormulaBitForBit() {
        // Both ways whatever this CPU measures, then the measured one.
        defer { bndk_set_subnormal_policy(Int32(BNDK_SUBNORMALS_MEASURED)) }
        for policy in [BNDK_SUBNORMALS_IN_DOUBLE, BNDK_SUBNORMALS_IN_FLOAT, BNDK_SUBNORMALS_MEASURED] {
            bndk_set_subnormal_policy(Int32(policy))
            if policy != BNDK_SUBNORMALS_MEASURED {
                XCTAssertEqual(bndk_subnormals_take_double_path(), policy == BNDK_SUBNORMALS_IN_DOUBLE ? 1 : 0)
            }
            // Steps after which some first moment was subnormal, over the four settings: the two without
            // coupled decay keep subnormal moments in nearly every step (their dead lanes' moments decay
            // by 0.1 a step, and a lane takes up to 151 steps to reach 0).
            let steps = checkAdamStepsThroughTheSubnormalRange(policy: Int(policy))
            print("Adam, policy \(policy): \(steps) of 240 steps left subnormal first moments")
            XCTAssertGreaterThanOrEqual(steps, 60, "the runs should pass through the subnormal range")
        }
    }

    private func checkAdamStepsThroughTheSubnormalRange(policy: Int) -> Int {
        let count = 16 * 40 + 5
        var stepsWithSubnormalMoments = 0
        for (coupled, c) in [(0, Float(0.0316)), (1, Float(0.5)), (0, Float(0x1p60)), (1, Float(0x1p-127))] {
            var p = vectorsWithOddLanes(count), m = vectorsWithOddLanes(count), v = vectorsWithOddLanes(count).map { abs($0) }
            var (pRef, mRef, vRef) = (p, m, v)
            let (keep1, beta2, keep2, eps, stepSize, decay): (Float, Float, Float, Float, Float, Float) =
                (0.1, 0.999, 0.001, 1e-8, 0.01, 0.01)
            for step in 1...60 {
                // Mostly zero gradients (dead units), some of every kind.
                let g = mostlyZeroGradients(count, step: step)
                for i in 0..<count {
                    let gi = coupled == 1 ? g[i] + decay * pRef[i] : g[i]
                    mRef[i] = mRef[i] + (gi - mRef[i]) * keep1
                    vRef[i] = beta2 * vRef[i] + keep2 * gi * gi
                    let denom = vRef[i].squareRoot() / c + eps
                    pRef[i] = pRef[i] - stepSize * mRef[i] / denom
                }
                g.withUnsafeBufferPointer { g in
                    bndk_adam_step(&p, g.baseAddress!, &m, &v, Int64(count), keep1, beta2, keep2, eps, stepSize, c,
                                   Int32(coupled), decay)
                }
                XCTAssertEqual(Self.firstDifference(p, pRef), "", "parameters, step \(step), coupled \(coupled), c \(c), policy \(policy)")
                XCTAssertEqual(Self.firstDifference(m, mRef), "", "first moments, step \(step), coupled \(coupled), c \(c), policy \(policy)")
                XCTAssertEqual(Self.firstDifference(v, vRef), "", "second moments, step \(step), coupled \(coupled), c \(c), policy \(policy)")
                if m.contains(where: Self.isSubnormal) { stepsWithSubnormalMoments += 1 }
            }
        }
        return stepsWithSubnormalMoments
    }

    /// A random float of one kind: 0 (kind 0), subnormal (1), tiny normal, 2^-126 to about 2^-65 (2), or
    /// ordinary, 1e-4 to 1 (3), either sign.
    private static func randomValue(kind: Int) -> Float {
        let sign: Float = Bool.random() ? -1 : 1
        switch kind {
        case 0: return 0
        case 1: return sign * Float(bitPattern: UInt32.random(in: 1...0x007F_FFFF))
        case 2: return sign * Float(bitPattern: UInt32.random(in: 0x0080_0000...0x1F00_0000))
        default: return sign * Float.random(in: 1e-4...1)
        }
    }

    /// `count` values in vectors of 16: every fourth vector of random kinds, the others ordinary values with
    /// one lane of zero, a subnormal or a tiny value (the kind and the lane by the vector's index).
    private func vectorsWithOddLanes(_ count: Int) -> [Float] {
        (0..<count).map { i in
            let vector = i / 16
            let kind = vector % 4 == 0 ? Int.random(in: 0...3) : (i % 16 == vector % 16 ? vector % 3 : 3)
            return Self.randomValue(kind: kind)
        }
    }

    /// A step's gradients as dead units have them: zero but for every fifth value, which is of a random kind.
    private func mostlyZeroGradients(_ count: Int, step: Int) -> [Float] {
        (0..<count).map { i in (i + step) % 5 == 0 ? Self.randomValue(kind: Int.random(in: 0...3)) : 0 }
    }

    private static func isSubnormal(_ x: Float) -> Bool { x != 0 && abs(x) < Float.leastNormalMagnitude }

    /// "" when `a` and `b` hold the same bits, else the first index where they differ and both values.
    private static func firstDifference(_ a: [Float], _ b: [Float]) -> String {
        guard let i = a.indices.first(where: { a[$0].bitPattern != b[$0].bitPattern }) else { return "" }
        return "[\(i)]: \(a[i]) against \(b[i])"
    }

    /// SGD's momentum buffers of dead units decay through the subnormal range too: the same check as
    /// Adam's, both ways, against torch.optim.SGD's update written out (plain, with dampening and weight
    /// decay, with Nesterov), bit for bit: p and the buffers.
    func testSGDMomentumWithSubnormalValuesMatchesTheFormulaBitForBit() {
        defer { bndk_set_subnormal_policy(Int32(BNDK_SUBNORMALS_MEASURED)) }
        let count = 16 * 40 + 7
        for policy in [BNDK_SUBNORMALS_IN_DOUBLE, BNDK_SUBNORMALS_IN_FLOAT] {
            bndk_set_subnormal_policy(Int32(policy))
            var stepsWithSubnormalBuffers = 0
            for (momentum, dampening, decay, nesterov): (Float, Float, Float, Bool) in
                    [(0.9, 0, 0, false), (0.9, 0.1, 0.01, false), (0.5, 0, 1e-3, true)] {
                var p = vectorsWithOddLanes(count), buffer = [Float](repeating: 0, count: count)
                var (pRef, bufferRef) = (p, buffer)
                let lr: Float = 0.01, keep = 1 - dampening
                for step in 1...60 {
                    let g = step == 1 ? vectorsWithOddLanes(count) : mostlyZeroGradients(count, step: step)
                    for i in 0..<count {
                        let gi = decay != 0 ? g[i] + decay * pRef[i] : g[i]
                        let b = step > 1 ? momentum * bufferRef[i] + keep * gi : gi
                        bufferRef[i] = b
                        pRef[i] = pRef[i] - lr * (nesterov ? gi + momentum * b : b)
                    }
                    g.withUnsafeBufferPointer { g in
                        bndk_sgd_step(&p, g.baseAddress!, &buffer, Int64(count), lr, momentum, dampening, decay,
                                      nesterov ? 1 : 0, step > 1 ? 1 : 0)
                    }
                    let what = "step \(step), momentum \(momentum), dampening \(dampening), decay \(decay), "
                        + "nesterov \(nesterov), policy \(policy)"
                    XCTAssertEqual(Self.firstDifference(p, pRef), "", "parameters, \(what)")
                    XCTAssertEqual(Self.firstDifference(buffer, bufferRef), "", "buffers, \(what)")
                    if buffer.contains(where: Self.isSubnormal) { stepsWithSubnormalBuffers += 1 }
                }
            }
            // Over the three settings (the plain one keeps subnormal buffers in nearly every step).
            print("SGD, policy \(policy): \(stepsWithSubnormalBuffers) of 180 steps left subnormal buffers")
            XCTAssertGreaterThanOrEqual(stepsWithSubnormalBuffers, 40, "the runs should pass through the subnormal range")
        }
    }

    /// SGD's first step with momentum and no weight decay copies the gradient into the buffer, as
    /// torch.optim.SGD does (buf = g.clone()): its bits, signalling NaN and subnormals included, in a
    /// vector that takes the double way (its tiny values) as in one that does not.
    func testSGDFirstStepCopiesTheGradientIntoTheBufferBitForBit() {
        defer { bndk_set_subnormal_policy(Int32(BNDK_SUBNORMALS_MEASURED)) }
        let special: [Float] = [Float(bitPattern: 0x7F80_2669), Float(bitPattern: 0xFFA0_0001), .nan, -.infinity,
                                Float(bitPattern: 0x8064_1600), .leastNonzeroMagnitude, -0.0, 0, 0x1p-120, 1e-3,
                                Float(bitPattern: 0x0000_0001), -1, 3, 0.5, Float(bitPattern: 0x0040_0000), 2]
        let gradient = special + special.map { $0 == 0 || $0.isNaN ? 1 : $0 * 0 + 1 } + special.reversed() + [7]
        for policy in [BNDK_SUBNORMALS_IN_DOUBLE, BNDK_SUBNORMALS_IN_FLOAT] {
            bndk_set_subnormal_policy(Int32(policy))
            var p = [Float](repeating: 1, count: gradient.count), buffer = [Float](repeating: 0, count: gradient.count)
            gradient.withUnsafeBufferPointer { g in
                bndk_sgd_step(&p, g.baseAddress!, &buffer, Int64(gradient.count), 0.01, 0.9, 0, 0, 0, 0)
            }
            XCTAssertEqual(buffer.map(\.bitPattern), gradient.map(\.bitPattern), "policy \(policy)")
        }
    }
}
