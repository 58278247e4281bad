// The C ABI used from Swift: the bnd_* functions are called through their C declarations (bndrop.h,
// imported by BNDropCSupport) and resolve to the @_cdecl exports of BNDropC — the code that makes up
// libbndrop.so. The results are compared with the Swift API doing the same work. The status of each
// bad call is the C program's table (Tests/C/test_bad_calls.c, test_data.c); golden cases through the
// C ABI are in BNDropGoldenTests.
import XCTest
import BNDrop
import BNDropCSupport

final class CABITests: XCTestCase {
    /// Fails with the library's message unless `status` is BND_OK.
    private func ok(_ status: bnd_status, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(status, BND_OK, String(cString: bnd_last_error()), file: file, line: line)
    }

    private func makeNet(seed: UInt64) -> OpaquePointer? {
        var net: OpaquePointer?
        let shape: [Int64] = [4]
        ok(bnd_net_create(shape, shape.count, &net))
        ok(bnd_net_seed(net, seed))
        ok(bnd_net_add_linear(net, 16))
        ok(bnd_net_add_batchnorm(net, nil))
        ok(bnd_net_add_relu(net))
        ok(bnd_net_add_dropout(net, 0.2))
        ok(bnd_net_add_linear(net, 3))
        return net
    }

    private static let input: [Float] = (0..<32).map { Float(($0 * 37) % 11) / 5 - 1 }
    private static let labels: [Int32] = (0..<8).map { Int32($0 % 3) }

    func testTrainingThroughTheCABIMatchesTheSwiftAPI() throws {
        // C ABI
        let net = makeNet(seed: 3)
        defer { bnd_net_free(net) }
        var params = bnd_sgd_default_params()
        params.lr = 0.1
        params.momentum = 0.9
        var opt: OpaquePointer?
        ok(bnd_optimizer_create_sgd(net, &params, &opt))
        defer { bnd_optimizer_free(opt) }
        var cLosses: [Float] = []
        for _ in 0..<20 {
            var loss: Float = 0
            ok(bnd_net_train_step_classification(net, opt, Self.input, Self.labels, 8, &loss))
            cLosses.append(loss)
        }
        XCTAssertLessThan(cLosses.last!, cLosses.first!)

        // Swift API, same seed, same data
        let swiftNet = try Sequential(sampleShape: [4], seed: 3)
        try swiftNet.addLinear(16)
        try swiftNet.addBatchNorm()
        try swiftNet.addReLU()
        try swiftNet.addDropout(0.2)
        try swiftNet.addLinear(3)
        let sgd = try SGD(parameters: swiftNet.parameters, learningRate: 0.1, momentum: 0.9)
        var swiftLosses: [Float] = []
        for _ in 0..<20 {
            swiftLosses.append(try swiftNet.trainStep(input: Self.input, labels: Self.labels, optimizer: sgd))
        }
        XCTAssertEqual(cLosses, swiftLosses)

        // Every tensor, enumerated through the C ABI, equals the Swift network's.
        var count = 0
        ok(bnd_net_tensor_count(net, &count))
        XCTAssertEqual(count, swiftNet.stateDict.count)
        for index in 0..<count {
            var name = [CChar](repeating: 0, count: Int(BND_NAME_MAX))
            ok(bnd_net_tensor_name(net, index, &name, name.count))
            let key = name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            var numel = 0
            ok(bnd_net_tensor_numel(net, key, &numel))
            var values = [Float](repeating: .nan, count: numel)
            ok(bnd_net_get_tensor(net, key, &values, numel))
            XCTAssertEqual(values, try swiftNet.tensor(key), key)
        }
    }

    /// Collects the events bnd_fit reports (through user_data).
    private final class EventLog {
        var events: [bnd_fit_event] = []
    }

    func testFitThroughTheCABIMatchesTheSwiftAPI() throws {
        // 60 samples of {4}, 3 classes; a validation set of 20.
        let features: [Float] = (0..<240).map { Float(($0 * 53) % 17) / 8 - 1 }
        let labels: [Int32] = (0..<60).map { Int32(($0 * 7) % 3) }
        let shape: [Int64] = [4]
        var train: OpaquePointer?, validation: OpaquePointer?
        ok(bnd_dataset_from_labels(features, shape, 1, labels, 60, 0, &train))
        ok(bnd_dataset_from_labels(features, shape, 1, labels, 20, 0, &validation))
        defer { bnd_dataset_free(train); bnd_dataset_free(validation) }

        let net = makeNet(seed: 4)
        defer { bnd_net_free(net) }
        var sgd = bnd_sgd_default_params()
        sgd.lr = 0.05
        sgd.momentum = 0.9
        var opt: OpaquePointer?
        ok(bnd_optimizer_create_sgd(net, &sgd, &opt))
        defer { bnd_optimizer_free(opt) }
        var params = bnd_fit_default_params()
        params.epochs = 3
        params.batch_size = 16
        params.shuffle_seed = 9
        params.eval_batch_size = 8
        let log = EventLog()
        var summary = bnd_fit_summary()
        ok(bnd_fit(net, opt, train, validation, &params, { event, user in
            Unmanaged<EventLog>.fromOpaque(user!).takeUnretainedValue().events.append(event!.pointee)
            return 1
        }, Unmanaged.passUnretained(log).toOpaque(), &summary))

        let swiftNet = try Sequential(sampleShape: [4], seed: 4)
        try swiftNet.addLinear(16)
        try swiftNet.addBatchNorm()
        try swiftNet.addReLU()
        try swiftNet.addDropout(0.2)
        try swiftNet.addLinear(3)
        let optimizer = try SGD(parameters: swiftNet.parameters, learningRate: 0.05, momentum: 0.9)
        let data = try Dataset(features: features, sampleShape: [4], labels: labels)
        let check = try Dataset(features: Array(features[0..<80]), sampleShape: [4], labels: Array(labels[0..<20]))
        var swiftEvents: [FitEvent] = []
        let swiftSummary = try fit(network: swiftNet, optimizer: optimizer, data: data, epochs: 3, batchSize: 16,
                                   shuffleSeed: 9, validation: check, evalBatchSize: 8) {
            swiftEvents.append($0)
            return true
        }

        XCTAssertEqual(log.events.count, swiftEvents.count)
        for (c, s) in zip(log.events, swiftEvents) {
            XCTAssertEqual(c.kind, s.kind.rawValue)
            XCTAssertEqual(c.reserved, 0)
            XCTAssertEqual([c.epoch, c.step, c.global_step, c.batch_size].map(Int.init),
                           [s.epoch, s.step, s.globalStep, s.batchSize])
            XCTAssertEqual(c.loss, s.loss)
            XCTAssertEqual(c.validation_loss.isNaN, s.validationLoss.isNaN)
            if !s.validationLoss.isNaN {
                XCTAssertEqual(c.validation_loss, s.validationLoss)
                XCTAssertEqual(c.validation_accuracy, s.validationAccuracy)
            }
        }
        XCTAssertEqual(Int(summary.steps), swiftSummary.steps)
        XCTAssertEqual(Int(summary.epochs_completed), 3)
        XCTAssertEqual(summary.stopped_early, 0)
        XCTAssertEqual(summary.last_loss, swiftSummary.lastLoss)
        XCTAssertEqual(summary.validation_loss, swiftSummary.validation?.loss)
        XCTAssertEqual(summary.validation_accuracy, swiftSummary.validation?.accuracy)
        for (name, _) in swiftNet.stateDict {
            var numel = 0
            ok(bnd_net_tensor_numel(net, name, &numel))
            var values = [Float](repeating: .nan, count: numel)
            ok(bnd_net_get_tensor(net, name, &values, numel))
            XCTAssertEqual(values, try swiftNet.tensor(name), name)
        }

        // A C loader gives the Swift BatchLoader's batches.
        var loader: OpaquePointer?
        ok(bnd_loader_create(train, 16, 1, 9, 0, &loader))
        defer { bnd_loader_free(loader) }
        let swiftLoader = try BatchLoader(dataset: data, batchSize: 16, shuffle: true, seed: 9)
        for _ in 0..<2 {
            while true {
                var inputs: UnsafePointer<Float>?
                var batchLabels: UnsafePointer<Int32>?
                var size: Int64 = -1
                ok(bnd_loader_next(loader, &inputs, &batchLabels, nil, &size))
                guard let expected = swiftLoader.nextBatch() else {
                    XCTAssertEqual(size, 0)
                    break
                }
                XCTAssertEqual(Int(size), expected.size)
                guard let inputs, let batchLabels, Int(size) == expected.size else { return XCTFail("no batch") }
                XCTAssertEqual(Array(UnsafeBufferPointer(start: inputs, count: expected.size * 4)), expected.inputArray)
                XCTAssertEqual(Array(UnsafeBufferPointer(start: batchLabels, count: expected.size)), expected.labelArray)
            }
        }
    }
}
