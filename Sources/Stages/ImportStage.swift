// `import`: a checkpoint file or folder (GGUF, Hugging Face) -> a model store. The conversion is
// ModelStore.importCheckpoint (Data module); this file declares the kind.
//
// Identity: `source` is a file parameter, so the planner fingerprints the checkpoint's content, not
// its path: replacing the file re-imports it, moving it (or the project) does not. `sha256` is an
// optional pin: when given, the stage refuses a source whose bytes hash to anything else.

import Data
import Foundation
import Pipeline

public struct ImportStage: StageKind {
    public init() {}
    public let name = "import"
    public let version = 1
    public let doc = "Converts a GGUF file or Hugging Face folder into a model store."
    public let params = [
        ParamDecl("source", .file, doc: "The .gguf file or HF folder, relative to the spec's folder."),
        ParamDecl("sha256", .string(), default: .string(""),
                  doc: "Optional pin: the expected content digest of the source (`sha256sum FILE`; for a folder, as `streamline import` prints); empty = not checked."),
    ]
    public let inputs: [InputDecl] = []
    public let outputs = [OutputDecl("model", storeKind: ModelStore.storeKind, doc: "Config, weights and tokenizer.")]

    struct Params: Decodable { var source: String; var sha256: String }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        let url = URL(fileURLWithPath: p.source)
        if !p.sha256.isEmpty {
            let digest = try ModelStore.contentDigest(of: url)
            guard digest == p.sha256.lowercased() else {
                throw DataError.malformed(format: "import source", path: url.path, at: "sha256",
                                          detail: "the content hashes to \(digest), the spec expects \(p.sha256); fetch the right file (make models) or update the spec's sha256")
            }
        }
        let store = try ModelStore.importCheckpoint(url)
        let storeDigest = try store.write(to: context.outputs["model"]!)
        context.log("imported \(p.source): \(store.config.layers.count) layers, d \(store.config.hiddenSize), V \(store.config.vocabSize); store \(storeDigest)")
    }
}
