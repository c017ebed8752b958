// Parsing squeue's `%i|%T|%N|%r` lines into job states: every state name squeue documents, the
// "None" reason, reasons containing the separator, and malformed output.

import Foundation
@testable import Pipeline
import Testing

@Suite struct SlurmJobTests {
    /// Every long state name of squeue(1) in Slurm 22.05 and what it must map to.
    static let table: [(state: String, reason: String, expected: SlurmJobState, final: Bool)] = [
        ("PENDING", "Dependency", .pending(reason: "Dependency"), false),
        ("PENDING", "None", .pending(reason: ""), false),
        ("REQUEUED", "None", .pending(reason: "REQUEUED"), false),
        ("REQUEUE_HOLD", "JobHeldAdmin", .pending(reason: "JobHeldAdmin"), false),
        ("REQUEUE_FED", "None", .pending(reason: "REQUEUE_FED"), false),
        ("RESV_DEL_HOLD", "None", .pending(reason: "RESV_DEL_HOLD"), false),
        ("RUNNING", "None", .running, false),
        ("CONFIGURING", "None", .running, false),
        ("COMPLETING", "None", .running, false),
        ("SIGNALING", "None", .running, false),
        ("STAGE_OUT", "None", .running, false),
        ("RESIZING", "None", .running, false),
        ("COMPLETED", "None", .completed, true),
        ("FAILED", "NonZeroExitCode", .failed(reason: "NonZeroExitCode"), true),
        ("SPECIAL_EXIT", "None", .failed(reason: ""), true),
        ("CANCELLED", "DependencyNeverSatisfied", .cancelled(reason: "DependencyNeverSatisfied"), true),
        ("CANCELLED", "None", .cancelled(reason: ""), true),
        ("PREEMPTED", "None", .cancelled(reason: "PREEMPTED"), true),
        ("REVOKED", "None", .cancelled(reason: "REVOKED"), true),
        ("TIMEOUT", "TimeLimit", .timeout, true),
        ("DEADLINE", "None", .timeout, true),
        ("NODE_FAIL", "None", .nodeFail, true),
        ("BOOT_FAIL", "None", .nodeFail, true),
        ("OUT_OF_MEMORY", "OutOfMemory", .outOfMemory, true),
        ("SUSPENDED", "None", .unknown("SUSPENDED"), false),
        ("STOPPED", "None", .unknown("STOPPED"), false),
    ]

    @Test func everyStateMaps() {
        for row in Self.table {
            let state = SlurmJobState(state: row.state, reason: row.reason)
            #expect(state == row.expected, "\(row.state)|\(row.reason)")
            #expect(state.isFinal == row.final, "\(row.state) final")
            #expect(state.isUnsuccessful == (row.final && row.state != "COMPLETED"), "\(row.state) unsuccessful")
        }
    }

    @Test func squeueOutputParses() throws {
        let output = "1|COMPLETED|n1|None\n2|PENDING||Dependency\n\n3|RUNNING|n2|None\n4|FAILED|n1|odd|reason\n5_3|CANCELLED||None\n"
        let jobs = try SlurmJobInfo.parse(squeueOutput: output, command: "squeue")
        #expect(jobs == [
            SlurmJobInfo(id: "1", state: .completed, nodes: "n1"),
            SlurmJobInfo(id: "2", state: .pending(reason: "Dependency"), nodes: ""),
            SlurmJobInfo(id: "3", state: .running, nodes: "n2"),
            SlurmJobInfo(id: "4", state: .failed(reason: "odd|reason"), nodes: "n1"),
            SlurmJobInfo(id: "5_3", state: .cancelled(reason: ""), nodes: ""),
        ])
    }

    @Test func malformedOutputIsAnError() {
        #expect(throws: SlurmError.unreadableOutput(command: "squeue", output: "1 RUNNING n1",
                                                    expected: "lines of the form ID|STATE|NODES|REASON")) {
            try SlurmJobInfo.parse(squeueOutput: "1 RUNNING n1\n", command: "squeue")
        }
    }

    @Test func descriptionsNameTheReason() {
        #expect(SlurmJobState.pending(reason: "Dependency").description == "pending (Dependency)")
        #expect(SlurmJobState.pending(reason: "").description == "pending")
        #expect(SlurmJobState.cancelled(reason: "DependencyNeverSatisfied").description == "cancelled (DependencyNeverSatisfied)")
        #expect(SlurmJobState.outOfMemory.description == "out of memory")
    }

    @Test func jobIDsOrderNumerically() throws {
        #expect([SlurmJobID("10"), "9", "100"].sorted() == ["9", "10", "100"])
        let data = try JSONEncoder().encode(["12": SlurmJobID("12")])
        #expect(String(decoding: data, as: UTF8.self) == #"{"12":"12"}"#)
        #expect(try JSONDecoder().decode(SlurmJobID.self, from: Data(#""77""#.utf8)) == "77")
    }
}
