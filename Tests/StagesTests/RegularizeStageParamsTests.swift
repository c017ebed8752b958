// The regularize stage's parameters as the trainer receives them: the λ schedule (constant, or a
// linear ramp that spans the run unless lambda_ramp_steps says otherwise) and the training settings,
// decoded from a node's parameters exactly as a stage process decodes them.

import Foundation
import Pipeline
@testable import Stages
import Testing
import Training

@Suite struct RegularizeStageParamsTests {
    /// The kind's defaults with `overrides`, decoded by `StageContext.decodeParams`.
    func decoded(_ overrides: [String: ParamValue]) throws -> (RegularizeStage.Params, TrainingParams) {
        var params: [String: ParamValue] = [:]
        for declaration in RegularizeStage().params { params[declaration.name] = declaration.defaultValue }
        params.merge(overrides) { $1 }
        let context = StageContext(stageID: "regularize", params: params, seed: 0, inputs: [:], outputs: [:], threads: 1)
        return (try context.decodeParams(RegularizeStage.Params.self), try context.decodeParams(TrainingParams.self))
    }

    @Test func aLinearRampRunsFromLambdaStartToLambdaOverTheRunOrItsOwnSteps() throws {
        let (p, t) = try decoded(["lambda_schedule": .string("linear_ramp"), "lambda": .double(0.01), "lambda_start": .double(0.002),
                                  "steps": .int(50)])
        let config = RegularizeStage.regularizationConfig(p, t)
        #expect(config.lambda == .linearRamp(from: 0.002, to: 0.01, steps: 50))
        #expect(config.lambda.lambda(0) == 0.002 && abs(config.lambda.lambda(25) - 0.006) < 1e-15 && config.lambda.lambda(80) == 0.01)
        let (short, _) = try decoded(["lambda_schedule": .string("linear_ramp"), "lambda": .double(0.01), "lambda_ramp_steps": .int(10)])
        #expect(RegularizeStage.lambdaSchedule(short, steps: 200) == .linearRamp(from: 0, to: 0.01, steps: 10))
    }

    @Test func theDefaultsGiveAConstantLambdaAndTheTrainingSettings() throws {
        let (p, t) = try decoded([:])
        let config = RegularizeStage.regularizationConfig(p, t)
        #expect(config.lambda == .constant(0.0084))
        #expect(config.steps == 200 && config.lr == 5e-4 && config.minLR == Float(5e-4 * 0.1))
        #expect(config.penaltyUpdate == .proximal && config.sliceWeights == .initial && config.logEvery == 10)
        try config.validate()
        // A schedule outside the closed set does not decode.
        #expect(throws: DecodingError.self) { try decoded(["lambda_schedule": .string("cosine")]) }
    }
}
