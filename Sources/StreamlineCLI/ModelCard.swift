// The README.md of an exported Hugging Face folder: what the model is (from its config), how it was
// made (the pipeline stages behind it, read from the plan and the cache records: source model and
// digest, each stage's kind and the parameters it did not leave at their defaults, the text it
// trained on), how it scored (every cached `evaluate` of the same model) and the spec that made it.
// `streamline export` writes the first part and the command that made the store; a pipeline's export
// stage writes all of it. Hub-style front matter lets a model hub index the folder.

import Data
import Foundation
import Model
import Pipeline
import Stages
import TensorStore

struct ModelCard {
    var title: String
    var config: ModelConfig
    var storeDigest: String
    var dtype: String
    /// One line per stage, the source first; empty for a store exported by hand.
    var recipe: [String] = []
    /// (evaluation node, text, tokens scored, perplexity).
    var evaluations: [(node: String, text: String, tokens: Int, perplexity: Double)] = []
    /// How the store was made when no pipeline is known: its provenance command.
    var madeBy: String?
    var spec: (name: String, text: String)?

    var markdown: String {
        let c = config
        let heads = Set(c.layers.map { "\($0.heads)/\($0.kvHeads)" }).sorted().joined(separator: ", ")
        let ffn = Set(c.layers.map(\.ffn)).sorted().map(String.init).joined(separator: ", ")
        var lines = [
            "---", "library_name: transformers", "pipeline_tag: text-generation", "tags: [streamline, structured-pruning]", "---",
            "", "# \(title)", "",
            "A \(c.architecture.rawValue) decoder written by Streamline \(StreamlineVersion.string). Load it with transformers ≥ 4.45",
            "(`AutoModelForCausalLM.from_pretrained(folder)`, `AutoTokenizer.from_pretrained(folder)`).", "",
            "| | |", "|---|---|",
            "| widths | hidden \(c.hiddenSize)" + (c.normDivisor != c.hiddenSize ? " (of \(c.normDivisor))" : "")
                + ", \(c.layers.count) layers, query/KV heads \(heads) of \(c.headDim), FFN \(ffn), vocabulary \(c.vocabSize) |",
            "| parameters | \(c.parameterCount < 1_000_000 ? String(c.parameterCount) : String(format: "%.1fM", Double(c.parameterCount) / 1e6))"
                + (c.tiedEmbeddings ? " (head tied to the embedding)" : " (untied head)") + " |",
            "| weights | \(dtype) |",
            "| Streamline store digest | `\(storeDigest)` |",
        ]
        if let madeBy { lines += ["", "Made by: `\(madeBy)`"] }
        if !recipe.isEmpty {
            lines += ["", "## How it was made", ""] + recipe.enumerated().map { "\($0.offset + 1). \($0.element)" }
        }
        if !evaluations.isEmpty {
            lines += ["", "## Evaluation", "", "Perplexity in non-overlapping windows (the evaluate stages of the same pipeline):", "",
                      "| evaluation | text | tokens scored | perplexity |", "|---|---|---:|---:|"]
            lines += evaluations.map { "| `\($0.node)` | \($0.text) | \($0.tokens) | \(String(format: "%.2f", $0.perplexity)) |" }
        }
        if let spec {
            lines += ["", "## The spec", "", "`\(spec.name)` (run with `streamline run -s \(spec.name)`):", "", "```yaml",
                      spec.text.trimmingCharacters(in: .newlines), "```"]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The card of `streamline export STORE`: the store's config and the command that wrote it.
    static func forStore(_ url: URL, dtype: String) throws -> ModelCard {
        let reader = try TensorStoreReader(url: url, expectingKind: ModelStore.storeKind)
        var card = ModelCard(title: url.deletingPathExtension().lastPathComponent,
                             config: try reader.metadata("model_config", as: ModelConfig.self),
                             storeDigest: reader.digest, dtype: dtype)
        card.madeBy = reader.provenance.map { $0.command.joined(separator: " ") }
        return card
    }

    /// The card of export node `node`: the model it exports, the stages behind that model, and the
    /// cached evaluations of the same model.
    static func forExport(_ node: PlanNode, plan: Plan, cache: Cache, spec: Spec, specFile: URL) throws -> ModelCard? {
        guard let modelInput = node.inputs.first(where: { $0.name == "model" }), let source = plan.node(modelInput.upstream),
              cache.record(source.fingerprint) != nil else { return nil }
        let reader = try TensorStoreReader(url: cache.outputURL(source.fingerprint, modelInput.output), expectingKind: ModelStore.storeKind)
        // Named as the folder a reader downloads (`exported/smollm2-25` → "smollm2-25"); the stage
        // that made the model closes the "How it was made" list.
        let folder: String? = if case .string(let destination)? = node.params["destination"], !destination.isEmpty {
            URL(fileURLWithPath: destination).lastPathComponent
        } else { nil }
        var card = ModelCard(title: folder ?? source.id, config: try reader.metadata("model_config", as: ModelConfig.self),
                             storeDigest: modelInput.digest, dtype: node.params["dtype"]?.description ?? "float32")
        card.recipe = lineage(of: source, plan: plan, base: spec.baseDirectory)
        for evaluation in plan.nodes where evaluation.kind == "evaluate"
            && evaluation.inputs.contains(where: { $0.name == "model" && $0.upstream == source.id }) {
            guard cache.record(evaluation.fingerprint) != nil,
                  let (metrics, _) = try? EvaluationStore.read(cache.outputURL(evaluation.fingerprint, "metrics")) else { continue }
            let data = evaluation.inputs.first { $0.name == "data" }.map { "`\($0.upstream).\($0.output)`" } ?? "?"
            card.evaluations.append((evaluation.id, data, metrics.tokensScored, metrics.perplexity))
        }
        card.spec = (specFile.lastPathComponent, try String(contentsOf: specFile, encoding: .utf8))
        return card
    }

    /// The model's ancestry along `model` inputs, source first: one line per stage with the
    /// parameters it set away from their defaults and the stores it read besides the model.
    static func lineage(of last: PlanNode, plan: Plan, base: URL?) -> [String] {
        var chain: [PlanNode] = []
        var next: PlanNode? = last
        while let node = next {
            chain.insert(node, at: 0)
            next = node.inputs.first { $0.name == "model" }.flatMap { plan.node($0.upstream) }
        }
        return chain.map { node in
            let declared = StageCatalog.registry[node.kind]?.params ?? []
            let set = declared.filter { node.params[$0.name] != nil && node.params[$0.name] != $0.defaultValue }
                .map { "\($0.name)=\(shown(node.params[$0.name]!, base: base))" }
            let reads = node.inputs.filter { $0.name != "model" }.map { "\($0.name) from `\($0.upstream)`" }
            var line = "`\(node.kind)` (`\(node.id)`)"
            if !set.isEmpty { line += ": " + set.joined(separator: ", ") }
            if !reads.isEmpty { line += "; " + reads.joined(separator: ", ") }
            if node.kind == "import", let digest = node.fileDigests.values.first, !line.contains(digest) { line += "; source digest `\(digest)`" }
            return line
        }
    }

    /// A parameter as written: absolute paths (how file parameters arrive) relative to the spec's folder.
    static func shown(_ value: ParamValue, base: URL?) -> String {
        guard let base, case .string(let text) = value, text.hasPrefix("/") else { return value.description }
        return text.components(separatedBy: ", ").map { relative($0, to: base.standardizedFileURL.path) }.joined(separator: ", ")
    }

    /// `path` from `folder`: `../models/x.gguf` for a file beside the spec's folder.
    static func relative(_ path: String, to folder: String) -> String {
        let target = path.split(separator: "/"), start = folder.split(separator: "/")
        let common = zip(target, start).prefix { $0 == $1 }.count
        guard common > 0 else { return path }
        return (Array(repeating: "..", count: start.count - common) + target[common...].map(String.init)).joined(separator: "/")
    }
}
