// Named intermediates for parity tests, as llama.cpp names every tensor of its graph
// (`cb(cur, "ffn_out", il)`): a network calls its trace with a stable name, the shape and the values
// at each stage, and a test compares them with the reference implementation's tensors of the same
// name. Without a trace nothing is copied.

/// Receives one named intermediate: name (e.g. `enc_block_out.3`, `attn_out.0`), its shape, and the
/// values (valid only during the call). Called on the thread running the network.
public typealias Trace = (_ name: String, _ shape: [Int], _ values: UnsafeBufferPointer<Float>) -> Void

extension Optional where Wrapped == Trace {
    /// Emits `count(shape)` floats at `p` under `name` when a trace is set.
    @inlinable
    public func emit(_ name: @autoclosure () -> String, _ shape: [Int], _ p: UnsafePointer<Float>) {
        guard let t = self else { return }
        t(name(), shape, UnsafeBufferPointer(start: p, count: shape.reduce(1, *)))
    }
}
