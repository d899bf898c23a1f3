// HunyuanNN: the neural-network layer every engine stands on (LM inference, the trainer, SVRM, and
// the diffusion / background-removal networks): each operation written once over fp32 row-major
// buffers and shapes, with its backward beside it where training needs one. Engines import this
// module; it imports only HunyuanCore (never an engine, never the C ABI).
@_exported import HunyuanCore
