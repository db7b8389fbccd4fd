"""What the Ctrl-C tests of a subprocess report when they fail."""


def signal_masks(pid) -> str:
    """The signal masks of process `pid` (SigBlk, SigIgn, SigCgt from /proc), for the
    message of a Ctrl-C test that fails: a child that inherited SIGINT blocked or ignored
    never sees the signal (these tests failed late in full clean-clone runs only)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return " ".join(x.strip() for x in fh if x.startswith(("SigBlk", "SigIgn", "SigCgt")))
    except OSError as err:
        return f"(no /proc status: {err})"
