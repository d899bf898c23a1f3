#!/usr/bin/env python3
"""PyTorch / diffusers anchor for `hunyuan-cli mvd-bench`: the same lite multi-view diffusion folder
on the CPU in fp32, timed stage by stage, printed in mvd-bench's table layout.

    python bench/mvd-diffusers.py MODEL_DIR [--threads 2] [--steps N] [--stages] [--hunyuan3d PATH]

--hunyuan3d PATH: a checkout of Tencent/Hunyuan3D-1. The official `Hunyuan3d_MVD_Lite_Pipeline`
(mvd/hunyuan3d_mvd_lite_pipeline.py) is imported from it at run time (it is not part of this
repository) and loads the folder with `from_pretrained`; the UNet passes run through its
`RefOnlyNoisedUNet` / `ReferenceOnlyAttnProc`, and --steps N times `pipe(image, num_inference_steps=N)`.
Without it, the components are loaded one at a time with diffusers / transformers
(`UNet2DConditionModel.from_pretrained(MODEL_DIR/unet)`, …) and the reference attention is the small
processor below (the fixture README's convention 5); --steps N then runs the same loop here.

Stages (as mvd-bench): CLIP vision, VAE encode (cond + negative), text encoder, UNet write pass
(batch 2 on the condition latent), UNet read pass (batch 2 on the 120×80 latent), denoising step,
VAE decode, whole run. `load s` is the component's from_pretrained. Peak RSS is ru_maxrss.
Needs torch, diffusers 0.31, transformers 4.46 (and einops, PIL for the official pipeline).
"""
import argparse
import sys

import numpy as np
import torch
from PIL import Image

from benchtab import Stages, check_components, log, print_table, timed

LATENT_H, LATENT_W = 120, 80


class RefAttnProc:
    """Reference attention (official ReferenceOnlyAttnProc semantics): in mode "w" an attn1 stores its
    input hidden states (post-norm1); in mode "r" its keys/values come from cat([own, stored], tokens).
    Other attentions (attn2) pass through. `state` is shared: {"mode": "w"|"r"|None, name: tensor}."""

    def __init__(self, name, state):
        from diffusers.models.attention_processor import AttnProcessor2_0
        self.name, self.state, self.inner = name, state, AttnProcessor2_0()
        self.enabled = name.endswith("attn1.processor")

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, **kwargs):
        if encoder_hidden_states is None:
            encoder_hidden_states = hidden_states
        if self.enabled and self.state["mode"] == "w":
            self.state[self.name] = encoder_hidden_states
        elif self.enabled and self.state["mode"] == "r":
            encoder_hidden_states = torch.cat([encoder_hidden_states, self.state[self.name]], dim=1)
        return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask)


def synthetic_image(n=512):
    y, x = np.mgrid[0:n, 0:n]
    r = np.hypot(x - n // 2, y - n // 2)
    img = np.zeros((n, n, 4), np.uint8)
    inside = r < n * 0.35
    img[..., 0] = (60 + x * 150 // n).astype(np.uint8)
    img[..., 1] = (40 + y * 150 // n).astype(np.uint8)
    img[..., 2] = 120
    img[..., 3] = np.where(inside, 255, 0)
    img[~inside, :3] = 0
    return Image.fromarray(img, "RGBA")


def to_rgb(im):
    bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
    return Image.alpha_composite(bg, im).convert("RGB")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0, help="also time a whole run of N steps (0 = none)")
    ap.add_argument("--stages", action="store_true", help="time the single stages too when --steps is given")
    ap.add_argument("--hunyuan3d", help="checkout of Tencent/Hunyuan3D-1 (use its official pipeline class)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--check", action="store_true",
                    help="only load every component strictly (no missing / unexpected tensors) and report; exit 1 on a mismatch")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.check:
        sys.exit(check_folder(a.model))
    torch.manual_seed(a.seed)
    dev, dt = torch.device("cpu"), torch.float32
    rows = Stages()
    add = rows.add

    import diffusers
    import transformers
    from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPImageProcessor, CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection
    import json, os

    d = a.model
    pipe = None
    if a.hunyuan3d:
        sys.path.insert(0, a.hunyuan3d)
        from mvd.hunyuan3d_mvd_lite_pipeline import Hunyuan3d_MVD_Lite_Pipeline, RefOnlyNoisedUNet
        log("loading the official Hunyuan3d_MVD_Lite_Pipeline …")
        pipe, tl_all = timed(lambda: Hunyuan3d_MVD_Lite_Pipeline.from_pretrained(d, torch_dtype=dt).to(dev))
        add("load (from_pretrained, whole pipeline)", tl_all, 0.0)
        ramp = pipe.config.ramping_coefficients
        fe_vae, fe_clip, tok, sched = pipe.feature_extractor_vae, pipe.feature_extractor_clip, pipe.tokenizer, pipe.scheduler
    else:
        ramp = json.load(open(os.path.join(d, "model_index.json")))["ramping_coefficients"]
        fe_vae = CLIPImageProcessor.from_pretrained(d, subfolder="feature_extractor_vae")
        fe_clip = CLIPImageProcessor.from_pretrained(d, subfolder="feature_extractor_clip")
        tok = CLIPTokenizer.from_pretrained(d, subfolder="tokenizer")
        sched = EulerAncestralDiscreteScheduler.from_pretrained(d, subfolder="scheduler")

    def load(cls, sub):
        if pipe is not None:
            return getattr(pipe, sub), None
        return timed(lambda: cls.from_pretrained(d, subfolder=sub, torch_dtype=dt).eval())

    im = synthetic_image()
    rgb = to_rgb(im)
    with torch.no_grad():
        if a.steps == 0 or a.stages:
            px_vae = fe_vae(images=rgb, return_tensors="pt").pixel_values.to(dt)
            px_clip = fe_clip(images=rgb, return_tensors="pt").pixel_values.to(dt)

            vision, tl = load(CLIPVisionModelWithProjection, "vision_encoder")
            emb, ts = timed(lambda: vision(px_clip).image_embeds)
            add("CLIP vision", tl, ts)
            del vision

            vae, tl = load(AutoencoderKL, "vae")
            f = 2 ** (len(vae.config.block_out_channels) - 1)

            def enc():
                c = vae.encode(px_vae).latent_dist.sample()
                n = vae.encode(torch.zeros_like(px_vae)).latent_dist.sample()
                return torch.cat([n, c])
            cond_lat, ts = timed(enc)
            add("VAE encode (cond + negative)", tl, ts)

            te, tl = load(CLIPTextModel, "text_encoder")
            ids = tok("", padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids
            text, ts = timed(lambda: te(ids)[0])
            add("text encoder", tl, ts)
            del te
            r = emb.new_tensor(ramp).unsqueeze(-1)
            prompt = torch.cat([text, text + emb.unsqueeze(-2) * r])

            unet, tl = load(UNet2DConditionModel, "unet")
            sched.set_timesteps(max(a.steps, 50))
            t = sched.timesteps[0]
            sigma = sched.sigmas[0]
            ch, cw = cond_lat.shape[2], cond_lat.shape[3]
            ref_in = (cond_lat + torch.randn_like(cond_lat) * sigma) / (sigma ** 2 + 1) ** 0.5
            x = torch.randn(1, unet.config.in_channels, LATENT_H, LATENT_W) * sched.init_noise_sigma
            x_in = torch.cat([x, x]) / (sigma ** 2 + 1) ** 0.5
            if pipe is not None:
                # the official wrapper's processors (ReferenceOnlyAttnProc), driven pass by pass
                inner = unet.unet if isinstance(unet, RefOnlyNoisedUNet) else RefOnlyNoisedUNet(unet, None, sched).eval().unet
                ref = {}
                _, tw = timed(lambda: inner(ref_in, t, prompt, cross_attention_kwargs=dict(mode="w", ref_dict=ref)))
                out, tr = timed(lambda: inner(x_in, t, prompt, cross_attention_kwargs=dict(mode="r", ref_dict=ref)))
                pipe.unet = inner   # __call__ wraps it again
            else:
                state = {"mode": None}
                unet.set_attn_processor({n: RefAttnProc(n, state) for n in unet.attn_processors})
                state["mode"] = "w"
                _, tw = timed(lambda: unet(ref_in, t, prompt))
                state["mode"] = "r"
                out, tr = timed(lambda: unet(x_in, t, prompt))
                state.clear(); state["mode"] = None
            assert torch.isfinite(out.sample if hasattr(out, "sample") else out[0]).all()
            add(f"UNet write pass ({ch}×{cw}, batch 2)", tl, tw)
            add(f"UNet read pass ({LATENT_H}×{LATENT_W}, batch 2)", None, tr)
            add("denoising step (write + read)", None, tw + tr)
            if pipe is None:
                del unet

            z = torch.randn(1, vae.config.latent_channels, LATENT_H, LATENT_W)
            img, ts = timed(lambda: vae.decode(z).sample)
            add(f"VAE decode ({LATENT_H}×{LATENT_W} → {LATENT_H * f}×{LATENT_W * f})", None, ts)
            del vae

        if a.steps > 0:
            log(f"whole run, {a.steps} steps …")
            if pipe is not None:
                f = pipe.vae_scale_factor
                _, ts = timed(lambda: pipe(im, width=LATENT_W * f, height=LATENT_H * f, num_inference_steps=a.steps))
            else:
                _, ts = timed(lambda: run_lite(d, im, a.steps, ramp, fe_vae, fe_clip, tok, sched, dt))
            add(f"whole run ({a.steps} steps)", None, ts)

    print(f"mvd-diffusers {d}: {torch.get_num_threads()} threads, torch {torch.__version__}, diffusers {diffusers.__version__}, "
          f"transformers {transformers.__version__}, fp32, {'official pipeline' if pipe is not None else 'components'}\n")
    print_table(rows)


def check_folder(d):
    """Loads each component of the folder with diffusers / transformers, reporting missing and
    unexpected tensors (output_loading_info) and the parameter counts; 0 when all are exact."""
    from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPImageProcessor, CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection
    bad = check_components(d, [(UNet2DConditionModel, "unet"), (AutoencoderKL, "vae"), (CLIPTextModel, "text_encoder"),
                               (CLIPVisionModelWithProjection, "vision_encoder")], low_cpu_mem_usage_off=("unet", "vae"))
    tok = CLIPTokenizer.from_pretrained(d, subfolder="tokenizer")
    ids = tok("", padding="max_length", max_length=tok.model_max_length).input_ids
    print(f"tokenizer: {len(tok)} tokens, model_max_length {tok.model_max_length}, '' -> {ids[:4]}… ({len(ids)})")
    bad += len(tok) != 49408 or ids[:3] != [49406, 49407, 0]
    s = EulerAncestralDiscreteScheduler.from_pretrained(d, subfolder="scheduler")
    fv = CLIPImageProcessor.from_pretrained(d, subfolder="feature_extractor_vae")
    fc = CLIPImageProcessor.from_pretrained(d, subfolder="feature_extractor_clip")
    print(f"scheduler: {s.config.prediction_type}, {s.config.timestep_spacing}; feature_extractor_vae {fv.crop_size}, "
          f"feature_extractor_clip {fc.crop_size}")
    print("OK" if bad == 0 else f"{bad} problems")
    return 0 if bad == 0 else 1


def run_lite(d, im, steps, ramp, fe_vae, fe_clip, tok, sched, dt):
    """The lite pipeline's run (convention numbers of the fixture README) with components loaded here."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPVisionModelWithProjection
    rgb = to_rgb(im)
    px_vae = fe_vae(images=rgb, return_tensors="pt").pixel_values.to(dt)
    px_clip = fe_clip(images=rgb, return_tensors="pt").pixel_values.to(dt)
    vae = AutoencoderKL.from_pretrained(d, subfolder="vae", torch_dtype=dt).eval()
    cond_lat = torch.cat([vae.encode(torch.zeros_like(px_vae)).latent_dist.sample(), vae.encode(px_vae).latent_dist.sample()])
    vision = CLIPVisionModelWithProjection.from_pretrained(d, subfolder="vision_encoder", torch_dtype=dt).eval()
    emb = vision(px_clip).image_embeds.unsqueeze(-2)
    del vision
    te = CLIPTextModel.from_pretrained(d, subfolder="text_encoder", torch_dtype=dt).eval()
    ids = tok("", padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids
    text = te(ids)[0]
    del te
    prompt = torch.cat([text, text + emb * emb.new_tensor(ramp).unsqueeze(-1)])
    unet = UNet2DConditionModel.from_pretrained(d, subfolder="unet", torch_dtype=dt).eval()
    state = {"mode": None}
    unet.set_attn_processor({n: RefAttnProc(n, state) for n in unet.attn_processors})
    sched.set_timesteps(steps)
    x = torch.randn(1, unet.config.in_channels, LATENT_H, LATENT_W) * sched.init_noise_sigma
    m = torch.ones_like(x)
    m[:, :, :40, :40] = 3; m[:, :, :40, 40:] = 2.5; m[:, :, 40:80, :40] = 2
    m[:, :, 40:80, 40:] = 1.5; m[:, :, 80:120, :40] = 2; m[:, :, 80:120, 40:] = 2.5
    for i, t in enumerate(sched.timesteps):
        ref_in = sched.scale_model_input(sched.add_noise(cond_lat, torch.randn_like(cond_lat), t.reshape(-1)), t)
        state["mode"] = "w"
        unet(ref_in, t, prompt)
        state["mode"] = "r"
        u, c = unet(sched.scale_model_input(torch.cat([x, x]), t), t, prompt).sample.chunk(2)
        x = sched.step(u + m * (2 + 16 * (t / 1000) ** 5) / 3 * (c - u), t, x).prev_sample
        print(f"\rstep {i + 1}/{steps}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    del unet
    return vae.decode((x / 0.75 + 0.22) / vae.config.scaling_factor).sample


if __name__ == "__main__":
    main()
