#!/usr/bin/env python3
"""PyTorch / diffusers anchor for `hunyuan-cli t2i-bench`: the same hunyuanDiT/ folder on the CPU in
fp32, timed component by component, printed in t2i-bench's table layout (same stage names).

    python bench/t2i-diffusers.py MODEL_DIR [--threads 2] [--height 1024 --width 1024] [--skip-encoders] [--json]
    python bench/t2i-diffusers.py MODEL_DIR --check

Components (each loaded with from_pretrained(torch_dtype=float32), run once, released), as t2i-bench:
- transformers' BertModel on 2 prompts x 77 tokens (one untimed warm-up run first) and T5EncoderModel on
  2 x 256 tokens. The ids are seeded random ids below the folder tokenizer's vocabulary (t2i-random
  copies the tiny fixture's; its T5 tokenizer would need sentencepiece) with all-ones masks: every
  position is computed either way, so the cost is the pipeline's.
- diffusers' HunyuanDiT2DModel: one forward on the CFG + PAG batch of 3 (negative, prompt, prompt) at
  --height x --width with PAG's processors set by diffusers' own HunyuanDiTPAGPipeline
  (`_set_pag_attn_processor` of a pipeline built around the transformer with
  pag_applied_layers=["blocks.(16|17|18|19)"], the slot Hunyuan3D-1.0 uses: the four blocks before the
  middle), and the rotary table, size ids and style as the pipeline makes them.
- AutoencoderKL.decode of one latent at that size.
`load s` is from_pretrained; peak RSS is ru_maxrss of this process so far (run one process per thread
count). --check loads each component strictly (missing / unexpected tensors) and exits 1 on a mismatch.
Needs torch, diffusers 0.31, transformers 4.46.
"""
import argparse
import json
import sys

import torch

from benchtab import Stages, check_components, log, print_table, timed


def vocab_size(path, default):
    try:
        with open(path, encoding="utf-8") as f:
            return sum(1 for _ in f)
    except OSError:
        return default


def pag_layers(num_layers):
    """Hunyuan3D-1.0's slot, blocks.(16|17|18|19) for the 40-block release: the four blocks before the middle."""
    half = num_layers // 2
    return ["blocks.(" + "|".join(str(i) for i in range(max(0, half - 4), half)) + ")"]


def check_folder(d):
    """Loads each component strictly (benchtab.check_components), the BERT tokenizer and the scheduler;
    0 when all are exact. (The mT5 tokenizer needs sentencepiece, which the bench venv lacks.)"""
    from diffusers import AutoencoderKL, DDPMScheduler, HunyuanDiT2DModel
    from transformers import BertModel, BertTokenizer, T5EncoderModel
    bad = check_components(d, [(BertModel, "text_encoder"), (T5EncoderModel, "text_encoder_2"),
                               (HunyuanDiT2DModel, "transformer"), (AutoencoderKL, "vae")],
                           low_cpu_mem_usage_off=("transformer", "vae"))
    tok = BertTokenizer.from_pretrained(d, subfolder="tokenizer")
    ids = tok("a rabbit", padding="max_length", max_length=tok.model_max_length).input_ids
    print(f"tokenizer: {len(tok)} tokens, model_max_length {tok.model_max_length}, 'a rabbit' -> {ids[:6]}… ({len(ids)})")
    s = DDPMScheduler.from_pretrained(d, subfolder="scheduler")
    print(f"scheduler: {s.config.prediction_type}, {s.config.beta_schedule} to {s.config.beta_end}, {s.config.timestep_spacing}")
    print("OK" if bad == 0 else f"{bad} problems")
    return 0 if bad == 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--height", type=int, default=1024)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--skip-encoders", action="store_true", help="random text states for the DiT instead of BERT / mT5")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print JSON instead of the markdown table")
    ap.add_argument("--check", action="store_true", help="only load every component strictly and report")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.check:
        sys.exit(check_folder(a.model))
    torch.manual_seed(a.seed)
    dt = torch.float32
    d = a.model
    rows = Stages()

    add = rows.add

    import diffusers
    import transformers
    from diffusers import AutoencoderKL, HunyuanDiT2DModel, HunyuanDiTPAGPipeline
    from diffusers.models.embeddings import get_2d_rotary_pos_embed
    from diffusers.pipelines.pag.pipeline_pag_hunyuandit import get_resize_crop_region_for_grid
    from transformers import BertModel, T5EncoderModel

    def load(cls, sub, **kw):
        return timed(lambda: cls.from_pretrained(d, subfolder=sub, torch_dtype=dt, **kw).eval())

    tcfg = json.load(open(f"{d}/transformer/config.json"))
    l1, l2 = tcfg.get("text_len", 77), tcfg.get("text_len_t5", 256)
    g = torch.Generator().manual_seed(a.seed)
    with torch.no_grad():
        if a.skip_encoders:
            bert = torch.randn(2, l1, tcfg.get("cross_attention_dim", 1024), generator=g)
            t5 = torch.randn(2, l2, tcfg.get("cross_attention_dim_t5", 2048), generator=g)
        else:
            log("BERT …")
            m, tl = load(BertModel, "text_encoder")
            v = min(m.config.vocab_size, vocab_size(f"{d}/tokenizer/vocab.txt", m.config.vocab_size))
            ids = torch.randint(0, v, (2, l1), generator=g)
            mask = torch.ones_like(ids)
            m(input_ids=ids[:1], attention_mask=mask[:1])  # warm-up
            bert, ts = timed(lambda: torch.cat([m(input_ids=ids[i:i + 1], attention_mask=mask[i:i + 1])[0] for i in range(2)]))
            add(f"BERT (2 × {l1} tokens)", tl, ts)
            del m
            log("mT5 encoder …")
            m, tl = load(T5EncoderModel, "text_encoder_2")
            ids = torch.randint(3, min(m.config.vocab_size, 1012), (2, l2), generator=g)
            mask = torch.ones_like(ids)
            t5, ts = timed(lambda: torch.cat([m(input_ids=ids[i:i + 1], attention_mask=mask[i:i + 1])[0] for i in range(2)]))
            add(f"mT5 encoder (2 × {l2} tokens)", tl, ts)
            del m

        log("DiT …")
        tr, tl = load(HunyuanDiT2DModel, "transformer")
        layers = pag_layers(tr.config.num_layers)
        # diffusers' own PAG wiring: the pipeline's set_pag_applied_layers + _set_pag_attn_processor (CFG on).
        pipe = HunyuanDiTPAGPipeline(vae=None, text_encoder=None, tokenizer=None, transformer=tr, scheduler=None,
                                     safety_checker=None, feature_extractor=None, requires_safety_checker=False,
                                     text_encoder_2=None, tokenizer_2=None, pag_applied_layers=layers)
        pipe._set_pag_attn_processor(pag_applied_layers=pipe.pag_applied_layers, do_classifier_free_guidance=True)
        n_pag = sum(type(p).__name__ == "PAGCFGHunyuanAttnProcessor2_0" for p in tr.attn_processors.values())
        log(f"PAG processors on {n_pag} self-attentions ({layers[0]})")
        f = 8
        lh, lw = a.height // f, a.width // f
        ps = tr.config.patch_size
        grid_h, grid_w = lh // ps, lw // ps
        crops = get_resize_crop_region_for_grid((grid_h, grid_w), 512 // 8 // ps)
        rope = get_2d_rotary_pos_embed(tr.inner_dim // tr.num_heads, crops, (grid_h, grid_w))
        # batch [negative, prompt, prompt (perturbed)] as _prepare_perturbed_attention_guidance makes it
        pe = torch.cat([bert[1:2], bert[0:1], bert[0:1]])
        pe2 = torch.cat([t5[1:2], t5[0:1], t5[0:1]])
        m1 = torch.ones(3, l1, dtype=torch.long)
        m2 = torch.ones(3, l2, dtype=torch.long)
        meta = torch.tensor([[1024, 1024, a.height, a.width, 0, 0]] * 3, dtype=dt)
        style = torch.zeros(3, dtype=torch.long)
        x = torch.randn(1, tr.config.in_channels, lh, lw, generator=g).repeat(3, 1, 1, 1)
        t = torch.tensor([981.0] * 3)
        out, ts = timed(lambda: tr(x, t, encoder_hidden_states=pe, text_embedding_mask=m1, encoder_hidden_states_t5=pe2,
                                   text_embedding_mask_t5=m2, image_meta_size=meta, style=style, image_rotary_emb=rope,
                                   return_dict=False)[0])
        assert torch.isfinite(out).all()
        add(f"DiT step (batch 3, {a.height}×{a.width})", tl, ts)
        del pipe, tr, out

        log("VAE decode …")
        vae, tl = load(AutoencoderKL, "vae")
        z = torch.randn(1, vae.config.latent_channels, lh, lw, generator=g)
        img, ts = timed(lambda: vae.decode(z).sample)
        assert torch.isfinite(img).all()
        add(f"VAE decode ({a.height}×{a.width})", tl, ts)
        del vae

    if a.json:
        print(json.dumps({"engine": "pytorch", "model": d, "threads": torch.get_num_threads(), "height": a.height,
                          "width": a.width, "torch": torch.__version__, "diffusers": diffusers.__version__,
                          "transformers": transformers.__version__,
                          "rows": [{"stage": s, "load_s": l, "seconds": sec, "peak_rss_gb": r} for s, l, sec, r in rows]}))
        return
    print(f"t2i-diffusers {d}: {torch.get_num_threads()} threads, {a.height}×{a.width}, torch {torch.__version__}, "
          f"diffusers {diffusers.__version__}, transformers {transformers.__version__}, fp32\n")
    print_table(rows)


if __name__ == "__main__":
    main()
