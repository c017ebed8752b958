// Small generic stage kinds under `debug/`: they exist to test and demonstrate the pipeline
// machinery (caching, sweeps, crashes, concurrency) in milliseconds, with real tensor stores.
// They are not part of any compression workflow.

import Foundation
import Pipeline
import Tensor
import TensorStore

/// The single tensor every debug store holds.
let debugTensorName = "x"

/// Writes `tensor` as a one-tensor store of kind "debug" at `url`.
func writeDebugStore(_ tensor: Tensor, to url: URL) throws {
    let writer = try TensorStoreWriter(url: url, kind: "debug")
    try writer.write(debugTensorName, tensor)
    _ = try writer.commit()
}

/// Reads the tensor of a debug store.
func readDebugStore(_ url: URL) throws -> Tensor {
    try TensorStoreReader(url: url).tensor(debugTensorName, verify: true)
}

/// `debug/constant`: a seeded random (rows, cols) tensor times `scale`.
public struct DebugConstant: StageKind {
    public init() {}
    public let name = "debug/constant"
    public let version = 1
    public let doc = "Test kind: writes a seeded normal random tensor x of shape (rows, cols), times scale."
    public let params = [
        ParamDecl("rows", .int(1...4096), default: .int(4), doc: "Rows of x."),
        ParamDecl("cols", .int(1...4096), default: .int(4), doc: "Columns of x."),
        ParamDecl("scale", .double(-1e6...1e6), default: .double(1), doc: "Factor applied to every element."),
    ]
    public let inputs: [InputDecl] = []
    public let outputs = [OutputDecl("out", storeKind: "debug", doc: "The tensor x.")]

    struct Params: Decodable { var rows: Int; var cols: Int; var scale: Double }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        let x = Tensor.randn([p.rows, p.cols], seed: context.seed, std: Float(p.scale))  // x: (rows, cols)
        try writeDebugStore(x, to: context.outputs["out"]!)
    }
}

/// `debug/scale`: x times `factor`.
public struct DebugScale: StageKind {
    public init() {}
    public let name = "debug/scale"
    public let version = 1
    public let doc = "Test kind: multiplies the tensor of its input by factor."
    public let params = [ParamDecl("factor", .double(), default: .double(1), doc: "The factor.")]
    public let inputs = [InputDecl("x", storeKind: "debug", doc: "A debug store.")]
    public let outputs = [OutputDecl("out", storeKind: "debug", doc: "factor · x.")]

    struct Params: Decodable { var factor: Double }

    public func run(_ context: StageContext) throws {
        let x = try readDebugStore(context.inputs["x"]!)
        let factor = Float(try context.decodeParams(Params.self).factor)
        let out = Tensor(shape: x.shape, values: x.array.map { $0 * factor })
        try writeDebugStore(out, to: context.outputs["out"]!)
    }
}

/// `debug/sum`: a + b, elementwise.
public struct DebugSum: StageKind {
    public init() {}
    public let name = "debug/sum"
    public let version = 1
    public let doc = "Test kind: the elementwise sum of its two inputs (same shape)."
    public let params: [ParamDecl] = []
    public let inputs = [InputDecl("a", storeKind: "debug", doc: "First addend."),
                         InputDecl("b", storeKind: "debug", doc: "Second addend.")]
    public let outputs = [OutputDecl("out", storeKind: "debug", doc: "a + b.")]

    public func run(_ context: StageContext) throws {
        let a = try readDebugStore(context.inputs["a"]!), b = try readDebugStore(context.inputs["b"]!)
        guard a.shape == b.shape else {
            throw DebugStageError(message: "inputs a \(a.shape) and b \(b.shape) differ in shape")
        }
        let out = Tensor(shape: a.shape, values: zip(a.array, b.array).map { $0 + $1 })
        try writeDebugStore(out, to: context.outputs["out"]!)
    }
}

/// `debug/total`: the elementwise sum over every member of a swept stage (a gather, like a report).
public struct DebugTotal: StageKind {
    public init() {}
    public let name = "debug/total"
    public let version = 1
    public let doc = "Test kind: the elementwise sum of one output over every member of a sweep (same shapes)."
    public let params: [ParamDecl] = []
    public let inputs = [InputDecl("xs", storeKind: "debug", doc: "Every member's store.", many: true)]
    public let outputs = [OutputDecl("out", storeKind: "debug", doc: "Σ xs.")]

    public func run(_ context: StageContext) throws {
        let xs = try context.inputLists["xs", default: []].map(readDebugStore)
        guard let first = xs.first, xs.allSatisfy({ $0.shape == first.shape }) else {
            throw DebugStageError(message: "xs must be one or more stores of one shape")
        }
        var sum = [Float](repeating: 0, count: first.count)
        for x in xs { for (i, v) in x.array.enumerated() { sum[i] += v } }
        try writeDebugStore(Tensor(shape: first.shape, values: sum), to: context.outputs["out"]!)
    }
}

/// `debug/sleep`: waits, reporting progress each step; for crash, interrupt and concurrency tests.
public struct DebugSleep: StageKind {
    public init() {}
    public let name = "debug/sleep"
    public let version = 1
    public let doc = "Test kind: sleeps `seconds` in `steps` steps, reporting progress, then writes a 1-element store."
    public let params = [
        ParamDecl("seconds", .double(0...3600), default: .double(1), doc: "Total time to sleep."),
        ParamDecl("steps", .int(1...100_000), default: .int(10), doc: "Progress reports while sleeping."),
        ParamDecl("value", .double(), default: .double(0), doc: "The value written."),
    ]
    public let inputs: [InputDecl] = []
    public let outputs = [OutputDecl("out", storeKind: "debug", doc: "A tensor of shape (1) holding value.")]

    struct Params: Decodable { var seconds: Double; var steps: Int; var value: Double }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        for step in 1...p.steps {
            usleep(UInt32(p.seconds / Double(p.steps) * 1e6))
            context.progress(StageProgress(step: step, totalSteps: p.steps, loss: 1 / Double(step)))
        }
        try writeDebugStore(Tensor(shape: [1], values: [Float(p.value)]), to: context.outputs["out"]!)
    }
}

/// `debug/fail`: always fails; for keep-going and log tests.
public struct DebugFail: StageKind {
    public init() {}
    public let name = "debug/fail"
    public let version = 1
    public let doc = "Test kind: logs a line and fails with `message`."
    public let params = [ParamDecl("message", .string(), default: .string("failing on purpose"), doc: "The error text."),
                         ParamDecl("noise", .int(0...10_000), default: .int(0),
                                   doc: "Library-style diagnostics written to stderr before the error (this many) and at exit, as HDF5 does.")]
    public let inputs: [InputDecl] = []
    public let outputs = [OutputDecl("out", storeKind: "debug", doc: "Never written.")]

    struct Params: Decodable { var message: String; var noise: Int }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        context.log("about to fail")
        if p.noise > 0 {
            FileHandle.standardError.write(Data(String(repeating: debugDiagnostic, count: p.noise).utf8))
            atexit { _ = debugDiagnostic.withCString { write(2, $0, strlen($0)) } }
        }
        throw DebugStageError(message: p.message)
    }
}

/// Two lines in the shape of HDF5's error stack: what a library prints around a stage's own error.
let debugDiagnostic = "HDF5-DIAG: Error detected in HDF5 (1.10.10) thread 1:\n  #003: H5FDsec2.c line 864 in H5FD__sec2_write(): file write failed\n"

/// The failure of a debug kind.
public struct DebugStageError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { "\(message). This is a debug/test stage kind; remove it from real pipelines." }
}
