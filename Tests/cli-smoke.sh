#!/usr/bin/env bash
# The command line as a user meets it: every run below must end as stated, and a failed run must
# leave no output file. `make test` runs this after building; usage: Tests/cli-smoke.sh BINARY
set -uo pipefail
bin="$1"
model="$(dirname "$0")/Fixtures/tiny"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

# expect CODE DESCRIPTION -- COMMAND...: runs the command, checks its exit code
# (1: the run failed, 2: the command line was wrong) and that a failure says something on stderr.
expect() {
    local code="$1" what="$2"; shift 3
    "$@" >"$work/stdout" 2>"$work/stderr"
    local actual=$?
    if [ "$actual" = "$code" ] && { [ "$code" = 0 ] || [ -s "$work/stderr" ]; }; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $what: exit $actual, expected $code"; sed 's/^/  stderr: /' "$work/stderr" | head -5
    fi
}

# no_file PATH DESCRIPTION: a failed run must not leave its output behind.
no_file() {
    if [ -e "$1" ]; then failed=$((failed + 1)); echo "FAIL: $2 left $1 behind"; else passed=$((passed + 1)); fi
}

expect 0 "help" -- "$bin" --help
expect 0 "generate help" -- "$bin" generate --help
expect 2 "zero steps" -- "$bin" generate "a cat" --model "$model" --steps 0 --output "$work/a.png"
no_file "$work/a.png" "zero steps"
expect 2 "width not a multiple of 8" -- "$bin" generate "a cat" --model "$model" --width 30 --output "$work/b.png"
no_file "$work/b.png" "bad width"
expect 2 "unknown scheduler" -- "$bin" generate "a cat" --model "$model" --scheduler bogus --output "$work/c.png"
expect 2 "NaN guidance" -- "$bin" generate "a cat" --model "$model" --guidance-scale nan --output "$work/d.png"
expect 1 "missing model" -- "$bin" generate "a cat" --model /nonexistent/model --output "$work/e.png"
no_file "$work/e.png" "missing model"
expect 2 "output folder missing" -- "$bin" generate "a cat" --model "$model" --output /nonexistent-folder/x.png
expect 1 "absurd size" -- "$bin" generate "a cat" --model "$model" --width 200000 --height 200000 --output "$work/f.png"
no_file "$work/f.png" "absurd size"
expect 1 "not a model" -- "$bin" generate "a cat" --model "$0" --output "$work/g.png"
expect 0 "generate with the tiny model" -- "$bin" generate "a red circle" --model "$model" --steps 3 --width 48 --height 32 \
    --seed 42 --scheduler euler-a --batch-count 2 --save-intermediates "$work/steps" --output "$work/out.png"
for file in "$work/out-1.png" "$work/out-2.png" "$work/steps/1-step-003.png"; do
    if [ -s "$file" ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $file not written"; fi
done
if grep -q "Steps: 3, Sampler: Euler a, CFG scale: 7.5, Seed: 43, Size: 48x32" "$work/out-2.png"; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: out-2.png lacks the A1111 parameters"; fi
expect 2 "seed + batch index past 2^64" -- "$bin" generate "a cat" --model "$model" --seed 18446744073709551615 --batch-count 2 \
    --steps 1 --width 16 --height 16 --output "$work/seed.png"
no_file "$work/seed-1.png" "seed past 2^64"
# Ctrl-C once the first preview is out: exit 130, and neither the image, its preview nor a temporary file remains.
mkdir "$work/interrupted"
"$bin" generate "a red circle" --model "$model" --steps 500 --width 48 --height 32 --preview \
    --output "$work/interrupted/x.png" >/dev/null 2>"$work/interrupted.err" &
pid=$!
for _ in $(seq 1 1200); do [ -e "$work/interrupted/x-preview.png" ] && break; sleep 0.05; done
kill -INT "$pid"
wait "$pid"
code=$?
if [ "$code" = 130 ] && [ -z "$(ls -A "$work/interrupted")" ] && grep -q "^interrupted: stopped after step" "$work/interrupted.err"; then
    passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: Ctrl-C: exit $code, left: $(ls -A "$work/interrupted")"; fi
# Decoders: the tiny autoencoder (with previews that are gone once the image is written), tiled VAE decoding.
taesd="$(dirname "$0")/Fixtures/taesd"
expect 0 "generate --taesd --preview" -- "$bin" generate "a red circle" --model "$model" --steps 2 --width 48 --height 32 \
    --scheduler heun --taesd "$taesd" --preview --output "$work/taesd.png"
if [ -s "$work/taesd.png" ] && [ ! -e "$work/taesd-preview.png" ]; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: --taesd --preview: no taesd.png, or its preview left behind"; fi
expect 0 "generate --vae-tiling" -- "$bin" generate "a red circle" --model "$model" --steps 2 --width 80 --height 48 \
    --scheduler unipc --vae-tiling --output "$work/tiled.png"
expect 2 "--taesd with --vae-tiling" -- "$bin" generate "a cat" --model "$model" --taesd "$taesd" --vae-tiling --output "$work/tt.png"
expect 1 "--taesd that is not a tiny autoencoder" -- "$bin" generate "a cat" --model "$model" --steps 1 --taesd "$model/vae" \
    --output "$work/tnot.png"
no_file "$work/tnot.png" "bad --taesd"
# The schedule of a sampler, as a table and a plot.
expect 0 "schedule --plot" -- "$bin" schedule --scheduler dpm++sde-karras --steps 6 --plot "$work/schedule.png"
if [ -s "$work/schedule.png" ] && grep -q "11 UNet evaluations" "$work/stdout"; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: schedule: no plot or no evaluation count"; fi
expect 2 "schedule --plot not a PNG" -- "$bin" schedule --plot "$work/schedule.jpg"
expect 1 "schedule with a bad config" -- "$bin" schedule --scheduler-config "$0"
# Image to image with the embedded default model (no --model), then what it must refuse.
init="$(dirname "$0")/Fixtures/img2img/init.png"
odd="$(dirname "$0")/Fixtures/img2img/resize_source.png"
expect 0 "img2img help" -- "$bin" img2img --help
expect 0 "img2img with the default model" -- "$bin" img2img "a red circle on a blue background" --init-image "$init" \
    --strength 0.6 --steps 5 --seed 3 --scheduler euler-a --output "$work/i2i.png"
if grep -q "Steps: 5, Sampler: Euler a, CFG scale: 7.5, Seed: 3, Size: 48x32, .*Denoising strength: 0.6" "$work/i2i.png"; then
    passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: i2i.png lacks its A1111 parameters"; fi
expect 0 "img2img --resize" -- "$bin" img2img "a square" --model "$model" --init-image "$odd" --resize --steps 2 --output "$work/i2i-resized.png"
if python3 -c "import struct,sys; d=open(sys.argv[1],'rb').read(); sys.exit(struct.unpack('>II', d[16:24]) != (56, 40))" "$work/i2i-resized.png"; then
    passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: --resize did not give 56x40"; fi
expect 1 "img2img size not a multiple of 8" -- "$bin" img2img "a square" --model "$model" --init-image "$odd" --output "$work/i2i-odd.png"
no_file "$work/i2i-odd.png" "img2img odd size"
grep -q "61x45; width and height must be multiples of 8 (give --resize" "$work/stderr" && passed=$((passed + 1)) || {
    failed=$((failed + 1)); echo "FAIL: odd-size message unclear: $(cat "$work/stderr")"; }
expect 1 "img2img with a bad PNG" -- "$bin" img2img "a square" --model "$model" --init-image "$(dirname "$0")/Fixtures/png/truncated.png" \
    --output "$work/i2i-bad.png"
no_file "$work/i2i-bad.png" "img2img bad PNG"
grep -q "truncated.png: not a valid PNG" "$work/stderr" && passed=$((passed + 1)) || {
    failed=$((failed + 1)); echo "FAIL: bad-PNG message unclear: $(cat "$work/stderr")"; }
expect 1 "img2img with a missing PNG" -- "$bin" img2img "a square" --model "$model" --init-image "$work/none.png" --output "$work/i2i-none.png"
expect 2 "img2img strength above 1" -- "$bin" img2img "a square" --model "$model" --init-image "$init" --strength 1.5 --output "$work/i2i-s.png"
expect 2 "img2img strength that runs no step" -- "$bin" img2img "a square" --model "$model" --init-image "$init" --strength 0.01 --output "$work/i2i-s.png"
no_file "$work/i2i-s.png" "img2img bad strength"
expect 1 "img2img size other than the image's" -- "$bin" img2img "a square" --model "$model" --init-image "$init" --width 64 --output "$work/i2i-w.png"

# SDXL: the tiny diffusers folder (two text encoders), its single file, and a family that does not fit it.
sdxl="$(dirname "$0")/Fixtures/tiny-sdxl"
sdxl_single="$(dirname "$0")/Fixtures/checkpoint/tiny-sdxl-single.safetensors"
expect 0 "generate with the tiny SDXL folder" -- "$bin" generate "a red circle" --model "$sdxl" --steps 2 --width 32 --height 24 \
    --seed 1 --output "$work/sdxl.png"
if [ -s "$work/sdxl.png" ] && grep -q "sdxl defaults: guidance scale 5.0" "$work/stderr"; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: SDXL folder: no sdxl.png, or not SDXL's defaults"; fi
expect 0 "generate with the tiny SDXL single file" -- "$bin" generate "a red circle" --model "$sdxl_single" --model-config "$sdxl" \
    --steps 2 --width 32 --height 24 --output "$work/sdxl-single.png"
expect 1 "SDXL single file named SD 2" -- "$bin" generate "x" --model "$sdxl_single" --model-type sd2-512 --output "$work/sdxl-sd2.png"
no_file "$work/sdxl-sd2.png" "SDXL single file named SD 2"
grep -q "an SDXL checkpoint (two text encoders), not sd2-512" "$work/stderr" && passed=$((passed + 1)) || {
    failed=$((failed + 1)); echo "FAIL: SDXL family message unclear: $(cat "$work/stderr")"; }

# Inpainting: a 9-channel inpainting UNet and the default (4-channel) model.
inpaint_model="$(dirname "$0")/Fixtures/tiny-inpaint"
mask="$(dirname "$0")/Fixtures/inpaint/mask.png"
expect 0 "inpaint help" -- "$bin" inpaint --help
expect 0 "inpaint with a 9-channel UNet" -- "$bin" inpaint "a red circle" --model "$inpaint_model" --init-image "$init" \
    --mask "$mask" --steps 3 --seed 1 --output "$work/inpaint9.png"
expect 0 "inpaint with the default model" -- "$bin" inpaint "a red circle" --init-image "$init" --mask "$mask" \
    --steps 3 --strength 0.9 --seed 1 --output "$work/inpaint4.png"
for file in "$work/inpaint9.png" "$work/inpaint4.png"; do
    if [ -s "$file" ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $file not written"; fi
done
expect 1 "inpaint with a mask of another size" -- "$bin" inpaint "x" --model "$model" --init-image "$init" --mask "$odd" \
    --output "$work/inpaint-size.png"
no_file "$work/inpaint-size.png" "inpaint mask size"
grep -q "the mask must have the init image's size" "$work/stderr" && passed=$((passed + 1)) || {
    failed=$((failed + 1)); echo "FAIL: mask-size message unclear: $(cat "$work/stderr")"; }
expect 1 "inpaint with a bad mask PNG" -- "$bin" inpaint "x" --model "$model" --init-image "$init" \
    --mask "$(dirname "$0")/Fixtures/png/bad_crc.png" --output "$work/inpaint-bad.png"
no_file "$work/inpaint-bad.png" "inpaint bad mask"
expect 2 "inpaint without a mask" -- "$bin" inpaint "x" --model "$model" --init-image "$init" --output "$work/inpaint-none.png"
expect 1 "text to image with an inpainting model" -- "$bin" generate "x" --model "$inpaint_model" --steps 2 --width 16 --height 16 \
    --output "$work/gen9.png"
no_file "$work/gen9.png" "text to image with an inpainting model"
grep -q "takes 9 input channels (an inpainting model)" "$work/stderr" && passed=$((passed + 1)) || {
    failed=$((failed + 1)); echo "FAIL: 9-channel message unclear: $(cat "$work/stderr")"; }

# The diffusion process made visible.
expect 0 "noise in pixel space" -- "$bin" noise "$init" --model "$model" --timesteps 0,500,999 --output "$work/noise"
expect 0 "noise in latent space" -- "$bin" noise "$init" --latent --timesteps 0,250 --output "$work/noise-latent"
for file in "$work/noise/t-0000.png" "$work/noise/t-0999.png" "$work/noise/contact-sheet.png" "$work/noise-latent/t-0250.png"; do
    if [ -s "$file" ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $file not written"; fi
done
expect 2 "noise with a bad timestep list" -- "$bin" noise "$init" --model "$model" --timesteps 5,x --output "$work/noise-bad"
expect 1 "noise past the last timestep" -- "$bin" noise "$init" --model "$model" --timesteps 0,1000 --output "$work/noise-late"
no_file "$work/noise-late/t-0000.png" "noise past the last timestep"
expect 0 "latents" -- "$bin" latents "$init" --output "$work/latents"
for file in "$work/latents/channel-3.png" "$work/latents/decoded.png"; do
    if [ -s "$file" ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $file not written"; fi
done
grep -q "latents for 3x32x48 pixels: 12x fewer values; round trip PSNR" "$work/stdout" && passed=$((passed + 1)) || {
    failed=$((failed + 1)); echo "FAIL: latents printed: $(cat "$work/stdout")"; }

expect 0 "tokenize" -- "$bin" tokenize "a red circle" --model "$model"
if [ "$(wc -w <"$work/stdout")" = 77 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: tokenize printed $(wc -w <"$work/stdout") ids"; fi
expect 0 "tokenize with BREAK" -- "$bin" tokenize "a (red:1.2) BREAK circle" --model "$model"
if [ "$(wc -w <"$work/stdout")" = 154 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: tokenize BREAK printed $(wc -w <"$work/stdout") ids"; fi
expect 1 "tokenize with a bad weight" -- "$bin" tokenize "(a:1..2)" --model "$model"

# A1111 prompt syntax and clip skip.
expect 0 "weighted prompt with clip skip 2" -- "$bin" generate "a (red:1.3) circle, [blurry] BREAK blue" --negative-prompt "low quality" \
    --model "$model" --steps 2 --width 16 --height 16 --seed 1 --clip-skip 2 --output "$work/skip.png"
if grep -q "Model: tiny, Clip skip: 2" "$work/skip.png" && grep -q "a (red:1.3) circle, \[blurry\] BREAK blue" "$work/skip.png"; then
    passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: skip.png lacks the prompt or Clip skip: 2"; fi
expect 2 "clip skip 0" -- "$bin" generate "a cat" --model "$model" --clip-skip 0 --output "$work/h.png"
expect 1 "clip skip beyond the layers" -- "$bin" generate "a cat" --model "$model" --clip-skip 3 --output "$work/i.png"
no_file "$work/i.png" "clip skip beyond the layers"
expect 1 "weight that is not a number" -- "$bin" generate "(a cat:1..2)" --model "$model" --output "$work/j.png"
no_file "$work/j.png" "weight that is not a number"
expect 1 "tokenize without vocabulary" -- "$bin" tokenize "a" --model /nonexistent

# LoRA from --lora FILE[:WEIGHT] and from <lora:NAME:WEIGHT> tags with --lora-dir.
loras="$(dirname "$0")/Fixtures/lora"
expect 0 "--lora FILE:WEIGHT" -- "$bin" generate "a cat" --model "$model" --steps 2 --width 16 --height 16 \
    --lora "$loras/tiny_kohya.safetensors:0.8" --output "$work/lora1.png"
expect 0 "<lora:...> tag with --lora-dir" -- "$bin" generate "a <lora:tiny_peft:0.5> cat" --model "$model" --steps 2 \
    --width 16 --height 16 --lora-dir "$loras" --output "$work/lora2.png"
expect 2 "<lora:...> tag without --lora-dir" -- "$bin" generate "a <lora:tiny_peft:0.5> cat" --model "$model" --output "$work/lora3.png"
no_file "$work/lora3.png" "<lora:...> tag without --lora-dir"
expect 2 "--lora with a NaN weight" -- "$bin" generate "a cat" --model "$model" --lora "$loras/tiny_kohya.safetensors:nan" --output "$work/lora4.png"
expect 1 "missing LoRA file" -- "$bin" generate "a cat" --model "$model" --lora /nonexistent.safetensors --output "$work/lora5.png"
no_file "$work/lora5.png" "missing LoRA file"
expect 1 "LoHa refused" -- "$bin" generate "a cat" --model "$model" --lora "$loras/loha.safetensors" --output "$work/lora6.png"
no_file "$work/lora6.png" "LoHa refused"

# The benchmark harness on the embedded default model: one JSON object with the documented keys,
# read back by --compare. Speed is never checked here.
expect 0 "bench --json on the default model" -- "$bin" bench --steps 1 --json
cp "$work/stdout" "$work/bench.json"
if python3 - "$work/bench.json" <<'PY'
import json, sys
result = json.load(open(sys.argv[1]))
keys = ["unet_step_seconds", "vae_decode_seconds", "text_encode_seconds", "steps_per_second", "gflops",
        "sgemm_gflops", "peak_rss_bytes", "cpu", "blas_core", "threads"]
missing = [key for key in keys if key not in result]
assert not missing, f"missing keys {missing}"
assert result["unet_step_seconds"] > 0 and result["peak_rss_bytes"] > 0 and result["gflops"] > 0
PY
then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: bench --json lacks its keys"; fi
expect 0 "bench --compare" -- "$bin" bench --model "$model" --steps 1 --width 32 --height 32 --compare "$work/bench.json"
if grep -q "UNet guidance step: .* s vs .* s: .*x" "$work/stdout"; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: bench --compare printed no ratios"; fi
echo '{"unet_step_seconds": "fast"}' >"$work/bad.json"
expect 2 "bench --compare with a bad file" -- "$bin" bench --model "$model" --compare "$work/bad.json"
expect 2 "bench with zero steps" -- "$bin" bench --steps 0

# serve: bad flags are refused before anything loads, a missing model before it listens.
expect 0 "serve help" -- "$bin" serve --help
expect 2 "serve with a bad port" -- "$bin" serve --port 70000
expect 2 "serve with zero concurrency" -- "$bin" serve --concurrency 0
expect 2 "serve with an empty API key" -- "$bin" serve --api-key ""
expect 1 "serve a missing model" -- "$bin" serve --model "$work/no-such-model" --port 0

echo "cli-smoke: $passed passed, $failed failed"
[ "$failed" = 0 ]
