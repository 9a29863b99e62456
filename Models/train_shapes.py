"""Trains Sfumato's embedded default model, a tiny SD 1.x-family latent diffusion model, from scratch.

Data: shapes_data.py (coloured shapes with captions, generated on the fly). Two stages, each with a
time budget and an optional step cap:
  1. vae:  AutoencoderKL, 64x64 RGB <-> 16x16x4 latents, MSE + small KL.
  2. unet: CLIP text encoder + UNet2DConditionModel jointly on the frozen VAE's latents (scaled by
           1/std measured after stage 1), 10% empty captions for classifier-free guidance, min-SNR loss
           weighting. v-prediction by default: at high noise its target is close to the clean latents,
           so the prompt's colours are learnt from the start; an epsilon model of this size, after the
           same time, still predicts clean latents far worse than zero there and ignores the prompt.
Both stages keep an EMA of the weights (constant learning rate after warm-up); the EMA is what is exported.
Checkpoints go to .cache/train-shapes/ every few minutes; `--resume` continues from there, losing at
most the time since the last checkpoint. Batch k of a stage is a pure function of (seed, stage, k), so
a resumed run trains on the same data, noise and timesteps as an uninterrupted one.
At the end: docs/default-model-loss.png and Models/sfumato-shapes/ in the diffusers layout with fp16
weights and a model card.

    .venv/bin/python Models/train_shapes.py --minutes 90 --resume
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "Tests", "Reference"))
import shapes_data  # noqa: E402
import small_bpe  # noqa: E402

STAGES = ["vae", "unet"]
# Noise schedule of training and of the exported sampler. Linear (DDPM) rather than SD's scaled_linear:
# its last timestep keeps almost no signal (sqrt(alpha_bar) 0.006 instead of 0.068), so the flat
# background colour cannot leak through the noise and has to come from the prompt.
SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.0001, beta_end=0.02, beta_schedule="linear")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=90, help="total time budget, split by --vae-share")
    p.add_argument("--vae-share", type=float, default=0.2, help="fraction of --minutes for the VAE stage")
    p.add_argument("--vae-minutes", type=float, help="VAE stage budget (overrides the split)")
    p.add_argument("--unet-minutes", type=float, help="text encoder + UNet stage budget (overrides the split)")
    p.add_argument("--vae-steps", type=int, help="stop the VAE stage after this many steps (exact reproducibility)")
    p.add_argument("--unet-steps", type=int, help="stop the UNet stage after this many steps")
    p.add_argument("--vae-batch", type=int, default=16)
    p.add_argument("--unet-batch", type=int, default=32)
    p.add_argument("--prediction", choices=["epsilon", "v_prediction"], default="v_prediction",
                   help="UNet target, also written to the scheduler config")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --work if there is one")
    p.add_argument("--work", default=os.path.join(ROOT, ".cache", "train-shapes"), help="checkpoint folder")
    p.add_argument("--checkpoint-minutes", type=float, default=3)
    p.add_argument("--output", default=os.path.join(HERE, "sfumato-shapes"), help="exported model folder")
    p.add_argument("--plot", default=os.path.join(ROOT, "docs", "default-model-loss.png"))
    return p.parse_args(argv)


# ---------------------------------------------------------------- model definitions


def make_tokenizer_files(folder):
    """Writes the small BPE vocabulary; every word of the caption grammar becomes one token."""
    vocab, merges = small_bpe.train(shapes_data.vocabulary_corpus(), merge_count=10_000)
    small_bpe.write(folder, vocab, merges)
    return vocab


def model_configs(vocab):
    text = dict(vocab_size=len(vocab), hidden_size=64, intermediate_size=256, num_hidden_layers=3,
                num_attention_heads=2, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=64,
                bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                pad_token_id=vocab["<|endoftext|>"])
    vae = dict(in_channels=3, out_channels=3, latent_channels=4, sample_size=64,
               down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
               block_out_channels=[16, 32, 64], layers_per_block=1, norm_num_groups=8)
    unet = dict(sample_size=16, in_channels=4, out_channels=4, block_out_channels=[48, 96, 96], layers_per_block=1,
                down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
                up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
                cross_attention_dim=text["hidden_size"], attention_head_dim=4, norm_num_groups=16)
    return dict(text_encoder=text, vae=vae, unet=unet)


def build_models(configs):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    return dict(text_encoder=CLIPTextModel(CLIPTextConfig(**configs["text_encoder"])),
                vae=AutoencoderKL(**configs["vae"]), unet=UNet2DConditionModel(**configs["unet"]))


def parameter_count(module):
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------- training state


class Trainer:
    def __init__(self, args):
        self.args = args
        self.checkpoint_path = os.path.join(args.work, "checkpoint.pt")
        self.tokenizer_dir = os.path.join(args.work, "tokenizer")
        torch.manual_seed(args.seed)
        vocab = make_tokenizer_files(self.tokenizer_dir)
        from transformers import CLIPTokenizer

        self.tokenizer = CLIPTokenizer.from_pretrained(self.tokenizer_dir)
        self.configs = model_configs(vocab)
        self.models = build_models(self.configs)
        self.ema = {name: {k: v.detach().clone() for k, v in self.models[name].state_dict().items()}
                    for name in self.models}
        self.vae_ema_module = None
        self.optimizers = {
            "vae": torch.optim.AdamW(self.models["vae"].parameters(), lr=1e-3, weight_decay=0.0),
            "unet": torch.optim.AdamW(list(self.models["text_encoder"].parameters()) +
                                      list(self.models["unet"].parameters()), lr=3e-4, weight_decay=0.01),
        }
        self.state = dict(seed=args.seed, step={s: 0 for s in STAGES}, seconds={s: 0.0 for s in STAGES},
                          losses={s: [] for s in STAGES}, done={s: False for s in STAGES}, scaling_factor=None,
                          threads=args.threads, batch={"vae": args.vae_batch, "unet": args.unet_batch},
                          prediction=args.prediction)
        self.token_cache = {}
        alphas = 1.0 - torch.linspace(SCHEDULE["beta_start"], SCHEDULE["beta_end"], SCHEDULE["num_train_timesteps"],
                                      dtype=torch.float64)
        self.alpha_bar = torch.cumprod(alphas, 0).float()

    # --- checkpoints

    def save(self):
        os.makedirs(self.args.work, exist_ok=True)
        blob = dict(state=self.state, configs=self.configs, ema=self.ema,
                    models={k: m.state_dict() for k, m in self.models.items()},
                    optimizers={k: o.state_dict() for k, o in self.optimizers.items()})
        temporary = self.checkpoint_path + ".tmp"
        torch.save(blob, temporary)
        os.replace(temporary, self.checkpoint_path)  # a kill during the save keeps the previous checkpoint

    def load(self):
        blob = torch.load(self.checkpoint_path, weights_only=False)
        if blob["configs"] != self.configs:
            sys.exit(f"error: {self.checkpoint_path} was trained with other model configs; delete it or drop --resume")
        for key in ["seed", "prediction"]:
            if blob["state"][key] != getattr(self.args, key):
                sys.exit(f"error: {self.checkpoint_path} used --{key} {blob['state'][key]}, not {getattr(self.args, key)}")
        for name, model in self.models.items():
            model.load_state_dict(blob["models"][name])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(blob["optimizers"][name])
        self.ema = blob["ema"]
        self.state = blob["state"]

    # --- data

    def images(self, stage, step, count):
        pixels, captions = shapes_data.batch([self.args.seed, STAGES.index(stage)], step, count)
        x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return x, captions

    def token_ids(self, captions):
        missing = [c for c in set(captions) if c not in self.token_cache]
        if missing:
            ids = self.tokenizer(missing, padding="max_length", max_length=77, truncation=True,
                                 return_tensors="pt").input_ids
            self.token_cache.update(zip(missing, ids))
        return torch.stack([self.token_cache[c] for c in captions])

    def generator(self, stage, step):
        return torch.Generator().manual_seed(self.args.seed * 1_000_003 + STAGES.index(stage) * 100_000_019 + step)

    # --- one optimisation step per stage

    def vae_step(self, step):
        vae = self.models["vae"]
        x, _ = self.images("vae", step, self.state["batch"]["vae"])
        posterior = vae.encode(x).latent_dist
        reconstruction = vae.decode(posterior.sample(generator=self.generator("vae", step))).sample
        mse = F.mse_loss(reconstruction, x)
        kl = 0.5 * (posterior.mean ** 2 + posterior.var - 1.0 - posterior.logvar).mean()
        return mse + 1e-4 * kl, mse

    def unet_step(self, step):
        vae, text_encoder, unet = self.ema_vae(), self.models["text_encoder"], self.models["unet"]
        g = self.generator("unet", step)
        x, captions = self.images("unet", step, self.state["batch"]["unet"])
        n = x.shape[0]
        drop = torch.rand(n, generator=g) < 0.1
        captions = ["" if d else c for c, d in zip(captions, drop.tolist())]
        with torch.no_grad():
            latents = vae.encode(x).latent_dist.sample(generator=g) * self.state["scaling_factor"]
        noise = torch.randn(latents.shape, generator=g)
        t = torch.randint(0, SCHEDULE["num_train_timesteps"], (n,), generator=g)
        a = self.alpha_bar[t].view(n, 1, 1, 1)
        noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
        context = text_encoder(self.token_ids(captions)).last_hidden_state
        if self.state["prediction"] == "epsilon":
            target = noise
        else:
            target = a.sqrt() * noise - (1 - a).sqrt() * latents
        prediction = unet(noisy, t, context).sample
        per_sample = ((prediction - target) ** 2).mean(dim=(1, 2, 3))
        # min-SNR-5: the same weight per step on the implied error of the clean latents, capped so the easy
        # low-noise steps do not dominate.
        snr = self.alpha_bar[t] / (1 - self.alpha_bar[t])
        weight = torch.clamp(snr, max=5.0) / (snr if self.state["prediction"] == "epsilon" else snr + 1)
        return (weight * per_sample).mean(), per_sample.mean()

    def update_ema(self, names, step):
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for name in names:
                for key, value in self.models[name].state_dict().items():
                    if value.dtype.is_floating_point:
                        self.ema[name][key].mul_(decay).add_(value, alpha=1 - decay)
                    else:
                        self.ema[name][key].copy_(value)

    def ema_vae(self):
        """The VAE with its EMA weights: what stage 2 encodes with and what is exported."""
        if self.vae_ema_module is None:
            self.vae_ema_module = build_models(self.configs)["vae"]
            self.vae_ema_module.load_state_dict(self.ema["vae"])
            self.vae_ema_module.eval().requires_grad_(False)
        return self.vae_ema_module

    @torch.no_grad()
    def measure_scaling_factor(self):
        vae = self.ema_vae()
        latents = [vae.encode(self.images("vae", 10_000_000 + i, 64)[0]).latent_dist.sample(
            generator=self.generator("vae", 10_000_000 + i)) for i in range(8)]
        return float(1.0 / torch.cat(latents).std())

    @torch.no_grad()
    def vae_holdout_mse(self):
        vae = self.ema_vae()
        x, _ = self.images("vae", 20_000_000, 64)
        return float(F.mse_loss(vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1), x))

    # --- the loop

    def run_stage(self, stage, minutes, max_steps):
        state = self.state
        if state["done"][stage]:
            return
        budget = minutes * 60.0
        trainable = ["vae"] if stage == "vae" else ["text_encoder", "unet"]
        for name, model in self.models.items():
            model.train(name in trainable)
            model.requires_grad_(name in trainable)
        optimizer = self.optimizers[stage]
        base_lr = optimizer.defaults["lr"]
        step_function = self.vae_step if stage == "vae" else self.unet_step
        last_save = time.time()
        print(f"== stage {stage}: step {state['step'][stage]}, {state['seconds'][stage] / 60:.1f} of {minutes:g} min used",
              flush=True)
        while state["seconds"][stage] < budget and (max_steps is None or state["step"][stage] < max_steps):
            step = state["step"][stage]
            started, cpu_started = time.time(), time.process_time()
            for group in optimizer.param_groups:
                group["lr"] = base_lr * min(1.0, (step + 1) / 100)  # warm-up, then constant (EMA smooths)
            loss, plain = step_function(step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]], 1.0)
            optimizer.step()
            self.update_ema(trainable, step)
            state["step"][stage] = step + 1
            state["seconds"][stage] += time.time() - started
            state["losses"][stage].append(plain.item())
            if step % 25 == 0:
                print(f"{stage} step {step:6d}  loss {plain.item():.5f}  {time.time() - started:.2f} s/it "
                      f"({(time.process_time() - cpu_started) / self.args.threads:.2f} CPU s/it/thread)  "
                      f"{state['seconds'][stage] / 60:.1f}/{minutes:g} min", flush=True)
            if time.time() - last_save > self.args.checkpoint_minutes * 60:
                self.save()
                last_save = time.time()
        if stage == "vae":
            self.vae_ema_module = None
            state["scaling_factor"] = self.measure_scaling_factor()
            state["vae_holdout_mse"] = self.vae_holdout_mse()
            print(f"vae: scaling_factor {state['scaling_factor']:.4f}, held-out MSE {state['vae_holdout_mse']:.5f}")
        state["done"][stage] = True
        self.save()

    # --- outputs

    def plot(self, path):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        titles = {"vae": "VAE reconstruction MSE", "unet": f"UNet {self.state['prediction']} MSE"}
        for axis, stage in zip(axes, STAGES):
            losses = np.array(self.state["losses"][stage])
            axis.set_title(titles[stage])
            axis.set_xlabel("step")
            axis.set_yscale("log")
            if len(losses):
                axis.plot(losses, color="0.75", linewidth=0.5, label="batch")
                window = max(1, min(100, len(losses) // 10))
                smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
                axis.plot(np.arange(window - 1, len(losses)), smooth, color="C0", label=f"mean of {window}")
                axis.legend()
        figure.tight_layout()
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        figure.savefig(path, dpi=100)
        print(f"wrote {path}")

    def final_loss(self, stage):
        losses = self.state["losses"][stage][-200:]
        return float(np.mean(losses)) if losses else float("nan")

    def export(self, folder):
        import shutil

        from diffusers import EulerDiscreteScheduler

        models = build_models(self.configs)
        for name, model in models.items():
            model.load_state_dict(self.ema[name])
        models["vae"].register_to_config(scaling_factor=self.state["scaling_factor"])
        if os.path.exists(folder):
            shutil.rmtree(folder)
        for name, model in models.items():
            model.half().save_pretrained(os.path.join(folder, name))  # model.safetensors / diffusion_pytorch_model.safetensors
        shutil.copytree(self.tokenizer_dir, os.path.join(folder, "tokenizer"))
        # steps_offset 1 only silences diffusers' legacy-config warning; "linspace" spacing does not use it.
        scheduler = EulerDiscreteScheduler(**SCHEDULE, prediction_type=self.state["prediction"],
                                           timestep_spacing="linspace", steps_offset=1)
        scheduler.save_pretrained(os.path.join(folder, "scheduler"))
        import diffusers

        index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": diffusers.__version__,
                 "feature_extractor": [None, None], "requires_safety_checker": False, "safety_checker": [None, None],
                 "scheduler": ["diffusers", "EulerDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
                 "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
                 "vae": ["diffusers", "AutoencoderKL"]}
        with open(os.path.join(folder, "model_index.json"), "w") as f:
            json.dump(index, f, indent=2)
            f.write("\n")
        with open(os.path.join(folder, "README.md"), "w") as f:
            f.write(self.model_card(models, folder))
        for directory, _, names in os.walk(folder):  # save_pretrained leaves some files private (0600)
            for name in names:
                os.chmod(os.path.join(directory, name), 0o644)
        print(f"wrote {folder}")

    def model_card(self, models, folder):
        s = self.state
        size = sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(folder) for n in names)
        counts = {name: parameter_count(m) for name, m in models.items()}
        u, v, t = self.configs["unet"], self.configs["vae"], self.configs["text_encoder"]
        return f"""# sfumato-shapes

Sfumato's embedded default model: a tiny text-to-image latent diffusion model of the Stable Diffusion 1.x
architecture family, trained from scratch on synthetic pictures by `Models/train_shapes.py`. It exists so
`make run` draws a real picture offline in seconds; it knows nothing but the data below.

## Use

Prompts of the form `a [small|large] <colour> <shape> on a <colour> background`, with colours
red, green, blue, yellow, white, black, orange, purple and shapes circle, square, triangle; 64x64 pixels.
Loads with diffusers: `StableDiffusionPipeline.from_pretrained("Models/sfumato-shapes", torch_dtype=torch.float32)`.

## Data

{shapes_data.SIZE}x{shapes_data.SIZE} RGB images made on the fly by `Models/shapes_data.py`: one circle, square or
triangle in one colour on a plain background of another colour, small (bounding box
{shapes_data.SIZES['small'][0]}-{shapes_data.SIZES['small'][1] - 1} px) or large ({shapes_data.SIZES['large'][0]}-{shapes_data.SIZES['large'][1] - 1} px), at a random position; the size word is
left out of a third of the captions. Seed {s['seed']}.

## Architecture ({sum(counts.values()) / 1e6:.2f} M parameters, {size / 1e6:.1f} MB on disk, fp16 weights)

| component | class | size | parameters |
|---|---|---|---|
| text encoder | CLIPTextModel | hidden {t['hidden_size']}, {t['num_hidden_layers']} layers, {t['num_attention_heads']} heads, quick_gelu, vocabulary {t['vocab_size']} (own byte-level BPE, CLIP format) | {counts['text_encoder'] / 1e6:.2f} M |
| VAE | AutoencoderKL | channels {v['block_out_channels']}, 64x64x3 <-> 16x16x4, scaling_factor {s['scaling_factor']:.4f} | {counts['vae'] / 1e6:.2f} M |
| UNet | UNet2DConditionModel | channels {u['block_out_channels']}, {u['layers_per_block']} layer per block, {u['attention_head_dim']} heads, cross-attention {u['cross_attention_dim']} | {counts['unet'] / 1e6:.2f} M |
| scheduler | EulerDiscreteScheduler | trained as DDPM, {SCHEDULE['beta_schedule']} betas {SCHEDULE['beta_start']}..{SCHEDULE['beta_end']}, {s['prediction']} | |

## Training

| stage | steps | batch | minutes | threads | final loss (mean of last 200 steps) |
|---|---|---|---|---|---|
| VAE (MSE + 1e-4 KL, AdamW 1e-3, EMA 0.999) | {s['step']['vae']} | {s['batch']['vae']} | {s['seconds']['vae'] / 60:.1f} | {s['threads']} | reconstruction MSE {self.final_loss('vae'):.5f} (held-out {s.get('vae_holdout_mse', float('nan')):.5f}) |
| text encoder + UNet (AdamW 3e-4, min-SNR-5, 10% empty captions, EMA 0.999) | {s['step']['unet']} | {s['batch']['unet']} | {s['seconds']['unet'] / 60:.1f} | {s['threads']} | {s['prediction']} MSE {self.final_loss('unet'):.5f} |

Loss curves: `docs/default-model-loss.png`. Pixel range [-1, 1]; the exported weights are the EMA weights.

## Evaluation

`make evaluate-default-model` (`Models/evaluate_shapes.py`): pass rate of the colour rule over prompts and seeds.
Score: not yet measured.
"""


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    vae_minutes = args.vae_minutes if args.vae_minutes is not None else args.minutes * args.vae_share
    unet_minutes = args.unet_minutes if args.unet_minutes is not None else args.minutes * (1 - args.vae_share)
    trainer = Trainer(args)
    if args.resume and os.path.exists(trainer.checkpoint_path):
        trainer.load()
        print(f"resumed from {trainer.checkpoint_path}: steps {trainer.state['step']}")
        # A budget larger than before continues a finished stage, unless a later stage already depends on it.
        for stage, minutes, steps in [("vae", vae_minutes, args.vae_steps), ("unet", unet_minutes, args.unet_steps)]:
            more_time = trainer.state["seconds"][stage] < minutes * 60
            more_steps = steps is None or trainer.state["step"][stage] < steps
            if stage == "unet" or trainer.state["step"]["unet"] == 0:
                trainer.state["done"][stage] = trainer.state["done"][stage] and not (more_time and more_steps)
    elif os.path.exists(trainer.checkpoint_path):
        print(f"starting over; the old {trainer.checkpoint_path} will be replaced (use --resume to continue it)")
    trainer.state["threads"] = args.threads
    trainer.run_stage("vae", vae_minutes, args.vae_steps)
    trainer.run_stage("unet", unet_minutes, args.unet_steps)
    trainer.plot(args.plot)
    trainer.export(args.output)


if __name__ == "__main__":
    main()
