"""The ``chainrule`` command line."""
