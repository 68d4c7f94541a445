"""The version of durable, in one place (a leaf).

Hatch reads it for the package metadata (pyproject.toml's [tool.hatch.version]); `durable
--version` and `durable.__version__` show it. PEP 440: 0.y.z while durable is alpha, with
.devN between releases; CHANGELOG.md says what each version changed.
"""

__version__ = "0.1.0.dev0"
