"""`python -m nst_jax` and `nst-jax`: see `nst_jax.cli`; first a restart with huge pages (`nst_jax.hugepages`)."""

import sys

from .hugepages import reexec_with_huge_pages


def main() -> int:
    reexec_with_huge_pages(sys.argv[1:])
    from .cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
