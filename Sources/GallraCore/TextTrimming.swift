extension StringProtocol {
    /// The text without the white space (and, with `newlines`, line breaks) at either end: what Foundation's
    /// `trimmingCharacters(in:)` does, without pulling in the part of Foundation that needs ICU.
    public func trimmingWhitespace(newlines: Bool = false) -> String {
        func isTrimmed(_ character: Character) -> Bool {
            newlines ? character.isWhitespace : character.isWhitespace && !character.isNewline
        }
        guard let first = firstIndex(where: { !isTrimmed($0) }), let last = lastIndex(where: { !isTrimmed($0) })
        else { return "" }
        return String(self[first...last])
    }
}
