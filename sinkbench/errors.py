"""The one exception type sinkbench raises for bad user input; the CLI prints it as one line."""


class SinkbenchError(Exception):
    """A problem with what the user asked for (bad path, unknown model, bad condition, ...).

    The message names the problem and, where there is one, the fix. The CLI prints it as
    `sinkbench: error: <message>` and exits with status 2, without a traceback.
    """
