// `Decodable` over `JSONValue` (the standard library's Decoder protocol, no Foundation): configs are
// plain Decodable structs whose CodingKeys spell the file's keys. Integers decode exactly (a JSON
// 2.0 is accepted where an Int is expected), floats from ints or doubles, `null` or an absent key
// gives nil through `decodeIfPresent`; every failure is a `HYError.format` naming the file and the
// key path ("unet/config.json: block_out_channels[2]: expected an integer").

extension JSONValue {
    /// Decodes `T` from this value; `context` (usually the file path) prefixes error messages.
    public func decode<T: Decodable>(_ type: T.Type, context: String) throws -> T {
        do {
            return try T(from: JSONValueDecoder(value: self, path: [], context: context))
        } catch let e as HYError {
            throw e
        } catch {
            throw HYError.format("\(context): \(error)")
        }
    }

    /// Parses the JSON file at `path` and decodes `T` from it.
    public static func decode<T: Decodable>(_ type: T.Type, contentsOf path: String) throws -> T {
        try parse(contentsOf: path).decode(type, context: path)
    }
}

extension KeyedDecodingContainer {
    /// The value at `key`, or `fallback` when the key is absent or null (a config's documented
    /// default); a present value of the wrong type is still an error.
    public func decode<T: Decodable>(_ key: Key, default fallback: T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback
    }
}

private struct JSONKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) { self.stringValue = "\(intValue)"; self.intValue = intValue }
}

private func describe(_ path: [CodingKey]) -> String {
    var s = ""
    for k in path {
        if let i = k.intValue { s += "[\(i)]" } else { s += s.isEmpty ? k.stringValue : "." + k.stringValue }
    }
    return s.isEmpty ? "(top level)" : s
}

private struct JSONValueDecoder: Decoder {
    let value: JSONValue
    let path: [CodingKey]
    let context: String
    var codingPath: [CodingKey] { path }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func fail(_ what: String) -> HYError { HYError.format("\(context): \(describe(path)): \(what)") }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard let o = value.objectValue else { throw fail("expected an object") }
        var dict: [String: JSONValue] = [:]
        for (k, v) in o { dict[k] = v }
        return KeyedDecodingContainer(Keyed<Key>(object: dict, decoder: self))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard let a = value.arrayValue else { throw fail("expected an array") }
        return Unkeyed(items: a, decoder: self)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { Single(decoder: self) }

    func child(_ v: JSONValue, _ key: CodingKey) -> JSONValueDecoder {
        JSONValueDecoder(value: v, path: path + [key], context: context)
    }

    // Scalars
    func bool() throws -> Bool {
        guard let b = value.boolValue else { throw fail("expected true or false") }
        return b
    }
    func int<I: FixedWidthInteger>(_: I.Type) throws -> I {
        guard let i = value.intValue, let r = I(exactly: i) else { throw fail("expected an integer in range of \(I.self)") }
        return r
    }
    func double() throws -> Double {
        guard let d = value.doubleValue else { throw fail("expected a number") }
        return d
    }
    func string() throws -> String {
        guard let s = value.stringValue else { throw fail("expected a string") }
        return s
    }
    func decode<T: Decodable>(_ t: T.Type) throws -> T {
        switch t {
        case is Int.Type: return try int(Int.self) as! T
        case is Int32.Type: return try int(Int32.self) as! T
        case is Int64.Type: return try int(Int64.self) as! T
        case is UInt32.Type: return try int(UInt32.self) as! T
        case is Double.Type: return try double() as! T
        case is Float.Type: return Float(try double()) as! T
        case is Bool.Type: return try bool() as! T
        case is String.Type: return try string() as! T
        default: return try T(from: self)
        }
    }
}

private struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let object: [String: JSONValue]
    let decoder: JSONValueDecoder
    var codingPath: [CodingKey] { decoder.path }
    var allKeys: [Key] { object.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { object[key.stringValue] != nil }

    func child(_ key: Key) throws -> JSONValueDecoder {
        guard let v = object[key.stringValue] else {
            throw HYError.format("\(decoder.context): \(describe(decoder.path + [key])): missing key")
        }
        return decoder.child(v, key)
    }

    func decodeNil(forKey key: Key) throws -> Bool { object[key.stringValue].map { $0 == .null } ?? true }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try child(key).decode(type) }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let v = object[key.stringValue], v != .null else { return nil }
        return try decoder.child(v, key).decode(type)
    }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try child(key).bool() }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try child(key).string() }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try child(key).double() }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { Float(try child(key).double()) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try child(key).int(Int.self) }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey> { try child(key).container(keyedBy: type) }
    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer { try child(key).unkeyedContainer() }
    func superDecoder() throws -> Decoder { decoder }
    func superDecoder(forKey key: Key) throws -> Decoder { try child(key) }
}

private struct Unkeyed: UnkeyedDecodingContainer {
    let items: [JSONValue]
    let decoder: JSONValueDecoder
    var currentIndex = 0
    init(items: [JSONValue], decoder: JSONValueDecoder) { self.items = items; self.decoder = decoder }
    var codingPath: [CodingKey] { decoder.path }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    mutating func next() throws -> JSONValueDecoder {
        guard !isAtEnd else {
            throw HYError.format("\(decoder.context): \(describe(decoder.path)): fewer than \(currentIndex + 1) elements")
        }
        defer { currentIndex += 1 }
        return decoder.child(items[currentIndex], JSONKey(intValue: currentIndex))
    }

    mutating func decodeNil() throws -> Bool {
        if !isAtEnd, items[currentIndex] == .null { currentIndex += 1; return true }
        return false
    }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decode(type) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
        -> KeyedDecodingContainer<NestedKey> { try next().container(keyedBy: type) }
    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> Decoder { try next() }
}

private struct Single: SingleValueDecodingContainer {
    let decoder: JSONValueDecoder
    var codingPath: [CodingKey] { decoder.path }
    func decodeNil() -> Bool { decoder.value == .null }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decode(type) }
    func decode(_ type: Bool.Type) throws -> Bool { try decoder.bool() }
    func decode(_ type: String.Type) throws -> String { try decoder.string() }
    func decode(_ type: Double.Type) throws -> Double { try decoder.double() }
    func decode(_ type: Float.Type) throws -> Float { Float(try decoder.double()) }
    func decode(_ type: Int.Type) throws -> Int { try decoder.int(Int.self) }
}
