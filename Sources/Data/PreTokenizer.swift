// The GPT-2 pre-tokenizer, hand-written as a scanner over Unicode scalars (faster than a regex engine):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// plus the `smollm` variant, which first isolates every \p{N} scalar and then applies that regex to
// each stretch between them (HF: Sequence[Digits(individual_digits), ByteLevel]; llama.cpp: "\p{N}"
// then the GPT-2 expression). It only splits text into word spans; BPE.swift merges inside them.

/// Which splitting rule runs before byte-level BPE.
public enum PreTokenizerKind: String, Codable, Sendable {
    /// The GPT-2 regex.
    case gpt2
    /// Every number scalar alone, then the GPT-2 regex (SmolLM2, `tokenizer.ggml.pre = smollm`).
    case smollm
}

/// Scalar classes the regex distinguishes.
enum ScalarClass: UInt8 {
    case letter, number, space, other
}

enum PreTokenizer {
    /// ASCII classes, precomputed (the hot path for English text).
    private static let asciiClasses: [ScalarClass] = (0..<128).map { classifyByProperties(Unicode.Scalar(UInt8($0))) }

    /// \p{L}, \p{N}, \s (White_Space) or anything else.
    @inline(__always)
    static func classify(_ s: Unicode.Scalar) -> ScalarClass {
        s.value < 128 ? asciiClasses[Int(s.value)] : classifyByProperties(s)
    }

    private static func classifyByProperties(_ s: Unicode.Scalar) -> ScalarClass {
        let p = s.properties
        if p.isWhitespace { return .space }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    /// Splits scalars `text` (with `classes[i]` the class of `text[i]`) into word spans, calling `emit`
    /// with each span's scalar range in order.
    static func split(_ text: [Unicode.Scalar], classes: [ScalarClass], kind: PreTokenizerKind,
                      emit: (Range<Int>) -> Void) {
        switch kind {
        case .gpt2:
            splitGPT2(text, classes, 0..<text.count, emit)
        case .smollm:
            var start = 0
            for i in 0..<text.count where classes[i] == .number {
                if start < i { splitGPT2(text, classes, start..<i, emit) }
                emit(i..<(i + 1))
                start = i + 1
            }
            if start < text.count { splitGPT2(text, classes, start..<text.count, emit) }
        }
    }

    /// The GPT-2 regex over `range` only (its end counts as the end of the text for the lookahead).
    private static func splitGPT2(_ s: [Unicode.Scalar], _ c: [ScalarClass], _ range: Range<Int>,
                                  _ emit: (Range<Int>) -> Void) {
        let end = range.upperBound
        var i = range.lowerBound
        func run(from j: Int, while cls: ScalarClass) -> Int {
            var k = j
            while k < end && c[k] == cls { k += 1 }
            return k
        }
        func runOther(from j: Int) -> Int {
            var k = j
            while k < end && c[k] == .other { k += 1 }
            return k
        }
        while i < end {
            let ch = s[i].value
            // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, as in GPT-2)
            if ch == 0x27, i + 1 < end {
                let a = s[i + 1].value
                if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { emit(i..<(i + 2)); i += 2; continue }
                if i + 2 < end {
                    let b = s[i + 2].value
                    if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) {
                        emit(i..<(i + 3)); i += 3; continue
                    }
                }
            }
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional literal space, then a run of one class.
            let lead = (ch == 0x20 && i + 1 < end && c[i + 1] != .space) ? 1 : 0
            let cls = c[i + lead]
            if cls != .space {
                let j = cls == .other ? runOther(from: i + lead) : run(from: i + lead, while: cls)
                emit(i..<j); i = j; continue
            }
            // \s+(?!\S): the whitespace run, less its last scalar when a non-space follows;
            // \s+ takes a lone whitespace scalar before a non-space.
            let j = run(from: i, while: .space)
            if j == end || j - i == 1 { emit(i..<j); i = j; continue }
            emit(i..<(j - 1)); i = j - 1
        }
    }
}
