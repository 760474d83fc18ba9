"""Studies: many discussions from one experiment file, run concurrently, questioned, compared."""

from __future__ import annotations
