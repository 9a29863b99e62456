#!/usr/bin/env bash
# Two `sfumato serve` processes behind a real nginx (deploy/nginx.conf) on loopback: concurrent
# requests through nginx are all answered (200, or 503 when both queues are full), reach both
# backends, and the images are byte-identical to `sfumato generate` with the same settings.
set -euo pipefail
BIN=${1:?usage: serve-check.sh PATH/TO/sfumato}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
command -v nginx >/dev/null || { echo "serve-check: nginx is not installed (apt-get install nginx)" >&2; exit 1; }
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

wait_for() {  # URL: up to 60 s
    for _ in $(seq 600); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "serve-check: $1 did not come up" >&2; exit 1
}

for port in 7861 7862; do
    "$BIN" serve --port "$port" --queue-depth 2 2>"$WORK/serve-$port.log" &
    PIDS+=($!)
done
mkdir -p "$WORK/nginx"
nginx -p "$WORK/nginx" -c "$ROOT/deploy/nginx.conf" -g "daemon off;" 2>"$WORK/nginx.log" &
PIDS+=($!)
wait_for http://127.0.0.1:7861/health
wait_for http://127.0.0.1:7862/health
wait_for http://127.0.0.1:7860/health

# 8 concurrent requests through nginx, seeds 0..7.
for seed in $(seq 0 7); do
    curl -s -o "$WORK/answer-$seed.json" -w "%{http_code}" -H "Content-Type: application/json" \
        -d "{\"prompt\": \"a red circle on a blue background\", \"seed\": $seed, \"steps\": 8, \"cfg_scale\": 5, \"sampler_name\": \"Euler a\"}" \
        http://127.0.0.1:7860/sdapi/v1/txt2img >"$WORK/status-$seed" &
done
wait_jobs=$(jobs -p | grep -v -F -x -f <(printf '%s\n' "${PIDS[@]}") || true)
for job in $wait_jobs; do wait "$job"; done

served=0
for seed in $(seq 0 7); do
    status=$(cat "$WORK/status-$seed")
    case "$status" in
    200)
        python3 -c 'import base64, json, sys; sys.stdout.buffer.write(base64.b64decode(json.load(open(sys.argv[1]))["images"][0]))' \
            "$WORK/answer-$seed.json" >"$WORK/served-$seed.png"
        "$BIN" generate "a red circle on a blue background" --seed "$seed" --steps 8 --guidance-scale 5 --scheduler euler-a \
            --quiet --output "$WORK/generated-$seed.png"
        cmp -s "$WORK/served-$seed.png" "$WORK/generated-$seed.png" || { echo "serve-check: seed $seed differs from sfumato generate" >&2; exit 1; }
        served=$((served + 1));;
    503) ;;
    *) echo "serve-check: seed $seed answered $status: $(cat "$WORK/answer-$seed.json")" >&2; exit 1;;
    esac
done
for port in 7861 7862; do
    grep -q 'route=/sdapi/v1/txt2img.*status=200\|status=200.*route=/sdapi/v1/txt2img' "$WORK/serve-$port.log" \
        || { echo "serve-check: backend $port served no image" >&2; cat "$WORK/serve-$port.log" >&2; exit 1; }
done
[ "$served" -ge 4 ] || { echo "serve-check: only $served of 8 requests were served" >&2; exit 1; }
echo "serve-check: $served of 8 concurrent requests through nginx served by both backends, equal to sfumato generate"
