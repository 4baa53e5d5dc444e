"""The ``headroom`` command line: thin typer commands over the policy core and the controller."""
