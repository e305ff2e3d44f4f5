"""Commands parse arguments, make one library call and format its answer; no logic lives here.

Library modules are imported inside each command so that ``lookalike --help`` stays instant and never
imports TensorFlow.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from lookalike.errors import LookalikeError

app = typer.Typer(
    help="Image similarity search: index photo folders, find lookalikes and duplicates, label images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        envvar="LOOKALIKE_MODEL",
        help="Catalog name (efficientnet-b0..b7, efficientnet-lite2 offline), TF-Hub handle or module dir.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def show_version(value: bool) -> None:
    if value:
        from lookalike import __version__

        typer.echo(f"lookalike {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=show_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Image similarity search: index photo folders, find lookalikes and duplicates, label images."""


@app.command()
def labels(
    images: Annotated[list[Path], typer.Argument(help="Image files to classify.", show_default=False)],
    model: ModelOption = None,
    k: Annotated[int, typer.Option("-k", min=1, max=1000, help="How many labels per image.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """Classify images with ImageNet labels, no index needed."""
    import lookalike

    failed = 0
    records = []
    for source, result in lookalike.classify(images, model=model, k=k):
        if isinstance(result, lookalike.ImageError):
            failed += 1
            typer.echo(f"error: {result}", err=True)
            records.append({"path": str(source), "error": result.reason})
            continue
        records.append(
            {"path": str(source), "labels": [vars(label) for label in result]}
        )
        if not as_json:
            typer.echo(str(source))
            for label in result:
                typer.echo(f"  {label.probability:6.1%}  {label.name}")
    if as_json:
        typer.echo(json.dumps(records, indent=2))
    if failed:
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except LookalikeError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
