"""Export the catalog (documents, pages, systems with page and box, status) as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json

from companion.library.catalog import Catalog

CSV_COLUMNS = [
    "document_id", "path", "title", "composer", "status", "error", "pages", "sha256",
    "page", "page_width", "page_height", "system", "x0", "y0", "x1", "y1", "n_staves",
]


def export_json(catalog: Catalog) -> str:
    """One object per live document with its pages and systems (boxes in analysis pixels)."""
    out = []
    with catalog.transaction(immediate=False):
        for d in catalog.documents():
            item = d.as_dict()
            item["searchable"] = d.visible
            systems = catalog.systems_of(d.id)
            item["pages_detail"] = [
                {
                    "page": p, "width": w, "height": h, "n_systems": n,
                    "systems": [
                        {"system": seq, "box": list(s.box), "n_staves": s.n_staves}
                        for seq, (_, s) in enumerate(systems) if s.page == p
                    ],
                }
                for p, w, h, n in catalog.pages_of(d.id)
            ]
            out.append(item)
    return json.dumps({"box_units": "pixels of the 835-px-wide analysis image", "documents": out}, indent=2)


def export_csv(catalog: Catalog) -> str:
    """One row per system; documents without systems (errors) get one row with empty system fields."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    with catalog.transaction(immediate=False):
        for d in catalog.documents():
            base = [d.id, d.path, d.title, d.composer, d.status, d.error, d.n_pages, d.sha256]
            pages = {p: (w, h) for p, w, h, _ in catalog.pages_of(d.id)}
            systems = catalog.systems_of(d.id)
            if not systems:
                writer.writerow(base + [""] * (len(CSV_COLUMNS) - len(base)))
            for seq, (_, s) in enumerate(systems):
                w, h = pages.get(s.page, ("", ""))
                writer.writerow(base + [s.page, w, h, seq, *(round(v, 2) for v in s.box), s.n_staves])
    return buf.getvalue()
