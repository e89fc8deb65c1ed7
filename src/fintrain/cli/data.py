"""``fintrain data``: fetch, import, list and verify daily OHLCV files."""

import typer

app = typer.Typer(help="Fetch, import, list and verify daily OHLCV market data.", no_args_is_help=True)
