"""The one error type hardyt raises for bad input, and its specializations."""


class HardytError(Exception):
    """Bad input to hardyt: a file, key, layer or value that cannot be used.

    The message names the offending thing; the command line prints it as one
    line and exits non-zero, without a traceback.
    """


class SpecError(HardytError, ValueError):
    """A DyT/LayerNorm layer spec (or one of its fields) is invalid.

    ``field`` names the offending field, e.g. ``"tanh.out_bits"``.
    """

    def __init__(self, field: str, message: str, source=None):
        self.field, self.message, self.source = field, message, source
        text = f"{field}: {message}"
        super().__init__(f"{source}: {text}" if source is not None else text)
