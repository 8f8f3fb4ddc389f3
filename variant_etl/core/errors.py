"""Typed errors. Each message says where, what was expected, what was found, and the fix."""

from __future__ import annotations

import re


class VariantEtlError(Exception):
    """Base of every error this package raises on purpose (shown without a traceback)."""


class VcfFormatError(VariantEtlError):
    """An input file or record that cannot be read as VCF/BCF."""


class HeaderConflictError(VariantEtlError):
    """Two input headers define the same field incompatibly."""


class ShardingConfigError(VariantEtlError):
    """The sharding YAML breaks a rule."""


class SchemaError(VariantEtlError):
    """The merged header cannot be turned into a table schema."""


class OutputError(VariantEtlError):
    """The output location cannot be written as asked."""


class CountMismatchError(VariantEtlError):
    """The manifest's counts do not add up: some record was lost or duplicated."""


# One of our errors inside the text of another (Beam wraps what a worker raised): its class
# name and message.
WRAPPED_ERROR = re.compile(
    r"(VcfFormatError|HeaderConflictError|ShardingConfigError|SchemaError|OutputError|"
    r"CountMismatchError|VariantEtlError): (.+?)(?: \[while running|\n|$)"
)
