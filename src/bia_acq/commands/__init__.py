"""One module per `bia-acq` subcommand: `add_parser(sub)` and `run(args) -> int`."""
