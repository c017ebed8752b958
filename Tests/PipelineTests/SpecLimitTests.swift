// Specs broken or hostile in size and shape (issue 11, item 7): each ends in a located PipelineError,
// quickly and without a crash. Deep nesting, alias chains and merge bombs, files past the size limit,
// 100,000 keys, files that are not regular files, includes of files with secrets, non-finite numbers,
// `${` where nothing interpolates, sweeps and joins that leave a stage no member.

import Foundation
@testable import Pipeline
import Testing

/// The PipelineError that loading and planning `yaml` throws (nil when it loads).
func specError(_ yaml: String, overrides: [String] = [], baseDirectory: URL? = nil) -> PipelineError? {
    do {
        let spec = try Spec.parse(yaml: yaml, file: "p.yaml", baseDirectory: baseDirectory, overrides: overrides, registry: testRegistry)
        _ = try Planner.plan(spec, registry: testRegistry)
        return nil
    } catch let error as PipelineError {
        return error
    } catch {
        Issue.record("not a PipelineError: \(error)")
        return nil
    }
}

let oneStage = "stages:\n  a: {kind: t/const}\n"

/// `count` copies of `text`.
func times(_ count: Int, _ text: String) -> String { String(repeating: text, count: count) }

@Suite struct SpecLimitTests {
    @Test func hundredThousandNestedCollectionsAreALocatedErrorNotACrash() {
        // Yams composes recursively: 5,000 nested '[' was a SIGSEGV. Every shape of nesting is refused
        // before it reaches Yams, at the token where it passes the limit (line 1 or 2).
        let shapes: [(String, String)] = [
            ("flow lists", "x-a: " + times(100_000, "[") + times(100_000, "]") + "\n"),
            ("flow mappings", "x-a: " + times(100_000, "{a: ") + times(100_000, "}") + "\n"),
            ("unclosed", "x-a: " + times(100_000, "[") + "\n"),
            ("pairs in lists", "x-a: " + times(100_000, "[a: ") + times(100_000, "]") + "\n"),
            ("block lists", "x-a:\n" + times(100_000, "- ") + "1\n"),
            ("explicit keys", "x-a:\n" + times(100_000, "? ") + "1\n"),
            ("alias chain", "x-a:\n- &a0 [1]\n" + (1..<100_000).map { "- &a\($0) [*a\($0 - 1)]\n" }.joined()),
        ]
        for (shape, text) in shapes {
            guard case .specLimit(let at, .depth)? = specError(text + oneStage) else {
                Issue.record("\(shape): \(String(describing: specError(text + oneStage)))")
                continue
            }
            #expect(at.file == "p.yaml" && at.line <= 200, "\(shape): \(at)")
        }
    }

    @Test func blockIndentationIsLimitedToo() {
        // 2,000 mappings, each indented one more: 2 MB, within the size limit.
        let text = "x-a:\n" + (1...2000).map { times($0, " ") + "k:\n" }.joined() + oneStage
        guard case .specLimit(let at, .depth)? = specError(text) else {
            Issue.record("\(String(describing: specError(text)))")
            return
        }
        #expect(at.line > 60 && at.line < 300, "\(at)")
    }

    @Test func sixtyFourLevelsLoadAndSixtyFiveAreRefusedWhereTheyOpen() throws {
        // The root mapping is level 1, so 63 '[' make 64 levels.
        func doc(_ levels: Int) -> String { "x-a: " + times(levels - 1, "[") + times(levels - 1, "]") + "\n" + oneStage }
        _ = try parse(doc(64))
        #expect(specError(doc(65)) == .specLimit(at: SourceLocation(file: "p.yaml", line: 1, column: 6 + 63), limit: .depth))
    }

    @Test func aliasesCountAsTheDepthTheyStandFor() throws {
        // Three lines of 30 levels each: 91 levels once the aliases are expanded.
        let text = """
            x-a: &a \(times(30, "["))1\(times(30, "]"))
            x-b: &b \(times(30, "["))*a\(times(30, "]"))
            x-c: \(times(30, "["))*b\(times(30, "]"))

            """
        guard case .specLimit(let at, .depth)? = specError(text + oneStage) else {
            Issue.record("\(String(describing: specError(text + oneStage)))")
            return
        }
        #expect(at.line == 1, "the 65th level is written in x-a: \(at)")
    }

    @Test func aMergeKeyBombStopsAtTheValueLimitInSeconds() {
        // Nine levels of ten merges each: 10⁹ values; it ran for minutes.
        var lines = ["x-a0: &a0 {k: 1}"]
        for level in 1...9 { lines.append("x-a\(level): &a\(level) {<<: [\(times(10, "*a\(level - 1), ").dropLast(2))]}") }
        lines.append("params: {<<: *a9}")
        let text = lines.joined(separator: "\n") + "\n" + oneStage
        let start = Date()
        #expect(specError(text) == .specLimit(at: SourceLocation(file: "p.yaml", line: 7, column: 1), limit: .values),
                "charged to x-a6, the first entry to pass a million values")
        #expect(Date().timeIntervalSince(start) < 30)
    }

    @Test func aListOfAliasesIsABombToo() {
        let text = "x-a: &a [" + times(999, "1, ") + "1]\nx-b: [" + times(1999, "*a, ") + "*a]\n" + oneStage
        #expect(specError(text) == .specLimit(at: SourceLocation(file: "p.yaml", line: 2, column: 1), limit: .values))
    }

    @Test func aHundredThousandKeysLoadInLinearTime() throws {
        // The duplicate-key check compared every pair: over a minute for 100,000 keys.
        let keys = (0..<100_000).map { "  k\($0): \($0)\n" }.joined()
        let start = Date()
        let spec = try parse("params:\n" + keys + oneStage)
        #expect(spec.params.count == 100_000)
        #expect(Date().timeIntervalSince(start) < 30)
        // ... and a key written twice is still found, where it is written.
        #expect(specError("params:\n" + keys + "  k5: 1\n" + oneStage)
                == .duplicateKey(at: SourceLocation(file: "p.yaml", line: 100_002, column: 3), keyPath: "params", key: "k5"))
    }

    @Test func aFilePastTheSizeLimitIsRefusedWhereTheLimitFalls() throws {
        let line = "# " + times(98, "x") + "\n"  // 101 bytes
        let text = times(SpecLimits.maxBytes / 101 + 1, line) + oneStage
        let limitLine = SpecLimits.maxBytes / 101 + 1, limitColumn = SpecLimits.maxBytes % 101 + 1
        #expect(specError(text) == .specLimit(at: SourceLocation(file: "p.yaml", line: limitLine, column: limitColumn), limit: .bytes))
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("big.yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        #expect { try Spec.load(url: url, displayName: "big.yaml", registry: testRegistry) } throws: {
            $0 as? PipelineError == .specLimit(at: SourceLocation(file: "big.yaml", line: limitLine, column: limitColumn), limit: .bytes)
        }
        // Just under the limit loads.
        _ = try parse(times((SpecLimits.maxBytes - 100) / 101, line) + oneStage)
    }

    @Test func onlyRegularFilesAreRead() throws {
        // A FIFO would block the loader forever and /dev/zero would never end.
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("fifo")
        #expect(mkfifo(fifo.path, 0o600) == 0)
        for path in [fifo.path, "/dev/zero", dir.path] {
            #expect(specError("include: [\(path)]\n" + oneStage, baseDirectory: dir)
                    == .includeFailed(at: SourceLocation(file: "p.yaml", line: 1, column: 11), keyPath: "include[0]", path: path,
                                      detail: "not a regular file"))
        }
        #expect { try Spec.load(url: fifo, displayName: "fifo", registry: testRegistry) } throws: {
            $0 as? PipelineError == .unreadableFile(path: "fifo", detail: "not a regular file")
        }
    }

    @Test func anIncludedFileIsNeverQuoted() throws {
        // `include: [/etc/shadow]` printed the file's first line in the error.
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let secrets = ["shadow": "root:$6$S3CRET-HASH:19000:0:99999:7:::\n",
                       "passwd": "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:S3CRET-HASH:/usr/sbin\n",
                       "env": "API_TOKEN: S3CRET-HASH\nstages: 5\n",
                       "json": "{\"S3CRET-HASH\": [1, 2]}\n",
                       "broken": "key: 'S3CRET-HASH\n",
                       "typo": "parms: {S3CRET-HASH: 1}\n",
                       "nested.yaml": "include: [env]\n"]
        for (name, text) in secrets { try text.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8) }
        for name in secrets.keys {
            guard let error = specError("include: [\(name)]\n" + oneStage, baseDirectory: dir) else {
                Issue.record("\(name) was included")
                continue
            }
            let text = error.description
            #expect(!text.contains("S3CRET") && !text.contains("root:"), "\(name): \(text)")
            #expect(text.hasPrefix("p.yaml:1:11: 'include[0]': cannot include '\(name)': its line "), "\(name): \(text)")
            #expect(text.contains("text is not shown"), "\(name): \(text)")
        }
    }

    @Test(arguments: [".inf", "-.inf", ".nan", ".Inf", "+.INF", ".NaN"])
    func nonFiniteNumbersAreLocatedErrors(_ number: String) {
        // t/const's `value` has no range, so only the finiteness check stands between .inf and a
        // fingerprint that cannot hold it (it failed with no file or line).
        #expect(specError("stages:\n  a: {kind: t/const, params: {value: \(number)}}\n")
                == .wrongType(at: SourceLocation(file: "p.yaml", line: 2, column: 38), keyPath: "stages.a.params.value",
                              expected: "a finite number", found: "the number \(number)"))
        #expect(specError("params: {v: \(number)}\n" + oneStage)
                == .wrongType(at: SourceLocation(file: "p.yaml", line: 1, column: 13), keyPath: "params.v",
                              expected: "a finite number", found: "the number \(number)"))
        let swept = "stages:\n  a:\n    kind: t/const\n    params: {value: \"${v}\"}\n    sweep: {grid: {v: [1, \(number)]}}\n"
        #expect(specError(swept) == .wrongType(at: SourceLocation(file: "p.yaml", line: 5, column: 27), keyPath: "stages.a.sweep.grid.v[1]",
                                               expected: "a finite number", found: "the number \(number)"))
        let overridden = "params: {v: 1}\nstages:\n  a: {kind: t/const, params: {value: \"${v}\"}}\n"
        #expect(specError(overridden, overrides: ["v=\(number)"])
                == .badOverride(text: "v=\(number)", detail: "\(number) is not a finite number"))
    }

    @Test func textWithDollarBraceWhereNothingInterpolatesIsAnError() throws {
        // `params: {a: "x${b}"}` stayed the literal text "x${b}".
        #expect(specError("params: {b: 2, a: \"x${b}\"}\n" + oneStage)
                == .badReference(at: SourceLocation(file: "p.yaml", line: 1, column: 19), keyPath: "params.a", text: "x${b}",
                                 detail: "only stage params, seeds and inputs are interpolated; write the value itself here"))
        let sweep = "stages:\n  a:\n    kind: t/const\n    params: {value: \"${v}\"}\n    sweep: {grid: {v: [1, \"${w}\"]}}\n"
        guard case .badReference(let at, "stages.a.sweep.grid.v[1]", "${w}", _)? = specError(sweep) else {
            Issue.record("\(String(describing: specError(sweep))))")
            return
        }
        #expect(at.line == 5 && at.column == 27)
        let exclude = "stages:\n  a:\n    kind: t/const\n    sweep: {grid: {v: [1, 2]}, exclude: [{v: \"${v}\"}]}\n"
        #expect(specError(exclude)?.location == SourceLocation(file: "p.yaml", line: 4, column: 46))
        #expect(specError("params: {b: 2, a: x}\n" + oneStage, overrides: ["a=x${b}"])
                == .badOverride(text: "a=x${b}", detail: "a value given with -p is not interpolated; write the value itself"))
        // Inside stage params, text around a reference is interpolated as before.
        let spec = try parse("params: {b: a}\nstages:\n  a: {kind: t/const, params: {label: \"${b}\"}}\n")
        #expect(try Planner.plan(spec, registry: testRegistry).nodes[0].params["label"] == .string("a"))
    }

    @Test func anExcludeThatRemovesEveryMemberIsAnError() throws {
        let text = "stages:\n  a:\n    kind: t/const\n    params: {value: \"${v}\"}\n    sweep:\n      grid: {v: [1, 2]}\n      exclude: [{v: 1}, {v: 2}]\n"
        guard case .badSweep(let at, "stages.a.sweep.exclude", _)? = specError(text) else {
            Issue.record("\(String(describing: specError(text)))")
            return
        }
        #expect(at == SourceLocation(file: "p.yaml", line: 7, column: 16))
        // An include that adds a member back makes it a sweep again.
        _ = try parse(text + "      include: [{v: 3}]\n")
    }

    @Test func aStageWhoseInputsShareNoMemberIsAnError() {
        let text = """
            stages:
              a: {kind: t/const, params: {value: "${v}"}, sweep: {grid: {v: [1, 2]}}}
              b: {kind: t/const, params: {value: "${v}"}, sweep: {grid: {v: [3, 4]}}}
              c: {kind: t/add, inputs: {a: "${stages.a.out}", b: "${stages.b.out}"}}

            """
        guard case .badSweep(let at, "stages.c.inputs", _)? = specError(text) else {
            Issue.record("\(String(describing: specError(text)))")
            return
        }
        #expect(at == SourceLocation(file: "p.yaml", line: 4, column: 3))
    }
}
