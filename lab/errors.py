class LabError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits non-zero."""
