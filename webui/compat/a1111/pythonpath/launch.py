"""`import launch` in an A1111 extension's install.py (this folder comes first on its PYTHONPATH)."""

from webui.compat.a1111.modules.launch_utils import (
    RefusedPackage,
    dir_repos,
    git,
    index_url,
    is_installed,
    python,
    repo_dir,
    requirements_met,
    run,
    run_pip,
    run_python,
)

__all__ = [
    "RefusedPackage", "dir_repos", "git", "index_url", "is_installed", "python", "repo_dir",
    "requirements_met", "run", "run_pip", "run_python",
]  # fmt: skip
