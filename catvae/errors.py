"""The one exception type for bad input, so the CLI and Snakemake scripts can report it cleanly."""


class CatvaeError(ValueError):
    """Bad input: a missing or corrupt file, a wrong shape, a bad config value.

    The message must name the offending file or config key, because the researcher reading the log
    has only that message to go on.
    """
