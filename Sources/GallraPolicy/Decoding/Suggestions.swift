/// "Did you mean" suggestions for misspelt keys, units, names and schedule words: the one place that decides
/// whether a word is a likely typo of a candidate.
public enum Suggestions {
    /// How a word is compared with the candidates, and how close a candidate must be.
    enum Matching: Sendable {
        /// Keys, strategies and units: the word lower-cased against candidates as written, within a third of the
        /// candidate's length (at least 1, at most 3 edits); the first of equally close candidates wins.
        case typo
        /// Catalog names, which are case-sensitive: the same name in another case first, then a typo as above.
        case name
        /// Schedule words and zone names: case-insensitive, within `maximumDistance` edits; of equally close
        /// candidates the longer wins, so that "mondy" suggests "monday" rather than "mon".
        case caseInsensitive(maximumDistance: Int)
    }

    /// The candidate closest to `word` by edit distance (a swap of two neighbours counts once), if it is close
    /// enough to be a likely typo.
    static func closest(to word: String, among candidates: some Collection<String>, matching: Matching = .typo)
        -> String?
    {
        if case .name = matching,
            let sameLetters = candidates.first(where: { $0 != word && $0.lowercased() == word.lowercased() })
        {
            return sameLetters
        }
        let lowered = word.lowercased()
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance: Int
            let preferLonger: Bool
            switch matching {
            case .typo, .name:
                distance = editDistance(lowered, candidate)
                preferLonger = false
            case .caseInsensitive:
                distance = editDistance(lowered, candidate.lowercased())
                preferLonger = true
            }
            guard let current = best else {
                best = (candidate, distance)
                continue
            }
            if distance < current.distance
                || (preferLonger && distance == current.distance && candidate.count > current.candidate.count)
            {
                best = (candidate, distance)
            }
        }
        guard let best else { return nil }
        let allowed =
            switch matching {
            case .typo, .name: max(1, min(3, best.candidate.count / 3))
            case .caseInsensitive(let maximumDistance): maximumDistance
            }
        return best.distance <= allowed ? best.candidate : nil
    }

    /// `; did you mean x?`, or nothing.
    public static func didYouMean(_ word: String, among candidates: some Collection<String>) -> String {
        guard let suggestion = closest(to: word, among: candidates) else { return "" }
        return "; did you mean \(suggestion)?"
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                var value = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    value = min(value, table[i - 2][j - 2] + 1)
                }
                table[i][j] = value
            }
        }
        return table[a.count][b.count]
    }
}
