"""Load a Hunyuan checkpoint folder and generate: token ids in/out for any checkpoint, streamed text
when the folder holds hy.tiktoken.

    python examples/python/generate.py MODEL_DIR [PROMPT]
"""
import sys

import hunyuan

model_dir = sys.argv[1]
with hunyuan.Model(model_dir) as model:
    info = model.info
    print(f"{model_dir}: {info['n_layer']} layers, {info['n_expert']} experts (top {info['n_expert_used']}), "
          f"vocab {info['n_vocab']}, KV {info['kv_bytes_per_token']} B/token")
    if model.tokenizer is not None:
        prompt = sys.argv[2] if len(sys.argv) > 2 else "The story begins"
        print(prompt, end="", flush=True)
        for piece in model.generate(prompt, max_tokens=48, stream=True):
            print(piece, end="", flush=True)
        print()
    else:
        ids, reason = model.generate_ids([1, 2, 3], max_tokens=16, greedy=True)
        print("greedy continuation of [1, 2, 3]:", ids)
