// The numbers the independent Python reference (scripts/reference/smollm2_perplexity.py) produced for
// SmolLM2-135M-Instruct on Hamlet; the command that reproduces them is inside the JSON.

import Foundation

struct ReferenceFixture: Decodable {
    let command: String
    let modelSHA256: String
    let textSHA256: String
    let tokensScored: Int
    let meanNLL: Double
    let perplexity: Double
    let tokenIDs: [Int32]
    let protocolInfo: EvalProtocol

    struct EvalProtocol: Decodable {
        let window: Int
        let windows: Int
        let bos: Bool
    }

    enum CodingKeys: String, CodingKey {
        case command, perplexity
        case modelSHA256 = "model_sha256", textSHA256 = "text_sha256", tokensScored = "tokens_scored"
        case meanNLL = "mean_nll", tokenIDs = "token_ids", protocolInfo = "protocol"
    }

    static func load() throws -> ReferenceFixture {
        try JSONDecoder().decode(ReferenceFixture.self,
                                 from: Data(contentsOf: Fetched.fixture("smollm2-hamlet-reference.json")))
    }
}
