// LR schedules: exact values at the warm-up and decay boundaries, Codable round trips and validation.

import Foundation
import Testing
@testable import Training

@Suite struct ScheduleTests {
    let peak: Float = 1e-3, floor: Float = 1e-4

    @Test func warmupRisesLinearlyToThePeak() {
        let s = LRSchedule(kind: .cosine, lr: peak, warmup: 10, steps: 110, minLR: floor)
        #expect(s.lr(0) == Float(Double(peak) * 1 / 11))
        #expect(s.lr(4) == Float(Double(peak) * 5 / 11))
        #expect(s.lr(9) == Float(Double(peak) * 10 / 11))
        #expect(s.lr(10) == peak, "the first step after warm-up is at the peak")
    }

    @Test func cosineDecaysToTheFloor() {
        let s = LRSchedule(kind: .cosine, lr: peak, warmup: 10, steps: 110, minLR: floor)
        #expect(abs(s.lr(60) - (peak + floor) / 2) < 1e-10, "half-way the cosine is at the mean of peak and floor")
        #expect(s.lr(35) > s.lr(36))
        #expect(abs(s.lr(35) - Float(Double(floor) + 0.5 * (1 + cos(Double.pi / 4)) * Double(peak - floor))) < 1e-10)
        #expect(s.lr(110) == floor)
        #expect(s.lr(10_000) == floor)
    }

    @Test func linearDecaysToTheFloor() {
        let s = LRSchedule(kind: .linear, lr: peak, warmup: 10, steps: 110, minLR: floor)
        #expect(s.lr(10) == peak)
        #expect(abs(s.lr(35) - (floor + 0.75 * (peak - floor))) < 1e-10)
        #expect(abs(s.lr(60) - (peak + floor) / 2) < 1e-10)
        #expect(s.lr(109) > floor)
        #expect(s.lr(110) == floor)
    }

    @Test func constantHoldsAfterWarmup() {
        #expect(LRSchedule.constant(peak).lr(0) == peak)
        #expect(LRSchedule.constant(peak).lr(1_000_000) == peak)
        let warm = LRSchedule(kind: .constant, lr: peak, warmup: 3)
        #expect(warm.lr(0) == Float(Double(peak) / 4))
        #expect(warm.lr(3) == peak)
    }

    @Test func openDecayLengthIsTheRunLength() {
        let s = LRSchedule(kind: .linear, lr: peak, warmup: 2).resolved(totalSteps: 50)
        #expect(s.steps == 50)
        #expect(s.lr(50) == 0)
        #expect(LRSchedule(kind: .linear, lr: peak, steps: 7).resolved(totalSteps: 50).steps == 7)
    }

    @Test func decodesStageParametersAndValidates() throws {
        let json = #"{"kind": "cosine", "lr": 0.001, "warmup": 10, "min_lr": 0.0001}"#
        let s = try JSONDecoder().decode(LRSchedule.self, from: Data(json.utf8))
        #expect(s == LRSchedule(kind: .cosine, lr: 1e-3, warmup: 10, steps: nil, minLR: 1e-4))
        let again = try JSONDecoder().decode(LRSchedule.self, from: JSONEncoder().encode(s))
        #expect(again == s)
        for bad in [#"{"kind": "cosine", "lr": 0.001, "warmup": 10, "steps": 5}"#,
                    #"{"kind": "linear", "lr": 0.001, "min_lr": 0.01}"#,
                    #"{"kind": "step", "lr": 0.001}"#,
                    #"{"kind": "constant", "lr": -1}"#] {
            #expect(throws: DecodingError.self, "\(bad)") { try JSONDecoder().decode(LRSchedule.self, from: Data(bad.utf8)) }
        }
    }
}
