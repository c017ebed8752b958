// `import`: a checkpoint file or folder (GGUF, Hugging Face) -> a model store. The conversion is
// ModelStore.importCheckpoint (Data module); this file declares the kind.
//
// Identity: the Pipeline fingerprints a node from its kind, version, params, input digests and seed;
// a kind cannot add a content digest of a file it reads. So the source's sha256 is a REQUIRED
// parameter: the stage refuses a source whose bytes do not hash to it, which ties every cached
// result to the checkpoint's content. The path is still a parameter too, so moving the file
// re-imports it once (same bytes -> same store digest, so downstream stages stay cached).

import Data
import Foundation
import Pipeline

public struct ImportStage: StageKind {
    public init() {}
    public let name = "import"
    public let version = 1
    public let doc = "Converts a GGUF file or Hugging Face folder (checked against its sha256) into a model store."
    public let params = [
        ParamDecl("source", .string(), doc: "Path of the .gguf file or HF folder, relative to the working directory."),
        ParamDecl("sha256", .string(), doc: "Expected content digest of the source (`sha256sum FILE`; for a folder, as `streamline import` prints)."),
    ]
    public let inputs: [InputDecl] = []
    public let outputs = [OutputDecl("model", storeKind: ModelStore.storeKind, doc: "Config, weights and tokenizer.")]

    struct Params: Decodable { var source: String; var sha256: String }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        let url = URL(fileURLWithPath: p.source)
        let digest = try ModelStore.contentDigest(of: url)
        guard digest == p.sha256.lowercased() else {
            throw DataError.malformed(format: "import source", path: url.path, at: "sha256",
                                      detail: "the content hashes to \(digest), the spec expects \(p.sha256); fetch the right file (make models) or update the spec's sha256")
        }
        let store = try ModelStore.importCheckpoint(url)
        let storeDigest = try store.write(to: context.outputs["model"]!)
        context.log("imported \(p.source): \(store.config.layers.count) layers, d \(store.config.hiddenSize), V \(store.config.vocabSize); store \(storeDigest)")
    }
}
