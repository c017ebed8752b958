// The node file a runner hands a stage process (Pipeline/NodeFile.swift), and ParamValue's typed
// Codable with the records written before it.

import Foundation
import Pipeline
import Testing

@Suite struct NodeFileTests {
    /// Each node written to a node file from the plan made before anything ran (inputs still
    /// pending), then run from that file alone, as `streamline run` does with its stage processes.
    @Test func nodesRunFromTheirFilesGiveThePlannedFingerprints() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = Cache(root: dir.appendingPathComponent("cache"))
        let spec = try parse(documentedDAG)
        let before = try Planner.plan(spec, registry: testRegistry)
        for node in before.nodes {
            let url = dir.appendingPathComponent("nodes/\(node.fingerprint).json")
            try NodeFile(node, from: before.nodes).write(to: url)
            let read = try NodeFile.read(url)
            #expect(read.nodes.last?.id == node.id && read.nodes.last?.params == node.params)
            #expect(read.nodes.last?.variables.map(\.value) == node.variables.map(\.value))
            let (plan, resolved) = try read.plan(for: node.id, path: url.path, registry: testRegistry, cache: cache)
            _ = try StageRunner.run(resolved, plan: plan, registry: testRegistry, cache: cache, threads: 1, toolVersion: "test")
        }
        let after = try Planner.plan(spec, registry: testRegistry) { cache.record($0)?.outputs }
        #expect(after.nodes.allSatisfy { cache.lookup($0.fingerprint) != nil })
        let eval = after.node("eval[ratio=0.5]")!
        #expect(try readScalarStore(cache.outputURL(eval.fingerprint, "out")) == 10 * (2 * 0.5 + 2))
        // Types survive the file: `factor: 10` of a double parameter stays a double.
        #expect(eval.params["factor"] == .double(10))
    }

    @Test func anEditedNodeFileIsRefusedAndRunsNothing() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cache = Cache(root: dir.appendingPathComponent("cache"))
        let plan = try Planner.plan(parse(documentedDAG), registry: testRegistry)
        let eval = plan.node("eval[ratio=0.5]")!
        let url = dir.appendingPathComponent("eval.json")
        func refusal(_ edit: (inout NodeFile) -> Void) throws -> PipelineError? {
            var file = try NodeFile(eval, from: plan.nodes)
            edit(&file)
            try file.write(to: url)
            do { _ = try NodeFile.read(url).plan(for: eval.id, path: url.path, registry: testRegistry, cache: cache) } catch let error as PipelineError {
                return error
            }
            return nil
        }
        var edited = eval
        edited.params["factor"] = .double(11)
        #expect(try refusal { $0.nodes[$0.nodes.count - 1] = edited }
                == .tamperedNodeFile(path: url.path, id: eval.id, recorded: eval.fingerprint, recomputed: try fingerprint(of: edited.material)))
        // An upstream node is checked too: its fingerprint feeds the node's inputs.
        guard case .tamperedNodeFile(_, "data", _, _)? = try refusal({ $0.nodes[0].seed += 1 }) else {
            Issue.record("an edited upstream seed was not refused"); return
        }
        guard case .badNodeFile? = try refusal({ $0.nodes.removeLast() }) else {
            Issue.record("a file holding another node was not refused"); return
        }
        #expect(!FileManager.default.fileExists(atPath: cache.root.appendingPathComponent("entries").path))
        #expect(throws: PipelineError.self) { try NodeFile.read(dir.appendingPathComponent("missing.json")) }
    }
}

@Suite struct ParamValueCodingTests {
    @Test func everyValueReadsBackWithItsType() throws {
        let values: [ParamValue] = [.int(2), .double(2), .double(0.25), .double(-3), .double(1e20), .string("2"), .bool(true)]
        let json = try JSONEncoder().encode(values)
        #expect(try JSONDecoder().decode([ParamValue].self, from: json) == values)
        #expect(String(decoding: try JSONEncoder().encode([ParamValue.double(2), .int(2), .double(0.5)]), as: UTF8.self)
                == #"[{"double":2},2,0.5]"#)
    }

    @Test func bareScalarsOfTheOldFormatStillRead() throws {
        let old = Data(#"[2, 0.25, "x", true]"#.utf8)
        #expect(try JSONDecoder().decode([ParamValue].self, from: old) == [.int(2), .double(0.25), .string("x"), .bool(true)])
    }

    /// Fingerprints hash a ParamValue as its bare scalar, tagged with its type name, as before the
    /// typed Codable: the SHA-256 of `{5:$type=String(10:ParamValue),6:$value=Double(16:4000000000000000)}`.
    @Test func fingerprintsOfParametersDidNotMove() throws {
        #expect(try fingerprint(of: ParamValue.double(2)) == "f2f2dbb939689fd57c0303794f76d12e12e0250fedf701b621f6cd430640e8ef")
        #expect(try fingerprint(of: ParamValue.int(2)) == "a87684f60ee9de1bc6a3549069848f1078ef09981b8e0ba1bc5fa9ab092ff062")
    }

    /// A record the previous format wrote (taken from a real cache): integral doubles as bare
    /// numbers, their types in `paramTypes`.
    @Test func aRecordOfTheOldFormatStillReadsAndChecks() throws {
        let record = try CacheRecord(json: Data(oldRecord.utf8))
        #expect(record.params["clip_norm"] == .double(1) && record.params["steps"] == .int(60))
        #expect(try record.recomputedFingerprint() == record.fingerprint)
        // Written again, it needs no `paramTypes` and reads back equal.
        let rewritten = try JSONEncoder().encode(record)
        #expect(!String(decoding: rewritten, as: UTF8.self).contains("paramTypes"))
        #expect(try CacheRecord(json: rewritten) == record)
    }
}

private let oldRecord = """
        {
          "fileDigests" : {

          },
          "fingerprint" : "c2734455fa868b634a6351ef600499648f57663c390303b9bfd50e24c61af02e",
          "finished" : "2026-12-05T13:28:51Z",
          "host" : "vm",
          "id" : "finetune[ft_steps=60,ft_samples=240,ft_lr=0.0003]",
          "inputs" : [
            {
              "digest" : "4e0fcb0572ac24f37ea95484b283da7bf79010e9e712c33a9364a8a84a3e5ce4",
              "name" : "model",
              "output" : "model",
              "upstream" : "prune"
            },
            {
              "digest" : "354e8b41d6112b5343ecf9255c1f83b31d71fad94b23036a578d4f0524c2d2b5",
              "name" : "data",
              "output" : "data",
              "upstream" : "mix"
            },
            {
              "digest" : "c0c9cab19d5d69e519b749532eb2d67a52a36be3d6710885f28192038243afd4",
              "name" : "teacher",
              "output" : "model",
              "upstream" : "rotate"
            }
          ],
          "kind" : "finetune",
          "outputs" : {
            "model" : "a1702976aba9ae208fd500e2f147fef249725ac69c1f039b99691b1e771b0383"
          },
          "paramTypes" : {
            "accumulation" : "int",
            "batch_size" : "int",
            "clip_norm" : "double",
            "heldout_fraction" : "double",
            "kd_weight" : "double",
            "lora_alpha" : "double",
            "lora_rank" : "int",
            "loss" : "string",
            "lr" : "double",
            "min_lr_ratio" : "double",
            "sample_offset" : "int",
            "samples" : "int",
            "schedule" : "string",
            "seq_len" : "int",
            "steps" : "int",
            "temperature" : "double",
            "warmup" : "int",
            "weight_decay" : "double"
          },
          "params" : {
            "accumulation" : 1,
            "batch_size" : 4,
            "clip_norm" : 1,
            "heldout_fraction" : 0,
            "kd_weight" : 0.5,
            "lora_alpha" : 10,
            "lora_rank" : 0,
            "loss" : "kd",
            "lr" : 0.0003,
            "min_lr_ratio" : 0.1,
            "sample_offset" : 0,
            "samples" : 240,
            "schedule" : "cosine",
            "seq_len" : 128,
            "steps" : 60,
            "temperature" : 1,
            "warmup" : 3,
            "weight_decay" : 0
          },
          "peakMemoryBytes" : 3871481856,
          "pid" : 23598,
          "seed" : 1,
          "stage" : "finetune",
          "started" : "2026-12-05T13:23:50Z",
          "toolVersion" : "0.1.0",
          "version" : 1
        }
    """
