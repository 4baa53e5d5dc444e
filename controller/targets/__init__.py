"""Scale targets: one Protocol (``base.ScaleTarget``), one file per implementation."""
