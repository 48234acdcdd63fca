"""A1111's `modules` package as extensions see it (`import modules.scripts`), served by
webui.compat.a1111.install. Each submodule maps A1111's names onto our plugin API and the running App."""
