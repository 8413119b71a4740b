from pipeline.cli.main.main import run_cli

run_cli()
