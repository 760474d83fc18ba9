"""The viewer's Flask app: an index of runs and studies under one directory, run pages
(live while a run is written), study pages. Read-only; nothing outside the root is served."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, request, send_file, stream_with_context, url_for
from markupsafe import Markup

from .catalog import CHARTS, Catalog, run_dir, study_dir
from .live import follow
from .render import environment, load_run, render_run

# The pages need nothing from anywhere else: no CDN, no inline script, no plugin.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

# A round table: the page's icon, served locally.
_ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<circle cx="8" cy="8" r="5" fill="#3b6ea8"/><circle cx="8" cy="8" r="7" fill="none" '
    'stroke="#3b6ea8" stroke-width="1" stroke-dasharray="2 1.6"/></svg>'
)

Diagram = Callable[[Mapping[str, Any]], "Markup | None"]


def _page(name: str, **context: Any) -> str:
    return environment().get_template(name).render(url_for=url_for, standalone=False, **context)


def _crumbs(catalog: Catalog, path: Path) -> list[tuple[str, str]]:
    """Links to the studies a run belongs to (its runs/ parent)."""
    parent = path.parent.parent
    if path.parent.name == "runs" and parent.is_relative_to(catalog.root):
        rel = catalog.rel(parent)
        if study_dir(catalog.root, rel) is not None:
            return [(parent.name, url_for("study", rel=rel))]
    return []


def create_app(root: Path, *, diagram: Diagram | None = None, poll_s: float = 0.1) -> Flask:
    """The viewer for the runs and studies under `root`; `diagram(run_record)` may give
    the moderator's diagram (trusted SVG Markup) for a run page."""
    app = Flask(__name__, static_folder="static", static_url_path="/static")
    catalog = Catalog(root)
    app.config["ROUNDTABLE_ROOT"] = catalog.root

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.get("/")
    def index() -> str:
        runs, studies = catalog.index()
        return _page("index.html", title=catalog.root.name, runs=runs, studies=studies,
                     root=str(catalog.root))  # fmt: skip

    @app.get("/favicon.ico")
    def favicon() -> Response:
        # Browsers ask for one on every page; a small local icon instead of a 404.
        return Response(_ICON, mimetype="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    @app.get("/run/", defaults={"rel": ""})
    @app.get("/run/<path:rel>")
    def run(rel: str) -> str:
        path = run_dir(catalog.root, rel) or abort(404)
        doc = load_run(path)
        urls = {
            "events": url_for("events", rel=catalog.rel(path)),
            "crumbs": _crumbs(catalog, path),
        }
        svg = diagram(doc.run) if diagram else None
        return render_run(doc, title=path.name, urls=urls, diagram_svg=svg, url_for=url_for)

    @app.get("/events/", defaults={"rel": ""})
    @app.get("/events/<path:rel>")
    def events(rel: str) -> Response:
        path = run_dir(catalog.root, rel) or abort(404)
        start = request.headers.get("Last-Event-ID") or request.args.get("offset") or "0"
        offset = int(start) if start.isdigit() else 0
        stream = stream_with_context(follow(path, offset, poll_s=poll_s))
        response = Response(stream, mimetype="text/event-stream")
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"
        return response

    @app.get("/study/", defaults={"rel": ""})
    @app.get("/study/<path:rel>")
    def study(rel: str) -> str:
        path = study_dir(catalog.root, rel) or abort(404)
        info = catalog.study(path)
        return _page("study.html", title=info["name"], study=info)

    @app.get("/chart/<name>", defaults={"rel": ""})
    @app.get("/chart/<path:rel>/<name>")
    def chart(rel: str, name: str) -> Response:
        path = study_dir(catalog.root, rel) or abort(404)
        target = path / name
        if name not in CHARTS or not catalog.inside(target) or not target.is_file():
            abort(404)
        return send_file(target, mimetype="image/png", max_age=0)

    @app.errorhandler(404)
    def _missing(error: Exception) -> tuple[str, int]:
        return _page("missing.html", title="not found"), 404

    return app
