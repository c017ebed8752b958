// Stopping a run mid-fine-tune loses nothing: the runner's SIGTERM reaches the stage process, which
// finishes its step, writes the resume point and exits as the shell expects; the next `run` continues
// from that step and publishes the bytes an uninterrupted run publishes; `cache gc` keeps the point
// while it is work in progress and removes it once it is stale.

import Foundation
import StageTestSupport
import Testing

@Suite struct ResumeCommandTests {
    static let spec = """
        stages:
          tiny:
            kind: debug/tiny-lm
            params: {hidden: 32, layers: 2, sentences: 100, train_steps: 10}
          finetune:
            kind: finetune
            inputs: {model: "${stages.tiny.model}", data: "${stages.tiny.data}"}
            params: {lora_rank: 0, steps: 300, batch_size: 2, seq_len: 32, lr: 0.001}

        """

    /// The progress steps of `id` among a run's JSON lines.
    static func steps(of id: String, in jsonLines: String) -> [Int] {
        jsonLines.split(separator: "\n").compactMap { line in
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  object["event"] as? String == "progress", object["id"] as? String == id else { return nil }
            return object["step"] as? Int
        }
    }

    @Test func aStoppedFineTuneContinuesWhereItStoppedAndPublishesTheSameBytes() throws {
        let dir = try temporaryProject(["pipeline.yaml": Self.spec])
        let reference = try temporaryProject(["pipeline.yaml": Self.spec])
        defer { for d in [dir, reference] { try? FileManager.default.removeItem(at: d) } }
        #expect(try streamline(["run", "--json"], in: reference).status == 0)

        // Stop the runner once the fine-tune is 20 steps in.
        let running = try startStreamline(["run", "--json"], in: dir)
        let reader = running.stdout.fileHandleForReading
        var seen = ""
        while Self.steps(of: "finetune", in: seen).last ?? 0 < 20 {
            let chunk = reader.availableData
            if chunk.isEmpty { break }
            seen += String(decoding: chunk, as: UTF8.self)
        }
        kill(running.process.processIdentifier, SIGTERM)
        seen += String(decoding: reader.readDataToEndOfFile(), as: UTF8.self)
        running.process.waitUntilExit()
        #expect(running.process.terminationStatus == 143, "\(seen)")
        let resumeFolder = dir.appendingPathComponent(".streamline-cache/resume")
        let points = (try? FileManager.default.contentsOfDirectory(atPath: resumeFolder.path)) ?? []
        #expect(points.count == 1 && points[0].hasSuffix(".h5"), "one resume point, no partial write: \(points)")
        let stoppedAt = try #require(Self.steps(of: "finetune", in: seen).last)
        #expect(stoppedAt >= 20 && stoppedAt < 300)
        // The runner says where the stage stopped and that the next run continues there.
        let skipped = seen.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .first { $0["event"] as? String == "skipped" && $0["id"] as? String == "finetune" }
        #expect(skipped?["resumes_after"] as? Int == stoppedAt && skipped?["total"] as? Int == 300, "\(seen.suffix(400))")

        #expect(try streamline(["status"], in: dir).stdout.contains("finetune  stopped after step \(stoppedAt) of 300, resumes there"))
        // Work in progress: gc keeps it.
        #expect(!(try streamline(["cache", "gc"], in: dir).stdout.contains("resume/")))

        let rerun = try streamline(["run", "--json"], in: dir)
        #expect(rerun.status == 0, "\(rerun.stdout) \(rerun.stderr)")
        let resumedSteps = Self.steps(of: "finetune", in: rerun.stdout)
        #expect(resumedSteps.first == stoppedAt + 1, "the second run starts after the saved step, not at 1")
        #expect(!FileManager.default.fileExists(atPath: resumeFolder.appendingPathComponent(points[0]).path),
                "publishing the entry removes its resume point")
        let log = try String(contentsOf: dir.appendingPathComponent(".streamline-cache/logs/\(points[0].dropLast(3)).log"), encoding: .utf8)
        #expect(log.contains("stopped by SIGTERM after step") && log.contains("resuming after step"),
                "one log holds both attempts: \(log.suffix(600))")

        // Same node in both caches (same spec): its outputs' digests must agree.
        let fp = String(points[0].dropLast(3))
        func outputs(_ project: URL) throws -> [String: String] {
            let record = project.appendingPathComponent(".streamline-cache/entries/\(fp.prefix(2))/\(fp)/record.json")
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: record)) as? [String: Any]
            return try #require(object?["outputs"] as? [String: String])
        }
        let ours = try outputs(dir), theirs = try outputs(reference)
        #expect(!ours.isEmpty && ours == theirs)
    }

    /// A resume point that cannot be written (here a file-size limit between the model's size and its
    /// training state's, as on a nearly full disk) costs only the protection: the stage trains on,
    /// says so in its log, publishes, and leaves no partial file.
    @Test func aResumePointThatCannotBeWrittenDoesNotStopTraining() throws {
        let spec = Self.spec.replacingOccurrences(of: "steps: 300,", with: "steps: 30,")
        let dir = try temporaryProject(["pipeline.yaml": spec])
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try streamline(["run", "tiny"], in: dir).status == 0)
        // 200 KiB: the fine-tuned model (about 116 KB) fits, weights plus two moments (about 290 KB) do not.
        let result = try WriteFailureTests.run(["run", "--checkpoint-minutes", "0.0001"], in: dir, limits: "trap '' XFSZ && ulimit -f 400")
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let logs = dir.appendingPathComponent(".streamline-cache/logs")
        let log = try FileManager.default.contentsOfDirectory(atPath: logs.path).lazy
            .compactMap { try? String(contentsOf: logs.appendingPathComponent($0), encoding: .utf8) }.first { $0.contains("kind finetune") } ?? ""
        #expect(log.contains("could not write the resume point after step 1:") && log.contains("File too large"), "\(log.prefix(800))")
        let resume = dir.appendingPathComponent(".streamline-cache/resume")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: resume.path)) ?? []).isEmpty)
    }

    @Test(arguments: ["run", "stage"]) func aNegativeOrNonNumericIntervalIsRefused(command: String) throws {
        let dir = try temporaryProject(["pipeline.yaml": Self.spec])
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = command == "stage" ? ["tiny"] : []
        let negative = try streamline([command] + target + ["--checkpoint-minutes=-1"], in: dir)
        #expect(negative.status != 0 && negative.stderr.contains("--checkpoint-minutes must be a number >= 0."), "\(negative.stderr)")
        let text = try streamline([command] + target + ["--checkpoint-minutes", "often"], in: dir)
        #expect(text.status != 0 && text.stderr.contains("often"), "\(text.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent(".streamline-cache/entries").path), "nothing ran")
    }

    @Test func gcRemovesStaleAndCutShortResumePoints() throws {
        let dir = try temporaryProject([:])
        defer { try? FileManager.default.removeItem(at: dir) }
        let resume = dir.appendingPathComponent(".streamline-cache/resume")
        try FileManager.default.createDirectory(at: resume, withIntermediateDirectories: true)
        let fp = String(repeating: "a", count: 64)
        for name in ["\(fp).h5", "\(fp).h5.123.partial", "notes.txt"] {
            try Data("x".utf8).write(to: resume.appendingPathComponent(name))
        }
        let gc = try streamline(["cache", "gc"], in: dir)
        #expect(gc.stdout.contains("resume/\(fp).h5.123.partial  an unfinished write"), "\(gc.stdout)")
        #expect(!gc.stdout.contains("resume/\(fp).h5 "), "an unpublished point is work in progress")
        let aged = try streamline(["cache", "gc", "--older-than", "0"], in: dir)
        #expect(aged.stdout.contains("resume/\(fp).h5  not named"), "\(aged.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: resume.path) == ["notes.txt"], "files gc did not make are left alone")
    }
}
