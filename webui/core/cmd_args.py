"""Command-line flags (A1111's names and meanings) and the folders they resolve to.

Pure argparse: launch.py parses these before any heavy package is installed or imported, so
`python launch.py --help` stays instant.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PORT = 7860
LISTEN_ADDRESS = "0.0.0.0"
LOCAL_ADDRESS = "127.0.0.1"


@dataclass(frozen=True)
class Paths:
    """Where user data lives once --data-dir and the per-folder flags are applied."""

    data_dir: Path
    models_dir: Path
    ckpt_dir: Path
    lora_dir: Path
    vae_dir: Path
    embeddings_dir: Path
    controlnet_dir: Path
    outputs_dir: Path
    config_file: Path
    cache_file: Path
    styles_file: Path
    # The install's own models/ and extensions/ when --data-dir is another folder (else None): its demo
    # models and example extension stay available, listed after the data dir's own.
    shipped_models_dir: Path | None = None
    shipped_extensions_dir: Path | None = None

    def shipped(self, folder: str) -> Path | None:
        """The install's models/<folder> ("Lora", …) listed after the data dir's, or None."""
        return self.shipped_models_dir / folder if self.shipped_models_dir else None

    def create_folders(self) -> None:
        """The data dir's model and output folders, as A1111 creates them: where to put models is plain."""
        for folder in (
            self.ckpt_dir,
            self.lora_dir,
            self.vae_dir,
            self.embeddings_dir,
            self.controlnet_dir,
            self.outputs_dir,
        ):
            folder.mkdir(parents=True, exist_ok=True)


def parse_gradio_auth(text: str) -> tuple[tuple[str, str], ...]:
    """'u1:p1,u2:p2' → (('u1', 'p1'), ('u2', 'p2')); the password may itself hold colons."""
    pairs = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        user, sep, password = entry.partition(":")
        if not sep or not user:
            raise ValueError(f'auth entry {entry!r} is not of the form "username:password"')
        pairs.append((user, password))
    if not pairs:
        raise ValueError('authentication needs at least one "username:password"')
    return tuple(pairs)


def read_auth_file(path: str | Path) -> tuple[tuple[str, str], ...]:
    """The "username:password" entries of an auth file: one or more a line, comma-separated (A1111's)."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read --gradio-auth-path file {path}: {error}") from None
    return parse_gradio_auth(",".join(text.splitlines()))


def gradio_credentials(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """Logins for the UI from --gradio-auth and --gradio-auth-path together; empty when neither is set."""
    pairs = parse_gradio_auth(args.gradio_auth) if args.gradio_auth else ()
    return pairs + (read_auth_file(args.gradio_auth_path) if args.gradio_auth_path else ())


def api_credentials(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """Logins for the /sdapi routes (--api-auth); empty when the API is open."""
    return parse_gradio_auth(args.api_auth) if args.api_auth else ()


def _auth_text(text: str) -> str:
    # Validate at parse time so a typo stops the launch with argparse's usage message.
    try:
        parse_gradio_auth(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    return text


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a whole number, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 1 and 65535, got {port}")
    return port


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="launch.py",
        description="Stable Diffusion web UI (AUTOMATIC1111-style, on diffusers).",
        epilog="Environment: TORCH_COMMAND sets how torch is installed into .venv "
        "(default: 'pip install torch==2.13.0').",
    )
    server = parser.add_argument_group("server")
    server.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help="launch gradio with given server port, you need root/admin rights for ports "
        f"< 1024, defaults to {DEFAULT_PORT}",
    )
    server.add_argument(
        "--listen",
        action="store_true",
        help=f"launch gradio with {LISTEN_ADDRESS} as server name, allowing to respond to network requests",
    )
    server.add_argument(
        "--server-name", type=str, default=None, help="sets hostname of server (overrides --listen)"
    )
    server.add_argument(
        "--share",
        action="store_true",
        help="use share=True for gradio and make the UI accessible through their site",
    )
    server.add_argument(
        "--gradio-auth",
        type=_auth_text,
        default=None,
        help='set gradio authentication like "username:password"; or comma-delimit multiple '
        'like "u1:p1,u2:p2,u3:p3"',
    )
    server.add_argument(
        "--gradio-auth-path",
        type=str,
        default=None,
        help='set gradio authentication file path ex. "/path/to/auth/file" same auth format as --gradio-auth',
    )
    server.add_argument(
        "--api-auth",
        type=_auth_text,
        default=None,
        help='Set authentication for API like "username:password"; or comma-delimit multiple like '
        '"u1:p1,u2:p2,u3:p3"',
    )
    server.add_argument(
        "--cors-allow-origins",
        type=str,
        default=None,
        help="Allowed CORS origin(s) in the form of a comma-separated list (no spaces)",
    )
    server.add_argument(
        "--cors-allow-origins-regex",
        type=str,
        default=None,
        help="Allowed CORS origin(s) in the form of a single regular expression",
    )
    server.add_argument(
        "--tls-keyfile",
        type=str,
        default=None,
        help="Partially enables TLS, requires --tls-certfile to fully function",
    )
    server.add_argument(
        "--tls-certfile",
        type=str,
        default=None,
        help="Partially enables TLS, requires --tls-keyfile to fully function",
    )
    server.add_argument(
        "--api",
        action="store_true",
        help="use api=True to launch the API together with the webui (use --nowebui instead "
        "for only the API)",
    )
    server.add_argument(
        "--nowebui", action="store_true", help="use api=True to launch the API instead of the webui"
    )
    server.add_argument(
        "--freeze-settings",
        action="store_true",
        help="disable editing of all settings globally (UI and API)",
    )
    server.add_argument(
        "--hide-ui-dir-config",
        action="store_true",
        help="hide directory configuration from the UI and refuse changing output folders (UI and API)",
    )
    server.add_argument(
        "--shutdown-grace",
        type=float,
        default=10.0,
        help="on SIGTERM/Ctrl+C: seconds the running job may take to finish before it is interrupted; "
        "queued jobs are not run (default 10)",
    )
    server.add_argument(
        "--queue-admin",
        default=None,
        metavar="USER",
        help="the --api-auth/--gradio-auth user who sees and manages everybody's queued jobs (prompts "
        "included); others see only their own",
    )

    paths = parser.add_argument_group("paths")
    paths.add_argument(
        "--data-dir",
        type=str,
        default=None,
        help="base path where all user data is stored (models/, outputs/, config.json); "
        "defaults to the repository folder",
    )
    paths.add_argument(
        "--styles-file",
        type=str,
        default=None,
        help="filename to use for styles (default: styles.csv in the data dir)",
    )
    paths.add_argument(
        "--ckpt",
        type=str,
        default=None,
        help="path to checkpoint of stable diffusion model; if specified, this checkpoint "
        "will be added to the list of checkpoints and loaded",
    )
    paths.add_argument(
        "--ckpt-dir", type=str, default=None, help="path to directory with stable diffusion checkpoints"
    )
    paths.add_argument("--lora-dir", type=str, default=None, help="path to directory with Lora networks")
    paths.add_argument("--vae-dir", type=str, default=None, help="path to directory with VAE files")
    paths.add_argument(
        "--embeddings-dir",
        type=str,
        default=None,
        help="embeddings directory for textual inversion (default: models/embeddings)",
    )
    paths.add_argument(
        "--controlnet-dir", type=str, default=None, help="path to directory with ControlNet models"
    )
    # A1111's upscaler and face restorer folders (SwinIR, HAT and ScuNET have no flag there either).
    for flag, folder in (
        ("--esrgan-models-path", "ESRGAN"),
        ("--realesrgan-models-path", "RealESRGAN"),
        ("--dat-models-path", "DAT"),
        ("--bsrgan-models-path", "BSRGAN"),
        ("--gfpgan-models-path", "GFPGAN"),
        ("--codeformer-models-path", "Codeformer"),
    ):
        paths.add_argument(
            flag, type=str, default=None, help=f"path to directory with {folder} model file(s)"
        )

    device = parser.add_argument_group("device and precision")
    device.add_argument(
        "--use-cpu",
        nargs="+",
        type=str.lower,
        default=[],
        metavar="MODULE",
        help="use CPU as torch device for specified modules ('all' or names such as 'sd')",
    )
    device.add_argument(
        "--device-id",
        type=str,
        default=None,
        help="select the default CUDA device to use (export CUDA_VISIBLE_DEVICES=0,1,etc "
        "might be needed before); with --workers a list (0,1,…): one worker on each",
    )
    workers = parser.add_argument_group("workers (Ray; installs requirements-ray.txt)")
    workers.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="generate on N worker processes on this machine (a local Ray cluster the server starts); "
        "a batch count is split across them",
    )
    workers.add_argument(
        "--ray-address",
        type=str,
        default=None,
        metavar="ADDR",
        help="join the Ray cluster at ADDR (host:port of `ray start --head`) and generate on every "
        "worker it offers (one per GPU); keep the cluster on a private network",
    )
    device.add_argument("--no-half", action="store_true", help="do not switch the model to 16-bit floats")
    device.add_argument(
        "--no-half-vae", action="store_true", help="do not switch the VAE model to 16-bit floats"
    )
    device.add_argument(
        "--precision",
        type=str,
        choices=("full", "half", "autocast"),
        default="autocast",
        help="evaluate at this precision",
    )
    device.add_argument(
        "--medvram",
        action="store_true",
        help="enable stable diffusion model optimizations for sacrificing a little speed for low VRAM usage",
    )
    device.add_argument(
        "--lowvram",
        action="store_true",
        help="enable stable diffusion model optimizations for sacrificing a lot of speed "
        "for very low VRAM usage",
    )
    device.add_argument(
        "--medvram-sdxl", action="store_true", help="enable --medvram optimization just for SDXL models"
    )
    device.add_argument(
        "--upcast-sampling",
        action="store_true",
        help="upcast sampling. No effect with --no-half. Usually produces similar results to "
        "--no-half with better performance while using less memory.",
    )

    extensions = parser.add_argument_group("extensions")
    extensions.add_argument(
        "--enable-insecure-extension-access",
        action="store_true",
        help="enable extensions tab regardless of other options",
    )
    extensions.add_argument(
        "--disable-all-extensions",
        action="store_true",
        help="prevent all extensions from running regardless of any other settings",
    )
    extensions.add_argument(
        "--disable-extra-extensions",
        action="store_true",
        help="prevent all extensions except built-in from running regardless of any other settings",
    )

    setup = parser.add_argument_group("setup")
    setup.add_argument(
        "--skip-install", action="store_true", help="launch.py argument: skip installation of packages"
    )
    return parser


def parse_args(
    argv: Sequence[str] | None = None, extend: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    """The flags of `argv`; `extend` may add flags first (extensions' preload.py: webui.plugins.preload)."""
    parser = build_parser()
    if extend is not None:
        extend(parser)
    args = parser.parse_args(argv)
    if bool(args.tls_keyfile) != bool(args.tls_certfile):
        parser.error("TLS needs both --tls-keyfile and --tls-certfile")
    if args.gradio_auth_path:
        try:
            read_auth_file(args.gradio_auth_path)
        except ValueError as error:
            parser.error(str(error))
    _check_workers(parser, args)
    return args


def _check_workers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    ids = device_ids(args)
    if args.workers < 0:
        parser.error(f"--workers must be 0 or more, got {args.workers}")
    if args.workers and args.ray_address:
        parser.error("--workers starts a local cluster and --ray-address joins one: give one of them")
    if args.workers and len(ids) > 1 and len(ids) != args.workers:
        parser.error(
            f"--workers {args.workers} with {len(ids)} devices in --device-id: give each worker one device"
        )


def device_ids(args: argparse.Namespace) -> tuple[str, ...]:
    """The CUDA devices --device-id names (a list with --workers: one worker each)."""
    return tuple(part.strip() for part in (args.device_id or "").split(",") if part.strip())


def uses_workers(args: argparse.Namespace) -> bool:
    """Generation runs on Ray workers (--workers N or --ray-address), not in the server process."""
    return bool(args.workers or args.ray_address)


def server_name(args: argparse.Namespace) -> str:
    """The address to bind: --server-name wins, then --listen, else only this machine."""
    if args.server_name:
        return str(args.server_name)
    return LISTEN_ADDRESS if args.listen else LOCAL_ADDRESS


def reachable_from_network(args: argparse.Namespace) -> bool:
    """True when other machines can reach the UI (--listen, --share, or a --server-name that is not
    loopback): then installing extensions and similar powers are refused unless
    --enable-insecure-extension-access (A1111's rule)."""
    loopback = args.server_name in (None, "", "localhost", "::1") or str(args.server_name).startswith("127.")
    return bool(args.listen or args.share or not loopback)


def insecure_access_allowed(args: argparse.Namespace) -> bool:
    """Whether installing/updating extensions (code from elsewhere) is allowed for this server."""
    return bool(args.enable_insecure_extension_access) or not reachable_from_network(args)


def uses_cpu(args: argparse.Namespace, module: str) -> bool:
    """True when --use-cpu names this module (e.g. 'sd') or 'all'."""
    return "all" in args.use_cpu or module.lower() in args.use_cpu


def _folder(flag: str | None, default: Path) -> Path:
    return Path(flag).expanduser().resolve() if flag else default


def paths_from_args(args: argparse.Namespace) -> Paths:
    data_dir = _folder(args.data_dir, REPO_ROOT)
    models_dir = data_dir / "models"
    elsewhere = data_dir != REPO_ROOT
    return Paths(
        data_dir=data_dir,
        models_dir=models_dir,
        ckpt_dir=_folder(args.ckpt_dir, models_dir / "Stable-diffusion"),
        lora_dir=_folder(args.lora_dir, models_dir / "Lora"),
        vae_dir=_folder(args.vae_dir, models_dir / "VAE"),
        embeddings_dir=_folder(args.embeddings_dir, models_dir / "embeddings"),
        controlnet_dir=_folder(args.controlnet_dir, models_dir / "ControlNet"),
        outputs_dir=data_dir / "outputs",
        config_file=data_dir / "config.json",
        cache_file=data_dir / "cache.json",
        styles_file=_folder(args.styles_file, data_dir / "styles.csv"),
        shipped_models_dir=REPO_ROOT / "models" if elsewhere else None,
        shipped_extensions_dir=REPO_ROOT / "extensions" if elsewhere else None,
    )
