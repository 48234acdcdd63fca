"""gradio imported without its stub writer (start-up, issue 24): the writer is skipped and gradio still
builds and renders a page. A fresh interpreter, since this process may have imported gradio already."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
from webui.ui.gradio_import import skip_gradio_stub_writer
skip_gradio_stub_writer()
import gradio as gr
import gradio.component_meta as meta
with gr.Blocks() as demo:
    gr.Textbox(label="Prompt")
    gr.Button("Generate")
print(meta.create_or_modify_pyi.__name__, len(demo.config["components"]))
"""


def test_gradio_loads_without_rewriting_its_stubs() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.split()[-2:] == ["_no_stub", "3"], done.stdout + done.stderr
