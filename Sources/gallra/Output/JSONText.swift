// Foundation, not FoundationEssentials: JSONSerialization re-indents the JSON documents gallra stores.
import Foundation

/// JSON text indented with sorted keys, for people.
enum JSONText {
    static func pretty(_ text: String) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)),
            let data = try? JSONSerialization.data(
                withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        else { return text }
        return String(decoding: data, as: UTF8.self)
    }
}
