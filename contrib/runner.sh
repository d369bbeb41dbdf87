#!/usr/bin/env bash
# A complete STQ runner in bash + curl, to show the protocol (docs/api.md) is easy
# from any language: claim (long poll), run in its own process group, heartbeat,
# kill on cancel or overrun, report the result with the last 1 MiB of output.
# JSON goes through jq when it is installed, else python3 (STQ_JSON_TOOL=python3 forces it).
#
#   contrib/runner.sh [URL]    env: STQ_SERVER, STQ_TOKEN, STQ_LABELS=a,b,
#                                   STQ_RUNNER_NAME, STQ_EXIT_WHEN_IDLE=SECONDS
set -u
URL="${1:-${STQ_SERVER:-http://127.0.0.1:8000}}"
URL="${URL%/}"
NAME="${STQ_RUNNER_NAME:-$(hostname)-sh-$$}"
IDLE="${STQ_EXIT_WHEN_IDLE:-}"
GRACE=5
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
trap 'STOP=1' TERM INT
STOP=0

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
ms() { awk -v s="$1" 'BEGIN { printf "%d", s * 1000 }'; }  # seconds (maybe fractional) -> ms
log() { printf '%s runner.sh %s: %s\n' "$(date -u +%FT%TZ)" "$NAME" "$*" >&2; }

if [ "${STQ_JSON_TOOL:-jq}" = jq ] && command -v jq >/dev/null 2>&1; then
  field() { jq -r --arg k "$1" '.[$k] // empty' "$2"; }
  argv0() { jq -j '.command | if type == "string" then ["/bin/sh", "-c", .] else . end | .[] + "\u0000"' "$1"; }
  envs() { jq -j '.env // {} | to_entries[] | "\(.key)=\(.value)\u0000"' "$1"; }
  jstr() { jq -Rs .; }
  labels_json() { jq -cn --arg l "$1" '$l | split(",") | map(select(. != ""))'; }
elif command -v python3 >/dev/null 2>&1; then
  py() { python3 -c "import json,sys; $1" "${@:2}"; }
  field() { py 'v=json.load(open(sys.argv[2])).get(sys.argv[1]); print("" if v is None else v)' "$1" "$2"; }
  argv0() { py 'c=json.load(open(sys.argv[1]))["command"]; c=["/bin/sh","-c",c] if isinstance(c,str) else c; sys.stdout.write("".join(a+"\0" for a in c))' "$1"; }
  envs() { py 'e=json.load(open(sys.argv[1])).get("env") or {}; sys.stdout.write("".join(f"{k}={v}\0" for k,v in e.items()))' "$1"; }
  jstr() { py 'sys.stdout.write(json.dumps(sys.stdin.buffer.read().decode("utf-8","replace")))'; }
  labels_json() { py 'print(json.dumps([x for x in sys.argv[1].split(",") if x]))' "$1"; }
else
  echo "runner.sh: needs jq or python3 to read JSON" >&2; exit 2
fi

# api METHOD PATH [BODY_FILE] -> body in $WORK/answer, prints the HTTP status.
api() {
  local auth=()
  [ -n "${STQ_TOKEN:-}" ] && auth=(-H "Authorization: Bearer $STQ_TOKEN")
  curl -sS -o "$WORK/answer" -w '%{http_code}' -X "$1" "${auth[@]}" \
    -H 'Content-Type: application/json' --max-time 60 \
    ${3:+--data-binary "@$3"} "$URL$2" 2>/dev/null || echo 000
}

kill_group() {  # SIGTERM the command's group, SIGKILL whatever is left after the grace
  kill -TERM -- "-$1" 2>/dev/null
  for _ in $(seq $((GRACE * 10))); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$1" 2>/dev/null
}

# run_attempt CLAIM_FILE: runs it, writes the result body to $WORK/result.json
run_attempt() {
  local claim="$1" id cwd duration interval pid rc=0 message="" started now next_beat deadline=""
  id="$(field attempt_id "$claim")"; cwd="$(field cwd "$claim")"
  duration="$(field duration "$claim")"; interval="$(field heartbeat_interval "$claim")"
  local -a argv env_list
  mapfile -d '' argv < <(argv0 "$claim"); mapfile -d '' env_list < <(envs "$claim")
  started=$(now_ms); next_beat=$((started + $(ms "${interval:-10}")))
  [ -n "$duration" ] && deadline=$((started + $(ms "$duration")))
  : >"$WORK/output"
  if [ -n "$cwd" ] && [ ! -d "$cwd" ]; then
    message="cannot start: working directory '$cwd' does not exist"; rc=""
  else
    ( cd "${cwd:-.}" && exec env "${env_list[@]}" STQ_ATTEMPT_ID="$id" \
        STQ_TASK_ID="$(field task_id "$claim")" STQ_TASK_NAME="$(field task_name "$claim")" \
        STQ_WORKFLOW_ID="$(field workflow_id "$claim")" \
        STQ_ATTEMPT_NUMBER="$(field attempt_number "$claim")" \
        setsid "${argv[@]}" ) </dev/null >"$WORK/output" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
      sleep 0.05; now=$(now_ms)
      if [ -n "$deadline" ] && [ "$now" -ge "$deadline" ]; then
        message="duration exceeded: the command was killed"; kill_group "$pid"; break
      fi
      if [ "$now" -ge "$next_beat" ]; then
        next_beat=$((now + $(ms "${interval:-10}")))
        if [ "$(api POST "/api/v1/attempts/$id/heartbeat")" = 200 ] \
            && grep -q '"cancel": *true' "$WORK/answer"; then
          message="cancelled: the server asked to stop the command"; kill_group "$pid"; break
        fi
      fi
    done
    wait "$pid"; rc=$?
    kill -KILL -- "-$pid" 2>/dev/null  # nothing the command started outlives it
  fi
  local status=failed
  [ "$rc" = 0 ] && [ -z "$message" ] && status=completed
  printf '{"status": "%s", "exit_code": %s, "message": %s, "output": %s}' "$status" \
    "${rc:-null}" "$(printf '%s' "$message" | jstr)" "$(tail -c 1048576 "$WORK/output" | jstr)" \
    >"$WORK/result.json"
  log "finished $(field task_name "$claim") attempt $(field attempt_number "$claim"):" \
    "$status, exit code ${rc:-none}, $(( ($(now_ms) - started) / 1000 ))s"
}

report() {  # keep the result until the server takes it
  local delay=1 code
  while :; do
    code="$(api POST "/api/v1/attempts/$1/result" "$WORK/result.json")"
    case "$code" in
      200) return 0 ;;
      404|409) log "result for $1 refused ($code): $(cat "$WORK/answer")"; return 0 ;;
      000|5*) log "cannot reach $URL ($code); retrying in ${delay}s"; sleep "$delay"
              delay=$(( delay < 15 ? delay * 2 : 15 )) ;;
      *) log "result for $1 refused ($code): $(cat "$WORK/answer")"; return 1 ;;
    esac
  done
}

WAIT=20
[ -n "$IDLE" ] && [ "${IDLE%.*}" -lt "$WAIT" ] && WAIT="${IDLE%.*}"
printf '{"runner": "%s", "labels": %s, "wait": %s}' "$NAME" "$(labels_json "${STQ_LABELS:-}")" \
  "$WAIT" >"$WORK/claim_body.json"
log "serving $URL"
IDLE_MS=""
[ -n "$IDLE" ] && IDLE_MS=$(ms "$IDLE")
idle_since=$(now_ms)
while [ "$STOP" = 0 ]; do
  code="$(api POST /api/v1/attempts/claim "$WORK/claim_body.json")"
  case "$code" in
    200) cp "$WORK/answer" "$WORK/claim.json"
         log "claimed $(field task_name "$WORK/claim.json") attempt $(field attempt_number "$WORK/claim.json")"
         run_attempt "$WORK/claim.json"
         report "$(field attempt_id "$WORK/claim.json")"
         idle_since=$(now_ms)
         continue ;;  # it had work: idle time starts again
    204) ;;
    401) log "the server refused the token: set STQ_TOKEN"; exit 2 ;;
    4*) log "the server refused the claim ($code): $(cat "$WORK/answer"); retrying"; sleep 2 ;;
    *) log "cannot reach $URL ($code); retrying"; sleep 2 ;;
  esac
  if [ -n "$IDLE_MS" ] && [ $(( $(now_ms) - idle_since )) -ge "$IDLE_MS" ]; then
    log "idle for ${IDLE}s: exiting"; break
  fi
done
exit 0
