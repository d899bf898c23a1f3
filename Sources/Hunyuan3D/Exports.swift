@_exported import HunyuanNN
