#!/bin/sh
# Splunk scripted input wrapper for zoom-oplog-shipper: one pass, events on stdout (indexed),
# diagnostics on stderr (splunkd.log, component ExecProcessor).
set -eu

# Splunk's environment points these at its own libraries and Python, which breaks a system
# Python (ssl, encodings). The program needs none of them.
unset LD_LIBRARY_PATH PYTHONHOME PYTHONPATH OPENSSL_CONF

# Settings and credentials, KEY=value lines: never put them in inputs.conf.
ZOOM_OPLOG_ENV_FILE="${ZOOM_OPLOG_ENV_FILE:-/etc/zoom-oplog-shipper/env}"
if [ -r "$ZOOM_OPLOG_ENV_FILE" ]; then
    set -a
    . "$ZOOM_OPLOG_ENV_FILE"
    set +a
fi

PATH="${PATH:-/usr/bin:/bin}:/usr/local/bin:/usr/bin:/bin"
export PATH

exec zoom-oplog-shipper run
