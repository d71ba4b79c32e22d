"""``mesobatch deploy bundle`` and ``mesobatch deploy check-agent``."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    """Add the ``deploy`` command to the ``mesobatch`` command's subparsers."""
    deploy = sub.add_parser("deploy", help="get the executor onto agents",
                            description="Build the executor bundle, or check an agent.")
    what = deploy.add_subparsers(dest="deploy_command", metavar="WHAT",
                                 parser_class=type(deploy))
    bundle = what.add_parser("bundle", help="build the executor bundle (a zipapp)",
                             description="Build the self-contained executor bundle that "
                             "agents run with nothing but python3: "
                             "python3 mesobatch-executor.pyz")
    bundle.add_argument("-o", "--output", default=".", metavar="PATH",
                        help="file or directory to write it to (default: "
                             "./mesobatch-executor.pyz)")
    # listed for --help; the command itself is check_agent() below (own options)
    what.add_parser("check-agent", add_help=False,
                    help="check that this machine can run the executor bundle "
                         "(--scheduler URL, --master HOST:PORT, --work-dir DIR)")


def check_agent(argv: list[str]) -> int:
    """``mesobatch deploy check-agent ARGS``: the bundle's own check, run from here."""
    from ..executor.check_agent import main  # noqa: PLC0415

    return main(argv)


def run(args: argparse.Namespace, rest: list[str]) -> int:
    if args.deploy_command == "bundle":
        from . import bundle  # noqa: PLC0415

        path, built = bundle.write(args.output)
        print(f"{path}  {built.size} bytes  sha256:{built.sha256}")
        print(f"run it on an agent: python3 {path.name}   (check first: python3 "
              f"{path.name} check-agent --scheduler http://HOST:PORT)")
        return 0
    print("usage: mesobatch deploy {bundle,check-agent} ...")
    return 2
