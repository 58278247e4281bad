// The C ABI used from Swift: the bnd_* functions are called through their C declarations (bndrop.h,
// imported by BNDropCSupport) and resolve to the @_cdecl exports of BNDropC — the code that makes up
// libbndrop.so. The results are compared with the Swift API doing the same work.
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

    func testVersionAndStatusStrings() {
        // BND_VERSION_NUMBER is an expression macro, which Swift does not import; rebuild it from its parts.
        XCTAssertEqual(bnd_version_number(), UInt32(BND_VERSION_MAJOR * 10000 + BND_VERSION_MINOR * 100 + BND_VERSION_PATCH))
        XCTAssertEqual(String(cString: bnd_version_string()), BND_VERSION_STRING)
        XCTAssertTrue(String(cString: bnd_status_string(BND_ERR_SHAPE)).hasPrefix("BND_ERR_SHAPE"))
    }

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

    func testBadCallsReturnStatusesWithMessages() {
        bnd_clear_last_error()
        XCTAssertEqual(bnd_net_add_linear(nil, 3), BND_ERR_INVALID_ARGUMENT)
        XCTAssertTrue(String(cString: bnd_last_error()).contains("NULL"))

        let net = makeNet(seed: 0)
        defer { bnd_net_free(net) }
        var out = [Float](repeating: 0, count: 64)
        XCTAssertEqual(bnd_net_backward(net, out, 8, nil, 0), BND_ERR_STATE)
        XCTAssertEqual(bnd_net_forward(net, Self.input, Int64.max, &out, out.count), BND_ERR_SHAPE)
        XCTAssertEqual(bnd_net_forward(net, Self.input, 8, &out, 23), BND_ERR_SHAPE)
        XCTAssertTrue(String(cString: bnd_last_error()).contains("24"), String(cString: bnd_last_error()))
        XCTAssertEqual(bnd_net_forward(net, Self.input, 1, &out, out.count), BND_ERR_SHAPE) // BN, batch 1
        XCTAssertEqual(bnd_net_add_dropout(net, .nan), BND_ERR_INVALID_ARGUMENT)
        XCTAssertEqual(bnd_net_get_tensor(net, "7.weight", &out, out.count), BND_ERR_INVALID_ARGUMENT)
        var params = bnd_sgd_default_params()
        params.lr = .nan
        var opt: OpaquePointer?
        XCTAssertEqual(bnd_optimizer_create_sgd(net, &params, &opt), BND_ERR_INVALID_ARGUMENT)
        XCTAssertNil(opt)
        var loss: Float = 0
        XCTAssertEqual(bnd_loss_cross_entropy(Self.input, [0, 9], 2, 4, &loss, nil), BND_ERR_INVALID_ARGUMENT)
    }

    func testLayerOutputsAndShapes() {
        let net = makeNet(seed: 1)
        defer { bnd_net_free(net) }
        var output = [Float](repeating: 0, count: 24)
        ok(bnd_net_forward(net, Self.input, 8, &output, output.count))
        var layer = [Float](repeating: 0, count: 8 * 16)
        var written = 0
        ok(bnd_net_get_layer_output(net, 4, &layer, layer.count, &written))
        XCTAssertEqual(written, 24)
        XCTAssertEqual(Array(layer[0..<24]), output)
        var dims = [Int64](repeating: 0, count: Int(BND_MAX_RANK))
        var rank = 0
        ok(bnd_net_layer_output_shape(net, 1, &dims, dims.count, &rank))
        XCTAssertEqual(Array(dims[0..<rank]), [16])
    }
}
