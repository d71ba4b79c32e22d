"""The executor bundle's entry point (its ``__main__.py``).

    python3 mesobatch-executor.pyz                  the executor (what the agent runs)
    python3 mesobatch-executor.pyz check-agent ...  can this agent run it?
    python3 mesobatch-executor.pyz run-function     a function job (the node starts it)
    python3 mesobatch-executor.pyz --version
"""

import sys

MIN_PYTHON = (3, 10)

# Imports come late on purpose: the version check first, then only what is run.


def main() -> int:
    if sys.version_info < MIN_PYTHON:
        want = ".".join(map(str, MIN_PYTHON))
        sys.stderr.write(f"mesobatch executor bundle: needs Python {want} or newer, this is "
                         f"{sys.version.split()[0]}\n")
        return 3
    args = sys.argv[1:]
    command = args[0] if args else ""
    if command == "run-function":
        from mesobatch.executor.function_task import main as run_function  # noqa: PLC0415

        return run_function(args[1:])
    if command == "check-agent":
        from mesobatch.executor.check_agent import main as check_agent  # noqa: PLC0415

        return check_agent(args[1:])
    if command in ("--version", "version"):
        import mesobatch  # noqa: PLC0415

        print(f"mesobatch executor bundle {mesobatch.__version__}")
        return 0
    if command:
        sys.stderr.write(f"mesobatch executor bundle: unknown command {command!r}; "
                         "expected none, check-agent, run-function or --version\n")
        return 2
    from mesobatch.executor.main import main as executor  # noqa: PLC0415

    return executor()


if __name__ == "__main__":
    sys.exit(main())
