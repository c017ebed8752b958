// A pass over a spec's YAML text, before Yams composes it, that bounds how deeply the composed
// tree can nest. Why before: Yams composes recursively, so 10,000 nested `[` (or `- - - …`)
// overflow the stack and the process dies with SIGSEGV; and a chain of anchors, each wrapping an
// alias of the previous one, composes cheaply (aliases share storage) into a tree whose release
// recurses as deep. Once composed it is too late, so the bound must come from the text.
//
// The pass follows the token rules of libyaml's scanner, the one Yams bundles: indentation and the
// block levels it opens, flow levels, simple keys (a `key:` opens its mapping only when the `:`
// comes), comments, quoted, plain and block scalars, tags, anchors and aliases. Where libyaml
// would stop with an error the pass goes on; what follows cannot reach the composer anyway.
//
// The bound B after each token is: open block collections (an indentless `- ` list counts as its
// own level) + 2 × flow levels (a `[k: v]` entry is a mapping inside the list) + 1 while a block
// key is pending (its mapping opens around what was already read). The real depth is at most B,
// and B is at most 2 × depth + 1 without aliases. An anchored node's height is the most B rose
// above its level while it lasted; an alias counts as that height on top of where it stands, so
// chains of aliases add up (each link may count up to 3 for 1). Over `nestingGuard` the text is
// refused, a depth past `SpecLimits.maxDepth` for sure.

/// Refuses YAML whose composed tree could nest past `SpecLimits.maxDepth` (aliases expanded), with
/// the location of the token where the bound was crossed.
func checkYAMLNesting(_ text: String, file: String) throws {
    var scanner = YAMLNestingScanner(Array(text.utf8))
    if let (line, column) = scanner.firstTokenOver(SpecLimits.nestingGuard) {
        throw PipelineError.specLimit(at: SourceLocation(file: file, line: line + 1, column: column + 1), limit: .depth)
    }
}

struct YAMLNestingScanner {
    private let text: [UInt8]
    private var i = 0
    /// libyaml's mark: line and column from 0, characters (not bytes) since the start.
    private var line = 0, column = 0, index = 0

    private var flow = 0
    /// Open block collections: the column that opened each, whether it is a sequence, and whether
    /// an indentless sequence (`key:` then `- ` at the key's own column) is open inside it.
    private var indents: [(column: Int, sequence: Bool, indentless: Bool)] = []
    private var indentlessCount = 0
    /// A possible simple key per flow level (index 0: the block context).
    private var keys: [(line: Int, index: Int, column: Int)?] = [nil]
    private var keyAllowed = true

    /// Anchors whose node may still be open, innermost last: the block/flow level they stand at and
    /// the highest bound seen since.
    /// The highest bound so far.
    private(set) var highest = 0

    private var openAnchors: [(name: ArraySlice<UInt8>, base: Int, highest: Int)] = []
    private var heights: [ArraySlice<UInt8>: Int] = [:]

    init(_ text: [UInt8]) { self.text = text }

    private var indent: Int { indents.last?.column ?? -1 }
    /// Open levels, without the pending key.
    private var levels: Int { indents.count + indentlessCount + 2 * flow }
    private var bound: Int { levels + (keys[0] == nil ? 0 : 1) }

    /// Scans the whole text; the (line, column) from 0 of the first token where the bound passes
    /// `limit`, or nil.
    mutating func firstTokenOver(_ limit: Int) -> (Int, Int)? {
        while true {
            skipToNextToken()
            dropStaleKeys()
            if flow == 0 { unroll(to: column) }
            guard i < text.count else { return nil }
            let start = (line, column)
            let reached = token()
            highest = max(highest, reached)
            if reached > limit { return start }
        }
    }

    // MARK: Tokens

    /// Scans one token and returns the bound it reaches (an alias: plus its anchor's height).
    private mutating func token() -> Int {
        let c = text[i]
        if flow == 0, let top = indents.last, top.indentless, column == top.column, !(c == .dash && blankOrEnd(i + 1)) {
            indents[indents.count - 1].indentless = false  // the indentless list ends at its key's next sibling
            indentlessCount -= 1
        }
        if column == 0 && c == .percent {                   // a directive: the rest of the line
            unroll(to: -1); keys[flow] = nil; keyAllowed = false
            while !breakOrEnd(i) { skipCharacter() }
            return noteEnd()
        }
        if column == 0 && documentMarker(i) {
            unroll(to: -1); keys[flow] = nil; keyAllowed = false
            for _ in 0..<3 { skipCharacter() }
            return noteEnd()
        }
        switch c {
        case .openBracket, .openBrace:
            saveKey(); flow += 1; keys.append(nil); keyAllowed = true; skipCharacter()
        case .closeBracket, .closeBrace:
            keys[flow] = nil
            if flow > 0 { flow -= 1; keys.removeLast() }
            keyAllowed = false; skipCharacter()
        case .comma:
            keys[flow] = nil; keyAllowed = true; skipCharacter()
        case .dash where blankOrEnd(i + 1):
            if flow == 0 && keyAllowed {
                if indent < column { roll(column, sequence: true) }
                else if let top = indents.last, top.column == column, !top.sequence, !top.indentless {
                    indents[indents.count - 1].indentless = true
                    indentlessCount += 1
                }
            }
            keys[flow] = nil; keyAllowed = true; skipCharacter()
        case .question where flow > 0 || blankOrEnd(i + 1):
            if flow == 0 && keyAllowed { roll(column, sequence: false) }
            keys[flow] = nil; keyAllowed = flow == 0; skipCharacter()
        case .colon where flow > 0 || blankOrEnd(i + 1):
            if let key = keys[flow] {
                if flow == 0 { roll(key.column, sequence: false) }
                keys[flow] = nil; keyAllowed = false
            } else {
                if flow == 0 && keyAllowed { roll(column, sequence: false) }
                keyAllowed = flow == 0
            }
            skipCharacter()
        case .star:
            saveKey(); keyAllowed = false; skipCharacter()
            return noteEnd(extra: heights[anchorName()] ?? 0)
        case .ampersand:
            saveKey(); keyAllowed = false; skipCharacter()
            openAnchors.append((anchorName(), levels, levels))
            return bound  // a node property: its node has not begun
        case .exclamation:
            saveKey(); keyAllowed = false; skipTag()
            return bound
        case .pipe where flow == 0, .greater where flow == 0:
            keys[flow] = nil; keyAllowed = true; skipBlockScalar()
        case .quote, .doubleQuote:
            saveKey(); keyAllowed = false; skipQuoted(single: c == .quote)
        default:
            if startsPlainScalar(c) {
                saveKey(); keyAllowed = false; skipPlainScalar()
            } else {
                skipCharacter()  // libyaml stops here with an error
            }
        }
        return noteEnd()
    }

    /// Records `reached` in the innermost open anchor and returns it.
    private mutating func note(_ reached: Int) -> Int {
        if !openAnchors.isEmpty { openAnchors[openAnchors.count - 1].highest = max(openAnchors[openAnchors.count - 1].highest, reached) }
        return reached
    }

    /// After a token that may end nodes: closes the anchors whose node is over, the bound back at
    /// their level (a pending key counts: it may still open a mapping around what was read).
    /// `extra`: an alias's height above the bound.
    private mutating func noteEnd(extra: Int = 0) -> Int {
        let reached = note(bound + extra)
        while let top = openAnchors.last, bound <= top.base {
            openAnchors.removeLast()
            heights[top.name] = top.highest - top.base
            if !openAnchors.isEmpty { openAnchors[openAnchors.count - 1].highest = max(openAnchors[openAnchors.count - 1].highest, top.highest) }
        }
        return reached
    }

    private mutating func roll(_ at: Int, sequence: Bool) {
        if flow == 0 && indent < at { indents.append((at, sequence, false)) }
    }

    private mutating func unroll(to at: Int) {
        while indent > at {
            if indents.removeLast().indentless { indentlessCount -= 1 }
        }
    }

    private mutating func saveKey() {
        if keyAllowed { keys[flow] = (line, index, column) }
    }

    /// libyaml forgets a possible key on a new line or 1,024 characters on; a little later here,
    /// which can only make the bound larger.
    private mutating func dropStaleKeys() {
        for level in keys.indices {
            if let key = keys[level], key.line < line || key.index + 1024 + 16 < index { keys[level] = nil }
        }
    }

    // MARK: Between tokens

    private mutating func skipToNextToken() {
        while i < text.count {
            if column == 0 && text[i...].starts(with: [0xEF, 0xBB, 0xBF]) { skipCharacter() }  // BOM
            while i < text.count && (text[i] == .space || (text[i] == .tab && (flow > 0 || !keyAllowed))) { skipCharacter() }
            if i < text.count && text[i] == .hash {
                while !breakOrEnd(i) { skipCharacter() }
            }
            guard lineBreak(i) > 0 else { return }
            skipBreak()
            if flow == 0 { keyAllowed = true }
        }
    }

    // MARK: Scalars and properties

    private static let indicators = Set("-?:,[]{}#&*!|>'\"%@`".utf8)
    private static let flowIndicators = Set(",[]{}".utf8)
    private static let tagCharacters = Set(";/?:@&=+$.%!~*'()".utf8)

    private func startsPlainScalar(_ c: UInt8) -> Bool {
        if !blankOrEnd(i) && !Self.indicators.contains(c) { return true }
        if c == .dash && !blank(i + 1) { return true }
        return flow == 0 && (c == .question || c == .colon) && !blankOrEnd(i + 1)
    }

    private mutating func skipPlainScalar() {
        let minimum = indent + 1
        var leadingBlanks = false
        scalar: while true {
            if column == 0 && documentMarker(i) { break }
            if i < text.count && text[i] == .hash { break }
            while !blankOrEnd(i) {
                let c = text[i]
                if c == .colon && blankOrEnd(i + 1) { break scalar }
                if flow > 0 {
                    if Self.flowIndicators.contains(c) { break scalar }
                    // libyaml fails on ':' before a flow indicator or '?'.
                    if c == .colon && (Self.flowIndicators.contains(text[i + 1]) || text[i + 1] == .question) { break scalar }
                }
                skipCharacter()
            }
            guard blank(i) || lineBreak(i) > 0 else { break }
            while blank(i) || lineBreak(i) > 0 {
                if blank(i) {
                    if leadingBlanks && column < minimum && text[i] == .tab { break scalar }  // libyaml: tab in indentation
                    skipCharacter()
                } else {
                    skipBreak()
                    leadingBlanks = true
                }
            }
            if flow == 0 && column < minimum { break }
        }
        if leadingBlanks { keyAllowed = true }
    }

    private mutating func skipQuoted(single: Bool) {
        skipCharacter()
        while i < text.count {
            let c = text[i]
            if single && c == .quote {
                skipCharacter()
                guard i < text.count && text[i] == .quote else { return }  // '' is a quote inside
            } else if !single && c == .doubleQuote {
                skipCharacter()
                return
            } else if !single && c == .backslash {
                skipCharacter()
                if lineBreak(i) > 0 { skipBreak() } else if i < text.count { skipCharacter() }
                continue
            }
            if lineBreak(i) > 0 { skipBreak() } else { skipCharacter() }
        }
    }

    private mutating func skipBlockScalar() {
        skipCharacter()
        var increment = 0
        func digit(_ k: Int) -> Int? { k < text.count && (0x31...0x39).contains(text[k]) ? Int(text[k] - 0x30) : nil }
        if i < text.count && (text[i] == .plus || text[i] == .dash) {
            skipCharacter()
            if let d = digit(i) { increment = d; skipCharacter() }
        } else if let d = digit(i) {
            increment = d; skipCharacter()
            if i < text.count && (text[i] == .plus || text[i] == .dash) { skipCharacter() }
        }
        while blank(i) { skipCharacter() }
        if i < text.count && text[i] == .hash { while !breakOrEnd(i) { skipCharacter() } }
        guard breakOrEnd(i) else { return }
        if lineBreak(i) > 0 { skipBreak() }
        var blockIndent = increment > 0 ? max(indent, 0) + increment : 0
        guard skipBlockBreaks(&blockIndent) else { return }
        while column == blockIndent && i < text.count {
            while !breakOrEnd(i) { skipCharacter() }
            if lineBreak(i) > 0 { skipBreak() }
            guard skipBlockBreaks(&blockIndent) else { return }
        }
    }

    /// Indentation and empty lines inside a block scalar; fixes its indentation on the first
    /// non-empty line when no indicator gave it. False where libyaml fails (a tab in the indentation).
    private mutating func skipBlockBreaks(_ blockIndent: inout Int) -> Bool {
        var deepest = 0
        while true {
            while (blockIndent == 0 || column < blockIndent) && i < text.count && text[i] == .space { skipCharacter() }
            deepest = max(deepest, column)
            if (blockIndent == 0 || column < blockIndent) && i < text.count && text[i] == .tab { return false }
            guard lineBreak(i) > 0 else { break }
            skipBreak()
        }
        if blockIndent == 0 { blockIndent = max(deepest, indent + 1, 1) }
        return true
    }

    private mutating func anchorName() -> ArraySlice<UInt8> {
        let start = i
        while i < text.count && Self.isWordCharacter(text[i]) { skipCharacter() }
        return text[start..<i]
    }

    private mutating func skipTag() {
        skipCharacter()
        let verbatim = i < text.count && text[i] == .less
        if verbatim { skipCharacter() }
        // A verbatim tag `!<…>` may also hold ',', '[' and ']'.
        func inTag(_ c: UInt8) -> Bool {
            Self.isWordCharacter(c) || Self.tagCharacters.contains(c) || (verbatim && (c == .comma || c == .openBracket || c == .closeBracket))
        }
        while i < text.count && inTag(text[i]) { skipCharacter() }
        if verbatim && i < text.count && text[i] == .greater { skipCharacter() }
    }

    private static func isWordCharacter(_ c: UInt8) -> Bool {
        (0x30...0x39).contains(c) || (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || c == .underscore || c == .dash
    }

    // MARK: Characters

    /// The length in bytes of the line break at `k` (CR LF, CR, LF, NEL, LS, PS), or 0.
    private func lineBreak(_ k: Int) -> Int {
        guard k < text.count else { return 0 }
        switch text[k] {
        case 0x0D: return k + 1 < text.count && text[k + 1] == 0x0A ? 2 : 1
        case 0x0A: return 1
        case 0xC2: return k + 1 < text.count && text[k + 1] == 0x85 ? 2 : 0
        case 0xE2: return k + 2 < text.count && text[k + 1] == 0x80 && (text[k + 2] == 0xA8 || text[k + 2] == 0xA9) ? 3 : 0
        default: return 0
        }
    }

    private func blank(_ k: Int) -> Bool { k < text.count && (text[k] == .space || text[k] == .tab) }
    private func breakOrEnd(_ k: Int) -> Bool { k >= text.count || lineBreak(k) > 0 }
    private func blankOrEnd(_ k: Int) -> Bool { blank(k) || breakOrEnd(k) }

    private func documentMarker(_ k: Int) -> Bool {
        guard k + 2 < text.count else { return false }
        let c = text[k]
        return (c == .dash || c == .dot) && text[k + 1] == c && text[k + 2] == c && blankOrEnd(k + 3)
    }

    private mutating func skipCharacter() {
        i += 1
        while i < text.count && text[i] & 0xC0 == 0x80 { i += 1 }  // UTF-8 continuation bytes
        column += 1
        index += 1
    }

    private mutating func skipBreak() {
        i += lineBreak(i)
        line += 1
        column = 0
        index += 1
    }
}

private extension UInt8 {
    static let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t"), hash = UInt8(ascii: "#"), percent = UInt8(ascii: "%")
    static let dash = UInt8(ascii: "-"), dot = UInt8(ascii: "."), question = UInt8(ascii: "?"), colon = UInt8(ascii: ":")
    static let comma = UInt8(ascii: ","), openBracket = UInt8(ascii: "["), closeBracket = UInt8(ascii: "]")
    static let openBrace = UInt8(ascii: "{"), closeBrace = UInt8(ascii: "}"), ampersand = UInt8(ascii: "&")
    static let star = UInt8(ascii: "*"), exclamation = UInt8(ascii: "!"), pipe = UInt8(ascii: "|"), greater = UInt8(ascii: ">")
    static let less = UInt8(ascii: "<"), quote = UInt8(ascii: "'"), doubleQuote = UInt8(ascii: "\"")
    static let at = UInt8(ascii: "@"), backquote = UInt8(ascii: "`"), backslash = UInt8(ascii: "\\"), plus = UInt8(ascii: "+")
    static let underscore = UInt8(ascii: "_")
}
