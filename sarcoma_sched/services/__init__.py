"""Use cases, each one unit of work: what it changes commits together with its audit entries.

Every function takes the ``Database`` and the acting user; the CLI only parses and formats.
"""
