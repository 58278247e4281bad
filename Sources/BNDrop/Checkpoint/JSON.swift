// JSON for checkpoint headers: reading with cJSON (Debian's libcjson, a small, fuzzed and maintained
// parser that the C tests already use), writing by hand (the few shapes of text bndrop writes).
//
// Why cJSON and not Foundation's JSONSerialization: the core depends on nothing but Glibc, and importing
// Foundation would make every program that loads libbndrop.so load Foundation's libraries too (about
// 60 MB with ICU); and cJSON keeps an object's members as a list, so duplicate names can be seen (and
// refused) rather than silently merged. Where cJSON is lenient (raw control characters, an invalid
// \u escape read as U+0000, whitespace below 0x20), a lexical scan in front of it refuses what
// RFC 8259 refuses, and it bounds the number of values, so a file cannot make the parse tree huge.
import CcJSON
import Glibc
import Synchronization

/// A JSON value. Objects keep their members in text order, duplicates included.
enum JSON {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([(key: String, value: JSON)])

    /// The most values one text may hold (the parse tree is then at most ~64 MB).
    static let maxValues = 1 << 20

    /// cJSON records its last error position in a global variable: parses are serialised so that
    /// threads loading different checkpoints at once never write it together.
    private static let parseLock = Mutex(())

    /// Parses `bytes` as exactly one JSON value (whitespace around it is allowed). Any problem is a
    /// `.format` error starting with `what` (e.g. "'net.safetensors': header").
    static func parse(_ bytes: UnsafeRawBufferPointer, what: @autoclosure () -> String) throws -> JSON {
        try scan(bytes, what: what())
        // NUL-terminated copy for cJSON (the scan refused NUL bytes, so the copy ends where the text does).
        guard let copy = malloc(bytes.count + 1)?.assumingMemoryBound(to: CChar.self) else {
            throw BNDError.outOfMemory("\(what()): cannot allocate \(bytes.count + 1) bytes to parse it")
        }
        defer { free(copy) }
        if let base = bytes.baseAddress { memcpy(copy, base, bytes.count) }
        copy[bytes.count] = 0
        let text = UnsafePointer(copy)
        let label = what()
        return try parseLock.withLock { _ -> Result<JSON, BNDError> in
            var end: UnsafePointer<CChar>? = nil
            guard let root = cJSON_ParseWithOpts(text, &end, 1) else {
                let at = end.map { text.distance(to: $0) } ?? 0
                return .failure(.format("\(label) is not valid JSON (error at byte \(at) of \(bytes.count))"))
            }
            defer { cJSON_Delete(root) }
            return Result { try JSON(root, what: label) }.mapError { $0 as? BNDError ?? .format("\(label): \($0)") }
        }.get()
    }

    /// What cJSON lets through but JSON does not, and the size bound: raw control characters (in strings,
    /// or outside them other than tab, LF, CR), escapes other than \" \\ \/ \b \f \n \r \t \uXXXX, the
    /// escape \u0000 (C strings would cut the text there), text that is not UTF-8, more than `maxValues`
    /// values.
    private static func scan(_ bytes: UnsafeRawBufferPointer, what: @autoclosure () -> String) throws {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw BNDError.format("\(what()) is not valid UTF-8")
        }
        func fail(_ problem: String, _ at: Int) -> BNDError {
            .format("\(what()) is not valid JSON: \(problem) at byte \(at)")
        }
        func hex(_ b: UInt8) -> UInt32? {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(b - UInt8(ascii: "A") + 10)
            default: return nil
            }
        }
        var values = 1
        var inString = false
        var i = 0
        let n = bytes.count
        while i < n {
            let b = bytes[i]
            if inString {
                if b == UInt8(ascii: "\"") {
                    inString = false
                } else if b == UInt8(ascii: "\\") {
                    guard i + 1 < n else { throw fail("a string ends inside an escape", i) }
                    switch bytes[i + 1] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                         UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        i += 1
                    case UInt8(ascii: "u"):
                        guard i + 5 < n else { throw fail("a \\u escape is cut short", i) }
                        var code: UInt32 = 0
                        for k in 2...5 {
                            guard let digit = hex(bytes[i + k]) else { throw fail("a \\u escape without 4 hex digits", i) }
                            code = code << 4 | digit
                        }
                        guard code != 0 else { throw fail("\\u0000 in a string", i) }
                        i += 5
                    default:
                        throw fail("an invalid escape", i)
                    }
                } else if b < 0x20 {
                    throw fail("a raw control character (0x\(String(b, radix: 16))) in a string", i)
                }
            } else {
                switch b {
                case UInt8(ascii: "\""): inString = true
                case UInt8(ascii: ","), UInt8(ascii: "["), UInt8(ascii: "{"): values += 1
                case 0x20, 0x09, 0x0A, 0x0D: break
                default:
                    if b < 0x20 { throw fail("a control character (0x\(String(b, radix: 16)))", i) }
                }
            }
            i += 1
        }
        guard values <= maxValues else {
            throw BNDError.format("\(what()) holds more than \(maxValues) JSON values")
        }
    }

    /// The Swift copy of a cJSON tree (at most cJSON's nesting limit deep).
    private init(_ item: UnsafeMutablePointer<cJSON>, what: @autoclosure () -> String) throws {
        let type = item.pointee.type & 0xFF
        switch type {
        case cJSON_NULL: self = .null
        case cJSON_False: self = .bool(false)
        case cJSON_True: self = .bool(true)
        case cJSON_Number: self = .number(item.pointee.valuedouble)
        case cJSON_String: self = .string(String(cString: item.pointee.valuestring))
        case cJSON_Array, cJSON_Object:
            var elements: [JSON] = []
            var members: [(key: String, value: JSON)] = []
            var child = item.pointee.child
            while let c = child {
                let value = try JSON(c, what: what())
                if type == cJSON_Array {
                    elements.append(value)
                } else {
                    guard let key = c.pointee.string else { throw BNDError.format("\(what()): an object member without a name") }
                    members.append((String(cString: key), value))
                }
                child = c.pointee.next
            }
            self = type == cJSON_Array ? .array(elements) : .object(members)
        default:
            throw BNDError.format("\(what()): unexpected JSON item type \(type)")
        }
    }

    /// What the value is, for messages ("a string", "an array", ...).
    var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

// MARK: - Reading values

extension JSON {
    /// The members of an object after refusing duplicate names; `.format` naming `what` otherwise.
    func uniqueMembers(_ what: @autoclosure () -> String) throws -> [(key: String, value: JSON)] {
        guard case .object(let members) = self else { throw BNDError.format("\(what()) must be an object, got \(kind)") }
        var seen = Set<String>()
        for member in members where !seen.insert(member.key).inserted {
            throw BNDError.format("\(what()) has the name '\(member.key)' twice")
        }
        return members
    }

    /// A whole number in 0...2^53 (every such value is exact in a double, and fits an Int).
    func count(_ what: @autoclosure () -> String) throws -> Int {
        guard case .number(let d) = self, d >= 0, d <= 9_007_199_254_740_992, d == d.rounded(.towardZero) else {
            throw BNDError.format("\(what()) must be a whole number >= 0, got \(description)")
        }
        return Int(d)
    }

    /// A whole number in -2^53...2^53.
    func integer(_ what: @autoclosure () -> String) throws -> Int {
        guard case .number(let d) = self, abs(d) <= 9_007_199_254_740_992, d == d.rounded(.towardZero) else {
            throw BNDError.format("\(what()) must be a whole number, got \(description)")
        }
        return Int(d)
    }

    /// A float32 value. bndrop writes floats as their shortest decimal text; read through a double, the
    /// nearest float is taken, and when double rounding lands next to it, the neighbour whose shortest text
    /// reads as the same double (so every float bndrop writes comes back bit for bit).
    func float(_ what: @autoclosure () -> String) throws -> Float {
        guard case .number(let d) = self else { throw BNDError.format("\(what()) must be a number, got \(description)") }
        let f = Float(d)
        for candidate in [f, f.nextUp, f.nextDown] where candidate.isFinite && Double(candidate.description) == d {
            return candidate
        }
        return f
    }

    func bool(_ what: @autoclosure () -> String) throws -> Bool {
        guard case .bool(let b) = self else { throw BNDError.format("\(what()) must be true or false, got \(description)") }
        return b
    }

    func string(_ what: @autoclosure () -> String) throws -> String {
        guard case .string(let s) = self else { throw BNDError.format("\(what()) must be a string, got \(kind)") }
        return s
    }

    func array(_ what: @autoclosure () -> String) throws -> [JSON] {
        guard case .array(let a) = self else { throw BNDError.format("\(what()) must be an array, got \(kind)") }
        return a
    }

    /// Short text for messages.
    var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let d): return d == d.rounded(.towardZero) && abs(d) < 1e15 ? String(Int64(d)) : "\(d)"
        case .string(let s): return JSONText.string(s.count > 40 ? String(s.prefix(40)) + "…" : s)
        case .array(let a): return "an array of \(a.count)"
        case .object(let m): return "an object of \(m.count)"
        }
    }
}

// MARK: - Writing

/// JSON text as bndrop writes it: compact, members in the order given.
enum JSONText {
    /// `value` as a JSON string: quotes, backslashes and control characters escaped, the rest as UTF-8.
    static func string(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// A finite float as its shortest decimal text (which reads back as the same float).
    static func float(_ value: Float) -> String { value.description }

    /// An object from members whose values are JSON text already.
    static func object(_ members: [(String, String)]) -> String {
        "{" + members.map { string($0.0) + ":" + $0.1 }.joined(separator: ",") + "}"
    }

    static func array(_ values: [String]) -> String { "[" + values.joined(separator: ",") + "]" }

    static func ints(_ values: [Int]) -> String { array(values.map(String.init)) }
}
