"""The one exception type the CLI turns into a one-line message and exit code 2."""


class SkeletonError(Exception):
    """A problem with the user's input (task, data, model, directory) that they can fix.

    The CLI prints ``str(error)`` on one line and exits with code 2; library users catch it.
    """
