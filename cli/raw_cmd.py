"""`evenstride raw SHA256`: an archived raw file back, byte for byte as it was imported.

Bulk imports keep their raw files in pack files (store/packs.py), so the archive folder is no
longer a folder of FIT files to copy from; this gives any one of them back, checked against its
sha256 (the `sha256` of `evenstride activities --json`).
"""

from __future__ import annotations

from pathlib import Path

import click

from evenstride.cli import exitcodes
from evenstride.cli.common import Fail, store_of
from evenstride.store.archive import write_private_file
from evenstride.store.errors import ArchiveCorruptError, StoreError


@click.command("raw")
@click.argument("sha256")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write it to this file (0600) instead of standard output.",
)
@click.pass_context
def raw_cmd(ctx: click.Context, sha256: str, out: Path | None) -> None:
    """Write the archived raw file with this sha256 (or a unique prefix of 8+ digits)."""
    store = store_of(ctx)
    wanted = sha256.strip().lower()
    if len(wanted) < 64:
        if len(wanted) < 8 or any(c not in "0123456789abcdef" for c in wanted):
            raise Fail("give a sha256, or at least its first 8 hex digits", exitcodes.USAGE)
        found = [s for s in store.archive.iter() if s.startswith(wanted)]
        if len(found) != 1:
            what = "no archived file" if not found else f"{len(found)} archived files"
            raise Fail(f"{what} with a sha256 starting {wanted}", exitcodes.SOME_FAILED)
        wanted = found[0]
    try:
        data = store.archive.get(wanted)
    except ValueError:
        raise Fail(f"not a sha256: {sha256}", exitcodes.USAGE) from None
    except KeyError:
        raise Fail(f"no archived file with sha256 {wanted}", exitcodes.SOME_FAILED) from None
    except (ArchiveCorruptError, StoreError) as exc:
        raise Fail(str(exc), exitcodes.STORAGE) from None
    if out is None:
        with click.open_file("-", "wb") as stream:  # standard output, left open
            stream.write(data)
    else:
        write_private_file(out, data)
        click.echo(f"wrote {out} ({len(data)} bytes, sha256 {wanted})", err=True)
