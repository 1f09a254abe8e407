"""Importing an old system's CSV (units, tenants, leases) through the API's import route: the
file is uploaded, the import runs in a worker thread while a bar shows its rows done of the
file's rows (the API's progress route), then what was imported and each rejected row."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import events, ui

from cloud.api.routes import imports as import_routes
from cloud.console.i18n import N_
from cloud.console.layout import act_slowly, columns, enter, frame
from cloud.console.viewer import Viewer
from cloud.importer.load import Kind
from cloud.progress import DONE
from cloud.security.authz import Permission

POLL_S = 0.5  # how often the page reads the import's progress
INTRO = N_(
    "Import units first, then tenants, then leases. A bad row is listed and left out; the "
    "good rows are imported."
)
SUMMARY = N_(
    "{rows} rows: {created} new, {unchanged} already there, {rejected} rejected; {verdict}"
)
KINDS = {Kind.UNITS: N_("Units"), Kind.TENANTS: N_("Tenants"), Kind.LEASES: N_("Leases")}


@ui.page("/import")
def import_page(request: Request) -> RedirectResponse | None:
    viewer = enter(request, Permission.DATA_IMPORT)
    if not isinstance(viewer, Viewer):
        return viewer
    _ = viewer._
    with frame(viewer, _("Import")):
        ui.label(_(INTRO))
        with ui.row().classes("items-center q-gutter-md"):
            kind = ui.select(
                {k.value: _(label) for k, label in KINDS.items()}, value=Kind.UNITS.value,
                label=_("What the file holds"),
            ).props("data-testid=import-kind").classes("w-48")  # fmt: skip
            dry_run = ui.checkbox(_("Check only, import nothing")).props("data-testid=dry-run")
        upload = ui.upload(
            label=_("CSV file (UTF-8 or GBK)"), auto_upload=True,
            max_file_size=import_routes.MAX_BYTES,
        ).props("accept=.csv,text/csv data-testid=import-upload").classes("w-96")  # fmt: skip
        bar = ui.linear_progress(value=0, show_value=False).props("data-testid=import-bar")
        progress = ui.label().props("data-testid=import-progress")
        result = ui.column().classes("w-full")

        def poll() -> None:
            found = viewer.call(import_routes.import_progress, me=viewer.me)
            bar.set_visibility(found is not None)
            if found is None:
                return
            bar.set_value(1.0 if found.phase == DONE else found.done / max(found.total, 1))
            progress.set_text(
                _("{done} / {total} rows").format(
                    done=viewer.texts.number(found.done), total=viewer.texts.number(found.total)
                )
            )

        poll()
        ui.timer(POLL_S, poll)

        async def received(e: events.UploadEventArguments) -> None:
            data = await e.file.read()
            chosen, check = Kind(kind.value), bool(dry_run.value)
            upload.disable()
            try:
                out = await act_slowly(
                    viewer,
                    lambda: viewer.send(import_routes.import_rows, kind=chosen, body=data,
                                        encoding="auto", dry_run=check, skip_bad=True),
                )  # fmt: skip
            finally:
                upload.reset()
                upload.enable()
            if out is not None:
                _show(viewer, result, out)

        upload.on_upload(received)
    return None


def _show(viewer: Viewer, where: ui.column, out: import_routes.ImportOut) -> None:
    _ = viewer._
    n = viewer.texts.number
    where.clear()
    with where:
        verdict = _("imported") if out.applied else _("nothing imported")
        summary = _(SUMMARY).format(
            rows=n(out.rows),
            created=n(out.created),
            unchanged=n(out.unchanged),
            rejected=n(out.rejected),
            verdict=verdict,
        )
        ui.label(summary).classes("text-subtitle1").props("data-testid=import-result")
        if not out.rejected_rows:
            return
        if out.rejected > len(out.rejected_rows):
            ui.label(_("The first {n} rejected rows:").format(n=n(len(out.rejected_rows))))
        ui.table(
            columns=columns(("line", _("Line")), ("column", _("Column")), ("reason", _("Reason"))),
            rows=[
                {"id": i, "line": r.line, "column": r.column, "reason": r.reason}
                for i, r in enumerate(out.rejected_rows)
            ],
            row_key="id",
            pagination=50,
        ).props("dense flat").classes("w-full").props("data-testid=import-rejected")
