// What the test targets that run stage kinds in-process share (StagesTests, StreamlineCLITests):
// temporary folders, running one kind as the planner would hand it its parameters, and a held-out
// loss. A library target, not a test target, because test targets cannot share files.

import Data
import Foundation
import Pipeline
import Training

/// A fresh temporary folder holding `files` (name → text).
public func temporaryProject(_ files: [String: String]) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("streamline-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    for (name, text) in files { try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) }
    return dir
}

/// A fresh empty temporary folder.
public func temporaryFolder() throws -> URL { try temporaryProject([:]) }

/// Runs `kind` in-process on `inputs` with its declared defaults overridden by `params`; returns the
/// output store files (fresh names in `dir`). With `resume`, a training kind continues from and
/// writes that resume point; `progress` and `log` see what the runner would.
public func runKind(_ kind: any StageKind, params: [String: ParamValue] = [:], inputs: [String: URL] = [:],
                    in dir: URL, seed: UInt64 = 1, resume: ResumePoint? = nil,
                    progress: @escaping @Sendable (StageProgress) -> Void = { _ in },
                    log: @escaping @Sendable (String) -> Void = { _ in }) throws -> [String: URL] {
    var resolved: [String: ParamValue] = [:]
    // As the planner resolves: defaults filled in, an omittedAtDefault parameter at its default left out.
    for decl in kind.params {
        if let value = params[decl.name] ?? decl.defaultValue, !decl.isLeftOut(at: value) { resolved[decl.name] = value }
    }
    let outputs = Dictionary(uniqueKeysWithValues: kind.outputs.map {
        ($0.name, dir.appendingPathComponent("\(kind.name.replacingOccurrences(of: "/", with: "-"))-\($0.name)-\(UUID().uuidString).h5"))
    })
    var context = StageContext(stageID: kind.name, params: resolved, seed: seed, inputs: inputs, outputs: outputs, threads: 1,
                               progress: progress, log: log)
    context.resume = resume
    try kind.run(context)
    return outputs
}

/// Mean loss of a model store on the last `windows` windows of `T` tokens of a token dataset.
public func heldOutLoss(_ model: ModelStore, data: TokenDataset, windows: Int = 8, T: Int = 32) throws -> Double {
    let decoder = try model.decoder()
    let tokens = data.tokens
    let batches = (0..<windows).map { w -> TokenBatch in
        let start = tokens.count - (w + 1) * (T + 1)
        return TokenBatch(tokens: Array(tokens[start..<(start + T)]), targets: Array(tokens[(start + 1)...(start + T)]), B: 1, T: T)
    }
    return Training.heldOutLoss(decoder, batches: batches)
}
