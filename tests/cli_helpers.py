"""Shared by the CLI tests: run a `main(argv)` and check its one-line error contract."""


def cli_runner(main):
    """run_cli(capsys, *args) -> (exit code, stdout, stderr) of main([str(a) for a in args])."""
    def run_cli(capsys, *args):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err
    return run_cli


def one_line_error(err):
    lines = err.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
