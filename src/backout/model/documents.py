"""What every ``--json`` document shares, whichever layer builds it."""

from __future__ import annotations

#: the version of the ``--json`` documents' shape; every document carries it as ``"format"``
JSON_FORMAT = 1
