// The article's dropout experiment through the Swift API (the C twin is examples/dropout_regression.c;
// both print the same figures for the same seed).
//
// 50 points x = linspace(−1, 1), y = x + 0.3·N(0, 1), and a second noisy draw as the test set. A
// 1-100-100-1 ReLU net, plain and with dropout 0.5 after the first Linear and 0.2 after the second, both
// from the same initial weights, trained with Adam (lr 0.01) on the MSE for 1000 full-batch epochs.
//
// Usage: DropoutExperiment [--data DIR] [--out DIR] [--seed S] [--epochs N] [--batch-size N] [--short]
//   --data DIR is accepted and ignored, as in the C twin (the points are generated); --seed S is a
//   whole number from 0 to 2^64 - 1; --epochs N (default 1000; 200 with --short, for the test suite),
//   --batch-size N (default 50, all points): whole numbers from 1 to 1000000, as the C program takes them.
// Writes DIR/dropout_points.csv, dropout_fit.csv, dropout_uncertainty.csv (Monte-Carlo dropout mean and
// mean ∓ 2 standard deviations, 200 passes), dropout_loss.csv, dropout.json, dropout_table.csv,
// dropout_settings.csv.
import BNDrop
import Foundation

/// SplitMix64 with Box-Muller: the noise both twins of this experiment draw, bit for bit.
struct NoiseSource {
    var state: UInt64
    mutating func nextUInt64() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Double { Double(nextUInt64() >> 11) * 0x1p-53 }
    mutating func normal() -> Double {
        let u1 = uniform(), u2 = uniform()
        return (-2 * log(1 - u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

func option(_ name: String, _ fallback: String) -> String {
    let args = CommandLine.arguments
    guard let at = args.firstIndex(of: name), at + 1 < args.count else { return fallback }
    return args[at + 1]
}

/// The value of a whole-number option: digits only, within `range` (the C experiments' rules and
/// messages); `fallback` when the option is absent; exits with status 2 otherwise.
func wholeNumberOption<Value: FixedWidthInteger>(_ name: String, _ fallback: Value, _ range: ClosedRange<Value>,
                                                 rule: String) -> Value {
    let args = CommandLine.arguments
    guard let at = args.firstIndex(of: name) else { return fallback }
    let program = args[0]
    guard at + 1 < args.count else {
        FileHandle.standardError.write(Data("\(program): \(name) needs a value\n".utf8))
        exit(2)
    }
    let text = args[at + 1]
    guard !text.isEmpty, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let value = Value(text),
          range.contains(value) else {
        FileHandle.standardError.write(Data("\(program): \(name) takes \(rule), got '\(text)'\n".utf8))
        exit(2)
    }
    return value
}

/// --epochs or --batch-size: from 1 to 1 000 000.
func countOption(_ name: String, _ fallback: Int) -> Int {
    wholeNumberOption(name, fallback, 1...1_000_000, rule: "a whole number from 1 to 1000000")
}

let usage = "usage: DropoutExperiment [--data DIR] [--out DIR] [--seed S] [--epochs N] [--batch-size N] [--short]\n"
    + "  writes the dropout experiment's CSV and JSON files into DIR (default report/data)\n"

/// --help prints the usage and exits 0; an unknown argument prints it to stderr and exits 2, before
/// anything is written (as the C experiments do).
func checkArguments() {
    let args = CommandLine.arguments.dropFirst()
    if args.contains("--help") || args.contains("-h") {
        print(usage, terminator: "")
        exit(0)
    }
    let takesValue: Set = ["--data", "--out", "--seed", "--epochs", "--batch-size"]
    var i = args.startIndex
    while i < args.endIndex {
        if takesValue.contains(args[i]) {
            i += 2
        } else if args[i] == "--short" {
            i += 1
        } else {
            FileHandle.standardError.write(Data("DropoutExperiment: unknown argument '\(args[i])'\n\(usage)".utf8))
            exit(2)
        }
    }
}

func writeAtomically(_ text: String, to path: String) throws {
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

func regressionNet(dropout: Bool, seed: UInt64) throws -> Sequential {
    let net = try Sequential(sampleShape: [1], seed: seed)
    try net.addLinear(100)
    if dropout { try net.addDropout(0.5) }
    try net.addReLU()
    try net.addLinear(100)
    if dropout { try net.addDropout(0.2) }
    try net.addReLU()
    try net.addLinear(1)
    return net
}

func run() throws {
    checkArguments()
    let outDir = option("--out", "report/data")
    let count = 50
    let short = CommandLine.arguments.contains("--short")
    let epochs = countOption("--epochs", short ? 200 : 1000)
    let batchSize = countOption("--batch-size", count)
    let seed = wholeNumberOption("--seed", UInt64(0), 0...UInt64.max,
                                 rule: "a whole number from 0 to 18446744073709551615")
    try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)

    var noise = NoiseSource(state: seed)
    let x = (0..<count).map { Float(-1 + 2 * Double($0) / Double(count - 1)) }
    let yTrain = x.map { $0 + Float(0.3 * noise.normal()) }
    let yTest = x.map { $0 + Float(0.3 * noise.normal()) }
    let train = try Dataset(features: x, sampleShape: [1], targets: yTrain)
    let test = try Dataset(features: x, sampleShape: [1], targets: yTest)

    let plain = try regressionNet(dropout: false, seed: seed)
    let dropout = try regressionNet(dropout: true, seed: seed)
    // The same initial weights: Linear layers 0, 2, 4 of the plain net are 0, 3, 6 of the dropout net.
    for (from, to) in [(0, 0), (2, 3), (4, 6)] {
        for name in ["weight", "bias"] { try dropout.setTensor("\(to).\(name)", plain.tensor("\(from).\(name)")) }
    }

    var rows: [Int: [Double]] = [:]  // epoch → [train plain, train dropout, test plain, test dropout]
    for (column, net) in [plain, dropout].enumerated() {
        let adam = try Adam(parameters: net.parameters, learningRate: 0.01)
        try fit(network: net, optimizer: adam, data: train, epochs: epochs, batchSize: batchSize, shuffleSeed: seed,
                validation: test) { event in
            if event.kind == .epoch, event.epoch % 50 == 0 || event.epoch == epochs - 1 {
                // The training loss in eval mode (no dropout), comparable between the two nets.
                let trainLoss = try evaluate(network: net, data: train).loss
                rows[event.epoch, default: [0, 0, 0, 0]][column] = trainLoss
                rows[event.epoch, default: [0, 0, 0, 0]][column + 2] = event.validationLoss
            }
            return true
        }
    }

    var loss = "epoch,train_plain,train_dropout,test_plain,test_dropout\n"
    for epoch in rows.keys.sorted() {
        loss += "\(epoch + 1)," + rows[epoch, default: []].map { String(format: "%.6f", $0) }.joined(separator: ",") + "\n"
    }
    var points = "x,y_train,y_test\n"
    for i in 0..<count { points += String(format: "%.6f,%.6f,%.6f\n", x[i], yTrain[i], yTest[i]) }
    plain.isTraining = false
    dropout.isTraining = false
    let grid = (0..<201).map { Float(-1 + 2 * Double($0) / 200) }
    let fitPlain = try plain.forward(grid, batch: grid.count), fitDropout = try dropout.forward(grid, batch: grid.count)
    var curves = "x,plain,dropout\n"
    for i in grid.indices { curves += String(format: "%.6f,%.6f,%.6f\n", grid[i], fitPlain[i], fitDropout[i]) }
    // Monte-Carlo dropout: the spread of the dropout net's predictions over random masks.
    let mc = try dropout.predictMCDropout(input: grid, batch: grid.count, passes: 200, seed: seed)
    var band = "x,mc_mean,lower,upper\n"
    for i in grid.indices {
        let sd = Double(mc.variance[i]).squareRoot(), mean = Double(mc.mean[i])
        band += String(format: "%.6f,%.6f,%.6f,%.6f\n", grid[i], mc.mean[i], mean - 2 * sd, mean + 2 * sd)
    }

    let testPlain = try evaluate(network: plain, data: test).loss
    let testDropout = try evaluate(network: dropout, data: test).loss
    try writeAtomically(loss, to: "\(outDir)/dropout_loss.csv")
    try writeAtomically(points, to: "\(outDir)/dropout_points.csv")
    try writeAtomically(curves, to: "\(outDir)/dropout_fit.csv")
    try writeAtomically(band, to: "\(outDir)/dropout_uncertainty.csv")
    try writeAtomically(String(format: "\"dropout\": {\"test_loss_plain\": %.6f, \"test_loss_dropout\": %.6f}", testPlain, testDropout),
                        to: "\(outDir)/dropout.json")
    try writeAtomically(String(format: "model,metric,value\nregression plain,test MSE,%.4f\nregression + dropout,test MSE,%.4f\n",
                               testPlain, testDropout), to: "\(outDir)/dropout_table.csv")
    let steps = epochs * ((count + batchSize - 1) / batchSize)
    try writeAtomically("epochs,batch_size,iterations\n\(epochs),\(batchSize),\(steps)\n", to: "\(outDir)/dropout_settings.csv")
    let epochWord = epochs == 1 ? "epoch" : "epochs"
    print(String(format: "dropout (Swift): %d \(epochWord), test MSE plain %.4f, with dropout %.4f", epochs, testPlain, testDropout))
    // As in the C twin: with --short (the test suite) a training loss that did not fall is an error,
    // in other runs a warning.
    let epochsSeen = rows.keys.sorted()
    guard let first = epochsSeen.first, let last = epochsSeen.last, first != last,
          let start = rows[first], let end = rows[last], end[0] < start[0], end[1] < start[1] else {
        if short { throw BNDError.numeric("a training loss did not fall") }
        FileHandle.standardError.write(Data("warning: a training loss did not fall\n".utf8))
        return
    }
}

do {
    try run()
} catch {
    FileHandle.standardError.write(Data("DropoutExperiment: \(error)\n".utf8))
    exit(1)
}
