"""Reference schedules and step runs for Heun, DPM++ SDE, LCM, TCD and UniPC: diffusers 0.42.1's own
scheduler classes, built with `from_config` from the Stable Diffusion 1.5 scheduler config (or an LCM
model's) plus the overrides named in each case. Writes Tests/Fixtures/schedulers_c/<sampler>.safetensors.

Metadata: "<case>.config" (diffusers key names, JSON) and "<case>.steps" (step counts) per schedule;
"<case>.run.config", "<case>.run.steps" and "<case>.run.eta" (TCD's gamma) per run.
Per schedule: "<case>.<steps>.timesteps", ".init_noise_sigma" and, for the sigma samplers, ".sigmas".
Per run (the sample of call i+1 is the prev_sample of call i; one entry per `step` call, so a
second-order sampler has two per step): "<case>.run.sample", ".model_output", ".scaled"
(scale_model_input), ".prev", ".x0" where diffusers reports one, and ".noise": every draw the
scheduler made from the generator, in order.

DPM++ SDE: diffusers draws its noise from torchsde's Brownian tree (seeded apart from the run's
generator). Sfumato has no Brownian tree: it draws each noise as one torch.randn from the run's
generator, so the runs here replace diffusers' noise sampler by exactly that; everything else is
diffusers' step. torchsde is not needed (nor installed): a stand-in module satisfies the import.
"""
import json
import sys
import types

import torch

from diffusers import (HeunDiscreteScheduler, LCMScheduler, StableDiffusionImg2ImgPipeline, TCDScheduler,
                       UniPCMultistepScheduler)

from common import save

# Only DPMSolverSDEScheduler's default noise sampler uses torchsde, and the runs below replace it;
# without torchsde diffusers exports a placeholder, so the class comes from its module.
sys.modules.setdefault("torchsde", types.ModuleType("torchsde"))
from diffusers.schedulers.scheduling_dpmsolver_sde import DPMSolverSDEScheduler  # noqa: E402

SD15 = {
    "_class_name": "PNDMScheduler",
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
}
# scheduler/scheduler_config.json of an LCM-distilled SD 1.5 (SimianLuo/LCM_Dreamshaper_v7).
LCM = {
    "_class_name": "LCMScheduler",
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "original_inference_steps": 50,
    "prediction_type": "epsilon",
    "set_alpha_to_one": True,
    "steps_offset": 1,
    "timestep_scaling": 10.0,
    "timestep_spacing": "leading",
}
SHAPE = [1, 4, 4, 4]


def build(kind, config, steps):
    scheduler = kind.from_config(config)
    scheduler.set_timesteps(steps)
    return scheduler


def add_schedules(tensors, metadata, name, kind, config, steps_list, sigmas=True):
    metadata[f"{name}.config"] = json.dumps(config)
    metadata[f"{name}.steps"] = json.dumps(steps_list)
    for steps in steps_list:
        scheduler = build(kind, config, steps)
        tensors[f"{name}.{steps}.timesteps"] = scheduler.timesteps.to(torch.float64)
        tensors[f"{name}.{steps}.init_noise_sigma"] = torch.tensor([float(scheduler.init_noise_sigma)])
        if sigmas:
            tensors[f"{name}.{steps}.sigmas"] = scheduler.sigmas


class ReplacedNoiseSampler:
    """DPM++ SDE's noise as Sfumato draws it: one randn per call from the run's generator."""

    def __init__(self, generator):
        self.generator = generator

    def __call__(self, sigma, sigma_next):
        return torch.randn(SHAPE, generator=self.generator)


def add_run(tensors, metadata, name, kind, config, steps, seed, eta=None):
    metadata[f"{name}.run.config"] = json.dumps(config)
    metadata[f"{name}.run.steps"] = json.dumps(steps)
    if eta is not None:
        metadata[f"{name}.run.eta"] = json.dumps(eta)
    scheduler = build(kind, config, steps)
    data = torch.Generator().manual_seed(seed)
    generator = torch.Generator().manual_seed(seed + 1)
    if kind is DPMSolverSDEScheduler:
        scheduler.noise_sampler = ReplacedNoiseSampler(generator)
    sample = torch.randn(SHAPE, generator=data) * scheduler.init_noise_sigma
    record = {key: [] for key in ["sample", "model_output", "scaled", "prev", "x0", "noise"]}
    for t in scheduler.timesteps:
        model_output = torch.randn(SHAPE, generator=data)
        scaled = scheduler.scale_model_input(sample, t)
        state = generator.get_state()
        extra = {}
        if kind in (LCMScheduler, TCDScheduler):
            extra["generator"] = generator
        if eta is not None:
            extra["eta"] = eta
        output = scheduler.step(model_output, t, sample, **extra)
        if not torch.equal(state, generator.get_state()):
            # Replay the draw; one randn of the sample's shape is all a step takes.
            replay = torch.Generator().set_state(state)
            record["noise"].append(torch.randn(SHAPE, generator=replay))
            assert torch.equal(replay.get_state(), generator.get_state())
        if kind is UniPCMultistepScheduler:
            x0 = scheduler.model_outputs[-1]  # the converted model output: the x0 prediction
        elif kind is LCMScheduler:
            x0 = output.denoised
        elif kind is TCDScheduler:
            x0 = None  # diffusers reports only the noised estimate
        else:
            x0 = output.pred_original_sample
        for key, value in [("sample", sample), ("model_output", model_output), ("scaled", scaled),
                           ("prev", output.prev_sample), ("x0", x0)]:
            if value is not None:
                record[key].append(value.clone())
        sample = output.prev_sample
    for key, values in record.items():
        if values:
            tensors[f"{name}.run.{key}"] = torch.stack(values)


def add_img2img(tensors, metadata, name, kind, config, steps, strength, seed):
    """get_timesteps of diffusers' img2img pipeline (begin index times the scheduler's order),
    add_noise at the first timestep left, then the remaining calls."""
    scheduler = build(kind, config, steps)
    holder = types.SimpleNamespace(scheduler=scheduler)
    timesteps, _ = StableDiffusionImg2ImgPipeline.get_timesteps(holder, steps, strength, "cpu")
    data = torch.Generator().manual_seed(seed)
    original, noise = torch.randn(SHAPE, generator=data), torch.randn(SHAPE, generator=data)
    sample = scheduler.add_noise(original, noise, timesteps[:1])
    if kind is DPMSolverSDEScheduler:
        scheduler.noise_sampler = ReplacedNoiseSampler(torch.Generator().manual_seed(seed + 1))
    metadata[f"{name}.img2img"] = json.dumps({"config": config, "steps": steps, "strength": strength, "seed": seed + 1})
    tensors.update({f"{name}.img2img.timesteps": timesteps.to(torch.float64), f"{name}.img2img.original": original,
                    f"{name}.img2img.noise": noise, f"{name}.img2img.noisy": sample.clone()})
    outputs, inputs = [], []
    for t in timesteps:
        model_output = torch.randn(SHAPE, generator=data)
        inputs.append(scheduler.scale_model_input(sample, t))
        sample = scheduler.step(model_output, t, sample).prev_sample
        outputs.append(model_output)
    tensors[f"{name}.img2img.model_output"] = torch.stack(outputs)
    tensors[f"{name}.img2img.scaled"] = torch.stack(inputs)
    tensors[f"{name}.img2img.final"] = sample


def heun():
    tensors, metadata = {}, {}
    kind = HeunDiscreteScheduler
    add_schedules(tensors, metadata, "leading", kind, {**SD15, "timestep_spacing": "leading"}, [1, 5, 20])
    add_schedules(tensors, metadata, "linspace", kind, SD15, [1, 5, 20])
    add_schedules(tensors, metadata, "trailing", kind, {**SD15, "timestep_spacing": "trailing"}, [5, 20])
    add_schedules(tensors, metadata, "karras", kind, {**SD15, "use_karras_sigmas": True}, [5, 20])
    add_run(tensors, metadata, "linspace", kind, SD15, 6, 400)
    add_run(tensors, metadata, "leading", kind, {**SD15, "timestep_spacing": "leading"}, 4, 401)
    add_run(tensors, metadata, "vpred", kind, {**SD15, "timestep_spacing": "trailing", "prediction_type": "v_prediction"}, 5, 402)
    add_run(tensors, metadata, "karras", kind, {**SD15, "use_karras_sigmas": True}, 5, 403)
    add_run(tensors, metadata, "sample_clipped", kind,
            {**SD15, "prediction_type": "sample", "clip_sample": True, "clip_sample_range": 0.8}, 3, 404)
    add_run(tensors, metadata, "one_step", kind, SD15, 1, 405)
    add_img2img(tensors, metadata, "half", kind, SD15, 6, 0.5, 406)
    save("schedulers_c/heun.safetensors", tensors, metadata)


def dpm_sde():
    tensors, metadata = {}, {}
    kind = DPMSolverSDEScheduler
    add_schedules(tensors, metadata, "leading", kind, {**SD15, "timestep_spacing": "leading"}, [1, 5, 20])
    add_schedules(tensors, metadata, "linspace", kind, SD15, [1, 5, 20])
    add_schedules(tensors, metadata, "trailing", kind, {**SD15, "timestep_spacing": "trailing"}, [5, 20])
    add_schedules(tensors, metadata, "karras", kind, {**SD15, "use_karras_sigmas": True}, [5, 20])
    add_run(tensors, metadata, "linspace", kind, SD15, 5, 500)
    add_run(tensors, metadata, "karras", kind, {**SD15, "use_karras_sigmas": True}, 6, 501)
    add_run(tensors, metadata, "vpred", kind, {**SD15, "timestep_spacing": "leading", "prediction_type": "v_prediction"}, 4, 502)
    add_img2img(tensors, metadata, "half", kind, {**SD15, "use_karras_sigmas": True}, 6, 0.5, 503)
    save("schedulers_c/dpm_sde.safetensors", tensors, metadata)


def lcm_like(kind, prefix, seed):
    tensors, metadata = {}, {}
    add_schedules(tensors, metadata, "lcm", kind, LCM, [1, 2, 4, 8, 50], sigmas=False)
    add_schedules(tensors, metadata, "sd15", kind, SD15, [3, 6], sigmas=False)
    add_schedules(tensors, metadata, "original100", kind, {**LCM, "original_inference_steps": 100}, [6, 7], sigmas=False)
    # TCD's gamma is the `eta` argument of its step; LCM has none.
    def eta(value):
        return None if kind is LCMScheduler else value

    add_run(tensors, metadata, "lcm", kind, LCM, 4, seed, eta=eta(0.3))
    add_run(tensors, metadata, "sd15", kind, SD15, 6, seed + 1, eta=eta(0.3))
    add_run(tensors, metadata, "vpred", kind, {**LCM, "prediction_type": "v_prediction", "timestep_scaling": 5.0}, 3, seed + 2,
            eta=eta(0.6))
    add_run(tensors, metadata, "sample_clipped", kind,
            {**LCM, "prediction_type": "sample", "clip_sample": True, "clip_sample_range": 0.7}, 3, seed + 3, eta=eta(1.0))
    add_run(tensors, metadata, "one_step", kind, LCM, 1, seed + 4, eta=eta(0.3))
    if kind is TCDScheduler:
        add_run(tensors, metadata, "gamma0", kind, LCM, 4, seed + 5, eta=0.0)
    save(f"schedulers_c/{prefix}.safetensors", tensors, metadata)


def unipc():
    tensors, metadata = {}, {}
    kind = UniPCMultistepScheduler
    add_schedules(tensors, metadata, "linspace", kind, SD15, [1, 5, 20])
    add_schedules(tensors, metadata, "leading", kind, {**SD15, "timestep_spacing": "leading"}, [5, 20])
    add_schedules(tensors, metadata, "trailing", kind, {**SD15, "timestep_spacing": "trailing"}, [5, 20, 61])
    add_schedules(tensors, metadata, "karras", kind, {**SD15, "use_karras_sigmas": True}, [5, 20])
    add_schedules(tensors, metadata, "karras_sigma_min", kind,
                  {**SD15, "use_karras_sigmas": True, "final_sigmas_type": "sigma_min", "sigma_min": 0.1, "sigma_max": 10.0}, [5])
    add_schedules(tensors, metadata, "sigma_min", kind, {**SD15, "final_sigmas_type": "sigma_min"}, [5])
    add_run(tensors, metadata, "linspace", kind, SD15, 10, 600)
    add_run(tensors, metadata, "order3", kind, {**SD15, "solver_order": 3}, 8, 601)
    add_run(tensors, metadata, "order1", kind, {**SD15, "solver_order": 1}, 4, 602)
    # bh1 ending at sigma 0 gives NaN in diffusers (B(h) = -inf times a residual of 0); Sfumato returns x0 there.
    add_run(tensors, metadata, "bh1", kind,
            {**SD15, "solver_type": "bh1", "timestep_spacing": "leading", "final_sigmas_type": "sigma_min"}, 6, 603)
    add_run(tensors, metadata, "vpred", kind, {**SD15, "timestep_spacing": "trailing", "prediction_type": "v_prediction"}, 6, 604)
    add_run(tensors, metadata, "karras", kind, {**SD15, "use_karras_sigmas": True, "solver_order": 3}, 7, 605)
    add_run(tensors, metadata, "no_lower_final", kind, {**SD15, "lower_order_final": False, "final_sigmas_type": "sigma_min"},
            5, 606)
    add_run(tensors, metadata, "disable_corrector", kind, {**SD15, "disable_corrector": [0, 2]}, 5, 607)
    add_run(tensors, metadata, "sample", kind, {**SD15, "prediction_type": "sample"}, 4, 608)
    save("schedulers_c/unipc.safetensors", tensors, metadata)


if __name__ == "__main__":
    heun()
    dpm_sde()
    lcm_like(LCMScheduler, "lcm", 700)
    lcm_like(TCDScheduler, "tcd", 800)
    unipc()
