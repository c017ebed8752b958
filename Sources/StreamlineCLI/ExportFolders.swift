// `streamline run` writes each cached export node's `destination` folder after the run (a cache hit
// included: a missing or edited file is written again), with a model card for Hugging Face folders.
// Here rather than in Stages because it needs the plan and the cache: scheduling, not computing.

import Data
import Foundation
import Pipeline
import Stages

/// Writing export stages' destination folders from the cache.
enum ExportFolders {
    /// What `materialize` did for one export node.
    struct Outcome: Sendable, Equatable {
        var id: String
        var folder: URL
        /// Files written; empty when the folder already held exactly these files.
        var written: [String]
    }

    /// For every `export` node of `spec` (those `targets` need; none = all) that is cached and has a
    /// non-empty `destination`: writes the folder's files where missing or different, and for a
    /// Hugging Face folder its model card (README.md, from the plan and the cache records). Nodes not
    /// cached (failed, skipped) are passed over. Two nodes with one destination fail to plan.
    @discardableResult
    static func materialize(_ spec: Spec, specFile: URL, targets: [String] = [], cache: Cache,
                            log: (String) -> Void = { _ in }) throws -> [Outcome] {
        // Planning hashes file parameters (a model file: tenths of a second); most specs export nothing.
        guard spec.stages.contains(where: { $0.kind.value == ExportStage().name }) else { return [] }
        let plan = try Planner.plan(spec, registry: StageCatalog.registry) { cache.record($0)?.outputs }
        var outcomes: [Outcome] = []
        for node in try plan.closure(of: targets) where node.kind == ExportStage().name {
            guard case .string(let destination)? = node.params["destination"], !destination.isEmpty else { continue }
            let folder = Planner.path(destination, relativeTo: spec.baseDirectory)
            guard cache.lookup(node.fingerprint) != nil else { continue }
            let files = try HFFolderStore.read(cache.outputURL(node.fingerprint, "folder"))
            var written = try files.write(to: folder)
            if !files.tensors.isEmpty, let card = try ModelCard.forExport(node, plan: plan, cache: cache, spec: spec, specFile: specFile),
               try writeIfChanged(Data(card.markdown.utf8), to: folder.appendingPathComponent("README.md")) {
                written.append("README.md")
            }
            log("export   \(node.id) -> \(folder.path) " + (written.isEmpty ? "(up to date)" : "(wrote \(written.joined(separator: ", ")))"))
            outcomes.append(Outcome(id: node.id, folder: folder, written: written))
        }
        return outcomes
    }

    /// Writes `bytes` to `url` unless it already holds exactly them; whether it wrote.
    static func writeIfChanged(_ bytes: Data, to url: URL) throws -> Bool {
        if (try? Data(contentsOf: url)) == bytes { return false }
        try bytes.write(to: url, options: .atomic)
        return true
    }
}
