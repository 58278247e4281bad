import XCTest
import BNDrop

/// AvgPool2d's 2×2, stride-2 C kernel gives the bits of the plain definition, ((a + b) + c) + d over 4,
/// for even and odd planes (an odd last row or column is in no window and gets a zero gradient).
final class PoolingKernelTests: XCTestCase {
    func testHalvingAveragePoolMatchesTheDefinitionBitForBit() throws {
        for (channels, height, width, batch) in [(3, 24, 24, 5), (6, 10, 10, 3), (2, 7, 9, 4), (1, 2, 2, 1), (4, 5, 38, 2)] {
            let pool = try AvgPool2d(inputShape: [channels, height, width], kernelSize: 2)
            let (oh, ow) = (height / 2, width / 2)
            XCTAssertEqual(pool.outputShape, [channels, oh, ow])
            var random = SeededRandom(seed: 9)
            let x = (0..<(batch * channels * height * width)).map { _ in random.nextNormal() }
            let dy = (0..<(batch * channels * oh * ow)).map { _ in random.nextNormal() }
            var expected = [Float](repeating: 0, count: dy.count)
            var expectedDx = [Float](repeating: 0, count: x.count)
            for plane in 0..<(batch * channels) {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let top = plane * height * width + 2 * oy * width + 2 * ox, bottom = top + width
                        let out = plane * oh * ow + oy * ow + ox
                        expected[out] = (x[top] + x[top + 1] + x[bottom] + x[bottom + 1]) / 4
                        for i in [top, top + 1, bottom, bottom + 1] { expectedDx[i] = dy[out] / 4 }
                    }
                }
            }
            let name = "\(batch)×[\(channels), \(height), \(width)]"
            let y = Array(UnsafeBufferPointer(start: try pool.forward(x, batch: batch), count: expected.count))
            XCTAssertEqual(y.map(\.bitPattern), expected.map(\.bitPattern), name)
            // A first backward on other values: the second must write every element again.
            _ = try pool.backward([Float](repeating: .nan, count: dy.count), batch: batch, needInputGradient: true)
            let dx = try XCTUnwrap(try pool.backward(dy, batch: batch, needInputGradient: true))
            XCTAssertEqual(Array(UnsafeBufferPointer(start: dx, count: x.count)).map(\.bitPattern),
                           expectedDx.map(\.bitPattern), name)
        }
    }
}
