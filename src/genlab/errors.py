"""The errors genlab raises for problems a user can fix.

Every user-facing mistake (a bad config key, a corrupt data file, a run folder that
does not exist) raises a :class:`GenlabError` whose message says what is wrong and what
would be right. The command-line interface prints it on one line, without a traceback,
and exits with status 2.
"""


class GenlabError(Exception):
    """A problem with the user's input: its message names the problem and the fix."""


class ConfigError(GenlabError):
    """An invalid configuration key, value or override."""


class DataError(GenlabError):
    """A dataset that cannot be found, downloaded, parsed or validated."""


class RunError(GenlabError):
    """A run folder that is missing, incomplete or incompatible with the request."""


class TrainingDiverged(GenlabError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
