
/// The one error type of the engines. Every failure that can reach a caller is one of these, with a
/// message that names the file, tensor or argument involved; the C layer maps it onto
/// `hy_status` + `hy_last_error()` (HunyuanCAPI owns the numbering).
public struct HYError: Error, CustomStringConvertible, Sendable {
    /// What went wrong, as a closed set; the C layer maps each kind onto its `hy_status` number.
    public enum Kind: Sendable, Equatable {
        case invalidArgument, io, format, unsupported, outOfMemory, contextFull, aborted, `internal`
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    public static func invalidArgument(_ m: String) -> HYError { HYError(.invalidArgument, m) }
    public static func io(_ m: String) -> HYError { HYError(.io, m) }
    public static func format(_ m: String) -> HYError { HYError(.format, m) }
    public static func unsupported(_ m: String) -> HYError { HYError(.unsupported, m) }
    public static func outOfMemory(_ m: String) -> HYError { HYError(.outOfMemory, m) }
    public static func contextFull(_ m: String) -> HYError { HYError(.contextFull, m) }
    public static func aborted(_ m: String = "cancelled") -> HYError { HYError(.aborted, m) }
    public static func `internal`(_ m: String) -> HYError { HYError(.internal, m) }
}

/// Checked integer arithmetic for sizes that come from files: overflow is a format error, not a trap.
@inlinable
public func checkedMul(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
    let (r, o) = a.multipliedReportingOverflow(by: b)
    if o { throw HYError.format("\(what()): size overflows") }
    return r
}

@inlinable
public func checkedAdd(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
    let (r, o) = a.addingReportingOverflow(b)
    if o { throw HYError.format("\(what()): size overflows") }
    return r
}
