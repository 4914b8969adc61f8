#!/usr/bin/env bash
# The hand-rolled alternative the benchmark compares against: what a user would otherwise write.
#
# curl fetches a Server-to-Server OAuth token, then every page of GET /report/operationlogs in
# 28-day windows (to inclusive), and one long-running jq maps every record to the same ECS fields as
# zoom-oplog-shipper's `ecs` format. It prints one JSON line per record on stdout.
#
# Deliberately left out, because a typical script does not have them, which only makes the
# baseline faster: no fingerprint (`event.id`: jq has no hash function), no de-duplication, no
# state or watermark, no retries, no rate limit, no line-length limit, and only Zoom's usual
# `YYYY-MM-DDTHH:MM:SSZ` time form is parsed.
#
# Environment: ZOOM_ACCOUNT_ID, ZOOM_CLIENT_ID, ZOOM_CLIENT_SECRET, ZOOM_API_URL (…/v2),
# ZOOM_OAUTH_URL (…/oauth/token), BASELINE_FROM and BASELINE_TO (YYYY-MM-DD, both included).
set -euo pipefail

: "${ZOOM_ACCOUNT_ID:?set ZOOM_ACCOUNT_ID}" "${ZOOM_CLIENT_ID:?set ZOOM_CLIENT_ID}"
: "${ZOOM_CLIENT_SECRET:?set ZOOM_CLIENT_SECRET}" "${ZOOM_API_URL:?set ZOOM_API_URL}"
: "${ZOOM_OAUTH_URL:?set ZOOM_OAUTH_URL}" "${BASELINE_FROM:?set BASELINE_FROM}" "${BASELINE_TO:?set BASELINE_TO}"

# The ECS mapping of zoom_oplog_shipper/ecs.py, field for field (minus event.id).
read -r -d '' ECS_JQ <<'JQ' || true
def text($k): .[$k] | if type == "string" and . != "" then . else null end;
def norm: ascii_downcase | gsub("[^a-z0-9]+"; "-") | ltrimstr("-") | rtrimstr("-");
def activity:
  if . == null then "info"
  else [ascii_downcase | splits("[^a-z0-9]+")] as $w
    | if any($w[]; IN("delete", "remove", "deleted", "removed")) then "deletion"
      elif any($w[]; IN("add", "create", "added", "created")) then "creation"
      elif any($w[]; IN("update", "edit", "change", "updated", "changed", "modify", "set", "assign")) then "change"
      else "info" end
  end;
.operation_logs[]
| text("action") as $action
| text("category_type") as $cat
| text("operation_detail") as $detail
| text("operator") as $operator
| ($action | activity) as $activity
| ({"user": "user", "role": "user", "user_group": "group", "group": "group"}[($cat // "") | norm | gsub("-"; "_")]) as $obj
| (.time | if type == "string" and test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
           then .[0:19] + ".000Z" else null end) as $ts
| {
    "@timestamp": ($ts // $created),
    "ecs": {"version": "9.4.0"},
    "event": ({
      "kind": "event",
      "category": (if $obj then ["iam"] else ["configuration"] end),
      "type": (if $obj then [$activity, $obj] else [$activity] end),
      "module": "zoom",
      "dataset": "zoom.operation",
      "created": $created
    } + (if $action then {"action": ($action | norm)} else {} end)),
    "organization": {"id": $account},
    "data_stream": {"type": "logs", "dataset": "zoom.operation", "namespace": "default"},
    "zoom": {"operation": ({"action": $action, "category_type": $cat, "operation_detail": $detail,
                            "operator": $operator} | with_entries(select(.value != null)))}
  }
  + (if $ts then {} else {"tags": ["zoom_time_unparsable"]} end)
  + (if $detail then {"message": $detail} else {} end)
  + (if $operator then
       {"user": ({"name": $operator}
                 + (if $operator | test("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$") then {"email": $operator} else {} end)),
        "related": {"user": [$operator]}}
     else {} end)
JQ

# The secret goes to curl on stdin, not in its argv (visible in ps).
token=$(printf 'user = "%s:%s"\n' "$ZOOM_CLIENT_ID" "$ZOOM_CLIENT_SECRET" \
  | curl -sS --fail -K - -d grant_type=account_credentials --data-urlencode "account_id=$ZOOM_ACCOUNT_ID" \
    "$ZOOM_OAUTH_URL" | jq -r '.access_token')
created=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)

fetch_pages() {
  local from="$BASELINE_FROM" to next page
  while :; do
    to=$(date -u -d "$from + 27 days" +%F)
    [[ "$to" > "$BASELINE_TO" ]] && to="$BASELINE_TO"
    next=""
    while :; do
      page=$(curl -sS --fail -G -H "Authorization: Bearer $token" \
        --data-urlencode "from=$from" --data-urlencode "to=$to" -d page_size=300 \
        --data-urlencode "next_page_token=$next" "$ZOOM_API_URL/report/operationlogs")
      printf '%s\n' "$page"
      next=$(jq -r '.next_page_token // ""' <<<"$page")
      [[ -z "$next" ]] && break
    done
    [[ "$to" == "$BASELINE_TO" ]] && break
    from=$(date -u -d "$to + 1 day" +%F)
  done
}

fetch_pages | jq -c --arg account "$ZOOM_ACCOUNT_ID" --arg created "$created" "$ECS_JQ"
