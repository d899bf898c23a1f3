import ArgumentParser
import HunyuanCore

@main
struct HunyuanCLI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hunyuan-cli",
        abstract: "Tencent Hunyuan models on the CPU: language models, tokenizer, meshes, 3D reconstruction.",
        discussion: "Stdout carries only each command's data; progress and logs go to stderr.",
        version: HunyuanVersion.string,
        subcommands: cliSubcommands
    )
}

/// Every subcommand, one file each in this folder.
let cliSubcommands: [ParsableCommand.Type] = [
    SystemCommand.self,
    InspectCommand.self,
    TokenizeCommand.self, DetokenizeCommand.self, ChatTokenizeCommand.self,
    SVRMEvalCommand.self,
    SVRMRandomCommand.self,
    ReconstructCommand.self,
    ViewsCommand.self, MVDEvalCommand.self, MVDRandomCommand.self, MVDBenchCommand.self,
    ImageTo3DCommand.self,
    TextToImageCommand.self, TextTo3DCommand.self, T2IEvalCommand.self, T2ITokenizeCommand.self,
    T2IRandomCommand.self, T2IBenchCommand.self,
    RemoveBackgroundCommand.self, RembgEvalCommand.self, RembgBenchCommand.self,
    LogitsCommand.self, GenerateCommand.self, RandomModelCommand.self, BenchCommand.self,
    QuantizeCommand.self, ExportGGUFCommand.self,
    MeshCommand.self, PreviewCommand.self, MeshInfoCommand.self, MeshConvertCommand.self, MeshBenchCommand.self,
    Train3DCommand.self, Eval3DCommand.self,
    TrainCommand.self, TrainTokenizerCommand.self, PerplexityCommand.self, BPEEncodeCommand.self,
]
