"""The stages of a subscriber import (read, check, hold back, filter, write), one module each.

:func:`subscribers.importer.import_csv` runs them; its docstring follows a row from the file
to the table.
"""
