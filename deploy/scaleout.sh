#!/usr/bin/env bash
# README "Scaling out", run on one host as CI runs it (tests/test_scaleout_cluster.py): a Ray head with token
# auth, the ASR application, two front ends started together on Redis and a fresh database, a call on front
# end A stopped mid-call with SIGTERM, then teardown. Logs and results go to $RUN_DIR; the test checks them.
#
#   RUN_DIR=/tmp/run RECOBRA_DATABASE_URL=postgresql+psycopg://... CALL_AUDIO=call.wav deploy/scaleout.sh
#
# `ray stop` stops every Ray process of this host: run it where no other Ray runs (the test gives it a PID
# namespace of its own).
set -euo pipefail
: "${RUN_DIR:?a folder for logs}" "${RECOBRA_DATABASE_URL:?a fresh database}" "${CALL_AUDIO:?a stereo WAV}"
RAY_PORT=${RAY_PORT:-6380} PORT_A=${PORT_A:-8081} PORT_B=${PORT_B:-8082}
export RECOBRA_REDIS_URL=${RECOBRA_REDIS_URL:-redis://127.0.0.1:6379/0}
CALL=scaleout-call
step() { echo "== $* ($(date +%T))"; }
teardown() {
    step teardown
    for pid in ${FRONT_ENDS:-}; do kill -TERM "$pid" 2>/dev/null || true; done
    wait ${FRONT_ENDS:-} 2>/dev/null || true
    serve shutdown -y || true
    ray stop
}
trap teardown EXIT

step "Ray head with token authentication (every ray, serve and recobra process needs both variables)"
export RAY_AUTH_MODE=token
[ -n "${RAY_AUTH_TOKEN:-}" ] || export RAY_AUTH_TOKEN=$(ray get-auth-token --generate)  # and ~/.ray/auth_token
ray start --head --port="$RAY_PORT" --num-cpus=2 --disable-usage-stats
export RAY_ADDRESS=127.0.0.1:$RAY_PORT
if RAY_AUTH_MODE=disabled RAY_AUTH_TOKEN= ray status >/dev/null 2>&1; then
    echo "the Ray head answered a client without its token"; exit 1
fi

step "the ASR application, without Serve's HTTP proxy"
serve start --proxy-location=Disabled
serve run --non-blocking --name recobra assist.distributed.ray_asr:build_app asr_model=tiny.en ray_asr_num_cpus=1

step "two front ends, started together (production settings: tenants, token secret)"
KEY=$(openssl rand -hex 16)
export RECOBRA_TOKEN_SECRET=$(openssl rand -hex 32)
export RECOBRA_TENANTS="[{\"id\": \"acme\", \"api_keys\": [\"$KEY\"]}]"
export RECOBRA_INFERENCE_BACKEND=ray RECOBRA_EVENT_BUS=redis RECOBRA_RAY_ADDRESS=$RAY_ADDRESS
export RECOBRA_REDIS_PREFIX=${RECOBRA_REDIS_PREFIX:-recobra-$RANDOM$RANDOM}
RECOBRA_NODE_ID=front-a recobra serve --host 127.0.0.1 --port "$PORT_A" >"$RUN_DIR/front-a.log" 2>&1 &
A=$!
RECOBRA_NODE_ID=front-b recobra serve --host 127.0.0.1 --port "$PORT_B" >"$RUN_DIR/front-b.log" 2>&1 &
B=$!
FRONT_ENDS="$A $B"
for port in "$PORT_A" "$PORT_B"; do
    for _ in $(seq 600); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
    curl -fs "http://127.0.0.1:$port/healthz"; echo
done

step "a call on front end A, followed on B"
SUPERVISOR=$(recobra token --tenant acme --role supervisor --ttl 600)
log_on_b() { curl -fs -H "Authorization: Bearer $SUPERVISOR" "http://127.0.0.1:$PORT_B/calls/$CALL/log" || true; }
recobra replay "$CALL_AUDIO" --protocol plain --url "ws://127.0.0.1:$PORT_A" --api-key "$KEY" --call-id "$CALL" \
    --no-follow >"$RUN_DIR/replay.log" 2>&1 &
REPLAY=$!
for _ in $(seq 900); do log_on_b | grep -q transcript.final && break; sleep 0.2; done

step "SIGTERM to front end A mid-call"
kill -TERM "$A"
for _ in $(seq 600); do kill -0 "$A" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$A" 2>/dev/null && echo "front end A still running 60 s after SIGTERM: killed"
status=0; wait "$A" || status=$?
echo "$status" >"$RUN_DIR/front-a.status"
FRONT_ENDS=$B
wait "$REPLAY" || true
for _ in $(seq 300); do log_on_b | grep -q qa.score && break; sleep 0.2; done
log_on_b >"$RUN_DIR/log-on-b.json"
step "done: front end A exited with $status"
