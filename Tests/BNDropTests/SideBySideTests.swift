import XCTest
@_spi(Testing) import BNDrop

/// Several networks' training steps at the same time (`Sequential.trainSteps`): the same bits as the
/// steps one after the other, for any thread count; a refused call changes nothing; a step that fails
/// while running fails alone.
final class SideBySideTests: XCTestCase {
    /// The article's regression net, with Dropout(`p`) after each hidden Linear when `p` > 0.
    private func regressionNet(p: Float, seed: UInt64) throws -> Sequential {
        let net = try Sequential(sampleShape: [1], seed: seed)
        try net.addLinear(100)
        if p > 0 { try net.addDropout(p) }
        try net.addReLU()
        try net.addLinear(100)
        if p > 0 { try net.addDropout(p) }
        try net.addReLU()
        try net.addLinear(1)
        return net
    }

    private let points = 50
    private var input: [Float] { (0..<points).map { -1 + 2 * Float($0) / Float(points - 1) } }
    private var targets: [Float] {
        var random = SeededRandom(seed: 5)
        return input.map { $0 + 0.3 * random.nextNormal() }
    }

    /// Every tensor of `net` (and its layers' outputs are not compared: the state is what training keeps).
    private func state(_ net: Sequential) throws -> [String: [UInt32]] {
        var state: [String: [UInt32]] = [:]
        for (name, _) in net.stateDict { state[name] = try net.tensor(name).map(\.bitPattern) }
        return state
    }

    /// The plain and dropout nets trained `steps` steps, side by side or one after the other.
    private func trainPair(sideBySide: Bool, threads: Int, steps: Int) throws -> (losses: [UInt32], states: [[String: [UInt32]]]) {
        let original = ThreadPool.shared.threadCount
        try ThreadPool.shared.setThreadCount(threads)
        defer { try? ThreadPool.shared.setThreadCount(original) }
        let nets = [try regressionNet(p: 0, seed: 1), try regressionNet(p: 0.2, seed: 2)]
        let optimizers: [Optimizer] = try nets.map { try Adam(parameters: $0.parameters, learningRate: 0.01) }
        var losses: [UInt32] = []
        let (x, y) = (input, targets)
        for _ in 0..<steps {
            if sideBySide {
                let results = try x.withUnsafeBufferPointer { xs in
                    try y.withUnsafeBufferPointer { ys in
                        try Sequential.trainSteps(networks: nets, optimizers: optimizers, input: xs.baseAddress!,
                                                  targets: ys.baseAddress!, batch: points)
                    }
                }
                losses += try results.map { try $0.get().bitPattern }
            } else {
                for (net, optimizer) in zip(nets, optimizers) {
                    losses.append(try net.trainStep(input: x, targets: y, optimizer: optimizer).bitPattern)
                }
            }
        }
        return (losses, try nets.map(state))
    }

    func testSideBySideGivesTheBitsOfStepsOneAfterTheOtherForAnyThreadCount() throws {
        let reference = try trainPair(sideBySide: false, threads: 1, steps: 30)
        XCTAssertEqual(reference.losses.count, 60)
        XCTAssertEqual(reference.states.count, 2)
        for threads in [1, 2, 3] {
            let together = try trainPair(sideBySide: true, threads: threads, steps: 30)
            XCTAssertEqual(together.losses, reference.losses, "losses with \(threads) threads")
            XCTAssertEqual(together.states[0], reference.states[0], "the plain net with \(threads) threads")
            XCTAssertEqual(together.states[1], reference.states[1], "the dropout net with \(threads) threads")
        }
    }

    /// Calls that break a rule of running together, or that a single step would refuse for any of the
    /// networks, run no step at all.
    func testRefusedCallsChangeNoNetwork() throws {
        let a = try regressionNet(p: 0.2, seed: 3), b = try regressionNet(p: 0, seed: 4)
        let optA = try Adam(parameters: a.parameters), optB = try Adam(parameters: b.parameters)
        let withBatchNorm = try Sequential(sampleShape: [1], seed: 5)
        try withBatchNorm.addLinear(4)
        try withBatchNorm.addBatchNorm()
        try withBatchNorm.addLinear(1)
        let optNorm = try Adam(parameters: withBatchNorm.parameters)
        let wide = try Sequential(sampleShape: [2], seed: 6)
        try wide.addLinear(1)
        let optWide = try Adam(parameters: wide.parameters)
        let before = try [a, b, withBatchNorm, wide].map(state)
        let x: [Float] = [0.5, -0.25, 1], y: [Float] = [1, 0, -1]
        func call(_ nets: [Sequential], _ optimizers: [Optimizer], batch: Int = 3, input: [Float]? = nil,
                  targets: [Float]? = nil) -> BNDError? {
            let xs = input ?? x, ys = targets ?? y
            do {
                _ = try xs.withUnsafeBufferPointer { xp in
                    try ys.withUnsafeBufferPointer { yp in
                        try Sequential.trainSteps(networks: nets, optimizers: optimizers, input: xp.baseAddress!,
                                                  targets: yp.baseAddress!, batch: batch)
                    }
                }
                return nil
            } catch let error as BNDError {
                return error
            } catch {
                return .internalError("\(error)")
            }
        }
        let refusals: [(String, BNDError?)] = [
            ("no networks", call([], [])),
            ("one optimizer short", call([a, b], [optA])),
            ("the same network twice", call([a, a], [optA, try Adam(parameters: a.parameters)])),
            ("the same optimizer twice", call([a, a], [optA, optA])),
            ("another network's optimizer", call([a, b], [optB, optA])),
            ("a batch of one through a BatchNorm", call([a, withBatchNorm], [optA, optNorm], batch: 1)),
            ("different input sizes", call([a, wide], [optA, optWide])),
            ("a NaN input", call([a, b], [optA, optB], input: [0, .nan, 1])),
            ("an infinite target", call([a, b], [optA, optB], targets: [0, 1, -.infinity])),
        ]
        for (what, error) in refusals {
            XCTAssertNotNil(error, "\(what): refused")
        }
        if case .invalidArgument = refusals[2].1 {} else { XCTFail("the same network twice: invalidArgument") }
        if case .shape = refusals[5].1 {} else { XCTFail("a batch of one through a BatchNorm: shape") }
        if case .numeric = refusals[7].1 {} else { XCTFail("a NaN input: numeric") }
        XCTAssertEqual(try [a, b, withBatchNorm, wide].map(state), before, "a refused call changed a network")
    }

    /// A step that fails while running (a loss that overflows) leaves its network as it was; the other
    /// network's step takes place, as it would alone.
    func testAFailedStepFailsAlone() throws {
        let healthy = try regressionNet(p: 0, seed: 8), broken = try regressionNet(p: 0, seed: 9)
        let reference = try regressionNet(p: 0, seed: 8)
        try broken.setTensor("4.bias", [3e38])  // the output overflows: an infinite loss
        let optimizers: [Optimizer] = try [healthy, broken, reference].map { try Adam(parameters: $0.parameters) }
        let brokenBefore = try state(broken)
        let (x, y) = (input, targets)
        let results = try x.withUnsafeBufferPointer { xs in
            try y.withUnsafeBufferPointer { ys in
                try Sequential.trainSteps(networks: [healthy, broken], optimizers: [optimizers[0], optimizers[1]],
                                          input: xs.baseAddress!, targets: ys.baseAddress!, batch: points)
            }
        }
        XCTAssertEqual(results.count, 2)
        let alone = try reference.trainStep(input: x, targets: y, optimizer: optimizers[2])
        XCTAssertEqual(try results[0].get().bitPattern, alone.bitPattern, "the healthy step's loss")
        XCTAssertEqual(try state(healthy), try state(reference), "the healthy network stepped as alone")
        guard case .failure(.numeric) = results[1] else { return XCTFail("the broken step: numeric, got \(results[1])") }
        XCTAssertEqual(try state(broken), brokenBefore, "the failed step changed its network")
    }
}
