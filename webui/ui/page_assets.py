"""The page's own JavaScript and CSS (webui/ui/javascript/*.js, style.css), inlined into the page head
before the extensions' assets, as A1111 serves its script.js and style.css."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def page_assets() -> tuple[str, str]:
    """(head HTML with our scripts inlined, our CSS)."""
    scripts = []
    for path in sorted((HERE / "javascript").glob("*.js")):
        source = path.read_text(encoding="utf-8").replace("</script", "<\\/script")
        scripts.append(f'<script data-webui="{path.name}">\n{source}\n</script>')
    return "\n".join(scripts), (HERE / "style.css").read_text(encoding="utf-8")
