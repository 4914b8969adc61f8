"""stderr lines: one record a line, JSON when asked, no traceback, secrets masked, the summary's fields on top."""

from __future__ import annotations

import io
import logging
import threading

import orjson
import pytest

from zoom_oplog_shipper.logs import LOGGER_NAME, MASK, log_summary, setup_logging

SECRET = "hunter2-but-longer"


@pytest.fixture
def err() -> io.StringIO:
    return io.StringIO()


def lines(err: io.StringIO) -> list[str]:
    return err.getvalue().splitlines()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_failure_with_its_exception_is_still_one_line(err: io.StringIO, fmt: str) -> None:
    setup_logging("debug", fmt, (SECRET,), stream=err)
    try:
        raise ValueError(f"bad value {SECRET}\nsecond line")
    except ValueError:
        logging.getLogger(LOGGER_NAME).exception("it failed: %s\nand more", SECRET)
    [line] = lines(err)
    assert "Traceback" not in line and "ValueError" not in line and SECRET not in line
    message = orjson.loads(line)["message"] if fmt == "json" else line.split("ERROR: ", 1)[1]
    assert message == f"it failed: {MASK} and more"


def test_json_summary_fields_are_top_level_keys_and_shown_at_any_level(err: io.StringIO) -> None:
    setup_logging("error", "json", stream=err)
    logging.getLogger(LOGGER_NAME).info("hidden at --log-level error")
    log_summary(logging.INFO, "complete: 3 records emitted", {"outcome": "complete", "exit_code": 0, "message": "x"})
    [line] = lines(err)
    doc = orjson.loads(line)
    assert doc["outcome"] == "complete" and doc["exit_code"] == 0
    assert doc["message"] == "complete: 3 records emitted"  # a field never replaces the envelope
    assert doc["log"] == {"level": "info", "logger": "zoom_oplog_shipper.summary"}


def test_library_chatter_below_warning_stays_quiet(err: io.StringIO) -> None:
    setup_logging("debug", "json", stream=err)
    logging.getLogger("urllib3.connectionpool").debug("Starting new HTTPS connection")
    logging.getLogger("filelock").info("Lock acquired")
    logging.getLogger("urllib3.connectionpool").warning("Connection pool is full")
    assert [orjson.loads(line)["message"] for line in lines(err)] == ["Connection pool is full"]


def test_a_failing_background_thread_is_one_line(err: io.StringIO) -> None:
    setup_logging("info", "json", stream=err)

    def boom() -> None:
        raise RuntimeError("the simulator's socket closed")

    thread = threading.Thread(target=boom, name="simulator")
    thread.start()
    thread.join()
    [line] = lines(err)
    doc = orjson.loads(line)
    assert doc["message"] == "background thread simulator stopped: the simulator's socket closed"
    assert doc["log"]["level"] == "error"


def test_a_closed_stderr_does_not_print_a_logging_error(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    setup_logging("info", "text", stream=stream)
    stream.close()
    logging.getLogger(LOGGER_NAME).error("nowhere to go")
    assert "Logging error" not in capsys.readouterr().err


@pytest.mark.parametrize("secret", ["s", "log", '"', "@timestamp"])
def test_a_short_secret_never_breaks_the_json_line(err: io.StringIO, secret: str) -> None:
    setup_logging("info", "json", (secret,), stream=err)
    logging.getLogger(LOGGER_NAME).info("the secret is %s", secret)
    log_summary(logging.INFO, "complete", {"outcome": "complete", "account": f"a{secret}"})
    docs = [orjson.loads(line) for line in lines(err)]
    assert docs[0]["message"].endswith(MASK) and secret not in docs[0]["message"]
    assert docs[1]["account"] == f"a{MASK}" and docs[1]["outcome"] == "complete"
    assert docs[0]["log"]["logger"] == LOGGER_NAME
