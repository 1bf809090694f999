"""`python -m nst_jax` and `nst-jax`: see `nst_jax.cli.command`; first a restart with huge pages
(`nst_jax.cli.hugepages`)."""

import sys

from .cli.hugepages import reexec_with_huge_pages
from .cli.options import PROG
from .stops import STOPS, Interrupted


def main() -> int:
    reexec_with_huge_pages(sys.argv[1:])
    # Stop signals are handled from here on, before the imports of numpy and JAX (a second or more), which a
    # Ctrl-C would otherwise end with a traceback and SIGTERM without a word.
    with STOPS.on_signals():
        try:
            from .cli.command import main as cli_main

            STOPS.check()  # a stop that came during the imports (see errors.stop_on_signals)
            return cli_main()  # a stop during a run is reported there; one before it (imports, set-up) here
        except KeyboardInterrupt as e:
            print(f"{PROG}: interrupted while starting; nothing was written", file=sys.stderr)
            return getattr(e, "status", Interrupted.CTRL_C)


if __name__ == "__main__":
    raise SystemExit(main())
