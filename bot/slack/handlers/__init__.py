"""Features by module. Each module may export ``HANDLERS: dict[str, Handler]`` (``/tokens``
subcommands; synopsis and description go in ``bot.services.commands.SUBCOMMANDS``) and
``register(app, runtime, directory)`` for its events and actions. ``bot.slack.commands``
discovers them; nothing else needs editing to add a feature."""
