"""Exception hierarchy of geohsr.

Every error a user can cause derives from :class:`GeohsrError`; its message is one line that
says what is wrong and what to do. The CLI prints it without a traceback and exits non-zero.
"""


class GeohsrError(Exception):
    """Base class of every user-facing geohsr error."""


class InputError(GeohsrError, ValueError):
    """The input raster (or guide) cannot be read or is not usable."""


class MethodError(GeohsrError, ValueError):
    """Unknown method, unsupported scale, or inputs that do not fit the method."""


class OutputError(GeohsrError, OSError):
    """The output cannot be written (exists, unwritable directory, same as input, disk full)."""


class WeightsError(GeohsrError, ValueError):
    """Weights are missing, corrupt, tampered with, or do not fit the model."""
