"""Runs before the command line is parsed: only add flags here (the web UI is not loaded yet)."""


def preload(parser):
    parser.add_argument(
        "--watermark-text",
        type=str,
        default=None,
        help="example-watermark: the default text of the watermark",
    )
