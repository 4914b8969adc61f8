#!/bin/sh
# Splunk scripted input wrapper for zoom-oplog-shipper: one pass, events on stdout (indexed),
# diagnostics on stderr. splunkd logs every stderr line of a scripted input in splunkd.log as
# "ERROR ExecProcessor" whatever it says, so only warnings and errors go there by default
# (ZOOM_OPLOG_LOG_LEVEL=info in the env file brings back the per-run summary).
# The stream is the stanza's first argument (script://./bin/zoom_oplog_shipper.sh activities),
# operations without one. Splunk passes "-index NAME" as arguments; the program needs none, so
# they are not passed on.
set -eu

case "${1:-}" in
    operations | activities) stream="$1" ;;
    "" | -*) stream=operations ;;
    *)
        echo "zoom_oplog_shipper.sh: unknown stream '$1' in inputs.conf: write operations or activities after the script's name" >&2
        exit 2
        ;;
esac

# Splunk's environment points these at its own libraries and Python, which breaks a system
# Python (ssl, encodings). The program needs none of them.
unset LD_LIBRARY_PATH PYTHONHOME PYTHONPATH OPENSSL_CONF

# Settings, KEY=value lines (configs/zoom-oplog-shipper.env.example): never in inputs.conf. This
# file is executed as shell code with the forwarder's rights: keep it owned by root, mode 0640,
# group splunk, so the forwarder's user can read it but not change it. The forwarder's
# least-privileged mode gives splunkd, and so this script and the program, CAP_DAC_READ_SEARCH:
# file modes do not keep them from reading any file on the host.
ZOOM_OPLOG_ENV_FILE="${ZOOM_OPLOG_ENV_FILE:-/etc/zoom-oplog-shipper/env}"
if [ -r "$ZOOM_OPLOG_ENV_FILE" ]; then
    set -a
    . "$ZOOM_OPLOG_ENV_FILE"
    set +a
fi
: "${ZOOM_OPLOG_LOG_LEVEL:=warning}"
: "${ZOOM_OPLOG_STATE_DIR:=/var/lib/zoom-oplog-shipper}"
export ZOOM_OPLOG_LOG_LEVEL ZOOM_OPLOG_STATE_DIR

PATH="${PATH:-/usr/bin:/bin}:/usr/local/bin:/usr/bin:/bin"
export PATH

# The run's health for node_exporter's textfile collector, one file per stream (docs/agents.md,
# "Metrics"), in a directory the splunk user owns:
#   install -d -o splunk -g splunk -m 0755 /var/lib/zoom-oplog-shipper-metrics
# A flag, not the env file: both inputs read that file, and two runs sharing one metrics file
# would overwrite each other's gauges.
exec zoom-oplog-shipper run --stream "$stream" --metrics-file "/var/lib/zoom-oplog-shipper-metrics/zoom_oplog_$stream.prom"
