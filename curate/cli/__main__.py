from curate.cli.main import cli

cli(prog_name="curate")
