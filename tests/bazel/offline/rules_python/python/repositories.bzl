"""Offline stand-in: nothing to set up."""

def py_repositories():
    pass
