/// Finds YAML anchors and aliases by a light scan of the text, before the YAML parser builds anything.
///
/// Yams resolves an alias to the anchored node and then hashes mapping keys to find duplicates, so an alias
/// bomb used as keys would cost exponential time before any tree walk could refuse it. The scan follows
/// quoting, comments and block scalars well enough that `&` and `*` inside text are not mistaken; the tree
/// walk after parsing refuses any anchor the scan let through.
enum AnchorScanner {
    static func firstAnchorOrAlias(in bytes: [UInt8]) -> (offset: Int, isAlias: Bool)? {
        enum Mode {
            case normal
            case doubleQuoted
            case singleQuoted
        }
        let space = UInt8(ascii: " ")
        let tab = UInt8(ascii: "\t")
        let newline = UInt8(ascii: "\n")
        let cr = UInt8(ascii: "\r")
        var mode = Mode.normal
        var flowDepth = 0
        var blockScalarIndent: Int?  // skipping lines more indented than this
        var index = 0
        let count = bytes.count
        func isBlank(_ i: Int) -> Bool {
            i >= count || bytes[i] == space || bytes[i] == tab || bytes[i] == newline || bytes[i] == cr
        }
        while index < count {
            // At the start of a line.
            let lineStart = index
            var indent = 0
            while index < count, bytes[index] == space {
                indent += 1
                index += 1
            }
            if let parent = blockScalarIndent {
                let blank = index >= count || bytes[index] == newline || bytes[index] == cr
                if blank || indent > parent {
                    while index < count, bytes[index] != newline { index += 1 }
                    index += 1
                    continue
                }
                blockScalarIndent = nil
            }
            var nodeStart = mode == .normal
            if mode == .normal, index + 3 <= count, bytes[index] == UInt8(ascii: "-"),
                bytes[index + 1] == UInt8(ascii: "-"), bytes[index + 2] == UInt8(ascii: "-"), isBlank(index + 3)
            {
                index += 3
            } else if mode == .normal, index == lineStart, index < count, bytes[index] == UInt8(ascii: "%") {
                while index < count, bytes[index] != newline { index += 1 }
            }
            while index < count, bytes[index] != newline {
                let byte = bytes[index]
                switch mode {
                case .doubleQuoted:
                    if byte == UInt8(ascii: "\\") {
                        index += 1
                    } else if byte == UInt8(ascii: "\"") {
                        mode = .normal
                        nodeStart = false
                    }
                    index += 1
                    continue
                case .singleQuoted:
                    if byte == UInt8(ascii: "'") {
                        if index + 1 < count, bytes[index + 1] == UInt8(ascii: "'") {
                            index += 2
                            continue
                        }
                        mode = .normal
                        nodeStart = false
                    }
                    index += 1
                    continue
                case .normal:
                    break
                }
                if byte == space || byte == tab || byte == cr {
                    index += 1
                    continue
                }
                let precededByBlank = index == 0 || isBlank(index - 1)
                if byte == UInt8(ascii: "#"), precededByBlank {
                    while index < count, bytes[index] != newline { index += 1 }
                    break
                }
                if nodeStart {
                    switch byte {
                    case UInt8(ascii: "&"), UInt8(ascii: "*"):
                        if !isBlank(index + 1) { return (index, byte == UInt8(ascii: "*")) }
                        nodeStart = false
                    case UInt8(ascii: "\""):
                        mode = .doubleQuoted
                    case UInt8(ascii: "'"):
                        mode = .singleQuoted
                    case UInt8(ascii: "-"), UInt8(ascii: "?"), UInt8(ascii: ":"):
                        if !isBlank(index + 1) { nodeStart = false }
                    case UInt8(ascii: "["), UInt8(ascii: "{"):
                        flowDepth += 1
                    case UInt8(ascii: "]"), UInt8(ascii: "}"):
                        flowDepth = max(0, flowDepth - 1)
                        nodeStart = false
                    case UInt8(ascii: ","):
                        break
                    case UInt8(ascii: "!"):
                        while index + 1 < count, !isBlank(index + 1) { index += 1 }
                    case UInt8(ascii: "|"), UInt8(ascii: ">"):
                        if flowDepth == 0 {
                            blockScalarIndent = indent
                            while index < count, bytes[index] != newline { index += 1 }
                            continue
                        }
                        nodeStart = false
                    default:
                        nodeStart = false
                    }
                    index += 1
                    continue
                }
                // Inside a plain scalar or after a complete node.
                switch byte {
                case UInt8(ascii: ":"):
                    if isBlank(index + 1)
                        || (flowDepth > 0 && index + 1 < count && ",[]{}".utf8.contains(bytes[index + 1]))
                    {
                        nodeStart = true
                    }
                case UInt8(ascii: ","):
                    if flowDepth > 0 { nodeStart = true }
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    if flowDepth > 0 { flowDepth -= 1 }
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    if flowDepth > 0 {
                        flowDepth += 1
                        nodeStart = true
                    }
                default:
                    break
                }
                index += 1
            }
            index += 1  // the newline
        }
        return nil
    }
}
