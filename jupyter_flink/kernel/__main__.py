"""``python -m jupyter_flink.kernel``: run the kernel, or ``install`` its kernelspec."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["install"]:
        parser = argparse.ArgumentParser(prog="python -m jupyter_flink.kernel install",
                                         description="Install the flink kernelspec.")
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--user", action="store_true", help="for the current user")
        where.add_argument("--sys-prefix", action="store_true",
                           help="into this Python environment (e.g. a virtualenv)")
        where.add_argument("--prefix", help="under this prefix")
        args = parser.parse_args(argv[1:])
        from .kernelspec import install_kernel_spec

        prefix = sys.prefix if args.sys_prefix else args.prefix
        destination = install_kernel_spec(user=args.user, prefix=prefix)
        print(f"Installed the flink kernelspec in {destination}")
        return
    from ipykernel.kernelapp import IPKernelApp

    from .kernel import FlinkKernel

    IPKernelApp.launch_instance(argv=argv, kernel_class=FlinkKernel)


if __name__ == "__main__":
    main()
