"""Commands parse arguments, make one library call and format its answer; no logic lives here.

Library modules are imported inside each command so that ``lookalike --help`` stays instant and never
imports TensorFlow. Which failure exits with which status is :mod:`lookalike.cli.exits`; the
translation happens in :class:`LookalikeGroup`, inside the typer app, so that typer's ``CliRunner``
sees exactly what the installed command does.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

from lookalike.arguments import check_path
from lookalike.cli import exits
from lookalike.errors import (
    ImageError,
    ImageNotFound,
    InvalidOption,
    LookalikeError,
    QuarantineError,
    ReportError,
)
from lookalike.paths import display


class LookalikeGroup(TyperGroup):
    """Every command's expected failure becomes ``error: <message>`` on one line of stderr and the exit
    status :func:`lookalike.cli.exits.status` gives it; Ctrl-C becomes "interrupted", 130.

    The line is printed here and the status raised as ``typer.Exit`` rather than as a click-style
    ``ClickException``: typer draws those in a rich panel, several lines wrapped at the terminal's
    width, and a script reading stderr needs the one line.
    """

    def invoke(self, ctx: typer.Context):
        try:
            with remembered_interrupts() as interrupts:
                result = super().invoke(ctx)
            if interrupts:
                raise KeyboardInterrupt  # one Python dropped on the way (see remembered_interrupts)
            return result
        except (typer.Exit, typer.Abort):
            raise  # typer's own signals (RuntimeErrors, like FAISS's errors)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(exits.INTERRUPTED) from None
        except Exception as error:
            failure = exits.expected(error)
            if failure is None:
                raise  # a bug: its traceback is the report
            typer.echo(f"error: {exits.message(failure, ctx.invoked_subcommand)}", err=True)
            raise typer.Exit(exits.status(failure)) from None


@contextlib.contextmanager
def remembered_interrupts():
    """Count every Ctrl-C while a command runs, and raise it as usual. Python drops a KeyboardInterrupt
    raised while a finaliser (``__del__``) or a C callback runs, printing "Exception ignored": a Ctrl-C
    landing there was lost and the command ran on to exit 0. With the count, the command still ends
    "interrupted", 130. Left alone where Ctrl-C is ignored (a background job of a script) or handled
    by someone else, and outside the main thread, where no handler can be set."""
    count: list[int] = []
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield count
        return

    def interrupted(signum: int, frame: object) -> None:
        count.append(signum)
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, interrupted)
    try:
        yield count
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


class LookalikeCommand(TyperCommand):
    """Help as click (and sqlite-utils) prints it: arguments in capitals in the usage line (``PATH...``,
    ``[IMAGE]...``) and listed without the type labels (``<list[Path]>``) typer shows for arguments
    whatever their metavar; options show their metavar, flags nothing."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        """An empty path argument or option (a ``PATH``, ``IMAGE``, ``DIR``, ``FILE`` or ``MANIFEST``:
        ``lookalike index ""``, ``--index "$UNSET"``) is refused as :class:`InvalidOption`, one line,
        status 2, by :func:`~lookalike.arguments.check_path`. It is looked for in the words as given,
        before typer turns them into ``Path("")``, which is the current folder: indexed, or made an
        index, silently."""
        if not ctx.resilient_parsing:
            given, _, _ = self.make_parser(ctx).parse_args(args=list(args))
            for param in self.get_params(ctx):
                if param.metavar in _PATH_METAVARS and param.name in given:
                    values = given[param.name]
                    name = param.metavar if isinstance(param, TyperArgument) else param.opts[0]
                    for value in values if isinstance(values, list | tuple) else [values]:
                        if value is not None:  # an argument left out (IMAGE beside --id)
                            check_path(value, name)
        return super().parse_args(ctx, args)

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:
        arguments = [p for p in self.get_params(ctx) if isinstance(p, TyperArgument)]
        return [self.options_metavar, *map(_usage, arguments)]

    def format_options(self, ctx: typer.Context, formatter) -> None:
        params = self.get_params(ctx)
        arguments = [(_usage(p), p.help or "") for p in params if isinstance(p, TyperArgument)]
        options = [r for p in params if not isinstance(p, TyperArgument) and (r := p.get_help_record(ctx))]
        for title, rows in (("Arguments", arguments), ("Options", options)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


_PATH_METAVARS = frozenset({"PATH", "IMAGE", "DIR", "FILE", "MANIFEST"})
"""The metavars of the arguments and options that name files or folders."""


def _usage(argument: TyperArgument) -> str:
    name = argument.metavar or argument.name.upper()
    name = name if argument.required else f"[{name}]"
    return f"{name}..." if argument.nargs != 1 else name


app = typer.Typer(
    cls=LookalikeGroup,
    rich_markup_mode=None,  # plain click help: no panels, and "[default: ...]" is not taken for markup
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
        metavar="NAME",
        help="A model from the catalog (default: efficientnet-b2; efficientnet-lite2 needs no download), "
             "a TF-Hub handle or a module dir.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print CSV for scripts.")]
IndexOption = Annotated[
    Path | None,
    typer.Option(
        "--index",
        "-i",
        envvar="LOOKALIKE_INDEX",
        metavar="DIR",
        help="The index directory (default: ~/.local/share/lookalike/index).",
        show_default=False,
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="LOOKALIKE_SERVER",
        metavar="URL",
        help="Ask the running 'lookalike serve' at URL (its index and model; LOOKALIKE_TOKEN if it needs "
        "one) instead of loading them here.",
        show_default=False,
    ),
]


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
    """Image similarity search: index photo folders, find lookalikes and duplicates, label images.

    \b
    Start with:
      lookalike index ~/Pictures    index a folder (run again: only what changed)
      lookalike search holiday.jpg  the indexed photos that look most like it
      lookalike duplicates          copies grouped with the file to keep

    Each command's --help has the details.
    """


@app.command(cls=LookalikeCommand)
def labels(
    images: Annotated[
        list[Path], typer.Argument(metavar="IMAGE", help="Image files to classify.", show_default=False)
    ],
    model: ModelOption = None,
    k: Annotated[
        int, typer.Option("-k", metavar="N", min=1, max=1000, help="How many labels per image.")
    ] = 5,
    as_json: JsonOption = False,
    server: ServerOption = None,
) -> None:
    """ImageNet labels for images; no index needed.

    \b
    Example:
      lookalike labels data/cat.jpg -m efficientnet-lite2 -k 3
    """
    import lookalike
    from lookalike.cli import output

    done = failed = 0
    records = []
    results = remote(server).classify(images, k) if server else lookalike.classify(images, model=model, k=k)
    for source, result in results:
        if isinstance(result, ImageError):
            failed += 1
            output.input_error(source, result)
            records.append({"path": str(source), "error": result.reason})
            continue
        done += 1
        records.append({"path": str(source), "labels": [vars(label) for label in result]})
        if not as_json:
            output.labels(source, result)
    if as_json:
        output.json_out(records)
    raise typer.Exit(exits.batch_status(done, failed))


def open_index(index: Path | None, model: str | None = None, create: bool = False, **options):
    import lookalike

    return lookalike.open(index, model=model, create=create, **options)


def remote(url: str):
    """The ``lookalike serve`` at ``url``, with the token ``serve`` reads too (``LOOKALIKE_TOKEN``)."""
    from lookalike.remote import Server

    return Server(url, token=os.environ.get("LOOKALIKE_TOKEN"))


@app.command("index", cls=LookalikeCommand)
def index_command(
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATH", help="Folders or image files.", show_default=False, exists=True),
    ],
    index: IndexOption = None,
    model: ModelOption = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Forget indexed files under PATH that are gone.")
    ] = False,
    extensions: Annotated[
        str | None,
        typer.Option("--extensions", metavar="EXTS", help="Only these, e.g. jpg,png (default: all images)."),
    ] = None,
    hidden: Annotated[bool, typer.Option("--hidden", help="Include hidden files and folders.")] = False,
    index_type: Annotated[
        str | None,
        typer.Option("--index-type", metavar="TYPE",
                     help="auto, flat, ivf or ondisk; remembered (default: auto)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(metavar="N", min=1, max=1024, help="Images per model batch.")
    ] = 32,
    commit_every: Annotated[
        int, typer.Option(metavar="N", min=1, help="Images per commit: the most a killed run redoes.")
    ] = 256,
    wait: Annotated[
        float, typer.Option(metavar="SECONDS", help="How long to wait for another writer.")
    ] = 0.0,
    quiet: QuietOption = False,
    engine: Annotated[
        str | None, typer.Option("--engine", metavar="NAME", show_default=False,
                                 help="Embed in Parquet shards: local (a loop) or ray.")
    ] = None,
    address: Annotated[
        str | None, typer.Option("--address", metavar="ADDRESS", show_default=False,
                                 help="Ray cluster, e.g. ray://HOST:10001 (default: a local Ray).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", metavar="N", min=1, show_default=False,
                                 help="Ray workers, each loading the model once (default: one per 2 CPUs).")
    ] = None,
    gpus_per_worker: Annotated[
        float, typer.Option("--gpus-per-worker", metavar="GPUS", min=0.0, help="GPUs each Ray worker holds.")
    ] = 0.0,
    shard_size: Annotated[
        int, typer.Option("--shard-size", metavar="N", min=1, help="Files per shard (with --engine).")
    ] = 128,
) -> None:
    """Index the images under each PATH (run again: only changes).

    New files are added and changed ones embedded again; --prune forgets the gone ones.

    \b
    Examples:
      lookalike index ~/Pictures
      lookalike index ~/Pictures ~/Phone --prune --model efficientnet-lite2
    """
    from lookalike.cli import output
    from lookalike.cli.progress import progress_bar

    if engine is None and (address or workers or gpus_per_worker):
        raise InvalidOption("--engine", "--address, --workers and --gpus-per-worker need --engine ray")
    with open_index(index, model, create=True, index_type=index_type) as collection:
        runner = None
        if engine is not None:
            from lookalike.engines import make_engine, model_for

            runner = make_engine(engine, model=model_for(collection, model), address=address,
                                 workers=workers, gpus_per_worker=gpus_per_worker, batch_size=batch_size)
        with progress_bar(enabled=not quiet) as progress:
            summary = collection.add(
                paths,
                prune=prune,
                extensions=extensions.split(",") if extensions else None,
                include_hidden=hidden,
                progress=progress,
                batch_size=batch_size,
                commit_every=commit_every,
                wait=wait,
                **({"engine": runner, "shard_size": shard_size} if runner else {}),
            )
        output.add_summary(summary, collection.directory, err=quiet)
        if runner is not None:
            typer.echo(f"shards: {runner.ran} made by {runner.name}, {runner.resumed} images resumed from "
                       "a killed run", err=quiet)
    raise typer.Exit(exits.batch_status(summary.added + summary.updated + summary.unchanged, summary.failed))


@app.command(cls=LookalikeCommand)
def search(
    images: Annotated[
        list[str] | None,
        typer.Argument(metavar="IMAGE", help="An image file, '-' for stdin, or an indexed path.",
                       show_default=False),
    ] = None,
    image_id: Annotated[
        int | None, typer.Option("--id", metavar="ID", help="Search from an indexed image's id.")
    ] = None,
    index: IndexOption = None,
    model: ModelOption = None,
    k: Annotated[int, typer.Option("-k", metavar="N", min=1, max=10_000, help="Neighbours per query.")] = 10,
    min_score: Annotated[
        float | None, typer.Option(metavar="SCORE", help="Drop neighbours below this cosine similarity.")
    ] = None,
    label: Annotated[
        str | None, typer.Option(metavar="TEXT", help="Keep neighbours whose labels match TEXT.")
    ] = None,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
    server: ServerOption = None,
) -> None:
    """The indexed images that look most like each IMAGE.

    Each IMAGE's own labels first, then its neighbours, most similar first: rank, cosine similarity,
    path and top label.

    \b
    Examples:
      lookalike search holiday.jpg
      lookalike search --id 42 --label dog --min-score 0.5
      lookalike search - --json < photo.jpg
    """
    from lookalike.cli import output
    from lookalike.embedder.images import read_stream

    if not images and image_id is None:
        raise InvalidOption("IMAGE", "give an IMAGE (a file, or - for stdin) or --id ID")
    options = {"min_score": min_score, "label": label}
    outcomes = []  # (query, SearchResult or the error of that one input), in the order asked
    with remote(server) if server else open_index(index, model) as collection:
        queries: list[tuple[str, int | str]] = [(f"id {image_id}", image_id)] if image_id is not None else []
        queries += [(image, image) for image in images or []]
        for query, target in queries:
            try:
                if isinstance(target, int):
                    result = collection.search_id(target, k, **options)
                else:
                    stdin = typer.get_binary_stream("stdin")
                    source = read_stream(stdin, "-") if target == "-" else Path(target)
                    result = collection.search(source, k, **options)
            except (ImageError, ImageNotFound) as error:  # this input only: the others go on
                output.input_error(query, error)
                outcomes.append((query, error))
                continue
            outcomes.append((query, result))
            if not as_json and not as_csv:
                output.search_text(query, result)
    output.search_results(outcomes, as_json=as_json, as_csv=as_csv)
    failed = sum(isinstance(outcome, LookalikeError) for _, outcome in outcomes)
    raise typer.Exit(exits.batch_status(len(outcomes) - failed, failed))


@app.command(cls=LookalikeCommand)
def find(
    text: Annotated[
        str, typer.Argument(metavar="TEXT", help="Words to match in labels or paths, e.g. 'tabby'.")
    ],
    index: IndexOption = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", metavar="N", min=1, help="At most this many images.")
    ] = 50,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Images whose labels (or paths) match TEXT, surest first.

    \b
    Example:
      lookalike find espresso
    """
    from lookalike.cli import output

    with open_index(index) as collection:
        output.text_hits(collection.find(text, limit), as_json=as_json, as_csv=as_csv)


@app.command(cls=LookalikeCommand)
def info(index: IndexOption = None, as_json: JsonOption = False) -> None:
    """What an index holds: model, images, index type, size.

    Also the vector size, the failures and when it was created.
    """
    from lookalike.cli import output

    with open_index(index) as collection:
        output.index_info(collection.info(), as_json=as_json)


@app.command(cls=LookalikeCommand)
def failures(
    index: IndexOption = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", metavar="N", min=1, help="At most this many.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Files that could not be indexed, and why."""
    from lookalike.cli import output

    with open_index(index) as collection:
        output.failures(collection.failures(limit), as_json=as_json)


@app.command(cls=LookalikeCommand)
def duplicates(
    index: IndexOption = None,
    threshold: Annotated[
        float | None,
        typer.Option(metavar="SCORE", min=0.01, max=1.0, show_default=False,
                     help="Score a copy needs against its keeper: cosine similarity corrected for density "
                          "(default: 0.64, calibrated on real copies: see README).")
    ] = None,
    keep: Annotated[
        str, typer.Option(metavar="POLICY", help="Keeper criteria, in order: content, colour, quality, "
                                                 "pixels, size, oldest, newest, shortest-path.")
    ] = "content,colour,quality,size,oldest",
    against: Annotated[
        Path | None,
        typer.Option(metavar="PATH",
                     help="Another index or image folder: which of my images are already there?"),
    ] = None,
    exact: Annotated[bool, typer.Option("--exact", help="Byte-identical files only: no model.")] = False,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
    html: Annotated[
        Path | None, typer.Option("--html", metavar="FILE", help="Also write an HTML report here.")
    ] = None,
    move_to: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Move copies into this folder (undo: lookalike undo MANIFEST)."),
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Delete copies for good (asks first).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Duplicate images: each original to keep, with its copies.

    Exact and near duplicates: every copy with its similarity to the keeper, and the bytes removing the
    copies would free. Nothing is moved or deleted unless asked.

    \b
    Examples:
      lookalike duplicates --html report.html
      lookalike duplicates --move-to ~/quarantine
    """
    from lookalike.cli import output
    from lookalike.cli.progress import progress_bar

    if move_to and delete:
        raise InvalidOption("--move-to", "choose --move-to or --delete, not both")
    if delete and not yes and not sys.stdin.isatty():
        raise LookalikeError("--delete needs --yes when there is no terminal to ask on")
    if html:
        from lookalike.index.report import check_target

        with refused_as_usage("--html"):
            check_target(html)
    if move_to:
        from lookalike.index.quarantine import check_quarantine

        with refused_as_usage("--move-to"):
            check_quarantine(move_to)
    with open_index(index) as collection:
        if (move_to or delete) and collection.read_only:  # said before the search, which takes minutes
            raise LookalikeError(f"{display(collection.directory)} can be read but not written "
                                 f"({collection.read_only}): copies cannot be moved or deleted from it")
        if not exact and (stale := collection.stale_traits()):
            typer.echo(f"note: {stale} images have traits from an older lookalike, read from their files on "
                       "every run: `lookalike index FOLDER` refreshes them once", err=True)
        with progress_bar(enabled=not quiet, unit="") as progress:
            clusters = collection.duplicates(threshold, policy=keep, against=against, exact_only=exact,
                                             progress=progress)
        output.duplicate_clusters(clusters, as_json=as_json, as_csv=as_csv)
        if html:
            from lookalike.index.report import html_report

            typer.echo(f"report: {display(html_report(clusters, html))}", err=True)
        to_stderr = as_json or as_csv  # scripts read stdout: action summaries go to stderr
        result = None
        if move_to and clusters:
            result = collection.move_duplicates(clusters, move_to)
            output.moved(result, err=to_stderr, index=collection.directory)
        elif delete and clusters:
            copies = sum(len(c.copies) for c in clusters)
            if not yes and not typer.confirm(f"Delete {copies} copies for good?", err=True):
                raise typer.Exit(1)
            result = collection.delete_duplicates(clusters)
            output.deleted(result, err=to_stderr)
    if result is not None:
        done = len(result.moved if move_to else result.deleted)
        raise typer.Exit(exits.batch_status(done, len(result.problems)))


@app.command(cls=LookalikeCommand)
def undo(
    manifest: Annotated[
        Path, typer.Argument(metavar="MANIFEST", help="The manifest duplicates --move-to wrote.")
    ],
    index: IndexOption = None,
) -> None:
    """Put back the files duplicates --move-to moved.

    Each file goes back where it was, byte for byte, and is indexed again.

    \b
    Example:
      lookalike undo ~/quarantine/manifest-20261126T101500.jsonl
    """
    from lookalike.cli import output

    with open_index(index) as collection:
        result = collection.undo(manifest)
    output.restored(result)
    done = len(result.restored) + len(result.caught_up)
    raise typer.Exit(exits.batch_status(done, len(result.problems) + len(result.unindexed)))


@app.command(cls=LookalikeCommand)
def serve(
    index: IndexOption = None,
    model: ModelOption = None,
    host: Annotated[
        str, typer.Option(metavar="HOST", help="Address to bind; anything but loopback exposes the index "
                                               "and needs --token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", min=0, max=65535, help="Port to listen on.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(envvar="LOOKALIKE_TOKEN", metavar="TOKEN",
                     help="Require 'Authorization: Bearer TOKEN' on requests."),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(metavar="NAME",
                     help="Also answer to this Host name (NAME: any port, NAME:PORT: one); repeatable."),
    ] = None,
    upload_dir: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Allow adding images by upload; they are saved here, then indexed."),
    ] = None,
    quarantine: Annotated[
        Path | None, typer.Option(metavar="DIR", help="Allow moving duplicates from the page; copies are "
                                  "moved here, with a manifest for undo (as duplicates --move-to).")
    ] = None,
    max_upload_mb: Annotated[
        float, typer.Option(metavar="MB", min=0.001, help="Largest upload accepted.")
    ] = 20.0,
    max_upload_megapixels: Annotated[
        float, typer.Option(metavar="MP", min=0.01, max=100.0,
                            help="Most megapixels an upload may declare (memory bound).")
    ] = 40.0,
    max_decodes: Annotated[
        int, typer.Option(metavar="N", min=1, max=64,
                          help="Uploads and thumbnails decoded at once (memory bound).")
    ] = 2,
    max_connections: Annotated[
        int, typer.Option(metavar="N", min=1, help="Connections served at once; a request on one more "
                          "gets a 503 at once.")
    ] = 100,
    batching: Annotated[
        bool, typer.Option(help="Embed concurrent queries in one model batch (slower on 2 cores: see "
                            "docs/benchmarks.md, Service load).")
    ] = False,
) -> None:
    """Serve the search page and the HTTP API.

    \b
    Examples:
      lookalike serve                  # then open http://127.0.0.1:8000/
      lookalike serve --quarantine ~/quarantine
    """
    import uvicorn

    from lookalike.index.collection import open_collection
    from lookalike.server import create_app
    from lookalike.server.app import is_loopback, uvicorn_options

    if not is_loopback(host) and not token:
        raise typer.BadParameter(
            f"binding {host} exposes the index beyond this machine: give --token (or LOOKALIKE_TOKEN)",
            param_hint="--host",
        )
    names = list(allowed_host or [])
    if not is_loopback(host) and host not in ("0.0.0.0", "::"):
        names.append(host)  # the name it was asked to bind answers too
    if quarantine:
        from lookalike.index.quarantine import check_quarantine

        with refused_as_usage("--quarantine"):
            check_quarantine(quarantine)
    with open_collection(index, create=False, model=model, batching=batching) as collection:
        try:
            app = create_app(
                collection, token=token, upload_dir=upload_dir, max_upload_bytes=int(max_upload_mb * 2**20),
                max_upload_pixels=int(max_upload_megapixels * 1e6), allowed_hosts=names, decodes=max_decodes,
                quarantine=quarantine,
            )
        except ValueError as error:  # a malformed --allowed-host
            raise typer.BadParameter(str(error), param_hint="--allowed-host") from None
        uvicorn.run(app, host=host, port=port, **uvicorn_options(max_connections))


@contextlib.contextmanager
def refused_as_usage(option: str):
    """A place the library refuses (a folder copies cannot be moved into, one a report cannot be written
    to) is a wrong ``option``, asked before any work is done: a usage error, in the library's words."""
    try:
        yield
    except (QuarantineError, ReportError) as e:
        raise InvalidOption(option, str(e)) from None


def main() -> None:
    """The ``lookalike`` command (every failure is translated inside the app: see LookalikeGroup)."""
    try:
        app(prog_name="lookalike")
    except SystemExit as done:
        if "tensorflow" in sys.modules:
            exit_now(done.code)
        raise


def exit_now(code: object) -> None:
    """Ends a process that loaded TensorFlow without the interpreter's teardown, which takes 0.6-1 s.

    What an exit must still do is done first: atexit handlers (logging, temporary folders) and flushing
    stdout and stderr. Only when no other thread is left to wait for; otherwise it returns, and the
    ordinary exit follows. ``code`` is ``SystemExit.code``: None, a status, or a message (status 1).
    """
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    if not isinstance(code, int | None):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more can be said on it
            stream.flush()
    os._exit(code or 0)
