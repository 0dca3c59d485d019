"""Features by module: ``/tokens`` subcommand handlers and, where a feature has events or
buttons, a ``register(app, runtime, directory)``. ``bot.slack.command_table`` lists both; a
handler module imports ``bot.slack.context`` (and ``membership``, ``background``), never the
listener in ``bot.slack.commands``."""
