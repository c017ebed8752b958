// The Training module's one error type: everything a user, a config or a file can get wrong while
// setting up or running training. Programmer errors (shape mismatches inside a kernel) stay preconditions.

/// Why training could not be set up, continued or resumed.
public enum TrainingError: Error, Equatable, Sendable {
    /// A freeze pattern matched no parameter; `closest` are the most similar parameter names.
    case unknownParameterPattern(pattern: String, closest: [String])
    /// The loss or the gradient norm became NaN or infinite at `step` (1-based update number).
    case nonFinite(step: Int, loss: Float, gradNorm: Double)
    /// A held-out checkpoint after `step` updates measured a NaN or infinite loss (`masked`: with P zeroed).
    case nonFiniteHeldOut(step: Int, loss: Double, masked: Bool)
    /// A token source is too short for one window of `needed` tokens.
    case notEnoughTokens(have: Int, needed: Int)
    /// A flat array of pre-cut windows whose length is not a multiple of the window length.
    case ragged(count: Int, windowLength: Int)
    /// A saved optimiser state does not fit the parameters it is being loaded into.
    case stateMismatch(what: String, expected: String, found: String)
    /// A training setting is out of range, e.g. `accumulation` 0; `key` names the setting.
    case invalidSetting(key: String, value: String, reason: String)
    /// Reading or writing an optimiser state store failed; `path` is the file, `message` the store's error.
    case store(path: String, message: String)
}

extension TrainingError: CustomStringConvertible {
    public var description: String {
        switch self {
        case let .unknownParameterPattern(pattern, closest):
            let hint = closest.isEmpty ? "" : " Closest names: \(closest.joined(separator: ", "))."
            return "Parameter pattern '\(pattern)' matches no parameter.\(hint) "
                + "Fix the pattern ('*' matches one name segment, '**' any number of segments)."
        case let .nonFinite(step, loss, gradNorm):
            return "Training diverged at step \(step): loss \(loss), gradient norm \(gradNorm). "
                + "Lower the learning rate, add warm-up or set a gradient clip norm."
        case let .nonFiniteHeldOut(step, loss, masked):
            return "The held-out loss\(masked ? " with the selected channels zeroed" : "") after step \(step) is \(loss): training diverged. "
                + "Lower the learning rate or the penalty weight λ, add warm-up or set a gradient clip norm."
        case let .notEnoughTokens(have, needed):
            return "The token source has \(have) tokens but one training window needs \(needed). "
                + "Use more text or a shorter sequence length."
        case let .ragged(count, windowLength):
            return "\(count) tokens do not split into windows of \(windowLength) (T + 1) tokens. "
                + "Cut the windows with the same sequence length the trainer uses."
        case let .stateMismatch(what, expected, found):
            return "The saved optimiser state does not fit these parameters: \(what) is \(found), expected \(expected). "
                + "Resume with the same model configuration, adapters and optimiser that wrote the state."
        case let .invalidSetting(key, value, reason):
            return "Training setting '\(key)' = \(value) is invalid: \(reason). Change it in the stage parameters."
        case let .store(path, message):
            return "Optimiser state store \(path): \(message)"
        }
    }
}
