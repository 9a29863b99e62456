"""Reference data for DDIM, PNDM (PLMS), DDPM and LMS: diffusers 0.42.1 schedulers built from the
Stable Diffusion 1.5 scheduler config and variants. Writes Tests/Fixtures/schedulers_a/."""
import json
import os

import torch
from diffusers import DDIMScheduler, DDPMScheduler, LMSDiscreteScheduler, PNDMScheduler

from common import FIXTURES, save, seed_all

# scheduler/scheduler_config.json of stable-diffusion-v1-5.
SD15 = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
    "clip_sample": False,
}

VARIANTS = {
    "sd15": SD15,
    "vpred": {**SD15, "prediction_type": "v_prediction"},
    "trailing": {**SD15, "timestep_spacing": "trailing"},
    "linspace": {**SD15, "timestep_spacing": "linspace"},
    # No clip_sample / set_alpha_to_one / timestep_spacing keys: each class's own defaults apply.
    "linear": {"_class_name": "DDIMScheduler", "beta_schedule": "linear", "beta_start": 0.0001, "beta_end": 0.02},
    "sample": {**SD15, "prediction_type": "sample", "clip_sample": True, "clip_sample_range": 1.5},
}

CLASSES = {"ddim": DDIMScheduler, "pndm": PNDMScheduler, "ddpm": DDPMScheduler, "lms": LMSDiscreteScheduler}
# PNDM takes no "sample" predictions. Its "linear" variant has no skip_prk_steps: Runge-Kutta
# warm-up, which needs at least 4 steps.
SKIP = {("pndm", "sample")}

STEP_COUNTS = [1, 2, 3, 5, 20, 50]
RUN_STEPS = 8
SHAPE = (1, 4, 8, 8)


def metadata(value):
    # One key: safetensors writes several metadata keys in a random order.
    return {"reference": json.dumps(value, sort_keys=True)}


def make(kind, variant):
    # from_config, as pipelines do: keys the class does not know are ignored.
    return CLASSES[kind].from_config(VARIANTS[variant])


def schedules():
    tensors, schedule_configs = {}, {}
    for kind in CLASSES:
        for variant in VARIANTS:
            if (kind, variant) in SKIP:
                continue
            for steps in STEP_COUNTS:
                if (kind, variant) == ("pndm", "linear") and steps < 4:
                    continue
                scheduler = make(kind, variant)
                scheduler.set_timesteps(steps)
                key = f"{kind}/{variant}/{steps}"
                tensors[f"{key}/timesteps"] = scheduler.timesteps.double().float()
                tensors[f"{key}/init_noise_sigma"] = torch.tensor([float(scheduler.init_noise_sigma)])
                if kind == "lms":
                    tensors[f"{key}/sigmas"] = scheduler.sigmas
    for schedule, config in {
        "scaled_linear": SD15,
        "linear": VARIANTS["linear"],
        "squaredcos_cap_v2": {"beta_schedule": "squaredcos_cap_v2"},
    }.items():
        scheduler = DDIMScheduler.from_config(config)
        tensors[f"alphas_cumprod/{schedule}"] = scheduler.alphas_cumprod
        tensors[f"betas/{schedule}"] = scheduler.betas
        schedule_configs[schedule] = config
    save("schedulers_a/schedules.safetensors", tensors, metadata({"variants": VARIANTS, "schedules": schedule_configs}))


def runs():
    """RUN_STEPS successive steps per scheduler; each step's inputs and outputs are stored, and
    the noise the stochastic ones draw (replayed by the Swift test in the same order)."""
    tensors, described = {}, {}
    cases = [(kind, variant, {}) for kind in CLASSES for variant in VARIANTS if (kind, variant) not in SKIP]
    cases.append(("ddim", "sd15", {"eta": 0.7}))
    for index, (kind, variant, extra) in enumerate(cases):
        seed_all(1000 + index)
        scheduler = make(kind, variant)
        # PNDM visits steps + 1 timesteps; run one step less so every run has RUN_STEPS steps.
        scheduler.set_timesteps(RUN_STEPS - 1 if kind == "pndm" else RUN_STEPS)
        name = f"{kind}/{variant}" + ("/eta" if extra else "")
        described[name] = {"variant": variant, "steps": RUN_STEPS - 1 if kind == "pndm" else RUN_STEPS, **extra}
        generator = torch.Generator().manual_seed(7 + index)
        sample = torch.randn(SHAPE) * scheduler.init_noise_sigma
        noises = []
        for step, t in enumerate(scheduler.timesteps):
            model_input = scheduler.scale_model_input(sample, t)
            model_output = torch.randn(SHAPE)
            state = generator.get_state()
            random_args = {} if kind in ("pndm", "lms") else {"generator": generator}
            out = scheduler.step(model_output, t, sample, **random_args, **extra)
            # Replay whatever the step drew from the generator.
            if not torch.equal(state, generator.get_state()):
                replay = torch.Generator().set_state(state)
                noises.append(torch.randn(SHAPE, generator=replay))
                assert torch.equal(replay.get_state(), generator.get_state())
            # Step i's sample is step i-1's prev_sample; only LMS scales the model input.
            if step == 0:
                tensors[f"{name}/sample"] = sample.clone()
            if kind == "lms":
                tensors[f"{name}/{step}/model_input"] = model_input.clone()
            tensors[f"{name}/{step}/model_output"] = model_output.clone()
            tensors[f"{name}/{step}/prev_sample"] = out.prev_sample.clone()
            if kind != "pndm":  # diffusers' PNDM reports no x0
                tensors[f"{name}/{step}/pred_original"] = out.pred_original_sample.clone()
            sample = out.prev_sample
        for n, noise in enumerate(noises):
            tensors[f"{name}/noise/{n}"] = noise
    save("schedulers_a/runs.safetensors", tensors, metadata({"variants": VARIANTS, "cases": described}))


if __name__ == "__main__":
    os.chdir(os.path.dirname(os.path.abspath(__file__)))
    schedules()
    runs()
    with open(os.path.join(FIXTURES, "schedulers_a", "sd15_scheduler_config.json"), "w") as f:
        json.dump(SD15, f, indent=2, sort_keys=True)
        f.write("\n")
