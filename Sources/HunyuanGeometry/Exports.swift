@_exported import HunyuanCore
