"""Errors a user can act on. The UI shows their message; the API answers them with HTTP 4xx."""


class UserError(Exception):
    """Base class: the message is written for the user and names the problem."""

    status_code = 400


class InvalidParameter(UserError):
    """A generation parameter is out of range or unknown (HTTP 422)."""

    status_code = 422


class ModelLoadError(UserError):
    """A checkpoint (or other model file) could not be loaded; the previous model stays loaded."""

    status_code = 400


class ModelNotFound(UserError):
    """A model named by the user is not among the scanned files."""

    status_code = 404


class Interrupted(Exception):
    """Raised inside a running job when the user pressed Interrupt; not an error."""
