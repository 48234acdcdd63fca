"""modules.generation_parameters_copypaste: A1111's older name of modules.infotext_utils."""

from webui.compat.a1111.modules.infotext_utils import (
    ParamBinding,
    bind_buttons,
    create_buttons,
    image_from_url_text,
    parse_generation_parameters,
    quote,
    register_paste_params_button,
)

__all__ = [
    "ParamBinding", "bind_buttons", "create_buttons", "image_from_url_text", "parse_generation_parameters",
    "quote", "register_paste_params_button",
]  # fmt: skip
