"""The foundations every stage stands on: settings, tasks, model families, data, the prompted
classifier, the shared record and unit types, and the loaded workspace a stage works in.

Nothing here imports from :mod:`skeleton.method`, :mod:`skeleton.deploy` or :mod:`skeleton.measure`.
"""
