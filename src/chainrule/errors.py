"""Exceptions chainrule raises on purpose, each with a message meant for a person."""

from __future__ import annotations


class ChainruleError(Exception):
    """Base class of chainrule's own errors."""


class DataError(ChainruleError, ValueError):
    """A dataset file is missing, truncated, corrupt or has the wrong checksum."""


class ModelFileError(ChainruleError, ValueError):
    """A model file cannot be read: wrong format, version, names, shapes or dtypes."""


__all__ = ["ChainruleError", "DataError", "ModelFileError"]
