"""Reference schedules and step runs for the Euler, Euler ancestral and DPM-Solver++ schedulers.

Every case is a diffusers scheduler built from the SD 1.5 scheduler config (scaled_linear
0.00085..0.012, leading spacing, steps_offset 1) plus the overrides named in the case. Each
file's metadata maps "<case>.config" to the scheduler config as JSON (diffusers key names) and
"<case>.steps" to the step counts stored.

Per schedule: "<case>.<steps>.timesteps", ".sigmas", ".init_noise_sigma".
Per run (one full denoising run on random model outputs, the sample of step i+1 being the
prev_sample of step i): "<case>.run.sample" [steps, 1, 4, 8, 8] (input of each step),
".model_output", ".scaled" (scale_model_input), ".prev", ".x0" (predicted original sample), and
for Euler ancestral ".noise", the randn each step drew from the generator.
"""
import json

import torch
from diffusers import DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler, EulerDiscreteScheduler

from common import save, seed_all

SD15 = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "timestep_spacing": "leading",
    "steps_offset": 1,
    "prediction_type": "epsilon",
}
SHAPE = [1, 4, 8, 8]
SCHEDULE_STEPS = [5, 20, 50]


def schedule(kind, config, steps):
    scheduler = kind(**config)
    scheduler.set_timesteps(steps)
    return scheduler


def add_schedules(tensors, metadata, name, kind, overrides, steps_list):
    config = {**SD15, **overrides}
    metadata[f"{name}.config"] = json.dumps(config)
    metadata[f"{name}.steps"] = json.dumps(steps_list)
    for steps in steps_list:
        scheduler = schedule(kind, config, steps)
        tensors[f"{name}.{steps}.timesteps"] = scheduler.timesteps.to(torch.float64)
        tensors[f"{name}.{steps}.sigmas"] = scheduler.sigmas
        tensors[f"{name}.{steps}.init_noise_sigma"] = torch.tensor([float(scheduler.init_noise_sigma)])


def add_run(tensors, metadata, name, kind, overrides, steps, seed):
    config = {**SD15, **overrides}
    metadata[f"{name}.run.config"] = json.dumps(config)
    metadata[f"{name}.run.steps"] = json.dumps(steps)
    scheduler = schedule(kind, config, steps)
    seed_all(seed)
    sample = torch.randn(SHAPE) * scheduler.init_noise_sigma
    ancestral = kind is EulerAncestralDiscreteScheduler
    generator = torch.Generator().manual_seed(seed + 1)
    # A twin generator replays the draws the scheduler makes from `generator`.
    replay = torch.Generator().manual_seed(seed + 1)
    record = {key: [] for key in ["sample", "model_output", "scaled", "prev", "x0", "noise"]}
    for t in scheduler.timesteps:
        model_output = torch.randn(SHAPE)
        scaled = scheduler.scale_model_input(sample, t)
        if ancestral:
            output = scheduler.step(model_output, t, sample, generator=generator)
            record["noise"].append(torch.randn(SHAPE, generator=replay))
        else:
            output = scheduler.step(model_output, t, sample)
        if kind is DPMSolverMultistepScheduler:
            x0 = scheduler.model_outputs[-1]  # the converted model output: the x0 prediction
        else:
            x0 = output.pred_original_sample
        for key, value in [("sample", sample), ("model_output", model_output), ("scaled", scaled),
                           ("prev", output.prev_sample), ("x0", x0)]:
            record[key].append(value.clone())
        sample = output.prev_sample
    if ancestral:
        # The replayed noise is what the scheduler added: check on the last step.
        assert torch.equal(torch.randn(SHAPE, generator=generator), torch.randn(SHAPE, generator=replay))
    for key, values in record.items():
        if values:
            tensors[f"{name}.run.{key}"] = torch.stack(values)


def main():
    # Euler
    tensors, metadata = {}, {}
    euler = EulerDiscreteScheduler
    add_schedules(tensors, metadata, "leading", euler, {}, SCHEDULE_STEPS)
    add_schedules(tensors, metadata, "linspace", euler, {"timestep_spacing": "linspace"}, SCHEDULE_STEPS)
    add_schedules(tensors, metadata, "trailing", euler, {"timestep_spacing": "trailing", "prediction_type": "v_prediction"},
                  SCHEDULE_STEPS + [61])  # 61: numpy's arange yields 62 trailing timesteps
    add_schedules(tensors, metadata, "karras", euler, {"use_karras_sigmas": True}, SCHEDULE_STEPS)
    add_schedules(tensors, metadata, "karras_sigma_min", euler,
                  {"use_karras_sigmas": True, "final_sigmas_type": "sigma_min", "timestep_spacing": "trailing"}, SCHEDULE_STEPS)
    add_schedules(tensors, metadata, "karras_bounds", euler,
                  {"use_karras_sigmas": True, "sigma_min": 0.1, "sigma_max": 10.0, "timestep_spacing": "linspace"}, [5, 20])
    add_run(tensors, metadata, "leading", euler, {}, 10, 100)
    add_run(tensors, metadata, "linspace", euler, {"timestep_spacing": "linspace"}, 8, 101)
    add_run(tensors, metadata, "trailing", euler, {"timestep_spacing": "trailing", "prediction_type": "v_prediction"}, 8, 102)
    add_run(tensors, metadata, "karras", euler, {"use_karras_sigmas": True}, 8, 103)
    add_run(tensors, metadata, "karras_sigma_min", euler,
            {"use_karras_sigmas": True, "final_sigmas_type": "sigma_min", "timestep_spacing": "trailing"}, 6, 104)
    add_run(tensors, metadata, "sample", euler, {"prediction_type": "sample"}, 4, 105)
    save("schedulers/euler.safetensors", tensors, metadata)

    # Euler ancestral
    tensors, metadata = {}, {}
    ancestral = EulerAncestralDiscreteScheduler
    add_schedules(tensors, metadata, "leading", ancestral, {}, SCHEDULE_STEPS)
    add_schedules(tensors, metadata, "linspace", ancestral, {"timestep_spacing": "linspace"}, SCHEDULE_STEPS)
    add_schedules(tensors, metadata, "trailing", ancestral, {"timestep_spacing": "trailing"}, SCHEDULE_STEPS + [61])
    add_run(tensors, metadata, "leading", ancestral, {}, 10, 200)
    add_run(tensors, metadata, "trailing", ancestral, {"timestep_spacing": "trailing", "prediction_type": "v_prediction"}, 8, 201)
    add_run(tensors, metadata, "linspace", ancestral, {"timestep_spacing": "linspace"}, 6, 202)
    save("schedulers/euler_ancestral.safetensors", tensors, metadata)

    # DPM-Solver++ (2M)
    tensors, metadata = {}, {}
    dpm = DPMSolverMultistepScheduler
    add_schedules(tensors, metadata, "leading", dpm, {}, SCHEDULE_STEPS)
    add_schedules(tensors, metadata, "linspace", dpm, {"timestep_spacing": "linspace"}, SCHEDULE_STEPS)
    add_schedules(tensors, metadata, "trailing", dpm, {"timestep_spacing": "trailing"}, SCHEDULE_STEPS + [61])
    add_schedules(tensors, metadata, "karras", dpm, {"use_karras_sigmas": True}, SCHEDULE_STEPS)
    add_schedules(tensors, metadata, "sigma_min", dpm, {"final_sigmas_type": "sigma_min"}, SCHEDULE_STEPS)
    for spacing in ["linspace", "leading", "trailing"]:
        add_schedules(tensors, metadata, f"clipped_{spacing}", dpm, {"timestep_spacing": spacing, "lambda_min_clipped": -2.0},
                      [7, 20])
    # squaredcos_cap_v2 keeps fractional Karras timesteps, which the int64 cast truncates.
    add_schedules(tensors, metadata, "cosine_karras", dpm, {"beta_schedule": "squaredcos_cap_v2", "use_karras_sigmas": True},
                  [5, 20])
    add_run(tensors, metadata, "leading", dpm, {}, 10, 300)
    add_run(tensors, metadata, "leading_long", dpm, {}, 16, 301)  # >= 15 steps: no lower-order second-last step
    add_run(tensors, metadata, "trailing", dpm, {"timestep_spacing": "trailing", "prediction_type": "v_prediction"}, 8, 302)
    add_run(tensors, metadata, "karras", dpm, {"use_karras_sigmas": True}, 10, 303)
    add_run(tensors, metadata, "sigma_min", dpm, {"final_sigmas_type": "sigma_min"}, 6, 304)
    add_run(tensors, metadata, "sigma_min_long", dpm, {"final_sigmas_type": "sigma_min", "use_karras_sigmas": True}, 16, 305)
    add_run(tensors, metadata, "euler_at_final", dpm,
            {"final_sigmas_type": "sigma_min", "euler_at_final": True, "lower_order_final": False, "prediction_type": "sample"},
            6, 306)
    add_run(tensors, metadata, "first_order", dpm, {"solver_order": 1, "prediction_type": "v_prediction"}, 5, 307)
    save("schedulers/dpm_solver_multistep.safetensors", tensors, metadata)


if __name__ == "__main__":
    main()
