"""The ground floor: the vocabulary every layer speaks.

Records (usage, activity, identities, pull requests), periods, money, the AI-assistance rules and
the clock. Modules here import the standard library and each other, nothing else of Tokenwise's:
that is what lets the data layer, the connectors, the services and Slack all import them without
pointing at each other (the contract is in ``pyproject.toml``, ``[tool.importlinter]``).
"""
