"""`make bench-compare`: Sfumato against PyTorch/diffusers fp32 and OpenVINO on the CPU, side by side.

Every engine runs the full-size SD 1.5 networks with random weights (.cache/sd15-random/diffusers,
built by verify_full.py) in its own process, so each process's peak RSS is its own. Each process
loads the model once, warms up, then times `--repeats` runs of: the text encoder on 2x77 token
ids, one classifier-free-guidance UNet step (batch 2 latents [2,4,H/8,W/8] with encoder hidden
states [2,77,768]) and the VAE decode of [1,4,H/8,W/8] latents. The engines are interleaved at the
process level, rounds of (ours, torch, openvino f32[, openvino default]) `--rounds` times, so
background load hits all alike; the table gives the median over rounds of each process's median.

OpenVINO's IR is converted once from the same torch modules at the benchmark's static shapes and
cached under .cache/openvino/<W>x<H>/ (weights kept in f32), in a separate process, so conversion
costs neither the timed runs nor OpenVINO's peak RSS.

Internal modes (run by the script itself): `--worker ENGINE`, `--convert MODULE`.
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, ".cache", "sd15-random", "diffusers")
OV_CACHE = os.path.join(ROOT, ".cache", "openvino")
WEIGHTS = {"text_encoder": "text_encoder/model.safetensors", "unet": "unet/diffusion_pytorch_model.safetensors",
           "vae": "vae/diffusion_pytorch_model.safetensors"}
OPS = ("text_encoder", "unet", "vae")
OP_TITLES = {"text_encoder": "text encoder", "unet": "UNet step", "vae": "VAE decode"}
ENGINES = ("ours", "torch", "openvino-f32", "openvino-default", "baseline")
RESULT_PREFIX = "BENCH_COMPARE_RESULT "
# Removed from every engine's environment: the shells here may force OpenBLAS's slower AVX2 kernels.
FORCED_BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each network per process (after a warm-up)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of all engines, one process each")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for every engine (default: nproc)")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help=f"comma-separated subset of {','.join(ENGINES)} (openvino-default runs only when "
                             "OpenVINO's default CPU precision is not f32)")
    parser.add_argument("--sfumato", default=os.path.join(ROOT, ".build", "release", "sfumato"), help="our binary")
    parser.add_argument("--baseline", metavar="BIN",
                        help="another sfumato binary (an older build, for before/after) run as one more engine")
    parser.add_argument("--model", default=MODEL, help="the diffusers folder of random-weight SD 1.5")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before one engine process is killed")
    parser.add_argument("--json", metavar="FILE", help="save the whole result as JSON")
    parser.add_argument("--markdown", metavar="FILE", help="write the table snippet for docs/benchmarks.md")
    parser.add_argument("--worker", choices=("torch", "openvino"), help=argparse.SUPPRESS)
    parser.add_argument("--precision", help=argparse.SUPPRESS)
    parser.add_argument("--convert", choices=OPS, help=argparse.SUPPRESS)
    parser.add_argument("--save-outputs", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.width % 8 or args.height % 8 or min(args.width, args.height) < 64:
        parser.error("--width and --height must be multiples of 8, at least 64")
    if not 1 <= args.repeats <= 100 or not 1 <= args.rounds <= 20 or args.threads < 1:
        parser.error("--repeats must be 1-100, --rounds 1-20, --threads at least 1")
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip() and e.strip() != "baseline"]
    if args.baseline:
        args.engines.append("baseline")
    unknown = [e for e in args.engines if e not in ENGINES]
    if unknown:
        parser.error(f"unknown engine(s) {unknown}; choose from {ENGINES}")
    return args


# ---------------------------------------------------------------------------------------------
# Worker side: one engine in this process.

def inputs(width, height):
    """The same seeded inputs for every Python engine (values do not change the work done)."""
    import numpy as np
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 49406, size=(2, 77), dtype=np.int64)
    ids[:, 0] = 49406
    ids[0, 10:] = 49407
    ids[1, 40:] = 49407
    h, w = height // 8, width // 8
    return {"ids": ids,
            "sample": rng.standard_normal((2, 4, h, w), dtype=np.float32),
            "timestep": np.array([500.0], dtype=np.float32),
            "states": rng.standard_normal((2, 77, 768), dtype=np.float32),
            "latents": rng.standard_normal((1, 4, h, w), dtype=np.float32)}


def time_ops(calls, repeats, save_outputs=None, to_numpy=None):
    """One warm-up, then `repeats` timed runs of each network; every time in seconds. The warm-up's
    outputs go to `save_outputs` (.npz) when asked, to check the engines compute the same thing."""
    times, outputs = {}, {}
    for op in OPS:
        print(f"  {op}: warm-up", file=sys.stderr, flush=True)
        output = calls[op]()
        if save_outputs:
            outputs[op] = to_numpy(output)
        times[op] = []
        for _ in range(repeats):
            start = time.perf_counter()
            calls[op]()
            times[op].append(time.perf_counter() - start)
        print(f"  {op}: " + ", ".join(f"{t:.3f}" for t in times[op]) + " s", file=sys.stderr, flush=True)
    if save_outputs:
        import numpy as np
        np.savez(save_outputs, **outputs)
    return times


def vm_hwm_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def emit(result):
    result["vm_hwm_bytes"] = vm_hwm_bytes()
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def worker_torch(args):
    import diffusers
    import torch
    import transformers
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    text_encoder = CLIPTextModel.from_pretrained(os.path.join(args.model, "text_encoder")).eval()
    unet = UNet2DConditionModel.from_pretrained(os.path.join(args.model, "unet")).eval()
    vae = AutoencoderKL.from_pretrained(os.path.join(args.model, "vae")).eval()
    load_seconds = time.perf_counter() - start
    x = {k: torch.from_numpy(v) for k, v in inputs(args.width, args.height).items()}
    with torch.inference_mode():
        times = time_ops({
            "text_encoder": lambda: text_encoder(x["ids"]).last_hidden_state,
            "unet": lambda: unet(x["sample"], x["timestep"], encoder_hidden_states=x["states"]).sample,
            "vae": lambda: vae.decode(x["latents"]).sample,
        }, args.repeats, args.save_outputs, lambda t: t.numpy())
    emit({"times": times, "load_seconds": load_seconds, "threads": torch.get_num_threads(), "precision": "f32",
          "versions": {"torch": torch.__version__, "diffusers": diffusers.__version__,
                       "transformers": transformers.__version__}})


def ov_folder(width, height):
    return os.path.join(OV_CACHE, f"{width}x{height}")


def ir_stamp(args, module):
    """What a cached IR was made from; any difference means convert again."""
    from importlib.metadata import version
    weights = os.stat(os.path.join(args.model, WEIGHTS[module]))
    return {"openvino": version("openvino"), "torch": version("torch"), "weights": os.path.realpath(args.model),
            "weights_size": weights.st_size, "weights_mtime": int(weights.st_mtime),
            "width": args.width, "height": args.height}


def convert(args):
    """Converts one torch module to OpenVINO IR at the benchmark's static shapes (weights in f32)."""
    import openvino as ov
    import torch
    torch.set_num_threads(args.threads)
    module = args.convert
    x = {k: torch.from_numpy(v) for k, v in inputs(args.width, args.height).items()}
    with torch.no_grad():
        if module == "text_encoder":
            from transformers import CLIPTextModel
            net = CLIPTextModel.from_pretrained(os.path.join(args.model, "text_encoder")).eval()

            class Wrapper(torch.nn.Module):
                def forward(self, ids):
                    return self.net(ids).last_hidden_state
            example = (x["ids"],)
        elif module == "unet":
            from diffusers import UNet2DConditionModel
            net = UNet2DConditionModel.from_pretrained(os.path.join(args.model, "unet")).eval()

            class Wrapper(torch.nn.Module):
                def forward(self, sample, timestep, states):
                    return self.net(sample, timestep, encoder_hidden_states=states, return_dict=False)[0]
            example = (x["sample"], x["timestep"], x["states"])
        else:
            from diffusers import AutoencoderKL
            net = AutoencoderKL.from_pretrained(os.path.join(args.model, "vae")).eval()

            class Wrapper(torch.nn.Module):
                def forward(self, latents):
                    return self.net.decode(latents, return_dict=False)[0]
            example = (x["latents"],)
        start = time.perf_counter()
        wrapper = Wrapper()
        wrapper.net = net
        shapes = [(list(t.shape), ov.Type.i64 if t.dtype == torch.int64 else ov.Type.f32) for t in example]
        model = ov.convert_model(wrapper, example_input=example, input=shapes)
    folder = ov_folder(args.width, args.height)
    os.makedirs(folder, exist_ok=True)
    partial = os.path.join(folder, f"{module}.partial.xml")
    ov.save_model(model, partial, compress_to_fp16=False)
    for ext in ("xml", "bin"):
        os.replace(os.path.join(folder, f"{module}.partial.{ext}"), os.path.join(folder, f"{module}.{ext}"))
    with open(os.path.join(folder, f"{module}.json"), "w") as f:
        json.dump(ir_stamp(args, module), f, indent=2)
    emit({"convert_seconds": time.perf_counter() - start})


def worker_openvino(args):
    import openvino as ov
    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": args.threads}
    if args.precision:
        config["INFERENCE_PRECISION_HINT"] = args.precision
    folder = ov_folder(args.width, args.height)
    start = time.perf_counter()
    requests, properties = {}, {}
    for op in OPS:
        compiled = core.compile_model(os.path.join(folder, f"{op}.xml"), "CPU", config)
        requests[op] = compiled.create_infer_request()
        properties[op] = {name: str(compiled.get_property(name)) for name in
                          ("INFERENCE_NUM_THREADS", "NUM_STREAMS", "PERFORMANCE_HINT")}
        properties[op]["INFERENCE_PRECISION_HINT"] = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    load_seconds = time.perf_counter() - start
    x = inputs(args.width, args.height)
    feeds = {"text_encoder": [x["ids"]], "unet": [x["sample"], x["timestep"], x["states"]], "vae": [x["latents"]]}
    times = time_ops({op: (lambda op=op: requests[op].infer(feeds[op], share_inputs=True)) for op in OPS}, args.repeats,
                     args.save_outputs, lambda result: result[0].copy())
    precisions = sorted({p["INFERENCE_PRECISION_HINT"] for p in properties.values()})
    emit({"times": times, "load_seconds": load_seconds, "threads": args.threads, "precision": "/".join(precisions),
          "compiled_properties": properties, "versions": {"openvino": ov.__version__}})


# ---------------------------------------------------------------------------------------------
# Orchestrator side.

def engine_env():
    env = dict(os.environ)
    for name in FORCED_BLAS_VARIABLES:
        env.pop(name, None)
    return env


def run_process(command, timeout):
    """Runs one engine process; returns (exit code, stdout, stderr, peak RSS bytes of that process, seconds)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        try:
            process = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=engine_env(),
                                       cwd=ROOT)
        except OSError as error:
            return None, "", str(error), None, 0.0
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage: its peak RSS alone
        finally:
            timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stderr = err.read()
        if process.returncode == -9 and seconds >= timeout:
            stderr += f"\nkilled after the {timeout:.0f} s timeout"
        return process.returncode, out.read(), stderr, usage.ru_maxrss * 1024, seconds


def error_summary(code, stdout, stderr):
    lines = [line for line in (stderr + "\n" + stdout).splitlines() if line.strip()]
    tail = " | ".join(lines[-3:]) if lines else "no output"
    return f"exit code {code}: {tail}"[:500]


def parse_result(stdout):
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    return None


def parse_ours(stdout):
    """`sfumato bench --json` prints one JSON object, possibly among other lines."""
    text = stdout.strip()
    try:
        value = json.loads(text)
        if isinstance(value, dict):
            return value
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    found = None
    index = text.find("{")
    while index != -1:
        try:
            value, end = decoder.raw_decode(text, index)
            if isinstance(value, dict):
                found = value
            index = text.find("{", end)
        except ValueError:
            index = text.find("{", index + 1)
    return found


OURS_KEYS = {"text_encoder": "text_encode_seconds", "unet": "unet_step_seconds", "vae": "vae_decode_seconds"}


def run_engine(engine, args, save_outputs=None):
    """One process of one engine; returns a dict with per-op seconds (this process's median) or an error."""
    script = os.path.abspath(__file__)
    common = ["--width", str(args.width), "--height", str(args.height), "--repeats", str(args.repeats),
              "--threads", str(args.threads), "--model", args.model]
    if engine in ("ours", "baseline"):
        command = [args.sfumato if engine == "ours" else args.baseline, "bench", "--model", args.model, "--width", str(args.width),
                   "--height", str(args.height), "--steps", str(args.repeats), "--threads", str(args.threads), "--json"]
    elif engine == "torch":
        command = [sys.executable, script, "--worker", "torch"] + common
    else:
        command = [sys.executable, script, "--worker", "openvino"] + common
        if engine == "openvino-f32":
            command += ["--precision", "f32"]
    if save_outputs and engine not in ("ours", "baseline"):
        command += ["--save-outputs", save_outputs]
    code, stdout, stderr, rss, seconds = run_process(command, args.timeout)
    record = {"command": command, "process_seconds": seconds, "peak_rss_bytes": rss}
    if code != 0:
        record["error"] = error_summary(code, stdout, stderr)
        return record
    if engine in ("ours", "baseline"):
        report = parse_ours(stdout)
        missing = [k for k in OURS_KEYS.values() if not isinstance((report or {}).get(k), (int, float))]
        if report is None or missing:
            record["error"] = f"no JSON object with {', '.join(missing)} in its output: " + error_summary(0, stdout, stderr)
            return record
        record["report"] = report
        record["seconds"] = {op: float(report[key]) for op, key in OURS_KEYS.items()}
    else:
        report = parse_result(stdout)
        if report is None:
            record["error"] = "no result line: " + error_summary(0, stdout, stderr)
            return record
        record["report"] = report
        record["times"] = report["times"]
        record["seconds"] = {op: statistics.median(report["times"][op]) for op in OPS}
    return record


def ensure_ir(args):
    """Converts the missing or stale IR files, each in its own process; returns (info, error)."""
    folder = ov_folder(args.width, args.height)
    info = {"folder": os.path.relpath(folder, ROOT), "modules": {}}
    for module in OPS:
        stamp_path = os.path.join(folder, f"{module}.json")
        try:
            with open(stamp_path) as f:
                cached = json.load(f)
        except (OSError, ValueError):
            cached = None
        expected = ir_stamp(args, module)
        if cached == expected and os.path.exists(os.path.join(folder, f"{module}.bin")):
            info["modules"][module] = {"cached": True}
            continue
        print(f"converting {module} to OpenVINO IR at {args.width}x{args.height} -> {info['folder']}/", flush=True)
        command = [sys.executable, os.path.abspath(__file__), "--convert", module, "--width", str(args.width),
                   "--height", str(args.height), "--threads", str(args.threads), "--model", args.model]
        code, stdout, stderr, rss, seconds = run_process(command, args.timeout)
        result = parse_result(stdout) if code == 0 else None
        if result is None:
            return info, f"OpenVINO conversion of {module} failed, " + error_summary(code, stdout, stderr)
        info["modules"][module] = {"cached": False, "convert_seconds": result["convert_seconds"],
                                   "process_seconds": seconds, "peak_rss_bytes": rss}
        print(f"  {module}: converted in {result['convert_seconds']:.1f} s (process {seconds:.1f} s, "
              f"peak RSS {rss / 1e9:.2f} GB)", flush=True)
    return info, None


def compare_outputs(folder, engines):
    """Max |theirs - torch| / max |torch| per network, from each Python engine's warm-up outputs."""
    import numpy as np
    reference = os.path.join(folder, "torch.npz")
    agreement = {}
    if os.path.exists(reference):
        with np.load(reference) as torch_outputs:
            for name in engines:
                path = os.path.join(folder, f"{name}.npz")
                if name.startswith("openvino") and os.path.exists(path):
                    with np.load(path) as theirs:
                        agreement[name] = {op: float(np.abs(theirs[op] - torch_outputs[op]).max()
                                                     / np.abs(torch_outputs[op]).max()) for op in OPS}
    for entry in os.listdir(folder):
        os.remove(os.path.join(folder, entry))
    os.rmdir(folder)
    return agreement


def cpu_info():
    fields = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if ":" in line:
                key, value = (part.strip() for part in line.split(":", 1))
                fields.setdefault(key, value)
    flags = set(fields.get("flags", "").split())
    memory = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    return {"model_name": fields.get("model name", platform.processor()), "family": fields.get("cpu family"),
            "model": fields.get("model"), "logical_cpus": os.cpu_count(), "avx2": "avx2" in flags,
            "avx512f": "avx512f" in flags, "avx512_bf16": "avx512_bf16" in flags, "memory_bytes": memory}


def cpu_line(cpu):
    isa = "AVX-512" if cpu["avx512f"] else ("AVX2" if cpu["avx2"] else "no AVX2")
    if cpu["avx512_bf16"]:
        isa += " + AVX512_BF16"
    memory = f", {cpu['memory_bytes'] / 2**30:.0f} GiB RAM" if cpu["memory_bytes"] else ""
    return (f"{cpu['logical_cpus']} vCPUs of {cpu['model_name']} (family {cpu['family']}, model {cpu['model']}; "
            f"{isa}){memory}")


def package_versions():
    from importlib.metadata import PackageNotFoundError, version
    versions = {}
    for name in ("torch", "diffusers", "transformers", "openvino", "numpy"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    try:
        versions["sfumato_commit"] = subprocess.run(
            ["git", "-C", ROOT, "describe", "--always", "--dirty"], capture_output=True, text=True,
            check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        versions["sfumato_commit"] = None
    return versions


def openvino_default_precision():
    """OpenVINO's default CPU inference precision and capabilities, or an error string."""
    try:
        import openvino as ov
        core = ov.Core()
        return {"default_precision": core.get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name(),
                "capabilities": list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")),
                "device": core.get_property("CPU", "FULL_DEVICE_NAME")}, None
    except Exception as error:  # noqa: BLE001: any failure only disables the OpenVINO rows
        return None, f"openvino unavailable: {error}"


def fmt_seconds(value):
    return "—" if value is None else (f"{value:.3f}" if value < 1 else f"{value:.2f}")


def ratio_text(theirs, ours):
    if theirs is None or ours is None or ours <= 0:
        return None
    ratio = theirs / ours
    return f"{ratio:.2f}x faster" if ratio >= 1 else f"{ratio:.2f}x ({1 / ratio:.2f}x slower)"


def report(result):
    """The Markdown snippet: machine, command, versions, table, ratios."""
    v = result["versions"]
    lines = [f"Machine: {cpu_line(result['cpu'])}. Measured {result['date']} with", "",
             f"    {result['command_line']}", "",
             f"{result['width']}x{result['height']}, {result['threads']} threads, each engine in its own process "
             f"(model loaded once, one warm-up, median of {result['repeats']}), {result['rounds']} interleaved "
             f"round(s), median over rounds; peak RSS is the largest of that engine's processes. "
             f"Versions: Sfumato {v['sfumato_commit']}, PyTorch {v['torch']}, diffusers {v['diffusers']}, "
             f"transformers {v['transformers']}, OpenVINO {v['openvino']}. "
             f"{' and '.join(FORCED_BLAS_VARIABLES)} removed from every engine's environment. "
             f"Full-size SD 1.5 architecture, random weights, fp32 weights for all.", "",
             "| engine | text encoder s | CFG UNet step s | VAE decode s | peak RSS GB |", "|---|---|---|---|---|"]
    for name, engine in result["engines"].items():
        label = engine["label"]
        if engine.get("seconds"):
            s = engine["seconds"]
            rss = engine.get("peak_rss_bytes")
            failed = f" ({engine['failed_rounds']} of {result['rounds']} rounds failed)" if engine.get("failed_rounds") else ""
            rss_text = f"{rss / 1e9:.2f}" if rss else "—"
            lines.append(f"| {label}{failed} | {fmt_seconds(s['text_encoder'])} | {fmt_seconds(s['unet'])} | "
                         f"{fmt_seconds(s['vae'])} | {rss_text} |")
        else:
            lines.append(f"| {label} | failed: {engine.get('error', 'not run').replace('|', '/')} | | | |")
    lines.append("")
    ours = result["engines"].get("ours", {}).get("seconds")
    lines.append("Ratios are their time / our time (> 1: Sfumato is faster).")
    lines.append("")
    for name, engine in result["engines"].items():
        if name == "ours":
            continue
        if not ours:
            lines.append(f"- ours vs {engine['label']}: n/a (Sfumato has no result)")
            continue
        if not engine.get("seconds"):
            lines.append(f"- ours vs {engine['label']}: n/a (no result)")
            continue
        parts = [f"{OP_TITLES[op]} {ratio_text(engine['seconds'][op], ours[op])}" for op in ("unet", "vae", "text_encoder")]
        lines.append(f"- ours vs {engine['label']}: " + ", ".join(parts))
    notes = []
    ours_report = result["engines"].get("ours", {}).get("reports")
    if ours_report:
        last = ours_report[-1]
        keys = [k for k in ("blas_core", "threads", "steps_per_second", "gflops", "sgemm_gflops", "cpu") if k in last]
        notes.append("Sfumato reports: " + ", ".join(
            f"{k} {last[k]:.4g}" if isinstance(last[k], float) else f"{k} {last[k]}" for k in keys))
    loads = [f"{e['label']} {e['load_seconds']:.1f} s" for e in result["engines"].values() if e.get("load_seconds")]
    if loads:
        notes.append("Model load (median over rounds, not timed above): " + ", ".join(loads))
    for name, errors in result["agreement_with_torch"].items():
        notes.append(f"{result['engines'][name]['label']} outputs vs PyTorch's (max abs difference / max abs): " +
                     ", ".join(f"{OP_TITLES[op]} {errors[op]:.1e}" for op in ("unet", "vae", "text_encoder")))
    ir = result.get("openvino_ir")
    if ir and ir.get("modules"):
        converted = [f"{m} {d['convert_seconds']:.0f} s (peak RSS {d['peak_rss_bytes'] / 1e9:.1f} GB)"
                     for m, d in ir["modules"].items() if not d.get("cached")]
        notes.append(f"OpenVINO IR in {ir['folder']}/: " + ("converted this run: " + ", ".join(converted)
                                                           if converted else "reused from the cache"))
    for note in notes:
        lines.extend(["", note])
    return "\n".join(lines) + "\n"


def orchestrate(args):
    started = time.perf_counter()
    missing = [p for p in ["model_index.json"] + list(WEIGHTS.values()) if not os.path.exists(os.path.join(args.model, p))]
    if missing:
        print(f"error: the random-weight SD 1.5 model is missing in {args.model} ({', '.join(missing)}).\n"
              "Run `make verify-full` first, or build only the model with\n"
              "    cd Tests/Reference && ../../.venv/bin/python verify_full.py --model-only\n"
              "(`make bench-compare` does that itself when the model is missing).", file=sys.stderr)
        return 2
    versions = package_versions()
    engines = {}
    labels = {"ours": f"Sfumato (ours, {versions['sfumato_commit']})", "torch": f"PyTorch {versions['torch']} fp32",
              "openvino-f32": f"OpenVINO {versions['openvino']} f32", "baseline": f"Sfumato (baseline: {args.baseline})"}
    for name in args.engines:
        if name != "openvino-default":
            engines[name] = {"label": labels[name], "rounds": []}
    openvino_wanted = any(n.startswith("openvino") for n in args.engines)
    ov_info, ov_error = openvino_default_precision() if openvino_wanted else (None, None)
    if "openvino-default" in args.engines:
        if ov_info and ov_info["default_precision"] != "f32":
            engines["openvino-default"] = {
                "label": f"OpenVINO {versions['openvino']} {ov_info['default_precision']} (its default)", "rounds": []}
        elif ov_info:
            print("OpenVINO's default CPU precision is f32 here: no separate default-precision row", flush=True)
    if "ours" in engines and not os.access(args.sfumato, os.X_OK):
        engines["ours"]["error"] = f"{args.sfumato} not found (make build)"
    ir_info = None
    if ov_error:
        for name in engines:
            if name.startswith("openvino"):
                engines[name]["error"] = ov_error
    elif openvino_wanted:
        ir_info, ir_error = ensure_ir(args)
        if ir_error:
            for name in engines:
                if name.startswith("openvino"):
                    engines[name]["error"] = ir_error

    output_folder = tempfile.mkdtemp(prefix="bench-compare-")
    for round_index in range(args.rounds):
        for name, engine in engines.items():
            if "error" in engine and not engine["rounds"]:
                if round_index == 0:
                    print(f"round {round_index + 1}/{args.rounds} {name}: skipped, {engine['error']}", flush=True)
                continue
            print(f"round {round_index + 1}/{args.rounds} {name} ...", flush=True)
            outputs = os.path.join(output_folder, f"{name}.npz") if round_index == 0 else None
            record = run_engine(name, args, outputs)
            engine["rounds"].append(record)
            if "error" in record:
                print(f"  {name} failed: {record['error']}", flush=True)
            else:
                s = record["seconds"]
                print(f"  text encoder {s['text_encoder']:.3f} s, UNet step {s['unet']:.2f} s, VAE decode "
                      f"{s['vae']:.2f} s, peak RSS {record['peak_rss_bytes'] / 1e9:.2f} GB "
                      f"(process {record['process_seconds']:.0f} s)", flush=True)

    for name, engine in engines.items():
        good = [r for r in engine["rounds"] if "seconds" in r]
        if good:
            engine.pop("error", None)
            engine["seconds"] = {op: statistics.median(r["seconds"][op] for r in good) for op in OPS}
            engine["peak_rss_bytes"] = max(r["peak_rss_bytes"] for r in good)
            engine["failed_rounds"] = len(engine["rounds"]) - len(good)
            engine["reports"] = [r["report"] for r in good]
            loads = [r["report"]["load_seconds"] for r in good if "load_seconds" in r["report"]]
            if loads:
                engine["load_seconds"] = statistics.median(loads)
            if name == "torch":
                versions.update(good[-1]["report"]["versions"])
            if name == "openvino-default":
                engine["precision"] = good[-1]["report"]["precision"]
        elif engine["rounds"] and "error" not in engine:
            engine["error"] = engine["rounds"][-1]["error"]

    agreement = compare_outputs(output_folder, engines)
    result = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "command_line": " ".join(shlex.quote(a) for a in [os.path.relpath(sys.executable, ROOT)
                                                                 if sys.executable.startswith(ROOT) else sys.executable,
                                                                 os.path.relpath(os.path.abspath(__file__), ROOT)]
                                        + sys.argv[1:]),
              "width": args.width, "height": args.height, "threads": args.threads, "repeats": args.repeats,
              "rounds": args.rounds, "cpu": cpu_info(), "versions": versions, "openvino_cpu": ov_info,
              "openvino_ir": ir_info, "agreement_with_torch": agreement, "engines": engines, "total_seconds": None}
    result["total_seconds"] = time.perf_counter() - started
    markdown = report(result)
    print()
    print(markdown)
    print(f"total {result['total_seconds'] / 60:.1f} min")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(markdown)
        print(f"wrote {args.markdown}")
    return 0 if any(e.get("seconds") for e in engines.values()) else 1


def main(argv):
    args = parse_args(argv)
    if args.convert:
        convert(args)
    elif args.worker == "torch":
        worker_torch(args)
    elif args.worker == "openvino":
        worker_openvino(args)
    else:
        return orchestrate(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
