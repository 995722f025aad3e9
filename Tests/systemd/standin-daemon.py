#!/usr/bin/python3
"""A stand-in for `gallra run` until it exists: speaks gallra's sd_notify protocol so that the
shipped gallra.service (Type=notify, watchdog, reload, stop, credentials, sandbox) can be
exercised under a real systemd by Tests/systemd/units-test.sh. Not a model for the daemon."""
import os
import signal
import socket
import sys
import time


def notify(message: str) -> None:
    address = os.environ["NOTIFY_SOCKET"]
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(address)
        s.sendall(message.encode())


def log(message: str) -> None:
    print(f"stand-in: {message}", file=sys.stderr, flush=True)


reload_requested = False
stop_requested = False


def on_hup(_signum, _frame) -> None:
    global reload_requested
    reload_requested = True


def on_term(_signum, _frame) -> None:
    global stop_requested
    stop_requested = True


signal.signal(signal.SIGHUP, on_hup)
signal.signal(signal.SIGTERM, on_term)

key = open(os.path.join(os.environ["CREDENTIALS_DIRECTORY"], "audit-key"), "rb").read()
log(f"audit key of {len(key)} bytes, config {os.environ.get('GALLRA_CONFIG')}")
interval = int(os.environ.get("WATCHDOG_USEC", "0")) / 2e6 or 1.0
notify(f"READY=1\nSTATUS=idle (stand-in); audit key {len(key)} bytes")
log(f"ready; watchdog every {interval:.2f} s")
while not stop_requested:
    if reload_requested:
        reload_requested = False
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        notify(f"RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=reloading")
        log("reloading")
        notify("READY=1\nSTATUS=idle (stand-in); reloaded")
    notify("WATCHDOG=1")
    time.sleep(interval)
notify("STOPPING=1\nSTATUS=stopping")
log("stopping")
sys.exit(0)
