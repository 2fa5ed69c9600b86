"""Output helpers shared by the Python client programs.

One record a line, fields separated by tabs, NULL as \\N. "step <name>"
starts a step; "error <message>" reports that the step failed (the next
step still runs); every other line is a result of the current step, its
first field saying what it is. cmd/spate/clients_test.go reads it.
"""
import datetime
import sys
import traceback


def clean(s):
    return str(s).replace("\\", "\\\\").replace("\t", " ").replace("\r", "").replace("\n", " | ")


def out(*fields):
    print("\t".join("\\N" if f is None else clean(f) for f in fields), flush=True)


def value(v):
    """Renders a value from the Python type the driver mapped it to."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, datetime.timedelta):
        return str(int(v.total_seconds()))
    return str(v)


def pytype(v):
    return "NoneType" if v is None else type(v).__name__


def step(name, fn):
    out("step", name)
    try:
        fn()
    except Exception as e:  # report and go on with the next step
        code = getattr(e, "pgcode", None)
        msg = "%s: %s" % (type(e).__name__, e)
        if code:
            msg = code + " " + msg
        out("error", msg)
        traceback.print_exc(file=sys.stderr)
